"""The container inventory: every cgroup path, classified and named, at the moment of a scan."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import AmbiguousRef, CgroupNotFound, ContainerNotFound, InvalidCgroupPath, InvalidRef, ProtectedCgroup
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
# A cgroup path's text: no control characters (NUL, a newline in an audit line or a log), bounded
# by PATH_MAX. The segments are checked one by one (parse_cgroup_path).
_PATH_TEXT = re.compile(r"[^\x00-\x1f\x7f]{0,4095}")


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
    health: str | None = None   # the runtime's healthcheck verdict (RuntimeContainer.health)

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
                         qos=ident.qos, started_at=info.started_at, health=info.health)
    if ident.is_container:
        # The runtime's API is absent or does not know it (yet): the ID stands in for the name
        # (an LXC container's ID is its name, from the path: no API names it).
        return Container(path=path, runtime=ident.runtime, id=ident.id, name=ident.id,
                         pod_uid=ident.pod_uid, qos=ident.qos)
    return Container(path=path, runtime=ident.runtime, id=ident.id, pod_uid=ident.pod_uid, qos=ident.qos)


def scan(layout: CgroupLayout, options: DiscoveryOptions, lookup: LookupFn | None = None,
         paths: Callable[[], Iterable[str]] | None = None) -> list[Container]:
    """The containers, sorted by cgroup path: of the sorted ``paths()`` (the agent's tree kept
    between scans, live.py), else of a walk of every hierarchy. Blocking I/O."""
    out = []
    for path in (paths() if paths is not None else walk_cgroups(layout.hierarchy_roots(), options.ignore)):
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


@dataclass(frozen=True, slots=True)
class CgroupPath:
    """A target named by its cgroup path ("/batch/job-7"), as parse_cgroup_path made it: a plain
    cgroup, an LXC container, a systemd unit whose name is not unique, any container by its cgroup."""

    path: str

    def __str__(self) -> str:
        return self.path


# What the limits API changes: a container ref ("web", an ID or prefix) or a cgroup path.
Target = str | CgroupPath


def parse_cgroup_path(text: str) -> CgroupPath:
    """``text`` as a cgroup path, "batch/job-7" or "/batch/job-7" alike ('' is the root).

    A path must name exactly the cgroup the walk lists under it, so nothing that a filesystem
    would resolve to somewhere else is taken ("..", ".", "//"): such a path is refused, not
    normalised. Raises InvalidCgroupPath.
    """
    if not _PATH_TEXT.fullmatch(text):
        raise InvalidCgroupPath("a cgroup path has no control characters and at most 4095 characters",
                                path=text[:200])
    rel = text[1:] if text.startswith("/") else text
    if rel and any(seg in ("", ".", "..") for seg in rel.split("/")):
        raise InvalidCgroupPath("a cgroup path is the one the agent lists (\"cgroup\" in GET /api/v1/containers): "
                                "no '..', '.' or empty segments", path=text[:200])
    return CgroupPath("/" + rel)


def find_path(target: CgroupPath, containers: Iterable[Container], ignore: Iterable[str] = ()) -> Container:
    """The cgroup the walk found at ``target``: a container's cgroup is that container (so its
    runtime applies a change), any other cgroup is itself (runtime raw, systemd, lxc...).

    Raises ProtectedCgroup for the root, CgroupNotFound for a path no walk lists (``ignore``,
    the walk's --ignore-cgroup globs, says why when one of them hides it)."""
    check_path(target, ignore)
    for c in containers:
        if c.path == target.path:
            return c
    raise CgroupNotFound(f"the agent sees no cgroup {target.path!r} now (a path is one GET /api/v1/containers "
                         "lists as \"cgroup\"; plain cgroups are left out under --no-raw-cgroups)",
                         path=target.path[:200])


def check_path(target: CgroupPath, ignore: Iterable[str] = ()) -> None:
    """Refuse what no walk could make writable: the root, and cgroups the walk is told to skip."""
    if target.path == "/":
        raise ProtectedCgroup("the root cgroup holds the whole host, not a container: cgwatch does not change it",
                              path="/")
    pattern = ignored_by(target.path, ignore)
    if pattern is not None:
        raise CgroupNotFound(f"cgroup {target.path!r} is ignored (--ignore-cgroup {pattern!r}): the agent neither "
                             "reads nor changes it", path=target.path[:200], ignored_by=pattern)


def ignored_by(path: str, ignore: Iterable[str]) -> str | None:
    """The --ignore-cgroup glob that hides ``path``: the walk skips a matching cgroup and all below it."""
    patterns = tuple(ignore)
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/" + "/".join(parts[:i])
        for p in patterns:
            if fnmatch.fnmatchcase(prefix, p):
                return p
    return None


def find_target(target: Target, containers: Iterable[Container], ignore: Iterable[str] = ()) -> Container:
    """A container ref resolved as resolve() does, a cgroup path as find_path() does."""
    if isinstance(target, CgroupPath):
        return find_path(target, containers, ignore)
    return resolve(target, containers)


def allowed_labels(labels: Mapping[str, str], allow: Iterable[str]) -> dict[str, str]:
    """The container labels whose keys match one of the allowlist globs."""
    patterns = tuple(allow)
    return {k: v for k, v in labels.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}
