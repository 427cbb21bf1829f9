"""The cgroup writer's planners on values: which files are written, with what, in which order.

``plan_v1`` / ``plan_v2`` do no I/O; the writers only read the facts they need and turn file
names into paths (the last two tests, over a tmp tree).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from cgwatch.cgroup.base import shares_from_weight
from cgwatch.cgroup.writer import (V2_LIMIT_FILES, V1Facts, V1Writer, V2Writer, page_rounded, plan_v1,
                                   plan_v2)
from cgwatch.host.layout import CgroupLayout, Mode
from cgwatch.model import Limits

MiB = 1 << 20
PAGE_4K = 4096

# A container whose kernel limits already equal what it asks for.
SETTLED = Limits(cpu_quota_us=50_000, cpu_period_us=100_000, cpu_shares=1024, cpuset_cpus="0-3",
                 memory_limit_bytes=256 * MiB, memory_swap_limit_bytes=512 * MiB, pids_max=100)
FACTS = V1Facts(cpuset_cpus="0-3", parent_cpuset_cpus="0-7", has_memsw=True)


def v1(target: Limits, current: Limits = SETTLED, facts: V1Facts = FACTS) -> list[tuple[str, str]]:
    return plan_v1(target, current, facts, page_size=PAGE_4K)


# --- v1 -------------------------------------------------------------------------------------------


def test_v1_plans_nothing_when_nothing_differs():
    # An empty plan is how drift is detected.
    assert v1(SETTLED) == []


@pytest.mark.parametrize("asked, held", [
    (104857601, 104857600),        # 100 MiB + 1 byte is held as 100 MiB
    (104857600 + 4095, 104857600),
])
def test_v1_a_memory_limit_within_a_page_of_the_kernels_is_no_drift(asked, held):
    current = replace(SETTLED, memory_limit_bytes=held, memory_swap_limit_bytes=None)
    assert v1(replace(current, memory_limit_bytes=asked), current) == []


def test_v1_writes_the_page_rounded_value():
    current = replace(SETTLED, memory_limit_bytes=104853504, memory_swap_limit_bytes=None)
    target = replace(current, memory_limit_bytes=104857601)
    assert v1(target, current) == [("memory.limit_in_bytes", "104857600")]


@pytest.mark.parametrize("page_size, asked, held", [
    (4096, 100_000_000, 99_999_744),
    (65536, 100_000_000, 99_942_400),   # arm64 / ppc64 kernels with 64 KiB pages
    (4096, None, None),
])
def test_page_rounded_rounds_memory_limits_down_to_whole_pages(page_size, asked, held):
    lim = page_rounded(Limits(memory_limit_bytes=asked, memory_reservation_bytes=asked,
                              memory_swap_limit_bytes=asked, cpu_quota_us=12345), page_size)
    assert (lim.memory_limit_bytes, lim.memory_reservation_bytes, lim.memory_swap_limit_bytes) == (held,) * 3
    assert lim.cpu_quota_us == 12345


@pytest.mark.parametrize("memory, memsw, expected", [
    # Raising memory above the current memsw limit (512 MiB): memsw first.
    (1024 * MiB, 2048 * MiB, [("memory.memsw.limit_in_bytes", str(2048 * MiB)),
                              ("memory.limit_in_bytes", str(1024 * MiB))]),
    # Lifting both: memory would be above memsw, so memsw first.
    (None, None, [("memory.memsw.limit_in_bytes", "-1"), ("memory.limit_in_bytes", "-1")]),
    # Raising memory but staying at or below the current memsw: memory first.
    (384 * MiB, 1024 * MiB, [("memory.limit_in_bytes", str(384 * MiB)),
                             ("memory.memsw.limit_in_bytes", str(1024 * MiB))]),
    # Lowering: memory first, then memsw.
    (128 * MiB, 192 * MiB, [("memory.limit_in_bytes", str(128 * MiB)),
                            ("memory.memsw.limit_in_bytes", str(192 * MiB))]),
], ids=["raise-above-memsw", "lift-both", "raise-within-memsw", "lower"])
def test_v1_memory_and_memsw_are_ordered_so_memory_never_exceeds_memsw(memory, memsw, expected):
    assert v1(replace(SETTLED, memory_limit_bytes=memory, memory_swap_limit_bytes=memsw)) == expected


def test_v1_only_memsw_changing_writes_only_memsw():
    assert v1(replace(SETTLED, memory_swap_limit_bytes=1024 * MiB)) == [
        ("memory.memsw.limit_in_bytes", str(1024 * MiB))]


def test_v1_without_swap_accounting_the_swap_limit_is_skipped():
    no_memsw = replace(FACTS, has_memsw=False)
    target = replace(SETTLED, memory_limit_bytes=1024 * MiB, memory_swap_limit_bytes=2048 * MiB)
    assert v1(target, facts=no_memsw) == [("memory.limit_in_bytes", str(1024 * MiB))]
    assert v1(replace(SETTLED, memory_swap_limit_bytes=None), facts=no_memsw) == []


@pytest.mark.parametrize("asked, held, expected", [
    # Same period: the quota alone.
    ((25_000, 100_000), (50_000, 100_000), [("cpu.cfs_quota_us", "25000")]),
    ((None, 100_000), (50_000, 100_000), [("cpu.cfs_quota_us", "-1")]),
    # The period changes: quota lifted, period set, then the new quota.
    ((5_000, 10_000), (50_000, 100_000),
     [("cpu.cfs_quota_us", "-1"), ("cpu.cfs_period_us", "10000"), ("cpu.cfs_quota_us", "5000")]),
    # No quota now: nothing to lift.
    ((5_000, 10_000), (None, 100_000), [("cpu.cfs_period_us", "10000"), ("cpu.cfs_quota_us", "5000")]),
    # No quota wanted: lifted, and the period set.
    ((None, 10_000), (50_000, 100_000), [("cpu.cfs_quota_us", "-1"), ("cpu.cfs_period_us", "10000")]),
    # No period asked for is the kernel's default, 100 ms.
    ((50_000, None), (50_000, 100_000), []),
], ids=["quota", "lift-quota", "period-and-quota", "period-no-quota-now", "period-no-quota-wanted",
        "default-period"])
def test_v1_lifts_the_quota_before_the_period_changes_then_sets_the_new_quota(asked, held, expected):
    target = replace(SETTLED, cpu_quota_us=asked[0], cpu_period_us=asked[1])
    current = replace(SETTLED, cpu_quota_us=held[0], cpu_period_us=held[1])
    assert v1(target, current) == expected


@pytest.mark.parametrize("asked, held, expected", [
    (None, 1024, []),                          # no shares asked: the default, 1024
    (None, 512, [("cpu.shares", "1024")]),
    (2048, 1024, [("cpu.shares", "2048")]),
])
def test_v1_cpu_shares(asked, held, expected):
    assert v1(replace(SETTLED, cpu_shares=asked), replace(SETTLED, cpu_shares=held)) == expected


@pytest.mark.parametrize("asked, own, parent, expected", [
    ("1", "0-3", "0-7", [("cpuset.cpus", "1")]),
    ("0-3", "0-3", "0-7", []),
    # None asked: v1 has no "inherit", so the parent's set is written.
    (None, "0-3", "0-7", [("cpuset.cpus", "0-7")]),
    (None, "0-7", "0-7", []),
    # Nothing to inherit either (the parent's file unreadable): nothing written.
    (None, "0-3", "", []),
], ids=["asked", "asked-held", "inherit", "inherited", "nothing-to-inherit"])
def test_v1_cpuset_inherits_the_parents_set_when_none_is_asked(asked, own, parent, expected):
    facts = V1Facts(cpuset_cpus=own, parent_cpuset_cpus=parent, has_memsw=True)
    assert v1(replace(SETTLED, cpuset_cpus=asked), facts=facts) == expected


@pytest.mark.parametrize("asked, held, expected", [
    (64 * MiB, None, [("memory.soft_limit_in_bytes", str(64 * MiB))]),
    (None, 64 * MiB, [("memory.soft_limit_in_bytes", "-1")]),
])
def test_v1_memory_reservation(asked, held, expected):
    current = replace(SETTLED, memory_reservation_bytes=held)
    assert v1(replace(SETTLED, memory_reservation_bytes=asked), current) == expected


def test_v1_unlimited_pids_is_max():
    assert v1(replace(SETTLED, pids_max=None)) == [("pids.max", "max")]


def test_v1_writes_cpu_then_memory_then_reservation_shares_cpuset_and_pids():
    target = Limits(cpu_quota_us=20_000, cpu_period_us=100_000, cpu_shares=512, cpuset_cpus="2",
                    memory_limit_bytes=128 * MiB, memory_reservation_bytes=64 * MiB,
                    memory_swap_limit_bytes=192 * MiB, pids_max=50)
    assert [name for name, _ in v1(target)] == [
        "cpu.cfs_quota_us", "memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
        "memory.soft_limit_in_bytes", "cpu.shares", "cpuset.cpus", "pids.max"]


# --- v2 -------------------------------------------------------------------------------------------

# The files of a cgroup whose kernel limits equal SETTLED, as the kernel spells them.
SETTLED_V2 = {"cpu.max": "50000 100000\n", "cpu.weight": "39\n", "cpuset.cpus": "0-3\n",
              "memory.max": f"{256 * MiB}\n", "memory.swap.max": f"{256 * MiB}\n", "memory.low": "0\n",
              "pids.max": "100\n"}


def v2(target: Limits, files: dict[str, str | None] = SETTLED_V2) -> list[tuple[str, str]]:
    return plan_v2(target, files, page_size=PAGE_4K)


def test_v2_plans_nothing_when_nothing_differs():
    assert v2(SETTLED) == []


def test_v2_a_memory_limit_within_a_page_of_the_kernels_is_no_drift():
    assert v2(replace(SETTLED, memory_limit_bytes=256 * MiB + 1, memory_swap_limit_bytes=512 * MiB + 1)) == []


@pytest.mark.parametrize("shares, held, expected", [
    (None, "39\n", [("cpu.weight", "100")]),   # no shares: the kernel's default weight, not 1024 converted
    (None, "100\n", []),
    (1024, "100\n", [("cpu.weight", "39")]),
    (2, "100\n", [("cpu.weight", "1")]),
    (262144, "100\n", [("cpu.weight", "10000")]),
])
def test_v2_cpu_weight_is_100_when_no_shares_are_asked(shares, held, expected):
    assert v2(replace(SETTLED, cpu_shares=shares), {**SETTLED_V2, "cpu.weight": held}) == expected


@pytest.mark.parametrize("weight", [1, 39, 99, 100, 101, 5000, 10000])
def test_v2_a_weight_read_back_as_shares_is_no_change(weight):
    """shares_from_weight then weight_from_shares lands one lower for most weights; a target whose
    shares came from reading the file (every PATCH of another field) must leave the file alone."""
    files = {**SETTLED_V2, "cpu.weight": f"{weight}\n"}
    assert v2(replace(SETTLED, cpu_shares=shares_from_weight(weight)), files) == []


def test_v2_three_writes_of_another_limit_leave_cpu_weight_at_100():
    files = {**SETTLED_V2, "cpu.weight": "100\n"}
    for pids in (10, 20, 30):
        current = replace(SETTLED, cpu_shares=shares_from_weight(int(files["cpu.weight"])), pids_max=pids - 1)
        writes = v2(replace(current, pids_max=pids), files)
        assert writes == [("pids.max", str(pids))]
        files = {**files, **{name: value + "\n" for name, value in writes}}
    assert files["cpu.weight"] == "100\n"


def test_v2_an_inherited_cpuset_stays_inherited():
    """An empty cpuset.cpus is the parent's set (cgroup-v2.rst): no cpuset in the target, no write."""
    assert v2(replace(SETTLED, cpuset_cpus=None), {**SETTLED_V2, "cpuset.cpus": "\n"}) == []
    assert v2(replace(SETTLED, cpuset_cpus=None)) == [("cpuset.cpus", "")]


