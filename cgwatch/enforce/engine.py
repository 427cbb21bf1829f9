"""Keep every container at its desired limits: at birth, on a timer, after drift.

Desired limits come from, in order: an API override for the container (desired.py), then the
first matching policy rule. The reconcile loop compares desired with what the kernel holds (the
writer's plan: empty means no drift) and repairs through the limit service, the API's own path.
Enforcement calls the service; the service never calls back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily

from ..cgroup.base import CgroupReader
from ..cgroup.writer import CgroupWriter
from ..discovery.inventory import Container
from ..errors import CgwatchError
from ..limits.service import LimitService
from ..model import Limits
from .desired import ApiOverrides, Desired
from .policy import Policy, PolicyError, load_policy_file

log = logging.getLogger("cgwatch.enforce")

# A container whose limits keep being changed behind our back is repaired at most this often.
MAX_REPAIRS_PER_WINDOW = 5
REPAIR_WINDOW_S = 60.0
DESIRED_RESOURCES = ("cpu_quota_us", "cpu_period_us", "cpu_shares", "memory_limit_bytes",
                     "memory_reservation_bytes", "memory_swap_limit_bytes", "pids_max")


class Enforcer:
    def __init__(self, *, scan: Callable[[], list[Container]], limits: LimitService, reader: CgroupReader,
                 writer: CgroupWriter, overrides: ApiOverrides, policy_path: Path | None,
                 registry: CollectorRegistry):
        self._scan = scan
        self._limits = limits
        self._reader = reader
        self._writer = writer
        self.overrides = overrides
        self.store = overrides.store
        self.policy_path = policy_path
        self.policy = Policy()
        self.policy_error: str | None = None
        self._policy_mtime: float | None = None
        self._repairs: dict[str, deque[float]] = {}
        self._known_paths: set[str] | None = None
        self._last_targets: dict[str, tuple[Container, Limits]] = {}
        self.repairs_total = Counter("cgwatch_limit_drift_repairs", "Drift repairs made by the reconciler.",
                                     ["resource"], registry=registry)
        self.reload_errors = Counter("cgwatch_policy_reload_errors", "Policy files that failed to load.",
                                     registry=registry)
        self.policy_rules = Gauge("cgwatch_policy_rules", "Rules in the loaded policy.", registry=registry)
        registry.register(_DesiredCollector(self))
        if policy_path is not None:
            self.policy = load_policy_file(policy_path)  # a bad file at start is fatal: say so now
            self._policy_mtime = _mtime(policy_path)
            self.policy_rules.set(len(self.policy.rules))

    # -- policy ---------------------------------------------------------------------------
    def reload_policy(self, force: bool = False) -> bool:
        """Load the policy file again if it changed (or ``force``). A bad file keeps the old policy."""
        if self.policy_path is None:
            return False
        mtime = _mtime(self.policy_path)
        if not force and mtime == self._policy_mtime:
            return False
        self._policy_mtime = mtime
        try:
            policy = load_policy_file(self.policy_path)
        except PolicyError as exc:
            self.policy_error = str(exc)
            self.reload_errors.inc()
            log.error("policy not reloaded; keeping the previous one", extra={"error": str(exc)})
            return False
        self.policy, self.policy_error = policy, None
        self.policy_rules.set(len(policy.rules))
        log.info("policy loaded", extra={"file": str(self.policy_path), "rules": len(policy.rules)})
        return True

    # -- desired state ----------------------------------------------------------------------
    def desired_for(self, c: Container) -> Desired | None:
        record = self.overrides.record_for(c)
        if record is not None:
            return Desired("api", limits=Limits(**record["limits"]))
        rule = self.policy.rule_for(c)
        if rule is not None:
            return Desired("policy", rule=rule, request=rule.request)
        return None

    # -- reconcile --------------------------------------------------------------------------
    def _idle(self) -> bool:
        """Nothing to enforce: no policy rule and no stored desired state. Walking the hierarchy
        every second would then cost CPU for nothing (bench: ~10% of a core at 1000 cgroups)."""
        return not self.policy.rules and self.overrides.empty()

    async def reconcile_all(self) -> int:
        """One pass over every container; returns the number repaired. Changes a runtime missed
        while it was down are sent to it first (LimitService.push_pending)."""
        self.reload_policy()
        if len(self._limits.pending):
            await self._limits.push_pending()
        if self._idle():
            self._known_paths = None
            self._forget_gone(set())
            return 0
        containers = await asyncio.to_thread(self._scan)
        self._known_paths = {c.path for c in containers}
        self._forget_gone(self._known_paths)
        repaired = 0
        for c in containers:
            repaired += await self.reconcile(c, "timer")
        return repaired

    async def reconcile_new(self) -> int:
        """Containers that appeared since the last look get their limits now (birth)."""
        if self._idle():
            self._known_paths = None
            self._forget_gone(set())
            return 0
        containers = await asyncio.to_thread(self._scan)
        paths = {c.path for c in containers}
        known, self._known_paths = self._known_paths, paths
        self._forget_gone(paths)
        if known is None:
            return 0
        repaired = 0
        for c in containers:
            if c.path not in known:
                repaired += await self.reconcile(c, "birth")
        return repaired

    async def reconcile_id(self, container_id: str, reason: str) -> int:
        # Called for every Docker event, one after another: a walk of the whole hierarchy each
        # time, for nothing to enforce, delays the next event (and a container's name) behind it.
        if self._idle():
            return 0
        containers = await asyncio.to_thread(self._scan)
        return sum([await self.reconcile(c, reason) for c in containers if c.id == container_id])

    async def reconcile(self, c: Container, reason: str) -> int:
        desired = self.desired_for(c)
        if desired is None:
            self._last_targets.pop(c.path, None)
            return 0
        try:
            drift, target = await self._drift(c, desired)
        except CgwatchError as exc:
            log.warning("cannot evaluate desired limits", extra={"container": c.id, "error": exc.message})
            return 0
        self._last_targets[c.path] = (c, target)
        if not drift or not self._may_repair(c.path):
            return 0
        try:
            repaired = await self._limits.repair(c, target, reason=reason, source=desired.source,
                                                 rule=desired.rule.name if desired.rule else None,
                                                 recheck=lambda: self._drifted_target(c))
        except CgwatchError as exc:
            log.warning("repair failed", extra={"container": c.id, "error": exc.message})
            return 0
        if not repaired:
            return 0
        for resource in drift:
            self.repairs_total.labels(resource).inc()
        return 1

    async def _drifted_target(self, c: Container) -> Limits | None:
        """The target ``c`` is held to now if the kernel still differs from it, else None."""
        desired = self.desired_for(c)
        if desired is None:
            return None
        drift, target = await self._drift(c, desired)
        return target if drift else None

    async def _drift(self, c: Container, desired: Desired) -> tuple[list[str], Limits]:
        """What differs between ``desired`` and the kernel: (resources, target). No writes."""
        current = await asyncio.to_thread(self._reader.limits, c.path)
        target = desired.target(current, await self._limits.host_facts(c))
        plan = await asyncio.to_thread(self._writer.plan, c.path, target, current)
        return sorted({file.name.split(".", 1)[0] for file, _ in plan}), target

    def _forget_gone(self, present: set[str]) -> None:
        """Drop what is kept per cgroup for cgroups no longer on the host: their desired-limit
        series would outlive them, and with container churn both maps would grow without end."""
        for held in (self._last_targets, self._repairs):
            for path in held.keys() - present:
                del held[path]

    def _may_repair(self, path: str) -> bool:
        now = time.monotonic()
        window = self._repairs.setdefault(path, deque())
        while window and now - window[0] > REPAIR_WINDOW_S:
            window.popleft()
        if len(window) >= MAX_REPAIRS_PER_WINDOW:
            log.warning("repair rate limit reached; someone keeps changing this container's limits",
                        extra={"cgroup": path})
            return False
        window.append(now)
        return True

    def governing(self, containers: list[Container]) -> list[dict[str, Any]]:
        out = []
        for c in containers:
            d = self.desired_for(c)
            if d is not None:
                out.append({"id": c.id, "name": c.display_name, "source": d.source,
                            "rule": d.rule.name if d.rule else None})
        return out


class _DesiredCollector:
    """cgwatch_limit_desired{id,name,resource}: what the reconciler holds each container to."""

    def __init__(self, enforcer: Enforcer):
        self._enforcer = enforcer

    def collect(self):  # type: ignore[no-untyped-def]
        family = GaugeMetricFamily("cgwatch_limit_desired",
                                   "Desired limit per container and resource (absent: unlimited or not managed).",
                                   labels=["id", "name", "resource"])
        for path, (c, target) in sorted(self._enforcer._last_targets.items()):
            for resource in DESIRED_RESOURCES:
                value = getattr(target, resource)
                if value is not None:
                    family.add_metric([path, c.name, resource], value)
        yield family


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None
