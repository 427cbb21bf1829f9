"""The agent: wires host paths, the cgroup reader, runtime adapters, inventory and exporter."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .cgroup import make_reader
from .collectors import enabled_collectors
from .config import Settings
from .discovery.inventory import Container, DiscoveryOptions, RuntimeInfo, resolve, scan
from .exporter import Exporter
from .host.layout import detect_layout
from .host.paths import HostPaths
from .host.procfs import ProcFS
from .views import container_json

if TYPE_CHECKING:
    from .runtimes.docker import DockerClient, DockerContainer, DockerWatcher

log = logging.getLogger("cgwatch.agent")


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
        self.docker: DockerWatcher | None = None
        self._docker_client: DockerClient | None = None
        if settings.docker_host:
            from .runtimes.docker import DockerClient, DockerWatcher
            self._docker_client = DockerClient(settings.docker_host)
            self.docker = DockerWatcher(self._docker_client)
        self.exporter = Exporter(self.reader, self.proc, self.scan,
                                 enabled_collectors(settings.disabled_collectors),
                                 max_age_s=settings.max_age_s, label_allowlist=settings.label_allowlist)

    async def start(self) -> None:
        log.info("starting", extra={"cgroup_mode": self.layout.mode.value,
                                    "cgroup_root": str(self.paths.cgroup), "proc_root": str(self.paths.proc)})
        if self.docker is not None:
            await self.docker.start()

    async def stop(self) -> None:
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
        return scan(self.layout, self.options, self._lookup)

    async def containers(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(lambda: [container_json(c, self.reader) for c in self.scan()])

    async def container(self, ref: str) -> dict[str, Any]:
        def find() -> dict[str, Any]:
            return container_json(resolve(ref, self.scan()), self.reader)
        return await asyncio.to_thread(find)

    def health(self) -> dict[str, Any]:
        stats = self.exporter.last_stats
        return {
            "status": "ok",
            "cgroup_mode": self.layout.mode.value,
            "docker": None if self.docker is None else {"connected": self.docker.connected},
            "last_collection_seconds": None if stats is None else round(stats.duration_s, 6),
        }
