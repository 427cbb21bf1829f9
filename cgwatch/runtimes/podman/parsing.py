"""Podman's libpod API JSON (inspect, list entry, event, version) -> PodmanContainer / PodmanEvent: pure.

Shapes as Podman 4.3.1 sends them (tests/fixtures/podman/ holds captures): inspect has ``Name``
(no leading '/', unlike Docker), ``ImageName``, ``Config.Labels`` and RFC 3339 ``State.StartedAt``;
a list entry has ``Names``, ``Image``, ``Labels`` and ``StartedAt`` in epoch seconds. Events have
Docker's shape (``Type``, ``Action``, ``Actor.ID``) with libpod's own action names ("died", "remove").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..docker.parsing import health_status, parse_docker_time
from ..docker.parsing import parse_event as parse_docker_event

log = logging.getLogger("cgwatch.podman")


@dataclass(frozen=True, slots=True)
class PodmanContainer:
    id: str
    name: str
    image: str                     # as Podman resolved it: 'localhost/local/busybox:latest'
    labels: Mapping[str, str]      # Config.Labels (never env vars)
    started_at: float | None       # epoch seconds; None if never started
    running: bool
    health: str | None = None      # State.Health.Status ("starting", "healthy", "unhealthy"); None without one


@dataclass(frozen=True, slots=True)
class PodmanEvent:
    action: str                    # libpod's words: 'create', 'init', 'start', 'died', 'remove', ...
    id: str
    name: str = ""
    time: float = 0.0              # epoch seconds


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _time(value: Any, what: str, cid: str) -> float | None:
    # One bad timestamp must not cost the whole container: log it and leave the field unknown.
    try:
        return parse_docker_time(value)
    except ValueError as exc:
        log.warning("unparseable podman time", extra={"container": cid, "field": what, "error": str(exc)})
        return None


def _id(data: Any, key: str, what: str) -> str:
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} is not a JSON object")
    cid = data.get(key)
    if not isinstance(cid, str) or not cid:
        raise ValueError(f"{what} without an {key}")
    return cid


def parse_container(data: Mapping[str, Any]) -> PodmanContainer:
    """``GET /libpod/containers/{id}/json`` -> PodmanContainer. ValueError without an ``Id``."""
    cid = _id(data, "Id", "inspect JSON")
    config = data.get("Config") or {}
    state = data.get("State") or {}
    return PodmanContainer(
        id=cid,
        name=str(data.get("Name") or "").lstrip("/"),
        # ImageName is the reference the container was made from; Image is the resolved image ID.
        image=str(data.get("ImageName") or config.get("Image") or data.get("Image") or ""),
        labels=_str_map(config.get("Labels")),
        started_at=_time(state.get("StartedAt"), "State.StartedAt", cid),
        running=bool(state.get("Running")),
        # Podman keeps State.Health with Status "" for a container without a healthcheck.
        health=health_status(state.get("Health")),
    )


def parse_list_entry(data: Mapping[str, Any]) -> PodmanContainer:
    """One entry of ``GET /libpod/containers/json``: the fallback when inspect fails. Its StartedAt
    has whole seconds only (Go's zero time, -62135596800, for a container never started)."""
    cid = _id(data, "Id", "container list entry")
    names = data.get("Names") or []
    return PodmanContainer(
        id=cid,
        name=str(names[0]).lstrip("/") if isinstance(names, list) and names else "",
        image=str(data.get("Image") or ""),
        labels=_str_map(data.get("Labels")),
        started_at=_time(data.get("StartedAt"), "StartedAt", cid),
        running=data.get("State") == "running",
    )


def parse_event(data: Any) -> PodmanEvent | None:
    """One object of ``GET /libpod/events`` -> PodmanEvent; None for a non-container event.

    libpod's events are Docker-shaped (Type, Actor.ID, Actor.Attributes, Action, time, timeNano),
    so Docker's parser reads them; the container's name is among the attributes. ValueError for
    something that is not an event at all (not an object, a container event without an ID or an
    action).
    """
    ev = parse_docker_event(data)
    if ev is None:
        return None
    return PodmanEvent(action=ev.action, id=ev.id, name=ev.attributes.get("name", ""), time=ev.time)


_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    """The ``Libpod-Api-Version`` header ('4.3.1', '5.0.0-dev') -> (4, 3, 1); None if absent or odd."""
    m = _VERSION.match((text or "").strip())
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
