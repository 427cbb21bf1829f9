"""Every dashboard query and every alert rule returns data from a real Prometheus scraping a live cgwatch.

One module-wide setup: real workloads in Docker-shaped cgroups (a busy loop under a CPU quota, a
memory hog under a limit doing direct IO, a process in its own network namespace, one real OOM kill), a
`cgwatch serve` subprocess enforcing a policy over them, and Debian's Prometheus scraping it every
second (plus a target on a closed port, so `up == 0` exists), evaluating alerts/cgwatch.rules.yml.
Then each dashboard expression (template variables matching everything) and each alert
expression (comparisons made `bool`, so thresholds filter nothing) must return a series: a
renamed metric, a wrong label or a typo in either fails here, not in front of an operator.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from dashboards.promql import comparisons_to_bool, expand_variables
from tests.conftest import REPO, need
from tests.support.cgroups import CgroupSandbox, have_real_cgroups, wait_for
from tests.support.prometheus import Prometheus, prometheus_missing, running_prometheus
from tests.support.served import free_port, http, stop

pytestmark = [
    pytest.mark.real,
    pytest.mark.prometheus,
    # In the QEMU guest Python runs ~30x slower: a collection outlasts a 1 s scrape timeout there.
    # The guest stage covers the v2 readers; this check of the queries runs on the host stage.
    pytest.mark.skipif(os.environ.get("CGWATCH_KERNEL") == "v2-guest",
                       reason="live Prometheus check runs on the host stage (1 s scrapes)"),
]

RULES = REPO / "alerts" / "cgwatch.rules.yml"
DASHBOARD_JSON = REPO / "dashboards" / "json"
SAMPLES_WANTED = 10  # ~10 s of 1 s scrapes before anything is asserted


def dashboard_queries() -> list:
    params = []
    for path in sorted(DASHBOARD_JSON.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board.get("panels", []):
            for target in panel.get("targets", []):
                params.append(pytest.param(target["expr"], id=f"{board['uid']}/{panel['title']}/{target['refId']}"))
    return params


def alert_rules() -> list:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [pytest.param(rule["expr"], id=rule["alert"]) for g in groups for rule in g["rules"] if "alert" in rule]


@dataclass
class Live:
    prometheus: Prometheus
    cgwatch_target: str
    closed_target: str
    cpu_cg: str
    memory_cg: str
    oom_cg: str
    logs: Path

    @property
    def prom_url(self) -> str:
        return self.prometheus.url

    def query(self, expr: str) -> list[dict]:
        """Instant query; the result vector (raises with Prometheus's message on a bad query)."""
        return self.prometheus.query(expr)

    def value(self, expr: str) -> float | None:
        return self.prometheus.value(expr)


def start_logged(argv: list[str], log: Path, **kwargs) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kwargs)


def block_device_of(path: Path) -> str | None:
    """MAJ:MIN of the whole disk holding ``path`` (blk-throttle rules are set per disk, not
    partition); None on a file system without one (tmpfs, overlay)."""
    dev = os.stat(path).st_dev
    sysfs = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    if not sysfs.exists():
        return None
    if (sysfs / "partition").exists():
        return (sysfs.resolve().parent / "dev").read_text().strip()
    return f"{os.major(dev)}:{os.minor(dev)}"


def disk_directory(work: Path) -> tuple[Path, str]:
    """A directory on a real block device for the direct-IO workload, and that device."""
    for candidate in (work, Path("/var/tmp")):
        disk = block_device_of(candidate)
        if disk is not None:
            return candidate, disk
    need("needs a directory on a block device (pytest's tmp or /var/tmp) for the direct-IO workload")
    raise AssertionError("unreachable")


