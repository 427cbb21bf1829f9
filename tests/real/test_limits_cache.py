"""/metrics keeps each cgroup's limits between collections (cgroup/limitcache.py): what changes them
shows at once when cgwatch, a runtime or the kernel (IN_MODIFY) says so, and within
--limits-refresh-interval otherwise."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid

import pytest

from cgwatch.server.app import create_app
from tests.support.agent import value
from tests.support.docker import DOCKER_HOST

pytestmark = pytest.mark.real


async def scrape(client) -> str:
    resp = await client.get("/metrics")
    assert resp.status == 200
    return await resp.text()


def quota_file(sandbox) -> str:
    return "cpu.max" if sandbox.is_v2 else "cpu.cfs_quota_us"


async def test_a_change_through_the_api_shows_in_the_next_scrape(sandbox, make_agent, api_client, aiohttp_client):
    a = await make_agent()  # the default refresh period: 60 s, far beyond this test
    cg = sandbox.create(f"docker/{uuid.uuid4().hex * 2}")
    client = await aiohttp_client(create_app(a))
    api = await api_client(a)
    assert value(await scrape(client), "container_spec_cpu_quota", id=cg) is None  # read, and kept
    resp = await api.patch(f"/api/v1/containers/{cg.rsplit('/', 1)[1]}/limits", data=json.dumps({"cpus": 0.5}),
                           headers={"Content-Type": "application/json"})
    assert resp.status == 200, await resp.text()
    assert value(await scrape(client), "container_spec_cpu_quota", id=cg) == 50000


async def test_a_direct_cgroupfs_write_shows_in_the_next_scrape(sandbox, make_agent, aiohttp_client):
    """Nobody announces an `echo > cpu.cfs_quota_us`, but the kernel does: the write raises IN_MODIFY
    on the cgroup's directory, which the agent's tree watches (discovery/live.py)."""
    a = await make_agent()  # the default refresh period: 60 s, far beyond this test
    cg = sandbox.create(f"docker/{uuid.uuid4().hex * 2}")
    client = await aiohttp_client(create_app(a))
    assert value(await scrape(client), "container_spec_cpu_quota", id=cg) is None  # read, and kept
    assert value(await scrape(client), "container_spec_cpu_quota", id=cg) is None
    sandbox.write(cg, quota_file(sandbox), "30000 100000" if sandbox.is_v2 else "30000")
    assert value(await scrape(client), "container_spec_cpu_quota", id=cg) == 30000


async def test_a_write_nothing_reports_shows_within_the_refresh_period(sandbox, make_agent, aiohttp_client):
    """Without the tree's IN_MODIFY (here: not listened to), the refresh period is the bound. (That
    the value is kept until then is tests/unit/test_limits_cache.py's, on a clock of its own.)"""
    a = await make_agent(limits_refresh_s=1.0)
    a.tree._on_modify = None  # as for a hierarchy the tree does not hear writes in
    cg = sandbox.create(f"docker/{uuid.uuid4().hex * 2}")
    client = await aiohttp_client(create_app(a))
    assert value(await scrape(client), "container_spec_cpu_quota", id=cg) is None
    sandbox.write(cg, quota_file(sandbox), "30000 100000" if sandbox.is_v2 else "30000")
    written = time.monotonic()
    seen = None
    while time.monotonic() - written < 5.0:
        if value(await scrape(client), "container_spec_cpu_quota", id=cg) == 30000:
            seen = time.monotonic() - written
            break
        await asyncio.sleep(0.05)
    assert seen is not None, "a direct write nothing reported never showed (period 1 s)"


async def test_a_cgroup_made_again_at_the_same_path_is_read_again(sandbox, make_agent, aiohttp_client):
    a = await make_agent()
    rel = f"docker/{uuid.uuid4().hex * 2}"
    cg = sandbox.create(rel)
    sandbox.write(cg, quota_file(sandbox), "20000 100000" if sandbox.is_v2 else "20000")
    client = await aiohttp_client(create_app(a))
    assert value(await scrape(client), "container_spec_cpu_quota", id=cg) == 20000
    assert sandbox.remove(cg) == []  # the cgroup path, not rel: remove() resolves from the hierarchy root
    assert sandbox.create(rel) == cg
    assert value(await scrape(client), "container_spec_cpu_quota", id=cg) is None  # a new cgroup: no quota


@pytest.mark.docker
async def test_a_docker_update_shows_in_metrics_at_once(docker_containers, make_agent, aiohttp_client):
    a = await make_agent(docker_host=DOCKER_HOST)
    client = await aiohttp_client(create_app(a))
    cid, _ = await asyncio.to_thread(docker_containers.run, "--cpus=0.5")
    path = f"/docker/{cid}"
    deadline = time.monotonic() + 5
    while value(await scrape(client), "container_spec_cpu_quota", id=path) != 50000:
        assert time.monotonic() < deadline, "the container's quota never showed"
        await asyncio.sleep(0.1)
    await asyncio.to_thread(subprocess.run, ["docker", "update", "--cpus", "0.25", cid], check=True,
                            capture_output=True, timeout=30)
    updated = time.monotonic()
    # dockerd's update event reaches the agent a moment after the write; the refresh period is 60 s.
    while value(await scrape(client), "container_spec_cpu_quota", id=path) != 25000:
        assert time.monotonic() - updated < 5, "docker update did not show in /metrics"
        await asyncio.sleep(0.05)
