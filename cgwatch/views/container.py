"""JSON shapes of the API: a container with its usage and the limits the kernel holds now."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from ..cgroup.base import CgroupReader
from ..discovery.inventory import Container


def container_json(c: Container, reader: CgroupReader) -> dict[str, Any]:
    """Blocking: reads the cgroup's files."""
    limits = reader.limits(c.path)
    cpu = reader.cpu(c.path)
    memory = reader.memory(c.path)
    return {
        "id": c.id,
        "name": c.display_name,
        "runtime": c.runtime,
        "cgroup": c.path,
        "image": c.image or None,
        "labels": dict(c.labels),
        "pod_uid": c.pod_uid,
        "qos": c.qos,
        "started_at": c.started_at if c.started_at is not None else reader.created(c.path),
        "usage": {
            "cpu": asdict(cpu) if cpu is not None else None,
            "memory": asdict(memory) if memory is not None else None,
            "tasks": asdict(reader.tasks(c.path)),
        },
        "limits": {**asdict(limits), "cpus": limits.cpus},
    }


def listing_json(containers: list[Container], reader: CgroupReader) -> bytes:
    """GET /api/v1/containers' body for ``containers``. Blocking: reads their cgroups' files."""
    return json.dumps({"containers": [container_json(c, reader) for c in containers]}).encode()