def start_workloads(box: CgroupSandbox, io_file: Path, disk: str) -> tuple[str, str, str]:
    """CPU-bound, memory-bound (with IO) and network-namespaced containers; the OOM one is only
    created: its hog starts once Prometheus watches."""
    v2 = box.is_v2
    cpu_cg = box.create(f"docker/{uuid.uuid4().hex * 2}")
    memory_cg = box.create(f"docker/{uuid.uuid4().hex * 2}")
    oom_cg = box.create(f"docker/{uuid.uuid4().hex * 2}")

    # A busy loop under 0.2 CPU: throttled in most periods (the policy then holds it to 0.3).
    if v2:
        box.write(cpu_cg, "cpu.max", "20000 100000")
    else:
        box.write(cpu_cg, "cpu.cfs_period_us", "100000")
        box.write(cpu_cg, "cpu.cfs_quota_us", "20000")
    box.busy_loop(cpu_cg)

    # A 40 MiB hog under 128 MiB (the policy lowers it to 96 MiB and adds a reservation).
    box.write(memory_cg, "memory.max" if v2 else "memory.limit_in_bytes", str(128 << 20))
    hog = box.memory_hog(memory_cg, 40)
    assert hog.stdout.readline().strip() == "allocated"
    # A container in its own network namespace (with a veth pair): the network collector's case.
    # (A container's processes share one namespace; cgwatch reads it from the first of them.)
    net_cg = box.create(f"docker/{uuid.uuid4().hex * 2}")
    box.spawn(net_cg, ["unshare", "--net", "sh", "-c", "ip link add eth0 type veth peer name eth1 && "
                       "ip link set eth0 up && ip link set eth1 up && exec sleep 600"])
    # Direct IO in a loop. The kernel accounts v1 blkio.throttle.io_service_* only for cgroups with
    # a throttle rule on the device, so set one no workload reaches (1 TiB/s); v2 io.stat always counts.
    if v2:
        box.write(memory_cg, "io.max", f"{disk} rbps={1 << 40} wbps={1 << 40}")
    else:
        box.write(memory_cg, "blkio.throttle.read_bps_device", f"{disk} {1 << 40}")
        box.write(memory_cg, "blkio.throttle.write_bps_device", f"{disk} {1 << 40}")
    box.spawn(memory_cg, ["sh", "-c", f"while :; do dd if=/dev/zero of={io_file} bs=64k count=16 oflag=direct; "
                          f"dd if={io_file} of=/dev/null bs=64k iflag=direct; sleep 0.5; done"],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # 64 MiB and no swap: the 300 MiB hog started later is OOM-killed.
    box.write(oom_cg, "memory.max" if v2 else "memory.limit_in_bytes", str(64 << 20))
    if v2:
        box.write(oom_cg, "memory.swap.max", "0")
    elif box.file(oom_cg, "memory.memsw.limit_in_bytes").exists():
        box.write(oom_cg, "memory.memsw.limit_in_bytes", str(64 << 20))
    return cpu_cg, memory_cg, oom_cg


def ignore_others(box: CgroupSandbox) -> list[str]:
    """--ignore-cgroup flags for every top-level cgroup but the sandbox (and /process_api, always).

    The queries need only the sandbox's containers and "/". What else the host runs (other tests'
    sandboxes, real containers, a concurrent scrape benchmark with thousands of cgroups) must not
    push a collection past the 1 s scrape timeout.
    """
    others = {"/process_api*", "/cgwatch-bench-*"}
    for root in box.layout.hierarchy_roots():
        others.update(f"/{d.name}" for d in root.iterdir() if d.is_dir() and d.name != box.name)
    return [arg for glob in sorted(others) for arg in ("--ignore-cgroup", glob)]


def write_policy(path: Path, cpu_cg: str, memory_cg: str) -> None:
    path.write_text(yaml.safe_dump({"rules": [
        {"name": "cpu-bound", "match": {"cgroup": cpu_cg}, "limits": {"cpus": 0.3}},
        {"name": "memory-bound", "match": {"cgroup": memory_cg},
         "limits": {"memory": "96m", "memory_reservation": "32m", "pids_limit": 64}},
    ]}))


def scrape_configs(cgwatch_target: str, closed_target: str) -> list[dict]:
    return [
        {"job_name": "cgwatch", "static_configs": [{"targets": [cgwatch_target]}]},
        # Nothing listens here: up == 0. Relabelled into job "cgwatch" so CgwatchDown has a target.
        {"job_name": "cgwatch-unreachable", "static_configs": [{"targets": [closed_target]}],
         "relabel_configs": [{"target_label": "job", "replacement": "cgwatch"}]},
    ]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    need(have_real_cgroups())
    need(prometheus_missing())
    work = tmp_path_factory.mktemp("prometheus-live")
    io_dir, disk = disk_directory(work)
    io_file = io_dir / f"cgwatch-io-{uuid.uuid4().hex[:8]}.bin"
    box = CgroupSandbox()
    with ExitStack() as cleanup:  # unwound last to first: Prometheus, the agent, the sandbox, the file
        cleanup.callback(io_file.unlink, missing_ok=True)
        cleanup.callback(box.cleanup)
        cpu_cg, memory_cg, oom_cg = start_workloads(box, io_file, disk)

        metrics_port, api_port, closed_port = (free_port() for _ in range(3))
        write_policy(work / "policy.yml", cpu_cg, memory_cg)
        agent = start_logged(
            [sys.executable, "-m", "cgwatch", "serve", "--listen", f"127.0.0.1:{metrics_port}",
             "--api-listen", f"127.0.0.1:{api_port}", "--state-dir", str(work / "state"),
             "--max-age", "0", "--docker-host", "", "--podman-host", "", "--containerd-host", "", "--policy", str(work / "policy.yml"),
             "--reconcile-interval", "1", *ignore_others(box)],
            work / "cgwatch.log", cwd=REPO)
        cleanup.callback(stop, agent)
        wait_for(lambda: agent.poll() is not None or http(f"http://127.0.0.1:{metrics_port}/healthz")[0] == 200,
                 timeout=30, interval=0.1)
        assert agent.poll() is None, (work / "cgwatch.log").read_text()

        # One accepted change through the API: cgwatch_limit_updates_total{result="accepted"}.
        token = (work / "state" / "token").read_text().strip()
        status, body = http(f"http://127.0.0.1:{api_port}/api/v1/containers/{cpu_cg.rsplit('/', 1)[1]}/limits",
                            data=b'{"cpus": 0.25}', method="PATCH",
                            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        assert status == 200, body

        cgwatch_target, closed_target = f"127.0.0.1:{metrics_port}", f"127.0.0.1:{closed_port}"
        prometheus = cleanup.enter_context(running_prometheus(work, scrape_configs(cgwatch_target, closed_target),
                                                              interval="1s", rule_files=[RULES]))
        state = Live(prometheus, cgwatch_target, closed_target, cpu_cg, memory_cg, oom_cg, work)
        up = f'up{{job="cgwatch", instance="{cgwatch_target}"}}'
        # The first scrape comes ~6 s after start (target discovery batches every 5 s).
        wait_for(lambda: state.value(up) == 1, timeout=30, interval=0.2)

        # Now that Prometheus watches, the OOM kill: its counter goes 0 -> 1 under scrutiny.
        oom = box.memory_hog(oom_cg, 300)
        assert oom.wait(timeout=60) == -signal.SIGKILL, "the 300 MiB hog was not OOM-killed under 64 MiB"
        wait_for(lambda: (state.value(f'container_oom_kills_total{{id="{oom_cg}"}}') or 0) >= 1,
                 timeout=20, interval=0.2)

        wait_for(lambda: (state.value(f"count_over_time({up}[1m])") or 0) >= SAMPLES_WANTED,
                 timeout=60, interval=0.5)
        wait_for(lambda: rules_evaluated(state), timeout=20, interval=0.2)
        yield state


def rules_evaluated(state: Live) -> bool:
    status, body = http(f"{state.prom_url}/api/v1/rules")
    rules = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]] if status == 200 else []
    return bool(rules) and all(not r["lastEvaluation"].startswith("0001-") for r in rules)


