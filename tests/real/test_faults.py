"""Faults with real parts: cgroups that vanish mid-scrape and mid-write, thousands of stale cgroups,
a read-only and a permission-denied cgroupfs, a full state disk, a Docker daemon that goes away.

Each fault must give a scrape that still answers (200, no failed collector) and a write that is
refused with the status the README promises, audited, with nothing written. Kill -9 during a state
write is tests/unit/test_store_durability.py; a container recreated under its name is
tests/real/test_docker.py::test_a_container_recreated_under_its_name_gets_its_limits_back.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from cgwatch.hostfs import Host
from cgwatch.runtimes.docker import DockerClient
from cgwatch.server.app import create_app
from tests.conftest import need
from tests.support.agent import samples, value
from tests.support.docker import DOCKER_HOST as DOCKER  # the suite's own dockerd (tests/support/docker-up.sh)
from tests.support.served import REPO, get, http, serve_agent

pytestmark = pytest.mark.real

JSON = {"Content-Type": "application/json"}


def new_id() -> str:
    return uuid.uuid4().hex * 2


def audit_lines(state: Path) -> list[dict]:
    path = state / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def assert_collectors_ok(text: str) -> None:
    failed = [s.labels["collector"] for s in samples(text, "cgwatch_collector_success") if s.value != 1]
    assert not failed, f"collectors failed: {failed}"
    assert not [s for s in samples(text, "cgwatch_collector_errors_total") if s.value], "a collector raised"


async def patch(api, ref: str, body: dict):
    return await api.patch(f"/api/v1/containers/{ref}/limits", data=json.dumps(body), headers=JSON)


# --- a cgroup that vanishes between discovery and read ------------------------------------------

class ScanThenRemove(Host):
    """The host, with ``remove()`` run right after each walk: the inventory still lists the cgroup,
    and every collector then reads a cgroup that no longer exists."""

    remove = None

    def scan(self, *args):
        found = super().scan(*args)
        if self.remove is not None:
            self.remove(found)
        return found


async def test_a_cgroup_removed_after_the_scan_is_no_data_not_a_failed_scrape(sandbox, make_agent, aiohttp_client):
    keep = sandbox.create(f"docker/{new_id()}")
    sandbox.sleeper(keep)
    gone = sandbox.create(f"docker/{new_id()}")
    host = ScanThenRemove()
    agent = await make_agent(host=host)
    client = await aiohttp_client(create_app(agent))

    def remove(found):
        assert gone in {c.path for c in found}
        sandbox.remove(gone)
    host.remove = remove
    resp = await client.get("/metrics")
    text = await resp.text()
    assert resp.status == 200
    assert_collectors_ok(text)
    assert value(text, "container_processes", id=keep) == 1
    assert value(text, "container_cpu_usage_seconds_total", id=keep, cpu="total") is not None
    assert value(text, "container_cpu_usage_seconds_total", id=gone, cpu="total") is None
    assert not any(Path(root, gone.lstrip("/")).exists() for root in sandbox.layout.hierarchy_roots())


async def test_scrapes_racing_cgroups_created_and_removed_all_answer(sandbox, agent, client):
    keep = sandbox.create(f"docker/{new_id()}")
    sandbox.sleeper(keep)
    stop = threading.Event()
    churned = 0

    def churn() -> None:
        nonlocal churned
        while not stop.is_set():
            cg = sandbox.create(f"docker/{new_id()}")
            sandbox.remove(cg)
            churned += 1

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(30):
            resp = await client.get("/metrics")
            text = await resp.text()
            assert resp.status == 200
            assert_collectors_ok(text)
            assert value(text, "container_processes", id=keep) == 1
    finally:
        stop.set()
        await asyncio.to_thread(worker.join)
    assert churned > 30  # the race really ran: cgroups came and went during the scrapes


# --- a cgroup that vanishes between validation and write ----------------------------------------

class VanishBeforeWrite:
    """The agent's own writer, with ``vanish()`` run just before its first write: validation has
    passed, the write has not begun."""

    def __init__(self, inner, vanish):
        self._inner = inner
        self._vanish = vanish

    def plan(self, *args):
        return self._inner.plan(*args)

    def apply(self, *args):
        vanish, self._vanish = self._vanish, None
        if vanish is not None:
            vanish()
        return self._inner.apply(*args)

    def set_memory_high(self, *args):
        return self._inner.set_memory_high(*args)


async def test_a_cgroup_removed_between_validation_and_write_is_404_audited_and_nothing_written(
        sandbox, make_agent, api_client):
    cid = new_id()
    cg = sandbox.create(f"docker/{cid}")
    host = Host()
    host.writer = VanishBeforeWrite(host.writer, lambda: sandbox.remove(cg))
    agent = await make_agent(host=host)
    api = await api_client(agent)
    resp = await patch(api, cid, {"cpus": 0.5, "pids_limit": 20})
    body = await resp.json()
    assert resp.status == 404, body
    assert body["error"] == "container_not_found"
    [line] = audit_lines(agent.settings.state_dir)
    assert (line["result"], line["container_id"], line["error"]["error"]) == ("rejected", cid, "container_not_found")
    assert "after" not in line
    # Nothing else: no cgroup re-created, no desired state kept for it.
    assert not any(Path(root, cg.lstrip("/")).exists() for root in sandbox.layout.hierarchy_roots())
    assert agent.enforcer.store.get(cid) is None
    assert not (agent.settings.state_dir / "desired.json").exists()


class VanishOnRead:
    """The agent's cgroup reader, removing the cgroup just before the first read of ``method``."""

    def __init__(self, inner, method: str, vanish):
        self._inner, self._method, self._vanish = inner, method, vanish

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if name != self._method or self._vanish is None:
            return attr
        vanish, self._vanish = self._vanish, None

        def read_after_removal(*args):
            vanish()
            return attr(*args)
        return read_after_removal


