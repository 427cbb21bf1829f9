"""What is inside a container, from /proc: the JSON of ``GET /api/v1/containers/{ref}/processes``
and ``.../inspect`` (its processes, namespaces, user-namespace ID maps and root filesystem).

Thin readers over a proc root that is passed in, over the pure parsers of cgwatch/host/procpid.py.
Works for every runtime: only the cgroup's process list and /proc are read.
"""

from __future__ import annotations

import errno
import os
import pwd
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..cgroup.base import CgroupReader
from ..discovery.inventory import Container
from ..host.fsread import read_link, read_text
from ..host.procfs import parse_ns_link
from ..host.procpid import (IdRange, Mount, ProcStat, ProcStatus, is_identity_map, parse_cmdline, parse_id_map,
                            parse_mountinfo, parse_overlay_options, parse_proc_stat, parse_proc_status, parse_uptime,
                            root_mount)

# The namespaces `docker inspect` and lsns(8) talk about; "time" is left out (runtimes do not set it).
NAMESPACES = ("pid", "net", "mnt", "uts", "ipc", "user", "cgroup")


# ---------------------------------------------------------------------------------------------
# The JSON pieces, pure


def rootfs_json(mount: Mount | None) -> dict[str, Any] | None:
    if mount is None:
        return None
    out: dict[str, Any] = {"fstype": mount.fstype, "source": mount.source, "root": mount.root,
                           "device": mount.device, "lowerdir": None, "upperdir": None, "workdir": None}
    if mount.fstype == "overlay":
        out.update(parse_overlay_options(mount.super_options))
    return out


def pick_init(statuses: dict[int, ProcStatus]) -> int | None:
    """The process to read a container's namespaces from: its init (PID 1 in the innermost PID
    namespace, as `docker inspect`'s State.Pid), else the lowest PID. A runtime's helper left in
    the cgroup (a shim, an unshare wrapper) sits in the outer namespace and is passed over."""
    inits = [pid for pid, s in statuses.items() if len(s.nspid) > 1 and s.nspid[-1] == 1]
    if inits:
        return min(inits, key=lambda pid: (-len(statuses[pid].nspid), pid))
    return min(statuses) if statuses else None


def compare_namespaces(container: dict[str, int | None], host: dict[str, int | None]) -> dict[str, Any]:
    """Per namespace: its inode and whether the host has the same one (None when either is unreadable)."""
    out = {}
    for ns in NAMESPACES:
        inode, host_inode = container.get(ns), host.get(ns)
        shared = None if inode is None or host_inode is None else inode == host_inode
        out[ns] = {"inode": inode, "shared_with_host": shared}
    return out


def cpu_percent_between(before_ticks: int, after_ticks: int, elapsed_s: float, clk_tck: int) -> float | None:
    """CPU % of one CPU (100 = one full CPU, as top and `docker stats`) over an interval."""
    if elapsed_s <= 0 or after_ticks < before_ticks:
        return None
    return round((after_ticks - before_ticks) / clk_tck / elapsed_s * 100, 1)


def cpu_percent_since_start(stat: ProcStat, uptime_s: float, clk_tck: int) -> float | None:
    """CPU % of one CPU averaged over the process's life (as `ps`'s %CPU)."""
    alive_s = uptime_s - stat.starttime_ticks / clk_tck
    if alive_s <= 0:
        return None
    return round(stat.cpu_ticks / clk_tck / alive_s * 100, 1)


# ---------------------------------------------------------------------------------------------
# Readers over a proc root


@dataclass(frozen=True, slots=True)
class ProcessSample:
    stat: ProcStat
    status: ProcStatus
    argv: tuple[str, ...]

    @property
    def command(self) -> str:
        # ps shows a process without arguments (kernel thread, zombie) as its [comm].
        return " ".join(self.argv) if self.argv else f"[{self.stat.comm}]"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The container's processes at one moment (monotonic clock, for interval CPU %)."""

    taken_at_s: float
    processes: dict[int, ProcessSample]


