"""Resolve a container ref against the latest walk while it is recent and still true.

A limits request names one container, and finding it used to walk every hierarchy: 60 ms of
CPU at 1000 cgroups (bench/LOAD.md), so 100 writes a second needed six cores for the walks
alone. Every walk (each collection, the reconciler's passes, the API's reads) now leaves its
result here, and a ref is resolved against one at most ``max_age_s`` old, provided the cgroup
it names still exists (one stat). Everything else (no walk yet or too old, not found, ambiguous,
the cgroup gone) is decided by a fresh walk, so a container created a moment ago is found and
a removed one is not, exactly as before.

A target is a container ref or a cgroup path (inventory.CgroupPath): a path resolves to the
Container the walk made for that cgroup, and only to one the walk found, never to a filesystem
path joined from the request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from ..errors import AmbiguousRef, ContainerNotFound
from .inventory import CgroupPath, Container, Target, check_path, find_target

# Under a second or two of scrapes there is always a fresher walk than this; without scrapes, a
# burst of writes walks once per this period.
MAX_AGE_S = 2.0


class RecentScan:
    def __init__(self, scan: Callable[[], list[Container]], exists: Callable[[str], bool],
                 max_age_s: float = MAX_AGE_S, ignore: Iterable[str] = ()):
        """``ignore``: the walk's --ignore-cgroup globs, so a path they hide is refused as such."""
        self._scan = scan
        self._exists = exists
        self._max_age_s = max_age_s
        self._ignore = tuple(ignore)
        self._last: tuple[float, list[Container]] | None = None

    def scan(self) -> list[Container]:
        """A fresh walk, remembered. Blocking: call from a worker thread."""
        started = time.monotonic()  # the walk's age counts from its start: it may miss what came later
        containers = self._scan()
        last = self._last
        if last is None or last[0] <= started:
            self._last = (started, containers)  # one assignment: readers in other threads see old or new
        return containers

    def find(self, target: Target, containers: list[Container]) -> Container:
        """``target`` among ``containers`` (a walk's), refused as resolve() refuses it. No I/O."""
        return find_target(target, containers, self._ignore)

    def resolve(self, target: Target) -> Container:
        """The container ``target`` names. Blocking (a stat, maybe a walk): call from a worker thread."""
        if isinstance(target, CgroupPath):
            check_path(target, self._ignore)  # the root, an ignored path: no walk changes the answer
        last = self._last
        if last is not None and time.monotonic() - last[0] <= self._max_age_s:
            try:
                found = self.find(target, last[1])
            except (ContainerNotFound, AmbiguousRef):
                pass  # maybe created or removed since: the fresh walk below decides
            else:
                if self._exists(found.path):
                    return found
        return self.find(target, self.scan())
