"""No unlimited window at birth: a governed container's first instruction already runs under its
limits, and a birth is counted and audited as one, apart from drift (real cgroups, real dockerd).

The births watcher (cgwatch/enforce/births.py) sees a container's cgroup at its mkdir, before the
runtime starts the process; Docker's start event and the birth scan come after it. The fallbacks
are slowed here (30 s) so that only the watcher can be what made a test pass.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.support.cgroups import wait_for
from tests.support.docker import DOCKER_HOST, IMAGE

pytestmark = pytest.mark.real

MIB = 1 << 20
SLOW_S = 30.0  # the reconcile pass and the birth scan: out of the way


def counter(agent, name: str, resource: str) -> float:
    return agent.exporter.registry.get_sample_value(name, {"resource": resource}) or 0.0


def births(agent, resource: str) -> float:
    return counter(agent, "cgwatch_limit_birth_applies_total", resource)


def repairs(agent, resource: str) -> float:
    return counter(agent, "cgwatch_limit_drift_repairs_total", resource)


def audit_lines(agent, container_id: str) -> list[dict]:
    lines = (agent.settings.state_dir / "audit.log").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("container_id") == container_id]


def own_memory_limit_file(v2: bool) -> str:
    """The container's own memory limit, as its first instruction sees it: Docker mounts the
    container's own cgroup at /sys/fs/cgroup/memory (v1) or /sys/fs/cgroup (v2, cgroup namespace)."""
    return "/sys/fs/cgroup/memory.max" if v2 else "/sys/fs/cgroup/memory/memory.limit_in_bytes"


# -- Docker ---------------------------------------------------------------------------------------

