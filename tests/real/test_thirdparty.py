"""Third-party consumers, unchanged, against cgwatch: the drop-in promise tested as a user would.

The files under tests/thirdparty/ are copied byte for byte from their projects (sources, commits and
licences in tests/thirdparty/README.md). Each is loaded into Debian's real Prometheus scraping a
`cgwatch serve` subprocess every second, with real workloads for the expressions to be about:

- dockprom (stefanprodan/dockprom): its `prometheus/alert.rules` and its Grafana "Docker Containers"
  dashboard, with dockprom's own scrape jobs ("cadvisor" now pointing at cgwatch, "nodeexporter" at a
  real node_exporter, which dockprom runs beside cAdvisor and whose host metrics half its queries
  divide by). Docker containers of the suite's dockerd: "jenkins" (the name dockprom's container
  alerts watch) busy and holding 1.25 GiB, an ordinary container, and one labelled
  org.label-schema.group=monitoring as dockprom labels its own services; the dashboard hides those
  through `container_label_org_label_schema_group=""`, which works only if the label is on every
  series (cgwatch --label-allowlist), not only on container_info.
- kubernetes-mixin as kube-prometheus renders it: the node_namespace_pod_container:* container
  recording rules and CPUThrottlingHigh, for CRI-shaped containerd containers in a Kubernetes
  cgroup layout.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from cgwatch.host.layout import detect_layout
from dashboards.promql import comparisons_to_bool, expand_variables
from tests.conftest import REPO, need
from tests.support.cgroups import have_real_cgroups, wait_for
from tests.support.containerd import (Containerd, containerd_missing, kubepods, kubepods_in_use, unique_id,
                                      unique_pod_uid)
from tests.support.docker import DOCKER_HOST, IMAGE, Containers, docker_missing
from tests.support.prometheus import Prometheus, prometheus_missing, running_prometheus
from tests.support.served import free_port, http, serve_agent, stop

pytestmark = [pytest.mark.real, pytest.mark.prometheus, pytest.mark.docker]

THIRDPARTY = REPO / "tests" / "thirdparty"
DOCKPROM_RULES = THIRDPARTY / "dockprom" / "alert.rules"
DOCKPROM_DASHBOARD = THIRDPARTY / "dockprom" / "docker_containers.json"

# dockprom's services carry this label; its dashboard leaves them out with ..._group="".
GROUP_KEY = "org.label-schema.group"
GROUP_LABEL = "container_label_org_label_schema_group"
JENKINS_MIB = 1250  # over jenkins_high_memory's 1200000000 bytes
SAMPLES_WANTED = 5  # 1 s scrapes before anything is asserted: rate() over [1m] needs two


def promtool() -> str:
    path = shutil.which("promtool")
    need(None if path else "needs promtool (Debian package prometheus)")
    return path


def node_exporter_missing() -> str | None:
    return None if shutil.which("prometheus-node-exporter") else \
        "needs prometheus-node-exporter (Debian package): dockprom's queries divide by its host metrics"


def start_node_exporter(port: int, log: Path) -> subprocess.Popen:
    """Debian's node_exporter with only the collectors dockprom's rules and dashboard read."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            ["prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
             *(f"--collector.{c}" for c in ("cpu", "meminfo", "loadavg", "diskstats", "filesystem"))],
            stdout=out, stderr=subprocess.STDOUT)


def only_top_level(keep: str) -> list[str]:
    """--ignore-cgroup globs for every top-level cgroup but /``keep`` (and what is below it): the
    scrape every second then walks only the workloads here, whatever else the host runs or starts
    meanwhile (other tests' sandboxes, a benchmark's thousands of cgroups) that could push a
    collection past the 1 s scrape timeout. A glob's ``*`` also matches "/", so each one spells
    "differs from ``keep`` at this character" rather than naming what to skip."""
    globs = [f"/{keep[:i]}[!{keep[i]}]*" for i in range(len(keep))] + [f"/{keep}[!/]*", "/process_api*"]
    return [arg for glob in globs for arg in ("--ignore-cgroup", glob)]


