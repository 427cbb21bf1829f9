"""Cgroup files kept open and re-read with pread (host/keptfiles.py), on real cgroups: fresh
contents, a bound that holds, a cgroup made again at its path read through new descriptors."""

from __future__ import annotations

import errno
import os

import pytest

from cgwatch.host.fdlimit import FdBudget
from cgwatch.host.keptfiles import KeptFiles

pytestmark = pytest.mark.real


def pids_current(sandbox, cg: str) -> str:
    return str(sandbox.file(cg, "pids.current"))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_kept_descriptor_reads_what_the_kernel_holds_now(sandbox):
    cg = sandbox.create("a")
    kept = KeptFiles(FdBudget(10))
    assert kept.read(cg, pids_current(sandbox, cg)).strip() == b"0"
    assert len(kept) == 1
    sandbox.sleeper(cg)
    assert kept.read(cg, pids_current(sandbox, cg)).strip() == b"1"  # the same descriptor, re-read
    assert len(kept) == 1


def test_the_kernel_refuses_reads_of_a_removed_cgroups_kept_descriptor(sandbox):
    """What the cache relies on: no read of an old descriptor returns a later cgroup's data."""
    cg = sandbox.create("a")
    fd = os.open(pids_current(sandbox, cg), os.O_RDONLY)
    try:
        sandbox.remove(cg)
        sandbox.create("a")
        with pytest.raises(OSError) as err:
            os.pread(fd, 100, 0)
        assert err.value.errno == errno.ENODEV
    finally:
        os.close(fd)


def test_a_cgroup_made_again_at_the_same_path_is_read_through_new_descriptors(sandbox):
    cg = sandbox.create("a")
    sandbox.sleeper(cg)
    kept = KeptFiles(FdBudget(10))
    assert kept.read(cg, pids_current(sandbox, cg)).strip() == b"1"
    for proc in sandbox.procs:
        proc.kill()
        proc.wait()
    sandbox.remove(cg)
    assert kept.read(cg, pids_current(sandbox, cg)) is None  # gone: absent, and nothing kept
    assert len(kept) == 0
    sandbox.create("a")
    assert kept.read(cg, pids_current(sandbox, cg)).strip() == b"0"  # the new cgroup's, on a new descriptor
    assert len(kept) == 1


def test_descriptors_beyond_the_budget_are_read_and_closed(sandbox):
    budget = FdBudget(3)
    kept = KeptFiles(budget)
    cgs = [sandbox.create(f"c{i}") for i in range(6)]
    before = open_fds()
    for cg in cgs:
        assert kept.read(cg, pids_current(sandbox, cg)).strip() == b"0"
    assert len(kept) == 3 and budget.used == 3
    assert open_fds() - before == 3
    sandbox.sleeper(cgs[5])  # not kept: read afresh, right all the same
    assert kept.read(cgs[5], pids_current(sandbox, cgs[5])).strip() == b"1"
    assert len(kept) == 3


def test_the_kept_files_stay_within_their_memory_bound_whatever_the_descriptor_budget(sandbox):
    """Each kept, read cgroup file holds a page of kernel memory charged to the agent's memory cgroup
    (host/selfcgroup.py): ``max_kept`` bounds them even when descriptors are plentiful."""
    budget = FdBudget(1000)
    kept = KeptFiles(budget, max_kept=2)
    cgs = [sandbox.create(f"m{i}") for i in range(5)]
    for cg in cgs:
        assert kept.read(cg, pids_current(sandbox, cg)).strip() == b"0"
    assert len(kept) == 2 and budget.used == 2
    sandbox.sleeper(cgs[4])
    assert kept.read(cgs[4], pids_current(sandbox, cgs[4])).strip() == b"1"  # read afresh, right
    kept.close()


def test_kept_descriptors_give_way_to_a_part_that_needs_them(sandbox):
    budget = FdBudget(3)
    kept = KeptFiles(budget)
    for i in range(3):
        cg = sandbox.create(f"c{i}")
        kept.read(cg, pids_current(sandbox, cg))
    assert budget.take(2)  # an OOM registration: the kept files shed to make room
    assert len(kept) == 1 and budget.used == 3
    assert not budget.take(2, may_shed=False)


def test_the_descriptors_of_cgroups_no_longer_walked_are_closed(sandbox):
    budget = FdBudget(10)
    kept = KeptFiles(budget)
    a, b = sandbox.create("a"), sandbox.create("b")
    before = open_fds()
    kept.read(a, pids_current(sandbox, a))
    kept.read(b, pids_current(sandbox, b))
    assert open_fds() - before == 2
    kept.retain({a})
    assert open_fds() - before == 1 and budget.used == 1
    kept.close()
    assert open_fds() == before and budget.used == 0
