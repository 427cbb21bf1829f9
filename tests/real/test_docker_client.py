"""The Docker client and watcher against a real dockerd (tests/support/docker-up.sh starts one).

Setup goes through the `docker` CLI; assertions through the client under test. Every container
started here is removed by ID in a finalizer.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from cgwatch.runtimes.docker.client import DockerClient, DockerError
from cgwatch.runtimes.docker.parsing import DockerContainer
from cgwatch.runtimes.docker import DockerWatcher
from tests.conftest import need
from tests.support.docker import DOCKER_HOST, IMAGE, docker_missing

pytestmark = pytest.mark.docker

CG = Path("/sys/fs/cgroup")


@pytest.fixture(scope="module")
def dockerd():
    # Checked through the docker CLI, not the client under test.
    need(docker_missing())


@pytest.fixture
async def client(dockerd):
    c = DockerClient(DOCKER_HOST)
    try:
        yield c
    finally:
        await c.close()


class Started:
    """`docker run -d` through the CLI; `docker rm -f <id>` for each at the end."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def run(self, *args: str) -> tuple[str, str]:
        name = f"cgw-test-{uuid.uuid4().hex[:10]}"
        out = subprocess.run(["docker", "run", "-d", "--name", name, *args, IMAGE, "sleep", "300"],
                             check=True, capture_output=True, text=True, timeout=60)
        cid = out.stdout.strip()
        self.ids.append(cid)
        return cid, name


@pytest.fixture
def containers(dockerd):
    started = Started()
    try:
        yield started
    finally:
        if started.ids:  # some may be gone already (a test removed it): that is fine
            subprocess.run(["docker", "rm", "-f", *started.ids], capture_output=True, timeout=60)


def rm_f(cid: str) -> None:
    subprocess.run(["docker", "rm", "-f", cid], check=True, capture_output=True, timeout=60)


