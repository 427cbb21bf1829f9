"""What is inside a container, from /proc: its processes, namespaces, user-namespace ID maps and root filesystem.

Pure ``parse_*`` functions over a file's text (table-tested against files captured from real
kernels), thin readers over a proc root that is passed in (proc(5)), and the JSON shapes of
``GET /api/v1/containers/{ref}/processes`` and ``.../inspect``. Works for every runtime: only the
cgroup's process list and /proc are read.
"""

from __future__ import annotations

import errno
import os
import pwd
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .cgroup.base import CgroupReader
from .discovery.inventory import Container
from .host.fsread import read_link, read_text
from .host.procfs import parse_ns_link

# The namespaces `docker inspect` and lsns(8) talk about; "time" is left out (runtimes do not set it).
NAMESPACES = ("pid", "net", "mnt", "uts", "ipc", "user", "cgroup")
# Linux's full 32-bit identity map: the initial user namespace (user_namespaces(7)).
IDENTITY_MAP_COUNT = 4294967295
_OCTAL = re.compile(r"\\([0-7]{3})")


# ---------------------------------------------------------------------------------------------
# Pure parsers


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of /proc/<pid>/stat that `ps` shows (proc(5) numbers them from 1)."""

    pid: int
    comm: str
    state: str
    ppid: int
    utime_ticks: int
    stime_ticks: int
    num_threads: int
    starttime_ticks: int   # since boot, in clock ticks
    rss_pages: int

    @property
    def cpu_ticks(self) -> int:
        return self.utime_ticks + self.stime_ticks


def parse_proc_stat(text: str) -> ProcStat:
    """/proc/<pid>/stat. comm (field 2) is in parentheses and may itself hold spaces and ')',
    so the line is split at the last ')' (as procps does)."""
    head, paren, rest = text.rpartition(")")
    pid_text, open_paren, comm = head.partition(" (")
    if not paren or not open_paren:
        raise ValueError(f"not a /proc/<pid>/stat line: {text[:80]!r}")
    f = rest.split()  # f[0] is field 3 (state): field n is f[n - 3]
    return ProcStat(pid=int(pid_text), comm=comm, state=f[0], ppid=int(f[1]), utime_ticks=int(f[11]),
                    stime_ticks=int(f[12]), num_threads=int(f[17]), starttime_ticks=int(f[19]),
                    rss_pages=int(f[21]))


@dataclass(frozen=True, slots=True)
class ProcStatus:
    effective_uid: int | None
    # NSpid: the task's PID in each PID namespace it is visible in, outermost first (Linux 4.1+).
    nspid: tuple[int, ...]


def parse_proc_status(text: str) -> ProcStatus:
    """/proc/<pid>/status: the effective UID (``Uid:`` real, effective, saved, fs) and ``NSpid``."""
    uid: int | None = None
    nspid: tuple[int, ...] = ()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "Uid":
            fields = value.split()
            uid = int(fields[1]) if len(fields) > 1 else None
        elif key == "NSpid":
            nspid = tuple(int(x) for x in value.split())
    return ProcStatus(effective_uid=uid, nspid=nspid)


def parse_cmdline(text: str) -> list[str]:
    """/proc/<pid>/cmdline: NUL-separated arguments (empty for kernel threads and zombies)."""
    return text.split("\0")[:-1] if text.endswith("\0") else ([text] if text else [])


@dataclass(frozen=True, slots=True)
class IdRange:
    """One line of uid_map/gid_map: IDs [inside, inside+count) map to [outside, outside+count)."""

    inside: int
    outside: int
    count: int


def parse_id_map(text: str) -> list[IdRange]:
    """/proc/<pid>/uid_map, gid_map (user_namespaces(7)): "inside outside count" per line."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3:
            out.append(IdRange(int(fields[0]), int(fields[1]), int(fields[2])))
    return out


def is_identity_map(ranges: Sequence[IdRange]) -> bool:
    """The initial user namespace's map "0 0 4294967295": IDs are the host's own."""
    return list(ranges) == [IdRange(0, 0, IDENTITY_MAP_COUNT)]


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of /proc/<pid>/mountinfo (proc(5)); paths are relative to the task's root."""

    mount_id: int
    parent_id: int
    device: str          # major:minor
    root: str            # the directory of the filesystem mounted here (a bind mount's source)
    mount_point: str
    mount_options: str   # per-mount (rw, nosuid, relatime, ...)
    fstype: str
    source: str
    super_options: str   # per-superblock; overlay's lowerdir, upperdir, workdir are here


def unescape_octal(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo (fs/proc_namespace.c, mangle())."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), text) if "\\" in text else text


def parse_mountinfo(text: str) -> list[Mount]:
    """/proc/<pid>/mountinfo: "id parent maj:min root mountpoint opts [optional...] - fstype source superopts"."""
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        f, r = left.split(), right.split()
        if len(f) < 6 or len(r) < 2:
            continue
        out.append(Mount(mount_id=int(f[0]), parent_id=int(f[1]), device=f[2], root=unescape_octal(f[3]),
                         mount_point=unescape_octal(f[4]), mount_options=f[5], fstype=r[0],
                         source=unescape_octal(r[1]), super_options=r[2] if len(r) > 2 else ""))
    return out


def root_mount(mounts: Iterable[Mount]) -> Mount | None:
    """The task's root filesystem: the mount at "/"; the last one listed when mounts are stacked
    there (the one on top, which is what the task sees)."""
    found = None
    for m in mounts:
        if m.mount_point == "/":
            found = m
    return found


def _split_layers(value: str) -> list[str]:
    """overlay's lowerdir "a:b:c", top layer first; a ':' inside a name is escaped as '\\:'."""
    layers, current, i = [], [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            current.append(value[i + 1])
            i += 2
            continue
        if value[i] == ":":
            layers.append("".join(current))
            current = []
        else:
            current.append(value[i])
        i += 1
    layers.append("".join(current))
    return [layer for layer in layers if layer]


def parse_overlay_options(super_options: str) -> dict[str, Any]:
    """overlay's lowerdir (list, top layer first), upperdir and workdir from its superblock options
    (Documentation/filesystems/overlayfs.rst). Linux 6.8+ may list layers one by one as "lowerdir+"."""
    out: dict[str, Any] = {"lowerdir": [], "upperdir": None, "workdir": None}
    for option in super_options.split(","):
        key, eq, value = option.partition("=")
        if not eq:
            continue
        value = unescape_octal(value)
        if key == "lowerdir":
            out["lowerdir"].extend(_split_layers(value))
        elif key == "lowerdir+":
            out["lowerdir"].append(value)
        elif key in ("upperdir", "workdir"):
            out[key] = value
    return out


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


def parse_uptime(text: str) -> float:
    """/proc/uptime: "seconds-since-boot idle-seconds"."""
    return float(text.split()[0])


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
