"""The agent's own memory limit (host/selfcgroup.py), which bounds the cgroup files it keeps open."""

from __future__ import annotations

from cgwatch.host.selfcgroup import KEPT_FILE_BYTES, kept_files_cap, own_cgroup, own_memory_limit, parse_limit

HYBRID = "9:name=systemd:/\n4:memory:/system.slice/cgwatch.service\n1:cpu:/\n0::/system.slice/cgwatch.service\n"


def test_own_cgroup_prefers_the_v1_memory_hierarchy_and_falls_back_to_v2():
    assert own_cgroup(HYBRID) == ("v1", "/system.slice/cgwatch.service")
    assert own_cgroup("0::/kubepods.slice/pod1/cri-containerd-abc.scope\n") == (
        "v2", "/kubepods.slice/pod1/cri-containerd-abc.scope")
    assert own_cgroup("") is None


def test_parse_limit_knows_what_unlimited_looks_like():
    assert parse_limit("max\n") is None
    assert parse_limit("9223372036854771712\n") is None  # v1's PAGE_COUNTER_MAX pages
    assert parse_limit("268435456\n") == 256 << 20


def test_the_lowest_limit_on_the_way_up_counts(tmp_path):
    proc = tmp_path / "proc" / "self"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text("0::/system.slice/cgwatch.service\n")
    root = tmp_path / "cgroup"
    unit = root / "system.slice" / "cgwatch.service"
    unit.mkdir(parents=True)
    (root / "system.slice" / "memory.max").write_text("268435456\n")
    (unit / "memory.max").write_text("max\n")
    assert own_memory_limit(tmp_path / "proc", root) == 256 << 20


def test_in_a_cgroup_namespace_the_mount_root_is_the_process_cgroup(tmp_path):
    proc = tmp_path / "proc" / "self"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text("0::/\n")
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "memory.max").write_text("536870912\n")
    assert own_memory_limit(tmp_path / "proc", root) == 512 << 20


def test_no_limit_no_cap():
    assert kept_files_cap(None) is None
    assert kept_files_cap(256 << 20) == (256 << 20) // 4 // KEPT_FILE_BYTES  # ~15,000 files
