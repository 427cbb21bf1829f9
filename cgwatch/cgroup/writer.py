"""Writing limits into cgroupfs, v1 and v2, in an order the kernel accepts at every step.

Only the files whose value changes are written, so a refused or no-op request touches nothing.
Each value goes out in one write(2) (cgroup files parse one write at a time) and never holds a
newline: a value like "50000 100000\\nmax" cannot smuggle a second write.

Planning is split in two: a writer reads the few facts a plan needs (``V1Writer.facts``,
``V2Writer.current_files``), then the pure ``plan_v1`` / ``plan_v2`` decide the writes and their
order from values alone (tests/unit/test_writer_plan.py).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import CgroupWriteError
from ..host.fsread import read_text
from ..host.layout import CgroupLayout
from ..model import Limits
from .base import join, parent_path, shares_from_weight

V1_UNLIMITED = "-1"
DEFAULT_PERIOD_US = 100_000
DEFAULT_SHARES = 1024
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# The v2 files a plan compares and writes, in the order it writes them.
V2_LIMIT_FILES = ("cpu.max", "cpu.weight", "cpuset.cpus", "memory.max", "memory.swap.max", "memory.low", "pids.max")

# One planned write: (file name, value). A v1 file's name starts with its controller's
# ("memory.limit_in_bytes": cgroup_file_name() in kernel/cgroup/cgroup.c prefixes it), which
# says which hierarchy it lives in.
Write = tuple[str, str]


def write_value(file: Path, value: str) -> None:
    if "\n" in value or "\0" in value:
        raise ValueError(f"refusing a multi-line value for {file}")
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise CgroupWriteError(str(file), value, exc.errno or 0, exc.strerror or str(exc)) from exc
    try:
        os.write(fd, value.encode())
    except OSError as exc:
        raise CgroupWriteError(str(file), value, exc.errno or 0, exc.strerror or str(exc)) from exc
    finally:
        os.close(fd)


def page_rounded(lim: Limits, page_size: int = PAGE_SIZE) -> Limits:
    """Memory limits as the kernel will hold them: rounded down to whole pages
    (page_counter_memparse in mm/page_counter.c), so a 104857601-byte request is no drift."""
    def down(value: int | None) -> int | None:
        return None if value is None else value - value % page_size
    return replace(lim, memory_limit_bytes=down(lim.memory_limit_bytes),
                   memory_reservation_bytes=down(lim.memory_reservation_bytes),
                   memory_swap_limit_bytes=down(lim.memory_swap_limit_bytes))


def weight_from_shares(shares: int) -> int:
    """v1 cpu.shares [2, 262144] -> v2 cpu.weight [1, 10000], as runc converts them."""
    return 1 + ((shares - 2) * 9999) // 262142


class CgroupWriter(ABC):
    """Makes the kernel's limits for one cgroup equal ``target``, given that they are ``current``."""

    @abstractmethod
    def plan(self, path: str, target: Limits, current: Limits) -> list[tuple[Path, str]]:
        """The (file, value) writes, in order, that would make the kernel hold ``target``.

        Empty when nothing differs: this is also how drift is detected.
        """

    def apply(self, path: str, target: Limits, current: Limits) -> list[str]:
        """Write what differs; return the files written, in order. Raises CgroupWriteError."""
        writes = self.plan(path, target, current)
        for file, value in writes:
            write_value(file, value)
        return [str(f) for f, _ in writes]

    def set_memory_high(self, path: str, value: int | None) -> None:
        """v2 only: memory.high, the throttle-and-reclaim limit below memory.max."""
        raise NotImplementedError("memory.high exists on cgroup v2 only")


@dataclass(frozen=True, slots=True)
class V1Facts:
    """What a v1 plan needs from cgroupfs besides the limits read through CgroupReader."""

    cpuset_cpus: str          # the cgroup's cpuset.cpus, stripped ("" when absent)
    parent_cpuset_cpus: str   # the parent's: what v1 gives a cgroup with no cpuset of its own
    has_memsw: bool           # memory.memsw.limit_in_bytes exists (no swapaccount=0)


