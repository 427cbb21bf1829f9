"""Reading and changing one container's limits: the safety rules, the one writer, the audit.

request -> resolve the container -> validate against the host -> refuse what would surprise
(memory below the working set, a kubelet-owned container) -> apply through the owning runtime's
API where it can say it, cgroupfs for the rest -> read back -> audit. A failed apply rolls back.
A runtime that cannot be reached is not an error: the kernel takes the change and the runtime is
told when it answers again (pending.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from typing import Any, Protocol

from ..cgroup.base import CgroupReader
from ..cgroup.writer import CgroupWriter
from ..discovery.classify import kubelet_owned
from ..discovery.inventory import CgroupPath, Container, Target
from ..errors import CgwatchError, ContainerNotFound, KubernetesManaged, LimitConflict, RuntimeRefused, StateUnwritable
from ..model import Limits
from ..runtimes.base import RuntimeApiError, RuntimeContainer
from ..runtimes.registry import Runtimes
from ..security.audit import Attempt, Auditor
from .pending import PendingPushes
from .request import LimitRequest, Mode, format_cpuset, parse_limit_request
from .validate import HostFacts, resolve_target

log = logging.getLogger("cgwatch.limits")

# How long a forced memory decrease on v2 lets memory.high reclaim before memory.max is set.
RECLAIM_WAIT_S = 1.0


class Resolver(Protocol):
    def resolve(self, target: Target) -> Container:
        """The container a ref or a cgroup path names (blocking; raises ContainerNotFound, AmbiguousRef,
        InvalidRef, ProtectedCgroup)."""


class Refresher(Protocol):
    async def refresh(self, ref: str) -> object | None:
        """Ask the runtime about ``ref`` now; None when it does not know it either."""


class LimitsWritten(Protocol):
    def invalidate(self, path: str) -> None:
        """``path``'s limits were (maybe) written: what was kept of them is stale (cgroup/limitcache.py)."""


class ChangeRecorder(Protocol):
    def remember(self, c: Container, target: Limits, keep_for_name: bool) -> None:
        """Keep an accepted change as the container's desired state (blocking; raises OSError)."""


def limits_json(lim: Limits) -> dict[str, Any]:
    return {**asdict(lim), "cpus": lim.cpus}


