"""A real Podman (4.3.1 here): containers named through its libpod API, limits changed through it.

Each module run starts `podman system service` on a socket of its own, on the suite's own store
(tests/support/podman.py); containers are cgw-test-*, removed at the end with what Podman leaves.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from cgwatch.model import Limits
from cgwatch.runtimes.base import RuntimeContainer
from cgwatch.runtimes.podman import PodmanRuntime
from cgwatch.runtimes.podman.plan import RECORDS_SINCE
from tests.conftest import need
from tests.support.aio import scrape, until
from tests.support.agent import value
from tests.support.podman import IMAGE, LibpodCgroups, PodmanContainers, PodmanService, podman, podman_missing

pytestmark = [pytest.mark.real, pytest.mark.podman]

CG = Path("/sys/fs/cgroup")
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def podman_ready():
    need(podman_missing())
    cgroups = LibpodCgroups()
    yield
    cgroups.cleanup()


@pytest.fixture(scope="module")
def podman_service(podman_ready, tmp_path_factory):
    svc = PodmanService(tmp_path_factory.mktemp("podman")).start()
    yield svc
    svc.stop()


@pytest.fixture
def podman_containers(podman_ready):
    box = PodmanContainers()
    try:
        yield box
    finally:
        box.cleanup()


def libpod(cid: str) -> str:
    return f"/libpod_parent/libpod-{cid}"


def kernel(controller: str, cid: str, name: str) -> str:
    return (CG / controller / libpod(cid).lstrip("/") / name).read_text().strip()


async def named(client, cid: str, name: str, timeout: float = 5.0) -> str:
    async def check():
        text = await scrape(client)
        return text if value(text, "container_info", id=libpod(cid), name=name) is not None else None
    return await until(check, timeout, f"{name} named on /metrics")


async def podman_agent(make_agent, api_client, host: str, **settings):
    agent = await make_agent(podman_host=host, **settings)
    runtime = agent.runtimes.get("podman")

    async def connected():
        return runtime.connected
    await until(connected, 5.0, "the podman event stream connected")
    return agent, await api_client(agent)


async def test_a_podman_container_is_exported_with_its_name_image_and_labels(podman_service, podman_containers,
                                                                             make_agent, api_client):
    cid, name = await asyncio.to_thread(podman_containers.run, "--label", "com.example.team=payments",
                                        "--label", "other=x", "--cpus", "0.5")
    _, client = await podman_agent(make_agent, api_client, podman_service.host, label_allowlist=("com.example.*",))
    text = await named(client, cid, name)
    assert value(text, "container_info", id=libpod(cid), name=name, image=IMAGE, runtime="podman",
                 runtime_id=cid, container_label_com_example_team="payments") == 1
    assert value(text, "container_spec_cpu_quota", id=libpod(cid), name=name) == 50000
    assert "container_label_other" not in text
    resp = await client.get(f"/api/v1/containers/{name}")
    assert resp.status == 200
    assert (await resp.json())["id"] == cid


async def test_a_container_started_after_the_agent_is_named_within_a_second(podman_service, podman_containers,
                                                                            make_agent, api_client):
    _, client = await podman_agent(make_agent, api_client, podman_service.host)
    cid, name = await asyncio.to_thread(podman_containers.run)
    started = time.monotonic()  # `podman run -d` has returned: the container runs
    await named(client, cid, name)
    assert time.monotonic() - started < 1.0


async def test_patch_by_name_goes_through_podman(podman_service, podman_containers, make_agent, api_client):
    cid, name = await asyncio.to_thread(podman_containers.run)
    _, client = await podman_agent(make_agent, api_client, podman_service.host)
    resp = await client.patch(f"/api/v1/containers/{name}/limits",
                              data=json.dumps({"cpus": 0.5, "memory": "100m"}), headers=JSON)
    body = await resp.json()
    assert resp.status == 200, body
    # Podman (runc update) wrote everything: cgroupfs found nothing left to write.
    assert (body["runtime"], body["applied_via"]) == ("podman", "podman")
    assert (body["limits"]["cpu_quota_us"], body["limits"]["memory_limit_bytes"]) == (50000, 104857600)
    assert kernel("cpu", cid, "cpu.cfs_quota_us") == "50000"
    assert kernel("cpu", cid, "cpu.cfs_period_us") == "100000"
    assert kernel("memory", cid, "memory.limit_in_bytes") == "104857600"
    hc = (await asyncio.to_thread(podman_containers.inspect, cid))["HostConfig"]
    if podman_service.version() >= RECORDS_SINCE:
        assert (hc["NanoCpus"] or hc["CpuQuota"] * 10000, hc["Memory"]) == (500000000, 104857600)
    else:
        # Podman 4.3 changes the cgroup (runc update) and keeps no record of it: the reply says so.
        assert (hc["NanoCpus"], hc["CpuQuota"], hc["Memory"]) == (0, 0, 0)
        assert any("podman inspect" in note and "does not record" in note for note in body["notes"]), body["notes"]


async def test_a_removed_container_is_gone(podman_service, podman_containers, make_agent, api_client):
    cid, name = await asyncio.to_thread(podman_containers.run)
    # Without --removed-retention (a removed container's kept series: tests/real/test_oom_retention.py).
    agent, client = await podman_agent(make_agent, api_client, podman_service.host, removed_retention_s=0.0)
    await named(client, cid, name)
    await asyncio.to_thread(podman_containers.remove, cid)

    async def gone():
        return value(await scrape(client), "container_info", id=libpod(cid)) is None
    await until(gone, 5.0, "the removed container gone from /metrics")
    assert (await client.get(f"/api/v1/containers/{name}")).status == 404

    async def forgotten():  # the remove event dropped it from the adapter's cache too
        return agent.runtimes.get("podman").find(libpod(cid), cid) is None
    await until(forgotten, 2.0, "the removed container dropped from the podman cache")


async def test_runtime_up_follows_the_service_and_writes_fall_back_to_cgroupfs(podman_ready, podman_containers,
                                                                              make_agent, api_client, tmp_path):
    svc = PodmanService(tmp_path).start()
    try:
        cid, name = await asyncio.to_thread(podman_containers.run)
        _, client = await podman_agent(make_agent, api_client, svc.host)
        await named(client, cid, name)
        assert value(await scrape(client), "cgwatch_runtime_up", runtime="podman", host=svc.host) == 1
        await asyncio.to_thread(svc.stop)

        async def down():
            return value(await scrape(client), "cgwatch_runtime_up", runtime="podman") == 0
        await until(down, 5.0, "cgwatch_runtime_up 0")
        resp = await client.patch(f"/api/v1/containers/{name}/limits", data=json.dumps({"cpus": 0.25}),
                                  headers=JSON)
        body = await resp.json()
        assert resp.status == 200, body
        assert body["applied_via"] == "cgroupfs"
        assert any("podman could not be reached" in note for note in body["notes"]), body["notes"]
        assert kernel("cpu", cid, "cpu.cfs_quota_us") == "25000"
    finally:
        await asyncio.to_thread(svc.stop)


async def test_refresh_asks_podman_by_name_and_id_prefix(podman_service, podman_containers):
    runtime = PodmanRuntime(podman_service.host)
    try:
        cid, name = await asyncio.to_thread(podman_containers.run)
        by_name = await runtime.refresh(name)
        assert by_name is not None and (by_name.runtime, by_name.id, by_name.name) == ("podman", cid, name)
        assert by_name.image == IMAGE and by_name.running and by_name.started_at
        assert await runtime.refresh(cid[:12]) == by_name
        assert runtime.find(libpod(cid), cid) == by_name  # cached for the next walk
        assert await runtime.refresh("cgw-test-nobody-has-this-name") is None
    finally:
        await runtime.stop()


async def test_an_update_for_a_container_podman_does_not_know_says_so(podman_service):
    runtime = PodmanRuntime(podman_service.host)
    try:
        stranger = RuntimeContainer(runtime="podman", id="0" * 64, name="")
        done = await runtime.update(stranger, Limits(cpu_quota_us=50000, cpu_period_us=100000),
                                    Limits(cpu_period_us=100000), "0-1")
        assert done.known is False
    finally:
        await runtime.stop()


async def test_a_podman_healthcheck_is_exported_as_container_health_state(podman_service, podman_containers,
                                                                          make_agent, api_client):
    # Podman runs healthchecks from systemd timers; there is no systemd here, so the test runs them
    # as the timer would (`podman healthcheck run`), and the agent follows the health_status event.
    good, good_name = await asyncio.to_thread(podman_containers.run, "--health-cmd", "true")
    bad, bad_name = await asyncio.to_thread(podman_containers.run, "--health-cmd", "false",
                                            "--health-retries", "1")
    plain, plain_name = await asyncio.to_thread(podman_containers.run)
    _, client = await podman_agent(make_agent, api_client, podman_service.host)
    for cid in (good, bad):
        await asyncio.to_thread(podman, "healthcheck", "run", cid, check=False)

    async def states():
        text = await scrape(client)
        got = {n: value(text, "container_health_state", id=libpod(c), name=n)
               for c, n in ((good, good_name), (bad, bad_name), (plain, plain_name))}
        return got if got == {good_name: 1, bad_name: 0, plain_name: -1} else None
    await until(states, 10.0, "health states 1 (healthy), 0 (unhealthy), -1 (no healthcheck)")

