"""cgroup v2: one unified tree (Documentation/admin-guide/cgroup-v2.rst).

Files read: cpu.stat, cpu.max, cpu.weight, memory.{current,max,high,low,peak,stat,events},
memory.swap.{current,max}, pids.{current,max}, io.stat, cpuset.cpus{,.effective},
{cpu,memory,io}.pressure, cgroup.procs, cgroup.threads.
"""

from __future__ import annotations

import os

from ..host.cgroupfs import parse_cpu_max, parse_cpu_stat, parse_io_stat
from ..host.fsread import read_text
from ..host.layout import CgroupLayout
from ..host.parse import FlatKeys, parse_cpu_list, parse_int, parse_max_int
from ..model import CpuStats, IoDevice, Limits, MemoryStats, Pressure, Tasks
from ..host.keptfiles import KeptFiles
from .base import (CgroupReader, count_lines, dir_identity, join, kept_reader, parent_path, read_int, read_pids,
                   read_pressure_dir, shares_from_weight)


# The memory.stat and memory.events keys memory_from_v2 reads: the rest is not parsed.
V2_MEMORY_STAT = FlatKeys("inactive_file", "anon", "file", "file_mapped", "pgfault", "pgmajfault")
V2_MEMORY_EVENTS = FlatKeys("max", "oom_kill")


def memory_from_v2(current: int, stat: dict[str, int], events: dict[str, int],
                   swap_current: int | None, peak: int | None) -> MemoryStats:
    """cAdvisor's memory figures from v2 files: rss=anon, cache=file, failcnt=events "max"."""
    inactive_file = stat.get("inactive_file", 0)
    return MemoryStats(usage_bytes=current, max_usage_bytes=peak,
                       working_set_bytes=max(0, current - inactive_file),
                       rss_bytes=stat.get("anon"), cache_bytes=stat.get("file"),
                       mapped_file_bytes=stat.get("file_mapped"), swap_bytes=swap_current,
                       failcnt=events.get("max"), oom_kills=events.get("oom_kill"),
                       # v2 memory.stat counts the whole subtree (cgroup-v2.rst "memory.stat"),
                       # so cAdvisor sets both failure scopes from the same pgfault/pgmajfault.
                       pgfault=stat.get("pgfault"), pgmajfault=stat.get("pgmajfault"),
                       hierarchy_pgfault=stat.get("pgfault"), hierarchy_pgmajfault=stat.get("pgmajfault"))


class V2Reader(CgroupReader):
    def __init__(self, layout: CgroupLayout, files: KeptFiles | None = None):
        """``files``: the files that change between reads are re-read on kept descriptors."""
        assert layout.unified is not None
        self._root = str(layout.unified)
        self._kept = kept_reader(files)

    def _changing_int(self, path: str, file: str) -> int | None:
        data = self._kept(path, file)
        return None if data is None else parse_int(data)

    def _dir(self, path: str) -> str:
        return join(self._root, path)

    def exists(self, path: str) -> bool:
        return os.path.isdir(self._dir(path))

    def cpu(self, path: str) -> CpuStats | None:
        data = self._kept(path, f"{self._dir(path)}/cpu.stat")
        return parse_cpu_stat(data) if data is not None else None

    def memory(self, path: str) -> MemoryStats | None:
        d = self._dir(path)
        current = self._changing_int(path, f"{d}/memory.current")
        if current is None:
            return None
        stat = V2_MEMORY_STAT.parse(self._kept(path, f"{d}/memory.stat") or b"")
        events = V2_MEMORY_EVENTS.parse(self._kept(path, f"{d}/memory.events") or b"")
        # memory.peak exists since Linux 5.19.
        return memory_from_v2(current, stat, events, self._changing_int(path, f"{d}/memory.swap.current"),
                              self._changing_int(path, f"{d}/memory.peak"))

    def limits(self, path: str) -> Limits:
        d = self._dir(path)
        lim = Limits()
        cpu_max = read_text(f"{d}/cpu.max")
        if cpu_max is not None:
            lim.cpu_quota_us, lim.cpu_period_us = parse_cpu_max(cpu_max)
        weight = read_int(f"{d}/cpu.weight")
        lim.cpu_shares = shares_from_weight(weight) if weight is not None else None
        cpus = read_text(f"{d}/cpuset.cpus")
        # Empty means "the parent's" (cgroup-v2.rst "cpuset.cpus"): no set of its own, like any
        # other limit not set, so a write of another limit leaves it inheriting instead of pinning
        # it to what the parent allows now. cpuset.cpus.effective says what that is.
        lim.cpuset_cpus = (cpus.strip() or None) if cpus is not None else None
        mem_max = read_text(f"{d}/memory.max")
        lim.memory_limit_bytes = parse_max_int(mem_max) if mem_max is not None else None
        low = read_text(f"{d}/memory.low")
        low_bytes = parse_max_int(low) if low is not None else None
        lim.memory_reservation_bytes = low_bytes or None  # 0 is the default: no reservation
        high = read_text(f"{d}/memory.high")
        lim.memory_high_bytes = parse_max_int(high) if high is not None else None
        swap_max = read_text(f"{d}/memory.swap.max")
        if swap_max is not None and lim.memory_limit_bytes is not None:
            swap = parse_max_int(swap_max)
            # Docker's --memory-swap is memory plus swap; v2 limits swap alone.
            lim.memory_swap_limit_bytes = None if swap is None else lim.memory_limit_bytes + swap
        pids = read_text(f"{d}/pids.max")
        lim.pids_max = parse_max_int(pids) if pids is not None else None
        return lim

    def tasks(self, path: str) -> Tasks:
        d = self._dir(path)
        return Tasks(processes=count_lines(f"{d}/cgroup.procs"), threads=count_lines(f"{d}/cgroup.threads"),
                     pids_current=self._changing_int(path, f"{d}/pids.current"))

    def pids_current(self, path: str) -> int | None:
        return self._changing_int(path, f"{self._dir(path)}/pids.current")

    def threads(self, path: str) -> int | None:
        d = self._dir(path)
        current = self._changing_int(path, f"{d}/pids.current")
        return current if current is not None else count_lines(f"{d}/cgroup.threads")

    def io(self, path: str) -> list[IoDevice]:
        data = self._kept(path, f"{self._dir(path)}/io.stat")
        return parse_io_stat(data) if data is not None else []

    def procs(self, path: str) -> list[int]:
        return read_pids(f"{self._dir(path)}/cgroup.procs") or []

    def pressure(self, path: str) -> dict[str, Pressure]:
        return read_pressure_dir(self._dir(path), path, self._kept)

    def allowed_cpus(self, path: str) -> frozenset[int] | None:
        text = read_text(f"{self._dir(parent_path(path))}/cpuset.cpus.effective")
        return parse_cpu_list(text) if text is not None else None

    def identity(self, path: str) -> tuple[int, float] | None:
        return dir_identity(self._dir(path))