async def poll(cond, timeout: float, interval: float = 0.01):
    """Await until cond() is truthy; returns its value, or None at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got or time.monotonic() >= deadline:
            return got
        await asyncio.sleep(interval)


def cpu_quota(cid: str) -> str:
    if (CG / "cgroup.controllers").exists():  # v2: "quota period" in cpu.max
        return (CG / "docker" / cid / "cpu.max").read_text().split()[0]
    return (CG / "cpu" / "docker" / cid / "cpu.cfs_quota_us").read_text().strip()


async def test_ping(client):
    assert await client.ping() is True


async def test_list_and_inspect_a_running_container(client, containers):
    before = time.time()
    cid, name = await asyncio.to_thread(containers.run, "--cpus=0.5", "--memory=100m")
    after = time.time()

    listed = {c.id: c for c in await client.list_containers()}
    assert cid in listed
    c = await client.inspect(cid)
    assert listed[cid] == c
    assert isinstance(c, DockerContainer)
    assert (c.id, c.name, c.image, c.running, c.cgroup_parent) == (cid, name, IMAGE, True, "")
    assert c.pid is not None and c.pid > 0
    # The PID is the container's init, in the container's own cgroup.
    procs = (CG / ("docker" if (CG / "cgroup.controllers").exists() else "cpu/docker") / cid / "cgroup.procs")
    assert str(c.pid) in procs.read_text().split()
    assert c.started_at is not None and before - 1 <= c.started_at <= after + 1
    assert c.created is not None and c.created <= c.started_at
    assert dict(c.labels) == {}


async def test_inspect_and_update_of_an_unknown_container(client):
    unknown = "0" * 64
    assert await client.inspect(unknown) is None
    assert await client.inspect_raw(unknown) is None
    with pytest.raises(DockerError) as err:
        await client.update(unknown, {"NanoCpus": 250000000})
    assert err.value.status == 404


async def test_update_nanocpus_reaches_the_cgroup(client, containers):
    cid, _ = await asyncio.to_thread(containers.run, "--cpus=0.5", "--memory=100m")
    assert cpu_quota(cid) == "50000"
    warnings = await client.update(cid, {"NanoCpus": 250000000})
    assert isinstance(warnings, list)
    raw = await client.inspect_raw(cid)
    assert raw is not None and raw["HostConfig"]["NanoCpus"] == 250000000
    assert cpu_quota(cid) == "25000"


async def test_update_below_docker_minimum_memory_is_a_400(client, containers):
    cid, _ = await asyncio.to_thread(containers.run, "--cpus=0.5", "--memory=100m")
    with pytest.raises(DockerError) as err:
        await client.update(cid, {"Memory": 5 * 1024 * 1024})
    assert err.value.status == 400
    assert "memory" in err.value.message.lower()
    raw = await client.inspect_raw(cid)
    assert raw is not None and raw["HostConfig"]["Memory"] == 100 * 1024 * 1024  # unchanged


async def test_event_stream_reports_create_then_start(client, containers):
    # open_events returns once the daemon accepted the stream: everything after is queued in it.
    stream = await client.open_events()
    try:
        cid, name = await asyncio.to_thread(containers.run)
        mine = []

        async def until_start():
            async for ev in stream:
                if ev.id == cid:
                    mine.append(ev)
                    if ev.action == "start":
                        return

        await asyncio.wait_for(until_start(), 5)
    finally:
        await stream.aclose()
    assert [e.action for e in mine][:2] == ["create", "start"]
    assert mine[1].attributes.get("name") == name and mine[1].attributes.get("image") == IMAGE
    assert abs(mine[1].time - time.time()) < 30


async def test_events_generator_yields_container_events(client, containers):
    seen = []

    async def collect():
        async for ev in client.events():
            seen.append(ev)

    task = asyncio.create_task(collect())
    try:
        # events() connects on its first step, at a moment we cannot observe: start containers until
        # one's start event shows up (the first one almost always does).
        for _ in range(5):
            cid, _ = await asyncio.to_thread(containers.run)
            if await poll(lambda: any(e.id == cid and e.action == "start" for e in seen), 1.0):
                break
        else:
            pytest.fail(f"no start event from events(); saw {[(e.action, e.id[:12]) for e in seen]}")
    finally:
        task.cancel()
        await asyncio.wait({task})
    assert task.cancelled()  # the generator let the cancellation through (and closed its response)


async def test_watcher_follows_a_container_start_and_removal(client, containers):
    changes: list[tuple[str, DockerContainer | None]] = []

    async def on_change(cid, c):
        changes.append((cid, c))

    watcher = DockerWatcher(client, on_change=on_change)
    await watcher.start()
    try:
        assert await poll(lambda: watcher.connected, 5), "watcher never connected to a live dockerd"
        cid, name = await asyncio.to_thread(containers.run)
        started = time.monotonic()  # `docker run -d` returned: the container runs
        c = await poll(lambda: (found := watcher.get(cid)) is not None and found.running and found, 1.0)
        assert c, f"watcher did not see the running container within 1 s (has {list(watcher.all())})"
        assert time.monotonic() - started <= 1.0
        assert (c.name, c.image) == (name, IMAGE) and c.pid and c.pid > 0
        assert watcher.all()[cid] == c
        assert any(i == cid and x is not None for i, x in changes)

        await asyncio.to_thread(rm_f, cid)
        removed = time.monotonic()
        assert await poll(lambda: watcher.get(cid) is None, 1.0), "watcher kept a removed container"
        assert time.monotonic() - removed <= 1.0
        assert await poll(lambda: changes and changes[-1] == (cid, None), 1.0)
        assert watcher.connected and watcher.errors_total == 0
    finally:
        await watcher.stop()
    assert not watcher.connected


async def test_watcher_refresh_does_not_wait_for_the_events(client, containers):
    watcher = DockerWatcher(client)
    await watcher.start()
    try:
        assert await poll(lambda: watcher.connected, 5)
        cid, name = containers.run()  # blocks the loop: the events are not processed yet
        c = await watcher.refresh(name)  # by name: Docker resolves it
        assert c is not None and c.id == cid and c.running
        assert watcher.get(cid) == c
        assert await watcher.refresh("cgw-test-no-such-container") is None
    finally:
        await watcher.stop()


async def test_watcher_without_a_daemon_does_not_raise():
    # No `dockerd` fixture: this one needs no daemon at all.
    client = DockerClient("unix:///nonexistent/cgwatch-test/docker.sock", timeout=1.0)
    watcher = DockerWatcher(client)
    try:
        t0 = time.monotonic()
        await watcher.start()
        assert time.monotonic() - t0 < 0.1  # start() does not wait for the daemon
        # The first attempt fails at once, the retry comes after the 0.5 s backoff.
        assert await poll(lambda: watcher.errors_total >= 2, 3.0), watcher.errors_total
        assert watcher.connected is False
        assert dict(watcher.all()) == {} and watcher.get("0" * 64) is None
        assert await client.ping() is False
        with pytest.raises(DockerError) as err:
            await client.inspect("0" * 64)
        assert err.value.status is None
    finally:
        t1 = time.monotonic()
        await watcher.stop()
        stop_s = time.monotonic() - t1
        await client.close()
    assert stop_s < 0.5, f"stop() took {stop_s:.3f} s"
    assert watcher.connected is False
