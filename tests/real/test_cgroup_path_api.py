"""Any cgroup by its path (/api/v1/cgroups/<path>/limits, `cgwatch set --cgroup`) on real cgroups:
the kernel enforces it, desired state holds it, and every path that is not one cgroup the walk
found is refused in words, audited.

The tests marked `guest` also run in the cgroup v2 guest (tests/vm/run-v2-stage.sh), among them
cgroups shaped as Podman and containerd make them, made by hand there (no daemons in the guest).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.parse
import uuid

import pytest

from tests.real.test_enforcement import quota, set_quota
from tests.real.test_limits_api import cpu_seconds, limit_files
from tests.support.agent import HOST_IGNORE
from tests.support.cgroups import wait_for
from tests.support.docker import DOCKER_HOST
from tests.support.env import REPO
from tests.support.served import get, http, raw_http, serve_agent

pytestmark = pytest.mark.real

JSON = {"Content-Type": "application/json"}


def url(cg: str, what: str = "limits") -> str:
    """The API path of cgroup ``cg`` ("/cgwatch-test-.../batch/job-7"): its slashes kept."""
    return f"/api/v1/cgroups{cg}/{what}"


async def patch(api, cg: str, body: dict):
    return await api.patch(url(cg), data=json.dumps(body), headers=JSON)


async def send(api, method: str, target: str, body: dict | None = None) -> tuple[int, dict]:
    """``target`` byte for byte, as a client that does not tidy URLs would send it (aiohttp's and
    urllib's clients may resolve '..'): (status, JSON body)."""
    data = json.dumps(body).encode() if body is not None else b""
    port = api.server.port
    head = (f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: {api.session.headers['Authorization']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode()
    reply = await asyncio.to_thread(raw_http, f"http://127.0.0.1:{port}", head + data)
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def audit_lines(agent) -> list[dict]:
    path = agent.settings.state_dir / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def cpu_ratio(sandbox, cg: str, seconds: float) -> float:
    t0, u0 = time.monotonic(), cpu_seconds(sandbox, cg)
    time.sleep(seconds)
    return (cpu_seconds(sandbox, cg) - u0) / (time.monotonic() - t0)


def cgwatch(*args: str, served=None) -> subprocess.CompletedProcess:
    """The CLI as a person runs it, pointed at a served agent when there is one."""
    where = ["--api", served.api, "--state-dir", str(served.state)] if served is not None else []
    return subprocess.run([sys.executable, "-m", "cgwatch", *args, *where], capture_output=True, text=True,
                          timeout=60, cwd=REPO)


# --- changes by path -------------------------------------------------------------------------

@pytest.mark.guest
async def test_cpus_half_by_path_holds_a_busy_loop_at_half_a_cpu(sandbox, api):
    cg = sandbox.create("batch/job-7")
    sandbox.busy_loop(cg)
    resp = await patch(api, cg, {"cpus": 0.5})
    body = await resp.json()
    assert resp.status == 200, body
    assert (body["runtime"], body["id"], body["cgroup"], body["applied_via"]) == ("raw", cg, cg, "cgroupfs")
    assert (body["limits"]["cpu_quota_us"], body["limits"]["cpu_period_us"]) == (50000, 100000)
    await asyncio.sleep(0.5)
    ratio = await asyncio.to_thread(cpu_ratio, sandbox, cg, 2.5)
    assert 0.4 <= ratio <= 0.6, ratio


@pytest.mark.guest
async def test_get_by_path_shows_the_kernels_limits_and_delete_clears_them(sandbox, api):
    cg = sandbox.create("batch/job-7")
    assert (await patch(api, cg, {"cpus": 0.5, "pids_limit": 20})).status == 200
    got = await (await api.get(url(cg))).json()
    assert (got["cgroup"], got["limits"]["cpus"], got["limits"]["pids_max"]) == (cg, 0.5, 20)
    resp = await api.delete(url(cg))
    body = await resp.json()
    assert resp.status == 200, body
    assert (body["limits"]["cpu_quota_us"], body["limits"]["pids_max"]) == (None, None)
    assert sandbox.read(cg, "pids.max").strip() == "max"


@pytest.mark.guest
async def test_a_containers_cgroup_by_path_is_that_container(sandbox, api):
    cid = uuid.uuid4().hex * 2
    cg = sandbox.create(f"docker/{cid}")
    body = await (await patch(api, cg, {"pids_limit": 30})).json()
    assert (body["runtime"], body["id"]) == ("docker", cid), body
    # The same desired state, whichever way the container was named.
    desired = await (await api.get(f"/api/v1/containers/{cid}/desired")).json()
    assert (desired["source"], desired["limits"]["pids_max"]) == ("api", 30)


@pytest.mark.guest
async def test_a_name_with_systemds_escapes_is_reached_as_a_client_encodes_it(sandbox, api):
    """systemd writes '-' inside a unit name as "\\x2d"; a client percent-encodes the backslash."""
    cg = sandbox.create(r"system.slice/dev-disk-by\x2duuid-1.swap")
    got, body = await send(api, "PATCH", f"/api/v1/cgroups{urllib.parse.quote(cg, safe='/')}/limits",
                           {"pids_limit": 8})
    assert (got, body.get("cgroup"), body.get("runtime")) == (200, cg, "systemd"), body
    assert sandbox.read(cg, "pids.max").strip() == "8"


async def test_an_accepted_change_by_path_is_audited_under_its_path(sandbox, agent, api):
    cg = sandbox.create("batch/job-7")
    assert (await patch(api, cg, {"pids_limit": 11})).status == 200
    last = audit_lines(agent)[-1]
    assert (last["result"], last["ref"], last["container_id"], last["runtime"]) == ("accepted", cg, cg, "raw")


async def test_releasing_a_paths_desired_state_leaves_the_kernel_to_others(sandbox, make_agent, api_client):
    agent = await make_agent(reconcile_interval_s=0.5)
    api = await api_client(agent)
    cg = sandbox.create("batch/job-7")
    assert (await patch(api, cg, {"pids_limit": 13})).status == 200
    desired = await (await api.get(url(cg, "desired"))).json()
    assert (desired["id"], desired["source"], desired["limits"]["pids_max"]) == (cg, "api", 13)
    resp = await api.delete(url(cg, "desired"))
    assert (resp.status, (await resp.json())["released"]) == (200, True)
    sandbox.write(cg, "pids.max", "50")
    await asyncio.sleep(1.5)  # three reconcile periods: nothing holds it to 13 any more
    assert sandbox.read(cg, "pids.max").strip() == "50"
    assert (await (await api.get(url(cg, "desired"))).json())["source"] is None


def test_desired_state_by_path_is_repaired_after_drift_and_survives_a_restart(sandbox, tmp_path):
    cg = sandbox.create("batch/job-7")
    with serve_agent(tmp_path, "--reconcile-interval", "1") as served:
        out = cgwatch("set", "--cgroup", cg, "--cpus", "0.25", "--pids-limit", "9", served=served)
        assert out.returncode == 0, out.stderr
        assert quota(sandbox, cg) == "25000"
        set_quota(sandbox, cg, 90000)  # someone else's write while the agent runs
        wait_for(lambda: quota(sandbox, cg) == "25000", 5)
        audit = [json.loads(line) for line in (served.state / "audit.log").read_text().splitlines()]
        assert any(e["client"] == "reconciler" and e["container_id"] == cg and e["after"]["cpu_quota_us"] == 25000
                   for e in audit), audit
    set_quota(sandbox, cg, 80000)  # and while it is down
    sandbox.write(cg, "pids.max", "max")
    with serve_agent(tmp_path, "--reconcile-interval", "1"):
        wait_for(lambda: quota(sandbox, cg) == "25000" and sandbox.read(cg, "pids.max").strip() == "9", 10)


# --- refusals --------------------------------------------------------------------------------

@pytest.fixture
async def refusing(sandbox, make_agent, api_client):
    """An agent that ignores the sandbox's /hidden* (as --ignore-cgroup), and a checker: the request
    is refused with ``status`` and ``code``, leaves the kernel alone and is one "rejected" line."""
    agent = await make_agent(ignore_cgroups=(*HOST_IGNORE, sandbox.path("hidden*")))
    api = await api_client(agent)
    watched = [sandbox.create("batch/job-7"), sandbox.create("hidden/job"),
               sandbox.create(f"kubepods/besteffort/pod{uuid.uuid4()}")]

    async def check(target: str, status: int, code: str) -> dict:
        before = {cg: limit_files(sandbox, cg) for cg in watched}
        audited = len(audit_lines(agent))
        got, body = await send(api, "PATCH", target, {"cpus": 0.5})
        assert (got, body.get("error")) == (status, code), body
        assert body["message"]
        assert {cg: limit_files(sandbox, cg) for cg in watched} == before
        lines = audit_lines(agent)[audited:]
        assert [(e["result"], e["error"]["error"]) for e in lines] == [("rejected", code)], lines
        return body

    return agent, api, watched, check


@pytest.mark.guest
async def test_the_control_request_is_accepted(refusing):
    _, api, (job, *_), _ = refusing
    got, body = await send(api, "PATCH", url(job), {"cpus": 0.5})
    assert got == 200, body


@pytest.mark.guest
async def test_the_root_cgroup_is_refused(refusing):
    *_, check = refusing
    body = await check("/api/v1/cgroups//limits", 403, "protected_cgroup")
    assert "root" in body["message"]


@pytest.mark.guest
@pytest.mark.parametrize("spelling", [
    "{job}/../job-7", "{job}/./x", "{parent}//job-7", "{job}/%2e%2e", "{parent}%2Fjob-7", "{job}%2F",
    "{job}/%2E", "{job}%00", "{job}%0a", "/..{job}",
])
async def test_a_path_that_is_not_spelled_as_one_cgroup_is_refused(refusing, spelling):
    _, _, (job, *_), check = refusing
    parent = job.rsplit("/", 1)[0]
    body = await check(f"/api/v1/cgroups{spelling.format(job=job, parent=parent)}/limits", 400,
                       "invalid_cgroup_path")
    assert body["message"].startswith("a cgroup path")


@pytest.mark.guest
async def test_a_path_the_agent_does_not_see_is_not_found(refusing, sandbox):
    *_, check = refusing
    body = await check(url(sandbox.path("batch/job-8")), 404, "cgroup_not_found")
    assert "sees no cgroup" in body["message"]


@pytest.mark.guest
async def test_an_ignored_path_is_not_found_and_says_why(refusing, sandbox):
    _, _, (_, hidden, _), check = refusing
    body = await check(url(hidden), 404, "cgroup_not_found")
    assert body["ignored_by"] == sandbox.path("hidden*") and "--ignore-cgroup" in body["message"]


@pytest.mark.guest
async def test_a_kubernetes_pods_cgroup_is_refused(refusing):
    _, _, (_, _, pod), check = refusing
    body = await check(url(pod), 403, "kubernetes_managed")
    assert body["pod_uid"] == pod.rsplit("/pod", 1)[1]


@pytest.mark.guest
async def test_the_kubelets_qos_cgroup_above_the_pods_is_refused_too(refusing):
    _, _, (_, _, pod), check = refusing
    qos = pod.rsplit("/", 1)[0]  # .../kubepods/besteffort: no pod UID, still the kubelet's
    body = await check(url(qos), 403, "kubernetes_managed")
    assert body["cgroup"] == qos


# --- cgroups shaped as runtimes make them, no runtime answering ----------------------------------

def listed(listing: dict, cg: str) -> dict:
    return next(c for c in listing["containers"] if c["cgroup"] == cg)


@pytest.mark.guest
async def test_podman_and_containerd_shaped_cgroups_are_found_and_governed_by_path(sandbox, api):
    """Podman's cgroupfs shape, containerd's CRI shape under a pod, and containerd's plain
    /<namespace>/<id>, made by hand: no daemon answers, so the path alone says what they are."""
    pid, cid, plain = uuid.uuid4().hex * 2, uuid.uuid4().hex * 2, uuid.uuid4().hex * 2
    uid = str(uuid.uuid4())
    podman = sandbox.create(f"libpod_parent/libpod-{pid}")
    cri = sandbox.create(f"kubepods/besteffort/pod{uid}/{cid}")
    default = sandbox.create(f"default/{plain}")
    listing = await (await api.get("/api/v1/containers")).json()
    assert (listed(listing, podman)["runtime"], listed(listing, podman)["id"]) == ("podman", pid)
    assert (listed(listing, cri)["runtime"], listed(listing, cri)["pod_uid"]) == ("cri", uid)
    assert (listed(listing, default)["runtime"], listed(listing, default)["id"]) == ("raw", default)

    resp = await patch(api, podman, {"cpus": 0.5, "memory": "64m"})
    body = await resp.json()
    assert resp.status == 200, body
    assert (body["runtime"], body["id"], body["applied_via"]) == ("podman", pid, "cgroupfs")
    if sandbox.is_v2:
        assert sandbox.read(podman, "cpu.max").split() == ["50000", "100000"]
        assert int(sandbox.read(podman, "memory.max")) == 64 << 20
    else:
        assert sandbox.read(podman, "cpu.cfs_quota_us").strip() == "50000"
        assert int(sandbox.read(podman, "memory.limit_in_bytes")) == 64 << 20
    assert (await (await api.get(url(podman))).json())["limits"]["memory_limit_bytes"] == 64 << 20

    assert (await patch(api, default, {"pids_limit": 5})).status == 200
    assert sandbox.read(default, "pids.max").strip() == "5"

    before = limit_files(sandbox, cri)
    resp = await patch(api, cri, {"cpus": 0.5})
    assert (resp.status, (await resp.json())["error"]) == (403, "kubernetes_managed")
    assert limit_files(sandbox, cri) == before


# --- the CLI ---------------------------------------------------------------------------------

def test_cgwatch_set_limits_and_reset_take_a_cgroup_path(sandbox, tmp_path):
    cg = sandbox.create("batch/job-7")
    with serve_agent(tmp_path) as served:
        out = cgwatch("set", "--cgroup", cg, "--cpus", "0.5", served=served)
        assert out.returncode == 0, out.stderr
        assert (json.loads(out.stdout)["cgroup"], quota(sandbox, cg)) == (cg, "50000")
        out = cgwatch("limits", "--cgroup", cg, served=served)
        assert (out.returncode, json.loads(out.stdout)["limits"]["cpus"]) == (0, 0.5), out.stderr
        out = cgwatch("reset", "--cgroup", cg, served=served)
        assert (out.returncode, quota(sandbox, cg)) == (0, "-1"), out.stderr
        # A path the agent refuses comes back in the agent's words.
        out = cgwatch("set", "--cgroup", "/", "--cpus", "0.5", served=served)
        assert out.returncode == 1 and "root cgroup" in out.stderr and "HTTP 403" in out.stderr
        status, _ = get(f"{served.api}/api/v1/cgroups{cg}/limits", served.token)
        assert status == 200
        escaped = sandbox.create(r"system.slice/dev-disk-by\x2duuid-1.swap")
        out = cgwatch("set", "--cgroup", escaped, "--pids-limit", "8", served=served)
        assert (out.returncode, sandbox.read(escaped, "pids.max").strip()) == (0, "8"), out.stderr


@pytest.mark.parametrize("args, words", [
    (("set", "--cpus", "0.5"), "name a container (REF) or a cgroup (--cgroup PATH)"),
    (("set", "web", "--cgroup", "/batch/job-7", "--cpus", "0.5"), "not both"),
    (("limits",), "name a container (REF) or a cgroup (--cgroup PATH)"),
    (("reset", "web", "--cgroup", "/x"), "not both"),
])
def test_cgwatch_needs_exactly_one_of_a_ref_and_a_cgroup(args, words):
    out = cgwatch(*args, "--api", "http://127.0.0.1:9")  # nothing is sent: refused before
    assert out.returncode != 0 and words in out.stderr, out.stderr


def test_the_public_listener_reads_a_cgroups_limits_without_a_token(sandbox, tmp_path):
    cg = sandbox.create("batch/job-7")
    sandbox.write(cg, "pids.max", "17")
    with serve_agent(tmp_path) as served:
        status, body = http(f"{served.metrics}/api/v1/cgroups{cg}/limits")
        assert (status, json.loads(body)["limits"]["pids_max"]) == (200, 17)
        status, _ = http(f"{served.metrics}/api/v1/cgroups{cg}/limits", data=b"{}", method="PATCH",
                         headers=JSON)
        assert status == 405  # writes only on the API listener, behind the token


# --- a Docker container by its cgroup path ---------------------------------------------------

@pytest.mark.docker
async def test_a_docker_containers_cgroup_path_goes_through_docker(docker_containers, make_agent, api_client):
    """The path names the container, so its runtime takes the change and `docker inspect` agrees."""
    api = await api_client(await make_agent(docker_host=DOCKER_HOST))
    cid, name = await asyncio.to_thread(docker_containers.run)
    resp = await patch(api, f"/docker/{cid}", {"cpus": 0.5})
    body = await resp.json()
    assert resp.status == 200, body
    assert (body["runtime"], body["id"], body["applied_via"]) == ("docker", cid, "docker")
    inspected = await asyncio.to_thread(docker_containers.inspect, cid)
    assert inspected["HostConfig"]["NanoCpus"] == 500_000_000