class LimitService:
    """Changes one container's limits and reports what it did. What it needs from outside (finding
    a ref, asking the runtime about a new one, keeping an accepted change) is passed in here."""

    def __init__(self, *, resolver: Resolver, reader: CgroupReader, writer: CgroupWriter, auditor: Auditor,
                 host_cpus: int, recorder: ChangeRecorder | None = None, refresher: Refresher | None = None,
                 runtimes: Runtimes | None = None, allow_kubernetes: bool = False, is_v2: bool = False,
                 written: LimitsWritten | None = None):
        """``written`` is told of every cgroup this service changed, when its lock is released."""
        self._resolver = resolver
        self._written = written
        self._reader = reader
        self._writer = writer
        self._auditor = auditor
        self._host_cpus = host_cpus
        self._recorder = recorder
        self._refresher = refresher
        self._runtimes = runtimes if runtimes is not None else Runtimes()
        self.pending = PendingPushes()
        self._allow_kubernetes = allow_kubernetes
        self._is_v2 = is_v2
        # One lock per cgroup being changed, alive only while a change holds or awaits it: a dict
        # would keep one for every cgroup ever written, long after the container is gone.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def find(self, target: Target) -> Container:
        """The container a ref names, or the cgroup at a path (a container's cgroup is that container)."""
        try:
            return await asyncio.to_thread(self._resolver.resolve, target)
        except ContainerNotFound:
            # A container started a moment ago may not be named yet (its event is still in
            # flight): ask the runtime once, then look again. A path needs no name: the walk
            # that did not find it was fresh.
            if (isinstance(target, CgroupPath) or self._refresher is None
                    or await self._refresher.refresh(target) is None):
                raise
            return await asyncio.to_thread(self._resolver.resolve, target)

    async def read(self, target: Target) -> dict[str, Any]:
        c = await self.find(target)
        lim = await asyncio.to_thread(self._reader.limits, c.path)
        # Files of a removed cgroup read as absent, i.e. "no limit": say it is gone instead.
        if not await asyncio.to_thread(self._reader.exists, c.path):
            raise ContainerNotFound(f"{str(target)!r} was removed while its limits were read", ref=str(target)[:200])
        return {"id": c.id, "name": c.display_name, "runtime": c.runtime, "cgroup": c.path,
                "limits": limits_json(lim)}

    async def change(self, target: Target, mode: Mode, body: bytes, attempt: Attempt) -> dict[str, Any]:
        """Parse, check and apply one write; every attempt, refused or not, ends as one audit line.
        ``target`` is a container ref or a cgroup path (the audit line's "ref": "/batch/job-7")."""
        entry: dict[str, Any] = {"client": attempt.client, "ref": str(target)[:200], "mode": mode.value}
        try:
            request = parse_limit_request(body, mode)
            entry.update(requested=_jsonable(request.fields), force=request.force)
            result = await self._change(target, request, entry)
        except CgwatchError as exc:
            entry.update(result=_outcome(exc), error=exc.to_json())
            await self._auditor.record(entry, attempt)
            raise
        entry["result"] = "accepted"
        await self._auditor.record(entry, attempt)
        return result

    async def _change(self, ref: Target, request: LimitRequest, entry: dict[str, Any]) -> dict[str, Any]:
        # The whole ref, not the audit entry's copy (cut to 200 characters, it could name another container).
        c = await self.find(ref)
        entry.update(container_id=c.id, container_name=c.display_name, runtime=c.runtime)
        if c.pod_uid is not None and not self._allow_kubernetes:
            raise KubernetesManaged(
                "this container belongs to a Kubernetes pod; the kubelet owns its limits (use the pod "
                "resize API, or start cgwatch with --allow-kubernetes-writes)", pod_uid=c.pod_uid)
        if kubelet_owned(c.path) and not self._allow_kubernetes:
            raise KubernetesManaged(
                "this cgroup is the kubelet's (its pods or QoS classes); the kubelet owns its limits "
                "(start cgwatch with --allow-kubernetes-writes to change it anyway)", cgroup=c.path[:200])
        self._auditor.check_space()
        async with self._changing(c.path):
            before = await asyncio.to_thread(self._reader.limits, c.path)
            entry["before"] = limits_json(before)
            host = await self.host_facts(c)
            target = resolve_target(request, before, host)
            if not request.force:
                await asyncio.to_thread(self._refuse_below_usage, c, target, before)
            via, notes = await self._apply(c, target, before, host, request.force)
            if self._recorder is not None:
                try:
                    await asyncio.to_thread(self._recorder.remember, c, target, request.keep_for_name)
                except OSError as exc:
                    await self._rollback(c, before)
                    raise StateUnwritable(f"the desired state cannot be saved ({exc.strerror}); "
                                          "the change was rolled back") from exc
            after = await asyncio.to_thread(self._reader.limits, c.path)
        entry.update(after=limits_json(after), applied_via=via)
        log.info("limits changed", extra={"container": c.id, "via": via, "client": entry["client"]})
        return {"id": c.id, "name": c.display_name, "runtime": c.runtime, "cgroup": c.path, "applied_via": via,
                "previous": limits_json(before), "limits": limits_json(after), "notes": notes}

    @contextlib.asynccontextmanager
    async def _changing(self, path: str) -> AsyncIterator[None]:
        """The container's lock, under which every write to it is made (the runtime's, cgroupfs',
        a rollback's); on release ``written`` hears of it, whatever happened (a failed write may
        have written part)."""
        async with self._locks.setdefault(path, asyncio.Lock()):
            try:
                yield
            finally:
                if self._written is not None:
                    self._written.invalidate(path)

    async def host_facts(self, c: Container) -> HostFacts:
        """What a target is validated against: the host's CPUs and those the cgroup may use."""
        allowed = await asyncio.to_thread(self._reader.allowed_cpus, c.path)
        return HostFacts(cpus=self._host_cpus, allowed_cpus=allowed or frozenset(range(self._host_cpus)))

    async def repair(self, c: Container, target: Limits, *, reason: str, source: str, rule: str | None,
                     recheck: Callable[[], Awaitable[Limits | None]] | None = None,
                     birth: bool = False) -> list[str]:
        """Bring a container to ``target``: the API's path, audited, never forced. Returns the
        resources changed ("cpu", "memory", ...: the controllers of the files the plan made under
        the lock writes), [] when nothing was left to change (then nothing is audited).

        ``recheck``, awaited under the container's lock, gives the target as wanted now (None: no
        drift any more). The drift was seen before the lock was taken; an API change holding it
        meanwhile makes ``target`` stale, and repairing to it would undo an acknowledged change
        (bench/LOAD.md).

        ``birth``: a cgroup just created, its process maybe not started yet (audited as mode
        "birth", result "applied"). The kernel is written first, then the runtime is told: dockerd
        holds a container's lock for the whole of its start (daemon/start.go), so asking it first
        would leave the process running unlimited until it runs."""
        entry: dict[str, Any] = {"client": "reconciler", "ref": c.id, "mode": "birth" if birth else "repair",
                                 "reason": reason, "source": source, "rule": rule, "container_id": c.id,
                                 "container_name": c.display_name, "runtime": c.runtime}
        try:
            self._auditor.check_space()
            async with self._changing(c.path):
                if recheck is not None:
                    target = await recheck()
                    if target is None:
                        return []
                before = await asyncio.to_thread(self._reader.limits, c.path)
                plan = await asyncio.to_thread(self._writer.plan, c.path, target, before)
                changed = sorted({file.name.split(".", 1)[0] for file, _ in plan})
                if not changed:
                    return []
                entry["before"] = limits_json(before)
                await asyncio.to_thread(self._refuse_below_usage, c, target, before)
                host = await self.host_facts(c)
                if birth:
                    via, notes = await self._apply_at_birth(c, target, before, host)
                else:
                    via, notes = await self._apply(c, target, before, host, False)
                after = await asyncio.to_thread(self._reader.limits, c.path)
        except CgwatchError as exc:
            entry.update(result=_outcome(exc), error=exc.to_json())
            await self._auditor.record(entry)
            raise
        entry.update(result="applied" if birth else "repaired", resources=changed, after=limits_json(after),
                     applied_via=via, **({"notes": notes} if notes else {}))
        log.info("limits applied to a new cgroup" if birth else "limits repaired",
                 extra={"container": c.id, "reason": reason, "via": via, "resources": changed})
        await self._auditor.record(entry)
        return changed

    async def _apply_at_birth(self, c: Container, target: Limits, before: Limits,
                              host: HostFacts) -> tuple[str, list[str]]:
        """repair's apply for a new cgroup: the kernel first, then the runtime's record (which waits
        while the runtime starts the container). No cgroupfs pass after the runtime, as _apply
        makes: a change someone made meanwhile (`docker update` as `docker run -d` returns) is then
        drift for the reconciler to see, not overwritten unseen while the runtime says otherwise."""
        written = False
        try:
            written = bool(await asyncio.to_thread(self._writer.apply, c.path, target, before))
            via, notes = await self._apply_runtime(c, target, before, host)
        except CgwatchError as exc:
            if await asyncio.to_thread(self._reader.exists, c.path):
                await self._rollback(c, before)
                raise
            if not written:
                raise ContainerNotFound(f"{c.display_name!r} was removed while its limits were being changed",
                                        ref=c.id) from exc
            # It lived and went before its runtime could be told (`docker run --rm` of a short
            # command): the kernel held its limits for all of its life.
            return "cgroupfs", ["removed before its runtime was told"]
        return (via if via == "cgroupfs" or not written else f"cgroupfs+{via}"), notes

    def _refuse_below_usage(self, c: Container, target: Limits, before: Limits) -> None:
        """Lowering memory under what the container really uses would OOM-kill it by surprise.

        The working set (usage minus inactive file pages) is what the kernel cannot reclaim
        without I/O; a limit above it lets the kernel shrink the page cache instead.
        """
        new = target.memory_limit_bytes
        if new is None or (before.memory_limit_bytes is not None and new >= before.memory_limit_bytes):
            return
        mem = self._reader.memory(c.path)
        if mem is None or mem.working_set_bytes is None or mem.working_set_bytes <= new:
            return
        raise LimitConflict(
            f"memory {new} bytes is below what the container uses now ({mem.working_set_bytes} bytes of "
            f"working set); it would be OOM-killed. Send \"force\": true to do it anyway.",
            field="memory", rule="below_usage", usage_bytes=mem.usage_bytes,
            working_set_bytes=mem.working_set_bytes, requested_bytes=new)

    async def _apply(self, c: Container, target: Limits, before: Limits, host: HostFacts,
                     force: bool) -> tuple[str, list[str]]:
        via, notes = "cgroupfs", []
        try:
            via, notes = await self._apply_runtime(c, target, before, host)
            if force and self._is_v2:
                await self._reclaim_first(c, target, before)
            # Whatever the runtime did not (or could not) do, cgroupfs does: the kernel ends equal to target.
            now = await asyncio.to_thread(self._reader.limits, c.path)
            written = await asyncio.to_thread(self._writer.apply, c.path, target, now)
            if via != "cgroupfs" and written:
                via = f"{via}+cgroupfs"
        except CgwatchError as exc:
            if not await asyncio.to_thread(self._reader.exists, c.path):
                # Removed mid-change (docker rm, a unit stopped): nothing is left to write or roll
                # back, and the answer is the one the same request a moment later gets.
                raise ContainerNotFound(f"{c.display_name!r} was removed while its limits were being changed",
                                        ref=c.id) from exc
            await self._rollback(c, before)
            raise
        return via, notes

    async def _apply_runtime(self, c: Container, target: Limits, before: Limits,
                             host: HostFacts) -> tuple[str, list[str]]:
        """The owning runtime's part: (how it was applied, notes). A runtime that cannot be
        reached, or does not know a cgroup shaped like its own, leaves it all to cgroupfs."""
        runtime = self._runtimes.get(c.runtime)
        if runtime is None:
            return "cgroupfs", []
        # The adapter's own record when it has one (containerd's carries the namespace the ID lives in).
        rc = runtime.find(c.path, c.id) or self._runtime_container(c)
        if not runtime.writable(rc):
            return "cgroupfs", [f"{runtime.name} does not take limit changes for this container: "
                                "written through cgroupfs"]
        try:
            done = await runtime.update(rc, target, before, format_cpuset(host.allowed_cpus))
        except RuntimeApiError as exc:
            if not exc.unreachable:
                raise RuntimeRefused(f"{runtime.name} refused the update: {exc.message}",
                                     runtime=runtime.name, runtime_status=exc.status) from exc
            self.pending.defer(c.path, runtime.name, c.id, c.display_name, target, before)
            log.warning("runtime unreachable; limits written through cgroupfs",
                        extra={"container": c.id, "runtime": runtime.name, "error": exc.message})
            return "cgroupfs", [f"{runtime.name} could not be reached ({exc.message}): written through "
                                f"cgroupfs; {runtime.name}'s own record still shows the old values, and the "
                                f"change is sent to it as soon as it answers"]
        if not done.known:
            return "cgroupfs", [f"{runtime.name} does not know this container: governed as a plain cgroup, "
                                "written through cgroupfs"]
        return runtime.name, done.notes

    def _runtime_container(self, c: Container) -> RuntimeContainer:
        return RuntimeContainer(runtime=c.runtime, id=c.id, name=c.name, image=c.image, labels=c.labels)

    async def push_pending(self) -> int:
        """Send the changes a runtime missed while it was down, now that it may answer; returns
        how many it took. Each is audited ("pushed"), a refusal too; one still unreachable waits."""
        pushed = 0
        for path, p in self.pending.items():
            runtime = self._runtimes.get(p.runtime)
            if runtime is None or not runtime.connected:
                continue
            if not await asyncio.to_thread(self._reader.exists, path):
                self.pending.done(path, p)  # the container went: nothing to record
                continue
            entry: dict[str, Any] = {"client": "reconciler", "ref": p.container_id, "mode": "push",
                                     "container_id": p.container_id, "container_name": p.name,
                                     "runtime": p.runtime, "requested": limits_json(p.target)}
            rc = RuntimeContainer(runtime=p.runtime, id=p.container_id, name=p.name)
            async with self._changing(path):
                allowed = await asyncio.to_thread(self._reader.allowed_cpus, path)
                cpus = allowed or frozenset(range(self._host_cpus))
                try:
                    done = await runtime.update(rc, p.target, p.recorded, format_cpuset(cpus))
                except RuntimeApiError as exc:
                    if exc.unreachable:
                        continue
                    self.pending.done(path, p)
                    entry.update(result="failed", error={"error": "runtime_refused", "message": exc.message})
                    await self._auditor.record(entry)
                    log.warning("runtime refused a pending change", extra={"container": p.container_id,
                                                                             "error": exc.message})
                    continue
            self.pending.done(path, p)
            entry.update(result="pushed" if done.known else "noop", applied_via=p.runtime, notes=done.notes)
            await self._auditor.record(entry)
            log.info("pending limits sent to the runtime", extra={"container": p.container_id, "runtime": p.runtime})
            pushed += done.known
        return pushed

    async def _reclaim_first(self, c: Container, target: Limits, before: Limits) -> None:
        """v2, forced decrease: memory.high throttles and reclaims without the OOM killer
        (cgroup-v2.rst "memory.high"), so set it first and give reclaim a moment."""
        new = target.memory_limit_bytes
        if new is None or (before.memory_limit_bytes is not None and new >= before.memory_limit_bytes):
            return
        await asyncio.to_thread(self._writer.set_memory_high, c.path, new)
        deadline = time.monotonic() + RECLAIM_WAIT_S
        while time.monotonic() < deadline:
            mem = await asyncio.to_thread(self._reader.memory, c.path)
            if mem is None or (mem.usage_bytes or 0) <= new:
                break
            await asyncio.sleep(0.05)
        await asyncio.to_thread(self._writer.set_memory_high, c.path, before.memory_high_bytes)

    async def _rollback(self, c: Container, before: Limits) -> None:
        try:
            now = await asyncio.to_thread(self._reader.limits, c.path)
            await asyncio.to_thread(self._writer.apply, c.path, before, now)
            log.warning("rolled back a partial limit change", extra={"container": c.id})
        except (CgwatchError, OSError) as exc:
            log.error("rollback failed", extra={"container": c.id, "error": str(exc)})


def _outcome(exc: CgwatchError) -> str:
    """An audit line's result: the request refused on its merits, or the host failed it."""
    return "failed" if exc.host_fault else "rejected"


def _jsonable(fields: Any) -> dict[str, Any]:
    return {k: (str(v) if not isinstance(v, (int, str, type(None))) else v) for k, v in dict(fields).items()}

