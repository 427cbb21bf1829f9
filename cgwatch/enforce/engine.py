"""Keep every container at its desired limits: at birth, on a timer, after drift.

Desired limits come from, in order: an API override for the container (desired.py), then the
first matching policy rule. The reconcile loop compares desired with what the kernel holds (the
writer's plan: empty means no drift) and repairs through the limit service, the API's own path.
Enforcement calls the service; the service never calls back.

A birth is not drift. The first application to a cgroup created while the agent runs (seen by
births.py at its mkdir, by a runtime's start event or by the birth scan) is counted in
cgwatch_limit_birth_applies_total and audited as mode "birth"; only a cgroup that was seen
holding its target before, or that was there before the agent started, is repaired as drift
(cgwatch_limit_drift_repairs_total). A cgroup is told apart from an earlier one at the same path
(`docker restart` makes a new one) by its creation time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily

from ..cgroup.base import CgroupReader
from ..cgroup.writer import CgroupWriter
from ..discovery.classify import classify
from ..discovery.inventory import Container, build_container
from ..errors import CgwatchError
from ..limits.service import LimitService
from ..model import Limits
from ..runtimes.base import RuntimeContainer
from .desired import ApiOverrides, Desired
from .policy import Policy, PolicyError, load_policy_file

log = logging.getLogger("cgwatch.enforce")

# A container whose limits keep being changed behind our back is repaired at most this often.
MAX_REPAIRS_PER_WINDOW = 5
REPAIR_WINDOW_S = 60.0
# The first application to a cgroup created less than this before the agent started is a birth too.
CLOCK_SLACK_S = 0.5
# What noticed a cgroup: births.py at its mkdir.
CREATED = "cgroup-created"
DESIRED_RESOURCES = ("cpu_quota_us", "cpu_period_us", "cpu_shares", "memory_limit_bytes",
                     "memory_reservation_bytes", "memory_swap_limit_bytes", "pids_max")


class Naming(Protocol):
    """Who names a new cgroup's container (runtimes.registry.Runtimes)."""

    def find(self, path: str, container_id: str) -> RuntimeContainer | None: ...

    async def refresh(self, ref: str) -> RuntimeContainer | None: ...


