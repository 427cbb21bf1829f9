"""Limits and start times kept between collections: they change only when someone writes them.

A collection used to read 8 limit files per cgroup on every scrape (17 % of a collection at 1000
containers, bench/PROFILE.md), and ``stat`` each cgroup for its start time. Here both are kept
per cgroup, keyed by the directory's inode (and ctime), so a cgroup removed and made again at the same path
is read again. A kept value is dropped

- at once, by ``invalidate(path)``: cgwatch's own writes (limits/service.py) and the runtimes'
  update events (agent.py) call it;
- after ``refresh_s``: a write nobody announced (``echo > memory.limit_in_bytes``) shows within it.

One ``stat`` per cgroup per collection tells the inode (and the start time, kernfs' ctime of the
directory). Only the exporter reads through this: the reconciler and the limit service read the
kernel's live values (drift detection must see a change the moment it happens).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..model import Limits
from .base import CgroupReader

# A write made behind cgwatch's back (and a runtime whose events are not followed) shows this late.
REFRESH_S = 60.0


@dataclass(frozen=True, slots=True)
class _Kept:
    identity: tuple[int, float]   # the directory's (inode, ctime) when read
    read_at: float
    limits: Limits


class LimitsCache:
    """A CgroupReader whose ``limits`` and ``created`` are kept per cgroup; every other read goes
    to ``reader`` as it is."""

    def __init__(self, reader: CgroupReader, refresh_s: float = REFRESH_S,
                 clock: Callable[[], float] = time.monotonic):
        self._reader = reader
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
        ident = self._reader.identity(path)
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
        ident = self._reader.identity(path)
        return None if ident is None else ident[1]

    def invalidate(self, path: str) -> None:
        """``path``'s limits were written (or may have been): read them again next time."""
        with self._lock:
            self._epoch += 1
            self._kept.pop(path, None)

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

    def _forget(self, path: str) -> None:
        with self._lock:
            self._kept.pop(path, None)
