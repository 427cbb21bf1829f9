"""Many Docker-shaped cgroups on this host, each with one sleeping process, removed afterwards.

The shape is what dockerd's cgroupfs driver makes: ``<parent>/docker/<64-hex id>`` in every
hierarchy cgwatch walks (on a v1 hybrid host: cpu, cpuacct, cpuset, memory, pids, blkio and the
controller-less ``unified`` tree). The parent, the sleepers (joined between fork and exec) and the
cleanup are the tests' sandbox, tests/support/cgroups.py, under the name cgwatch-bench-*.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import repo_path  # noqa: F401  (the repository root on sys.path: tests.support)
from cgwatch.host.layout import Mode, detect_layout
from tests.support.cgroups import CgroupSandbox

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


class BenchCgroups(CgroupSandbox):
    """A uniquely named parent cgroup (cgwatch-bench-*) in every hierarchy, and the containers
    created under its ``docker`` child."""

    def __init__(self, root: Path = Path("/sys/fs/cgroup")):
        if detect_layout(root).mode is Mode.V2:
            raise SystemExit("bench/sandbox.py builds v1/hybrid cgroups; this host is cgroup v2")
        super().__init__(root, prefix=PREFIX)
        self.containers: list[str] = []  # cgroup paths ("/<parent>/docker/<id>")
        self.create("docker")

    def _apply(self, cg: str, shape: Shape) -> None:
        # Order matters in v1: memory.limit before memsw (memsw >= memory at every step).
        for name, value in (("cpu.cfs_quota_us", shape.cpu_quota_us),
                            ("cpu.shares", shape.cpu_shares),
                            ("memory.limit_in_bytes", shape.memory_limit_bytes),
                            ("memory.memsw.limit_in_bytes", shape.memory_swap_limit_bytes),
                            ("memory.soft_limit_in_bytes", shape.memory_soft_limit_bytes),
                            ("pids.max", shape.pids_max)):
            if value is not None:
                self.write(cg, name, str(value))

    def add_containers(self, count: int) -> None:
        """Create ``count`` more containers, each with its limits and one sleeping process."""
        for _ in range(count):
            cg = self.create(f"docker/{secrets.token_hex(32)}")
            self._apply(cg, shape_for(len(self.containers)))
            self.containers.append(cg)
            self.spawn(cg, ["sleep", SLEEP_SECONDS], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def cleanup(self) -> list[str]:
        """Kill and reap every sleeper, then remove every cgroup; returns what could not be removed."""
        self.containers.clear()
        return super().cleanup()


def stale_parents(root: Path = Path("/sys/fs/cgroup")) -> list[Path]:
    """Bench parents left by an earlier run that was killed hard (whose PID no longer runs)."""
    found = []
    for hierarchy in detect_layout(root).hierarchy_roots():
        for d in hierarchy.glob(f"{PREFIX}*"):
            pid = d.name[len(PREFIX):].split("-", 1)[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                found.append(d)
    return found


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def start_as_root(name: str) -> bool:
    """A bench's first step: False (with the reason on stderr) unless it can create cgroups; then
    SIGTERM unwinds like Ctrl-C, so the cgroups and the agent are cleaned up either way."""
    if os.geteuid() != 0:
        print(f"{name}: needs root to create cgroups", file=sys.stderr)
        return False
    signal.signal(signal.SIGTERM, _interrupt)
    return True
