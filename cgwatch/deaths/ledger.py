"""One monotonic OOM-kill count per container cgroup, merged from the kernel's counter and OOM events.

The kernel's own counter (v1 memory.oom_control, v2 memory.events ``oom_kill``) is the truth while
the cgroup can be read: the ledger keeps the highest value read, and never adds to it while the
cgroup lives. What the counter cannot show is the kill that ends a container: its cgroup is removed
a few milliseconds after the kill (REAL-PARTS.md), often before anyone reads the counter again. The
events say an OOM happened (the kernel's notification, which comes *before* the kill; the runtime's
``oom`` event, which comes after it): one that no later read of the counter confirmed, in a cgroup
that then went away, is one kill more. At most one: the kill that ends a container is one kill,
and every earlier one had the cgroup still there to be counted.

Never double-counted: an event is the same OOM as a rise of the counter seen shortly before it
(``slack``: a few ms for the kernel's notification, seconds for a runtime's, whose pipeline
shim -> daemon -> event stream is slower), and an event the counter has not confirmed within
``SETTLE_S`` while the cgroup lived was an OOM without a kill (v1 ``oom_kill_disable``, a victim
already exiting) and is dropped. After a kill the cgroup stays at its limit until the victim's memory
is freed, and every charge meanwhile is another OOM the kernel announces and ends without a kill (the
victim is already exiting, mm/oom_kill.c ``oom_evaluate_task``): traced here with dockerd, a
notification every ~0.3 ms after the kill, and the cgroup gone ~90 ms after it (the victim was the
container's main process). Each of them, ``EXITING_GAP_S`` or less after the last, is the counted
kill's OOM still, not a kill the counter missed.

Pure: time is passed in (time.monotonic() seconds); a lock makes each record safe to update from
the watcher's thread, the collection's thread and the event loop at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

# An OOM the kernel announced has its kill counted within microseconds (mm/oom_kill.c counts it as
# it sends SIGKILL); a read this long after the event that shows no rise means no kill came of it.
SETTLE_S = 1.0
# How long before an event a rise of the counter may be that event's own kill.
KERNEL_SLACK_S = 0.05
RUNTIME_SLACK_S = 5.0
# Kernel notifications this close together after a counted kill are that OOM going on while its
# victim exits. Wider than KERNEL_SLACK_S: a loaded host stretches the victim's exit.
EXITING_GAP_S = 0.5


@dataclass(slots=True)
class OomRecord:
    """One cgroup generation's OOM kills: a cgroup made again at the same path gets a new record."""

    path: str
    runtime: str = ""
    container_id: str = ""
    kernel: int | None = None          # the highest oom_kill read from this cgroup
    # When a read first showed the counter higher, moved on by the kernel notifications of that
    # same OOM (EXITING_GAP_S apart) that came after it.
    counted_until: float | None = None
    pending_since: float | None = None  # an OOM event no read has confirmed yet
    extra: int = 0                     # kills added after the cgroup went (0 or 1)
    gone: bool = False
    seen_at: float | None = None       # epoch seconds of the last read that found the cgroup
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def read(self, value: int, now: float, wall: float | None = None) -> None:
        """The kernel's counter read ``value`` at ``now``."""
        with self._lock:
            if wall is not None:
                self.seen_at = wall
            if self.kernel is None or value > self.kernel:
                if self.kernel is not None:
                    self.counted_until = now
                    self.pending_since = None  # the kill the event announced is counted
                self.kernel = value
            elif self.pending_since is not None and now - self.pending_since >= SETTLE_S:
                self.pending_since = None      # the cgroup lived on and nothing was killed

    def event(self, now: float, slack: float) -> None:
        """An OOM was announced at about ``now`` (up to ``slack`` seconds later than it happened);
        ``slack`` KERNEL_SLACK_S is the kernel's own notification."""
        with self._lock:
            if self.counted_until is not None:
                kernels = slack <= KERNEL_SLACK_S
                if self.counted_until >= now - (EXITING_GAP_S if kernels else slack):
                    if kernels:                # its OOM goes on while the victim exits
                        self.counted_until = max(self.counted_until, now)
                    return                     # that kill was counted already
            if self.gone:
                self.extra = max(self.extra, 1)  # announced late: the counter never showed it
            elif self.pending_since is None:
                self.pending_since = now

    def died(self) -> None:
        """The cgroup is gone: an OOM still unconfirmed is the kill that ended it."""
        with self._lock:
            if not self.gone:
                self.gone = True
                if self.pending_since is not None:
                    self.extra = 1
                    self.pending_since = None

    @property
    def pending(self) -> bool:
        return self.pending_since is not None

    def total(self, exported: float | None = None) -> int | None:
        """The count to export: the kernel's (or ``exported``, the last value exported, if higher)
        plus a kill the counter could no longer show. None when nothing is known."""
        with self._lock:
            base = self.kernel
            if exported is not None:
                base = max(base or 0, int(exported))
            if base is None:
                return self.extra or None
            return base + self.extra


class OomLedger:
    """The current record of each watched cgroup path, and of each runtime's container ID."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_path: dict[str, OomRecord] = {}
        self._by_id: dict[tuple[str, str], OomRecord] = {}

    def open(self, path: str, runtime: str = "", container_id: str = "") -> OomRecord:
        """A new record for the cgroup now at ``path`` (replacing an earlier generation's)."""
        rec = OomRecord(path, runtime, container_id)
        with self._lock:
            self._by_path[path] = rec
            if container_id:
                self._by_id[(runtime, container_id)] = rec
        return rec

    def get(self, path: str) -> OomRecord | None:
        return self._by_path.get(path)

    def runtime_event(self, runtime: str, container_id: str, now: float) -> bool:
        """A runtime said its container had an OOM; False when no record is that container's."""
        rec = self._by_id.get((runtime, container_id))
        if rec is None:
            return False
        rec.event(now, RUNTIME_SLACK_S)
        return True

    def forget(self, rec: OomRecord) -> None:
        """Drop ``rec`` if it is still the current one (a newer generation stays)."""
        with self._lock:
            if self._by_path.get(rec.path) is rec:
                del self._by_path[rec.path]
            key = (rec.runtime, rec.container_id)
            if self._by_id.get(key) is rec:
                del self._by_id[key]

    def __len__(self) -> int:
        return len(self._by_path)
