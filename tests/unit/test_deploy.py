"""The deployment files: the Kubernetes DaemonSet, the systemd unit, the Dockerfile, docker-compose.

Each is parsed and checked for the properties that make cgwatch work (host PIDs, /proc read-only,
probes on /healthz, capabilities dropped, ...), then handed to the real tool where this machine has
it: the Kubernetes JSON schemas (kubernetes-validate, offline), `systemd-analyze verify`,
`docker-compose config`, `promtool check config`, and a real `docker build` + run (marked docker).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, need

DEPLOY = REPO / "deploy"
DAEMONSET = DEPLOY / "kubernetes" / "daemonset.yaml"
UNIT = DEPLOY / "cgwatch.service"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
KUBERNETES_VERSIONS = ("1.25", "1.30")


# -- Kubernetes -------------------------------------------------------------------------------------

def manifests() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(DAEMONSET.read_text()) if doc}


def pod_spec() -> dict:
    return manifests()["DaemonSet"]["spec"]["template"]["spec"]


def agent_container() -> dict:
    (container,) = pod_spec()["containers"]
    return container


def test_the_manifest_holds_namespace_serviceaccount_daemonset_and_a_headless_service():
    docs = manifests()
    assert set(docs) == {"Namespace", "ServiceAccount", "DaemonSet", "Service"}
    namespace = docs["Namespace"]["metadata"]["name"]
    assert all(d["metadata"].get("namespace") == namespace for k, d in docs.items() if k != "Namespace")
    assert docs["Service"]["spec"]["clusterIP"] == "None"
    assert docs["Service"]["spec"]["selector"] == docs["DaemonSet"]["spec"]["selector"]["matchLabels"]
    assert [p["port"] for p in docs["Service"]["spec"]["ports"]] == [9338]
    assert pod_spec()["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]


def test_the_pod_sees_the_host():
    spec = pod_spec()
    assert spec["hostPID"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in agent_container()["volumeMounts"]}
    proc, cgroup = mounts["/host/proc"], mounts["/host/sys/fs/cgroup"]
    assert volumes[proc["name"]]["hostPath"]["path"] == "/proc" and proc["readOnly"] is True
    assert volumes[cgroup["name"]]["hostPath"]["path"] == "/sys/fs/cgroup"
    # containerd names a Kubernetes node's containers (pod, namespace, container labels) out of the
    # box: its socket's directory, created when absent so a node without containerd still runs the pod.
    sock = mounts["/run/containerd"]
    assert volumes[sock["name"]]["hostPath"] == {"path": "/run/containerd", "type": "DirectoryOrCreate"}
    assert sock["readOnly"] is True
    args = agent_container()["args"]
    assert "--containerd-host=unix:///run/containerd/containerd.sock" in args
    assert "--docker-host=" in args  # no Socket-typed hostPath that would keep the pod from starting


def test_the_pod_drops_every_capability_but_sys_ptrace():
    sc = agent_container()["securityContext"]
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["capabilities"]["add"] == ["SYS_PTRACE"]
    assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True


def test_the_pod_has_probes_resources_and_scrape_annotations():
    c = agent_container()
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": 9338}
    assert {"metrics": 9338} == {p["name"]: p["containerPort"] for p in c["ports"]}
    for kind in ("requests", "limits"):
        assert set(c["resources"][kind]) == {"cpu", "memory"}
    annotations = manifests()["DaemonSet"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9338"
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_manifest_validates_against_the_kubernetes_schemas(version):
    try:
        import kubernetes_validate
    except ImportError:
        need("needs kubernetes-validate (PyPI; bundles the Kubernetes JSON schemas, works offline)")
    for doc in manifests().values():
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_check_catches_a_misspelt_field():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    bad = manifests()["DaemonSet"]
    bad["spec"]["template"]["spec"]["hostPid"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[-1], strict=True)


# -- systemd ------------------------------------------------------------------------------------------

def unit_settings() -> dict[str, list[str]]:
    """key -> values, with backslash continuations joined (a minimal systemd.syntax(7) reader)."""
    text = re.sub(r"\\\n\s*", " ", UNIT.read_text())
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_unit_runs_the_agent_with_its_real_flags():
    s = unit_settings()
    assert s["Type"] == ["simple"] and s["Restart"] == ["on-failure"]
    (cmd,) = s["ExecStart"]
    assert cmd.startswith("/opt/cgwatch/bin/cgwatch serve ")
    for flag in ("--listen 0.0.0.0:9338", "--api-listen 127.0.0.1:9339", "--state-dir /var/lib/cgwatch",
                 "--cgroup-root /sys/fs/cgroup", "--proc-root /proc"):
        assert flag in cmd
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_the_unit_is_hardened_but_can_write_cgroupfs():
    s = unit_settings()
    assert s["ProtectSystem"] == ["strict"]
    assert set(s["ReadWritePaths"][0].split()) == {"/sys/fs/cgroup", "/var/lib/cgwatch"}
    assert s["StateDirectory"] == ["cgwatch"]
    assert s["NoNewPrivileges"] == ["yes"] and s["PrivateTmp"] == ["yes"]
    assert s["CapabilityBoundingSet"] == ["CAP_SYS_PTRACE"]
    # Either would remount cgroupfs read-only under ProtectSystem.
    assert "ProtectControlGroups" not in s and "ProtectKernelTunables" not in s
    assert s.get("ProtectProc", ["default"]) == ["default"]


def test_the_unit_raises_the_open_files_limit_for_the_kept_cgroup_files():
    # ~17 descriptors a container (host/keptfiles.py, the OOM watcher): the unit's hard limit is
    # the one cgwatch raises its soft limit to.
    (value,) = unit_settings()["LimitNOFILE"]
    assert int(value.split(":")[-1]) >= 1 << 20


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    need(None if analyze else "needs systemd-analyze (Debian package systemd; systemd need not be PID 1)")
    # verify checks that ExecStart's binary exists: point it at this checkout's cgwatch.
    cgwatch = shutil.which("cgwatch", path=str(Path(sys.executable).parent))
    assert cgwatch, "the cgwatch entry point is not installed next to this Python"
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/cgwatch/bin/cgwatch", cgwatch))
    out = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys and bad values too, only warning: any output is a finding.
    assert out.returncode == 0 and out.stdout + out.stderr == "", out.stdout + out.stderr


# -- Dockerfile ----------------------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_dockerfile_builds_on_a_substitutable_python_base():
    ins = dockerfile_instructions()
    assert ins[0] == ("ARG", "BASE=python:3.11-slim")
    froms = [arg for op, arg in ins if op == "FROM"]
    assert froms == ["${BASE} AS build", "${BASE}"]
    for op, arg in ins:
        if op == "COPY" and not arg.startswith("--from"):
            for source in arg.split()[:-1]:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    assert any(op == "RUN" and "pip install" in arg and "/src" in arg for op, arg in ins)


def test_the_dockerfile_runs_serve_on_the_host_mounts_with_a_healthcheck():
    ins = dict((op, arg) for op, arg in dockerfile_instructions() if op in ("ENTRYPOINT", "CMD", "HEALTHCHECK",
                                                                          "EXPOSE"))
    assert json.loads(ins["ENTRYPOINT"]) == ["cgwatch", "serve", "--cgroup-root", "/host/sys/fs/cgroup",
                                             "--proc-root", "/host/proc"]
    assert json.loads(ins["CMD"]) == []
    assert "CMD" in ins["HEALTHCHECK"] and "http://127.0.0.1:9338/healthz" in ins["HEALTHCHECK"]
    assert ins["EXPOSE"] == "9338"


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    # The classic builder: the CLI here has no buildx, and the Dockerfile needs nothing BuildKit adds.
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check,
                          env={**os.environ, "DOCKER_BUILDKIT": "0"})


def remove_image_tree(root: str) -> None:
    """Remove image ``root`` and every image built on it (tags, and the classic builder's
    untagged stage images), children first. ``root`` is a fresh import, so all of them are ours."""
    ids = docker("images", "-aq", "--no-trunc").stdout.split()
    parents = {}
    if ids:
        # check=False: another build may remove an image between the listing and this look.
        for line in docker("image", "inspect", "-f", "{{.Id}} {{.Parent}}", *ids, check=False).stdout.splitlines():
            image, _, parent = line.partition(" ")
            parents[image] = parent.strip()
    ours, grew = {root}, True
    while grew:
        more = {i for i, p in parents.items() if p in ours} - ours
        ours |= more
        grew = bool(more)

    def depth(i: str) -> int:
        return 0 if i == root or i not in parents else 1 + depth(parents[i])

    for image in sorted(ours, key=depth, reverse=True):
        docker("rmi", "-f", image, check=False)


def build_context(dest: Path) -> Path:
    """Only what the Dockerfile copies, so the build does not ship .venv or .git to the daemon."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "cgwatch", dest / "cgwatch", ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "deploy").mkdir()
    shutil.copy2(DOCKERFILE, dest / "deploy" / "Dockerfile")
    return dest


