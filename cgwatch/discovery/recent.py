"""Resolve a container ref against the latest walk while it is recent and still true.

A limits request names one container, and finding it used to walk every hierarchy: 60 ms of
CPU at 1000 cgroups (bench/LOAD.md), so 100 writes a second needed six cores for the walks
alone. Every walk (each collection, the reconciler's passes, the API's reads) now leaves its
result here, and a ref is resolved against one at most ``max_age_s`` old, provided the cgroup
it names still exists (one stat). Everything else (no walk yet or too old, not found, ambiguous,
the cgroup gone) is decided by a fresh walk, so a container created a moment ago is found and
a removed one is not, exactly as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..errors import AmbiguousRef, ContainerNotFound
from .inventory import Container, resolve

# Under a second or two of scrapes there is always a fresher walk than this; without scrapes, a
# burst of writes walks once per this period.
MAX_AGE_S = 2.0


class RecentScan:
    def __init__(self, scan: Callable[[], list[Container]], exists: Callable[[str], bool],
                 max_age_s: float = MAX_AGE_S):
        self._scan = scan
        self._exists = exists
        self._max_age_s = max_age_s
        self._last: tuple[float, list[Container]] | None = None

    def scan(self) -> list[Container]:
        """A fresh walk, remembered. Blocking: call from a worker thread."""
        started = time.monotonic()  # the walk's age counts from its start: it may miss what came later
        containers = self._scan()
        last = self._last
        if last is None or last[0] <= started:
            self._last = (started, containers)  # one assignment: readers in other threads see old or new
        return containers

    def resolve(self, ref: str) -> Container:
        """The container ``ref`` names. Blocking (a stat, maybe a walk): call from a worker thread."""
        last = self._last
        if last is not None and time.monotonic() - last[0] <= self._max_age_s:
            try:
                found = resolve(ref, last[1])
            except (ContainerNotFound, AmbiguousRef):
                pass  # maybe created or removed since: the fresh walk below decides
            else:
                if self._exists(found.path):
                    return found
        return resolve(ref, self.scan())
