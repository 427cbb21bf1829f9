"""The cgroup tree kept between scans (discovery/live.py) over real cgroupfs: what inotify tells it
between two scans is what a walk would find, without the walk; and when the kernel cannot tell
(queue overflow, a rename, no watches left) a walk decides."""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path

import pytest

from cgwatch.discovery.live import LiveTree
from cgwatch.discovery.walk import walk_cgroups
from cgwatch.host.inotify import Inotify
from cgwatch.server.app import create_app
from tests.support.agent import value

pytestmark = pytest.mark.real


@pytest.fixture
def tree_for(sandbox):
    """Trees over the sandbox's own directories (one per hierarchy), so that what other processes
    make and remove on the host meanwhile is not this test's: its paths are the sandbox's, "/a/b".
    Each is closed at the end."""
    made: list[LiveTree] = []

    def make(**kwargs) -> LiveTree:
        made.append(LiveTree(roots(sandbox), **kwargs))
        return made[-1]
    yield make
    for tree in made:
        tree.close()


def roots(sandbox) -> list[Path]:
    return [root / sandbox.name for root in sandbox.roots]


def walked(sandbox) -> set[str]:
    return set(walk_cgroups(roots(sandbox)))


def create(sandbox, rel: str) -> str:
    """``rel`` made in every hierarchy; its path as the sandbox's tree lists it."""
    sandbox.create(rel)
    return f"/{rel}"


def remove(sandbox, path: str) -> None:
    assert sandbox.remove(sandbox.path(path.lstrip("/"))) == []


@pytest.mark.guest
def test_cgroups_made_between_two_scans_are_listed_without_a_walk(sandbox, tree_for):
    tree = tree_for(rewalk_s=3600)
    first = set(tree.paths())
    a = create(sandbox, "pod/a")
    b = create(sandbox, f"docker/{uuid.uuid4().hex * 2}")
    now = set(tree.paths())
    assert now - first == {a, b, "/pod", "/docker"}
    assert now == walked(sandbox)
    assert tree.walks["start"] == 1 and sum(tree.walks.values()) == 1  # the events did it


@pytest.mark.guest
def test_a_cgroup_made_and_removed_between_two_scans_leaves_nothing(sandbox, tree_for):
    tree = tree_for(rewalk_s=3600)
    tree.paths()
    watches = tree.watches
    c = create(sandbox, "brief")
    remove(sandbox, c)
    assert c not in tree.paths()
    assert tree.watches == watches  # no watch kept on a directory that is gone
    assert sum(tree.walks.values()) == 1


@pytest.mark.guest
def test_a_cgroup_made_again_at_its_path_is_a_new_generation(sandbox, tree_for):
    tree = tree_for(rewalk_s=3600)
    cg = create(sandbox, "again")
    tree.paths()
    before = tree.generation(cg)
    assert before is not None
    remove(sandbox, cg)
    assert create(sandbox, "again") == cg
    tree.paths()
    assert tree.generation(cg) not in (None, before)
    # Removed and made again before the scan too: the queued deletion does not remove the new one.
    remove(sandbox, cg)
    create(sandbox, "again")
    assert cg in tree.paths()
    assert set(tree.paths()) == walked(sandbox)


def test_a_burst_of_500_births_is_listed_at_the_next_scan(sandbox, tree_for):
    tree = tree_for(rewalk_s=3600)
    tree.paths()
    watches = tree.watches
    born = {create(sandbox, f"docker/{i:064x}") for i in range(500)}
    listed = set(tree.paths())
    assert born <= listed
    assert listed == walked(sandbox)
    assert tree.walks["overflow"] == 0 and tree.walks["start"] == 1  # the events sufficed
    for cg in born:
        remove(sandbox, cg)
    assert set(tree.paths()) == walked(sandbox) == {"/", "/docker"}
    assert tree.watches == watches + len(sandbox.roots)  # /docker's in each hierarchy remain