@pytest.mark.docker
def test_the_image_builds_runs_and_turns_healthy(tmp_path):
    """A real build on a base made from this host's Python (no registry here), then a real run."""
    from tests.support.docker import docker_missing

    need(docker_missing())
    need(None if shutil.which("busybox") and Path("/usr/bin/python3.11").exists()
         else "needs busybox-static and python3.11-venv for deploy/local-base.sh")
    tag = uuid.uuid4().hex[:10]
    base, image = f"cgwatch-test/python-base:{tag}", f"cgwatch-test/agent:{tag}"
    started = time.monotonic()
    subprocess.run(["bash", str(DEPLOY / "local-base.sh"), base], check=True, capture_output=True, timeout=120)
    base_id = docker("image", "inspect", "-f", "{{.Id}}", base).stdout.strip()
    container = None
    try:
        ctx = build_context(tmp_path)
        # --network host: pip fetches from the package index, and the suite's dockerd does no NAT
        # (--iptables=false, so it never touches the rules of a dockerd the host may run).
        out = docker("build", "--network", "host", "-q", "-f", "deploy/Dockerfile", "--build-arg", f"BASE={base}",
                     "-t", image, str(ctx), timeout=180, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        assert time.monotonic() - started < 180
        container = docker(
            "run", "-d", "--pid", "host", "-p", "127.0.0.1::9338", "--health-interval", "1s",
            "--cap-drop", "ALL", "--cap-add", "SYS_PTRACE", "--read-only", "--tmpfs", "/tmp",
            "-v", "/proc:/host/proc:ro", "-v", "/sys/fs/cgroup:/host/sys/fs/cgroup:ro",
            # 0700: the agent refuses a state directory others can write (a tmpfs is 1777 by default).
            "--mount", "type=tmpfs,destination=/var/lib/cgwatch,tmpfs-mode=0700",
            # containerd on, as the DaemonSet has it (its gRPC stack's C++ libraries must be in the
            # image), at a socket nobody serves: cgwatch_runtime_up says 0, and the agent runs on.
            image, "--docker-host=", "--podman-host=", "--containerd-host=unix:///nonexistent/containerd.sock",
            "--ignore-cgroup=/process_api*", "--ignore-cgroup=/cgwatch-bench-*",
        ).stdout.strip()
        deadline = time.monotonic() + 60
        while (health := docker("inspect", "-f", "{{.State.Health.Status}}", container).stdout.strip()) != "healthy":
            assert health in ("starting", "") and time.monotonic() < deadline, \
                f"health {health!r}: {docker('logs', container, check=False).stderr[-2000:]}"
            time.sleep(0.5)
        address = docker("port", container, "9338/tcp").stdout.split()[0]
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=30) as resp:
            body = resp.read().decode()
        # It reads the host's cgroupfs through the mount: the root cgroup and machine facts are there.
        assert 'container_cpu_usage_seconds_total{cpu="total",id="/"' in body
        assert 'cgwatch_runtime_up{host="unix:///nonexistent/containerd.sock",runtime="containerd"} 0.0' in body
        assert "machine_cpu_cores" in body
    finally:
        if container:
            docker("rm", "-f", container, check=False)
        remove_image_tree(base_id)