@pytest.mark.parametrize("expr", dashboard_queries())
def test_dashboard_query_returns_data(live, expr):
    query = expand_variables(expr)
    assert live.query(query), f"no series for dashboard query {expr!r}, sent as {query!r} (logs: {live.logs})"


@pytest.mark.parametrize("expr", alert_rules())
def test_alert_expression_returns_data(live, expr):
    query = comparisons_to_bool(expr)
    assert live.query(query), f"no series for alert expression {expr!r}, sent as {query!r} (logs: {live.logs})"


def test_every_rule_evaluates_without_error(live):
    status, body = http(f"{live.prom_url}/api/v1/rules")
    rules = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
    assert status == 200 and rules
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []


def test_the_workloads_are_real(live):
    """The counters the dashboards show did move: throttling, the OOM kill, the down target, enforcement."""
    throttled = live.value(f'increase(container_cpu_cfs_throttled_periods_total{{id="{live.cpu_cg}"}}[1m])')
    assert throttled and throttled > 0
    assert live.value(f'container_oom_kills_total{{id="{live.oom_cg}"}}') == 1
    fired = live.query('increase(container_oom_kills_total{name!=""}[5m]) > 0')  # ContainerOomKilled, as written
    assert live.oom_cg in [s["metric"]["id"] for s in fired]
    down = live.query('up{job="cgwatch"} == 0')  # CgwatchDown, as written
    assert [s["metric"]["instance"] for s in down] == [live.closed_target]
    # The API's 0.25 CPU overrides the policy's 0.3; the policy holds the memory container to 96 MiB.
    assert live.value(f'container_spec_cpu_quota{{id="{live.cpu_cg}"}}') == 25000
    assert live.value(f'container_spec_memory_limit_bytes{{id="{live.memory_cg}"}}') == 96 << 20
    assert live.value(f'cgwatch_limit_desired{{id="{live.memory_cg}", resource="memory_limit_bytes"}}') == 96 << 20
    assert live.value('sum(cgwatch_limit_drift_repairs_total)') >= 1
    assert live.query('container_network_receive_bytes_total{name!="", interface="eth0"}')
    assert live.query(f'container_fs_writes_bytes_total{{id="{live.memory_cg}"}} > 0')


def test_promtool_accepts_the_rules():
    promtool = shutil.which("promtool")
    need(None if promtool else "needs promtool (Debian package prometheus)")
    out = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
