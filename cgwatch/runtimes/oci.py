"""What of a target an OCI runtime can say: the LinuxResources of `runc update --resources`
(runtime-spec config-linux.md "Control groups"), as Podman's update API and containerd's task
update both pass it to runc (runc's update.go). Pure.

runc's rules, checked here against runc 1.1.5 on cgroup v1 through Podman 4.3.1 and containerd
1.6.20 (tests/real/test_podman.py and test_containerd.py keep the main paths honest):
  - 0 and "" mean "no change" for every field; -1 clears a quota, a memory or swap limit, a
    reservation or a pids limit (a memory limit of -1 alone also clears memory+swap).
  - quota and period are written one after the other, period first, with no rollback: both are
    always sent (runc keeps the old period when the quota comes alone), and a failure is rolled
    back by the limit service.
  - ``memory.swap`` is memory plus swap, as Docker's MemorySwap. Raising the memory limit above
    the current memory+swap limit without sending swap fails (runc writes the memory file first
    and the kernel refuses): swap goes with every memory change wherever a swap limit is. Without
    one before or after it is left out: on a kernel without swap accounting (no
    memory.memsw.limit_in_bytes) runc fails writing it, even -1, and on v2 runc refuses a swap
    value without a memory limit.
  - shares 1024 and every CPU the parent allows are how "no shares" and "no cpuset" are spelled.
v2's memory.high has no LinuxResources field (only the free-form `unified` map, unchecked here):
it is left to cgroupfs and named in ``unexpressible``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..cgroup.writer import DEFAULT_PERIOD_US, DEFAULT_SHARES
from ..model import Limits

UNLIMITED = -1


@dataclass(slots=True)
class ResourcesPlan:
    resources: dict[str, Any] = field(default_factory=dict)   # OCI LinuxResources, as JSON
    unexpressible: list[str] = field(default_factory=list)


def plan_resources(target: Limits, current: Limits, allowed_cpus: str | None, *, runtime: str) -> ResourcesPlan:
    """The LinuxResources for the fields of ``target`` that differ from ``current``; ``runtime``
    names the API in the note on what it cannot say."""
    plan = ResourcesPlan()
    cpu = _cpu(target, current, allowed_cpus)
    memory = _memory(target, current)
    if cpu:
        plan.resources["cpu"] = cpu
    if memory:
        plan.resources["memory"] = memory
    if target.pids_max != current.pids_max:
        plan.resources["pids"] = {"limit": _or_unlimited(target.pids_max)}
    if target.memory_high_bytes != current.memory_high_bytes:
        plan.unexpressible.append(f"memory_high: {runtime}'s update API has no field for it: "
                                  "written through cgroupfs")
    return plan


def _or_unlimited(value: int | None) -> int:
    return UNLIMITED if value is None else value


def _cpu(target: Limits, current: Limits, allowed_cpus: str | None) -> dict[str, Any]:
    cpu: dict[str, Any] = {}
    period = target.cpu_period_us or DEFAULT_PERIOD_US
    if (target.cpu_quota_us, period) != (current.cpu_quota_us, current.cpu_period_us):
        cpu["quota"] = _or_unlimited(target.cpu_quota_us)
        cpu["period"] = period
    if target.cpu_shares != current.cpu_shares:
        cpu["shares"] = target.cpu_shares or DEFAULT_SHARES      # 0 would mean "no change"
    if target.cpuset_cpus != current.cpuset_cpus:
        cpus = target.cpuset_cpus or allowed_cpus                # "" would mean "no change"
        if cpus:
            cpu["cpus"] = cpus
    return cpu


def _memory(target: Limits, current: Limits) -> dict[str, Any]:
    memory: dict[str, Any] = {}
    if (target.memory_limit_bytes != current.memory_limit_bytes
            or target.memory_swap_limit_bytes != current.memory_swap_limit_bytes):
        memory["limit"] = _or_unlimited(target.memory_limit_bytes)
        if target.memory_swap_limit_bytes is not None or current.memory_swap_limit_bytes is not None:
            memory["swap"] = _or_unlimited(target.memory_swap_limit_bytes)
    if target.memory_reservation_bytes != current.memory_reservation_bytes:
        memory["reservation"] = _or_unlimited(target.memory_reservation_bytes)
    return memory
