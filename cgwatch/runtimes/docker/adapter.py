"""Docker behind the runtime seam: its containers named from the Engine API, their limits changed
through `POST /containers/{id}/update` so `docker inspect` agrees and `docker restart` keeps them."""

from __future__ import annotations

import re

from ...model import Limits
from ..base import OnOom, RuntimeApiError, RuntimeContainer, RuntimeUpdate
from ..cached import CachedRuntime
from ..watch import CacheWatcher
from .client import DockerClient
from .parsing import DockerContainer
from .plan import plan_update

NAME = "docker"
_FULL_ID = re.compile(r"[0-9a-f]{64}")


class DockerWatcher(CacheWatcher[DockerContainer]):
    """The id -> DockerContainer cache, following dockerd's event stream."""

    def __init__(self, client: DockerClient, on_change=None, on_event=None):  # type: ignore[no-untyped-def]
        super().__init__(client, on_change, what=NAME, on_event=on_event)
        self._docker = client

    async def refresh(self, ref: str) -> DockerContainer | None:
        """A full ID the cache lacks is a container being created or started (a new cgroup's birth
        asks at its mkdir): the list names it at once, where inspect waits for the end of the
        start (client.listed). Cached until the create event's inspect brings the full record."""
        if _FULL_ID.fullmatch(ref) and self.get(ref) is None:
            try:
                listed = await self._docker.listed(ref)
            except RuntimeApiError:
                listed = None  # the inspect below says it, and counts it
            if listed is not None:
                self._cache.setdefault(ref, listed)
                await self._notify(ref, listed)
                return self.get(ref)
        return await super().refresh(ref)


def runtime_container(c: DockerContainer) -> RuntimeContainer:
    return RuntimeContainer(runtime=NAME, id=c.id, name=c.name, image=c.image, labels=dict(c.labels),
                            started_at=c.started_at, running=c.running, health=c.health)


class DockerRuntime(CachedRuntime[DockerContainer]):
    """Claims /docker/<id> and docker-<id>.scope cgroups (and any cgroup whose leaf is the ID of a
    container dockerd knows: `--cgroup-parent`)."""

    name = NAME

    def __init__(self, client: DockerClient):
        self.client = client
        self.host = client.host
        self._on_oom: OnOom | None = None
        self.watcher = DockerWatcher(client, on_change=self._changed, on_event=self._event)

    def to_runtime(self, c: DockerContainer) -> RuntimeContainer:
        return runtime_container(c)

    async def update(self, c: RuntimeContainer, target: Limits, current: Limits,
                     allowed_cpus: str | None) -> RuntimeUpdate:
        raw = await self.client.inspect_raw(c.id)
        if raw is None:
            return RuntimeUpdate(known=False)
        plan = plan_update(target, current, raw.get("HostConfig") or {}, allowed_cpus)
        if plan.body:
            await self.client.update(c.id, plan.body)
        return RuntimeUpdate(notes=plan.unexpressible, sent=bool(plan.body))

    def follow_ooms(self, on_oom: OnOom) -> None:
        """base.OomSource: dockerd's ``oom`` event (containerd's TaskOOM, from the shim's own watch
        of the container's cgroup), sent before the ``die`` of a container whose process it killed."""
        self._on_oom = on_oom

    async def _event(self, cid: str, action: str) -> None:
        if action == "oom" and self._on_oom is not None:
            result = self._on_oom(NAME, cid)
            if result is not None:
                await result
