"""Declared limits hold: at birth, against drift, across agent restarts (real cgroups).

Runs on the v1 hybrid host and in the cgroup v2 guest.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support.agent import samples
from tests.support.cgroups import wait_for
from tests.support.served import free_port, get

pytestmark = pytest.mark.real


def quota(sandbox, cg: str) -> str:
    if sandbox.is_v2:
        return sandbox.read(cg, "cpu.max").split()[0]
    return sandbox.read(cg, "cpu.cfs_quota_us").strip()


def set_quota(sandbox, cg: str, value: int) -> None:
    if sandbox.is_v2:
        sandbox.write(cg, "cpu.max", f"{value} 100000")
    else:
        sandbox.write(cg, "cpu.cfs_quota_us", str(value))


def pids_max(sandbox, cg: str) -> str:
    return sandbox.read(cg, "pids.max").strip()


def write_policy(path: Path, parent: str, limits: str = "{cpus: 0.25, pids_limit: 42}") -> Path:
    path.write_text(f"""\
rules:
  - name: sandboxed
    match: {{cgroup: "{parent}/docker/*"}}
    limits: {limits}
""")
    return path


@pytest.fixture
def enforcing(tmp_path, sandbox, make_agent, api_client):
    """An agent with a policy governing the sandbox, fast timers, and its API client."""
    async def start(**overrides):
        agent = await make_agent(policy_file=write_policy(tmp_path / "policy.yaml", sandbox.path()),
                                 reconcile_interval_s=1.0, birth_scan_interval_s=0.25, **overrides)
        return agent, await api_client(agent)
    return start


async def test_a_new_cgroup_gets_the_policy_limits_within_a_second(sandbox, enforcing):
    agent, _ = await enforcing()
    await asyncio.sleep(0.5)  # the first pass has looked at the host
    cg = sandbox.create(f"docker/{uuid.uuid4().hex * 2}")
    born = time.monotonic()
    await asyncio.to_thread(wait_for, lambda: quota(sandbox, cg) == "25000" and pids_max(sandbox, cg) == "42", 5.0)
    assert time.monotonic() - born < 1.0


async def test_direct_cgroup_write_is_repaired_within_one_reconcile_period(sandbox, enforcing):
    agent, client = await enforcing()
    cg = sandbox.create(f"docker/{uuid.uuid4().hex * 2}")
    await asyncio.to_thread(wait_for, lambda: quota(sandbox, cg) == "25000", 5.0)
    set_quota(sandbox, cg, 90000)  # someone else's write
    changed = time.monotonic()
    await asyncio.to_thread(wait_for, lambda: quota(sandbox, cg) == "25000", 5.0)
    assert time.monotonic() - changed <= 1.0 + 0.5  # one reconcile period, plus scheduling slack
    text = await (await client.get("/metrics")).text()
    assert sum(s.value for s in samples(text, "cgwatch_limit_drift_repairs_total", resource="cpu")) >= 1
    assert [s.value for s in samples(text, "cgwatch_limit_desired", id=cg, resource="cpu_quota_us")] == [25000]
    audit = [json.loads(l) for l in (agent.settings.state_dir / "audit.log").read_text().splitlines()]
    assert any(e["result"] == "repaired" and e["container_id"] == cg.rsplit("/", 1)[1] for e in audit)


async def test_api_override_beats_the_policy_until_released(sandbox, enforcing):
    agent, client = await enforcing()
    cid = uuid.uuid4().hex * 2
    cg = sandbox.create(f"docker/{cid}")
    await asyncio.to_thread(wait_for, lambda: pids_max(sandbox, cg) == "42", 5.0)
    resp = await client.patch(f"/api/v1/containers/{cid}/limits", data=json.dumps({"pids_limit": 7}),
                              headers={"Content-Type": "application/json"})
    assert resp.status == 200, await resp.text()
    await asyncio.sleep(1.5)  # a reconcile pass: the override holds
    assert pids_max(sandbox, cg) == "7"
    desired = await (await client.get(f"/api/v1/containers/{cid}/desired")).json()
    assert desired["source"] == "api"
    assert (await client.delete(f"/api/v1/containers/{cid}/desired")).status == 200
    await asyncio.to_thread(wait_for, lambda: pids_max(sandbox, cg) == "42", 5.0)


async def test_policy_endpoint_names_the_rule_governing_each_container(sandbox, enforcing):
    agent, client = await enforcing()
    cid = uuid.uuid4().hex * 2
    sandbox.create(f"docker/{cid}")
    body = await (await client.get("/api/v1/policy")).json()
    assert [r["name"] for r in body["policy"]["rules"]] == ["sandboxed"]
    assert {"id": cid, "name": cid, "source": "policy", "rule": "sandboxed"} in body["containers"]


async def test_a_bad_policy_edit_keeps_the_old_policy(sandbox, enforcing, tmp_path):
    agent, client = await enforcing()
    (tmp_path / "policy.yaml").write_text("rules:\n  - name: x\n    limits: {cpus: 'lots'}\n")
    os.utime(tmp_path / "policy.yaml", (time.time() + 5, time.time() + 5))
    agent.reload_policy()
    body = await (await client.get("/api/v1/policy")).json()
    assert [r["name"] for r in body["policy"]["rules"]] == ["sandboxed"]
    assert "policy.yaml:3" in body["error"]


@pytest.mark.parametrize("kill", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_agent_restart_restores_every_desired_limit(sandbox, tmp_path, kill):
    state = tmp_path / "state"
    cid = uuid.uuid4().hex * 2
    cg = sandbox.create(f"docker/{cid}")
    port = free_port()
    args = [sys.executable, "-m", "cgwatch", "serve", "--listen", f"127.0.0.1:{free_port()}",
            "--api-listen", f"127.0.0.1:{port}", "--state-dir", str(state), "--docker-host", "", "--podman-host", "", "--containerd-host", "",
            "--ignore-cgroup", "/process_api*", "--reconcile-interval", "1"]

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(args, stderr=subprocess.DEVNULL)
        wait_for(lambda: (state / "token").exists() and get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 20)
        return proc

    agent = start()
    try:
        out = subprocess.run([sys.executable, "-m", "cgwatch", "set", cid, "--cpus", "0.25", "--pids-limit", "9",
                              "--api", f"http://127.0.0.1:{port}", "--state-dir", str(state)],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert quota(sandbox, cg) == "25000"
        agent.send_signal(kill)
        agent.wait(timeout=20)
        set_quota(sandbox, cg, 80000)  # drift while the agent is down
        sandbox.write(cg, "pids.max", "max")
        agent = start()
        wait_for(lambda: quota(sandbox, cg) == "25000" and pids_max(sandbox, cg) == "9", 10)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=20)


@pytest.mark.parametrize("text, line, words", [
    ("rules:\n  - name: a\n    limits: {cpus: 0.5\n", 3, "YAML"),
    ("rules:\n  - name: a\n    limits: {cpus: 0.5}\n    colour: red\n", 4, "unknown key 'colour'"),
    ("rules:\n  - name: a\n    match: {nmae: web}\n    limits: {cpus: 0.5}\n", 3, "unknown key 'nmae'"),
    ("rules:\n  - name: a\n    limits:\n      cpus: 0.5\n      memory: 1k\n", 5, "memory"),
    ("rules:\n  - name: a\n    limits:\n      pids_limit: 0\n", 4, "pids_limit"),
    ("rules:\n  - name: a\n    limits: {cpus: 0.5}\n  - name: a\n    limits: {cpus: 0.5}\n", 4, "twice"),
])
def test_check_policy_names_the_bad_line(tmp_path, text, line, words):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    out = subprocess.run([sys.executable, "-m", "cgwatch", "check-policy", str(f)], capture_output=True, text=True)
    assert out.returncode == 1
    assert f"{f}:{line}:" in out.stderr and words in out.stderr


def test_check_policy_accepts_a_good_file(tmp_path):
    f = write_policy(tmp_path / "good.yaml", "/x")
    out = subprocess.run([sys.executable, "-m", "cgwatch", "check-policy", str(f)], capture_output=True, text=True)
    assert out.returncode == 0 and "1 rule(s)" in out.stdout
