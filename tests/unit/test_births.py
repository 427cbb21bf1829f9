"""Which parent cgroups the births watcher watches, and which new directories are births (pure rules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cgwatch.enforce.births import (STATIC_PARENTS, ignored, is_birth, policy_parent, should_watch,
                                    watched_hierarchy, written_hierarchies)
from cgwatch.host.layout import CgroupLayout, Mode

ID = "0123456789abcdef" * 4
POD = "0b2f6c1e-6d3a-4c4b-9a8e-2f1d0c9b8a7e"
PARENTS = frozenset(STATIC_PARENTS) | {"/batch/docker"}


@pytest.mark.parametrize("glob, parent", [
    ("/batch/docker/*", "/batch/docker"),
    (f"/batch/docker/{ID}", "/batch/docker"),
    ("/docker/*", "/docker"),
    ("/batch-*", "/"),
    ("/*/docker/*", None),            # a wildcard above the leaf: every top-level cgroup
    ("/batch/dock?r/*", None),
    ("docker/*", None),               # not a cgroup path
])
def test_a_policy_glob_names_the_parent_its_containers_are_made_in(glob, parent):
    assert policy_parent(glob) == parent


@pytest.mark.parametrize("path, born", [
    (f"/docker/{ID}", True),
    (f"/system.slice/docker-{ID}.scope", True),
    (f"/machine.slice/libpod-{ID}.scope", True),
    (f"/libpod_parent/libpod-{ID}", True),
    (f"/batch/docker/{ID}", True),                       # a policy's parent
    ("/lxc.payload.web", True),                          # LXC makes its containers at the root
    (f"/kubepods/besteffort/pod{POD}/{ID}", True),
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD.replace('-', '_')}.slice/"
     f"cri-containerd-{ID}.scope", True),
    ("/kubepods", False),                                # the kubepods root itself is no container
    ("/docker", False),
    ("/lxc.monitor.web", False),
    (f"/batch/{ID}", False),
    (f"/docker/{ID}/child", False),                      # below a container: not a new container
])
def test_births_are_children_of_the_parents_runtimes_use(path, born):
    assert is_birth(path, PARENTS) is born


@pytest.mark.parametrize("path, watch", [
    ("/", True),
    ("/docker", True),
    ("/batch", True),                                    # to see /batch/docker appear
    ("/batch/docker", True),
    ("/kubepods", True),
    ("/kubepods/besteffort", True),
    (f"/kubepods/besteffort/pod{POD}", True),            # pods come and go: their containers too
    (f"/kubepods/besteffort/pod{POD}/{ID}", False),      # a container's own cgroup
    (f"/docker/{ID}", False),
    ("/user.slice", False),
])
def test_watched_are_parents_their_ancestors_and_kubepods_levels(path, watch):
    assert should_watch(path, PARENTS) is watch


def test_ignored_globs_hide_a_cgroup_and_all_below_it():
    patterns = ("/process_api*",)
    assert ignored("/process_api", patterns) and ignored(f"/process_api/{ID}/docker", patterns)
    assert not ignored("/docker", patterns)


def test_one_hierarchy_is_watched_and_limits_wait_for_every_written_one():
    v1 = CgroupLayout(Mode.HYBRID, v1={c: Path(f"/cg/{c}") for c in ("cpu", "cpuacct", "cpuset", "memory", "pids",
                                                                         "blkio")},
                      unified=Path("/cg/unified"))
    assert watched_hierarchy(v1) == Path("/cg/memory")
    assert written_hierarchies(v1) == [Path("/cg/cpuset"), Path("/cg/memory"), Path("/cg/cpu"), Path("/cg/pids")]
    joint = CgroupLayout(Mode.V1, v1={"cpu": Path("/cg/cpu,cpuacct"), "cpuacct": Path("/cg/cpu,cpuacct")})
    assert watched_hierarchy(joint) == Path("/cg/cpu,cpuacct") and written_hierarchies(joint) == [Path("/cg/cpu,cpuacct")]
    v2 = CgroupLayout(Mode.V2, unified=Path("/cg"))
    assert watched_hierarchy(v2) == Path("/cg") and written_hierarchies(v2) == [Path("/cg")]
