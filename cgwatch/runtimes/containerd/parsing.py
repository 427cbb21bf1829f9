"""containerd's records -> what cgwatch knows of a container (pure functions).

A container record (api/services/containers/v1 Container) carries the image, the labels (the CRI
writes the pod's identity there) and the OCI spec: an Any whose value is the spec's JSON, in which
``linux.cgroupsPath`` says where runc put the container. The task (api/types/task Process) says
whether it runs. An event Envelope names its namespace, topic and a payload that names the container.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..base import K8S_CONTAINER, K8S_NAMESPACE, K8S_POD, K8S_POD_UID, RuntimeContainer
from .api.events import container_pb2 as container_events
from .api.events import task_pb2 as task_events
from .api.services.containers.v1 import containers_pb2
from .api.services.events.v1 import events_pb2
from .api.types.task import task_pb2

log = logging.getLogger("cgwatch.containerd")

NAME = "containerd"

# nerdctl's name for a container (nerdctl pkg/labels: labels.Name).
NERDCTL_NAME = "nerdctl/name"
# The CRI plugin's label: "sandbox" for a pod's pause container, "container" otherwise
# (containerd 1.6 pkg/cri/server/helpers.go, containerKindLabel).
CRI_KIND = "io.cri-containerd.kind"
# Where the CRI keeps its own record of a container or sandbox, as JSON {"Version": "v1", "Metadata":
# {"Name": ...}}, Name being exactly the CRI's name (pkg/cri/store/container/metadata.go,
# pkg/cri/store/sandbox/metadata.go; written by container_create.go and sandbox_run.go).
CRI_CONTAINER_METADATA = "io.cri-containerd.container.metadata"
CRI_SANDBOX_METADATA = "io.cri-containerd.sandbox.metadata"
# The pod's UID as the CRI writes it into the spec (pkg/cri/annotations: SandboxUID), and the
# kubelet's restart count when an annotation carries it (kubelet kuberuntime/labels.go).
CRI_SANDBOX_UID = "io.kubernetes.cri.sandbox-uid"
K8S_RESTART_COUNT = "io.kubernetes.container.restartCount"

# Task states in which the container's processes (and so its cgroup) exist.
_LIVE = frozenset({task_pb2.RUNNING, task_pb2.PAUSED, task_pb2.PAUSING})


def parse_spec(spec: Any) -> Mapping[str, Any]:
    """The OCI spec of a container record (an Any holding JSON); {} when absent or unreadable."""
    raw = getattr(spec, "value", b"")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        log.warning("unreadable OCI spec in a containerd record", extra={"error": str(exc)})
        return {}
    return data if isinstance(data, Mapping) else {}


_SLICE_PART = re.compile(r"[^-/]+")


def expand_slice(slice_name: str) -> str:
    """A systemd slice name -> its cgroup path, as systemd nests them: ``a-b-c.slice`` is
    ``/a.slice/a-b.slice/a-b-c.slice``; ``-.slice`` is the root (runc's systemd.ExpandSlice).
    ValueError for anything that is not a slice name."""
    if not slice_name.endswith(".slice") or "/" in slice_name:
        raise ValueError(f"not a slice: {slice_name!r}")
    stem = slice_name[: -len(".slice")]
    if stem == "-":
        return "/"
    parts = stem.split("-")
    if not all(_SLICE_PART.fullmatch(p) for p in parts):
        raise ValueError(f"not a slice: {slice_name!r}")
    return "".join("/" + "-".join(parts[: i + 1]) + ".slice" for i in range(len(parts)))


def cgroup_path_of(cgroups_path: Any) -> str | None:
    """``linux.cgroupsPath`` -> the cgroup path cgwatch's walk sees, or None when it cannot say.

    The cgroupfs driver's value is the path itself ("/kubepods/besteffort/pod<uid>/<id>", ctr's
    "/<namespace>/<id>"). The systemd driver's is "slice:prefix:name" (runc's
    libcontainer/cgroups/systemd: the unit "<prefix>-<name>.scope" under the expanded slice,
    system.slice when the slice is empty). A relative path is relative to runc's own cgroup,
    which is not known here: None."""
    if not isinstance(cgroups_path, str) or not cgroups_path:
        return None
    if cgroups_path.startswith("/"):
        return "/" + cgroups_path.strip("/")
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        return None
    slice_name, prefix, name = parts
    try:
        parent = expand_slice(slice_name or "system.slice")
    except ValueError:
        return None
    unit = name if name.endswith(".slice") else f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    return f"{parent.rstrip('/')}/{unit}"


def cri_name(extensions: Mapping[str, bytes]) -> str:
    """The CRI's own name of a container or sandbox, from its metadata extension; '' if none."""
    for key in (CRI_CONTAINER_METADATA, CRI_SANDBOX_METADATA):
        raw = extensions.get(key)
        if not raw:
            continue
        try:
            meta = json.loads(raw).get("Metadata") or {}
        except (ValueError, AttributeError):
            continue
        name = meta.get("Name") if isinstance(meta, Mapping) else None
        if isinstance(name, str) and name:
            return name
    return ""


