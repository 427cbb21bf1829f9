"""From a request and the container's current limits to the complete target (no I/O).

Docker's and the kernel's bounds that depend on the host are checked here: CPUs against the
host's count, cpusets against the parent cgroup's CPUs, and the relations between fields
(reservation <= memory <= memory+swap). Usage is not: the service refuses memory below usage.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from ..errors import InvalidLimit
from ..model import Limits
from .request import LimitRequest, Mode, format_cpuset, parse_cpuset

DEFAULT_PERIOD_US = 100_000


@dataclass(frozen=True, slots=True)
class HostFacts:
    cpus: int                        # online CPUs on the host
    allowed_cpus: frozenset[int]     # the CPUs the container's parent cgroup may use


def resolve_target(request: LimitRequest, current: Limits, host: HostFacts) -> Limits:
    """The limits the kernel must hold after this request.

    PATCH starts from ``current`` and changes the fields sent; PUT and DELETE start from no
    limits at all (None everywhere: the writer puts the kernel's defaults back).
    Changing ``memory`` without ``memory_swap`` keeps the swap allowance (swap limit minus
    memory) as it was, where Docker would answer 409; clearing memory clears swap too.
    """
    f = request.fields
    base = current if request.mode is Mode.PATCH else Limits()
    t = replace(base)
    _cpu(t, f, base, host)
    if "cpu_shares" in f:
        t.cpu_shares = f["cpu_shares"]  # type: ignore[assignment]
    if "cpuset_cpus" in f:
        t.cpuset_cpus = _cpuset(f["cpuset_cpus"], host)  # type: ignore[arg-type]
    if "pids_limit" in f:
        t.pids_max = f["pids_limit"]  # type: ignore[assignment]
    _memory(t, f, base)
    return t


def _cpu(t: Limits, f: dict, base: Limits, host: HostFacts) -> None:
    if "cpus" in f:
        cpus: Decimal | None = f["cpus"]
        if cpus is None:
            t.cpu_quota_us, t.cpu_period_us = None, DEFAULT_PERIOD_US
            return
        if cpus > host.cpus:
            raise InvalidLimit("cpus", "max", f"cpus {cpus} is more than this host's {host.cpus} CPUs")
        t.cpu_period_us, t.cpu_quota_us = DEFAULT_PERIOD_US, int(cpus * DEFAULT_PERIOD_US)
        return
    if "cpu_period_us" in f:
        t.cpu_period_us = f["cpu_period_us"] if f["cpu_period_us"] is not None else DEFAULT_PERIOD_US
    if "cpu_quota_us" in f:
        t.cpu_quota_us = f["cpu_quota_us"]
    if t.cpu_quota_us is not None and t.cpu_quota_us > host.cpus * (t.cpu_period_us or DEFAULT_PERIOD_US):
        field = "cpu_quota_us" if "cpu_quota_us" in f else "cpu_period_us"
        raise InvalidLimit(field, "max", f"quota {t.cpu_quota_us} us per {t.cpu_period_us} us period is more "
                           f"than this host's {host.cpus} CPUs")


def _cpuset(value: str | None, host: HostFacts) -> str | None:
    if value is None:
        return None
    cpus = parse_cpuset(value)
    outside = cpus - host.allowed_cpus
    if outside:
        raise InvalidLimit("cpuset_cpus", "range",
                           f"CPU(s) {format_cpuset(frozenset(outside))} are not available to this container "
                           f"(its parent allows {format_cpuset(host.allowed_cpus)})")
    return format_cpuset(cpus)


def _memory(t: Limits, f: dict, base: Limits) -> None:
    if "memory" in f:
        t.memory_limit_bytes = f["memory"]
        if "memory_swap" not in f:
            t.memory_swap_limit_bytes = _kept_swap(base, t.memory_limit_bytes)
    if "memory_swap" in f:
        t.memory_swap_limit_bytes = f["memory_swap"]
    if "memory_reservation" in f:
        t.memory_reservation_bytes = f["memory_reservation"]
    mem, swap, res = t.memory_limit_bytes, t.memory_swap_limit_bytes, t.memory_reservation_bytes
    if swap is not None and mem is None:
        raise InvalidLimit("memory_swap", "combination",
                           "memory_swap needs a memory limit too (as Docker: set memory with memory_swap)")
    if swap is not None and mem is not None and swap < mem:
        raise InvalidLimit("memory_swap", "combination",
                           f"memory_swap ({swap}) is memory plus swap and cannot be below memory ({mem})")
    if res is not None and mem is not None and res > mem:
        raise InvalidLimit("memory_reservation", "combination",
                           f"memory_reservation ({res}) cannot be above memory ({mem})")


def _kept_swap(base: Limits, new_memory: int | None) -> int | None:
    if new_memory is None or base.memory_swap_limit_bytes is None or base.memory_limit_bytes is None:
        return None
    allowance = max(0, base.memory_swap_limit_bytes - base.memory_limit_bytes)
    return new_memory + allowance