@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
async def docker_births(tmp_path, make_agent, docker_containers, run_id):
    """An agent whose policy holds this test's containers (web-<run>-*) to 100 MiB and 0.5 CPU."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(f'rules:\n  - name: web\n    match: {{name: "web-{run_id}-*"}}\n'
                      f'    limits: {{memory: 100m, cpus: 0.5}}\n')
    agent = await make_agent(docker_host=DOCKER_HOST, policy_file=policy, reconcile_interval_s=SLOW_S,
                             birth_scan_interval_s=SLOW_S)
    await asyncio.to_thread(wait_for, lambda: agent.runtimes.get("docker").connected, 10.0)
    return agent


def docker_run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "run", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.docker
async def test_a_governed_containers_first_instruction_sees_its_limit(docker_births, run_id):
    v2 = docker_births.host.layout.is_v2
    runs = 20
    seen = []
    for i in range(runs):
        out = await asyncio.to_thread(docker_run, "--rm", "--name", f"web-{run_id}-{i}", IMAGE,
                                      "cat", own_memory_limit_file(v2))
        assert out.returncode == 0, out.stderr
        seen.append(out.stdout.strip())
    assert seen == [str(100 * MIB)] * runs, f"{seen.count(str(100 * MIB))} of {runs} runs saw their limit"


@pytest.mark.docker
async def test_a_birth_is_counted_and_audited_as_a_birth_not_as_drift(docker_births, docker_containers, run_id):
    agent = docker_births
    out = await asyncio.to_thread(docker_run, "-d", "--name", f"web-{run_id}-b", IMAGE, "sleep", "600")
    assert out.returncode == 0, out.stderr
    cid = out.stdout.strip()
    docker_containers.ids.append(cid)
    await asyncio.to_thread(wait_for, lambda: births(agent, "memory") == 1 and births(agent, "cpu") == 1, 10.0)
    await asyncio.sleep(0.5)  # the start and update events' reconciles: nothing more to count
    assert (births(agent, "memory"), births(agent, "cpu")) == (1, 1)
    assert (repairs(agent, "memory"), repairs(agent, "cpu")) == (0, 0)
    lines = audit_lines(agent, cid)
    assert [(e["mode"], e["result"], e["resources"]) for e in lines] == [("birth", "applied", ["cpu", "memory"])]
    assert lines[0]["reason"] == "cgroup-created" and lines[0]["rule"] == "web"
    # Told through Docker too, so `docker inspect` agrees and `docker restart` keeps them.
    await asyncio.to_thread(wait_for, lambda: docker_containers.inspect(cid)["HostConfig"]["Memory"] == 100 * MIB, 10.0)


@pytest.mark.docker
async def test_a_direct_write_is_drift_counted_once_per_resource_it_changed(docker_births, docker_containers,
                                                                           run_id):
    agent = docker_births
    out = await asyncio.to_thread(docker_run, "-d", "--name", f"web-{run_id}-d", IMAGE, "sleep", "600")
    assert out.returncode == 0, out.stderr
    cid = out.stdout.strip()
    docker_containers.ids.append(cid)
    await asyncio.to_thread(wait_for, lambda: births(agent, "memory") == 1, 10.0)
    await asyncio.sleep(0.5)  # the start and update events' reconciles are done
    memory = memory_limit_file(agent, f"/docker/{cid}")
    memory.write_text(str(200 * MIB))  # someone else's write, to the kernel file, of memory only
    await agent.enforcer.reconcile_all()
    assert memory.read_text().strip() == str(100 * MIB)
    assert (repairs(agent, "memory"), repairs(agent, "cpu")) == (1, 0)
    assert (births(agent, "memory"), births(agent, "cpu")) == (1, 1)
    repaired = [e for e in audit_lines(agent, cid) if e["mode"] == "repair"]
    assert [(e["result"], e["resources"]) for e in repaired] == [("repaired", ["memory"])]


@pytest.mark.docker
async def test_docker_restart_is_not_drift(docker_births, docker_containers, run_id):
    agent = docker_births
    out = await asyncio.to_thread(docker_run, "-d", "--name", f"web-{run_id}-r", IMAGE, "sleep", "600")
    assert out.returncode == 0, out.stderr
    cid = out.stdout.strip()
    docker_containers.ids.append(cid)
    await asyncio.to_thread(wait_for, lambda: docker_containers.inspect(cid)["HostConfig"]["Memory"] == 100 * MIB, 10.0)
    for _ in range(3):
        # A new cgroup at the same path: runc writes Docker's limits into it a moment after its
        # mkdir, and whatever reads it first must not call that drift.
        await asyncio.to_thread(subprocess.run, ["docker", "restart", "-t", "0", cid], check=True,
                                capture_output=True, timeout=60)
        await agent.enforcer.reconcile_id(cid, "docker-event")
        assert memory_limit_file(agent, f"/docker/{cid}").read_text().strip() == str(100 * MIB)
    await agent.enforcer.reconcile_all()
    assert (repairs(agent, "memory"), repairs(agent, "cpu")) == (0, 0)
    assert not [e for e in audit_lines(agent, cid) if e["mode"] == "repair"]


def memory_limit_file(agent, path: str) -> Path:
    layout = agent.host.layout
    if layout.is_v2:
        return layout.unified / path.lstrip("/") / "memory.max"
    return layout.v1["memory"] / path.lstrip("/") / "memory.limit_in_bytes"


# -- Plain cgroups (also in the cgroup v2 guest) ---------------------------------------------------

@pytest.fixture
async def sandbox_births(tmp_path, sandbox, make_agent):
    """An agent whose policy governs <sandbox>/docker/*; only the births watcher is fast."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(f'rules:\n  - name: sandboxed\n    match: {{cgroup: "{sandbox.path()}/docker/*"}}\n'
                      f'    limits: {{cpus: 0.25, pids_limit: 42}}\n')
    sandbox.create("docker")
    return await make_agent(policy_file=policy, reconcile_interval_s=SLOW_S, birth_scan_interval_s=SLOW_S)


def quota(sandbox, cg: str) -> str:
    return (sandbox.read(cg, "cpu.max") if sandbox.is_v2 else sandbox.read(cg, "cpu.cfs_quota_us")).split()[0]


@pytest.mark.guest
async def test_a_new_cgroup_under_a_policys_parent_gets_its_limits_at_once(sandbox, sandbox_births):
    agent = sandbox_births
    cid = uuid.uuid4().hex * 2
    cg = sandbox.create(f"docker/{cid}")
    made = time.monotonic()
    await asyncio.to_thread(wait_for, lambda: quota(sandbox, cg) == "25000" and sandbox.read(cg, "pids.max").strip() == "42",
                            5.0, 0.002)
    assert time.monotonic() - made < 0.5  # milliseconds here; the fallbacks would take 30 s
    await asyncio.to_thread(wait_for, lambda: births(agent, "pids"), 5.0)  # audited, then counted
    assert (births(agent, "cpu"), births(agent, "pids"), repairs(agent, "cpu"), repairs(agent, "pids")) == (1, 1, 0, 0)
    assert [(e["mode"], e["result"]) for e in audit_lines(agent, cid)] == [("birth", "applied")]


@pytest.mark.guest
async def test_a_parent_made_after_the_start_is_watched_when_it_appears(tmp_path, sandbox, make_agent):
    policy = tmp_path / "policy.yaml"
    policy.write_text(f'rules:\n  - name: late\n    match: {{cgroup: "{sandbox.path()}/late/docker/*"}}\n'
                      f'    limits: {{pids_limit: 17}}\n')
    agent = await make_agent(policy_file=policy, reconcile_interval_s=SLOW_S, birth_scan_interval_s=SLOW_S)
    cg = sandbox.create(f"late/docker/{uuid.uuid4().hex * 2}")  # mkdir -p: the parents are new too
    await asyncio.to_thread(wait_for, lambda: sandbox.read(cg, "pids.max").strip() == "17", 2.0, 0.005)
    await asyncio.to_thread(wait_for, lambda: births(agent, "pids") == 1, 5.0)  # counted after the audit line


@pytest.mark.guest
async def test_drift_after_a_birth_counts_the_resources_it_changed(sandbox, sandbox_births):
    agent = sandbox_births
    cg = sandbox.create(f"docker/{uuid.uuid4().hex * 2}")
    await asyncio.to_thread(wait_for, lambda: births(agent, "pids") == 1, 5.0, 0.005)
    sandbox.write(cg, "cpu.max" if sandbox.is_v2 else "cpu.cfs_quota_us",
                  "90000 100000" if sandbox.is_v2 else "90000")  # someone else's write: cpu only
    await agent.enforcer.reconcile_all()
    assert quota(sandbox, cg) == "25000"
    assert (repairs(agent, "cpu"), repairs(agent, "pids")) == (1, 0)
    assert (births(agent, "cpu"), births(agent, "pids")) == (1, 1)


@pytest.mark.guest
async def test_a_parent_removed_and_made_again_is_watched_again(sandbox, sandbox_births):
    agent = sandbox_births
    assert sandbox.remove(sandbox.path("docker")) == []  # kernfs says so only on the parent's watch
    await asyncio.sleep(0.05)
    cg = sandbox.create(f"docker/{uuid.uuid4().hex * 2}")
    await asyncio.to_thread(wait_for, lambda: sandbox.read(cg, "pids.max").strip() == "42", 2.0, 0.005)
    await asyncio.to_thread(wait_for, lambda: births(agent, "pids") == 1, 5.0)
