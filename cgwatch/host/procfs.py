"""Pure parsers and thin readers for the /proc files cgwatch needs (proc(5))."""

from __future__ import annotations

import re
from pathlib import Path

from ..model import NetDev
from .fsread import read_link, read_text

_NS_LINK = re.compile(r"^[a-z_]+:\[(\d+)\]$")


def parse_net_dev(text: str) -> list[NetDev]:
    """/proc/<pid>/net/dev: two header lines, then "iface: rx(8 fields) tx(8 fields)"."""
    out = []
    for line in text.splitlines()[2:]:
        name, colon, rest = line.partition(":")
        if not colon:
            continue
        f = [int(x) for x in rest.split()]
        if len(f) < 16:
            continue
        out.append(NetDev(interface=name.strip(), rx_bytes=f[0], rx_packets=f[1], rx_errors=f[2],
                          rx_dropped=f[3], tx_bytes=f[8], tx_packets=f[9], tx_errors=f[10],
                          tx_dropped=f[11]))
    return out


def parse_ns_link(target: str) -> int | None:
    """A namespace link's target "net:[4026531992]" -> its inode number."""
    m = _NS_LINK.match(target)
    return int(m.group(1)) if m else None


def parse_stat_cpus(text: str) -> int:
    """/proc/stat: the number of "cpuN" lines (online CPUs), as machine_cpu_cores."""
    return sum(1 for line in text.splitlines() if line.startswith("cpu") and line[3:4].isdigit())


def parse_meminfo_total(text: str) -> int | None:
    """/proc/meminfo "MemTotal: N kB" -> bytes."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def parse_vmstat_oom_kills(text: str) -> int | None:
    """/proc/vmstat "oom_kill N": every OOM kill on the host since boot, whatever cgroup the victim
    was in (Linux 4.13+; node_exporter exports it as node_vmstat_oom_kill). None on older kernels."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return None


def parse_partitions(text: str) -> dict[str, str]:
    """/proc/partitions "major minor #blocks name" -> {"MAJ:MIN": "/dev/name"}."""
    out = {}
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) == 4 and f[0].isdigit():
            out[f"{f[0]}:{f[1]}"] = f"/dev/{f[3]}"
    return out


class ProcFS:
    """Readers over a proc mount point (like procfs.NewFS); every method tolerates exited tasks."""

    def __init__(self, root: Path):
        self.root = root

    def net_dev(self, pid: int) -> list[NetDev] | None:
        text = read_text(self.root / str(pid) / "net" / "dev")
        return parse_net_dev(text) if text is not None else None

    def ns_inode(self, pid: int | str, ns: str) -> int | None:
        """The inode of a task's namespace; None when the task is gone or ptrace rules hide it
        (proc(5): the ns links need PTRACE_MODE_READ_FSCREDS on the task)."""
        try:
            target = read_link(self.root / str(pid) / "ns" / ns)
        except PermissionError:
            return None
        return parse_ns_link(target) if target is not None else None

    def host_net_ns(self) -> int | None:
        """The host's network namespace: PID 1's, or where PID 1 is hidden from us, our own."""
        found = self.ns_inode(1, "net")
        return found if found is not None else self.ns_inode("self", "net")

    def machine(self) -> tuple[int | None, int | None]:
        """(online CPUs, memory bytes) of the machine."""
        stat = read_text(self.root / "stat")
        meminfo = read_text(self.root / "meminfo")
        cpus = parse_stat_cpus(stat) if stat is not None else None
        return cpus, parse_meminfo_total(meminfo) if meminfo is not None else None

    def oom_kills(self) -> int | None:
        """OOM kills on the whole host since boot (/proc/vmstat), None where the kernel has no count."""
        text = read_text(self.root / "vmstat")
        return parse_vmstat_oom_kills(text) if text is not None else None

    def partitions(self) -> dict[str, str]:
        """Block device names by "MAJ:MIN"; empty when /proc/partitions is unreadable."""
        text = read_text(self.root / "partitions")
        return parse_partitions(text) if text is not None else {}
