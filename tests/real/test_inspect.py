"""What is inside a container, read from the real /proc: processes, namespaces, ID maps, rootfs.

A container here is a real cgroup with real processes. The user-namespaced one is built as a runtime
would: a private mount namespace with an overlay root, new pid/net/uts/ipc/cgroup/user namespaces,
uid_map/gid_map written by its parent, chroot, and PID 1 inside.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cgwatch.host.procpid import parse_mountinfo, root_mount
from tests.conftest import need
from tests.support.cgroups import wait_for

pytestmark = pytest.mark.real

BUSYBOX = Path("/bin/busybox")

# A tiny container runtime: argv = lowerdir upperdir workdir merged. Prints "ready" once PID 1 runs.
CONTAINER_PY = r'''
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
NEWNS, NEWCGROUP, NEWUTS, NEWIPC = 0x00020000, 0x02000000, 0x04000000, 0x08000000
NEWUSER, NEWPID, NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_REC, MS_PRIVATE, PR_SET_PDEATHSIG = 0x4000, 1 << 18, 1

def check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")

def die_with_parent():
    check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")

lower, upper, work, merged = sys.argv[1:5]
up_r, up_w = os.pipe()
down_r, down_w = os.pipe()
child = os.fork()
if child == 0:
    die_with_parent()
    check(libc.unshare(NEWNS), "unshare mnt")
    check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    check(libc.mount(b"overlay", merged.encode(), b"overlay", 0, opts), "mount overlay")
    check(libc.unshare(NEWUSER | NEWUTS | NEWIPC | NEWNET | NEWCGROUP | NEWPID), "unshare")
    os.write(up_w, b"u")
    os.read(down_r, 1)                      # the parent wrote our uid_map/gid_map
    os.chroot(merged)                       # still host root for path lookup; the sandbox's tmp is 0700
    os.chdir("/")
    os.setgid(0)
    os.setuid(0)                            # root inside: 100000 outside
    die_with_parent()                       # a credential change clears it
    exec_r, exec_w = os.pipe()              # close-on-exec: EOF once PID 1 runs busybox
    init = os.fork()                        # PID 1 of the new PID namespace
    if init == 0:
        die_with_parent()
        os.execv("/bin/busybox", ["sleep", "600"])
    os.close(exec_w)
    os.read(exec_r, 1)
    os.write(up_w, b"r")
    os.waitpid(init, 0)
    os._exit(0)
os.read(up_r, 1)
for name in ("uid_map", "gid_map"):
    with open(f"/proc/{child}/{name}", "w") as f:
        f.write("0 100000 65536\n")
os.write(down_w, b"d")
os.close(up_w)
print("ready" if os.read(up_r, 1) == b"r" else "failed", flush=True)
os.waitpid(child, 0)
'''


def overlay_missing() -> str | None:
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "the kernel has no overlay filesystem"
    if not BUSYBOX.exists():
        return "needs /bin/busybox (Debian busybox-static) for the container's root filesystem"
    return None


@pytest.fixture
def docker_shaped(sandbox):
    """A Docker-shaped cgroup (dockerd does not know it); its 64-hex ID is the ref."""
    cid = uuid.uuid4().hex * 2
    return cid, sandbox.create(f"docker/{cid}")


@pytest.fixture
def userns_container(sandbox, docker_shaped, tmp_path):
    """A container with an overlay root and every namespace of its own; yields (id, cgroup, dirs)."""
    need(overlay_missing())
    cid, cg = docker_shaped
    dirs = {name: tmp_path / name for name in ("lower", "upper", "work", "merged")}
    for d in dirs.values():
        d.mkdir()
    (dirs["lower"] / "bin").mkdir()
    shutil.copy2(BUSYBOX, dirs["lower"] / "bin" / "busybox")
    script = tmp_path / "container.py"
    script.write_text(CONTAINER_PY)
    layers = [str(dirs[n]) for n in ("lower", "upper", "work", "merged")]
    proc = sandbox.spawn(cg, [sys.executable, str(script), *layers], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    yield cid, cg, dirs
    # SIGKILL to the runtime takes the rest down (PR_SET_PDEATHSIG); the sandbox waits for it.
    proc.kill()
    proc.wait()


async def get_json(api, path: str, status: int = 200):
    resp = await api.get(path)
    assert resp.status == status, await resp.text()
    return await resp.json()


def init_pid_of(sandbox, cg: str) -> int:
    """PID 1 of the container's PID namespace, as the host numbers it (NSpid in status)."""
    for pid in map(int, sandbox.read(cg, "cgroup.procs").split()):
        nspid = [line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("NSpid:")]
        if nspid and nspid[0].split()[1:] and nspid[0].split()[-1] == "1" and len(nspid[0].split()) > 2:
            return pid
    raise AssertionError("no PID 1 in the container")


