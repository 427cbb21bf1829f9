"""The agent's own process_* metrics, as client_python's ProcessCollector names them, without
listing its descriptors.

client_python counts open descriptors with ``len(os.listdir('/proc/self/fd'))``. cgwatch keeps
about 15 descriptors open per container (host/keptfiles.py), so that listing was 6 % of a
collection at 1000 containers, and it grows with them. Since Linux 6.2, ``stat`` of
/proc/<pid>/fd gives the number of open descriptors as its size (fs/proc/fd.c,
proc_fd_getattr); an older kernel gives 0 there, and the directory is listed as before.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def open_fds(fd_dir: str = "/proc/self/fd") -> int:
    """Descriptors open in the process whose fd directory this is."""
    size = os.stat(fd_dir).st_size
    return size if size > 0 else len(os.listdir(fd_dir))  # 0: a kernel before 6.2 (never 0 with stdio)


def parse_stat(raw: bytes) -> tuple[float, float, float, float]:
    """(cpu seconds, virtual bytes, resident bytes, start ticks after boot) from /proc/<pid>/stat:
    the fields after the command's closing parenthesis (proc(5); the command may hold spaces)."""
    parts = raw.rsplit(b")", 1)[-1].split()
    return ((int(parts[11]) + int(parts[12])) / _TICKS, float(parts[20]), float(parts[21]) * _PAGE, float(parts[19]))


def max_fds(raw: bytes) -> float | None:
    """The soft limit of open files from /proc/<pid>/limits."""
    for line in raw.splitlines():
        if line.startswith(b"Max open files"):
            return float(line.split()[3])
    return None


class SelfProcessCollector:
    """process_cpu_seconds_total, process_{virtual,resident}_memory_bytes, process_start_time_seconds,
    process_open_fds, process_max_fds of this process."""

    def __init__(self, proc: str = "/proc"):
        self._self = os.path.join(proc, "self")
        with open(os.path.join(proc, "stat"), "rb") as f:
            self._boot = next(float(line.split()[1]) for line in f if line.startswith(b"btime "))

    def collect(self) -> Iterator[Metric]:
        with open(os.path.join(self._self, "stat"), "rb") as f:
            cpu, virtual, resident, start = parse_stat(f.read())
        yield CounterMetricFamily("process_cpu_seconds", "Total user and system CPU time spent in seconds.",
                                  value=cpu)
        yield GaugeMetricFamily("process_virtual_memory_bytes", "Virtual memory size in bytes.", value=virtual)
        yield GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.", value=resident)
        yield GaugeMetricFamily("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                                value=start / _TICKS + self._boot)
        yield GaugeMetricFamily("process_open_fds", "Number of open file descriptors.",
                                value=open_fds(os.path.join(self._self, "fd")))
        with open(os.path.join(self._self, "limits"), "rb") as f:
            limit = max_fds(f.read())
        if limit is not None:
            yield GaugeMetricFamily("process_max_fds", "Maximum number of open file descriptors.", value=limit)