def has_data(data: dict) -> bool:
    """A query's answer holds a number: a non-empty vector or matrix, or a scalar that is not NaN
    (``scalar()`` of nothing is NaN, and a scalar answer is never empty)."""
    if data["resultType"] == "scalar":
        return not math.isnan(float(data["result"][1]))
    return bool(data["result"])


def rules(prometheus: Prometheus) -> list[dict]:
    status, body = http(f"{prometheus.url}/api/v1/rules")
    assert status == 200, body
    return [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]


def rules_evaluated(prometheus: Prometheus) -> bool:
    found = rules(prometheus)
    return bool(found) and all(not r["lastEvaluation"].startswith("0001-") for r in found)


def names(result: list[dict]) -> set[str]:
    return {s["metric"].get("name", "") for s in result}


# -- dockprom -------------------------------------------------------------------------------------

def dockprom_rules() -> list[dict]:
    groups = yaml.safe_load(DOCKPROM_RULES.read_text())["groups"]
    return [rule for g in groups for rule in g["rules"]]


def dashboard_targets(path: Path) -> list[tuple[str, str]]:
    """(panel id, expr) of every query of a Grafana dashboard, old (rows) or new (panels) schema."""
    board = json.loads(path.read_text())
    panels = [p for row in board.get("rows", []) for p in row.get("panels", [])]
    stack = list(board.get("panels", []))
    while stack:  # rows in the new schema nest their panels
        p = stack.pop(0)
        panels.append(p)
        stack.extend(p.get("panels", []))
    return [(f"{p.get('title')}/{t.get('refId', '?')}", t["expr"]) for p in panels for t in p.get("targets", [])
            if t.get("expr")]


def resolve(expr: str, path: Path = DOCKPROM_DASHBOARD) -> str:
    """The query as Grafana would send it: each template variable of the dashboard at its current
    value (a variable with none, or "All", matches everything), then Grafana's own interval
    variables. dockprom's Docker dashboard has no variables of its own."""
    for var in json.loads(path.read_text()).get("templating", {}).get("list", []):
        current = (var.get("current") or {}).get("value")
        values = current if isinstance(current, list) else [current]
        value = ".*" if not values or any(v in (None, "", "$__all") for v in values) else "|".join(map(str, values))
        expr = expr.replace(f"${{{var['name']}}}", value).replace(f"${var['name']}", value)
    return expand_variables(expr)


# Expressions that cannot have data on a current host, with cAdvisor as with cgwatch: dockprom still
# filters node_filesystem_* on aufs, a storage driver Docker removed in 24.0 (overlay2 here). They
# are still sent, and must be accepted.
NO_DATA_ON_ANY_CURRENT_HOST = {"Storage Load/A", "high_storage_load"}
DASHBOARD = dashboard_targets(DOCKPROM_DASHBOARD)
# absent() of a running container: nothing, by design, while its workload runs (tested on its own).
QUIET_WHILE_RUNNING = {"jenkins_down"}


@dataclass
class Dockprom:
    prometheus: Prometheus
    jenkins: str     # Docker name: "jenkins", busy and holding JENKINS_MIB MiB
    app: str         # an ordinary container
    monitoring: str  # labelled as dockprom labels its own services
    logs: Path


