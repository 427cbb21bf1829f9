"""A real dockerd: containers are named through the Engine API, and limits go through it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest

from cgwatch.server.app import create_app
from tests.support.agent import value
from tests.support.cgroups import wait_for
from tests.support.docker import DOCKER_HOST

pytestmark = [pytest.mark.real, pytest.mark.docker]

CG = Path("/sys/fs/cgroup")


@pytest.fixture
async def docker_agent(make_agent):
    return await make_agent(docker_host=DOCKER_HOST)


@pytest.fixture
async def docker_api(docker_agent, api_client):
    return await api_client(docker_agent)


async def scrape_text(client) -> str:
    resp = await client.get("/metrics")
    assert resp.status == 200
    return await resp.text()


async def test_docker_run_limits_show_up_named(docker_containers, docker_agent, docker_api):
    cid, name = await asyncio.to_thread(docker_containers.run, "--cpus=0.5", "--memory=100m")
    path = f"/docker/{cid}"

    async def named():
        text = await scrape_text(docker_api)
        return text if value(text, "container_spec_cpu_quota", id=path, name=name) is not None else None

    text = None
    for _ in range(50):  # the event stream names it within a moment of the start
        text = await named()
        if text:
            break
        await asyncio.sleep(0.1)
    assert text, "container never appeared with its name"
    assert value(text, "container_spec_cpu_quota", id=path, name=name, image="local/busybox") == 50000
    assert value(text, "container_spec_cpu_period", id=path, name=name) == 100000
    assert value(text, "container_spec_memory_limit_bytes", id=path, name=name) == 104857600
    assert value(text, "container_info", id=path, name=name, runtime="docker") == 1
    # Its own network namespace: eth0 counters, and no loopback.
    assert value(text, "container_network_receive_bytes_total", id=path, interface="eth0") is not None
    assert value(text, "container_network_receive_bytes_total", id=path, interface="lo") is None


async def test_patch_goes_through_docker_and_survives_restart(docker_containers, docker_api):
    cid, name = await asyncio.to_thread(docker_containers.run)
    resp = await docker_api.patch(f"/api/v1/containers/{name}/limits",
                                  data=json.dumps({"cpus": 0.5, "memory": "100m"}),
                                  headers={"Content-Type": "application/json"})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["applied_via"] in ("docker", "docker+cgroupfs")
    hc = docker_containers.inspect(cid)["HostConfig"]
    assert (hc["NanoCpus"], hc["Memory"]) == (500000000, 104857600)
    assert body["limits"]["cpu_quota_us"] == 50000 and body["limits"]["memory_limit_bytes"] == 104857600

    subprocess.run(["docker", "restart", "-t", "0", cid], check=True, capture_output=True, timeout=60)
    resp = await docker_api.get(f"/api/v1/containers/{name}/limits")
    lim = (await resp.json())["limits"]
    assert (lim["cpu_quota_us"], lim["cpu_period_us"], lim["memory_limit_bytes"]) == (50000, 100000, 104857600)


async def test_without_docker_the_id_is_the_name(docker_containers, make_agent, aiohttp_client):
    cid, name = await asyncio.to_thread(docker_containers.run)
    agent = await make_agent(docker_host="unix:///nonexistent/docker.sock")
    client = await aiohttp_client(create_app(agent))
    text = await scrape_text(client)
    assert value(text, "container_info", id=f"/docker/{cid}", name=cid, runtime="docker") == 1
    health = await (await client.get("/healthz")).json()
    assert health["docker"] == {"connected": False}


@pytest.fixture
async def docker_enforcing(tmp_path, make_agent):
    policy = tmp_path / "policy.yaml"
    policy.write_text('rules:\n  - name: tests\n    match: {name: "cgw-test-*", runtime: docker}\n'
                      '    limits: {cpus: 0.25, memory: 64m}\n')
    return await make_agent(docker_host=DOCKER_HOST, policy_file=policy, reconcile_interval_s=1.0,
                            birth_scan_interval_s=5.0)


def cpu_quota_file(cid: str) -> Path:
    v2 = (CG / "cgroup.controllers").exists()
    return CG / ("docker" if v2 else "cpu/docker") / cid / ("cpu.max" if v2 else "cpu.cfs_quota_us")


async def test_a_new_docker_container_gets_policy_limits_within_a_second(docker_containers, docker_enforcing):
    await asyncio.sleep(0.5)
    cid, _ = await asyncio.to_thread(docker_containers.run)
    started = time.monotonic()  # `docker run -d` has returned: the container runs
    await asyncio.to_thread(wait_for, lambda: cpu_quota_file(cid).read_text().split()[0] == "25000", 5.0, 0.02)
    assert time.monotonic() - started < 1.0
    hc = docker_containers.inspect(cid)["HostConfig"]
    assert (hc["NanoCpus"], hc["Memory"]) == (250000000, 64 << 20)  # through Docker: inspect agrees


async def test_an_outside_docker_update_is_repaired(docker_containers, docker_enforcing):
    cid, _ = await asyncio.to_thread(docker_containers.run)
    await asyncio.to_thread(wait_for, lambda: cpu_quota_file(cid).read_text().split()[0] == "25000", 5.0)
    subprocess.run(["docker", "update", "--cpus", "1", cid], check=True, capture_output=True, timeout=30)
    changed = time.monotonic()
    await asyncio.to_thread(wait_for, lambda: cpu_quota_file(cid).read_text().split()[0] == "25000", 5.0)
    assert time.monotonic() - changed <= 1.5
    # Repaired through Docker, so docker inspect agrees too (dockerd saves its HostConfig a moment
    # after the cgroup write that the wait above sees).
    await asyncio.to_thread(
        wait_for, lambda: docker_containers.inspect(cid)["HostConfig"]["NanoCpus"] == 250000000, 5.0)


async def test_a_container_recreated_under_its_name_gets_its_limits_back(docker_containers, docker_api):
    cid, name = await asyncio.to_thread(docker_containers.run)
    resp = await docker_api.patch(f"/api/v1/containers/{name}/limits",
                                  data=json.dumps({"pids_limit": 33, "keep_for_name": True}),
                                  headers={"Content-Type": "application/json"})
    assert resp.status == 200, await resp.text()
    subprocess.run(["docker", "rm", "-f", cid], check=True, capture_output=True, timeout=60)
    out = subprocess.run(["docker", "run", "-d", "--name", name, "local/busybox", "sleep", "600"],
                         check=True, capture_output=True, text=True, timeout=60)
    new = out.stdout.strip()
    docker_containers.ids.append(new)
    pids = CG / ("docker" if (CG / "cgroup.controllers").exists() else "pids/docker") / new / "pids.max"
    await asyncio.to_thread(wait_for, lambda: pids.read_text().strip() == "33", 5.0)


async def test_docker_rm_forgets_the_desired_limits_unless_kept_for_the_name(docker_containers, docker_agent,
                                                                             docker_api):
    """desired.json must not grow with every container ever limited; keep_for_name entries stay."""
    store = docker_agent.enforcer.store
    plain, _ = await asyncio.to_thread(docker_containers.run)
    kept, kept_name = await asyncio.to_thread(docker_containers.run)
    for ref, body in ((plain, {"pids_limit": 44}), (kept, {"pids_limit": 45, "keep_for_name": True})):
        resp = await docker_api.patch(f"/api/v1/containers/{ref}/limits", data=json.dumps(body),
                                      headers={"Content-Type": "application/json"})
        assert resp.status == 200, await resp.text()
    assert store.get(plain) is not None and store.get(kept) is not None
    for cid in (plain, kept):
        await asyncio.to_thread(subprocess.run, ["docker", "rm", "-f", cid], check=True, capture_output=True,
                                timeout=60)
    await asyncio.sleep(0)
    deadline = time.monotonic() + 10
    while store.get(plain) is not None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert store.get(plain) is None
    assert store.get(kept)["name"] == kept_name
    # On disk too: a restarted agent would not bring the removed container's entry back.
    assert plain not in (docker_agent.settings.state_dir / "desired.json").read_text()


async def test_allowlisted_docker_labels_are_on_every_series_of_the_container(docker_containers, make_agent,
                                                                              api_client):
    client = await api_client(await make_agent(docker_host=DOCKER_HOST, label_allowlist=("com.example.*",)))
    cid, name = await asyncio.to_thread(docker_containers.run, "--label", "com.example.team=payments",
                                        "--label", "other=x", "--env", "SECRET_TOKEN=hunter2")
    path = f"/docker/{cid}"
    text = ""
    for _ in range(50):  # the event stream names it (and brings its labels) within a moment of the start
        text = await scrape_text(client)
        if value(text, "container_info", id=path, name=name) is not None:
            break
        await asyncio.sleep(0.1)
    team = {"id": path, "container_label_com_example_team": "payments"}
    for metric in ("container_memory_usage_bytes", "container_cpu_usage_seconds_total", "container_threads",
                   "container_network_receive_bytes_total", "container_info", "container_last_seen"):
        assert value(text, metric, **team, **({"interface": "eth0"} if "network" in metric else {})) is not None, metric
    assert "container_label_other" not in text  # not allowlisted
    assert "hunter2" not in text and "SECRET_TOKEN" not in text  # environment variables never


async def test_without_an_allowlist_no_container_label_is_exported(docker_containers, docker_agent, docker_api):
    cid, name = await asyncio.to_thread(docker_containers.run, "--label", "com.example.team=payments")
    text = ""
    for _ in range(50):
        text = await scrape_text(docker_api)
        if value(text, "container_info", id=f"/docker/{cid}", name=name) is not None:
            break
        await asyncio.sleep(0.1)
    assert value(text, "container_info", id=f"/docker/{cid}", name=name) == 1
    assert "container_label_" not in text
