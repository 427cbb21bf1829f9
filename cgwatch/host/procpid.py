"""Parsers of /proc/<pid> files (proc(5)): each a pure function over a file's text.

Table-tested against files captured from real kernels (tests/unit/test_inspect.py); the readers
that open the files over a proc root live with the report that uses them (cgwatch/views/inspect.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# Linux's full 32-bit identity map: the initial user namespace (user_namespaces(7)).
IDENTITY_MAP_COUNT = 4294967295
_OCTAL = re.compile(r"\\([0-7]{3})")


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


def parse_uptime(text: str) -> float:
    """/proc/uptime: "seconds-since-boot idle-seconds"."""
    return float(text.split()[0])
