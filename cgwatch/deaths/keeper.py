"""After each collection: who died since the last one, their last series kept, the living watched.

The exporter hands over each collection's containers and families (``collected``). A container the
last collection listed and this one does not is dead: its samples in the last collection's families
are kept (retention.py), frozen, and appended to every collection's families until
``--removed-retention`` has passed, a new cgroup lives at its path, or newer deaths push it out. A
container born and gone between two collections (seen only at its mkdir, ``born``) is kept with
what is known of it: container_info, container_last_seen and its OOM counters.

Per collection, with nothing vanished: a pass over the paths and a record per new container (0.1 ms
at 1000 containers). The last collection's families are kept by reference (no copy), and searched
only when something vanished (~5 ms at 1000 containers, for any number of deaths).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..collectors import ALL as ALL_COLLECTORS
from ..collectors.base import ScrapeContext
from ..collectors.info import info_labels
from ..discovery.classify import classify
from ..discovery.inventory import Container, LookupFn, build_container
from ..exposition import Family
from ..model import MemoryStats
from .ledger import OomLedger, OomRecord
from .retention import MAX_RETAINED, DeadContainer, Retained, dead_from_samples, samples_of

log = logging.getLogger("cgwatch.deaths")

# Cgroups that are not a container's (discovery/classify.py): their OOM kills are the kernel's to
# count while they live; they are kept when they vanish, but not watched (watcher.py says why).
NOT_CONTAINERS = frozenset({"raw", "systemd", "kubernetes"})
# A cgroup seen at its mkdir that no walk lists this long (an --ignore-cgroup glob hides it) is let go.
BORN_WAIT_S = 60.0


class Watching(Protocol):
    """The OOM watcher (watcher.OomWatcher) as the keeper uses it."""

    def watch(self, record: OomRecord) -> bool: ...

    def closed(self) -> list[str]: ...


class KeptReads(Protocol):
    """What the collection read already (exporter.OnceReader): no second read of any file."""

    def kept(self, name: str, path: str) -> object | None: ...


@dataclass(frozen=True, slots=True)
class _Last:
    ctx: ScrapeContext
    live: dict[str, Container]
    families: Sequence[Family]
    lengths: list[int]     # each family's own samples, before the dead's were added
    at: float              # time.monotonic() when its reads were done


def _all_meta() -> dict[str, tuple[str, str]]:
    return {s.name: (s.help, s.type) for cls in ALL_COLLECTORS.values() for s in cls.specs}


class DeathKeeper:
    def __init__(self, keep_s: float, *, ledger: OomLedger | None = None, watcher: Watching | None = None,
                 lookup: LookupFn | None = None, exists: Callable[[str], bool] | None = None,
                 max_kept: int = MAX_RETAINED, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        """``keep_s``: how long a dead container's series stay; ``lookup`` names a cgroup seen at its
        mkdir (runtimes.Runtimes.find); ``exists`` says whether a cgroup is still there."""
        self.retained = Retained(keep_s, max_kept)
        self.ledger = ledger if ledger is not None else OomLedger()
        self._watcher = watcher
        self._lookup = lookup
        self._exists = exists
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._records: dict[str, OomRecord] = {}        # the living containers' OOM records
        self._unwatched: set[str] = set()               # ... whose kernel notifications are not had
        self._born: dict[str, tuple[Container, float]] = {}  # seen at mkdir, not collected yet
        self._last: _Last | None = None
        self._meta = _all_meta()

    # -- from the event loop ------------------------------------------------------------------------
    def born(self, path: str) -> None:
        """A cgroup was made a moment ago (enforce/births.py): watch it now, before any collection,
        so a container that is OOM-killed within its first scrape interval is still counted."""
        c = build_container(path, classify(path), self._lookup)
        if c.runtime in NOT_CONTAINERS:
            return
        with self._lock:
            if path in self._records:
                return
            self._track(c)
            self._born[path] = (c, self._wall())

    def runtime_oom(self, runtime: str, container_id: str) -> None:
        """A runtime's own ``oom`` event (runtimes/base.py OomSource)."""
        if not self.ledger.runtime_event(runtime, container_id, self._clock()):
            log.debug("OOM event for a container not watched", extra={"runtime": runtime, "container": container_id})

    # -- from the collection's thread ---------------------------------------------------------------
    def collected(self, ctx: ScrapeContext, families: list[Family], reads: KeptReads) -> None:
        """Note this collection's living and dead, and add the kept dead's samples to ``families``."""
        now = self._clock()
        live = {c.path: c for c in ctx.containers}
        lengths = [len(f.samples) for f in families]
        with self._lock:
            last = self._last
            before = last.live if last is not None else {}
            vanished = [p for p in before if p not in live]
            if vanished and last is not None:
                self._bury(vanished, last, now)
            self._bury_born(ctx, live, before, now)
            self._watch_new(ctx.containers, live, before)
            self._read_unwatched(reads, now)
            self._drop(self.retained.drop([p for p in self.retained.paths() if p in live]))
            self._drop(self.retained.expire(now))
            self._last = _Last(ctx, live, families, lengths, now)
            self._append(families)

    def _track(self, c: Container) -> OomRecord:
        rec = self.ledger.open(c.path, c.runtime, c.id)
        self._records[c.path] = rec
        if self._watcher is None or not self._watcher.watch(rec):
            self._unwatched.add(c.path)
        else:
            self._unwatched.discard(c.path)
        return rec

    def _watch_new(self, containers: list[Container], live: dict[str, Container],
                   before: dict[str, Container]) -> None:
        """Containers new since the last collection, and those whose registration ended with their
        cgroup while a new one took the path (``docker restart``), get a record and a watch."""
        again = set(self._watcher.closed()) if self._watcher is not None else set()
        for c in containers:
            if c.runtime in NOT_CONTAINERS or (c.path in before and c.path not in again):
                continue
            if c.path in self._born and c.path not in again:
                del self._born[c.path]  # seen at its mkdir; collected from now on
                continue
            self._born.pop(c.path, None)
            self._track(c)

    def _read_unwatched(self, reads: KeptReads, now: float) -> None:
        """What the collection read of containers the watcher does not follow: their records'
        counter then rises at collection time, so a late runtime event is not counted twice."""
        wall = self._wall()
        for path in self._unwatched:
            m = reads.kept("memory", path)
            rec = self._records.get(path)
            if isinstance(m, MemoryStats) and m.oom_kills is not None and rec is not None:
                rec.read(m.oom_kills, now, wall)

    def _bury(self, paths: list[str], last: _Last, now: float) -> None:
        labels = {p: last.ctx.labels(last.live[p]) for p in paths}  # rendered then: the same strings
        every = {id(last.ctx.labels(c)) for c in last.live.values()}
        found = samples_of(last.families, last.lengths, labels, every)
        for path in paths:
            rec = self._records.pop(path, None)
            self._unwatched.discard(path)
            dead = dead_from_samples(path, found[path], now, rec)
            if rec is not None:
                if dead.oom is not None:
                    rec.read(int(dead.oom), last.at)  # what the last collection read, when it read it
                rec.died()
            self._drop(self.retained.add(dead))

    def _bury_born(self, ctx: ScrapeContext, live: dict[str, Container], before: dict[str, Container],
                   now: float) -> None:
        """Containers seen at their mkdir that no collection listed and that are gone now."""
        wall = self._wall()
        for path, (c, born_at) in list(self._born.items()):
            if path in live or path in before:
                continue
            if self._exists is not None and self._exists(path):
                if wall - born_at > BORN_WAIT_S:  # never listed by a walk: not ours to keep
                    del self._born[path]
                    self._forget(path)
                continue
            del self._born[path]
            rec = self._forget(path)
            if rec is not None:
                rec.died()
            named = self._named(c)
            labels = ctx.labels(named)
            seen = rec.seen_at if rec is not None and rec.seen_at is not None else born_at
            samples = {"container_info": [(f"{labels},{info_labels(named)}", 1)],
                       "container_last_seen": [(labels, int(seen))]}
            self._drop(self.retained.add(DeadContainer(path, now, samples, labels, None, rec)))

    def _named(self, c: Container) -> Container:
        """``c`` named again: at its mkdir its runtime may not have known it yet."""
        if c.name != c.id or self._lookup is None:
            return c
        return build_container(c.path, classify(c.path), self._lookup)

    def _forget(self, path: str) -> OomRecord | None:
        self._unwatched.discard(path)
        return self._records.pop(path, None)

    def _drop(self, dropped: list[DeadContainer]) -> None:
        for dead in dropped:
            if dead.record is not None:
                self.ledger.forget(dead.record)

    def _append(self, families: list[Family]) -> None:
        kept = self.retained.families()
        if not kept:
            return
        by_name = {f.name: f for f in families}
        for name, samples in kept.items():
            family = by_name.get(name)
            if family is None:
                meta = self._meta.get(name)
                if meta is None:
                    continue
                family = by_name[name] = Family(name, *meta)
                families.append(family)
            family.samples.extend(samples)