def run_jenkins(box: Containers) -> str:
    """The container dockprom's alerts are written for, by its name: one CPU busy, 1.25 GiB held in a
    tmpfs (shmem is charged to the writer's memory cgroup: memory.usage_in_bytes / memory.current)."""
    # Only a jenkins this test left behind (a killed run) is removed; any other is a conflict to report.
    stale = subprocess.run(["docker", "ps", "-aq", "--filter", "name=^/?jenkins$", "--filter",
                            "label=cgwatch.test=thirdparty"], capture_output=True, text=True, timeout=30).stdout.split()
    if stale:
        subprocess.run(["docker", "rm", "-f", *stale], capture_output=True, timeout=60)
    out = subprocess.run(["docker", "run", "-d", "--name", "jenkins", "--label", "cgwatch.test=thirdparty",
                          "--tmpfs", f"/fill:size={JENKINS_MIB + 50}m", IMAGE, "sh", "-c",
                          f"dd if=/dev/zero of=/fill/x bs=1M count={JENKINS_MIB} && while :; do :; done"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"could not start a container named jenkins: {out.stderr}"
    box.ids.append(out.stdout.strip())
    return "jenkins"


@pytest.fixture(scope="module")
def dockprom(tmp_path_factory) -> Iterator[Dockprom]:
    need(have_real_cgroups())
    need(docker_missing())
    need(prometheus_missing())
    need(node_exporter_missing())
    work = tmp_path_factory.mktemp("dockprom")
    box = Containers()
    with ExitStack() as cleanup:  # unwound last to first: Prometheus, node_exporter, the agent, containers
        cleanup.callback(box.cleanup)
        jenkins = run_jenkins(box)
        _, app = box.run()
        _, monitoring = box.run("--label", f"{GROUP_KEY}=monitoring")

        agent = cleanup.enter_context(serve_agent(work, "--docker-host", DOCKER_HOST, "--label-allowlist", GROUP_KEY,
                                                  *only_top_level("docker")))
        node_port = free_port()
        node = start_node_exporter(node_port, work / "node_exporter.log")
        cleanup.callback(stop, node)
        wait_for(lambda: node.poll() is not None or http(f"http://127.0.0.1:{node_port}/metrics")[0] == 200,
                 timeout=20, interval=0.1)
        assert node.poll() is None, (work / "node_exporter.log").read_text()

        # dockprom's prometheus/prometheus.yml, its cadvisor target replaced by cgwatch's /metrics.
        scrape = [{"job_name": "nodeexporter", "static_configs": [{"targets": [f"127.0.0.1:{node_port}"]}]},
                  {"job_name": "cadvisor", "static_configs": [{"targets": [agent.metrics.removeprefix("http://")]}]}]
        prometheus = cleanup.enter_context(running_prometheus(work, scrape, interval="1s", rule_files=[DOCKPROM_RULES]))
        # The first scrape comes ~6 s after start (target discovery batches every 5 s).
        wait_for(lambda: (prometheus.value('min(count_over_time(up[1m]))') or 0) >= SAMPLES_WANTED
                 and prometheus.value("min(up)") == 1, timeout=40, interval=0.2)
        wait_for(lambda: rules_evaluated(prometheus), timeout=10, interval=0.2)
        yield Dockprom(prometheus, jenkins, app, monitoring, work)


def test_promtool_accepts_dockprom_rules():
    out = subprocess.run([promtool(), "check", "rules", str(DOCKPROM_RULES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_dockprom_rule_evaluates_without_error(dockprom):
    found = rules(dockprom.prometheus)
    assert sorted(r["name"] for r in found) == sorted(r["alert"] for r in dockprom_rules())
    assert [(r["name"], r.get("lastError")) for r in found if r["health"] != "ok"] == []


@pytest.mark.parametrize("rule", [pytest.param(r, id=r["alert"]) for r in dockprom_rules()
                                  if r["alert"] not in QUIET_WHILE_RUNNING | NO_DATA_ON_ANY_CURRENT_HOST])
def test_dockprom_rule_expression_returns_data(dockprom, rule):
    """Each expression, its thresholds made ``bool``, names series that exist: the container alerts
    cgwatch's, the host ones node_exporter's."""
    query = comparisons_to_bool(rule["expr"])
    assert dockprom.prometheus.query(query), f"no series for {rule['alert']}: {query!r} (logs: {dockprom.logs})"


def test_jenkins_cpu_and_memory_alerts_fire_for_a_busy_hungry_jenkins(dockprom):
    """jenkins_high_memory goes from pending to firing: its expression held on every 1 s evaluation
    for the rule's 30 s, so cgwatch's jenkins series never dropped out. jenkins_high_cpu becomes
    active too; it would fire 30 s later (rate() over [1m] of a series younger than a minute reads
    low, so it passes its 10% some 15 s after the first scrape), which adds nothing but wall time."""
    def state(alert: str) -> str | None:
        found = dockprom.prometheus.query(f'ALERTS{{alertname="{alert}"}}')
        return found[0]["metric"]["alertstate"] if found else None

    wait_for(lambda: state("jenkins_high_memory") == "firing", timeout=60, interval=0.5)
    wait_for(lambda: state("jenkins_high_cpu") in ("pending", "firing"), timeout=30, interval=0.5)
    memory = dockprom.prometheus.value(f'sum(container_memory_usage_bytes{{name="{dockprom.jenkins}"}})')
    assert memory >= JENKINS_MIB << 20  # the tmpfs it filled, as the kernel charges it


def test_jenkins_down_stays_quiet_while_jenkins_runs(dockprom):
    rule = next(r for r in dockprom_rules() if r["alert"] == "jenkins_down")
    assert dockprom.prometheus.query(rule["expr"]) == []
    assert dockprom.prometheus.query('ALERTS{alertname="jenkins_down"}') == []


@pytest.mark.parametrize("expr", [pytest.param(e, id=i) for i, e in DASHBOARD])
def test_dockprom_dashboard_query_is_accepted(dockprom, expr):
    dockprom.prometheus.instant(resolve(expr))  # raises with Prometheus's message on an error


@pytest.mark.parametrize("expr", [pytest.param(e, id=i) for i, e in DASHBOARD if i not in NO_DATA_ON_ANY_CURRENT_HOST])
def test_dockprom_dashboard_query_returns_data(dockprom, expr):
    query = resolve(expr)
    assert has_data(dockprom.prometheus.instant(query)), f"no data for {query!r} (logs: {dockprom.logs})"


def test_dockprom_container_panels_leave_out_its_own_labelled_services(dockprom):
    """Every per-container panel filters on the group label: the monitoring-labelled container is
    left out, the others are in. Were the label only on container_info, it would be in too."""
    filtered = [(i, e) for i, e in DASHBOARD if GROUP_LABEL in e]
    assert len(filtered) == 5, filtered  # CPU, memory, cache, network in and out
    assert dockprom.prometheus.query(f'container_memory_usage_bytes{{name="{dockprom.monitoring}", '
                                     f'{GROUP_LABEL}="monitoring"}}'), "the label is on ordinary series"
    for panel, expr in filtered:
        shown = names(dockprom.prometheus.query(resolve(expr)))
        assert dockprom.monitoring not in shown, panel
        assert {dockprom.jenkins, dockprom.app} <= shown, (panel, shown)


def test_dockprom_cpu_panel_shows_the_busy_container(dockprom):
    expr = next(e for i, e in DASHBOARD if i == "Container CPU Usage/A")
    by_name = {s["metric"]["name"]: float(s["value"][1]) for s in dockprom.prometheus.query(resolve(expr))}
    cpus = os.cpu_count() or 1
    # Percent of the host's CPUs: a busy loop is up to one CPU's worth (less when other work on this
    # host competes for the CPUs), the sleeper next to none.
    assert by_name[dockprom.jenkins] > 20 / cpus
    assert by_name[dockprom.app] < 1 / cpus


# -- kubernetes-mixin, as kube-prometheus renders it -----------------------------------------------

KUBE_RULES_MANIFEST = THIRDPARTY / "kube-prometheus" / "kubernetesControlPlane-prometheusRule.yaml"
# What of the manifest is about containers' cgroups (the rest reads the API server, kube-state-metrics,
# the scheduler...): the container recording rules and the one alert on cAdvisor's CFS counters.
MIXIN_GROUPS = ("k8s.rules.container_cpu_usage_seconds_total", "k8s.rules.container_memory_working_set_bytes",
                "k8s.rules.container_memory_rss", "k8s.rules.container_memory_cache",
                "k8s.rules.container_memory_swap")
MIXIN_ALERTS = ("CPUThrottlingHigh",)
POD, NAMESPACE, NODE = "web-0", "prod", "node-1"
QUOTA_US, PERIOD_US = 20000, 100000  # 0.2 CPU: a busy loop under it is throttled in most periods
SHM_MIB = 48                           # the sidecar's page cache (shmem), in its working set


def mixin_rules() -> dict:
    """The manifest's container groups as a plain Prometheus rule file, expressions untouched."""
    groups = yaml.safe_load(KUBE_RULES_MANIFEST.read_text())["spec"]["groups"]
    picked = [g for g in groups if g["name"] in MIXIN_GROUPS]
    for g in groups:
        alerts = [r for r in g["rules"] if r.get("alert") in MIXIN_ALERTS]
        if alerts:
            picked.append({**g, "rules": alerts})
    assert {g["name"] for g in picked} >= set(MIXIN_GROUPS), "the manifest no longer has these groups"
    return {"groups": picked}


def mixin_records() -> list[str]:
    return [r["record"] for g in mixin_rules()["groups"] for r in g["rules"] if "record" in r]


def kube_pod_info(uid: str) -> str:
    """What kube-state-metrics says of the pod (its kube_pod_info, v2 labels): the recording rules
    join every container series on it to name the node. Nothing here runs an API server for a real
    kube-state-metrics to read; this is its exposition for the one pod, served as a file."""
    return ("# TYPE kube_pod_info gauge\n"
            f'kube_pod_info{{namespace="{NAMESPACE}",pod="{POD}",uid="{uid}",host_ip="127.0.0.1",pod_ip="",'
            f'node="{NODE}",created_by_kind="StatefulSet",created_by_name="web",priority_class="",'
            'host_network="false"} 1\n')


def serve_directory(directory: Path, port: int, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port),
                                 "--directory", str(directory)], stdout=out, stderr=subprocess.STDOUT)


@dataclass
class Kubernetes:
    prometheus: Prometheus
    logs: Path


def cpu_quota(path: str) -> None:
    """The CFS quota the kubelet would set for a 200m CPU limit, written to the container's cgroup
    (Documentation/scheduler/sched-bwc.rst); `ctr run` in tests/support/containerd.py takes none."""
    layout = detect_layout(Path("/sys/fs/cgroup"))
    if layout.v1:
        cpu = layout.v1["cpu"] / path.lstrip("/")
        (cpu / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (cpu / "cpu.cfs_quota_us").write_text(str(QUOTA_US))
    else:
        (Path("/sys/fs/cgroup") / path.lstrip("/") / "cpu.max").write_text(f"{QUOTA_US} {PERIOD_US}")


def no_cgroups_left(left: list[str]) -> None:
    assert not left, f"cgroups left behind: {left}"


@pytest.fixture(scope="module")
def kubernetes(tmp_path_factory) -> Iterator[Kubernetes]:
    need(have_real_cgroups())
    need(containerd_missing())
    need(kubepods_in_use())
    need(prometheus_missing())
    work = tmp_path_factory.mktemp("kubernetes")
    uid = unique_pod_uid()
    pod = kubepods(uid, qos="burstable")
    daemon = Containerd()
    with ExitStack() as cleanup:  # unwound last to first: Prometheus, servers, containers, cgroups
        cleanup.callback(lambda: no_cgroups_left(pod.cleanup()))
        cleanup.callback(daemon.cleanup)
        daemon.start()
        daemon.import_image("k8s.io")
        pod_labels = {"io.kubernetes.pod.name": POD, "io.kubernetes.pod.namespace": NAMESPACE,
                      "io.kubernetes.pod.uid": uid}
        containers = {}
        for name, cmd in (("app", "while :; do :; done"),
                          ("sidecar", f"dd if=/dev/zero of=/dev/shm/fill bs=1M count={SHM_MIB} && exec sleep 600")):
            cid = unique_id()
            containers[name] = f"/kubepods/burstable/pod{uid}/{cid}"
            daemon.run("k8s.io", cid, cgroup=containers[name], cmd=("sh", "-c", cmd),
                       labels={**pod_labels, "io.kubernetes.container.name": name})
        cpu_quota(containers["app"])

        agent = cleanup.enter_context(serve_agent(work, "--containerd-host", daemon.host, *only_top_level("kubepods")))
        ksm = work / "kube-state-metrics"
        ksm.mkdir()
        (ksm / "metrics").write_text(kube_pod_info(uid))
        ksm_port = free_port()
        server = serve_directory(ksm, ksm_port, work / "kube-state-metrics.log")
        cleanup.callback(stop, server)
        rules_file = work / "kubernetes-mixin.rules.yml"
        rules_file.write_text(yaml.safe_dump(mixin_rules(), sort_keys=False))
        scrape = [
            # As kube-prometheus's kubelet ServiceMonitor scrapes the kubelet's /metrics/cadvisor: job
            # "kubelet", and the path copied into a metrics_path label (relabelings: __metrics_path__ ->
            # metrics_path), which every rule selects on. cgwatch serves /metrics: a deployment that scrapes
            # cgwatch in cAdvisor's place sets the label the same way, as here.
            {"job_name": "kubelet", "honor_labels": True,
             "static_configs": [{"targets": [agent.metrics.removeprefix("http://")]}],
             "relabel_configs": [{"target_label": "metrics_path", "replacement": "/metrics/cadvisor"}]},
            {"job_name": "kube-state-metrics", "honor_labels": True,
             "static_configs": [{"targets": [f"127.0.0.1:{ksm_port}"]}]},
        ]
        prometheus = cleanup.enter_context(running_prometheus(work, scrape, interval="1s", rule_files=[rules_file]))
        wait_for(lambda: (prometheus.value('min(count_over_time(up[1m]))') or 0) >= SAMPLES_WANTED
                 and prometheus.value("min(up)") == 1, timeout=40, interval=0.2)
        wait_for(lambda: rules_evaluated(prometheus), timeout=10, interval=0.2)
        yield Kubernetes(prometheus, work)


def test_promtool_accepts_the_mixin_rules(tmp_path):
    rules_file = tmp_path / "kubernetes-mixin.rules.yml"
    rules_file.write_text(yaml.safe_dump(mixin_rules(), sort_keys=False))
    out = subprocess.run([promtool(), "check", "rules", str(rules_file)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_mixin_rule_evaluates_without_error(kubernetes):
    found = rules(kubernetes.prometheus)
    assert len(found) == len(mixin_records()) + len(MIXIN_ALERTS)
    assert [(r["name"], r.get("lastError")) for r in found if r["health"] != "ok"] == []


def by_container(result: list[dict]) -> dict[str, float]:
    """The pod's series by container label (namespace, pod and node checked on each)."""
    out = {}
    for s in result:
        m = s["metric"]
        if m.get("pod") == POD:
            assert (m.get("namespace"), m.get("node")) == (NAMESPACE, NODE), m
            out[m.get("container", "")] = float(s["value"][1])
    return out


@pytest.mark.parametrize("record", mixin_records())
def test_mixin_recording_rule_has_the_pods_containers(kubernetes, record):
    """Each record has a series for each of the pod's containers, by namespace/pod/container/node."""
    found = wait_for(lambda: by_container(kubernetes.prometheus.query(record)), timeout=15, interval=0.5)
    assert {"app", "sidecar"} <= set(found), found


def test_mixin_cpu_usage_is_the_busy_containers_quota(kubernetes):
    found = by_container(kubernetes.prometheus.query(
        "node_namespace_pod_container:container_cpu_usage_seconds_total:sum_irate"))
    # A busy loop under a 0.2 CPU quota uses at most that (less when this host's CPUs are contended).
    assert 0.05 < found["app"] <= 0.2 * 1.5, found
    assert found["sidecar"] < 0.05, found


def test_mixin_memory_shows_the_sidecars_page_cache(kubernetes):
    for record in ("node_namespace_pod_container:container_memory_working_set_bytes",
                   "node_namespace_pod_container:container_memory_cache"):
        found = by_container(kubernetes.prometheus.query(record))
        assert found["sidecar"] >= SHM_MIB << 20, (record, found)  # shmem: cache, and not reclaimable


def test_cpu_throttling_high_holds_for_the_throttled_container_only(kubernetes):
    """The alert's expression selects the container over its 25%; with its `for: 15m` it is pending."""
    rule = next(r for g in mixin_rules()["groups"] for r in g["rules"] if r.get("alert") == "CPUThrottlingHigh")
    found = wait_for(lambda: {s["metric"]["container"]: float(s["value"][1])
                              for s in kubernetes.prometheus.query(rule["expr"]) if s["metric"].get("pod") == POD},
                     timeout=15, interval=0.5)
    assert set(found) == {"app"} and found["app"] > 0.25, found
    pending = kubernetes.prometheus.query('ALERTS{alertname="CPUThrottlingHigh", alertstate="pending"}')
    assert [(s["metric"]["namespace"], s["metric"]["pod"], s["metric"]["container"]) for s in pending] == \
        [(NAMESPACE, POD, "app")]
