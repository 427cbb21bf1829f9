"""The reader interface every cgroup version implements, and the helpers they share."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from ..host.cgroupfs import parse_pressure
from ..host.fsread import is_absent, read_bytes
from ..host.keptfiles import KeptFiles
from ..host.parse import parse_int
from ..model import CpuStats, IoDevice, Limits, MemoryStats, Pressure, Tasks

PSI_RESOURCES = ("cpu", "memory", "io")


class CgroupReader(ABC):
    """Reads one cgroup, named by its path relative to the hierarchy root ("/docker/<id>").

    Every method returns None (or an empty value) for data the kernel does not offer or for a
    cgroup that vanished mid-read: cAdvisor's ``GetStats`` contract, without the failed scrape.
    """

    _kept: ReadFn

    def keep_files(self, files: KeptFiles | None) -> None:
        """From now on re-read the files that change on ``files``' kept descriptors (None: open
        and close each time). Set on the host's one reader rather than building a second one, so
        whatever wraps ``host.reader`` (a test's fault injection) wraps every read.
        """
        self._kept = kept_reader(files)

    @abstractmethod
    def exists(self, path: str) -> bool: ...

    @abstractmethod
    def cpu(self, path: str) -> CpuStats | None: ...

    @abstractmethod
    def memory(self, path: str) -> MemoryStats | None: ...

    @abstractmethod
    def limits(self, path: str) -> Limits: ...

    @abstractmethod
    def tasks(self, path: str) -> Tasks:
        """Processes and threads in the cgroup itself (``cgroup.procs``; v1 ``tasks``, v2
        ``cgroup.threads``) and, with the pids controller, ``pids.current`` (its whole subtree)."""

    @abstractmethod
    def threads(self, path: str) -> int | None:
        """Threads of the cgroup's subtree: ``pids.current`` (cAdvisor's ThreadsCurrent); without
        the pids controller, and at the root (no ``pids.current``), the cgroup's own threads."""

    def pids_current(self, path: str) -> int | None:
        """``pids.current`` alone (the cgroup's subtree), None without the pids controller."""
        return self.tasks(path).pids_current

    @abstractmethod
    def io(self, path: str) -> list[IoDevice]: ...

    @abstractmethod
    def procs(self, path: str) -> list[int]: ...

    @abstractmethod
    def pressure(self, path: str) -> dict[str, Pressure]: ...

    @abstractmethod
    def allowed_cpus(self, path: str) -> frozenset[int] | None:
        """The CPUs the cgroup's parent may use: the bound for a new cpuset (None if unknown)."""

    @abstractmethod
    def identity(self, path: str) -> tuple[int, float] | None:
        """The cgroup directory's (inode, ctime), None when it is gone: the inode tells a cgroup
        made again at the same path from the one before it (limitcache.py keys on it)."""

    def created(self, path: str) -> float | None:
        """When the cgroup directory was created (epoch seconds), as cAdvisor's start time."""
        ident = self.identity(path)
        return None if ident is None else ident[1]


def join(root: str | Path, path: str) -> str:
    """The directory of cgroup ``path`` ("/docker/<id>") under hierarchy ``root``, as a string.

    Plain string concatenation: pathlib's joins were a quarter of a scrape's time (bench/PROFILE.md).
    """
    rel = path.rstrip("/")
    return f"{root}{rel}" if rel else str(root)


def read_int(path: str) -> int | None:
    data = read_bytes(path)
    return None if data is None else parse_int(data)


def read_pids(path: str) -> list[int] | None:
    """``cgroup.procs`` / ``tasks``: one PID per line."""
    data = read_bytes(path)
    if data is None:
        return None
    return [int(pid) for pid in data.split()]


def count_lines(path: str) -> int | None:
    data = read_bytes(path)
    return None if data is None else len(data.split())


def dir_identity(path: str) -> tuple[int, float] | None:
    """(inode, ctime) of a directory, None when it is gone."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if is_absent(exc):
            return None
        raise
    return st.st_ino, st.st_ctime


# read(cgroup path, file path) -> its bytes or None: a kept-open descriptor's pread
# (host/keptfiles.py) or open/read/close. Bytes, undecoded: the parsers take them as they are.
ReadFn = Callable[[str, str], "bytes | None"]


def read_fresh(cgroup: str, path: str) -> bytes | None:
    """A ReadFn that keeps nothing open."""
    return read_bytes(path)


def kept_reader(files: KeptFiles | None) -> ReadFn:
    return files.read if files is not None else read_fresh


def read_pressure_dir(directory: str, cgroup: str = "", read: ReadFn = read_fresh) -> dict[str, Pressure]:
    """PSI for cpu, memory and io from one v2 cgroup directory (absent files are skipped)."""
    out: dict[str, Pressure] = {}
    for resource in PSI_RESOURCES:
        data = read(cgroup, f"{directory}/{resource}.pressure")
        if data:
            out[resource] = parse_pressure(data)
    return out


def shares_from_weight(weight: int) -> int:
    """cpu.weight [1, 10000] back to v1 cpu.shares [2, 262144].

    The inverse of the conversion runc and the kernel's own docs use when mapping shares to
    weight (runc's ConvertCPUSharesToCgroupV2Value), as cAdvisor reports it. Integer division in
    both directions makes it approximate: --cpu-shares=1024 is weight 39 and reads back as 998.
    """
    return 2 + ((weight - 1) * 262142) // 9999


def parent_path(path: str) -> str:
    """The parent cgroup's path ("/" for a top-level cgroup and for the root itself)."""
    return "/".join(path.rstrip("/").split("/")[:-1]) or "/"