def plan_v1(target: Limits, current: Limits, facts: V1Facts, page_size: int = PAGE_SIZE) -> list[Write]:
    """The v1 writes, in order, that make the kernel hold ``target`` given ``current`` and ``facts``.

    Empty when nothing differs: this is also how drift is detected.
    """
    target = page_rounded(target, page_size)
    writes = _v1_cpu(target, current) + _v1_memory(target, current, facts.has_memsw)
    if target.memory_reservation_bytes != current.memory_reservation_bytes:
        writes.append(("memory.soft_limit_in_bytes", _v1(target.memory_reservation_bytes)))
    shares = target.cpu_shares or DEFAULT_SHARES
    if shares != current.cpu_shares:
        writes.append(("cpu.shares", str(shares)))
    writes += _v1_cpuset(target, facts)
    if target.pids_max != current.pids_max:
        writes.append(("pids.max", _max(target.pids_max)))
    return writes


def _v1_cpu(target: Limits, current: Limits) -> list[Write]:
    period = target.cpu_period_us or DEFAULT_PERIOD_US
    quota = target.cpu_quota_us
    if (quota, period) == (current.cpu_quota_us, current.cpu_period_us):
        return []
    if period == current.cpu_period_us:
        return [("cpu.cfs_quota_us", _v1(quota))]
    # The kernel checks quota against period on every write (sched-bwc.rst): lift the quota
    # first, then set the period, then the new quota, so no intermediate pair is invalid.
    out = [("cpu.cfs_quota_us", V1_UNLIMITED)] if current.cpu_quota_us is not None else []
    out.append(("cpu.cfs_period_us", str(period)))
    if quota is not None:
        out.append(("cpu.cfs_quota_us", str(quota)))
    return out


def _v1_cpuset(target: Limits, facts: V1Facts) -> list[Write]:
    # v1 has no "inherit": no cpuset of its own means the parent's CPUs.
    wanted = target.cpuset_cpus or facts.parent_cpuset_cpus
    if wanted and facts.cpuset_cpus != wanted:
        return [("cpuset.cpus", wanted)]
    return []


def _v1_memory(target: Limits, current: Limits, has_memsw: bool) -> list[Write]:
    mem_changed = target.memory_limit_bytes != current.memory_limit_bytes
    swap_changed = target.memory_swap_limit_bytes != current.memory_swap_limit_bytes
    if swap_changed and not has_memsw:
        swap_changed = False  # no swap accounting (swapaccount=0): nothing to write
    mem = ("memory.limit_in_bytes", _v1(target.memory_limit_bytes))
    sw = ("memory.memsw.limit_in_bytes", _v1(target.memory_swap_limit_bytes))
    if not swap_changed:
        return [mem] if mem_changed else []
    if not mem_changed:
        return [sw]
    # memory.limit_in_bytes must stay <= memory.memsw.limit_in_bytes (cgroup-v1/memory.rst 2.5):
    # raise memsw before memory, lower memory before memsw.
    new_mem = _as_big(target.memory_limit_bytes)
    if new_mem > _as_big(current.memory_swap_limit_bytes):
        return [sw, mem]
    return [mem, sw]


