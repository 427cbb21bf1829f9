"""container_health_state from Docker's healthchecks, followed through dockerd's event stream."""

from __future__ import annotations

import asyncio
import time

import pytest

from cgwatch.server.app import create_app
from tests.support.agent import value
from tests.support.cgroups import wait_for
from tests.support.docker import DOCKER_HOST

pytestmark = [pytest.mark.real, pytest.mark.docker]

# cAdvisor's values (lib/metrics/prometheus.go getContainerHealthState).
HEALTHY, NOT_HEALTHY, NO_HEALTHCHECK = 1, 0, -1


async def states(client, paths: dict[str, str]) -> dict[str, float | None]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    text = await resp.text()
    return {name: value(text, "container_health_state", id=path) for name, path in paths.items()}


async def test_health_state_follows_dockers_healthchecks(docker_containers, make_agent, aiohttp_client):
    # The agent is up first: each container is listed at its start (health "starting"), and only
    # dockerd's `health_status: ...` event can bring the verdict.
    agent = await make_agent(docker_host=DOCKER_HOST)
    client = await aiohttp_client(create_app(agent))
    runs = {
        "passing": ("--health-cmd", "true", "--health-interval", "1s"),
        "failing": ("--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1"),
        "none": (),
    }
    paths = {}
    for name, args in runs.items():
        cid, _ = await asyncio.to_thread(docker_containers.run, *args)
        paths[name] = f"/docker/{cid}"
    verdicts = {"passing": "healthy", "failing": "unhealthy", "none": None}

    def docker_says() -> dict[str, str | None]:
        return {name: (docker_containers.inspect(path.rsplit("/", 1)[1])["State"].get("Health") or {}).get("Status")
                for name, path in paths.items()}
    # "starting" is 0 as well: wait for dockerd's verdicts first, so a 0 is the unhealthy one.
    await asyncio.to_thread(wait_for, lambda: docker_says() == verdicts, 20.0, 0.2)
    want = {"passing": HEALTHY, "failing": NOT_HEALTHY, "none": NO_HEALTHCHECK}
    seen: dict[str, float | None] = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen = await states(client, paths)
        if seen == want:
            break
        await asyncio.sleep(0.2)
    assert seen == want


async def test_a_container_that_turns_unhealthy_is_seen_as_such(docker_containers, make_agent, aiohttp_client):
    agent = await make_agent(docker_host=DOCKER_HOST)
    client = await aiohttp_client(create_app(agent))
    # Healthy while /ok exists; the check fails once it is removed.
    cid, _ = await asyncio.to_thread(
        docker_containers.run, "--health-cmd", "test -e /ok", "--health-interval", "1s", "--health-retries", "1",
        cmd=("sh", "-c", "touch /ok; sleep 3; rm /ok; sleep 600"))
    path = {"c": f"/docker/{cid}"}
    seen = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (HEALTHY in seen and seen[-1] == NOT_HEALTHY):
        state = (await states(client, path))["c"]
        if not seen or seen[-1] != state:
            seen.append(state)
        await asyncio.sleep(0.2)
    # Distinct values in order; "starting" (0) may or may not be caught before the first check.
    assert HEALTHY in seen and seen[-1] == NOT_HEALTHY, seen