@pytest.mark.parametrize("path, method", [("/limits", "limits"), ("", "cpu")])
async def test_a_cgroup_removed_while_it_is_read_is_404_not_unlimited(sandbox, make_agent, api_client, path,
                                                                       method):
    """Its files then read as absent, which must not pass for "no limits" or "no usage"."""
    cid = new_id()
    cg = sandbox.create(f"docker/{cid}")
    sandbox.write(cg, "pids.max", "50")
    host = Host()
    spy = host.reader = VanishOnRead(host.reader, method, None)
    api = await api_client(await make_agent(host=host))
    assert (await api.get(f"/api/v1/containers/{cid}{path}")).status == 200
    spy._vanish = lambda: sandbox.remove(cg)
    resp = await api.get(f"/api/v1/containers/{cid}{path}")
    assert resp.status == 404, await resp.text()
    assert (await resp.json())["error"] == "container_not_found"
    assert spy._vanish is None   # the read really happened after the removal


# --- thousands of stale cgroups -------------------------------------------------------------------

STALE = 3000


async def test_thousands_of_stale_cgroups_are_served_then_forgotten(sandbox, tmp_path, make_agent, aiohttp_client,
                                                                   api_client):
    stale = [sandbox.create(f"docker/{new_id()}") for _ in range(STALE)]
    policy = tmp_path / "policy.yaml"
    # A rule every stale cgroup matches and already satisfies (1024 shares is the default):
    # the reconciler holds a target per cgroup and writes nothing.
    policy.write_text(f'rules:\n  - name: stale\n    match: {{cgroup: "{sandbox.path()}/docker/*"}}\n'
                      f'    limits: {{cpu_shares: 1024}}\n')
    # Without --removed-retention: removed containers' kept series (bounded) are test_oom_retention's.
    agent = await make_agent(policy_file=policy, reconcile_interval_s=3600.0, birth_scan_interval_s=3600.0,
                             removed_retention_s=0.0)
    client = await aiohttp_client(create_app(agent))
    api = await api_client(agent)
    prefix = f'id="{sandbox.path()}/docker/'

    resp = await client.get("/metrics")
    text = await resp.text()
    assert resp.status == 200
    assert_collectors_ok_fast(text)
    assert len(series(text, "container_info", prefix)) == STALE
    listing = await api.get("/api/v1/containers")
    assert listing.status == 200
    assert {c["id"] for c in (await listing.json())["containers"]} >= {p.rsplit("/", 1)[1] for p in stale}
    for cg in stale[:3]:  # writes keep per-container state in the agent too
        assert (await patch(api, cg.rsplit("/", 1)[1], {"pids_limit": 100})).status == 200
    await agent.enforcer.reconcile_all()
    text = await (await client.get("/metrics")).text()
    assert len(series(text, "cgwatch_limit_desired", prefix)) >= STALE

    await asyncio.to_thread(lambda: [sandbox.remove(cg) for cg in stale])
    await agent.enforcer.reconcile_all()
    resp = await client.get("/metrics")
    text = await resp.text()
    assert resp.status == 200
    assert_collectors_ok(text)
    leaked = series(text, "", prefix)
    assert not leaked, f"{len(leaked)} series of removed cgroups, e.g. {leaked[:3]}"
    # Nor does a recent walk answer for them: the API no longer finds them.
    resp = await api.get(f"/api/v1/containers/{stale[0].rsplit('/', 1)[1]}/limits")
    assert resp.status == 404, await resp.text()
    # The agent's per-container state follows the host: nothing kept for cgroups that are gone.
    gc.collect()
    gone = f"{sandbox.path()}/docker/"
    held = {
        "enforcer targets": [p for p in agent.enforcer._last_targets if p.startswith(gone)],
        "enforcer repair windows": [p for p in agent.enforcer._repairs if p.startswith(gone)],
        "enforcer known paths": [p for p in agent.enforcer._known_paths or () if p.startswith(gone)],
        "write locks": [p for p in agent.limits._locks if p.startswith(gone)],
    }
    assert not any(held.values()), {k: len(v) for k, v in held.items()}


