"""A cgroup path as an API target: what is taken, what is refused, and what it resolves to."""

from __future__ import annotations

import pytest

from cgwatch.discovery.classify import classify
from cgwatch.discovery.inventory import CgroupPath, build_container, find_path, find_target, parse_cgroup_path
from cgwatch.errors import CgroupNotFound, InvalidCgroupPath, ProtectedCgroup

ID = "b" * 64


def walk(*paths: str):
    """Containers as a walk builds them, without a runtime's API."""
    return [build_container(p, classify(p), None) for p in ("/", *paths)]


@pytest.mark.parametrize("text, path", [
    ("batch/job-7", "/batch/job-7"),
    ("/batch/job-7", "/batch/job-7"),
    ("lxc.payload.web", "/lxc.payload.web"),
    ("system.slice/getty@tty1.service", "/system.slice/getty@tty1.service"),
    # systemd escapes '-' in unit names as \x2d: a backslash is part of real names.
    (r"system.slice/dev-disk-by\x2duuid-1.swap", r"/system.slice/dev-disk-by\x2duuid-1.swap"),
    ("a b/..c/d..", "/a b/..c/d.."),
    ("", "/"),
])
def test_a_path_is_taken_as_written(text, path):
    assert parse_cgroup_path(text) == CgroupPath(path)


@pytest.mark.parametrize("text", [
    "..", "a/..", "../etc", "a/../b", ".", "a/./b", "a//b", "a/", "//a", "/a/",
    "a\x00b", "a\nb", "a\tb", "a\x7fb", "x" * 4096,
])
def test_anything_that_is_not_one_path_as_written_is_refused(text):
    with pytest.raises(InvalidCgroupPath):
        parse_cgroup_path(text)


def test_a_path_resolves_to_the_cgroup_the_walk_found():
    found = find_path(CgroupPath("/batch/job-7"), walk("/batch", "/batch/job-7"))
    assert (found.path, found.runtime, found.id, found.name) == ("/batch/job-7", "raw", "/batch/job-7", "")


def test_a_containers_cgroup_resolves_to_that_container():
    found = find_target(CgroupPath(f"/docker/{ID}"), walk(f"/docker/{ID}"))
    assert (found.runtime, found.id) == ("docker", ID)


def test_an_lxc_container_is_named_from_its_path():
    found = find_target(CgroupPath("/lxc.payload.web"), walk("/lxc.monitor.web", "/lxc.payload.web"))
    assert (found.runtime, found.id, found.name) == ("lxc", "web", "web")
    assert find_target("web", walk("/lxc.monitor.web", "/lxc.payload.web")).path == "/lxc.payload.web"


def test_the_root_is_refused_though_the_walk_lists_it():
    with pytest.raises(ProtectedCgroup):
        find_path(CgroupPath("/"), walk())


def test_a_path_the_walk_did_not_find_is_not_found():
    with pytest.raises(CgroupNotFound) as exc:
        find_path(CgroupPath("/batch/job-8"), walk("/batch/job-7"))
    assert exc.value.code == "cgroup_not_found"


def test_an_ignored_path_says_which_glob_hides_it():
    with pytest.raises(CgroupNotFound) as exc:
        find_path(CgroupPath("/process_api/x"), walk("/process_api/x"), ignore=("/process_api*",))
    assert exc.value.details["ignored_by"] == "/process_api*"
    assert "--ignore-cgroup" in exc.value.message


def test_a_ref_is_never_a_path():
    assert find_target("web", walk("/lxc.payload.web")).id == "web"
    with pytest.raises(Exception) as exc:
        find_target("/batch/job-7", walk("/batch/job-7"))
    assert exc.value.code == "invalid_ref"
