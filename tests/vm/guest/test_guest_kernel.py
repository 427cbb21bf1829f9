"""The cgroup v2 guest is what the v2 tests rely on.

These run INSIDE the QEMU guest started by tests/vm/guest.sh (``tests/vm/run-pytest.sh`` runs them,
marked ``real``); anywhere else they skip. When one of them fails, later v2 failures are about the
guest, not about cgwatch.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from pathlib import Path

import pytest

IN_GUEST = os.environ.get("CGWATCH_KERNEL") == "v2-guest"

pytestmark = [
    pytest.mark.real,
    pytest.mark.guest,
    pytest.mark.skipif(
        not IN_GUEST,
        reason="runs only inside the cgroup v2 guest (CGWATCH_KERNEL=v2-guest): tests/vm/run-pytest.sh",
    ),
]

CG = Path("/sys/fs/cgroup")
WANTED = {"cpu", "cpuset", "memory", "pids", "io"}
CHILD_FILES = [
    "cpu.max", "cpu.weight", "cpu.stat", "cpu.pressure",
    "memory.max", "memory.high", "memory.low", "memory.swap.max", "memory.current",
    "memory.stat", "memory.events", "memory.pressure",
    "pids.max", "pids.current",
    "cpuset.cpus", "cpuset.cpus.effective", "cpuset.mems",
    "io.max", "io.stat", "io.pressure",
    "cgroup.procs", "cgroup.events", "cgroup.controllers",
]


def mount_entry(mountpoint: str) -> tuple[str, set[str]]:
    """(fstype, options) of the top-most mount at ``mountpoint``."""
    found = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fields = pre.split()
        if fields[4] == mountpoint:
            fstype, _source, super_opts = post.split()[:3]
            found = (fstype, set(fields[5].split(",")) | set(super_opts.split(",")))
    assert found, f"nothing mounted at {mountpoint}"
    return found


@pytest.fixture
def child():
    path = CG / f"cgwatch-guest-test-{os.getpid()}"
    path.mkdir()
    procs: list[subprocess.Popen] = []
    try:
        yield path, procs
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for _ in range(50):          # a killed task leaves cgroup.procs asynchronously
            try:
                path.rmdir()
                break
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise
                time.sleep(0.1)
        assert not path.exists(), f"could not remove {path}"


def test_cgroup2_is_mounted_with_the_expected_options():
    fstype, opts = mount_entry(str(CG))
    assert fstype == "cgroup2"
    assert {"nsdelegate", "memory_recursiveprot"} <= opts, opts
    # No v1 hierarchy anywhere: every controller belongs to the one v2 tree.
    mounts = Path("/proc/mounts").read_text().split("\n")
    assert not [m for m in mounts if m.split(" ")[2:3] == ["cgroup"]]


def test_root_enables_the_controllers_for_children():
    available = set((CG / "cgroup.controllers").read_text().split())
    assert WANTED <= available, available
    enabled = set((CG / "cgroup.subtree_control").read_text().split())
    assert WANTED <= enabled, enabled


def test_child_cgroup_has_the_controller_files(child):
    path, _ = child
    missing = [f for f in CHILD_FILES if not (path / f).exists()]
    assert not missing, f"missing in a child cgroup: {missing}"
    assert WANTED <= set((path / "cgroup.controllers").read_text().split())


def test_child_cgroup_limits_read_back(child):
    path, _ = child
    (path / "cpu.max").write_text("50000 100000")
    assert (path / "cpu.max").read_text().strip() == "50000 100000"
    (path / "memory.max").write_text("100M")
    assert (path / "memory.max").read_text().strip() == str(100 * 1024 * 1024)
    (path / "memory.high").write_text("80M")
    assert (path / "memory.high").read_text().strip() == str(80 * 1024 * 1024)
    (path / "memory.swap.max").write_text("0")
    assert (path / "memory.swap.max").read_text().strip() == "0"
    (path / "pids.max").write_text("64")
    assert (path / "pids.max").read_text().strip() == "64"
    (path / "cpuset.cpus").write_text("0")
    assert (path / "cpuset.cpus").read_text().strip() == "0"
    assert (path / "cpu.max").read_text().strip() == "50000 100000"


def test_child_cgroup_takes_a_process(child):
    path, procs = child
    p = subprocess.Popen(
        ["sh", "-c", f'echo $$ > {path}/cgroup.procs && exec sleep 600'],
    )
    procs.append(p)
    for _ in range(100):
        if str(p.pid) in (path / "cgroup.procs").read_text().split():
            break
        assert p.poll() is None, "could not join the child cgroup"
        time.sleep(0.05)
    else:
        pytest.fail("process never showed up in cgroup.procs")
    assert (path / "pids.current").read_text().strip() == "1"
    assert f"0::/{path.name}" in Path(f"/proc/{p.pid}/cgroup").read_text()
    assert "populated 1" in (path / "cgroup.events").read_text()


def test_scratch_disk_accepts_an_io_limit(child):
    path, _ = child
    disk = os.environ.get("CGWATCH_VM_DISK")
    assert disk and Path(disk).is_block_device(), "guest.sh provides a scratch disk"
    majmin = Path(f"/sys/class/block/{Path(disk).name}/dev").read_text().strip()
    (path / "io.max").write_text(f"{majmin} wbps=2097152")
    assert (path / "io.max").read_text().split() == [majmin, "rbps=max", "wbps=2097152",
                                                     "riops=max", "wiops=max"]


def test_writable_places():
    for d in ("/tmp", os.environ.get("TMPDIR", "/tmp"), "/dev/shm"):
        assert mount_entry(d)[0] == "tmpfs", d
    share = Path(os.environ["CGWATCH_VM_SHARE"])
    probe = share / f".probe-{os.getpid()}"
    probe.write_text("x")
    probe.unlink()
    # The repo (host root over 9p) is read-only: tests must not try to write into it.
    fstype, opts = mount_entry("/")
    assert fstype == "9p" and "ro" in opts
    with pytest.raises(OSError):
        (Path(__file__).parent / f".probe-{os.getpid()}").write_text("x")
