"""Limits and start times kept between collections: they change only when someone writes them.

A collection used to read 8 limit files per cgroup on every scrape (17 % of a collection at 1000
containers, bench/PROFILE.md), and ``stat`` each cgroup for its start time. Here both are kept
per cgroup, keyed by the cgroup's identity, so a cgroup removed and made again at the same path
is read again: the agent's live tree (discovery/live.py) gives a generation that changes whenever
the directory is made again, with no syscall; without one, a ``stat`` tells the directory's inode.
A kept value is dropped

- at once, by ``invalidate(path)``: cgwatch's own writes (limits/service.py), the runtimes'
  update events (agent.py) and a direct write to the cgroup's files (live.py hears it as
  ``IN_MODIFY``, told at the next scan) call it;
- after ``refresh_s``: a write nothing announced (a hierarchy the tree does not hear) shows within it.

The start time (kernfs' ctime of the directory) is one ``stat`` per generation. Only the exporter
reads through this: the reconciler and the limit service read the kernel's live values (drift
detection must see a change the moment it happens).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from ..model import Limits
from .base import CgroupReader

# A write made behind cgwatch's back (and a runtime whose events are not followed) shows this late.
REFRESH_S = 60.0


@dataclass(frozen=True, slots=True)
class _Kept:
    identity: Hashable            # the cgroup's identity when read (a generation, or (inode, ctime))
    read_at: float
    limits: Limits


class LimitsCache:
    """A CgroupReader whose ``limits`` and ``created`` are kept per cgroup; every other read goes
    to ``reader`` as it is."""

    def __init__(self, reader: CgroupReader, refresh_s: float = REFRESH_S,
                 clock: Callable[[], float] = time.monotonic,
                 identity: Callable[[str], Hashable | None] | None = None):
        """``identity(path)``: what tells a cgroup from one made again at its path, None when it
        is gone (the live tree's generation); the directory's (inode, ctime) by default."""
        self._reader = reader
        self._identity = identity if identity is not None else reader.identity
        self._created: dict[str, tuple[Hashable, float | None]] = {}
        self._refresh_s = refresh_s
        self._clock = clock
        self._kept: dict[str, _Kept] = {}
        # Bumped by every invalidation: a read that began before one is not kept (it may have
        # read the value the write replaced).
        self._epoch = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> object:
        return getattr(self._reader, name)

    def limits(self, path: str) -> Limits:
        ident = self._identity(path)
        if ident is None:  # gone: the reader says what it says of a gone cgroup (no limits)
            self._forget(path)
            return self._reader.limits(path)
        now = self._clock()
        kept = self._kept.get(path)
        if kept is not None and kept.identity == ident and now - kept.read_at < self._refresh_s:
            return kept.limits
        epoch = self._epoch
        limits = self._reader.limits(path)
        with self._lock:
            if epoch == self._epoch:
                self._kept[path] = _Kept(ident, now, limits)
        return limits

    def created(self, path: str) -> float | None:
        ident = self._identity(path)
        if ident is None:
            return None
        kept = self._created.get(path)
        if kept is not None and kept[0] == ident:
            return kept[1]
        created = self._reader.created(path)
        with self._lock:  # retain() iterates the dict, perhaps in another thread
            self._created[path] = (ident, created)
        return created

    def invalidate(self, path: str) -> None:
        """``path``'s limits were written (or may have been): read them again next time."""
        with self._lock:
            self._epoch += 1
            self._kept.pop(path, None)

    def invalidate_all(self) -> None:
        """Anything may have been written (the tree lost events): read every cgroup again."""
        with self._lock:
            self._epoch += 1
            self._kept.clear()

    def invalidate_id(self, container_id: str) -> None:
        """A runtime changed the container ``container_id`` (a ``docker update``): every kept
        cgroup whose path names it (``/docker/<id>``, ``.../docker-<id>.scope``) is read again."""
        if not container_id:
            return
        with self._lock:
            self._epoch += 1
            for path in [p for p in self._kept if container_id in p]:
                del self._kept[path]

    def retain(self, paths: set[str]) -> None:
        """Forget cgroups not in ``paths`` (the collection's): what is kept stays bounded by what lives."""
        with self._lock:
            for path in [p for p in self._kept if p not in paths]:
                del self._kept[path]
            for path in [p for p in self._created if p not in paths]:
                del self._created[path]

    def _forget(self, path: str) -> None:
        with self._lock:
            self._kept.pop(path, None)
            self._created.pop(path, None)
