"""Which runtime owns a cgroup path, from the path alone (pure; table-tested).

The shapes, by runtime and cgroup driver:
  docker      /docker/<id>                      (cgroupfs driver)
              /system.slice/docker-<id>.scope   (systemd driver)
  kubernetes  /kubepods/<qos>/pod<uid>/<id>     (cgroupfs driver; Guaranteed pods sit directly under kubepods)
              /kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_with_underscores>.slice/
                  cri-containerd-<id>.scope | crio-<id>.scope | docker-<id>.scope
  podman      /machine.slice/libpod-<id>.scope  (systemd), /libpod_parent/libpod-<id> (cgroupfs)
  lxc         /lxc.payload.<name> (LXC 4 and later), /lxc/<name> (earlier); the name is the ID.
              /lxc.monitor.<name> (lxc-start's monitor process) and /lxc.pivot (where LXC parks
              itself while it removes a container's cgroup) are not containers: raw.
  systemd     any *.service, *.scope, *.slice, *.socket, *.mount, *.swap unit
  raw         everything else, the root "/" included
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ID = r"([0-9a-f]{64})"
_LEAF_RUNTIMES = (
    (re.compile(rf"^docker-{_ID}\.scope$"), "docker"),
    (re.compile(rf"^cri-containerd-{_ID}\.scope$"), "containerd"),
    (re.compile(rf"^crio-{_ID}\.scope$"), "cri-o"),
    (re.compile(rf"^libpod-{_ID}(?:\.scope)?$"), "podman"),
)
_BARE_ID = re.compile(rf"^{_ID}$")
_POD_CGROUPFS = re.compile(r"^pod([0-9a-f-]{36})$")
_POD_SYSTEMD = re.compile(r"^kubepods(?:-(besteffort|burstable))?-pod([0-9a-f_]{36})\.slice$")
_QOS_CGROUPFS = {"besteffort", "burstable"}
_SYSTEMD_UNIT = re.compile(r"^.+\.(service|scope|slice|socket|mount|swap)$")
# LXC's cgroup names, as LXC 5.0.2 makes them here (/work/shared/REAL-PARTS.md; LXC before 4.0
# used lxc/<name>). A container name has no '/': it is one path segment.
_LXC_PAYLOAD = re.compile(r"^lxc\.payload\.(.+)$")
_LXC_OWN = re.compile(r"^lxc\.(monitor\..+|pivot)$")

RUNTIMES = ("docker", "containerd", "cri-o", "cri", "podman", "lxc", "kubernetes", "systemd", "raw")


@dataclass(frozen=True, slots=True)
class Identity:
    """What the path says: the runtime, its ID for the container, and Kubernetes pod facts."""

    runtime: str
    id: str
    pod_uid: str | None = None
    qos: str | None = None

    @property
    def is_container(self) -> bool:
        return self.runtime not in ("systemd", "raw", "kubernetes")


def classify(path: str) -> Identity:
    """Classify a cgroup path such as "/system.slice/docker-<id>.scope"."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return Identity("raw", "/")
    leaf = parts[-1]
    pod_uid, qos = _kubernetes_facts(parts)

    for pattern, runtime in _LEAF_RUNTIMES:
        m = pattern.match(leaf)
        if m:
            return Identity(runtime, m.group(1), pod_uid, qos)

    parent = parts[-2] if len(parts) > 1 else ""
    m = _LXC_PAYLOAD.match(leaf)
    if m:
        return Identity("lxc", m.group(1))
    if _LXC_OWN.match(leaf):
        return Identity("raw", path)  # LXC's own processes, never a container's (a .scope-like name too)
    if parent == "lxc":
        return Identity("lxc", leaf)

    m = _BARE_ID.match(leaf)
    if m:
        if parent == "docker":
            return Identity("docker", m.group(1))
        if pod_uid:
            # cgroupfs driver: the path does not say which CRI runtime made it.
            return Identity("cri", m.group(1), pod_uid, qos)
        # Another parent (docker --cgroup-parent, containerd namespaces): enrichment may claim it.
        return Identity("raw", path, None, None)

    if pod_uid and (_POD_CGROUPFS.match(leaf) or _POD_SYSTEMD.match(leaf)):
        return Identity("kubernetes", pod_uid, pod_uid, qos)
    if _SYSTEMD_UNIT.match(leaf):
        return Identity("systemd", leaf)
    return Identity("raw", path)


def kubelet_owned(path: str) -> bool:
    """Inside the kubelet's hierarchy (`/kubepods`, its QoS cgroups, pods and their containers):
    the kubelet sets these limits and puts back what anyone else writes."""
    return any(_is_kubepods(p) for p in path.split("/") if p)


def _is_kubepods(part: str) -> bool:
    return part == "kubepods" or part.startswith("kubepods.") or part.startswith("kubepods-")


def _kubernetes_facts(parts: list[str]) -> tuple[str | None, str | None]:
    """(pod UID, QoS class) when the path lies inside a Kubernetes pod cgroup."""
    if not any(_is_kubepods(p) for p in parts):
        return None, None
    for i, part in enumerate(parts):
        m = _POD_CGROUPFS.match(part)
        if m:
            prev = parts[i - 1] if i else ""
            return m.group(1), prev if prev in _QOS_CGROUPFS else "guaranteed"
        m = _POD_SYSTEMD.match(part)
        if m:
            return m.group(2).replace("_", "-"), m.group(1) or "guaranteed"
    return None, None
