"""A runtime that is down is not an error: `dockerd --live-restore` stopped while its containers run.

An operator clamps a container during a daemon upgrade: the kernel takes the change at once
(applied through cgroupfs, with a note), and Docker's own record follows as soon as dockerd answers
again, so `docker inspect` agrees and `docker restart` keeps it. A `/docker/<id>` cgroup dockerd does
not know is governed as a plain cgroup. A second dockerd of the suite's own (its own work dir,
socket, data root and bridge: tests/support/docker-up.sh), started with live-restore, is the one
stopped here: the suite's main dockerd keeps serving the other tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import need
from tests.support.agent import value
from tests.support.aio import scrape, until
from tests.support.docker import IMAGE, WORK, docker_missing
from tests.support.env import REPO

pytestmark = [pytest.mark.real, pytest.mark.docker]

CG = Path("/sys/fs/cgroup")
LR_WORK = Path(f"{WORK}-live-restore")
LR_HOST = f"unix://{LR_WORK}/docker.sock"
JSON = {"Content-Type": "application/json"}


def _env() -> dict[str, str]:
    return {**os.environ, "CGWATCH_WORK": str(LR_WORK), "DOCKER_HOST": LR_HOST}


def _up() -> None:
    subprocess.run(["bash", str(REPO / "tests/support/docker-up.sh")], env=_env(), check=True,
                   capture_output=True, timeout=120)


def _stop_dockerd() -> None:
    """SIGTERM to the dockerd docker-up.sh recorded (ours alone), then wait for it to go."""
    pid = int((LR_WORK / "dockerd.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return
        time.sleep(0.1)
    raise AssertionError("dockerd did not stop within 30 s")


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], env=_env(), check=check, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def live_restore_dockerd():
    need(docker_missing())
    LR_WORK.mkdir(parents=True, exist_ok=True)
    (LR_WORK / "daemon.json").write_text(json.dumps({"live-restore": True}))
    _up()
    try:
        yield
    finally:
        _up()  # a test may have left it stopped: its containers are removed through it
        ids = _docker("ps", "-aq", "--filter", "name=cgw-lr-", check=False).stdout.split()
        if ids:
            _docker("rm", "-f", *ids, check=False)
        subprocess.run(["bash", str(REPO / "tests/support/docker-down.sh")], env=_env(), capture_output=True,
                       timeout=60)


def _read(ctrl: str, cid: str, name: str) -> str:
    return (CG / ctrl / "docker" / cid / name).read_text().strip()


async def test_a_patch_while_dockerd_is_down_lands_and_docker_learns_it_when_back(
        live_restore_dockerd, make_agent, api_client):
    name = f"cgw-lr-{uuid.uuid4().hex[:8]}"
    cid = (await asyncio.to_thread(_docker, "run", "-d", "--name", name, IMAGE, "sleep", "600")).stdout.strip()
    agent = await make_agent(docker_host=LR_HOST, reconcile_interval_s=1.0)
    api = await api_client(agent)
    assert await until(lambda: agent.runtimes.get("docker").connected and
                          agent.runtimes.get("docker").find(f"/docker/{cid}", cid) is not None, timeout=15)

    await asyncio.to_thread(_stop_dockerd)
    assert await until(lambda: not agent.runtimes.get("docker").connected, timeout=15)
    assert (CG / "cpu" / "docker" / cid).is_dir(), "live-restore should keep the container running"
    text = await scrape(api)
    assert value(text, "cgwatch_runtime_up", runtime="docker") == 0
    health = await (await api.get("/healthz")).json()
    assert health["runtimes"]["docker"]["connected"] is False

    resp = await api.patch(f"/api/v1/containers/{name}/limits", data=json.dumps({"cpus": 0.5, "memory": "100m"}),
                           headers=JSON)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["applied_via"] == "cgroupfs"
    assert any("could not be reached" in n for n in body["notes"]), body["notes"]
    assert _read("cpu", cid, "cpu.cfs_quota_us") == "50000"
    assert _read("memory", cid, "memory.limit_in_bytes") == "104857600"

    await asyncio.to_thread(_up)
    # Within a reconcile period (1 s here) of dockerd answering, its own record agrees.
    async def recorded() -> bool:
        out = (await asyncio.to_thread(_docker, "inspect", cid)).stdout
        hc = json.loads(out)[0]["HostConfig"]
        return (hc["NanoCpus"], hc["Memory"]) == (500000000, 104857600)
    await until(recorded, timeout=20, what="docker inspect showing the change")
    assert value(await scrape(api), "cgwatch_runtime_up", runtime="docker") == 1
    audit = [json.loads(line) for line in (agent.settings.state_dir / "audit.log").read_text().splitlines()]
    pushes = [a for a in audit if a.get("mode") == "push"]
    assert [(p["result"], p["container_id"]) for p in pushes] == [("pushed", cid)]

    # And dockerd re-applies it to the new cgroup of a restart: the change is Docker's own now.
    await asyncio.to_thread(_docker, "restart", "-t", "0", cid)
    assert _read("cpu", cid, "cpu.cfs_quota_us") == "50000"
    assert _read("memory", cid, "memory.limit_in_bytes") == "104857600"


async def test_a_docker_shaped_cgroup_dockerd_does_not_know_is_changed_as_a_plain_cgroup(
        live_restore_dockerd, make_agent, api_client):
    fake = uuid.uuid4().hex + uuid.uuid4().hex  # 64 hex: shaped like a Docker ID, unknown to dockerd
    made = []
    try:
        # In every hierarchy, as runc makes a container's cgroup (a v1 cpuset starts empty).
        for root in sorted(CG.iterdir()):
            if root.is_symlink() or not (root / "cgroup.procs").exists() or root.name in ("unified", "systemd"):
                continue
            for d in (root / "docker", root / "docker" / fake):
                if d.is_dir():
                    continue
                d.mkdir()
                made.append(d)
                for f in ("cpuset.cpus", "cpuset.mems"):
                    if (d.parent / f).exists():
                        (d / f).write_text((d.parent / f).read_text())
        agent = await make_agent(docker_host=LR_HOST)
        api = await api_client(agent)
        assert await until(lambda: agent.runtimes.get("docker").connected, timeout=15)
        listed = await (await api.get("/api/v1/containers")).json()
        assert fake in [c["id"] for c in listed["containers"]]

        resp = await api.patch(f"/api/v1/containers/{fake}/limits", data=json.dumps({"cpus": 0.25}), headers=JSON)
        body = await resp.json()
        assert resp.status == 200, body
        assert body["applied_via"] == "cgroupfs"
        assert any("does not know this container" in n for n in body["notes"]), body["notes"]
        assert (CG / "cpu" / "docker" / fake / "cpu.cfs_quota_us").read_text().strip() == "25000"
    finally:
        for d in reversed(made):
            try:
                d.rmdir()
            except OSError:
                pass  # /docker, if a container of the suite's dockerd started in it meanwhile
