"""Real cgroups, real processes, the real agent: the metrics a user alerts on move as the kernel says.

Runs on the v1 hybrid host and, unchanged, in the cgroup v2 guest (tests/vm).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid

import pytest

from cgwatch.server.app import create_app
from tests.support.agent import samples, value

pytestmark = pytest.mark.real


def hexid() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


def kernel_cpu_seconds(sandbox, cg: str) -> float:
    if sandbox.is_v2:
        stat = dict(line.split() for line in sandbox.read(cg, "cpu.stat").splitlines())
        return int(stat["usage_usec"]) / 1e6
    return int(sandbox.read(cg, "cpuacct.usage")) / 1e9


@pytest.mark.guest
async def test_cpu_usage_tracks_the_kernel_counter(sandbox, scrape):
    cg = sandbox.create(f"docker/{hexid()}")
    sandbox.busy_loop(cg)
    await asyncio.sleep(1.0)
    before = kernel_cpu_seconds(sandbox, cg)
    text = await scrape()
    after = kernel_cpu_seconds(sandbox, cg)
    usage = value(text, "container_cpu_usage_seconds_total", id=cg, cpu="total")
    assert usage is not None and before <= usage <= after
    assert usage > 0.3  # a busy loop for a second on an otherwise quiet cgroup
    user = value(text, "container_cpu_user_seconds_total", id=cg)
    system = value(text, "container_cpu_system_seconds_total", id=cg)
    assert user is not None and system is not None and user + system <= after + 0.05


@pytest.mark.guest
async def test_throttling_counters_move_under_a_quota(sandbox, scrape):
    cg = sandbox.create(f"docker/{hexid()}")
    if sandbox.is_v2:
        sandbox.write(cg, "cpu.max", "20000 100000")
    else:
        sandbox.write(cg, "cpu.cfs_period_us", "100000")
        sandbox.write(cg, "cpu.cfs_quota_us", "20000")
    sandbox.busy_loop(cg)
    await asyncio.sleep(1.5)
    text = await scrape()
    assert value(text, "container_spec_cpu_quota", id=cg) == 20000
    assert value(text, "container_spec_cpu_period", id=cg) == 100000
    assert value(text, "container_cpu_cfs_periods_total", id=cg) >= 5
    assert value(text, "container_cpu_cfs_throttled_periods_total", id=cg) >= 5
    assert value(text, "container_cpu_cfs_throttled_seconds_total", id=cg) > 0.1


@pytest.mark.guest
async def test_oom_kill_counted_from_the_kernel(sandbox, scrape):
    cg = sandbox.create(f"docker/{hexid()}")
    sandbox.write(cg, "memory.max" if sandbox.is_v2 else "memory.limit_in_bytes", str(64 << 20))
    text = await scrape()
    assert value(text, "container_oom_kills_total", id=cg) == 0
    hog = sandbox.memory_hog(cg, mib=300)
    assert await asyncio.to_thread(hog.wait, 60) == -signal.SIGKILL
    text = await scrape()
    assert value(text, "container_oom_kills_total", id=cg) == 1
    assert value(text, "container_spec_memory_limit_bytes", id=cg) == 64 << 20


@pytest.mark.guest
async def test_memory_usage_counts_what_a_process_allocates(sandbox, scrape):
    cg = sandbox.create(f"docker/{hexid()}")
    hog = sandbox.memory_hog(cg, mib=40)
    assert await asyncio.to_thread(hog.stdout.readline) == "allocated\n"
    text = await scrape()
    usage = value(text, "container_memory_usage_bytes", id=cg)
    working_set = value(text, "container_memory_working_set_bytes", id=cg)
    rss = value(text, "container_memory_rss", id=cg)
    assert usage >= 40 << 20
    assert rss >= 40 << 20
    assert 40 << 20 <= working_set <= usage
    assert value(text, "container_spec_memory_limit_bytes", id=cg) is None  # unlimited: no sample


async def test_processes_and_threads_are_counted(sandbox, scrape):
    cg = sandbox.create("plain/leaf")
    for _ in range(3):
        sandbox.sleeper(cg)
    text = await scrape()
    assert value(text, "container_processes", id=cg) == 3
    assert value(text, "container_threads", id=cg) == 3


@pytest.mark.guest
async def test_removed_cgroup_series_are_gone_on_the_next_scrape(sandbox, make_agent, aiohttp_client):
    # With --removed-retention 0; the default keeps them a while: tests/real/test_oom_retention.py.
    client = await aiohttp_client(create_app(await make_agent(removed_retention_s=0.0)))

    async def scrape() -> str:
        return await (await client.get("/metrics")).text()
    cg = sandbox.create(f"docker/{hexid()}")
    proc = sandbox.sleeper(cg)
    assert samples(await scrape(), "container_memory_usage_bytes", id=cg)
    proc.kill()
    proc.wait()
    sandbox.cleanup()
    text = await scrape()
    assert not [s for s in samples(text, "container_memory_usage_bytes") if s.labels["id"].startswith(cg)]
    assert not samples(text, "container_info", id=cg)


@pytest.mark.guest
async def test_pressure_is_exported_where_the_kernel_has_psi(sandbox, scrape):
    cg = sandbox.create("plain/psi")
    sandbox.busy_loop(cg)
    sandbox.busy_loop(cg)
    sandbox.busy_loop(cg)  # three busy loops on two CPUs: some of them always wait
    await asyncio.sleep(1.5)
    text = await scrape()
    assert value(text, "container_pressure_cpu_waiting_seconds_total", id=cg) > 0
    assert value(text, "container_pressure_memory_stalled_seconds_total", id=cg) is not None
    assert value(text, "container_pressure_io_waiting_seconds_total", id=cg) is not None


@pytest.mark.guest
async def test_every_runtime_shape_is_named_by_its_runtime(sandbox, client):
    ids = {k: hexid() for k in ("docker", "scope", "cri", "containerd", "podman")}
    uid = str(uuid.uuid4())
    shapes = {
        f"docker/{ids['docker']}": ("docker", ids["docker"]),
        f"system.slice/docker-{ids['scope']}.scope": ("docker", ids["scope"]),
        f"kubepods/burstable/pod{uid}/{ids['cri']}": ("cri", ids["cri"]),
        (f"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid.replace('-', '_')}.slice/"
         f"cri-containerd-{ids['containerd']}.scope"): ("containerd", ids["containerd"]),
        f"machine.slice/libpod-{ids['podman']}.scope": ("podman", ids["podman"]),
        "system.slice/cron.service": ("systemd", "cron.service"),
        "plain/leaf": ("raw", None),
    }
    for rel in shapes:
        sandbox.create(rel)
    resp = await client.get("/api/v1/containers")
    assert resp.status == 200
    by_path = {c["cgroup"]: c for c in (await resp.json())["containers"]}
    for rel, (runtime, cid) in shapes.items():
        found = by_path[sandbox.path(rel)]
        assert found["runtime"] == runtime, rel
        if cid is not None:
            assert found["id"] == cid
    cri = by_path[sandbox.path(f"kubepods/burstable/pod{uid}/{ids['cri']}")]
    assert (cri["pod_uid"], cri["qos"]) == (uid, "burstable")


async def test_container_found_by_id_prefix_and_name(sandbox, client):
    cid = hexid()
    cg = sandbox.create(f"docker/{cid}")
    sandbox.write(cg, "pids.max", "77")
    resp = await client.get(f"/api/v1/containers/{cid[:16]}")
    assert resp.status == 200
    body = await resp.json()
    assert (body["id"], body["cgroup"], body["limits"]["pids_max"]) == (cid, cg, 77)
    assert (await client.get("/api/v1/containers/cron-does-not-exist.service")).status == 404


async def test_ambiguous_prefix_is_a_conflict(sandbox, client):
    a, b = "ab" + hexid()[2:], "ab" + hexid()[2:]
    sandbox.create(f"docker/{a}")
    sandbox.create(f"docker/{b}")
    resp = await client.get("/api/v1/containers/ab")
    assert resp.status == 409
    assert (await resp.json())["error"] == "ambiguous_ref"


async def test_api_reports_usage_and_limits(sandbox, client):
    cid = hexid()
    cg = sandbox.create(f"docker/{cid}")
    if sandbox.is_v2:
        sandbox.write(cg, "cpu.max", "50000 100000")
        sandbox.write(cg, "memory.max", str(100 << 20))
    else:
        sandbox.write(cg, "cpu.cfs_quota_us", "50000")
        sandbox.write(cg, "memory.limit_in_bytes", "100M")
    hog = sandbox.memory_hog(cg, mib=10)
    assert await asyncio.to_thread(hog.stdout.readline) == "allocated\n"
    body = await (await client.get(f"/api/v1/containers/{cid}")).json()
    assert body["limits"]["cpus"] == 0.5
    assert body["limits"]["memory_limit_bytes"] == 100 << 20
    assert body["usage"]["memory"]["usage_bytes"] >= 10 << 20
    assert body["usage"]["tasks"]["processes"] == 1


async def test_concurrent_scrapes_share_one_collection(agent, client):
    def collections() -> float:
        return agent.exporter.registry.get_sample_value("cgwatch_collections_total") or 0.0

    before = collections()
    bodies = await asyncio.gather(*(client.get("/metrics") for _ in range(5)))
    assert all(r.status == 200 for r in bodies)
    assert collections() - before <= 2


async def test_thousands_of_threads_are_all_counted(sandbox, scrape):
    # cgroup.procs and tasks are handed out a page per read: more than a page of TIDs must all count.
    cg = sandbox.create("plain/threads")
    code = ("import threading, time\nev = threading.Event()\n"
            "ts = [threading.Thread(target=ev.wait, daemon=True) for _ in range(1500)]\n"
            "[t.start() for t in ts]\nprint('started', flush=True)\ntime.sleep(600)")
    proc = sandbox.spawn(cg, [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert await asyncio.to_thread(proc.stdout.readline) == "started\n"
    assert value(await scrape(), "container_threads", id=cg) == 1501


@pytest.mark.guest
async def test_threads_of_a_parent_cgroup_count_its_childrens(sandbox, scrape):
    # container_threads is pids.current, which counts the whole subtree (cgroup-v1/pids.rst,
    # cgroup-v2.rst "pids.current"), as cAdvisor's ThreadsCurrent: a pod's cgroup shows its containers'.
    parent = sandbox.create("plain/pod")
    for child in ("a", "b"):
        sandbox.sleeper(sandbox.create(f"plain/pod/{child}"))
    text = await scrape()
    assert value(text, "container_threads", id=parent) == 2
    assert value(text, "container_processes", id=parent) == 0  # cgroup.procs: its own, none


@pytest.mark.guest
async def test_cfs_counters_are_absent_for_a_cgroup_without_a_quota(sandbox, scrape):
    cg = sandbox.create(f"docker/{hexid()}")
    sandbox.busy_loop(cg)
    text = await scrape()
    assert value(text, "container_cpu_usage_seconds_total", id=cg, cpu="total") is not None
    for name in ("container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total",
                 "container_cpu_cfs_throttled_seconds_total"):
        assert value(text, name, id=cg) is None, name


@pytest.mark.guest
async def test_threads_max_is_exported_where_pids_max_is_set(sandbox, scrape):
    cg = sandbox.create(f"docker/{hexid()}")
    sandbox.write(cg, "pids.max", "77")
    text = await scrape()
    assert value(text, "container_threads_max", id=cg) == 77
    assert value(text, "container_spec_pids_max", id=cg) == 77  # the old name, kept for a release


@pytest.mark.guest
async def test_threads_max_is_absent_without_a_pids_limit(sandbox, scrape):
    cg = sandbox.create(f"docker/{hexid()}")
    sandbox.sleeper(cg)
    text = await scrape()
    assert value(text, "container_threads", id=cg) == 1
    assert value(text, "container_threads_max", id=cg) is None  # pids.max "max": unlimited, no sample


@pytest.mark.guest
async def test_page_faults_move_when_a_process_touches_memory(sandbox, scrape):
    cg = sandbox.create(f"docker/{hexid()}")
    text = await scrape()
    before = {scope: value(text, "container_memory_failures_total", id=cg, failure_type="pgfault", scope=scope)
              for scope in ("container", "hierarchy")}
    hog = sandbox.memory_hog(cg, mib=40)
    assert await asyncio.to_thread(hog.stdout.readline) == "allocated\n"
    text = await scrape()
    for scope in ("container", "hierarchy"):
        after = value(text, "container_memory_failures_total", id=cg, failure_type="pgfault", scope=scope)
        # 40 MiB touched a page at a time: at least one fault per 2 MiB even with huge pages.
        assert after - before[scope] >= 20, scope
    assert value(text, "container_memory_failures_total", id=cg, failure_type="pgmajfault",
                 scope="container") is not None


@pytest.mark.guest
async def test_oom_events_count_the_same_kills_as_oom_kills(sandbox, scrape):
    cg = sandbox.create(f"docker/{hexid()}")
    sandbox.write(cg, "memory.max" if sandbox.is_v2 else "memory.limit_in_bytes", str(64 << 20))
    hog = sandbox.memory_hog(cg, mib=300)
    assert await asyncio.to_thread(hog.wait, 60) == -signal.SIGKILL
    text = await scrape()
    assert value(text, "container_oom_events_total", id=cg) == value(text, "container_oom_kills_total", id=cg) == 1
