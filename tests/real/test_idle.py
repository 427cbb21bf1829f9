"""Nothing runs when nothing is to be done: no periodic pass while nothing is enforced, and the
background threads (OOM watcher, fs walker) sleep without a timeout when nothing is due.

The figure (CPU of an idle agent at 1000 containers) is bench/idle_bench.py's; these tests say
which jobs exist and whether a thread wakes, which is what the figure is made of.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from pathlib import Path

import pytest

from cgwatch.deaths.ledger import OomRecord
from cgwatch.deaths.watcher import OomWatcher
from cgwatch.fsusage import LayerWalker
from cgwatch.hostfs import Host
from tests.real.test_enforcement import quota, write_policy
from tests.support.cgroups import wait_for

pytestmark = pytest.mark.real

JOBS = ["birth", "reconcile"]
JSON = {"Content-Type": "application/json"}


def wakes(thread: threading.Thread | None) -> int:
    """How many times ``thread`` has gone to sleep and been woken (voluntary context switches)."""
    assert thread is not None
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("voluntary_ctxt_switches")))


# --- the periodic passes --------------------------------------------------------------------------

async def test_an_agent_with_nothing_to_enforce_schedules_no_job(agent):
    assert agent.jobs() == []


async def test_a_policy_at_start_schedules_the_passes(make_agent, sandbox, tmp_path):
    agent = await make_agent(policy_file=write_policy(tmp_path / "policy.yaml", sandbox.path()))
    assert agent.jobs() == JOBS


async def test_an_api_write_schedules_the_passes_and_releasing_it_removes_them(sandbox, make_agent, api_client):
    agent = await make_agent(reconcile_interval_s=0.5)
    api = await api_client(agent)
    cg = sandbox.create("batch/job-1")
    resp = await api.patch(f"/api/v1/cgroups{cg}/limits", data=json.dumps({"pids_limit": 13}), headers=JSON)
    assert resp.status == 200, await resp.text()
    await asyncio.to_thread(wait_for, lambda: agent.jobs() == JOBS, 2.0)
    sandbox.write(cg, "pids.max", "50")  # drift: the pass that now runs repairs it
    await asyncio.to_thread(wait_for, lambda: sandbox.read(cg, "pids.max").strip() == "13", 3.0)
    assert (await api.delete(f"/api/v1/cgroups{cg}/desired")).status == 200
    await asyncio.to_thread(wait_for, lambda: agent.jobs() == [], 2.0)


async def test_a_policy_written_after_the_start_is_loaded_at_once_and_enforced(make_agent, sandbox, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules: []\n")
    agent = await make_agent(policy_file=policy, reconcile_interval_s=3600.0, birth_scan_interval_s=3600.0)
    assert agent.jobs() == []
    write_policy(policy, sandbox.path())  # no SIGHUP: the file's directory is watched
    await asyncio.to_thread(wait_for, lambda: agent.jobs() == JOBS, 2.0)
    cg = sandbox.create(f"docker/{uuid.uuid4().hex * 2}")  # its birth is seen by the births watcher
    await asyncio.to_thread(wait_for, lambda: quota(sandbox, cg) == "25000", 5.0)
    policy.write_text("rules: []\n")
    await asyncio.to_thread(wait_for, lambda: agent.jobs() == [], 2.0)


async def test_the_scheduler_logs_nothing_when_a_job_runs(make_agent, sandbox, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # the root's level: what a logger of no level of its own inherits
    agent = await make_agent(policy_file=write_policy(tmp_path / "policy.yaml", sandbox.path()),
                             reconcile_interval_s=0.25, birth_scan_interval_s=0.25)
    await asyncio.sleep(1.0)  # a few runs of each
    assert agent.jobs() == JOBS
    # Warnings stay (a pass that overran its interval is "skipped"); the per-run INFO lines go.
    assert [r.getMessage() for r in caplog.records
            if r.name.startswith("apscheduler") and r.levelno < logging.WARNING] == []


# --- the background threads -----------------------------------------------------------------------

def test_the_oom_watcher_with_nothing_due_sleeps_without_waking(sandbox):
    watcher = OomWatcher(Host(Path("/sys/fs/cgroup"), Path("/proc")).layout)
    watcher.start()
    try:
        if not watcher.running:
            pytest.skip("no memory cgroup hierarchy")
        cg = sandbox.create(f"docker/{uuid.uuid4().hex * 2}")
        sandbox.sleeper(cg)
        assert watcher.watch(OomRecord(cg))
        time.sleep(0.5 + 0.3)  # the rereads a registration schedules, if any, are over
        before = wakes(watcher.thread)
        time.sleep(2.0)
        woken = wakes(watcher.thread) - before
    finally:
        watcher.stop()
    # v1: the cgroup's removal signals its eventfd, so nothing is swept; v2 rereads every 0.25 s.
    assert woken == 0 if not sandbox.is_v2 else woken <= 10


async def test_the_fs_walker_batches_layers_due_close_together(tmp_path):
    layers = [tmp_path / f"layer-{i}" for i in range(4)]
    for d in layers:
        d.mkdir()
        (d / "f").write_bytes(b"x" * 4096)
    walker = LayerWalker(Path("/proc"), interval_s=2.0)
    await walker.start()
    try:
        for d in layers:  # measured at four moments 0.1 s apart: due at four moments 0.1 s apart
            walker.track([str(x) for x in layers[:layers.index(d) + 1]])
            await asyncio.sleep(0.1)
        await asyncio.to_thread(wait_for, lambda: all((s := walker.stats(str(d))) and s.usage for d in layers), 5.0)
        first = walker.stats_now.passes
        await asyncio.sleep(2.0 * 3)  # three intervals
        passes = walker.stats_now.passes - first
    finally:
        await walker.stop()
    assert passes <= 4, passes  # one pass an interval (give or take one), not one per layer


async def test_the_fs_walker_with_nothing_tracked_never_wakes():
    walker = LayerWalker(Path("/proc"), interval_s=0.1)
    await walker.start()
    try:
        await asyncio.sleep(0.3)
        before = wakes(walker.thread)
        await asyncio.sleep(1.0)
        assert wakes(walker.thread) == before
    finally:
        await walker.stop()

