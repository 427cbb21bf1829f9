"""A real containerd (Debian's 1.6.20): containers named and labelled through its gRPC API, followed
through its events, their limits changed through its task update.

The module starts its own containerd on a socket under a temp dir (tests/support/containerd.py),
never the host's. The Kubernetes container is CRI-shaped: `ctr run` with the kubelet's labels in a
/kubepods/besteffort/pod<uid> cgroup, as the CRI plugin with the cgroupfs driver makes them
(/work/shared/REAL-PARTS.md). The /kubepods and /default cgroups runc makes for them are removed
at the end.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cgwatch.model import Limits
from cgwatch.runtimes.base import RuntimeContainer
from cgwatch.runtimes.containerd import ContainerdRuntime
from cgwatch.server.app import create_app
from tests.conftest import need
from tests.support.aio import scrape, until
from tests.support.agent import samples, value
from tests.support.cgroups import have_real_cgroups
from tests.support.containerd import (
    CTR_IMAGE,
    Containerd,
    ParentCgroups,
    containerd_missing,
    kubepods,
    kubepods_in_use,
    unique_id,
    unique_pod_uid,
)
from tests.support.prometheus import prometheus_missing, running_prometheus

pytestmark = [pytest.mark.real, pytest.mark.containerd]

CG = Path("/sys/fs/cgroup")
JSON = {"Content-Type": "application/json"}
# Where containerd 1.6's runc shim keeps runc's state: runc --root /run/containerd/runc/<namespace>
# (runtime/v2/runc: process.RuncRoot); state.json holds the cgroup config runc last applied.
RUNC_ROOT = Path("/run/containerd/runc")
K8S_LABELS = {"io.kubernetes.pod.name": "web-0", "io.kubernetes.pod.namespace": "prod",
              "io.kubernetes.container.name": "app"}


@pytest.fixture(scope="module")
def containerd():
    need(have_real_cgroups())
    need(containerd_missing())
    need(kubepods_in_use())
    parents = ParentCgroups("/default")
    d = Containerd().start()
    try:
        d.import_image("k8s.io")
        d.import_image("default")
        yield d
    finally:
        d.cleanup()
        left = parents.cleanup()
        assert not left, f"cgroups left behind: {left}"


@pytest.fixture
def cri_container(containerd):
    """A CRI-shaped container of pod web-0 in namespace prod: (its ID, its cgroup path)."""
    uid, cid = unique_pod_uid(), unique_id()
    pod = kubepods(uid)
    path = f"/kubepods/besteffort/pod{uid}/{cid}"
    containerd.run("k8s.io", cid, cgroup=path, labels={**K8S_LABELS, "io.kubernetes.pod.uid": uid})
    try:
        yield cid, path
    finally:
        containerd.remove("k8s.io", cid)
        left = pod.cleanup()
        assert not left, f"cgroups left behind: {left}"


@pytest.fixture
def plain_container(containerd):
    """A plain `ctr run` container in namespace default, with an ID no path pattern knows."""
    cid = f"cgw-plain-{uuid.uuid4().hex[:8]}"
    containerd.run("default", cid)
    try:
        yield cid, f"/default/{cid}"
    finally:
        containerd.remove("default", cid)


@pytest.fixture
async def agent(containerd, make_agent):
    a = await make_agent(containerd_host=containerd.host)
    adapter = a.runtimes.get("containerd")

    async def connected():
        return adapter.connected
    await until(connected, 10.0, "the containerd event stream")
    return a


@pytest.fixture
async def api(agent, api_client):
    return await api_client(agent)


async def named(client, path: str, name: str, timeout: float = 5.0) -> str:
    """The first exposition in which the cgroup at ``path`` is named ``name``."""
    async def check():
        text = await scrape(client)
        return text if value(text, "container_info", id=path, name=name) is not None else None
    return await until(check, timeout, f"{path} named {name!r}")


async def test_a_cri_container_has_its_pod_identity_on_every_series(cri_container, api):
    cid, path = cri_container
    text = await named(api, path, "app_web-0_prod")
    kube = {"pod": "web-0", "namespace": "prod", "container": "app"}
    info = samples(text, "container_info", id=path, runtime="containerd", runtime_id=cid, image=CTR_IMAGE, **kube)
    assert len(info) == 1
    assert value(text, "container_cpu_usage_seconds_total", id=path, **kube) is not None
    assert value(text, "container_memory_working_set_bytes", id=path, **kube) is not None
    # Every series of the container, whatever its family: kubernetes-mixin's `container!=""` and
    # `by (namespace, pod, container)` hold only if none lacks them.
    ours = [s for f in text_string_to_metric_families(text) for s in f.samples if s.labels.get("id") == path]
    assert len(ours) > 10
    assert all({k: s.labels.get(k) for k in kube} == kube for s in ours), \
        [s.name for s in ours if {k: s.labels.get(k) for k in kube} != kube]


async def test_a_plain_ctr_container_is_named_by_its_id(plain_container, api):
    cid, path = plain_container
    text = await named(api, path, cid)
    assert value(text, "container_info", id=path, name=cid, image=CTR_IMAGE, runtime="containerd",
                 pod="", namespace="", container="") == 1
    assert value(text, "container_cpu_usage_seconds_total", id=path, name=cid) is not None


async def test_a_container_started_after_the_agent_is_named_through_events(containerd, api):
    cid = f"cgw-late-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(containerd.run, "default", cid)
    try:
        started = time.monotonic()
        await named(api, f"/default/{cid}", cid, timeout=5.0)
        assert time.monotonic() - started < 5.0
    finally:
        await asyncio.to_thread(containerd.remove, "default", cid)


async def test_a_kubernetes_container_is_not_changed(cri_container, api):
    cid, path = cri_container
    await named(api, path, "app_web-0_prod")
    resp = await api.patch(f"/api/v1/containers/{cid}/limits", data=json.dumps({"cpus": 0.5}), headers=JSON)
    body = await resp.json()
    assert (resp.status, body["error"]) == (403, "kubernetes_managed"), body
    assert (CG / "cpu" / path.lstrip("/") / "cpu.cfs_quota_us").read_text().strip() == "-1"


async def test_a_plain_container_is_changed_through_containerd(plain_container, api):
    cid, path = plain_container
    await named(api, path, cid)
    resp = await api.patch(f"/api/v1/containers/{cid}/limits", data=json.dumps({"cpus": 0.5}), headers=JSON)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["applied_via"] in ("containerd", "containerd+cgroupfs"), body
    assert (CG / "cpu" / path.lstrip("/") / "cpu.cfs_quota_us").read_text().strip() == "50000"
    # containerd's own record: runc's state, which `runc update` rewrites and restores from.
    state = json.loads((RUNC_ROOT / "default" / cid / "state.json").read_text())
    cgroup = state["config"]["cgroups"]
    assert (cgroup["cpu_quota"], cgroup["cpu_period"]) == (50000, 100000)


async def test_the_agent_follows_containerd_down_and_back(containerd, make_agent, api_client):
    # A daemon of its own: stopping the module's would end the other tests' containers.
    own = Containerd().start()
    try:
        a = await make_agent(containerd_host=own.host)
        client = await api_client(a)

        async def up(want: float):
            return value(await scrape(client), "cgwatch_runtime_up", runtime="containerd", host=own.host) == want
        await until(lambda: up(1.0), 10.0, "cgwatch_runtime_up 1")
        await asyncio.to_thread(own.stop)
        await until(lambda: up(0.0), 5.0, "cgwatch_runtime_up 0")

        # Back on the same socket: reconnected (with backoff), re-listed, and following events again.
        await asyncio.to_thread(own.start)
        await asyncio.to_thread(own.import_image, "default")
        cid = f"cgw-back-{uuid.uuid4().hex[:8]}"
        await asyncio.to_thread(own.run, "default", cid)
        await named(client, f"/default/{cid}", cid, timeout=15.0)
        assert await up(1.0)
    finally:
        await asyncio.to_thread(own.cleanup)


async def test_refresh_finds_a_container_by_id_prefix_or_nerdctl_name(containerd):
    # What the API asks when a ref is not in a walk yet: containerd is asked directly.
    cid, name = unique_id(), f"cgw-web-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(containerd.run, "default", cid, labels={"nerdctl/name": name})
    rt = ContainerdRuntime(containerd.host)
    try:
        for ref in (cid, cid[:12], name):
            found = await rt.refresh(ref)
            assert found is not None and (found.id, found.name, found.namespace) == (cid, name, "default"), ref
        assert await rt.refresh("cgw-nobody") is None
        assert await rt.refresh("web@1") is None         # not an ID containerd could have
    finally:
        await rt.stop()
        await asyncio.to_thread(containerd.remove, "default", cid)


async def test_containerds_oom_event_reaches_the_agent_as_the_containers_oom(containerd):
    # A further source for the OOM count (deaths/): containerd's /tasks/oom names the container
    # whose process the kernel killed, even when its cgroup is gone a moment later.
    rt = ContainerdRuntime(containerd.host)
    ooms: list[tuple[str, str]] = []
    rt.follow_ooms(lambda runtime, cid: ooms.append((runtime, cid)))
    cid = f"cgw-oom-{uuid.uuid4().hex[:8]}"
    try:
        await rt.start(lambda *_: None)
        await until(lambda: rt.connected, 10.0, "the containerd event stream")
        # 32 MiB, and a shell that holds 200 MB in a variable: the kernel kills it.
        await asyncio.to_thread(containerd.ctr, "run", "-d", "--memory-limit", str(32 << 20), CTR_IMAGE, cid,
                                "sh", "-c", "x=$(yes | head -c 200000000); sleep 600", namespace="default")
        await until(lambda: ("containerd", cid) in ooms, 20.0, "/tasks/oom for the container")
    finally:
        await rt.stop()
        await asyncio.to_thread(containerd.remove, "default", cid)


async def test_an_update_of_a_container_containerd_does_not_know_says_so(containerd):
    rt = ContainerdRuntime(containerd.host)
    try:
        gone = RuntimeContainer(runtime="containerd", id="cgw-gone", name="cgw-gone", namespace="default")
        done = await rt.update(gone, Limits(cpu_quota_us=50000, cpu_period_us=100000),
                               Limits(cpu_period_us=100000), None)
        assert not done.known
    finally:
        await rt.stop()


@pytest.mark.prometheus
async def test_kubernetes_mixin_queries_find_the_pods_container(cri_container, agent, aiohttp_client, tmp_path):
    # kubernetes-mixin's container rules select `container!="", image!=""` and group by
    # (namespace, pod, container): what a dashboard of this pod shows, through a real Prometheus.
    need(prometheus_missing())
    cid, path = cri_container
    client = await aiohttp_client(create_app(agent))
    await named(client, path, "app_web-0_prod")
    target = f"127.0.0.1:{client.server.port}"
    expr = ('sum by (namespace, pod, container) '
            '(container_memory_working_set_bytes{job="cadvisor", container!="", image!=""})')
    with running_prometheus(tmp_path / "prom", [{"job_name": "cadvisor", "static_configs": [{"targets": [target]}]}],
                            interval="1s") as prom:
        async def grouped():
            result = await asyncio.to_thread(prom.query, expr)
            return [r["metric"] for r in result if r["metric"].get("pod") == "web-0"]
        # The first scrape comes ~6 s after start (target discovery batches every 5 s).
        found = await until(grouped, 30.0, "the pod's container in Prometheus")
    assert found == [{"namespace": "prod", "pod": "web-0", "container": "app"}]
