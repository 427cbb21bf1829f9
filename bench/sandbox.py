"""Many Docker-shaped cgroups on this host, each with one sleeping process, removed afterwards.

The shape is what dockerd's cgroupfs driver makes: ``<parent>/docker/<64-hex id>`` in every
hierarchy cgwatch walks (on a v1 hybrid host: cpu, cpuacct, cpuset, memory, pids, blkio and the
controller-less ``unified`` tree). Each sleeper joins its cgroup between fork and exec, because
v1 memory does not move charges with a migrated task (tests/support/cgroups.py does the same).

Cleanup order (kill, reap, rmdir deepest first in every hierarchy, retry on EBUSY) follows the
kernel's rule that a cgroup with tasks cannot be removed (Documentation/admin-guide/cgroup-v1/
cgroups.rst, "rmdir").
"""

from __future__ import annotations

import errno
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cgwatch.host.layout import CgroupLayout, Mode, detect_layout

SLEEP_SECONDS = "86400"  # killed by PID at cleanup; the long duration only bounds a hard crash
PREFIX = "cgwatch-bench-"


@dataclass(frozen=True, slots=True)
class Shape:
    """The limits one container gets; ``None`` leaves the kernel's default (unlimited)."""

    cpu_quota_us: int | None = None
    cpu_shares: int | None = None
    memory_limit_bytes: int | None = None
    memory_soft_limit_bytes: int | None = None
    memory_swap_limit_bytes: int | None = None
    pids_max: int | None = None


def shape_for(i: int) -> Shape:
    """A realistic mix: a third with --cpus=0.5, half with --memory=256m, a quarter with
    --pids-limit=64, some with --memory-reservation, --memory-swap and --cpu-shares."""
    mib = 1024 * 1024
    return Shape(
        cpu_quota_us=50_000 if i % 3 == 0 else None,
        cpu_shares=512 if i % 5 == 0 else None,
        memory_limit_bytes=256 * mib if i % 2 == 0 else None,
        memory_soft_limit_bytes=128 * mib if i % 4 == 0 else None,
        memory_swap_limit_bytes=512 * mib if i % 6 == 0 else None,
        pids_max=64 if i % 4 == 1 else None,
    )


class BenchCgroups:
    """A uniquely named parent cgroup in every hierarchy, and the containers created under it."""

    def __init__(self, root: Path = Path("/sys/fs/cgroup")):
        self.layout: CgroupLayout = detect_layout(root)
        if self.layout.mode is Mode.V2:
            raise SystemExit("bench/sandbox.py builds v1/hybrid cgroups; this host is cgroup v2")
        self.roots: list[Path] = self.layout.hierarchy_roots()
        self.name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        self.procs: list[subprocess.Popen] = []
        self.containers: list[str] = []  # cgroup paths ("/<parent>/docker/<id>")
        self._created: list[str] = []
        self._mkdir(f"/{self.name}")
        self._mkdir(f"/{self.name}/docker")

    def _mkdir(self, cg: str) -> None:
        for root in self.roots:
            d = root / cg.lstrip("/")
            d.mkdir()
            if root == self.layout.v1.get("cpuset"):
                # A new v1 cpuset has no CPUs and no memory nodes and refuses tasks until given some.
                for f in ("cpuset.cpus", "cpuset.mems"):
                    (d / f).write_text((d.parent / f).read_text())
        self._created.append(cg)

    def _write(self, controller: str, cg: str, name: str, value: int) -> None:
        (self.layout.v1[controller] / cg.lstrip("/") / name).write_text(str(value))

    def _apply(self, cg: str, shape: Shape) -> None:
        # Order matters in v1: memory.limit before memsw (memsw >= memory at every step).
        if shape.cpu_quota_us is not None:
            self._write("cpu", cg, "cpu.cfs_quota_us", shape.cpu_quota_us)
        if shape.cpu_shares is not None:
            self._write("cpu", cg, "cpu.shares", shape.cpu_shares)
        if shape.memory_limit_bytes is not None:
            self._write("memory", cg, "memory.limit_in_bytes", shape.memory_limit_bytes)
        if shape.memory_swap_limit_bytes is not None:
            self._write("memory", cg, "memory.memsw.limit_in_bytes", shape.memory_swap_limit_bytes)
        if shape.memory_soft_limit_bytes is not None:
            self._write("memory", cg, "memory.soft_limit_in_bytes", shape.memory_soft_limit_bytes)
        if shape.pids_max is not None:
            self._write("pids", cg, "pids.max", shape.pids_max)

    def _spawn_sleeper(self, cg: str) -> None:
        procs_files = [str(root / cg.lstrip("/") / "cgroup.procs") for root in self.roots]

        def join() -> None:  # runs in the child between fork and exec
            pid = str(os.getpid()).encode()
            for f in procs_files:
                fd = os.open(f, os.O_WRONLY)
                try:
                    os.write(fd, pid)
                finally:
                    os.close(fd)

        self.procs.append(subprocess.Popen(["sleep", SLEEP_SECONDS], preexec_fn=join,
                                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))

    def add_containers(self, count: int) -> None:
        """Create ``count`` more containers, each with its limits and one sleeping process."""
        for _ in range(count):
            i = len(self.containers)
            cg = f"/{self.name}/docker/{secrets.token_hex(32)}"
            self._mkdir(cg)
            self.containers.append(cg)
            self._apply(cg, shape_for(i))
            self._spawn_sleeper(cg)

    def cleanup(self) -> list[str]:
        """Kill and reap every sleeper, then remove every cgroup; returns what could not be removed."""
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for proc in self.procs:
            proc.wait()
        self.procs.clear()
        left: list[str] = []
        for cg in sorted(self._created, key=lambda c: c.count("/"), reverse=True):
            for root in self.roots:
                d = root / cg.lstrip("/")
                if not _rmdir_retrying(d):
                    left.append(str(d))
        self._created.clear()
        self.containers.clear()
        return left


def _rmdir_retrying(d: Path, attempts: int = 100, pause_s: float = 0.02) -> bool:
    """rmdir, retrying EBUSY briefly: the kernel frees a cgroup just after its last task exits."""
    for _ in range(attempts):
        try:
            os.rmdir(d)
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            time.sleep(pause_s)
    return False


def stale_parents(root: Path = Path("/sys/fs/cgroup")) -> list[Path]:
    """Bench parents left by an earlier run that was killed hard (whose PID no longer runs)."""
    found = []
    for hierarchy in detect_layout(root).hierarchy_roots():
        for d in hierarchy.glob(f"{PREFIX}*"):
            pid = d.name[len(PREFIX):].split("-", 1)[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                found.append(d)
    return found
