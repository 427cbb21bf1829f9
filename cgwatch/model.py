"""What cgwatch knows about one cgroup, independent of the kernel interface it came from.

Every field is in the unit its name says; ``None`` means "no data" for usage and "unlimited"
for limits (never -1 or the kernel's large sentinel values).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class CpuStats:
    usage_ns: int | None = None
    user_ns: int | None = None
    system_ns: int | None = None
    periods: int | None = None
    throttled_periods: int | None = None
    throttled_ns: int | None = None


@dataclass(slots=True)
class MemoryStats:
    usage_bytes: int | None = None
    max_usage_bytes: int | None = None
    working_set_bytes: int | None = None
    rss_bytes: int | None = None
    cache_bytes: int | None = None
    swap_bytes: int | None = None
    mapped_file_bytes: int | None = None
    failcnt: int | None = None
    # The kernel's own count of OOM kills in this cgroup (v2 memory.events, v1 memory.oom_control).
    oom_kills: int | None = None
    # Page faults (memory.stat pgfault/pgmajfault), cAdvisor's container_memory_failures_total:
    # the cgroup's own on v1 ("container" scope) and its subtree's (v1 total_*, "hierarchy").
    # v2's memory.stat is hierarchical already, so both scopes hold the same v2 numbers.
    pgfault: int | None = None
    pgmajfault: int | None = None
    hierarchy_pgfault: int | None = None
    hierarchy_pgmajfault: int | None = None


@dataclass(slots=True)
class Limits:
    """Limits as the kernel holds them now. Docker's vocabulary; None = unlimited/not set."""

    cpu_quota_us: int | None = None
    cpu_period_us: int | None = None
    cpu_shares: int | None = None
    cpuset_cpus: str | None = None
    memory_limit_bytes: int | None = None
    # v1 memory.soft_limit_in_bytes, v2 memory.low: what Docker calls --memory-reservation.
    memory_reservation_bytes: int | None = None
    # v2 memory.high (no v1 equivalent).
    memory_high_bytes: int | None = None
    # Docker's --memory-swap meaning: memory plus swap (v1 memsw limit; v2 memory.max + memory.swap.max).
    memory_swap_limit_bytes: int | None = None
    pids_max: int | None = None

    @property
    def cpus(self) -> float | None:
        """The limit as Docker's ``--cpus`` (quota / period)."""
        if self.cpu_quota_us is None or not self.cpu_period_us:
            return None
        return self.cpu_quota_us / self.cpu_period_us


@dataclass(slots=True)
class Pressure:
    """PSI totals (Documentation/accounting/psi.rst): stall time in microseconds."""

    some_us: int | None = None
    full_us: int | None = None


@dataclass(slots=True)
class IoDevice:
    major: int
    minor: int
    read_bytes: int = 0
    write_bytes: int = 0
    reads: int = 0
    writes: int = 0

    @property
    def device(self) -> str:
        return f"{self.major}:{self.minor}"


@dataclass(slots=True)
class NetDev:
    """One interface's counters from /proc/<pid>/net/dev."""

    interface: str
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int


@dataclass(slots=True)
class Tasks:
    processes: int | None = None
    threads: int | None = None
    pids_current: int | None = None

