"""Changing limits through the API on real cgroups: the kernel enforces what the reply says.

Runs on the v1 hybrid host and in the cgroup v2 guest.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid

import pytest

from tests.support.agent import value

pytestmark = pytest.mark.real

LIMIT_FILES_V1 = ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares", "cpuset.cpus", "memory.limit_in_bytes",
                  "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes", "pids.max")
LIMIT_FILES_V2 = ("cpu.max", "cpu.weight", "cpuset.cpus", "memory.max", "memory.high", "memory.low",
                  "memory.swap.max", "pids.max")


def limit_files(sandbox, cg: str) -> dict[str, str]:
    """Every limit file of the cgroup as the kernel holds it (to prove nothing was written)."""
    names = LIMIT_FILES_V2 if sandbox.is_v2 else LIMIT_FILES_V1
    return {n: sandbox.read(cg, n) for n in names if sandbox.file(cg, n).exists()}


def cpu_seconds(sandbox, cg: str) -> float:
    if sandbox.is_v2:
        return int(dict(l.split() for l in sandbox.read(cg, "cpu.stat").splitlines())["usage_usec"]) / 1e6
    return int(sandbox.read(cg, "cpuacct.usage")) / 1e9


def name_of(cg: str) -> str:
    return cg.rsplit("/", 1)[-1]


@pytest.fixture
def container(sandbox):
    """A Docker-shaped cgroup (not known to dockerd, so written through cgroupfs); its ID is the ref."""
    cid = uuid.uuid4().hex * 2
    return cid, sandbox.create(f"docker/{cid}")


async def patch(api, ref: str, body, headers=None):
    return await api.patch(f"/api/v1/containers/{ref}/limits", data=json.dumps(body),
                           headers=headers or {"Content-Type": "application/json"})


@pytest.mark.guest
async def test_cpus_half_holds_a_busy_loop_at_half_a_cpu(sandbox, api, container):
    cid, cg = container
    sandbox.busy_loop(cg)
    resp = await patch(api, cid, {"cpus": 0.5})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["limits"]["cpu_quota_us"], body["limits"]["cpu_period_us"]) == (50000, 100000)
    assert body["applied_via"] == "cgroupfs"
    await asyncio.sleep(0.5)
    t0, u0 = time.monotonic(), cpu_seconds(sandbox, cg)
    await asyncio.sleep(3.0)
    ratio = (cpu_seconds(sandbox, cg) - u0) / (time.monotonic() - t0)
    assert 0.45 <= ratio <= 0.55, ratio


@pytest.mark.guest
async def test_memory_100m_oom_kills_a_300m_hog_and_the_counter_shows_it(sandbox, api, container, scrape):
    cid, cg = container
    resp = await patch(api, cid, {"memory": "100m"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["limits"]["memory_limit_bytes"] == 100 << 20
    hog = sandbox.memory_hog(cg, mib=300)
    assert await asyncio.to_thread(hog.wait, 60) == -signal.SIGKILL
    assert value(await scrape(), "container_oom_kills_total", id=cg) == 1


@pytest.mark.guest
async def test_memory_below_usage_is_refused_and_nothing_is_written(sandbox, api, container):
    cid, cg = container
    hog = sandbox.memory_hog(cg, mib=60)
    assert await asyncio.to_thread(hog.stdout.readline) == "allocated\n"
    before = limit_files(sandbox, cg)
    resp = await patch(api, cid, {"memory": "20m", "cpus": 0.5})
    assert resp.status == 409
    body = await resp.json()
    assert body["rule"] == "below_usage" and body["working_set_bytes"] >= 60 << 20
    assert limit_files(sandbox, cg) == before
    assert hog.poll() is None  # still alive


@pytest.mark.guest
async def test_forced_memory_below_usage_is_what_the_kernel_makes_of_it(sandbox, api, container):
    cid, cg = container
    hog = sandbox.memory_hog(cg, mib=60)
    assert await asyncio.to_thread(hog.stdout.readline) == "allocated\n"
    before = limit_files(sandbox, cg)
    resp = await patch(api, cid, {"memory": "30m", "force": True})
    if sandbox.is_v2:
        # v2 reclaims, then the OOM killer takes the hog: that is what force asked for.
        assert resp.status == 200, await resp.text()
        assert await asyncio.to_thread(hog.wait, 30) == -signal.SIGKILL
    else:
        # v1 refuses a limit it cannot reclaim down to (EBUSY, cgroup-v1/memory.rst): rolled back.
        assert resp.status == 409
        assert (await resp.json())["errno"] == "EBUSY"
        assert limit_files(sandbox, cg) == before
        assert hog.poll() is None


@pytest.mark.guest
async def test_reply_holds_previous_and_read_back_values(sandbox, api, container):
    cid, cg = container
    resp = await patch(api, cid, {"memory": 104857601, "pids_limit": 64})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["previous"]["memory_limit_bytes"] is None and body["previous"]["pids_max"] is None
    # The kernel rounds memory limits down to whole pages: the reply says what it holds.
    assert body["limits"]["memory_limit_bytes"] == 104857600
    assert body["limits"]["pids_max"] == 64
    get = await api.get(f"/api/v1/containers/{cid}/limits")
    assert (await get.json())["limits"]["pids_max"] == 64


async def test_patch_changes_only_the_fields_given_and_put_replaces(sandbox, api, container):
    cid, cg = container
    assert (await patch(api, cid, {"cpus": 0.5, "pids_limit": 32})).status == 200
    body = await (await patch(api, cid, {"pids_limit": 16})).json()
    assert (body["limits"]["cpus"], body["limits"]["pids_max"]) == (0.5, 16)
    resp = await api.put(f"/api/v1/containers/{cid}/limits", data=json.dumps({"memory": "64m"}),
                         headers={"Content-Type": "application/json"})
    body = await resp.json()
    assert resp.status == 200, body
    assert (body["limits"]["cpus"], body["limits"]["pids_max"], body["limits"]["memory_limit_bytes"]) == (
        None, None, 64 << 20)


@pytest.mark.guest
async def test_delete_removes_every_limit(sandbox, api, container):
    cid, cg = container
    assert (await patch(api, cid, {"cpus": 0.25, "memory": "64m", "pids_limit": 10})).status == 200
    resp = await api.delete(f"/api/v1/containers/{cid}/limits")
    body = await resp.json()
    assert resp.status == 200, body
    lim = body["limits"]
    assert (lim["cpu_quota_us"], lim["memory_limit_bytes"], lim["pids_max"]) == (None, None, None)


@pytest.mark.guest
async def test_cpuset_and_swap_are_written(sandbox, api, container):
    cid, cg = container
    body = await (await patch(api, cid, {"cpuset_cpus": "0", "memory": "64m", "memory_swap": "128m"})).json()
    assert body["limits"]["cpuset_cpus"] == "0", body
    assert sandbox.read(cg, "cpuset.cpus").strip() == "0"
    if sandbox.is_v2:
        assert sandbox.read(cg, "memory.swap.max").strip() == str(64 << 20)
    elif sandbox.file(cg, "memory.memsw.limit_in_bytes").exists():
        assert int(sandbox.read(cg, "memory.memsw.limit_in_bytes")) == 128 << 20


async def test_reads_on_the_api_listener_need_the_token(api, container):
    cid, _ = container
    resp = await api.get(f"/api/v1/containers/{cid}/limits", headers={"Authorization": ""})
    assert resp.status == 401
    assert (await api.get("/healthz", headers={"Authorization": ""})).status == 200


async def test_every_accepted_write_is_one_audit_line_with_before_and_after(api, agent, container):
    cid, _ = container
    assert (await patch(api, cid, {"pids_limit": 99})).status == 200
    last = json.loads((agent.settings.state_dir / "audit.log").read_text().splitlines()[-1])
    assert (last["result"], last["container_id"], last["requested"]) == ("accepted", cid, {"pids_limit": 99})
    assert last["before"]["pids_max"] is None and last["after"]["pids_max"] == 99
    assert last["client"] and last["time"]
    assert (agent.settings.state_dir / "audit.log").stat().st_mode & 0o777 == 0o600


async def test_kubernetes_containers_are_read_only_by_default(sandbox, api):
    cid = uuid.uuid4().hex * 2
    cg = sandbox.create(f"kubepods/burstable/pod{uuid.uuid4()}/{cid}")
    before = limit_files(sandbox, cg)
    resp = await patch(api, cid, {"cpus": 0.5})
    assert resp.status == 403
    assert "kubelet" in (await resp.json())["message"]
    assert limit_files(sandbox, cg) == before


# Bad input (values, bodies, refs, methods, tokens, Host and Origin): tests/real/test_bad_input.py.


async def test_unknown_container_is_404(api):
    resp = await patch(api, "f" * 64, {"cpus": 0.5})
    assert resp.status == 404


async def test_openapi_describes_the_limits_routes(api):
    spec = await (await api.get("/api/v1/openapi.json")).json()
    ops = spec["paths"]["/api/v1/containers/{ref}/limits"]
    assert set(ops) == {"get", "put", "patch", "delete"}
    assert "memory" in spec["components"]["schemas"]["LimitRequest"]["properties"]


# The limit files each field may change; every other limit file stays byte for byte what it was.
OWN_FILES = {
    "cpus": ({"cpu.cfs_quota_us", "cpu.cfs_period_us"}, {"cpu.max"}),
    "cpu_shares": ({"cpu.shares"}, {"cpu.weight"}),
    "cpuset_cpus": ({"cpuset.cpus"}, {"cpuset.cpus"}),
    # Docker's rule: a memory limit without --memory-swap gets as much swap again (memsw = 2x).
    "memory": ({"memory.limit_in_bytes", "memory.memsw.limit_in_bytes"}, {"memory.max", "memory.swap.max"}),
    "memory_reservation": ({"memory.soft_limit_in_bytes"}, {"memory.low"}),
    "pids_limit": ({"pids.max"}, {"pids.max"}),
}
ONE_FIELD = {"cpus": 0.5, "cpu_shares": 512, "cpuset_cpus": "0", "memory": "64m", "memory_reservation": "32m",
             "pids_limit": 50}


@pytest.mark.guest
@pytest.mark.parametrize("field", sorted(ONE_FIELD))
async def test_a_patch_of_one_field_writes_only_that_fields_files(sandbox, api, container, field):
    """Three PATCHes of one field, and no other limit file changes: on v2 cpu.weight used to drop
    by one per write (its shares read back convert one lower) and an inherited cpuset.cpus ("")
    was pinned to the parent's set."""
    cid, cg = container
    before = limit_files(sandbox, cg)
    own = OWN_FILES[field][1 if sandbox.is_v2 else 0]
    for _ in range(3):
        resp = await patch(api, cid, {field: ONE_FIELD[field]})
        assert resp.status == 200, await resp.text()
    after = limit_files(sandbox, cg)
    changed = {name for name in before if before[name] != after[name]}
    assert changed <= own, {name: (before[name], after[name]) for name in changed - own}
    assert changed, f"{field} wrote none of {own}"