def pid1_links_unreadable() -> bool:
    try:
        os.readlink("/proc/1/ns/net")
        return False
    except PermissionError:
        return True


async def test_inspect_sees_a_containers_own_namespaces_id_maps_and_overlay_root(api, sandbox, userns_container):
    cid, cg, dirs = userns_container
    d = await get_json(api, f"/api/v1/containers/{cid}/inspect")
    # The container JSON is all there, plus what is inside.
    assert (d["id"], d["cgroup"], d["runtime"]) == (cid, cg, "docker")
    assert "limits" in d and "usage" in d
    assert d["inspected_pid"] == init_pid_of(sandbox, cg)
    assert {ns: v["shared_with_host"] for ns, v in d["namespaces"].items()} == {
        "pid": False, "net": False, "mnt": False, "uts": False, "ipc": False, "user": False, "cgroup": False}
    own_net = os.readlink(f"/proc/{d['inspected_pid']}/ns/net")
    assert own_net == f"net:[{d['namespaces']['net']['inode']}]"
    assert d["id_maps"] == {"uid": [{"inside": 0, "outside": 100000, "count": 65536}],
                            "gid": [{"inside": 0, "outside": 100000, "count": 65536}], "identity": False}
    rootfs = d["rootfs"]
    assert (rootfs["fstype"], rootfs["lowerdir"], rootfs["upperdir"], rootfs["workdir"]) == (
        "overlay", [str(dirs["lower"])], str(dirs["upper"]), str(dirs["work"]))


async def test_the_host_reference_is_said(api, docker_shaped, sandbox):
    cid, cg = docker_shaped
    sandbox.sleeper(cg)
    ref = (await get_json(api, f"/api/v1/containers/{cid}/inspect"))["host_reference"]
    if pid1_links_unreadable():
        # This project's CI host: PID 1's ns links answer EACCES, the agent compares with its own.
        assert ref["process"] == "self"
        assert errno.errorcode[errno.EACCES] in ref["note"]
    else:
        assert ref == {"process": "pid1", "note": None}


async def test_a_plain_cgroup_shares_everything_with_the_host(api, docker_shaped, sandbox):
    cid, cg = docker_shaped
    sleeper = sandbox.sleeper(cg)
    d = await get_json(api, f"/api/v1/containers/{cid}/inspect")
    assert d["inspected_pid"] == sleeper.pid
    assert all(v["shared_with_host"] is True for v in d["namespaces"].values())
    assert d["id_maps"]["identity"] is True
    host_root = root_mount(parse_mountinfo(Path("/proc/self/mountinfo").read_text()))
    assert host_root is not None
    assert (d["rootfs"]["fstype"], d["rootfs"]["source"]) == (host_root.fstype, host_root.source)
    assert d["rootfs"]["lowerdir"] is None


async def test_inspect_of_an_empty_container_says_there_is_nothing_to_read(api, docker_shaped):
    cid, _ = docker_shaped
    d = await get_json(api, f"/api/v1/containers/{cid}/inspect")
    assert d["inspected_pid"] is None and d["namespaces"] is None and d["rootfs"] is None
    assert "no process" in d["note"]


async def test_processes_show_a_busy_loop_with_its_cpu_over_the_interval(api, docker_shaped, sandbox):
    cid, cg = docker_shaped
    busy = sandbox.busy_loop(cg)
    sleeper = sandbox.sleeper(cg)
    body = await get_json(api, f"/api/v1/containers/{cid}/processes?interval=0.5")
    assert body["cpu_percent_basis"] == "interval" and 0.4 < body["interval_seconds"] < 2
    by_pid = {p["pid"]: p for p in body["processes"]}
    assert set(by_pid) == {busy.pid, sleeper.pid}
    loop = by_pid[busy.pid]
    assert loop["cpu_percent"] > 5, loop      # a busy loop, even on a loaded host
    assert "while True: pass" in loop["command"]
    assert (loop["user"], loop["uid"], loop["threads"]) == ("root", 0, 1)
    assert loop["rss_bytes"] > 1 << 20
    assert by_pid[sleeper.pid]["command"] == "sleep 600"
    assert by_pid[sleeper.pid]["cpu_percent"] < 5


