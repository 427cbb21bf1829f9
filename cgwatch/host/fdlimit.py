"""The process's file descriptors: the soft RLIMIT_NOFILE raised once, and a budget shared by the
parts that keep descriptors open for long (the OOM watcher's registrations, the kept-open cgroup
files of host/keptfiles.py).

The kept files only make reads cheaper, while a refused OOM registration loses a count: so the
kept files draw on the budget without taking what others need, and give descriptors back
(``shed``) when another part asks for more than is free.
"""

from __future__ import annotations

import logging
import resource
import threading
from typing import Protocol

log = logging.getLogger("cgwatch.host.fdlimit")

# Never handed out: the listeners' connections (server/connguard.py: at most 2 x 1200), the audit
# log, the runtimes' sockets, files opened and closed while reading (1024).
RESERVED_FDS = 2 * 1200 + 1024


def raise_nofile() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one (no privilege needed); returns the soft limit.

    As Go does for every program since 1.19 (go.dev/issue/46279): the soft limit of 1024 exists
    for select(2), which nothing here uses. The hard limit is the deployment's (``LimitNOFILE=``
    in the systemd unit, ``--ulimit nofile=`` or the DaemonSet's runtime default)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit still stops at fs.nr_open (1048576 by default): ask for that.
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY:
        return target
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open files limit", extra={"soft": soft, "hard": hard, "error": str(exc)})
    return soft


_PROCESS_BUDGET: FdBudget | None = None
_PROCESS_LOCK = threading.Lock()


class Shedder(Protocol):
    def shed(self, n: int) -> int:
        """Close up to ``n`` descriptors kept only for speed (returning them to the budget); how many."""


class FdBudget:
    """Descriptors that parts keep open, counted against ``total``. Thread-safe."""

    def __init__(self, total: int):
        self.total = max(0, total)
        self._used = 0
        self._lock = threading.Lock()
        self._shedders: list[Shedder] = []

    @classmethod
    def for_process(cls, reserved: int = RESERVED_FDS) -> FdBudget:
        """The process's one budget: the soft limit (raised to the hard one) less ``reserved``.

        One per process, not per agent: descriptors are counted per process, and a process that
        runs several agents (the test suite, bench/trace_opens.py) ran out of them (EMFILE) when
        each believed it had the whole limit to keep open."""
        global _PROCESS_BUDGET
        with _PROCESS_LOCK:
            if _PROCESS_BUDGET is None:
                _PROCESS_BUDGET = cls(raise_nofile() - reserved)
            return _PROCESS_BUDGET

    @property
    def used(self) -> int:
        return self._used

    def add_shedder(self, shedder: Shedder) -> None:
        with self._lock:
            self._shedders.append(shedder)

    def remove_shedder(self, shedder: Shedder) -> None:
        with self._lock:
            if shedder in self._shedders:
                self._shedders.remove(shedder)

    def take(self, n: int, *, may_shed: bool = True) -> bool:
        """Count ``n`` more descriptors; False (nothing counted) when they do not fit. With
        ``may_shed``, what is kept only for speed is closed to make room first."""
        with self._lock:
            if self._used + n <= self.total:
                self._used += n
                return True
        if may_shed:
            with self._lock:
                shedders = list(self._shedders)
            for shedder in shedders:
                shedder.shed(n)  # gives back through give(), outside our lock
            with self._lock:
                if self._used + n <= self.total:
                    self._used += n
                    return True
        return False

    def give(self, n: int) -> None:
        with self._lock:
            self._used = max(0, self._used - n)