class Enforcer:
    def __init__(self, *, scan: Callable[[], list[Container]], limits: LimitService, reader: CgroupReader,
                 writer: CgroupWriter, overrides: ApiOverrides, policy_path: Path | None,
                 registry: CollectorRegistry, naming: Naming | None = None):
        self._scan = scan
        self._naming = naming
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
        # cgroup path -> creation time of the cgroup there that was seen holding its target.
        self._held: dict[str, float] = {}
        # Wall clock, as cgroup creation times are; the kernel stamps those with its coarse clock
        # (current_time(): up to a tick behind), so a cgroup made just after the start can look older.
        self._started = time.time() - CLOCK_SLACK_S
        # The cgroups there when the agent started (path -> creation time as read then, note_start):
        # what differs in them is drift, not a birth. A cgroup directory's ctime alone is not a
        # reliable creation time: kernfs stamps an inode when it is first instantiated
        # (fs/kernfs/inode.c: no iattr, current time), so a hierarchy nobody had looked at yet
        # reports the moment the agent first stat()s it. Read once here, it stays that value.
        self._at_start: dict[str, float] | None = None
        self.repairs_total = Counter("cgwatch_limit_drift_repairs",
                                     "Resources brought back to their desired limits after they drifted.",
                                     ["resource"], registry=registry)
        self.births_total = Counter("cgwatch_limit_birth_applies",
                                    "Resources given their desired limits in a cgroup created while the agent runs.",
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

    def active(self) -> bool:
        """Whether the periodic passes have work: something to enforce, or changes a runtime that
        was down has still to be told. While not, the agent schedules no pass at all (agent.py)."""
        return not self._idle() or bool(len(self._limits.pending))

    def rest(self) -> None:
        """The passes stop: what they keep per cgroup goes (the next first pass starts afresh)."""
        self._known_paths = None
        self._forget_gone(set())

    async def reconcile_all(self) -> int:
        """One pass over every container; returns the number repaired. Changes a runtime missed
        while it was down are sent to it first (LimitService.push_pending)."""
        self.reload_policy()
        if len(self._limits.pending):
            await self._limits.push_pending()
        if self._idle():
            self.rest()
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
            self.rest()
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
                repaired += await self.reconcile(c, "birth-scan")
        return repaired

    async def born(self, path: str) -> int:
        """A cgroup created a moment ago (births.py saw its mkdir), before its runtime starts the
        container's process: its desired limits now. Returns 1 when limits were applied."""
        if self._idle():
            return 0
        return await self.reconcile(await self._new_container(path), CREATED)

    async def _new_container(self, path: str) -> Container:
        """The Container at a new cgroup, named by its runtime. The runtime's cache may not hold it
        yet (dockerd answers an inspect only once the start is done, so the inspect that follows the
        create event may still be waiting): a runtime that does not know the ID is asked once."""
        ident = classify(path)
        unknown: list[str] = []

        def lookup(p: str, container_id: str) -> RuntimeContainer | None:
            found = self._naming.find(p, container_id) if self._naming is not None else None
            if found is None and container_id:
                unknown.append(container_id)
            return found

        c = build_container(path, ident, lookup)
        if unknown and self._naming is not None and await self._naming.refresh(unknown[0]) is not None:
            c = build_container(path, ident, self._naming.find)
        return c

    def cgroup_globs(self) -> list[str]:
        """The policy's ``cgroup:`` globs: births.py watches the parents they name."""
        return [r.match.cgroup for r in self.policy.rules if r.match.cgroup]

    async def reconcile_id(self, container_id: str, reason: str) -> int:
        # Called for every Docker event, one after another: a walk of the whole hierarchy each
        # time, for nothing to enforce, delays the next event (and a container's name) behind it.
        if self._idle():
            return 0
        containers = await asyncio.to_thread(self._scan)
        return sum([await self.reconcile(c, reason) for c in containers if c.id == container_id])

    def note_start(self) -> None:
        """Remember the cgroups there now, before the births watcher runs (blocking: one walk and
        one stat per cgroup; the agent calls it once, at start)."""
        self._at_start = {c.path: t for c in self._scan()
                          if (t := self._reader.created(c.path)) is not None}

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
        created = await asyncio.to_thread(self._reader.created, c.path)
        if created is None:
            return 0  # removed since it was found: its files read as absent, which is no drift
        if not drift:
            self._held[c.path] = created
            return 0
        birth = self._is_birth(c.path, created, reason)
        if not self._may_repair(c.path):
            return 0
        try:
            changed = await self._limits.repair(c, target, reason=reason, source=desired.source,
                                                rule=desired.rule.name if desired.rule else None,
                                                recheck=lambda: self._drifted_target(c), birth=birth)
        except CgwatchError as exc:
            log.warning("birth apply failed" if birth else "repair failed",
                        extra={"container": c.id, "error": exc.message})
            return 0
        if not changed:
            return 0
        self._held[c.path] = created  # the apply read back at target: from now on a change is drift
        counter = self.births_total if birth else self.repairs_total
        for resource in changed:
            counter.labels(resource).inc()
        return 1

    def _is_birth(self, path: str, created: float, reason: str) -> bool:
        """Limits that differ are a birth's, not drift, in a cgroup created since the agent started
        (births.py saw its mkdir, or its creation time says so) that was never seen holding its
        target: runc may not have written the runtime's own limits yet (`docker restart` makes a
        new cgroup at the same path: a new creation time)."""
        if self._held.get(path) == created:
            return False
        if reason == CREATED:
            return True
        if self._at_start is not None:  # there when the agent started, and still the same cgroup: drift
            return self._at_start.get(path) != created
        return created >= self._started

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
        series would outlive them, and with container churn these maps would grow without end."""
        for held in (self._last_targets, self._repairs):
            for path in held.keys() - present:
                del held[path]
        # A birth applied while this walk ran (births.py is faster than a walk) is not in it but is
        # held: forgetting it would make its first drift look like a birth again.
        for held in (self._held, self._at_start or {}):
            for path in held.keys() - present:
                if not self._reader.exists(path):
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