@pytest.mark.parametrize("memory, memory_swap, expected", [
    (256 * MiB, 1024 * MiB, [("memory.swap.max", str(768 * MiB))]),
    (256 * MiB, 256 * MiB, [("memory.swap.max", "0")]),
    (256 * MiB, None, [("memory.swap.max", "max")]),
    (None, 1024 * MiB, [("memory.max", "max"), ("memory.swap.max", "max")]),
], ids=["swap", "no-swap", "unlimited-swap", "unlimited-memory"])
def test_v2_memory_swap_max_is_swap_only(memory, memory_swap, expected):
    assert v2(replace(SETTLED, memory_limit_bytes=memory, memory_swap_limit_bytes=memory_swap)) == expected


@pytest.mark.parametrize("target, expected", [
    (replace(SETTLED, cpu_quota_us=None), [("cpu.max", "max 100000")]),
    (replace(SETTLED, cpu_quota_us=5_000, cpu_period_us=10_000), [("cpu.max", "5000 10000")]),
    (replace(SETTLED, cpu_period_us=None), []),
    (replace(SETTLED, memory_reservation_bytes=64 * MiB), [("memory.low", str(64 * MiB))]),
    (replace(SETTLED, cpuset_cpus=None), [("cpuset.cpus", "")]),   # v2 "" is inherit
    (replace(SETTLED, pids_max=None), [("pids.max", "max")]),
], ids=["no-quota", "quota-and-period", "default-period", "memory-low", "cpuset-inherit", "pids"])
def test_v2_values(target, expected):
    assert v2(target) == expected