def series(text: str, metric: str, label_prefix: str) -> list[str]:
    """Sample lines of ``metric`` ("" for any) carrying ``label_prefix``: a line scan, because the
    full parser takes seconds over the 20 MB of a 3000-cgroup exposition."""
    return [line for line in text.splitlines()
            if line.startswith(metric) and not line.startswith("#") and label_prefix in line]


def assert_collectors_ok_fast(text: str) -> None:
    agent_lines = "\n".join(line for line in text.splitlines() if line.startswith(("cgwatch_collector", "# ")))
    assert_collectors_ok(agent_lines)


# --- a state directory on a full disk ---------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs of our own under the test's temp dir, unmounted (by path) afterwards."""
    mnt = tmp_path / "state"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "cgwatch-test-full", str(mnt)],
                   check=True, capture_output=True, timeout=10)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True, capture_output=True, timeout=10)


def fill(directory: Path, leave_bytes: int) -> Path:
    """Fill the filesystem until at most ``leave_bytes`` are free (0: until ENOSPC)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        while (free := shutil.disk_usage(directory).free) > leave_bytes:
            try:
                os.write(fd, b"\0" * min(1 << 16, max(4096, free - leave_bytes)))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    finally:
        os.close(fd)
    return filler


async def test_a_full_state_disk_refuses_writes_with_503_and_writes_nothing(sandbox, small_disk, make_agent,
                                                                          aiohttp_client, api_client):
    cid = new_id()
    cg = sandbox.create(f"docker/{cid}")
    sandbox.sleeper(cg)
    agent = await make_agent(state_dir=small_disk)
    client = await aiohttp_client(create_app(agent))
    api = await api_client(agent)
    before = sandbox.read(cg, "pids.max")

    # Below the audit headroom: refused before any cgroup write, and the refusal is audited.
    filler = fill(small_disk, leave_bytes=256 << 10)
    resp = await patch(api, cid, {"pids_limit": 50})
    body = await resp.json()
    assert resp.status == 503, body
    assert body["error"] == "state_unwritable"
    assert audit_lines(small_disk)[-1]["result"] == "failed"
    # Completely full: the audit line itself cannot be written; still a 503, still nothing written.
    fill(small_disk, leave_bytes=0)
    resp = await patch(api, cid, {"pids_limit": 50})
    assert resp.status == 503 and (await resp.json())["error"] == "state_unwritable"
    assert sandbox.read(cg, "pids.max") == before
    assert agent.enforcer.store.get(cid) is None

    resp = await client.get("/metrics")
    text = await resp.text()
    assert resp.status == 200
    assert_collectors_ok(text)
    assert value(text, "container_processes", id=cg) == 1

    filler.unlink()
    resp = await patch(api, cid, {"pids_limit": 50})
    assert resp.status == 200, await resp.text()
    assert sandbox.read(cg, "pids.max").strip() == "50"
    assert audit_lines(small_disk)[-1]["result"] == "accepted"
    assert agent.enforcer.store.get(cid)["limits"]["pids_max"] == 50


# --- a cgroupfs the agent cannot write ------------------------------------------------------------------

# In a private mount namespace, remount every cgroup mount read-only: a per-mount flag (the
# superblock stays rw), in a copy of the mount table, so the host's mounts are untouched.
READ_ONLY_CGROUPFS = [
    "unshare", "--mount", "--propagation", "private", "sh", "-ec",
    'for m in $(awk \'$9 == "cgroup" || $9 == "cgroup2" {print $5}\' /proc/self/mountinfo); do '
    'mount -o remount,bind,ro "$m"; done; exec "$@"', "sh"]


def cgroup_mounts(mountinfo: str) -> dict[str, str]:
    """mount point -> per-mount options, for the cgroup mounts in a mountinfo text."""
    out = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        if fstype in ("cgroup", "cgroup2"):
            out[fields[4]] = fields[5]
    return out


def agent_pid(served) -> int:
    """The PID of the agent serving ``served`` (found by its --api-listen argument)."""
    wanted = served.api.removeprefix("http://").encode()
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and wanted in argv:
            return int(proc.name)
    raise AssertionError(f"no agent process serves {served.api}")


def write_refused(served, ref: str, cg_file: Path, errno_name: str) -> None:
    before = cg_file.read_text()
    status, raw = http(f"{served.api}/api/v1/containers/{ref}/limits", data=b'{"pids_limit": 50}', method="PATCH",
                       headers={**JSON, "Authorization": f"Bearer {served.token}"})
    body = json.loads(raw)
    assert status == 503, body
    assert (body["error"], body["errno"]) == ("cgroup_write_failed", errno_name)
    assert cg_file.read_text() == before
    [line] = audit_lines(served.state)
    assert (line["result"], line["container_id"]) == ("failed", ref)


def metrics_still_served(served, cg: str) -> None:
    status, raw = get(f"{served.metrics}/metrics")
    assert status == 200
    text = raw.decode()
    assert_collectors_ok(text)
    assert value(text, "container_processes", id=cg) == 1
    assert value(text, "container_spec_cpu_shares", id=cg) == 1024


def test_a_read_only_cgroupfs_refuses_writes_with_503_and_metrics_go_on(sandbox, tmp_path):
    cid = new_id()
    cg = sandbox.create(f"docker/{cid}")
    sandbox.sleeper(cg)
    host_before = cgroup_mounts(Path("/proc/self/mountinfo").read_text())
    assert all(opts.split(",")[0] == "rw" for opts in host_before.values())
    with serve_agent(tmp_path, prefix=READ_ONLY_CGROUPFS) as served:
        # The agent's view is read-only; the host's is not.
        inside = cgroup_mounts(Path(f"/proc/{agent_pid(served)}/mountinfo").read_text())
        assert inside.keys() == host_before.keys()
        assert all(opts.split(",")[0] == "ro" for opts in inside.values())
        assert cgroup_mounts(Path("/proc/self/mountinfo").read_text()) == host_before

        write_refused(served, cid, sandbox.file(cg, "pids.max"), "EROFS")
        metrics_still_served(served, cg)
    assert cgroup_mounts(Path("/proc/self/mountinfo").read_text()) == host_before


def test_an_unprivileged_agent_refuses_writes_with_503_and_metrics_go_on(sandbox):
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        need("a user named nobody")
    cid = new_id()
    cg = sandbox.create(f"docker/{cid}")
    sandbox.sleeper(cg)
    # Under /tmp itself: pytest's temp dirs are root's alone (0700), nobody could not reach them.
    workdir = Path(tempfile.mkdtemp(prefix="cgwatch-faults-"))
    try:
        workdir.chmod(0o755)
        (workdir / "state").mkdir(mode=0o700)
        os.chown(workdir / "state", nobody.pw_uid, nobody.pw_gid)
        as_nobody = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
        with serve_agent(workdir, prefix=as_nobody) as served:
            write_refused(served, cid, sandbox.file(cg, "pids.max"), "EACCES")
            metrics_still_served(served, cg)
    finally:
        shutil.rmtree(workdir)


# --- Docker: a container removed mid-change, a daemon that goes away ---------------------------------

@pytest.fixture
async def docker_agent(make_agent):
    return await make_agent(docker_host=DOCKER)


class RemovedBeforeUpdate:
    """The agent's Docker client, with the container removed (`docker rm -f`) just before the
    update call: the daemon's own 404, after validation."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    async def update(self, container_id, resources):
        await asyncio.to_thread(subprocess.run, ["docker", "rm", "-f", container_id], check=True,
                                capture_output=True, timeout=60)
        return await self._inner.update(container_id, resources)