# -- docker-compose --------------------------------------------------------------------------------------

def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def mounts_of(service: dict) -> dict[str, str]:
    """container path -> host path (relative ones resolved against the repository)."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        out[target] = str(REPO / source) if source.startswith(".") else source
    return out


def test_compose_runs_cgwatch_prometheus_and_grafana():
    services = compose()["services"]
    assert set(services) == {"cgwatch", "prometheus", "grafana"}
    agent = services["cgwatch"]
    assert agent["build"]["dockerfile"] == "deploy/Dockerfile" and agent["build"]["context"] == "."
    assert agent["pid"] == "host"
    assert "9338:9338" in agent["ports"]
    mounts = mounts_of(agent)
    assert mounts["/host/proc"] == "/proc" and mounts["/host/sys/fs/cgroup"] == "/sys/fs/cgroup"
    assert "/proc:/host/proc:ro" in agent["volumes"]
    assert services["prometheus"]["image"].startswith("prom/prometheus")
    assert services["grafana"]["image"].startswith("grafana/grafana")


def test_compose_raises_the_agents_open_files_limit():
    nofile = compose()["services"]["cgwatch"]["ulimits"]["nofile"]
    assert nofile["hard"] >= 1 << 20 and nofile["soft"] <= nofile["hard"]


def test_compose_mounts_exist_in_the_repository():
    for service in compose()["services"].values():
        for target, source in mounts_of(service).items():
            if source.startswith(str(REPO)):
                assert Path(source).exists(), f"{target} <- {source}: missing"


def test_compose_prometheus_loads_the_alert_rules_through_its_mount(tmp_path):
    promtool = shutil.which("promtool")
    need(None if promtool else "needs promtool (Debian package prometheus)")
    mounts = mounts_of(compose()["services"]["prometheus"])
    config = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    assert [c["job_name"] for c in config["scrape_configs"]][0] == "cgwatch"
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["cgwatch:9338"]
    # Map each rule file from the container's view to the host's, through the compose mounts.
    host_rules = []
    for rule_file in config["rule_files"]:
        target = next(t for t in mounts if rule_file.startswith(t + "/"))
        host_rules.append(mounts[target] + rule_file[len(target):])
    assert all(Path(p).is_file() for p in host_rules), host_rules
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({**config, "rule_files": host_rules}))
    out = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_grafana_provisions_the_datasource_and_the_dashboards():
    services = compose()["services"]
    mounts = mounts_of(services["grafana"])
    provisioning = Path(mounts["/etc/grafana/provisioning"])
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["isDefault"] is True
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "cgwatch.yml").read_text())["providers"]
    dashboards = Path(mounts[provider["options"]["path"]])
    assert dashboards == REPO / "dashboards" / "json"
    assert sorted(p.name for p in dashboards.glob("*.json")), "no dashboard JSON to provision"


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


def test_docker_compose_config_accepts_the_file():
    cmd = compose_command()
    need(None if cmd else "needs docker-compose (Debian package docker-compose) or the docker compose plugin")
    out = subprocess.run([*cmd, "-f", str(COMPOSE), "config", "-q"], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