def container_name(cid: str, labels: Mapping[str, str], annotations: Mapping[str, str],
                   extensions: Mapping[str, bytes]) -> str:
    """How a container's users name it.

    nerdctl's name label; for the kubelet's containers the name the CRI gives them
    (``<container>_<pod>_<namespace>_<pod uid>_<attempt>``; a sandbox ``<pod>_<namespace>_<pod
    uid>_<attempt>``: containerd 1.6 pkg/cri/server/helpers.go makeContainerName, makeSandboxName),
    shortened to the parts known when the CRI's record is absent; otherwise the ID (what ctr shows).
    """
    if labels.get(NERDCTL_NAME):
        return labels[NERDCTL_NAME]
    pod, namespace = labels.get(K8S_POD, ""), labels.get(K8S_NAMESPACE, "")
    if not (pod and namespace):
        return cid
    known = cri_name(extensions)
    if known:
        return known
    container = labels.get(K8S_CONTAINER, "")
    parts = [pod, namespace] if labels.get(CRI_KIND) == "sandbox" or not container else [container, pod, namespace]
    uid = labels.get(K8S_POD_UID) or annotations.get(CRI_SANDBOX_UID, "")
    attempt = annotations.get(K8S_RESTART_COUNT, "")
    if uid and attempt.isdigit():
        parts += [uid, attempt]
    return "_".join(parts)


def parse_container(namespace: str, record: containers_pb2.Container,
                    task: task_pb2.Process | None) -> RuntimeContainer:
    """A container record (and its task, None when it has none) -> RuntimeContainer.

    The labels are the record's, untouched: a sandbox keeps the pod's name and namespace and has no
    io.kubernetes.container.name, so its `container` label is '' as under the kubelet's cAdvisor
    (cAdvisor's containerd handler takes the record's labels as the spec's; kubelet's
    containerPrometheusLabelsFunc reads the container label from them; containerd's CRI gives a
    sandbox only the kubelet's pod labels plus io.cri-containerd.kind). started_at stays None:
    containerd 1.6's task has no start time, and the cgroup's creation time stands in, as in
    cAdvisor's."""
    spec = parse_spec(record.spec)
    linux = spec.get("linux") if isinstance(spec.get("linux"), Mapping) else {}
    annotations = spec.get("annotations") if isinstance(spec.get("annotations"), Mapping) else {}
    labels = dict(record.labels)
    extensions = {k: v.value for k, v in record.extensions.items()
                  if k in (CRI_CONTAINER_METADATA, CRI_SANDBOX_METADATA)}
    return RuntimeContainer(
        runtime=NAME,
        id=record.id,
        name=container_name(record.id, labels, {str(k): str(v) for k, v in annotations.items()}, extensions),
        image=record.image,
        labels=labels,
        running=task is not None and task.status in _LIVE,
        cgroup_path=cgroup_path_of(linux.get("cgroupsPath")),
        namespace=namespace,
    )


def task_container_id(task: task_pb2.Process) -> str:
    """Tasks.List answers with the container's ID in ``id`` (containerd 1.6 leaves container_id empty)."""
    return task.container_id or task.id


@dataclass(frozen=True, slots=True)
class ContainerdEvent:
    namespace: str
    topic: str                     # "/tasks/start", ...
    container_id: str
    timestamp: float               # epoch seconds


# The topics that change what cgwatch knows of a container, and the payload each carries; the
# container's ID is in `id` (container events) or `container_id` (task events): api/events/*.proto.
TOPICS: dict[str, tuple[type, str]] = {
    "/containers/create": (container_events.ContainerCreate, "id"),
    "/containers/update": (container_events.ContainerUpdate, "id"),
    "/containers/delete": (container_events.ContainerDelete, "id"),
    "/tasks/start": (task_events.TaskStart, "container_id"),
    "/tasks/exit": (task_events.TaskExit, "container_id"),
    "/tasks/delete": (task_events.TaskDelete, "container_id"),
    # The shim's own watch of the container's memory cgroup (runc's OOM notifier): an OOM kill.
    "/tasks/oom": (task_events.TaskOOM, "container_id"),
}
# Topics that say something happened in a container without changing what is cached of it.
NOTICES = frozenset({"/tasks/oom"})


def subscription_filters() -> list[str]:
    """Events.Subscribe filters for TOPICS (containerd's filter syntax; several filters are ORed)."""
    return [f'topic=="{topic}"' for topic in TOPICS]


def parse_envelope(envelope: events_pb2.Envelope) -> ContainerdEvent | None:
    """An event Envelope -> ContainerdEvent; None for a topic not in TOPICS. ValueError for a payload
    that does not decode or names no container."""
    known = TOPICS.get(envelope.topic)
    if known is None:
        return None
    payload_type, field = known
    try:
        payload = payload_type.FromString(envelope.event.value)
    except Exception as exc:  # protobuf's DecodeError, and anything a broken payload makes it raise
        raise ValueError(f"{envelope.topic}: undecodable payload: {exc}") from exc
    cid = getattr(payload, field)
    if not cid or not envelope.namespace:
        raise ValueError(f"{envelope.topic}: no container ID or namespace")
    when = envelope.timestamp.seconds + envelope.timestamp.nanos / 1e9
    return ContainerdEvent(namespace=envelope.namespace, topic=envelope.topic, container_id=cid, timestamp=when)
