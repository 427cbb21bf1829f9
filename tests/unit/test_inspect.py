"""What is inside a container, from /proc: parsers table-tested on files captured from a real kernel
(tests/fixtures/proc-inspect/README.md), and the readers run over that fixture tree."""

from __future__ import annotations

import pytest

from cgwatch.discovery.inventory import Container
from cgwatch.host.procpid import (IdRange, Mount, ProcStatus, is_identity_map, parse_cmdline, parse_id_map,
                                  parse_mountinfo, parse_overlay_options, parse_proc_stat, parse_proc_status,
                                  parse_uptime, root_mount, unescape_octal)
from cgwatch.views.inspect import (ProcessSample, ProcInspector, Snapshot, compare_namespaces, cpu_percent_between,
                                  cpu_percent_since_start, pick_init, rootfs_json)
from tests.conftest import FIXTURES

PROC = FIXTURES / "proc-inspect"
DOCKER_INIT = 852       # PID 1 of a Docker container
USERNS_INIT = 31206     # PID 1 of a container with its own user namespace
HOST_PROCESS = 32474    # a host process; "self" in the fixture


def fixture(pid: int, name: str) -> str:
    return (PROC / str(pid) / name).read_text()


# --- /proc/<pid>/stat, status, cmdline -------------------------------------------------------


def test_parse_proc_stat_of_a_captured_process():
    stat = parse_proc_stat(fixture(HOST_PROCESS, "stat"))
    assert (stat.pid, stat.comm, stat.state, stat.ppid) == (32474, "python3", "R", 32447)
    assert (stat.utime_ticks, stat.stime_ticks, stat.cpu_ticks) == (2, 2, 4)
    assert (stat.num_threads, stat.starttime_ticks, stat.rss_pages) == (1, 1760823, 3351)


@pytest.mark.parametrize("comm", ["a b", "x) (y", "(", ")"])
def test_parse_proc_stat_survives_any_comm(comm):
    # comm is up to 15 bytes the process chose: spaces and parentheses included (proc(5)).
    line = f"77 ({comm}) S 1 77 77 0 -1 4194560 1 0 0 0 5 6 0 0 20 0 3 0 1234 100 9 18446744073709551615 0\n"
    stat = parse_proc_stat(line)
    assert (stat.pid, stat.comm, stat.ppid, stat.cpu_ticks, stat.num_threads, stat.rss_pages) == (77, comm, 1, 11, 3, 9)


def test_parse_proc_stat_rejects_other_text():
    with pytest.raises(ValueError):
        parse_proc_stat("not a stat line")


@pytest.mark.parametrize("pid, uid, nspid", [
    (DOCKER_INIT, 1000, (852, 1)),
    (USERNS_INIT, 100000, (31206, 1)),     # the host's view of the namespace's root
    (HOST_PROCESS, 0, (32474,)),
])
def test_parse_proc_status(pid, uid, nspid):
    assert parse_proc_status(fixture(pid, "status")) == ProcStatus(effective_uid=uid, nspid=nspid)


@pytest.mark.parametrize("text, argv", [
    ("sleep\x00600\x00", ["sleep", "600"]),
    ("", []),                                # kernel thread or zombie
    ("a b\x00\x00c\x00", ["a b", "", "c"]),  # an empty argument stays
    ("nginx: worker process", ["nginx: worker process"]),  # rewrote its argv without NULs
])
def test_parse_cmdline(text, argv):
    assert parse_cmdline(text) == argv


def test_a_process_without_arguments_shows_its_comm_in_brackets():
    stat = parse_proc_stat(fixture(HOST_PROCESS, "stat"))
    assert ProcessSample(stat, ProcStatus(0, ()), ()).command == "[python3]"
    assert ProcessSample(stat, ProcStatus(0, ()), ("sleep", "600")).command == "sleep 600"


# --- uid_map / gid_map ------------------------------------------------------------------------


