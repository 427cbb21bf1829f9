"""The agent: wires host paths, the cgroup reader, runtime adapters, inventory and exporter."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .cgroup import make_reader
from .cgroup.writer import make_writer
from .collectors import enabled_collectors
from .config import Settings
from .discovery.inventory import Container, DiscoveryOptions, RuntimeInfo, resolve, scan
from .discovery.recent import RecentScan
from .exporter import Exporter
from .host.layout import detect_layout
from .host.paths import HostPaths
from .host.procfs import ProcFS
from .limits.service import LimitService
from .looplag import LoopLagMonitor
from .security.audit import AuditLog
from .security.token import load_or_create_token
from .enforce.engine import Enforcer
from .enforce.store import DesiredStore
from .errors import CgwatchError, ContainerNotFound
from .views import container_json
from .runtimes.docker import DockerClient, DockerContainer, DockerWatcher

log = logging.getLogger("cgwatch.agent")


def _now():  # type: ignore[no-untyped-def]
    from datetime import datetime, timezone
    return datetime.now(timezone.utc)


def docker_info(c: DockerContainer) -> RuntimeInfo:
    return RuntimeInfo(runtime="docker", name=c.name, image=c.image, labels=dict(c.labels),
                       started_at=c.started_at)


class Agent:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.paths = HostPaths(proc=settings.proc_root, cgroup=settings.cgroup_root)
        self.layout = detect_layout(self.paths.cgroup)
        self.reader = make_reader(self.layout)
        self.proc = ProcFS(self.paths.proc)
        self.options = DiscoveryOptions(include_raw=settings.include_raw, ignore=settings.ignore_cgroups)
        self.recent = RecentScan(lambda: scan(self.layout, self.options, self._lookup), self.reader.exists)
        self.docker: DockerWatcher | None = None
        self._docker_client: DockerClient | None = None
        if settings.docker_host:
            self._docker_client = DockerClient(settings.docker_host)
            self.docker = DockerWatcher(self._docker_client, on_change=self._docker_changed)
        self.exporter = Exporter(self.reader, self.proc, self.scan,
                                 enabled_collectors(settings.disabled_collectors),
                                 max_age_s=settings.max_age_s, label_allowlist=settings.label_allowlist)
        self.token, self.token_path = load_or_create_token(settings.token_file, settings.state_dir)
        cpus, _ = self.proc.machine()
        self.limits = LimitService(scan=self.scan, reader=self.reader, writer=make_writer(self.layout),
                                   docker=self._docker_client, audit=AuditLog(settings.state_dir / "audit.log"),
                                   registry=self.exporter.registry, host_cpus=cpus or 1,
                                   allow_kubernetes=settings.allow_kubernetes_writes, is_v2=self.layout.is_v2)
        self.enforcer = Enforcer(scan=self.scan, limits=self.limits,
                                 store=DesiredStore(settings.state_dir / "desired.json"),
                                 policy_path=settings.policy_file, registry=self.exporter.registry)
        self.limits.on_change = self.enforcer.remember
        self.limits.resolve_ref = self.recent.resolve
        if self.docker is not None:
            self.limits.refresh = self.docker.refresh
        self._scheduler: Any = None
        self.loop_lag = LoopLagMonitor(self.exporter.registry)

    async def start(self) -> None:
        log.info("starting", extra={"cgroup_mode": self.layout.mode.value, "cgroup_root": str(self.paths.cgroup),
                                    "proc_root": str(self.paths.proc), "token_file": str(self.token_path)})
        if self.docker is not None:
            await self.docker.start()
        self._start_scheduler()
        self.loop_lag.start()

    def _start_scheduler(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self._scheduler = AsyncIOScheduler()
        # coalesce + max_instances=1: a slow pass is never run twice at once nor queued up.
        common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        self._scheduler.add_job(self.enforcer.reconcile_all, "interval", seconds=self.settings.reconcile_interval_s,
                                id="reconcile", next_run_time=_now(), **common)
        self._scheduler.add_job(self.enforcer.reconcile_new, "interval", seconds=self.settings.birth_scan_interval_s,
                                id="birth", **common)
        self._scheduler.start()

    async def _docker_changed(self, container_id: str, container: DockerContainer | None) -> None:
        """A container started or was updated: give it its desired limits now, not at the next pass.
        One Docker no longer lists (``None``) was removed: forget what the API asked for it."""
        if container is None:
            if await asyncio.to_thread(self.enforcer.destroyed, container_id):
                log.info("desired limits of a removed container forgotten", extra={"container": container_id})
            return
        if container.running:
            try:
                await self.enforcer.reconcile_id(container_id, "docker-event")
            except CgwatchError as exc:
                log.warning("birth reconcile failed", extra={"container": container_id, "error": exc.message})

    def reload_policy(self) -> None:
        self.enforcer.reload_policy(force=True)

    async def policy(self) -> dict[str, Any]:
        containers = await asyncio.to_thread(self.scan)
        return {"policy": self.enforcer.policy.to_json(), "error": self.enforcer.policy_error,
                "containers": self.enforcer.governing(containers)}

    async def desired(self, ref: str) -> dict[str, Any]:
        c = await self.limits.find(ref)
        d = self.enforcer.desired_for(c)
        record = self.enforcer.store.get(c.id)
        return {"id": c.id, "name": c.display_name, "source": d.source if d else None,
                "rule": d.rule.name if d and d.rule else None,
                "limits": record["limits"] if record else (dict(d.rule.limits) if d and d.rule else None),
                "keep_for_name": bool(record and record.get("keep_for_name"))}

    async def release(self, ref: str, client: str) -> dict[str, Any]:
        """Forget the API's desired state for a container: the policy (if any) governs again."""
        c = await self.limits.find(ref)
        removed = await asyncio.to_thread(self.enforcer.forget, c)
        await self.limits.audit({"client": client, "ref": ref[:200], "mode": "release", "container_id": c.id,
                                 "container_name": c.display_name, "result": "accepted" if removed else "noop"})
        return {"id": c.id, "name": c.display_name, "released": removed}

    async def stop(self) -> None:
        await self.loop_lag.stop()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        if self.docker is not None:
            await self.docker.stop()
        if self._docker_client is not None:
            await self._docker_client.close()

    def _lookup(self, container_id: str) -> RuntimeInfo | None:
        if self.docker is None:
            return None
        found = self.docker.get(container_id)
        return docker_info(found) if found is not None else None

    def scan(self) -> list[Container]:
        """Every container on the host now. Blocking: call from a worker thread."""
        return self.recent.scan()

    async def containers(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(lambda: [container_json(c, self.reader) for c in self.scan()])

    async def container(self, ref: str) -> dict[str, Any]:
        def find() -> dict[str, Any]:
            c = resolve(ref, self.scan())
            return self._still_there(ref, c, container_json(c, self.reader))
        return await asyncio.to_thread(find)

    def _still_there(self, ref: str, c: Container, answer: dict[str, Any]) -> dict[str, Any]:
        """``answer`` about ``c``, unless the cgroup went while it was read (its files then read
        as absent: no usage, no limits), which is a 404, not a container without limits."""
        if not self.reader.exists(c.path):
            raise ContainerNotFound(f"{ref!r} was removed while it was read", ref=ref[:200])
        return answer

    def health(self) -> dict[str, Any]:
        stats = self.exporter.last_stats
        return {
            "status": "ok",
            "cgroup_mode": self.layout.mode.value,
            "docker": None if self.docker is None else {"connected": self.docker.connected},
            "last_collection_seconds": None if stats is None else round(stats.duration_s, 6),
        }

    def _inspector(self):  # type: ignore[no-untyped-def]
        from .views.inspect import ProcInspector
        return ProcInspector(self.paths.proc, self.reader)

    async def inspect(self, ref: str) -> dict[str, Any]:
        """The container's JSON plus the namespaces, ID maps and root filesystem of its init process."""
        def find() -> dict[str, Any]:
            c = resolve(ref, self.scan())
            return self._still_there(ref, c, {**container_json(c, self.reader), **self._inspector().details(c)})
        return await asyncio.to_thread(find)

    async def processes(self, ref: str, interval_s: float) -> dict[str, Any]:
        """The container's processes; CPU % over ``interval_s`` (0: since each process started)."""
        inspector = self._inspector()
        c = await asyncio.to_thread(lambda: resolve(ref, self.scan()))
        first = None
        if interval_s > 0:
            first = await asyncio.to_thread(inspector.snapshot, c)
            await asyncio.sleep(interval_s)
        second = await asyncio.to_thread(inspector.snapshot, c)
        return await asyncio.to_thread(inspector.report, c, first, second)
