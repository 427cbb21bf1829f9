"""What of a target the Docker Engine API can say, as a ``POST /containers/{id}/update`` body.

Docker is the one writer for its containers where it can be: then ``docker inspect`` agrees and
``docker restart`` keeps the limit. Checked against dockerd 20.10 (API 1.41):
  - 0 means "no change" for NanoCpus, Memory, MemoryReservation, CpuShares and PidsLimit, and
    "" for CpusetCpus; -1 clears CpuQuota, MemorySwap, MemoryReservation and PidsLimit.
  - A memory limit cannot be removed (Memory -1 is "Minimum memory limit allowed is 6MB").
  - NanoCpus and CpuQuota/CpuPeriod exclude each other, per container, for its lifetime.
Whatever Docker cannot say is written to cgroupfs afterwards and named in ``unexpressible``;
``docker inspect`` then still shows the old value, and ``docker restart`` restores it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...model import Limits
from ...cgroup.writer import DEFAULT_PERIOD_US, DEFAULT_SHARES

NANO = 1_000_000_000


@dataclass(slots=True)
class DockerPlan:
    body: dict[str, Any] = field(default_factory=dict)
    unexpressible: list[str] = field(default_factory=list)


def plan_update(target: Limits, current: Limits, host_config: Mapping[str, Any],
                all_cpus: str | None) -> DockerPlan:
    """The update body for the fields that change; the rest is left to cgroupfs."""
    plan = DockerPlan()
    _cpu(plan, target, current, host_config)
    _memory(plan, target, current)
    if target.cpu_shares != current.cpu_shares:
        plan.body["CpuShares"] = target.cpu_shares or DEFAULT_SHARES
    if target.cpuset_cpus != current.cpuset_cpus:
        # "" would mean "no change": clearing is spelled as every CPU the parent allows.
        cpus = target.cpuset_cpus or all_cpus
        if cpus:
            plan.body["CpusetCpus"] = cpus
    if target.pids_max != current.pids_max:
        plan.body["PidsLimit"] = target.pids_max if target.pids_max is not None else -1
    return plan


def _cpu(plan: DockerPlan, target: Limits, current: Limits, hc: Mapping[str, Any]) -> None:
    period = target.cpu_period_us or DEFAULT_PERIOD_US
    if (target.cpu_quota_us, period) == (current.cpu_quota_us, current.cpu_period_us):
        return
    uses_nano = bool(hc.get("NanoCpus"))
    uses_quota = bool(hc.get("CpuQuota")) or bool(hc.get("CpuPeriod"))
    if not uses_quota and period == DEFAULT_PERIOD_US:
        if target.cpu_quota_us is not None:
            plan.body["NanoCpus"] = target.cpu_quota_us * (NANO // DEFAULT_PERIOD_US)
            return
        if uses_nano:
            plan.unexpressible.append("cpus: Docker cannot remove NanoCpus once set")
            return
    if uses_nano:
        plan.unexpressible.append("cpu_period_us: Docker cannot set a period on a container started with --cpus")
        return
    plan.body["CpuPeriod"] = period
    plan.body["CpuQuota"] = target.cpu_quota_us if target.cpu_quota_us is not None else -1


def _memory(plan: DockerPlan, target: Limits, current: Limits) -> None:
    mem_changed = target.memory_limit_bytes != current.memory_limit_bytes
    swap_changed = target.memory_swap_limit_bytes != current.memory_swap_limit_bytes
    if mem_changed and target.memory_limit_bytes is None:
        plan.unexpressible.append("memory: Docker cannot remove a memory limit once set")
    elif mem_changed or swap_changed:
        if target.memory_limit_bytes is not None:
            plan.body["Memory"] = target.memory_limit_bytes
        # Always sent with Memory: raising Memory above the current MemorySwap alone is a 409.
        plan.body["MemorySwap"] = (target.memory_swap_limit_bytes
                                   if target.memory_swap_limit_bytes is not None else -1)
    if target.memory_reservation_bytes != current.memory_reservation_bytes:
        plan.body["MemoryReservation"] = (target.memory_reservation_bytes
                                          if target.memory_reservation_bytes is not None else -1)
