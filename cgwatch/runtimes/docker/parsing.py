"""Docker Engine API JSON (inspect, list entry, event) -> DockerContainer / DockerEvent: pure functions."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

log = logging.getLogger("cgwatch.docker")


@dataclass(frozen=True, slots=True)
class DockerContainer:
    id: str
    name: str                      # without the leading '/'
    image: str                     # Config.Image as the user gave it (e.g. 'local/busybox')
    labels: Mapping[str, str]      # Config.Labels (never env vars)
    created: float | None          # epoch seconds
    started_at: float | None       # State.StartedAt; None if never started
    pid: int | None                # State.Pid; None when 0 (not running)
    running: bool
    cgroup_parent: str = ""        # HostConfig.CgroupParent ('' = the daemon's default)
    health: str | None = None      # State.Health.Status: "starting", "healthy", "unhealthy"; None without a healthcheck


@dataclass(frozen=True, slots=True)
class DockerEvent:
    action: str                    # as sent: 'start', 'exec_start: sh -c ...', 'health_status: healthy'
    id: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    time: float = 0.0              # epoch seconds


_TIME_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)")


def parse_docker_time(value: str | float | None) -> float | None:
    """RFC 3339 with up to nanosecond fractions (Docker's format) -> epoch seconds.

    None for a missing value and for Go's zero time ``0001-01-01T00:00:00Z``, which Docker sends for
    "never" (e.g. StartedAt of a created, never started container). Numbers are taken as epoch
    seconds (the list endpoint's ``Created``). Raises ValueError for anything else.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        return float(value) if value > 0 else None
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    m = _TIME_RE.fullmatch(value.strip())
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if year <= 1:
        return None
    zone = m.group(8)
    if zone in ("Z", "z"):
        tz = timezone.utc
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    # datetime keeps microseconds at most: add the fraction separately so nanoseconds parse too.
    whole = datetime(year, month, day, hour, minute, second, tzinfo=tz).timestamp()
    frac = m.group(7)
    return whole + (int(frac) / 10 ** len(frac) if frac else 0.0)


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _time_field(value: Any, what: str, cid: str) -> float | None:
    # One bad timestamp must not cost the whole container: log it and leave the field unknown.
    try:
        return parse_docker_time(value)
    except ValueError as exc:
        log.warning("unparseable docker time", extra={"container": cid, "field": what, "error": str(exc)})
        return None


def parse_container(data: Mapping[str, Any]) -> DockerContainer:
    """``GET /containers/{id}/json`` (inspect) -> DockerContainer. ValueError without an ``Id``."""
    if not isinstance(data, Mapping):
        raise ValueError("inspect JSON is not an object")
    cid = data.get("Id")
    if not isinstance(cid, str) or not cid:
        raise ValueError("inspect JSON without an Id")
    config = data.get("Config") or {}
    state = data.get("State") or {}
    host_config = data.get("HostConfig") or {}
    pid = state.get("Pid")
    return DockerContainer(
        id=cid,
        name=str(data.get("Name") or "").lstrip("/"),
        # Config.Image is what the user asked for; the top-level Image is the resolved sha256 ID.
        image=str(config.get("Image") or data.get("Image") or ""),
        labels=_str_map(config.get("Labels")),
        created=_time_field(data.get("Created"), "Created", cid),
        started_at=_time_field(state.get("StartedAt"), "State.StartedAt", cid),
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None,
        running=bool(state.get("Running")),
        cgroup_parent=str(host_config.get("CgroupParent") or ""),
        health=health_status(state.get("Health")),
    )


def health_status(health: Any) -> str | None:
    # State.Health is there only for a container with a healthcheck (Engine API, ContainerState).
    status = health.get("Status") if isinstance(health, Mapping) else None
    return status if isinstance(status, str) and status else None


def parse_list_entry(data: Mapping[str, Any]) -> DockerContainer:
    """One entry of ``GET /containers/json``: a fallback when inspect fails (no StartedAt, no Pid)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("Id"), str) or not data["Id"]:
        raise ValueError("container list entry without an Id")
    cid = data["Id"]
    names = data.get("Names") or []
    host_config = data.get("HostConfig") or {}
    return DockerContainer(
        id=cid,
        name=str(names[0]).lstrip("/") if names else "",
        image=str(data.get("Image") or ""),
        labels=_str_map(data.get("Labels")),
        created=_time_field(data.get("Created"), "Created", cid),
        started_at=None,
        pid=None,
        running=data.get("State") == "running",
        cgroup_parent=str(host_config.get("CgroupParent") or "") if isinstance(host_config, Mapping) else "",
    )


def parse_event(data: Any) -> DockerEvent | None:
    """One object of ``GET /events`` -> DockerEvent; None for a non-container event.

    ValueError for something that is not an event at all (not an object, a container event with no ID).
    """
    if not isinstance(data, Mapping):
        raise ValueError("event is not a JSON object")
    if data.get("Type", "container") != "container":
        return None
    actor = data.get("Actor") if isinstance(data.get("Actor"), Mapping) else {}
    cid = actor.get("ID") or data.get("id")
    action = data.get("Action") or data.get("status")
    if not isinstance(cid, str) or not cid or not isinstance(action, str) or not action:
        raise ValueError("container event without an ID or an action")
    nanos = data.get("timeNano")
    if isinstance(nanos, int) and not isinstance(nanos, bool) and nanos > 0:
        when = nanos / 1e9
    else:
        t = data.get("time")
        when = float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else 0.0
    return DockerEvent(action=action, id=cid, attributes=_str_map(actor.get("Attributes")), time=when)
