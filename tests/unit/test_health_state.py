"""A container's healthcheck verdict: from Docker's inspect JSON to container_health_state."""

from __future__ import annotations

import pytest

from cgwatch.collectors.health import health_state
from cgwatch.discovery.classify import classify
from cgwatch.discovery.inventory import build_container
from cgwatch.runtimes.docker.adapter import runtime_container
from cgwatch.runtimes.docker.parsing import parse_container

CID = "5d1c0b9e" * 8
# State of `docker run -d --health-cmd true --health-interval 1s local/busybox sleep 60` on the
# suite's dockerd (20.10), 2.5 s after the start: `docker inspect -f '{{json .State}}'`.
STATE = {"Status": "running", "Running": True, "Paused": False, "Restarting": False, "OOMKilled": False,
         "Dead": False, "Pid": 29343, "ExitCode": 0, "Error": "", "StartedAt": "2026-11-30T07:39:08.80003482Z",
         "FinishedAt": "0001-01-01T00:00:00Z",
         "Health": {"Status": "healthy", "FailingStreak": 0, "Log": [
             {"Start": "2026-11-30T07:39:09.803686134Z", "End": "2026-11-30T07:39:09.872945452Z", "ExitCode": 0,
              "Output": ""}]}}


def inspect(state: dict) -> dict:
    return {"Id": CID, "Name": "/web", "Config": {"Image": "local/busybox"}, "State": state}


def test_the_healthcheck_verdict_is_read_from_state_health():
    assert parse_container(inspect(STATE)).health == "healthy"


def test_a_container_without_a_healthcheck_has_no_verdict():
    # Docker leaves State.Health out when the container has no healthcheck.
    state = {k: v for k, v in STATE.items() if k != "Health"}
    assert parse_container(inspect(state)).health is None


@pytest.mark.parametrize("health", [None, {}, {"Status": ""}, {"Status": 3}, "healthy"])
def test_a_malformed_health_is_no_verdict(health):
    assert parse_container(inspect({**STATE, "Health": health})).health is None


def test_the_verdict_reaches_the_inventorys_container():
    info = runtime_container(parse_container(inspect(STATE)))
    path = f"/docker/{CID}"
    c = build_container(path, classify(path), lambda p, cid: info if cid == CID else None)
    assert c.health == "healthy"


@pytest.mark.parametrize("health, state", [
    ("healthy", 1), ("unhealthy", 0), ("starting", 0),   # cAdvisor's getContainerHealthState
    (None, -1), ("", -1), ("none", -1),                  # no healthcheck
])
def test_health_state_has_cadvisors_values(health, state):
    assert health_state(health) == state
