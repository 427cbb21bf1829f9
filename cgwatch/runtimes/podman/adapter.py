"""Podman behind the runtime seam: its containers named from the libpod API, their limits changed
through `POST /libpod/containers/{id}/update` (what that can and cannot do: plan.py)."""

from __future__ import annotations

from ...model import Limits
from ..base import RuntimeContainer, RuntimeUpdate
from ..cached import CachedRuntime
from ..watch import CacheWatcher
from .client import PodmanClient, PodmanError
from .parsing import PodmanContainer
from .plan import plan_update, record_note, update_unsupported

NAME = "podman"


class PodmanWatcher(CacheWatcher[PodmanContainer]):
    """The id -> PodmanContainer cache, following Podman's event stream.

    Podman 4.3's container actions (libpod/events/config.go): a cgroup appears at "init" (runc
    create), runs from "start" (or "restart", "restore"), stops at "died" (the libpod endpoint's
    word; Docker's is "die") and "stop", and the container is gone at "remove". "update" comes
    from Podman 5.1 on; "health_status" after each healthcheck run. exec, pause, kill, cleanup,
    mount and the like change nothing kept here.
    """

    refresh_actions = frozenset({"create", "init", "start", "restart", "restore", "rename", "update",
                                 "died", "stop", "health_status"})
    remove_actions = frozenset({"remove"})

    def __init__(self, client: PodmanClient, on_change=None):  # type: ignore[no-untyped-def]
        super().__init__(client, on_change, what=NAME)


def runtime_container(c: PodmanContainer) -> RuntimeContainer:
    return RuntimeContainer(runtime=NAME, id=c.id, name=c.name, image=c.image, labels=dict(c.labels),
                            started_at=c.started_at, running=c.running, health=c.health)


class PodmanRuntime(CachedRuntime[PodmanContainer]):
    """Claims /libpod_parent/libpod-<id> (cgroupfs manager) and /machine.slice/libpod-<id>.scope
    (systemd manager) cgroups, and any cgroup whose leaf is the ID of a container Podman knows."""

    name = NAME

    def __init__(self, host: str | PodmanClient):
        self.client = host if isinstance(host, PodmanClient) else PodmanClient(host)
        self.host = self.client.host
        self.watcher = PodmanWatcher(self.client, on_change=self._changed)

    def to_runtime(self, c: PodmanContainer) -> RuntimeContainer:
        return runtime_container(c)

    async def update(self, c: RuntimeContainer, target: Limits, current: Limits,
                     allowed_cpus: str | None) -> RuntimeUpdate:
        unsupported = update_unsupported(self.client.version)
        if unsupported is not None:
            return RuntimeUpdate(notes=[unsupported])
        plan = plan_update(target, current, allowed_cpus)
        if not plan.resources:
            return RuntimeUpdate(notes=plan.unexpressible)
        try:
            await self.client.update(c.id, plan.resources)
        except PodmanError as exc:
            if exc.status == 404:  # the route exists from 4.3 on: it is the container that is unknown
                return RuntimeUpdate(known=False)
            raise
        note = record_note(self.client.version)
        return RuntimeUpdate(notes=[*plan.unexpressible, *([note] if note else [])], sent=True)