def test_an_overflowed_event_queue_is_mended_by_a_walk(sandbox, tree_for):
    """More events between two scans than fs.inotify.max_queued_events: the kernel drops the rest and
    says so (IN_Q_OVERFLOW); the next scan walks, and lists what the lost events were about."""
    heard: list[str] = []
    limit_roots = [sandbox.root / sandbox.name] if sandbox.is_v2 else [sandbox.layout.v1["cpu"] / sandbox.name]
    tree = tree_for(rewalk_s=3600, modify_roots=limit_roots, on_modify=heard.append)
    a, b = create(sandbox, "a"), create(sandbox, "b")
    tree.paths()
    name = "cpu.weight" if sandbox.is_v2 else "cpu.shares"
    queued = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    fds = [os.open(sandbox.file(sandbox.path(cg.lstrip("/")), name), os.O_WRONLY) for cg in (a, b)]
    try:
        # Writes alternate between two cgroups: the kernel merges an event only into an identical last one.
        for i in range(queued + 100):
            os.write(fds[i % 2], b"100" if sandbox.is_v2 else b"1024")
    finally:
        for fd in fds:
            os.close(fd)
    lost = create(sandbox, "made-while-the-queue-was-full")
    listed = tree.paths()
    assert tree.walks["overflow"] == 1
    assert lost in listed
    assert set(listed) == walked(sandbox)
    # After the walk, events are heard again.
    later = create(sandbox, "later")
    assert later in tree.paths() and tree.walks["overflow"] == 1


def test_a_renamed_cgroup_is_found_by_a_walk(sandbox, tree_for):
    """v1 cgroupfs allows rename(2) within a parent (kernel/cgroup/cgroup.c, cgroup_rename; v2 refuses
    it): every path below the renamed one changed, so a walk."""
    if sandbox.is_v2:
        pytest.skip("cgroup v2 refuses rename(2) (EPERM): nothing to follow")
    create(sandbox, "old/child")
    tree = tree_for(rewalk_s=3600)
    v1 = [root / sandbox.name for root in sandbox.layout.v1.values()]
    try:
        tree.paths()
        for root in dict.fromkeys(v1):
            os.rename(root / "old", root / "new")
        listed = set(tree.paths())
        assert {"/new", "/new/child"} <= listed
        assert listed == walked(sandbox)
        assert tree.walks["moved"] == 1
    finally:
        for root in dict.fromkeys(v1):  # back where the sandbox's cleanup looks for it
            if (root / "new").exists():
                os.rename(root / "new", root / "old")


def test_without_watches_every_scan_walks(sandbox, tree_for):
    """inotify_init1 refused (fs.inotify.max_user_instances reached): the walk per scan of before."""
    def refused():
        raise OSError(errno.EMFILE, "Too many open files")
    tree = tree_for(inotify=refused)
    cg = create(sandbox, "x")
    assert cg in tree.paths()
    remove(sandbox, cg)
    assert cg not in tree.paths()
    assert tree.walks["unwatched"] >= 1 and tree.watches == 0


class Deaf(Inotify):
    """The kernel's events, less the ones about a directory named ``deaf_to``: a lost event."""

    deaf_to = "unheard"

    def read(self):
        return [ev for ev in super().read() if ev.name != self.deaf_to]


def test_a_periodic_walk_finds_and_counts_what_no_event_told(sandbox, tree_for):
    now = [0.0]
    tree = tree_for(rewalk_s=60, clock=lambda: now[0], inotify=Deaf)
    tree.paths()
    cg = create(sandbox, "unheard")
    assert cg not in tree.paths()       # the event was lost
    now[0] += 60
    assert cg in tree.paths()           # the safety net
    assert tree.walks["period"] == 1 and tree.missed == len(roots(sandbox))  # one per hierarchy


@pytest.mark.guest
async def test_metrics_list_a_cgroup_made_after_the_first_scrape(sandbox, make_agent, aiohttp_client):
    a = await make_agent()
    client = await aiohttp_client(create_app(a))
    first = await (await client.get("/metrics")).text()
    cg = sandbox.create(f"docker/{uuid.uuid4().hex * 2}")
    assert value(first, "container_memory_usage_bytes", id=cg) is None
    later = await (await client.get("/metrics")).text()
    assert value(later, "container_memory_usage_bytes", id=cg) is not None
    assert value(later, "cgwatch_inventory_walks_total", reason="start") == 1
    assert value(later, "cgwatch_inventory_missed_total") == 0
    assert value(later, "cgwatch_inventory_watches") >= len(sandbox.roots)