@pytest.mark.parametrize("pid, ranges, identity", [
    (HOST_PROCESS, [IdRange(0, 0, 4294967295)], True),
    (DOCKER_INIT, [IdRange(0, 0, 4294967295)], True),
    (USERNS_INIT, [IdRange(0, 100000, 65536)], False),
])
def test_parse_id_map(pid, ranges, identity):
    for name in ("uid_map", "gid_map"):
        parsed = parse_id_map(fixture(pid, name))
        assert parsed == ranges
        assert is_identity_map(parsed) is identity


def test_parse_id_map_with_several_ranges_and_an_empty_map():
    text = "         0       1000          1\n         1     100000      65536\n"
    assert parse_id_map(text) == [IdRange(0, 1000, 1), IdRange(1, 100000, 65536)]
    assert parse_id_map("") == []          # a new user namespace before its map is written
    assert not is_identity_map([])


# --- mountinfo and the root filesystem --------------------------------------------------------


def test_the_docker_containers_root_is_its_overlay():
    mount = root_mount(parse_mountinfo(fixture(DOCKER_INIT, "mountinfo")))
    assert mount is not None
    assert (mount.fstype, mount.source, mount.mount_options, mount.root) == ("overlay", "overlay", "rw,relatime", "/")
    layers = parse_overlay_options(mount.super_options)
    assert layers["lowerdir"] == ["/tmp/cgw-manual/docker/overlay2/l/JCOC6YIL3C2QVEVA4DFVXIPHGT",
                                  "/tmp/cgw-manual/docker/overlay2/l/4QNWC74SKPP2YSM7X6RYQK3QTA"]
    layer = "/tmp/cgw-manual/docker/overlay2/a3423c0321556098bda104e08cf2544ba5327987842eeafe935c721d3b4dbce4"
    assert layers["upperdir"] == f"{layer}/diff"
    assert layers["workdir"] == f"{layer}/work"


def test_an_overlay_with_one_lower_layer_and_extra_options():
    # Linux 6.18 adds "uuid=on" after workdir.
    rootfs = rootfs_json(root_mount(parse_mountinfo(fixture(USERNS_INIT, "mountinfo"))))
    assert rootfs == {"fstype": "overlay", "source": "overlay", "root": "/", "device": "0:40",
                      "lowerdir": ["/tmp/fxcap/lower"], "upperdir": "/tmp/fxcap/upper", "workdir": "/tmp/fxcap/work"}


def test_a_host_process_root_is_not_an_overlay():
    mounts = parse_mountinfo(fixture(HOST_PROCESS, "mountinfo"))
    assert len(mounts) == 20
    rootfs = rootfs_json(root_mount(mounts))
    assert rootfs is not None
    assert (rootfs["fstype"], rootfs["source"]) == ("ext4", "/dev/vda")
    assert rootfs["lowerdir"] is None and rootfs["upperdir"] is None
    # Optional fields ("shared:1") between the mount options and the separator are skipped.
    [bind] = [m for m in mounts if m.mount_point == "/tmp/cgw-manual/docker"]
    assert (bind.root, bind.fstype) == ("/tmp/cgw-manual/docker", "ext4")


def test_the_topmost_of_stacked_root_mounts_wins():
    text = ("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
            "2 1 0:40 / / rw - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n")
    mount = root_mount(parse_mountinfo(text))
    assert mount is not None and mount.fstype == "overlay"
    assert root_mount([]) is None


def test_mountinfo_unescapes_octal_escapes():
    text = r"36 35 98:0 /with\040space /mnt/a\011tab rw - ext3 /dev/my\134disk rw" + "\n"
    [m] = parse_mountinfo(text)
    assert (m.root, m.mount_point, m.source) == ("/with space", "/mnt/a\ttab", "/dev/my\\disk")
    assert unescape_octal("plain") == "plain"


