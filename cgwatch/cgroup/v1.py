"""cgroup v1: one hierarchy per controller (Documentation/admin-guide/cgroup-v1/).

Files read: cpuacct.usage, cpuacct.stat, cpu.stat, cpu.cfs_{quota,period}_us,
cpu.shares, memory.{usage,max_usage,limit,soft_limit}_in_bytes, memory.memsw.*, memory.stat,
memory.failcnt, memory.oom_control, pids.{current,max},
blkio.throttle.io_service{d,_bytes}{_recursive,},
cpuset.cpus, cgroup.procs, tasks. On a hybrid host PSI comes from the controller-less v2 tree.
"""

from __future__ import annotations

import os

from ..host.cgroupfs import parse_blkio_throttle, parse_cfs_quota, parse_cpuacct_stat, parse_v1_limit
from ..host.fsread import read_text
from ..host.layout import CgroupLayout
from ..host.parse import FlatKeys, parse_cpu_list, parse_int, parse_max_int
from ..model import CpuStats, IoDevice, Limits, MemoryStats, Pressure, Tasks
from ..host.keptfiles import KeptFiles
from .base import (CgroupReader, count_lines, dir_identity, join, kept_reader, parent_path, read_pids,
                   read_pressure_dir)


# The memory.stat keys memory_from_v1 reads: the rest of the file is not parsed.
V1_MEMORY_STAT = FlatKeys(*(f"{prefix}{key}" for prefix in ("", "total_")
                            for key in ("inactive_file", "rss", "cache", "mapped_file", "pgfault", "pgmajfault")))
V1_CPU_STAT = FlatKeys("nr_periods", "nr_throttled", "throttled_time")
# "oom_kill" appeared in memory.oom_control in Linux 4.13.
V1_OOM_CONTROL = FlatKeys("oom_kill")


def memory_from_v1(usage: int | None, stat: dict[str, int], memsw_usage: int | None) -> MemoryStats:
    """Derive cAdvisor's memory figures from v1 files.

    cAdvisor uses the hierarchical ``total_*`` keys of memory.stat; the working set is usage
    minus inactive file pages (what the kernel can drop without I/O), never below zero.
    """
    def stat_key(name: str) -> int | None:
        return stat.get(f"total_{name}", stat.get(name))

    inactive_file = stat_key("inactive_file")
    working_set = None
    if usage is not None:
        working_set = max(0, usage - (inactive_file or 0))
    swap = None
    if memsw_usage is not None and usage is not None:
        swap = max(0, memsw_usage - usage)
    # Page faults as cAdvisor's container_memory_failures_total reads them: pgfault/pgmajfault
    # are the cgroup's own (scope "container"), total_* its subtree's (scope "hierarchy")
    # (Documentation/admin-guide/cgroup-v1/memory.rst 5.2; cAdvisor container/libcontainer).
    return MemoryStats(usage_bytes=usage, working_set_bytes=working_set,
                       rss_bytes=stat_key("rss"), cache_bytes=stat_key("cache"),
                       mapped_file_bytes=stat_key("mapped_file"), swap_bytes=swap,
                       pgfault=stat.get("pgfault"), pgmajfault=stat.get("pgmajfault"),
                       hierarchy_pgfault=stat.get("total_pgfault"),
                       hierarchy_pgmajfault=stat.get("total_pgmajfault"))