@pytest.mark.parametrize("missing", [None, "absent-key"])
def test_v2_a_missing_controller_file_is_skipped(missing):
    files = dict(SETTLED_V2)
    if missing is None:
        files["cpuset.cpus"] = None
    else:
        del files["cpuset.cpus"]
    assert v2(replace(SETTLED, cpuset_cpus="1", pids_max=7), files) == [("pids.max", "7")]


def test_v2_writes_in_the_order_of_its_limit_files():
    different = {name: "something else\n" for name in V2_LIMIT_FILES}
    assert [name for name, _ in v2(SETTLED, different)] == list(V2_LIMIT_FILES)


# --- the read steps, over a tmp tree ----------------------------------------------------------------


def test_v1_writer_reads_its_facts_and_puts_each_write_in_its_controllers_hierarchy(tmp_path):
    roots = {c: tmp_path / c for c in ("cpu", "cpuset", "memory", "pids")}
    for root in roots.values():
        (root / "box").mkdir(parents=True)
    (roots["cpuset"] / "cpuset.cpus").write_text("0-7\n")
    (roots["cpuset"] / "box" / "cpuset.cpus").write_text("0-3\n")
    writer = V1Writer(CgroupLayout(Mode.V1, v1=roots))
    assert writer.facts("/box") == V1Facts(cpuset_cpus="0-3", parent_cpuset_cpus="0-7", has_memsw=False)
    target = replace(SETTLED, cpu_shares=512, cpuset_cpus=None, memory_limit_bytes=128 * MiB, pids_max=5)
    current = replace(SETTLED, memory_swap_limit_bytes=None)
    assert writer.plan("/box", target, current) == [
        (roots["memory"] / "box" / "memory.limit_in_bytes", str(128 * MiB)),
        (roots["cpu"] / "box" / "cpu.shares", "512"),
        (roots["cpuset"] / "box" / "cpuset.cpus", "0-7"),
        (roots["pids"] / "box" / "pids.max", "5"),
    ]


def test_v2_writer_reads_the_limit_files_that_exist(tmp_path):
    box = tmp_path / "box"
    box.mkdir()
    for name, text in SETTLED_V2.items():
        if name != "cpuset.cpus":
            (box / name).write_text(text)
    writer = V2Writer(CgroupLayout(Mode.V2, unified=tmp_path))
    assert writer.current_files("/box") == {**SETTLED_V2, "cpuset.cpus": None}
    assert writer.plan("/box", replace(SETTLED, cpuset_cpus="1", pids_max=7), SETTLED) == [(box / "pids.max", "7")]
