"""One collection of the whole host, shared by concurrent scrapes and cached for a bounded age.

A collection walks the cgroup tree, runs every enabled collector (timed, failures isolated as
node_exporter does) and renders the exposition, all in one worker thread so the event loop
never blocks on cgroupfs. Scrapes that arrive while a collection runs await the same one.

The API's container reads (agent.py) answer from the same collection: its walk, and what its
collectors read, kept by ``OnceReader``. So no request pattern without a token runs more than one
walk of the host at a time: 100 concurrent list requests, each walking and reading ~500 cgroups,
used to push a scrape past Prometheus' 10 s default scrape timeout.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, PlatformCollector, generate_latest

from . import __version__
from .cgroup.base import CgroupReader
from .collectors import Collector, ScrapeContext
from .deaths.keeper import DeathKeeper
from .discovery.inventory import Container
from .exposition import Family, render_chunks
from .host.procfs import ProcFS
from .host.selfproc import SelfProcessCollector
from .model import Tasks

log = logging.getLogger("cgwatch.exporter")
T = TypeVar("T")

# Level 1: a 13 MB exposition (1000 containers) becomes 0.8 MB in ~30 ms; level 6 saves another
# 0.2 MB for twice the time (measured on this project's CI machine).
GZIP_LEVEL = 1


@dataclass(frozen=True, slots=True)
class CollectionStats:
    duration_s: float
    collectors: dict[str, tuple[float, bool]]  # name -> (seconds, success)
    containers: int


@dataclass(frozen=True, slots=True)
class Collection:
    """One collection: the exposition, the containers it walked and what it read of them."""
    started: float         # time.monotonic() when its walk began
    at: float              # time.time() then: the moment its readings are of, to a client
    body: bytes
    containers: list[Container]
    reader: CgroupReader   # answers from what the collectors read; reads what they did not


_UNREAD = object()


class OnceReader:
    """A reader that reads each cgroup's usage and limits at most once per collection.

    The collectors read them for the exposition; the API's JSON of the same containers
    (views/container.py) then costs no second read of the same files.
    """

    KEPT = frozenset({"cpu", "memory", "limits", "tasks", "created", "procs", "threads"})

    def __init__(self, reader: CgroupReader):
        self._reader = reader
        self._kept: dict[tuple[str, str], object] = {}

    def __getattr__(self, name: str) -> Callable[..., object]:
        read = getattr(self._reader, name)
        if name not in self.KEPT:
            return read

        kept = self._kept

        def once(path: str) -> object:
            key = (name, path)
            found = kept.get(key, _UNREAD)
            if found is _UNREAD:  # two threads may both read it: same answer, no harm
                found = kept[key] = read(path)
            return found
        setattr(self, name, once)  # asked again, found without __getattr__
        return once

    def tasks(self, path: str) -> Tasks:
        """The cgroup's tasks from what the collection read (its PIDs, and the threads
        container_threads counts), so the listing does not read cgroup.procs and the TID list of
        every container again (9,000 opens at 3000 containers); read when it did not."""
        procs = self._kept.get(("procs", path))
        threads = self._kept.get(("threads", path), _UNREAD)
        if procs is None or threads is _UNREAD:
            return self.__getattr__("tasks")(path)  # type: ignore[return-value]
        return Tasks(processes=len(procs), threads=threads,  # type: ignore[arg-type]
                     pids_current=self._reader.pids_current(path))

    def kept(self, name: str, path: str) -> object | None:
        """What ``name`` (one of KEPT) of ``path`` read in this collection, without reading anything."""
        return self._kept.get((name, path))


class Exporter:
    def __init__(self, reader: CgroupReader, proc: ProcFS, scan: Callable[[], list[Container]],
                 collectors: list[Collector], max_age_s: float = 1.0,
                 label_allowlist: tuple[str, ...] = (), deaths: DeathKeeper | None = None):
        """``deaths`` keeps dead containers' last series (--removed-retention); None: they go at once."""
        self._reader = reader
        self._proc = proc
        self._scan = scan
        self._collectors = collectors
        self._max_age_s = max_age_s
        self._label_allowlist = label_allowlist
        self._deaths = deaths
        self._cached: tuple[float, Collection] | None = None  # (finished at, collection)
        self._inflight: asyncio.Future[Collection] | None = None
        # What is made from one collection (the gzipped body, the API's listing), once, by name.
        self._derived: dict[str, tuple[Collection, asyncio.Future[Any]]] = {}
        self.last_stats: CollectionStats | None = None
        # The agent's own instrumentation lives in a private registry (client_python's advice).
        self.registry = CollectorRegistry(auto_describe=False)
        # client_python's process_* families, but the open fds from one stat (host/selfproc.py).
        self.registry.register(SelfProcessCollector())
        PlatformCollector(registry=self.registry)
        self.collector_errors = Counter("cgwatch_collector_errors", "Collector runs that raised.",
                                        ["collector"], registry=self.registry)
        self.collections = Counter("cgwatch_collections", "Collections of the whole host.",
                                   registry=self.registry)

    async def metrics(self) -> bytes:
        """The exposition, from a collection no older than max_age_s (or the one under way)."""
        return (await self.collection()).body

    async def collection(self, since: float | None = None) -> Collection:
        """A collection no older than max_age_s, or the one under way; with ``since`` (a
        time.monotonic()), one whose walk began at or after it. Never two at once."""
        while True:
            cached = self._cached
            if cached is not None and (cached[1].started >= since if since is not None
                                       else time.monotonic() - cached[0] <= self._max_age_s):
                return cached[1]
            if self._inflight is None:
                self._inflight = asyncio.ensure_future(asyncio.to_thread(self._collect))
                self._inflight.add_done_callback(self._finished)
            got = await asyncio.shield(self._inflight)
            if since is None or got.started >= since:
                return got

    async def metrics_gzip(self) -> bytes:
        """The same exposition, gzipped (Prometheus asks for gzip on every scrape).

        Compressed once per collection in a worker thread (zlib releases the GIL), not once per
        scrape: 50 scrapers of one 9 MB body pay for one compression, and each connection then
        buffers a tenth of the bytes.
        """
        return await self.derived("gzip", lambda got: gzip.compress(got.body, compresslevel=GZIP_LEVEL, mtime=0))

    async def derived(self, name: str, make: Callable[[Collection], T], since: float | None = None) -> T:
        """``make`` of the current collection (as ``collection(since)`` gives it), run once per
        collection in a worker thread and shared by every caller that asks for ``name`` meanwhile."""
        got = await self.collection(since)
        held = self._derived.get(name)
        if held is None or held[0] is not got:
            held = self._derived[name] = (got, asyncio.ensure_future(asyncio.to_thread(make, got)))
        return await asyncio.shield(held[1])

    def _finished(self, fut: asyncio.Future[Collection]) -> None:
        self._inflight = None
        if not fut.cancelled() and fut.exception() is None:
            self._cached = (time.monotonic(), fut.result())

    def collect_blocking(self) -> bytes:
        """Walk, read, render: the exposition. Runs in a worker thread."""
        return self._collect().body

    def _collect(self) -> Collection:
        began = time.monotonic()
        started = time.perf_counter()
        containers = self._scan()
        reader = OnceReader(self._reader)
        ctx = ScrapeContext(containers=containers, reader=reader, proc=self._proc,  # type: ignore[arg-type]
                            now=time.time(), label_allowlist=self._label_allowlist)
        families: list[Family] = []
        timings: dict[str, tuple[float, bool]] = {}
        for collector in self._collectors:
            t0 = time.perf_counter()
            try:
                families.extend(collector.collect(ctx))
                ok = True
            except Exception:  # one collector's bug must not fail the scrape
                log.exception("collector failed", extra={"collector": collector.name})
                self.collector_errors.labels(collector.name).inc()
                ok = False
            timings[collector.name] = (time.perf_counter() - t0, ok)
        if self._deaths is not None:
            try:
                self._deaths.collected(ctx, families, reader)
            except Exception:  # the living's series must not fail with the dead's
                log.exception("keeping removed containers' series failed")
                self.collector_errors.labels("retention").inc()
        self.collections.inc()
        stats = CollectionStats(time.perf_counter() - started, timings, len(containers))
        self.last_stats = stats
        families.extend(self._agent_families(stats))
        body = b"".join([*render_chunks(families), generate_latest(self.registry)])  # one copy of the body
        return Collection(began, ctx.now, body, containers, reader)  # type: ignore[arg-type]

    @staticmethod
    def _agent_families(stats: CollectionStats) -> list[Family]:
        duration = Family("cgwatch_scrape_duration_seconds",
                          "Seconds the last collection of the whole host took.", "gauge")
        duration.add("", stats.duration_s)
        per = Family("cgwatch_collector_duration_seconds", "Seconds each collector took in the last collection.",
                     "gauge")
        success = Family("cgwatch_collector_success", "1 if the collector succeeded in the last collection.",
                         "gauge")
        for name, (seconds, ok) in stats.collectors.items():
            per.add(f'collector="{name}"', seconds)
            success.add(f'collector="{name}"', 1 if ok else 0)
        build = Family("cgwatch_build_info", "Constant 1, labelled with the cgwatch version.", "gauge")
        build.add(f'version="{__version__}"', 1)
        return [duration, per, success, build]

