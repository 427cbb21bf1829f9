"""From a parsed request and the container's current limits to the complete target (no I/O).

The checks that need the host live here: CPUs against the host's count, a cpuset against the
CPUs the parent cgroup allows, and the relations between fields (reservation <= memory <=
memory + swap). Usage does not: memory below what the container uses is the service's 409.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from ..cgroup.writer import DEFAULT_PERIOD_US
from ..errors import InvalidLimit
from ..model import Limits
from .fields import MAX_BYTES, NANO, QUOTA_US
from .request import LimitRequest, Mode, format_cpuset, parse_cpuset


@dataclass(frozen=True, slots=True)
class HostFacts:
    cpus: int                        # online CPUs on the host
    allowed_cpus: frozenset[int]     # the CPUs the container's parent cgroup may use (its effective cpuset)


def resolve_target(request: LimitRequest, current: Limits, host: HostFacts) -> Limits:
    """The limits the kernel must hold after ``request``; ``current`` is left as it is.

    PATCH starts from ``current`` and changes only the fields sent. PUT and DELETE start from no
    limits: every field not sent is None (unlimited, or the kernel's default for cpu_shares and
    cpuset_cpus, which the writer puts back), except the CFS period, which is always 100000 us
    (the kernel's default) when nothing sets it. memory_high_bytes, which the API cannot set, is
    kept by PATCH and cleared by PUT and DELETE.

    Changing ``memory`` without ``memory_swap`` keeps the swap allowance (swap limit minus
    memory) as it was, so ``PATCH {"memory": "1g"}`` just works where Docker would answer 409
    ("update the memoryswap at the same time"); unlimited swap stays unlimited, and clearing
    memory clears the swap limit too (Docker has no swap limit without a memory limit).
    """
    f = request.fields
    base = current if request.mode is Mode.PATCH else Limits(cpu_period_us=DEFAULT_PERIOD_US)
    quota, period = _cpu_bandwidth(f, base, host)
    memory, swap = _memory_and_swap(f, base)
    reservation = f.get("memory_reservation", base.memory_reservation_bytes)
    _check_memory(f, memory, swap, reservation)
    return replace(base, cpu_quota_us=quota, cpu_period_us=period,
                   cpu_shares=f.get("cpu_shares", base.cpu_shares),
                   cpuset_cpus=_cpuset(f, base, host),
                   memory_limit_bytes=memory, memory_reservation_bytes=reservation,
                   memory_swap_limit_bytes=swap, pids_max=f.get("pids_limit", base.pids_max))


def _cpu_bandwidth(f: Mapping[str, Any], base: Limits, host: HostFacts) -> tuple[int | None, int | None]:
    """(quota, period) in us. A request that does not touch them keeps them, even if the host
    has lost CPUs since: that is not this request's doing."""
    if "cpus" in f:
        return _quota_for_cpus(f["cpus"], host), DEFAULT_PERIOD_US
    if not {"cpu_quota_us", "cpu_period_us"} & f.keys():
        return base.cpu_quota_us, base.cpu_period_us
    quota = f.get("cpu_quota_us", base.cpu_quota_us)
    period = f.get("cpu_period_us", base.cpu_period_us) or DEFAULT_PERIOD_US
    if quota is not None and quota > host.cpus * period:
        field = "cpu_quota_us" if "cpu_quota_us" in f else "cpu_period_us"
        raise InvalidLimit(field, "max", f"cpu_quota_us / cpu_period_us ({quota} / {period}) is more than "
                           f"this host's {host.cpus} CPUs; the quota can be at most {host.cpus * period} us")
    return quota, period


def _quota_for_cpus(cpus: Decimal | None, host: HostFacts) -> int | None:
    """Docker's --cpus as the kernel holds it: quota = NanoCPUs * period / 1e9 in integer
    arithmetic over a 100 ms period, as Docker's daemon converts it (daemon_unix.go)."""
    if cpus is None:
        return None
    if cpus > host.cpus:
        # Docker: "Range of CPUs is from 0.01 to N.00, as there are only N CPUs available".
        raise InvalidLimit("cpus", "max", f"cpus must be from 0.01 to {host.cpus}: this host has "
                           f"{host.cpus} CPUs")
    quota = int(cpus * NANO) * DEFAULT_PERIOD_US // NANO
    if quota < QUOTA_US[0]:  # parse_cpus already holds cpus >= 0.01; a hand-built request may not
        raise InvalidLimit("cpus", "min", "cpus must be at least 0.01 (1 ms of CPU per 100 ms)")
    return quota


def _cpuset(f: Mapping[str, Any], base: Limits, host: HostFacts) -> str | None:
    if "cpuset_cpus" not in f:
        return base.cpuset_cpus
    if f["cpuset_cpus"] is None:
        return None  # inherit the parent's CPUs
    cpus = parse_cpuset(f["cpuset_cpus"])
    missing = cpus - host.allowed_cpus
    if missing:
        # The kernel refuses these too (EINVAL), but only after earlier files are written.
        raise InvalidLimit("cpuset_cpus", "range", f"CPU(s) {format_cpuset(missing)} are not available to "
                           f"this container; its parent cgroup allows {format_cpuset(host.allowed_cpus)}",
                           unavailable=format_cpuset(missing))
    return format_cpuset(cpus)


def _memory_and_swap(f: Mapping[str, Any], base: Limits) -> tuple[int | None, int | None]:
    memory = f.get("memory", base.memory_limit_bytes)
    if "memory_swap" in f:
        return memory, f["memory_swap"]
    if "memory" in f:
        return memory, _kept_swap(base, memory)
    return memory, base.memory_swap_limit_bytes


def _kept_swap(base: Limits, memory: int | None) -> int | None:
    """The swap limit that gives the new memory limit the swap allowance ``base`` had."""
    if memory is None or base.memory_swap_limit_bytes is None or base.memory_limit_bytes is None:
        return None
    swap = memory + max(0, base.memory_swap_limit_bytes - base.memory_limit_bytes)
    return swap if swap < MAX_BYTES else None  # the kernel would read it as unlimited anyway


def _check_memory(f: Mapping[str, Any], memory: int | None, swap: int | None, reservation: int | None) -> None:
    """Docker's rules between the memory fields (verifyPlatformContainerResources, daemon_unix.go).
    The error names the field the client sent, so it points at what to change."""
    if swap is not None and memory is None:
        raise InvalidLimit("memory_swap", "combination", "memory_swap needs a memory limit: send memory "
                           "too (Docker: \"You should always set the Memory limit when using Memoryswap limit\")")
    if swap is not None and memory is not None and swap < memory:
        raise InvalidLimit(_sent(f, "memory_swap", "memory"), "combination",
                           f"memory_swap is memory plus swap, so it cannot be below memory: {swap} < {memory} "
                           "bytes (-1 means unlimited swap)")
    if reservation is not None and memory is not None and reservation > memory:
        raise InvalidLimit(_sent(f, "memory_reservation", "memory"), "combination",
                           f"memory_reservation cannot be above memory: {reservation} > {memory} bytes")


def _sent(f: Mapping[str, Any], first: str, other: str) -> str:
    return first if first in f else other