def plan_v2(target: Limits, current_files: Mapping[str, str | None], page_size: int = PAGE_SIZE) -> list[Write]:
    """The v2 writes that make the kernel hold ``target``, given each of V2_LIMIT_FILES' text now
    (None, or left out, where the file does not exist: its controller is not enabled; skipped).

    Each file is compared as the kernel holds it, so only what differs is written; no current
    Limits are needed: v2 has no ordering constraint between these files
    (Documentation/admin-guide/cgroup-v2.rst), and every value has one spelling.
    """
    target = page_rounded(target, page_size)
    period = target.cpu_period_us or DEFAULT_PERIOD_US
    desired = [
        ("cpu.max", f"{_max(target.cpu_quota_us)} {period}"),
        ("cpu.weight", _weight(target.cpu_shares, current_files.get("cpu.weight"))),
        ("cpuset.cpus", target.cpuset_cpus or ""),
        ("memory.max", _max(target.memory_limit_bytes)),
        ("memory.swap.max", _max(_swap_only(target))),
        ("memory.low", str(target.memory_reservation_bytes or 0)),
        ("pids.max", _max(target.pids_max)),
    ]
    return [(name, value) for name, value in desired if _differs(current_files.get(name), value)]


class V1Writer(CgroupWriter):
    def __init__(self, layout: CgroupLayout):
        self._roots = layout.v1

    def _file(self, controller: str, path: str, name: str) -> Path:
        return Path(join(self._roots[controller], path)) / name

    def facts(self, path: str) -> V1Facts:
        """Blocking: the cgroup's and its parent's cpuset.cpus, and whether swap is accounted."""
        def cpus(cgroup: str) -> str:
            return (read_text(self._file("cpuset", cgroup, "cpuset.cpus")) or "").strip()
        return V1Facts(cpuset_cpus=cpus(path), parent_cpuset_cpus=cpus(parent_path(path)),
                       has_memsw=self._file("memory", path, "memory.memsw.limit_in_bytes").exists())

    def plan(self, path: str, target: Limits, current: Limits) -> list[tuple[Path, str]]:
        writes = plan_v1(target, current, self.facts(path))
        return [(self._file(name.split(".", 1)[0], path, name), value) for name, value in writes]


class V2Writer(CgroupWriter):
    def __init__(self, layout: CgroupLayout):
        assert layout.unified is not None
        self._root = layout.unified

    def current_files(self, path: str) -> dict[str, str | None]:
        """Blocking: the text of each of V2_LIMIT_FILES (None where the file does not exist)."""
        d = Path(join(self._root, path))
        return {name: read_text(d / name) for name in V2_LIMIT_FILES}

    def plan(self, path: str, target: Limits, current: Limits) -> list[tuple[Path, str]]:
        d = Path(join(self._root, path))
        return [(d / name, value) for name, value in plan_v2(target, self.current_files(path))]

    def set_memory_high(self, path: str, value: int | None) -> None:
        write_value(Path(join(self._root, path)) / "memory.high", _max(value))


def _differs(current: str | None, value: str) -> bool:
    """True when the file exists and holds something else (a missing controller file is skipped)."""
    return current is not None and current.strip() != value


def _weight(shares: int | None, current: str | None) -> str:
    """cpu.weight for ``shares``, compared in the kernel's own unit: shares read back from a weight
    (shares_from_weight) convert to a weight one lower (both divisions truncate), so a target that
    came from reading the file keeps the file's weight, or every write of another limit would
    lower it by one (100 -> 99 -> 98)."""
    if not shares:
        return "100"  # none asked for: the kernel's default weight, not 1024 converted (which is 39)
    if current is not None and current.strip().isdigit() and shares_from_weight(int(current)) == shares:
        return current.strip()
    return str(weight_from_shares(shares))


def _v1(value: int | None) -> str:
    return V1_UNLIMITED if value is None else str(value)


def _max(value: int | None) -> str:
    return "max" if value is None else str(value)


def _as_big(value: int | None) -> float:
    return float("inf") if value is None else value


def _swap_only(target: Limits) -> int | None:
    """v2 limits swap alone; Docker's --memory-swap is memory plus swap."""
    if target.memory_swap_limit_bytes is None or target.memory_limit_bytes is None:
        return None
    return target.memory_swap_limit_bytes - target.memory_limit_bytes


def make_writer(layout: CgroupLayout) -> CgroupWriter:
    return V2Writer(layout) if layout.is_v2 else V1Writer(layout)