@pytest.mark.parametrize("options, lower", [
    ("rw,lowerdir=/a:/b:/c,upperdir=/u,workdir=/w", ["/a", "/b", "/c"]),
    ("rw,lowerdir=/a\\134:b:/c,upperdir=/u,workdir=/w", ["/a:b", "/c"]),   # a ":" in a name, escaped
    ("rw,lowerdir+=/a,lowerdir+=/b,upperdir=/u,workdir=/w", ["/a", "/b"]),   # Linux 6.8+ fsconfig style
    ("rw,lowerdir=/only", ["/only"]),                                        # read-only overlay: no upper
])
def test_parse_overlay_options(options, lower):
    assert parse_overlay_options(options)["lowerdir"] == lower


def test_a_read_only_overlay_has_no_upper_or_work_dir():
    parsed = parse_overlay_options("ro,lowerdir=/a:/b")
    assert parsed["upperdir"] is None and parsed["workdir"] is None


def test_parse_mountinfo_skips_malformed_lines():
    assert parse_mountinfo("garbage\n1 2 3\n") == []
    assert isinstance(parse_mountinfo(fixture(DOCKER_INIT, "mountinfo"))[0], Mount)


# --- namespaces -------------------------------------------------------------------------------


def test_pick_init_prefers_pid_1_of_the_innermost_pid_namespace():
    statuses = {
        100: ProcStatus(0, (100,)),              # a wrapper left in the cgroup, outside the namespace
        101: ProcStatus(0, (101, 1)),            # the container's init
        102: ProcStatus(0, (102, 2)),
        103: ProcStatus(0, (103, 5, 1)),         # init of a nested PID namespace: innermost wins
    }
    assert pick_init(statuses) == 103
    del statuses[103]
    assert pick_init(statuses) == 101


def test_pick_init_falls_back_to_the_lowest_pid():
    assert pick_init({7: ProcStatus(0, (7,)), 5: ProcStatus(0, (5,))}) == 5
    assert pick_init({}) is None


def test_compare_namespaces():
    container = {"pid": 10, "net": 11, "mnt": 12, "uts": 13, "ipc": 14, "user": 1, "cgroup": None}
    host = {"pid": 1, "net": 2, "mnt": 3, "uts": 4, "ipc": 5, "user": 1, "cgroup": 7}
    out = compare_namespaces(container, host)
    assert out["pid"] == {"inode": 10, "shared_with_host": False}
    assert out["user"] == {"inode": 1, "shared_with_host": True}
    assert out["cgroup"] == {"inode": None, "shared_with_host": None}   # unreadable: unknown, not "own"
    assert list(out) == ["pid", "net", "mnt", "uts", "ipc", "user", "cgroup"]


# --- CPU % ------------------------------------------------------------------------------------


@pytest.mark.parametrize("before, after, seconds, expected", [
    (0, 100, 1.0, 100.0),      # 100 ticks at 100 Hz in one second: one CPU
    (0, 50, 1.0, 50.0),
    (10, 10, 0.5, 0.0),
    (10, 5, 1.0, None),        # another process under the same PID
    (0, 10, 0.0, None),
])
def test_cpu_percent_between(before, after, seconds, expected):
    assert cpu_percent_between(before, after, seconds, 100) == expected


def test_cpu_percent_since_start():
    stat = parse_proc_stat(fixture(HOST_PROCESS, "stat"))    # 4 ticks, started at tick 1760823
    uptime = parse_uptime((PROC / "uptime").read_text())
    assert uptime == 17608.46
    assert cpu_percent_since_start(stat, 17608.23 + 4 / 100 * 10, 100) == pytest.approx(10.0, abs=0.1)
    assert cpu_percent_since_start(stat, 17600.0, 100) is None   # clock before its start


# --- the readers over the fixture tree --------------------------------------------------------


class FakeCgroup:
    """The one CgroupReader method the inspector calls: the cgroup's processes."""

    def __init__(self, pids: list[int]):
        self.pids = pids

    def procs(self, path: str) -> list[int]:
        return self.pids


