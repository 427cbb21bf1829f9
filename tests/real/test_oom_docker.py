"""A real dockerd: a container whose main process is OOM-killed dies with it, and its cgroup goes at
once (/work/shared/REAL-PARTS.md); its series stay, named, with the kill counted."""

from __future__ import annotations

import asyncio
import time

import pytest

from cgwatch.server.app import create_app
from tests.support.aio import until
from tests.support.agent import value
from tests.support.docker import DOCKER_HOST

pytestmark = [pytest.mark.real, pytest.mark.docker]

# The reproduction: the shell holds 200 MB in a variable under a 50 MiB limit.
OOM = ("sh", "-c", "x=$(yes | head -c 200000000)")


async def test_a_container_oom_killed_before_any_scrape_keeps_its_named_series_with_the_kill(
        docker_containers, make_agent, aiohttp_client):
    agent = await make_agent(docker_host=DOCKER_HOST, removed_retention_s=300.0)
    client = await aiohttp_client(create_app(agent))

    async def connected():
        return agent.runtimes.get("docker").connected
    await until(connected, 10, "the Docker event stream")

    cid, name = await asyncio.to_thread(docker_containers.run, "--memory", "50m", cmd=OOM)

    async def exited():
        state = (await asyncio.to_thread(docker_containers.inspect, cid))["State"]
        return None if state["Running"] else state
    state = await until(exited, 60, "the container's exit")
    assert (state["OOMKilled"], state["ExitCode"]) == (True, 137)

    path = f"/docker/{cid}"

    async def kept():
        resp = await client.get("/metrics")
        text = await resp.text()
        return text if value(text, "container_oom_kills_total", id=path) is not None else None
    # No scrape saw it alive: the agent watched it from its mkdir (births), and keeps it from there.
    text = await until(kept, 10, "the dead container's series")
    assert value(text, "container_oom_kills_total", id=path, name=name, image="local/busybox") == 1
    assert value(text, "container_oom_events_total", id=path, name=name) == 1
    assert value(text, "container_info", id=path, name=name, runtime="docker", runtime_id=cid) == 1
    assert value(text, "container_last_seen", id=path, name=name) <= time.time()
    await asyncio.sleep(1.0)
    again = await (await client.get("/metrics")).text()
    assert value(again, "container_oom_kills_total", id=path, name=name) == 1  # counted once, for good