@pytest.mark.docker
async def test_a_docker_container_removed_before_the_update_is_404_and_audited(docker_containers, make_agent,
                                                                              api_client):
    docker_agent = await make_agent(docker_host=DOCKER, docker_client=RemovedBeforeUpdate(DockerClient(DOCKER)))
    api = await api_client(docker_agent)
    cid, name = await asyncio.to_thread(docker_containers.run)
    resp = await patch(api, name, {"cpus": 0.5})
    body = await resp.json()
    assert resp.status == 404, body
    assert body["error"] == "container_not_found"
    [line] = audit_lines(docker_agent.settings.state_dir)
    assert (line["result"], line["container_id"], line["error"]["error"]) == ("rejected", cid, "container_not_found")
    assert docker_agent.enforcer.store.get(cid) is None


def dockerd(script: str, **env: str) -> None:
    subprocess.run(["bash", str(REPO / "tests" / "support" / script)], check=True, capture_output=True,
                   timeout=120, env={**os.environ, **env})


def docker_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0


@pytest.mark.docker
async def test_a_docker_daemon_restart_keeps_scrapes_answering_and_names_come_back(docker_containers, docker_agent,
                                                                                 aiohttp_client):
    client = await aiohttp_client(create_app(docker_agent))
    # A short stop timeout: busybox sh as PID 1 ignores SIGTERM, dockerd would wait 10 s for it.
    cid, name = await asyncio.to_thread(docker_containers.run, "--restart", "always", "--stop-timeout", "1")
    cg = f"/docker/{cid}"

    async def scrape() -> str:
        resp = await client.get("/metrics")
        text = await resp.text()
        assert resp.status == 200
        assert_collectors_ok(text)
        return text

    async def eventually(predicate, timeout: float) -> None:
        started = time.monotonic()
        while not await predicate():
            assert time.monotonic() - started < timeout, f"{predicate.__name__}: not within {timeout} s"
            await asyncio.sleep(0.1)

    async def started_at() -> float | None:
        return value(await scrape(), "container_start_time_seconds", id=cg, name=name)

    await eventually(started_at, 10)
    first_start = await started_at()
    try:
        stopping = asyncio.ensure_future(asyncio.to_thread(dockerd, "docker-down.sh", CGWATCH_KEEP_CONTAINERS="1"))
        while not stopping.done():  # scrapes answer while the daemon shuts down
            await scrape()
            await asyncio.sleep(0.1)
        await stopping
        need(None if not await asyncio.to_thread(docker_answers) else
             "dockerd was not started by tests/support/docker-up.sh, so this test cannot stop it")
        for _ in range(10):  # ... and while it is gone
            await scrape()
            await asyncio.sleep(0.1)
        assert (await (await client.get("/healthz")).json())["docker"] == {"connected": False}
    finally:
        await asyncio.to_thread(dockerd, "docker-up.sh")

    # The --restart always container runs again under its ID; the watcher learns its new start.
    async def restarted() -> bool:
        return (await started_at() or 0) > first_start
    await eventually(restarted, 20)

    async def connected() -> bool:
        return (await (await client.get("/healthz")).json())["docker"] == {"connected": True}
    await eventually(connected, 15)  # within the watcher's longest backoff (10 s)
    # The event stream is back: a container created now is named by its event, at once.
    cid2, name2 = await asyncio.to_thread(docker_containers.run)

    async def named() -> bool:
        return value(await scrape(), "container_info", id=f"/docker/{cid2}", name=name2) == 1
    await eventually(named, 5)
