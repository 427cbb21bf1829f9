"""JSON shapes of the API: a container with its usage and the limits the kernel holds now."""

from __future__ import annotations

import json
from typing import Any

from ..cgroup.base import CgroupReader
from ..discovery.inventory import Container


def flat(obj: Any) -> dict[str, Any]:
    """A flat model dataclass (model.py: slots, fields of numbers and strings) as a dict: what
    ``dataclasses.asdict`` gives, without its recursive deep copy (4 of them a container made the
    listing of 3000 containers cost a tenth of a second)."""
    return {name: getattr(obj, name) for name in obj.__slots__}


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
            "cpu": flat(cpu) if cpu is not None else None,
            "memory": flat(memory) if memory is not None else None,
            "tasks": flat(reader.tasks(c.path)),
        },
        "limits": {**flat(limits), "cpus": limits.cpus},
    }


def listing_json(containers: list[Container], reader: CgroupReader, collected_at: float | None = None,
                 collection: float | None = None) -> bytes:
    """GET /api/v1/containers' body for ``containers``. Blocking: reads their cgroups' files.

    ``collected_at`` (epoch seconds) is when the collection's readings were taken: a client's rates
    are over the time between two of them, not between its requests (a collection may be served
    twice within --max-age). ``collection`` is opaque: ``?after=`` it asks for a newer one."""
    return json.dumps({"collected_at": collected_at, "collection": collection,
                       "containers": [container_json(c, reader) for c in containers]}).encode()
