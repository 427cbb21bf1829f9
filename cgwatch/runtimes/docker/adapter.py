"""Docker behind the runtime seam: its containers named from the Engine API, their limits changed
through `POST /containers/{id}/update` so `docker inspect` agrees and `docker restart` keeps them."""

from __future__ import annotations

from ...model import Limits
from ..base import OnChange, RuntimeContainer, RuntimeUpdate
from ..watch import CacheWatcher
from .client import DockerClient
from .parsing import DockerContainer
from .plan import plan_update

NAME = "docker"


class DockerWatcher(CacheWatcher[DockerContainer]):
    """The id -> DockerContainer cache, following dockerd's event stream."""

    def __init__(self, client: DockerClient, on_change=None):  # type: ignore[no-untyped-def]
        super().__init__(client, on_change, what=NAME)


def runtime_container(c: DockerContainer) -> RuntimeContainer:
    return RuntimeContainer(runtime=NAME, id=c.id, name=c.name, image=c.image, labels=dict(c.labels),
                            started_at=c.started_at, running=c.running)


class DockerRuntime:
    """Claims /docker/<id> and docker-<id>.scope cgroups (and any cgroup whose leaf is the ID of a
    container dockerd knows: `--cgroup-parent`)."""

    name = NAME

    def __init__(self, client: DockerClient):
        self.client = client
        self.host = client.host
        self._on_change: OnChange | None = None
        self.watcher = DockerWatcher(client, on_change=self._changed)

    @property
    def connected(self) -> bool:
        return self.watcher.connected

    def find(self, path: str, container_id: str) -> RuntimeContainer | None:
        found = self.watcher.get(container_id) if container_id else None
        return runtime_container(found) if found is not None else None

    async def refresh(self, ref: str) -> RuntimeContainer | None:
        found = await self.watcher.refresh(ref)
        return runtime_container(found) if found is not None else None

    def writable(self, c: RuntimeContainer) -> bool:
        return True

    async def update(self, c: RuntimeContainer, target: Limits, current: Limits,
                     allowed_cpus: str | None) -> RuntimeUpdate:
        raw = await self.client.inspect_raw(c.id)
        if raw is None:
            return RuntimeUpdate(known=False)
        plan = plan_update(target, current, raw.get("HostConfig") or {}, allowed_cpus)
        if plan.body:
            await self.client.update(c.id, plan.body)
        return RuntimeUpdate(notes=plan.unexpressible, sent=bool(plan.body))

    async def start(self, on_change: OnChange) -> None:
        self._on_change = on_change
        await self.watcher.start()

    async def stop(self) -> None:
        await self.watcher.stop()
        await self.client.close()

    async def _changed(self, cid: str, c: DockerContainer | None) -> None:
        if self._on_change is not None:
            result = self._on_change(NAME, cid, runtime_container(c) if c is not None else None)
            if result is not None:
                await result