def inspector(*pids: int) -> ProcInspector:
    return ProcInspector(PROC, FakeCgroup(list(pids)))  # type: ignore[arg-type]


DOCKER = Container(path="/docker/" + "8" * 64, runtime="docker", id="8" * 64, name="capture")


def test_details_of_a_docker_container_compare_with_self_when_pid_1_is_unreadable():
    d = inspector(DOCKER_INIT).details(DOCKER)
    assert d["inspected_pid"] == DOCKER_INIT
    # PID 1 is absent from the fixture (EACCES on the capture host): the agent's own is the reference.
    assert d["host_reference"]["process"] == "self"
    assert "ENOENT" in d["host_reference"]["note"]
    ns = d["namespaces"]
    assert {k: v["shared_with_host"] for k, v in ns.items()} == {
        "pid": False, "net": False, "mnt": False, "uts": False, "ipc": False, "user": True, "cgroup": True}
    assert ns["net"]["inode"] == 4026532255
    assert d["id_maps"]["identity"] is True
    assert d["rootfs"]["fstype"] == "overlay" and len(d["rootfs"]["lowerdir"]) == 2


def test_details_read_the_user_namespace_maps():
    d = inspector(USERNS_INIT).details(DOCKER)
    assert d["id_maps"] == {"uid": [{"inside": 0, "outside": 100000, "count": 65536}],
                            "gid": [{"inside": 0, "outside": 100000, "count": 65536}], "identity": False}
    assert not any(v["shared_with_host"] for v in d["namespaces"].values())


def test_details_of_an_empty_cgroup_say_so():
    d = inspector().details(DOCKER)
    assert d["inspected_pid"] is None and d["namespaces"] is None
    assert "no process" in d["note"]


def test_details_skip_a_process_that_is_gone():
    assert inspector(999999, DOCKER_INIT).details(DOCKER)["inspected_pid"] == DOCKER_INIT


def test_process_report_since_start():
    insp = inspector(DOCKER_INIT, 999999)
    snap = insp.snapshot(DOCKER)
    assert list(snap.processes) == [DOCKER_INIT]         # 999999 exited: left out, no error
    report = insp.report(DOCKER, None, snap, names=lambda uid: {1000: "app"}.get(uid, str(uid)))
    assert report["cpu_percent_basis"] == "since_start" and report["interval_seconds"] is None
    [p] = report["processes"]
    assert (p["pid"], p["ppid"], p["user"], p["uid"], p["state"], p["threads"]) == (852, 829, "app", 1000, "S", 1)
    assert p["command"] == "sleep 120"
    assert p["rss_bytes"] == 316 * insp.page_size
    # The fixture's uptime was captured before this container started: no life yet, no rate.
    assert p["cpu_percent"] is None


def test_process_report_over_an_interval():
    insp = inspector()
    stat = parse_proc_stat(fixture(HOST_PROCESS, "stat"))
    later = parse_proc_stat(fixture(HOST_PROCESS, "stat").replace(" 2 2 3 1 20 ", " 52 2 3 1 20 "))
    status = ProcStatus(0, (HOST_PROCESS,))
    first = Snapshot(10.0, {HOST_PROCESS: ProcessSample(stat, status, ("python3",))})
    second = Snapshot(10.5, {HOST_PROCESS: ProcessSample(later, status, ("python3",)),
                             5: ProcessSample(stat, status, ())})   # new since the first: no rate
    report = insp.report(DOCKER, first, second, names=str)
    assert report["cpu_percent_basis"] == "interval" and report["interval_seconds"] == 0.5
    by_pid = {p["pid"]: p for p in report["processes"]}
    assert by_pid[HOST_PROCESS]["cpu_percent"] == pytest.approx(50 / insp.clk_tck / 0.5 * 100, abs=0.1)
    assert by_pid[5]["cpu_percent"] is None
