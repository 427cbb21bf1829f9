"""Waits for the kernel's OOM notifications of container cgroups, in one thread, and keeps their
OomRecords up to date: the moment of an OOM kill is seen before the cgroup can go.

One epoll descriptor holds every registration (kernel.py: v1 eventfd, v2 memory.events). On a
wake the watcher reads the kernel's counter at once and again a few ms later (the v1 notification
comes before the kill is counted), until the kill shows or the OOM settles without one. On v2,
where a cgroup's removal wakes nobody, every ``SWEEP_S`` it reads every registration (a slice
every ``SWEEP_STEP_S``, so the lock and the GIL are never held for long): a cgroup removed
without a wake is closed, so the cgroup made next at that path is registered afresh
(``closed()``). On v1 the removal signals the eventfd, so nothing is swept; with no reread due
and nothing to sweep the thread sleeps in epoll_wait without a timeout: an idle watcher costs
nothing.

Which cgroups: containers only (the keeper asks; keeper.WATCHED_RUNTIMES). A container's cgroup is
removed by its runtime when its main process dies, which is when the kernel's count goes with it.
Systemd units and plain cgroups keep their kernel count while they live; they number in the
hundreds on a systemd host, and each registration costs file descriptors (two on v1, one on v2).
So registrations are bounded (``max_watched``, and what RLIMIT_NOFILE leaves after a reserve for
sockets and reads), and the soft RLIMIT_NOFILE is raised to the hard one at start.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..host.fdlimit import FdBudget, raise_nofile
from ..host.layout import CgroupLayout
from .kernel import Gone, Registration, V1Registration, V2Registration, on_cgroupfs
from .ledger import KERNEL_SLACK_S, RUNTIME_SLACK_S, SETTLE_S, OomRecord

log = logging.getLogger("cgwatch.deaths")

MAX_WATCHED = 4096
RESERVED_FDS = 1024        # left for sockets, cgroup reads, the runtimes' connections
SWEEP_S = 5.0
SWEEP_STEP_S = 0.25
# Reads after a wake, in seconds after it: the kill is counted microseconds after the v1
# notification, the process exits, and a runtime removes the cgroup within tens of ms.
REREADS_S = (0.002, 0.01, 0.05, 0.2, SETTLE_S + 0.05)
# v1: after a cgroup is found gone, wait this long for the eventfd's last signal (the one the
# kernel sends when it removes the event, after the rmdir: measured ~12 ms here) before counting.
GONE_GRACE_S = 1.0


@dataclass(eq=False)
class _Watch:
    record: OomRecord
    reg: Registration
    last_oom: int | None = None        # v2's "oom" as last read
    gone_at: float | None = None       # v1: when the cgroup was found gone
    gone_signals: int = 0              # v1: signals since then (one is the removal's own)
    rereads_until: float = 0.0         # the last reread already scheduled
    closed: bool = False


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    watch: _Watch = field(compare=False)
    finish: bool = field(default=False, compare=False)


class OomWatcher:
    def __init__(self, layout: CgroupLayout, max_watched: int = MAX_WATCHED,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 budget: FdBudget | None = None):
        """``budget``: the process's descriptors, shared with the kept-open cgroup files (which give
        theirs back when a registration needs them)."""
        self._budget = budget
        if layout.is_v2:
            self._root, self._kind = layout.unified, V2Registration
        else:
            self._root, self._kind = layout.v1.get("memory"), V1Registration
        self._max = max_watched
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._watches: dict[str, _Watch] = {}
        self._by_fd: dict[int, _Watch] = {}
        self._due: list[_Due] = []
        self._seq = itertools.count()
        self._closed_paths: deque[str] = deque()  # append and popleft are atomic: no lock to drain
        self._sweep: deque[_Watch] = deque()
        self._epoll: select.epoll | None = None
        self._wake = -1
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.limit = 0                 # registrations allowed (after start)
        self.refused = 0               # registrations not made: the bound, or the kernel said no

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._root is None or not on_cgroupfs(str(self._root)):
            log.warning("no memory cgroup hierarchy: OOM kills are counted only while cgroups live",
                        extra={"hierarchy": str(self._root)})
            return
        self.limit = min(self._max, max(0, raise_nofile() - RESERVED_FDS) // self._kind.fds_per_registration)
        self._epoll = select.epoll()
        self._wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._epoll.register(self._wake, select.EPOLLIN)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="cgwatch-oom-watcher", daemon=True)
        self._thread.start()
        log.info("watching container cgroups for OOM kills", extra={"max_watched": self.limit})

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping = True
        os.eventfd_write(self._wake, 1)
        thread.join()
        with self._lock:
            for w in list(self._watches.values()):
                self._close(w)
            self._watches.clear()
        assert self._epoll is not None
        self._epoll.close()
        os.close(self._wake)

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    # -- registrations (any thread) ---------------------------------------------------------------
    def watch(self, record: OomRecord) -> bool:
        """Register for the OOM notifications of the cgroup at ``record.path`` (the cgroup there now)
        and read its counter into ``record``. False when it cannot be (gone, bound, refused)."""
        if self._thread is None or self._root is None:
            return False
        with self._lock:
            old = self._watches.get(record.path)
            if old is not None and old.record is record:
                return True
            fds = self._kind.fds_per_registration
            if len(self._watches) >= self.limit or self._budget is not None and not self._budget.take(fds):
                self.refused += 1
                return False
            try:
                reg = self._kind(f"{self._root}{record.path.rstrip('/')}")
            except OSError as exc:
                self._give(fds)
                self.refused += 1
                log.debug("cannot watch a cgroup for OOM kills", extra={"cgroup": record.path, "error": str(exc)})
                return False
            if old is not None:
                self._close(old, report=False)
            w = _Watch(record, reg)
            try:
                self._observe(w, self._clock(), announced=False)
            except Gone:
                reg.close()
                self._give(fds)
                return False
            self._watches[record.path] = w
            self._by_fd[reg.fileno()] = w
            assert self._epoll is not None
            self._epoll.register(reg.fileno(), reg.events)
            if not self._kind.removal_wakes and len(self._watches) == 1:
                os.eventfd_write(self._wake, 1)  # the thread may sleep without a timeout: sweeps begin
            return True

    def watching(self, path: str) -> bool:
        return path in self._watches

    def closed(self) -> list[str]:
        """Paths whose registration ended because its cgroup went, since the last call."""
        out = []
        while self._closed_paths:
            out.append(self._closed_paths.popleft())
        return out

    def __len__(self) -> int:
        return len(self._watches)

    # -- the thread -------------------------------------------------------------------------------
    def _run(self) -> None:
        assert self._epoll is not None
        next_sweep = self._clock() + SWEEP_STEP_S
        while not self._stopping:
            now = self._clock()
            sweeping = not self._kind.removal_wakes and bool(self._watches)
            if not sweeping:
                next_sweep = math.inf
            elif next_sweep == math.inf:
                next_sweep = now + SWEEP_STEP_S  # the first registration since the last was closed
            until = min([next_sweep] + ([self._due[0].at] if self._due else []))
            try:
                events = self._epoll.poll(-1 if until == math.inf else max(0.0, until - now))
            except InterruptedError:
                continue
            with self._lock:
                now = self._clock()
                for fd, _ in events:
                    if fd == self._wake:
                        os.eventfd_read(self._wake)
                        continue
                    w = self._by_fd.get(fd)
                    if w is not None:
                        self._guarded(self._woken, w, now)
                while self._due and self._due[0].at <= now:
                    due = heapq.heappop(self._due)
                    if not due.watch.closed:
                        self._guarded(self._finish if due.finish else self._reread, due.watch, now)
                if now >= next_sweep:
                    self._sweep_step(now)
                    next_sweep = now + SWEEP_STEP_S

    def _sweep_step(self, now: float) -> None:
        if not self._sweep:
            self._sweep.extend(self._watches.values())
        for _ in range(math.ceil(len(self._watches) * SWEEP_STEP_S / SWEEP_S)):
            if not self._sweep:
                break
            w = self._sweep.popleft()
            if not w.closed and w.gone_at is None:
                self._guarded(self._reread, w, now)

    def _guarded(self, step: Callable[[_Watch, float], None], w: _Watch, now: float) -> None:
        try:
            step(w, now)
        except Exception as exc:  # one cgroup's surprise must not end the watcher
            log.exception("OOM watcher step failed", extra={"cgroup": w.record.path, "error": repr(exc)})

    def _woken(self, w: _Watch, now: float) -> None:
        signals = w.reg.signals()
        if w.gone_at is not None:
            w.gone_signals += signals
            return
        try:
            self._observe(w, now, announced=bool(signals))
        except Gone:
            self._gone(w, now, signals)
            return
        # A cgroup at its limit wakes us up to 50 times a second (v2 "max"): one set of rereads at a time.
        if w.record.pending and now >= w.rereads_until:
            for delay in REREADS_S:
                heapq.heappush(self._due, _Due(now + delay, next(self._seq), w))
            w.rereads_until = now + REREADS_S[-1]

    def _reread(self, w: _Watch, now: float) -> None:
        if w.gone_at is not None:
            return
        try:
            self._observe(w, now, announced=False)
        except Gone:
            self._gone(w, now, 0)

    def _observe(self, w: _Watch, now: float, announced: bool) -> None:
        """Read the counter; ``announced``: a v1 wake while the cgroup is there is an OOM's
        notification (its removal is signalled only after the rmdir). v2's ``oom`` says it."""
        ooms, kills = w.reg.read()
        if ooms is not None:
            announced = w.last_oom is not None and ooms > w.last_oom
            w.last_oom = ooms
        if announced:
            w.record.event(now, KERNEL_SLACK_S)
        w.record.read(kills, now, self._wall())

    def _gone(self, w: _Watch, now: float, signals: int) -> None:
        if isinstance(w.reg, V2Registration):
            self._close(w)  # v2 signals nothing more: what was read is all there is
            return
        w.gone_at, w.gone_signals = now, signals
        heapq.heappush(self._due, _Due(now + GONE_GRACE_S, next(self._seq), w, finish=True))

    def _finish(self, w: _Watch, now: float) -> None:
        """v1, a grace after the cgroup went: every signal but the removal's was an OOM's."""
        if w.gone_signals > 1:
            # When it came is not known: it was read after the cgroup had gone.
            assert w.gone_at is not None
            w.record.event(w.gone_at, RUNTIME_SLACK_S)
        self._close(w)

    def _give(self, fds: int) -> None:
        if self._budget is not None:
            self._budget.give(fds)

    def _close(self, w: _Watch, report: bool = True) -> None:
        if w.closed:
            return
        w.closed = True
        self._by_fd.pop(w.reg.fileno(), None)
        w.reg.close()  # closing also takes it out of the epoll set
        self._give(self._kind.fds_per_registration)
        if self._watches.get(w.record.path) is w:
            del self._watches[w.record.path]
            if report:
                self._closed_paths.append(w.record.path)
