"""The limits /metrics keeps between collections (cgroup/limitcache.py), over a copy of the v1
fixture tree: kept until invalidated, refreshed after its period, read again for a new cgroup."""

from __future__ import annotations

import shutil

import pytest

from cgwatch.cgroup.limitcache import LimitsCache
from cgwatch.hostfs import Host
from tests.conftest import FIXTURES

CID = "40686f14f3cef51f059747ef6fd6bf2643b9b3a5ffdea33518247d06e53c6c03"
PATH = f"/docker/{CID}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def tree(tmp_path):
    shutil.copytree(FIXTURES / "cgroupfs" / "v1", tmp_path / "v1", symlinks=True)
    return tmp_path / "v1"


@pytest.fixture
def host(tree):
    return Host(tree / "cgroup", tree / "proc")


def set_quota(tree, value: int) -> None:
    (tree / "cgroup" / "cpu" / "docker" / CID / "cpu.cfs_quota_us").write_text(f"{value}\n")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def stale(tree, host, clock):
    """A cache that read the quota 20000, written since to 30000 behind its back."""
    cache = LimitsCache(host.reader, refresh_s=60.0, clock=clock)
    set_quota(tree, 20000)
    assert cache.limits(PATH).cpu_quota_us == 20000
    set_quota(tree, 30000)
    return cache


def test_limits_are_kept_until_the_refresh_period_ends(stale, clock):
    clock.now += 59.0
    assert stale.limits(PATH).cpu_quota_us == 20000
    clock.now += 1.0
    assert stale.limits(PATH).cpu_quota_us == 30000


def test_an_invalidated_cgroup_is_read_again_at_once(stale):
    stale.invalidate(PATH)
    assert stale.limits(PATH).cpu_quota_us == 30000


def test_a_runtime_update_of_the_container_id_reads_it_again(stale):
    stale.invalidate_id("someone-else")
    assert stale.limits(PATH).cpu_quota_us == 20000
    stale.invalidate_id(CID)
    assert stale.limits(PATH).cpu_quota_us == 30000


def test_a_directory_made_again_at_the_same_path_is_read_again(tree, stale):
    # Every hierarchy's directory replaced by a copy: new inodes, as a cgroup made again has.
    for hierarchy in (tree / "cgroup").iterdir():
        d = hierarchy / "docker" / CID
        if d.is_dir():
            shutil.copytree(d, d.with_name(CID + ".new"))
            shutil.rmtree(d)
            d.with_name(CID + ".new").rename(d)
    set_quota(tree, 40000)
    assert stale.limits(PATH).cpu_quota_us == 40000


def test_a_read_begun_before_an_invalidation_is_not_kept(tree, host):
    """The collection's read may have seen the value a concurrent write replaced."""
    set_quota(tree, 20000)

    class Racing:  # the reader, with one write (and its invalidation) landing in the middle of a read
        cache: LimitsCache
        raced = False

        def __getattr__(self, name):
            return getattr(host.reader, name)

        def limits(self, path):
            got = host.reader.limits(path)
            if not self.raced:
                self.raced = True
                set_quota(tree, 30000)
                self.cache.invalidate(path)
            return got

    racing = Racing()
    cache = racing.cache = LimitsCache(racing, refresh_s=60.0, clock=Clock())
    assert cache.limits(PATH).cpu_quota_us == 20000
    assert cache.limits(PATH).cpu_quota_us == 30000


def test_gone_cgroups_are_forgotten(stale):
    stale.retain(set())
    assert stale.limits(PATH).cpu_quota_us == 30000


def test_a_new_generation_from_the_tree_is_read_again_without_a_stat(tree, host):
    """With the live tree's generation as identity, nothing is stat()ed to tell a cgroup made again."""
    generations = {PATH: 1}
    stats = []

    class Counting:
        def __getattr__(self, name):
            return getattr(host.reader, name)

        def identity(self, path):
            stats.append(("identity", path))
            return host.reader.identity(path)

        def created(self, path):
            stats.append(("created", path))
            return host.reader.created(path)

    cache = LimitsCache(Counting(), refresh_s=60.0, clock=Clock(), identity=generations.get)
    set_quota(tree, 20000)
    assert cache.limits(PATH).cpu_quota_us == 20000
    set_quota(tree, 30000)
    assert cache.limits(PATH).cpu_quota_us == 20000  # same generation: kept
    generations[PATH] = 2                            # made again
    assert cache.limits(PATH).cpu_quota_us == 30000
    created = cache.created(PATH)
    assert created is not None and cache.created(PATH) == created
    assert stats == [("created", PATH)]  # the start time, once for the generation; the limits never
    del generations[PATH]   # gone from the tree
    assert cache.created(PATH) is None