@lru_cache(maxsize=1024)
def user_name(uid: int) -> str:
    """The name of a UID in the agent's passwd; the number when it has none (a container's own users)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class ProcInspector:
    """Reads one container's processes and the namespaces, maps and root of its init from a proc root."""

    def __init__(self, proc_root: Path, reader: CgroupReader):
        self.root = proc_root
        self.reader = reader
        self.clk_tck = os.sysconf("SC_CLK_TCK")
        self.page_size = os.sysconf("SC_PAGE_SIZE")

    def _text(self, pid: int | str, name: str) -> str | None:
        return read_text(self.root / str(pid) / name)

    def process(self, pid: int) -> ProcessSample | None:
        """One process, or None when it exited while being read."""
        stat, status, cmdline = self._text(pid, "stat"), self._text(pid, "status"), self._text(pid, "cmdline")
        if stat is None or status is None or cmdline is None:
            return None
        return ProcessSample(parse_proc_stat(stat), parse_proc_status(status), tuple(parse_cmdline(cmdline)))

    def snapshot(self, container: Container) -> Snapshot:
        """Blocking: every process of the container's cgroup (cgroup.procs), read now."""
        taken = time.monotonic()
        found = {}
        for pid in self.reader.procs(container.path):
            sample = self.process(pid)
            if sample is not None:
                found[pid] = sample
        return Snapshot(taken, found)

    def uptime_s(self) -> float:
        text = read_text(self.root / "uptime")
        return parse_uptime(text) if text is not None else 0.0

    def ns_links(self, pid: int | str) -> tuple[dict[str, int | None], str | None]:
        """Inodes of a task's namespaces, and the errno name when its links cannot be read
        (proc(5): reading them needs PTRACE_MODE_READ_FSCREDS on the task)."""
        out: dict[str, int | None] = {}
        failure = None
        for ns in NAMESPACES:
            try:
                target = read_link(self.root / str(pid) / "ns" / ns)
            except OSError as exc:
                target, failure = None, errno.errorcode.get(exc.errno or 0, str(exc.errno))
            out[ns] = parse_ns_link(target) if target is not None else None
            if target is None and failure is None:
                failure = "ENOENT"
        return out, failure

    def host_namespaces(self) -> tuple[dict[str, int | None], dict[str, Any]]:
        """The host's namespaces: PID 1's; where PID 1's links cannot be read (EACCES under a
        hardened or foreign init), the agent's own, which is then said in the reference."""
        pid1, failure = self.ns_links(1)
        if failure is None:
            return pid1, {"process": "pid1", "note": None}
        own, _ = self.ns_links("self")
        return own, {"process": "self",
                     "note": f"PID 1's namespace links are unreadable ({failure}): compared with the agent's own "
                             "/proc/self/ns; a namespace the agent does not share with the host is misreported"}

    def id_maps(self, pid: int) -> dict[str, Any] | None:
        uid, gid = self._text(pid, "uid_map"), self._text(pid, "gid_map")
        if uid is None or gid is None:
            return None
        uids, gids = parse_id_map(uid), parse_id_map(gid)
        return {"uid": [_range_json(r) for r in uids], "gid": [_range_json(r) for r in gids],
                "identity": is_identity_map(uids) and is_identity_map(gids)}

    def rootfs(self, pid: int) -> dict[str, Any] | None:
        text = self._text(pid, "mountinfo")
        return rootfs_json(root_mount(parse_mountinfo(text))) if text is not None else None

    def details(self, container: Container) -> dict[str, Any]:
        """Blocking: namespaces, ID maps and root filesystem of the container's init process."""
        statuses = {}
        for pid in self.reader.procs(container.path):
            text = self._text(pid, "status")
            if text is not None:
                statuses[pid] = parse_proc_status(text)
        pid = pick_init(statuses)
        if pid is None:
            return {"inspected_pid": None, "namespaces": None, "host_reference": None, "id_maps": None,
                    "rootfs": None, "note": "the container has no process to read namespaces from"}
        inodes, _ = self.ns_links(pid)
        host, reference = self.host_namespaces()
        return {"inspected_pid": pid, "namespaces": compare_namespaces(inodes, host), "host_reference": reference,
                "id_maps": self.id_maps(pid), "rootfs": self.rootfs(pid), "note": None}

    def report(self, container: Container, first: Snapshot | None, second: Snapshot,
               names: Callable[[int], str] = user_name) -> dict[str, Any]:
        """The processes JSON: CPU % over the interval between two snapshots, or since each
        process started when there is no first snapshot."""
        interval = second.taken_at_s - first.taken_at_s if first is not None else None
        uptime = self.uptime_s() if first is None else 0.0
        rows = []
        for pid, p in sorted(second.processes.items()):
            if first is not None:
                cpu = _interval_cpu(first.processes.get(pid), p, interval or 0.0, self.clk_tck)
            else:
                cpu = cpu_percent_since_start(p.stat, uptime, self.clk_tck)
            uid = p.status.effective_uid
            rows.append({"pid": pid, "ppid": p.stat.ppid, "user": names(uid) if uid is not None else None,
                         "uid": uid, "state": p.stat.state, "cpu_percent": cpu,
                         "rss_bytes": p.stat.rss_pages * self.page_size, "threads": p.stat.num_threads,
                         "command": p.command})
        return {"id": container.id, "name": container.display_name, "cgroup": container.path,
                "cpu_percent_basis": "interval" if first is not None else "since_start",
                "interval_seconds": round(interval, 3) if interval is not None else None,
                "processes": rows}


def _interval_cpu(before: ProcessSample | None, after: ProcessSample, elapsed_s: float, clk_tck: int) -> float | None:
    # A PID reused between the snapshots is another process (another start time): no rate.
    if before is None or before.stat.starttime_ticks != after.stat.starttime_ticks:
        return None
    return cpu_percent_between(before.stat.cpu_ticks, after.stat.cpu_ticks, elapsed_s, clk_tck)


def _range_json(r: IdRange) -> dict[str, int]:
    return {"inside": r.inside, "outside": r.outside, "count": r.count}
