"""The container inventory: every cgroup path, classified and named, at the moment of a scan."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import AmbiguousRef, ContainerNotFound, InvalidRef
from ..host.layout import CgroupLayout
from ..runtimes.base import K8S_CONTAINER, K8S_NAMESPACE, K8S_POD, K8S_POD_UID, RuntimeContainer
from .classify import Identity, classify
from .walk import walk_cgroups

# Every pattern here is used with fullmatch: `$` also matches before a trailing newline.
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX_PREFIX = re.compile(r"[0-9a-f]{1,64}")
# A ref is an ID, an ID prefix, a container name or a systemd unit: no path separators, no
# control characters (a trailing newline included), bounded (Docker names are
# [a-zA-Z0-9][a-zA-Z0-9_.-]+).
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@:=+-]{0,254}")


@dataclass(slots=True)
class Container:
    path: str                 # cgroup path; cAdvisor's `id` label
    runtime: str              # docker, containerd, cri-o, cri, podman, lxc, kubernetes, systemd, raw
    id: str                   # runtime ID, systemd unit name, or the path for raw cgroups
    name: str = ""            # cAdvisor's `name` label: '' for systemd and raw cgroups, as cAdvisor
    image: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    pod_uid: str | None = None
    qos: str | None = None
    started_at: float | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.id

    @property
    def k8s_namespace(self) -> str:
        return self.labels.get(K8S_NAMESPACE, "")

    @property
    def k8s_pod(self) -> str:
        return self.labels.get(K8S_POD, "")

    @property
    def k8s_container(self) -> str:
        return self.labels.get(K8S_CONTAINER, "")


@dataclass(frozen=True, slots=True)
class DiscoveryOptions:
    include_raw: bool = True
    ignore: tuple[str, ...] = ()


# lookup(cgroup path, the ID the path gives or '') -> what a runtime's API says (runtimes.Runtimes.find).
LookupFn = Callable[[str, str], RuntimeContainer | None]


def build_container(path: str, ident: Identity, lookup: LookupFn | None) -> Container:
    """A Container for ``path``, named by the runtime whose API claims it."""
    container_id = ident.id
    leaf = path.rsplit("/", 1)[-1]
    if ident.runtime == "raw":
        # A bare ID under an unusual parent (docker --cgroup-parent, containerd's /<namespace>/<id>):
        # a runtime may claim it, by ID or by the path it put the container at.
        container_id = leaf if _HEX64.fullmatch(leaf) else ""
    elif ident.runtime in ("systemd", "kubernetes", "lxc"):
        container_id = ""
    info = lookup(path, container_id) if lookup is not None else None
    if info is not None:
        pod_uid = ident.pod_uid or (info.labels.get(K8S_POD_UID) or None if info.kubernetes else None)
        return Container(path=path, runtime=info.runtime, id=info.id, name=info.name or info.id,
                         image=info.image, labels=info.labels, pod_uid=pod_uid,
                         qos=ident.qos, started_at=info.started_at)
    if ident.is_container:
        # The runtime's API is absent or does not know it (yet): the ID stands in for the name.
        return Container(path=path, runtime=ident.runtime, id=container_id, name=container_id,
                         pod_uid=ident.pod_uid, qos=ident.qos)
    return Container(path=path, runtime=ident.runtime, id=ident.id, pod_uid=ident.pod_uid, qos=ident.qos)


def scan(layout: CgroupLayout, options: DiscoveryOptions, lookup: LookupFn | None = None) -> list[Container]:
    """Walk every hierarchy and return the containers, sorted by cgroup path. Blocking I/O."""
    out = []
    for path in walk_cgroups(layout.hierarchy_roots(), options.ignore):
        container = build_container(path, classify(path), lookup)
        if container.runtime == "raw" and path != "/" and not options.include_raw:
            continue
        out.append(container)
    return out


def resolve(ref: str, containers: Iterable[Container]) -> Container:
    """Find a container by full ID, unique ID prefix, name or systemd unit name.

    Raises InvalidRef for anything that is not ref-shaped (paths, control characters, ...),
    ContainerNotFound, or AmbiguousRef when a prefix matches more than one container.
    """
    if not _REF.fullmatch(ref):
        raise InvalidRef("a container ref is an ID, a unique ID prefix or a name", ref=ref[:100])
    candidates = list(containers)
    exact = [c for c in candidates if ref in (c.id, c.name)]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise AmbiguousRef(f"{len(exact)} containers are named {ref!r}",
                           matches=[c.id for c in exact][:10])
    if _HEX_PREFIX.fullmatch(ref):
        prefixed = [c for c in candidates if _HEX64.fullmatch(c.id) and c.id.startswith(ref)]
        if len(prefixed) == 1:
            return prefixed[0]
        if len(prefixed) > 1:
            raise AmbiguousRef(f"ID prefix {ref!r} matches {len(prefixed)} containers",
                               matches=[c.id for c in prefixed][:10])
    raise ContainerNotFound(f"no container matches {ref!r}", ref=ref)


def allowed_labels(labels: Mapping[str, str], allow: Iterable[str]) -> dict[str, str]:
    """The container labels whose keys match one of the allowlist globs."""
    patterns = tuple(allow)
    return {k: v for k, v in labels.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}
