"""What an operator's rules see, with a real Prometheus scraping `cgwatch serve` every second: a Docker
container OOM-killed (its cgroup removed at once) shows `increase(container_oom_kills_total[1m]) >= 1`,
and, its series kept, `time() - container_last_seen > 60` becomes true a minute later.

Takes a little over a minute: the only such test.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import need
from tests.support.cgroups import wait_for
from tests.support.docker import DOCKER_HOST, IMAGE, docker_missing
from tests.support.prometheus import prometheus_missing, running_prometheus
from tests.support.served import serve_agent

pytestmark = [
    pytest.mark.real,
    pytest.mark.docker,
    pytest.mark.prometheus,
    pytest.mark.skipif(os.environ.get("CGWATCH_KERNEL") == "v2-guest",
                       reason="runs on the host stage (the guest has no dockerd; 1 s scrapes)"),
]

CGROUP_ROOT = Path("/sys/fs/cgroup")


def ignore_all_but_docker() -> list[str]:
    """--ignore-cgroup for every top-level cgroup but /docker: whatever else the host runs (other
    tests' sandboxes, a benchmark's thousand cgroups) must not push a collection past the 1 s
    scrape timeout."""
    tops = {f"/{d.name}" for root in CGROUP_ROOT.iterdir() if root.is_dir()
            for d in root.iterdir() if d.is_dir() and d.name != "docker"}
    return [arg for top in sorted(tops | {"/process_api*"}) for arg in ("--ignore-cgroup", top)]


def test_prometheus_sees_the_oom_kill_of_a_dead_container_and_its_last_seen_age(tmp_path, docker_containers):
    need(docker_missing())
    need(prometheus_missing())
    with serve_agent(tmp_path, "--docker-host", DOCKER_HOST, "--removed-retention", "300",
                     *ignore_all_but_docker()) as agent, \
            running_prometheus(tmp_path / "prometheus", [{"job_name": "cgwatch", "static_configs": [
                {"targets": [agent.metrics.removeprefix("http://")]}]}], interval="1s") as prometheus:
        wait_for(lambda: prometheus.value('up{job="cgwatch"}') == 1, timeout=30, interval=0.2)
        # A few seconds alive first, so Prometheus has the counter at 0 before the kill: a series
        # whose first sample is already 1 has no increase() (see README "Removed containers").
        cid, name = docker_containers.run("--memory", "50m", cmd=("sh", "-c", "sleep 3; x=$(yes | head -c 200000000)"))
        selector = f'{{name="{name}", image="{IMAGE}"}}'
        wait_for(lambda: prometheus.value(f"container_oom_kills_total{selector}") == 0, timeout=20, interval=0.2)
        state = wait_for(lambda: (s := docker_containers.inspect(cid)["State"])["Status"] == "exited" and s,
                         timeout=60, interval=0.2)
        assert (state["OOMKilled"], state["ExitCode"]) == (True, 137)
        assert not Path(CGROUP_ROOT, "memory", "docker", cid).exists()  # gone with its process

        fired = wait_for(lambda: prometheus.query(f"increase(container_oom_kills_total{selector}[1m]) >= 1"),
                         timeout=30, interval=0.5)
        assert fired[0]["metric"]["id"] == f"/docker/{cid}"
        died = time.monotonic()
        try:
            wait_for(lambda: prometheus.query(f"time() - container_last_seen{selector} > 60"), timeout=100, interval=1)
        except AssertionError as exc:
            raise AssertionError(f"container_last_seen: {prometheus.query(f'container_last_seen{selector}')}, "
                                 f"successful scrapes in the last minute: {prometheus.value('sum_over_time(up[1m])')}, "
                                 f"agent log: {agent.log}") from exc
        assert time.monotonic() - died >= 50  # it fired because a minute went by, not before
        # Still there, never stale: the kept series of a container that is gone.
        assert prometheus.value(f"container_oom_kills_total{selector}") == 1
        assert subprocess.run(["docker", "inspect", cid], capture_output=True).returncode == 0