class V1Reader(CgroupReader):
    def __init__(self, layout: CgroupLayout, files: KeptFiles | None = None):
        """``files``: the files that change between reads are re-read on kept descriptors."""
        self._roots = {ctrl: str(root) for ctrl, root in layout.v1.items()}
        self._unified = str(layout.unified) if layout.unified is not None else None
        self._kept = kept_reader(files)

    def _dir(self, controller: str, path: str) -> str | None:
        root = self._roots.get(controller)
        return None if root is None else join(root, path)

    def _file(self, controller: str, path: str, name: str) -> str | None:
        d = self._dir(controller, path)
        return None if d is None else f"{d}/{name}"

    def _read(self, controller: str, path: str, name: str) -> str | None:
        f = self._file(controller, path, name)
        return None if f is None else read_text(f)

    def _changing(self, controller: str, path: str, name: str) -> bytes | None:
        """A file whose contents change between reads (usage, stat): on a kept descriptor."""
        f = self._file(controller, path, name)
        return None if f is None else self._kept(path, f)

    def _changing_int(self, d: str | None, path: str, name: str) -> int | None:
        data = None if d is None else self._kept(path, f"{d}/{name}")
        return None if data is None else parse_int(data)

    def exists(self, path: str) -> bool:
        return any(os.path.isdir(join(root, path)) for root in self._roots.values())

    def cpu(self, path: str) -> CpuStats | None:
        usage = self._changing("cpuacct", path, "cpuacct.usage")
        cpu_stat = self._changing("cpu", path, "cpu.stat")
        if usage is None and cpu_stat is None:
            return None
        stats = CpuStats(usage_ns=parse_int(usage) if usage is not None else None)
        # The user/system split from cpuacct.stat (USER_HZ ticks), as cAdvisor reads it: one file
        # where cpuacct.usage_user + usage_sys would be two, for 10 ms resolution on a split that
        # dashboards only ever rate over minutes.
        acct = self._changing("cpuacct", path, "cpuacct.stat")
        if acct is not None:
            stats.user_ns, stats.system_ns = parse_cpuacct_stat(acct)
        if cpu_stat is not None:
            fields = V1_CPU_STAT.parse(cpu_stat)
            stats.periods = fields.get("nr_periods")
            stats.throttled_periods = fields.get("nr_throttled")
            stats.throttled_ns = fields.get("throttled_time")
        return stats

    def memory(self, path: str) -> MemoryStats | None:
        usage = self._changing("memory", path, "memory.usage_in_bytes")
        if usage is None:
            return None
        stat = self._changing("memory", path, "memory.stat") or b""
        memsw = self._changing("memory", path, "memory.memsw.usage_in_bytes")
        stats = memory_from_v1(parse_int(usage), V1_MEMORY_STAT.parse(stat),
                               parse_int(memsw) if memsw is not None else None)
        d = self._dir("memory", path)
        assert d is not None
        stats.max_usage_bytes = self._changing_int(d, path, "memory.max_usage_in_bytes")
        stats.failcnt = self._changing_int(d, path, "memory.failcnt")
        oom = self._kept(path, f"{d}/memory.oom_control")
        if oom is not None:
            stats.oom_kills = V1_OOM_CONTROL.parse(oom).get("oom_kill")
        return stats

    def limits(self, path: str) -> Limits:
        lim = Limits()
        quota = self._read("cpu", path, "cpu.cfs_quota_us")
        period = self._read("cpu", path, "cpu.cfs_period_us")
        shares = self._read("cpu", path, "cpu.shares")
        lim.cpu_quota_us = parse_cfs_quota(quota) if quota is not None else None
        lim.cpu_period_us = parse_int(period) if period is not None else None
        lim.cpu_shares = parse_int(shares) if shares is not None else None
        cpus = self._read("cpuset", path, "cpuset.cpus")
        lim.cpuset_cpus = cpus.strip() if cpus is not None else None
        mem = self._read("memory", path, "memory.limit_in_bytes")
        lim.memory_limit_bytes = parse_v1_limit(mem) if mem is not None else None
        soft = self._read("memory", path, "memory.soft_limit_in_bytes")
        lim.memory_reservation_bytes = parse_v1_limit(soft) if soft is not None else None
        memsw = self._read("memory", path, "memory.memsw.limit_in_bytes")
        lim.memory_swap_limit_bytes = parse_v1_limit(memsw) if memsw is not None else None
        pids = self._read("pids", path, "pids.max")
        lim.pids_max = parse_max_int(pids) if pids is not None else None
        return lim

    def tasks(self, path: str) -> Tasks:
        d = self._dir("pids", path) or self._dir("cpu", path)
        if d is None:
            return Tasks()
        pids_dir = self._dir("pids", path)
        return Tasks(processes=count_lines(f"{d}/cgroup.procs"), threads=count_lines(f"{d}/tasks"),
                     pids_current=self._changing_int(pids_dir, path, "pids.current"))

    def pids_current(self, path: str) -> int | None:
        return self._changing_int(self._dir("pids", path), path, "pids.current")

    def threads(self, path: str) -> int | None:
        pids_dir = self._dir("pids", path)
        current = self._changing_int(pids_dir, path, "pids.current")
        if current is not None:
            return current
        d = pids_dir or self._dir("cpu", path)
        return None if d is None else count_lines(f"{d}/tasks")

    def io(self, path: str) -> list[IoDevice]:
        d = self._dir("blkio", path)
        if d is None:
            return []
        # The _recursive files count the cgroup and its descendants, so /docker or a pod's cgroup
        # reports its containers' I/O; cAdvisor reads these (Documentation/admin-guide/
        # cgroup-v1/blkio-controller.rst). Where a kernel lacks them: the cgroup's own counts.
        for suffix in ("_recursive", ""):
            data = self._kept(path, f"{d}/blkio.throttle.io_service_bytes{suffix}")
            if data is not None:
                return parse_blkio_throttle(data, self._kept(path, f"{d}/blkio.throttle.io_serviced{suffix}"))
        return []

    def procs(self, path: str) -> list[int]:
        for controller in ("pids", "cpu", "memory"):
            d = self._dir(controller, path)
            if d is not None:
                pids = read_pids(f"{d}/cgroup.procs")
                if pids is not None:
                    return pids
        return []

    def pressure(self, path: str) -> dict[str, Pressure]:
        # Hybrid hosts: the v2 tree mirrors the v1 paths and carries PSI files (Linux 4.20+).
        if self._unified is None:
            return {}
        return read_pressure_dir(join(self._unified, path), path, self._kept)

    def allowed_cpus(self, path: str) -> frozenset[int] | None:
        text = self._read("cpuset", parent_path(path), "cpuset.cpus")
        return parse_cpu_list(text) if text is not None else None

    def identity(self, path: str) -> tuple[int, float] | None:
        # Runtimes create a container's directories in every hierarchy within milliseconds:
        # the first hierarchy that has it is precise enough, and one stat instead of six.
        for root in self._roots.values():
            ident = dir_identity(join(root, path))
            if ident is not None:
                return ident
        return None
