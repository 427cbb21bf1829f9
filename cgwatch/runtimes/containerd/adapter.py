"""containerd behind the runtime seam: its containers (every namespace: k8s.io for the kubelet's
CRI, moby for dockerd, default for ctr, ...) named and labelled from its API, and their limits
changed through its task update so runc's own record agrees.

A container is found by its cgroup path first (the spec's linux.cgroupsPath): plain `ctr run`
puts any ID at /<namespace>/<id>, which no path pattern recognises; the CRI's /kubepods/.../<id>
and cri-containerd-<id>.scope are found by path too, and by ID should the path not match.
Docker's adapter is asked before this one, so a container of dockerd's `moby` namespace keeps
Docker's name while Docker's adapter runs.
"""

from __future__ import annotations

from ...model import Limits
from ..base import OnOom, RuntimeContainer, RuntimeUpdate
from ..cached import CachedRuntime
from ..watch import CacheWatcher
from .client import NOT_FOUND, ContainerdClient, ContainerdError
from .parsing import NAME, NOTICES, TOPICS
from .plan import plan_update
from .source import ContainerdSource, Entry


class ContainerdWatcher(CacheWatcher[Entry]):
    """The "<namespace>/<id>" -> Entry cache, following containerd's events (by topic)."""

    refresh_actions = frozenset(TOPICS) - {"/containers/delete"} - NOTICES
    remove_actions = frozenset({"/containers/delete"})


class ContainerdRuntime(CachedRuntime[Entry]):
    """Claims the cgroups containerd's containers are in, by path (then by ID)."""

    name = NAME

    def __init__(self, host: str, allow_kubernetes_writes: bool = False, *,
                 client: ContainerdClient | None = None):
        self.client = client or ContainerdClient(host)
        self.host = self.client.host
        self._allow_kubernetes = allow_kubernetes_writes
        self.source = ContainerdSource(self.client)
        self._on_oom: OnOom | None = None
        self.watcher = ContainerdWatcher(self.source, on_change=self._changed, what=NAME, on_event=self._event)
        # Indexes over the watcher's cache, kept by _changed (every cache change goes through it).
        # Read from the walk's worker thread: each update replaces one dict item (atomic under the GIL).
        self._by_path: dict[str, str] = {}              # cgroup path -> cache key
        self._path_of: dict[str, str] = {}              # cache key -> cgroup path
        self._by_id: dict[str, tuple[str, ...]] = {}    # container ID -> cache keys (one per namespace)

    def to_runtime(self, c: Entry) -> RuntimeContainer:
        return c.container

    def id_of(self, key: str) -> str:
        return key.split("/", 1)[1]  # "<namespace>/<id>"

    def find(self, path: str, container_id: str) -> RuntimeContainer | None:
        key = self._by_path.get(path)
        if key is None and container_id:
            keys = self._by_id.get(container_id, ())
            key = keys[0] if len(keys) == 1 else None
        entry = self.watcher.get(key) if key is not None else None
        return entry.container if entry is not None else None

    def writable(self, c: RuntimeContainer) -> bool:
        # The kubelet owns a pod's limits (and resizes them through the CRI's UpdateContainerResources).
        return self._allow_kubernetes or not c.kubernetes

    async def update(self, c: RuntimeContainer, target: Limits, current: Limits,
                     allowed_cpus: str | None) -> RuntimeUpdate:
        namespace = c.namespace or self._namespace_of(c)
        if not namespace:
            entry = await self.source.inspect(c.id)
            if entry is None:
                return RuntimeUpdate(known=False)
            namespace = entry.container.namespace
        plan = plan_update(target, current, allowed_cpus)
        if not plan.resources:
            return RuntimeUpdate(notes=plan.unexpressible)
        try:
            await self.client.update_task(namespace, c.id, plan.resources)
        except ContainerdError as exc:
            if exc.status == NOT_FOUND:  # the container, or its task, is gone
                return RuntimeUpdate(known=False)
            raise
        return RuntimeUpdate(notes=plan.unexpressible, sent=True)

    def _namespace_of(self, c: RuntimeContainer) -> str:
        """The namespace of the cached container ``c`` is ('' when not cached, or ambiguous)."""
        entries = [e for k in self._by_id.get(c.id, ()) if (e := self.watcher.get(k)) is not None]
        if len(entries) > 1:  # one ID in several namespaces: the one that looks like c
            entries = [e for e in entries if (e.container.image, e.container.labels) == (c.image, c.labels)]
        return entries[0].container.namespace if len(entries) == 1 else ""

    def _index(self, key: str, entry: Entry | None) -> None:
        old = self._path_of.pop(key, None)
        if old is not None and self._by_path.get(old) == key:
            del self._by_path[old]
        cid = key.split("/", 1)[1]
        others = tuple(k for k in self._by_id.get(cid, ()) if k != key)
        if entry is None:
            if others:
                self._by_id[cid] = others
            else:
                self._by_id.pop(cid, None)
            return
        self._by_id[cid] = (*others, key)
        path = entry.container.cgroup_path
        if path is not None:
            self._path_of[key] = path
            self._by_path[path] = key

    def follow_ooms(self, on_oom: OnOom) -> None:
        """base.OomSource: containerd's /tasks/oom, which the shim sends when the kernel's OOM
        notification fires in the container's cgroup, before the task's exit."""
        self._on_oom = on_oom

    async def _event(self, key: str, topic: str) -> None:
        if topic == "/tasks/oom" and self._on_oom is not None:
            result = self._on_oom(NAME, self.id_of(key))
            if result is not None:
                await result

    async def _changed(self, key: str, entry: Entry | None) -> None:
        self._index(key, entry)
        await super()._changed(key, entry)