async def test_processes_cpu_since_start_when_the_interval_is_zero(api, docker_shaped, sandbox):
    cid, cg = docker_shaped
    sandbox.sleeper(cg)
    body = await get_json(api, f"/api/v1/containers/{cid}/processes?interval=0")
    assert body["cpu_percent_basis"] == "since_start" and body["interval_seconds"] is None
    assert len(body["processes"]) == 1


async def test_processes_of_a_user_namespaced_container_show_its_mapped_user(api, userns_container, sandbox):
    cid, cg, _ = userns_container
    body = await get_json(api, f"/api/v1/containers/{cid}/processes?interval=0")
    init = {p["pid"]: p for p in body["processes"]}[init_pid_of(sandbox, cg)]
    # Root inside is 100000 outside: the host has no name for it.
    assert (init["uid"], init["user"], init["command"]) == (100000, "100000", "sleep 600")


@pytest.mark.parametrize("interval", ["-1", "nan", "abc", "6", "inf"])
async def test_processes_refuse_a_bad_interval(api, docker_shaped, interval):
    cid, _ = docker_shaped
    body = await get_json(api, f"/api/v1/containers/{cid}/processes?interval={interval}", status=400)
    assert body["error"] == "invalid_request" and body["field"] == "interval"


async def test_unknown_container_is_404(api):
    assert (await get_json(api, "/api/v1/containers/nope/inspect", status=404))["error"] == "container_not_found"
    assert (await get_json(api, "/api/v1/containers/nope/processes", status=404))["error"] == "container_not_found"


async def test_processes_and_inspect_need_the_token_and_are_not_on_the_public_listener(agent, aiohttp_client,
                                                                                       docker_shaped):
    from cgwatch.server.app import create_app

    cid, _ = docker_shaped
    api_anon = await aiohttp_client(create_app(agent, api=True))
    public = await aiohttp_client(create_app(agent))
    for path in (f"/api/v1/containers/{cid}/processes", f"/api/v1/containers/{cid}/inspect"):
        assert (await api_anon.get(path)).status == 401
        # Command lines can carry secrets: the token-less listener does not serve them at all.
        assert (await public.get(path)).status == 404


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cgwatch", *args], capture_output=True, text=True, timeout=timeout)


NO_AGENT = ("--api", "http://127.0.0.1:1", "--ignore-cgroup", "/process_api*")


def test_cli_inspect_reads_the_host_when_no_agent_answers(userns_container):
    cid, cg, dirs = userns_container
    result = run_cli("inspect", cid[:12], *NO_AGENT)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("source: host cgroupfs") and "no agent answered at http://127.0.0.1:1" in out
    assert f"cgroup      {cg}" in out
    assert "uid map     0-65535 -> 100000-165535" in out
    assert f"lowerdir  {dirs['lower']}" in out and f"upperdir  {dirs['upper']}" in out
    assert "sleep 600" in out


def test_cli_inspect_json_is_the_api_document(userns_container):
    cid, _, _ = userns_container
    result = run_cli("inspect", cid, "--json", *NO_AGENT)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["id"] == cid and doc["rootfs"]["fstype"] == "overlay"
    assert doc["source"].startswith("host cgroupfs")


def test_cli_inspect_of_an_unknown_container_fails_with_a_message():
    result = run_cli("inspect", "nope", *NO_AGENT)
    assert result.returncode == 1
    assert "no container matches 'nope'" in result.stderr


def test_the_runtime_helper_left_nothing_behind(sandbox, userns_container):
    # Guard for the fixture itself: every process it started is inside the sandbox cgroup.
    cid, cg, _ = userns_container
    pids = sandbox.read(cg, "cgroup.procs").split()
    assert len(pids) == 3
    wait_for(lambda: all(Path(f"/proc/{p}").exists() for p in pids))
