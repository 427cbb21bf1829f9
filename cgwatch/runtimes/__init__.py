"""Container runtime adapters behind one seam (base.py): each claims its containers' cgroups, names
them from its own API and may change their limits through it.

    base.py        the seam: RuntimeContainer, Runtime, RuntimeApiError
    registry.py    Runtimes: the adapters in order, cgwatch_runtime_up, /healthz
    watch.py       CacheWatcher: a list, then the event stream, reconnecting (Docker, Podman)
    listing.py     a list whose entries are each inspected (Docker, Podman)
    docker/        the Docker Engine API
    podman/        Podman's libpod API
    containerd/    containerd's gRPC API (and so Kubernetes with containerd)

systemd units, LXC containers and plain cgroups need no API: the path says what they are
(discovery/classify.py), and their limits are written to cgroupfs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .base import Runtime

if TYPE_CHECKING:
    from ..config import Settings
    from .docker import DockerClient

log = logging.getLogger("cgwatch.runtimes")


def build_runtimes(settings: Settings, *, docker_client: DockerClient | None = None) -> list[Runtime]:
    """The adapters ``settings`` ask for, in the order they claim cgroups. A runtime whose address
    is '' is not followed; one that is down is followed anyway (it may come up later)."""
    adapters: list[Runtime] = []
    if docker_client is not None or settings.docker_host:
        from .docker import DockerClient, DockerRuntime
        adapters.append(DockerRuntime(docker_client or DockerClient(settings.docker_host)))
    if settings.podman_host:
        from .podman import PodmanRuntime
        adapters.append(PodmanRuntime(settings.podman_host))
    if settings.containerd_host:
        from .containerd import ContainerdRuntime
        adapters.append(ContainerdRuntime(settings.containerd_host,
                                          allow_kubernetes_writes=settings.allow_kubernetes_writes))
    return adapters
