"""The runtime seam: what every runtime adapter offers the rest of cgwatch.

cAdvisor's container handler factories are the model: each runtime claims the cgroups that are
its containers, names them from its own API, and may change their limits through that API (so
`docker inspect`, `podman inspect` or containerd's task agree). Discovery, the collectors, the
limit service and the enforcer see only this seam; `registry.Runtimes` asks the adapters in
order (the runtimes, then systemd and raw cgroups, which need no API: discovery/classify.py).

An adapter keeps a cache from one listing plus its event stream, so naming a cgroup during a
walk (in a worker thread) never waits on a socket: ``find`` reads the cache only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..model import Limits

K8S_NAMESPACE = "io.kubernetes.pod.namespace"
K8S_POD = "io.kubernetes.pod.name"
K8S_CONTAINER = "io.kubernetes.container.name"
K8S_POD_UID = "io.kubernetes.pod.uid"


@dataclass(frozen=True, slots=True)
class RuntimeContainer:
    """What a runtime's API says about one of its containers."""

    runtime: str                         # "docker", "podman", "containerd"
    id: str                              # the runtime's ID (64 hex for Docker, Podman, the CRI, nerdctl)
    name: str                            # as the runtime's users name it ('' when it has none)
    image: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)   # never environment variables
    started_at: float | None = None      # epoch seconds
    running: bool = True
    # The cgroup path when the runtime says where it put the container (containerd's OCI spec
    # `linux.cgroupsPath`); None when the ID in the path is how it is found (Docker, Podman).
    cgroup_path: str | None = None
    namespace: str = ""                  # the runtime's own namespace (containerd), '' elsewhere
    # The runtime's healthcheck verdict: "healthy", "unhealthy", "starting"; None without a healthcheck.
    health: str | None = None

    @property
    def kubernetes(self) -> bool:
        """Created by the kubelet (its CRI writes the pod's identity into the labels)."""
        return bool(self.labels.get(K8S_POD)) and bool(self.labels.get(K8S_NAMESPACE))


class RuntimeApiError(Exception):
    """The runtime said no (``status`` is its answer's status) or could not be reached (``status``
    None: the socket is absent, refused, timed out or broke mid-answer)."""

    def __init__(self, status: int | None, message: str):
        super().__init__(f"{status}: {message}" if status is not None else message)
        self.status = status
        self.message = message

    @property
    def unreachable(self) -> bool:
        return self.status is None


@dataclass(slots=True)
class RuntimeUpdate:
    """What an adapter's ``update`` did: the notes a reply carries (what the runtime cannot say
    and cgroupfs wrote instead) and whether the runtime knew the container at all."""

    known: bool = True
    notes: list[str] = field(default_factory=list)
    sent: bool = False                   # a request went to the runtime (something differed)


# on_change(runtime name, container ID, the container now or None when the runtime removed it).
OnChange = Callable[[str, str, RuntimeContainer | None], Awaitable[None] | None]
# on_oom(runtime name, container ID): the runtime saw an OOM in that container.
OnOom = Callable[[str, str], Awaitable[None] | None]


@runtime_checkable
class OomSource(Protocol):
    """Optional beside Runtime: an adapter whose runtime reports OOMs (Docker's ``oom`` event;
    containerd's /tasks/oom, Podman's ``oom`` are the same idea) offers them to cgwatch's OOM
    count (deaths/), a further source beside the kernel's notifications. Called before ``start``."""

    def follow_ooms(self, on_oom: OnOom) -> None: ...


@runtime_checkable
class Runtime(Protocol):
    """One runtime's adapter. Every method but ``find`` may be awaited from the event loop."""

    name: str                            # "docker", ...: container_info's `runtime` label
    host: str                            # where its API is, for logs and /healthz

    @property
    def connected(self) -> bool:
        """The API answered the last time it was asked (cgwatch_runtime_up)."""

    def find(self, path: str, container_id: str) -> RuntimeContainer | None:
        """The container at cgroup ``path`` whose ID the path gives as ``container_id`` ('' when the
        path holds no ID), from the cache; None if not this runtime's. Thread-safe, no I/O."""

    async def refresh(self, ref: str) -> RuntimeContainer | None:
        """Ask the API about ``ref`` (an ID, a unique prefix or a name) now and cache the answer;
        None when it does not know it or cannot be asked (never raises)."""

    async def update(self, c: RuntimeContainer, target: Limits, current: Limits,
                     allowed_cpus: str | None) -> RuntimeUpdate:
        """Record ``target`` through the runtime's API, for the fields that differ from ``current``
        (what the runtime's record holds: the kernel's values before the change, or, for a change
        written while the runtime was down, the values it had then). ``allowed_cpus`` is every CPU
        the parent allows, as a cpuset list (how a cleared cpuset is spelled). Returns
        RuntimeUpdate(known=False) when the API does not know the container; raises
        RuntimeApiError when it refuses (status) or cannot be reached (None)."""

    def writable(self, c: RuntimeContainer) -> bool:
        """Whether limits of ``c`` go through this runtime's API at all."""

    async def start(self, on_change: OnChange) -> None:
        """Begin following the runtime (list, then events, reconnecting); never raises."""

    async def stop(self) -> None:
        """Stop following and close the API's connections."""
