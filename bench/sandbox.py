"""Many Docker-shaped cgroups on this host, each with one sleeping process, removed afterwards.

The shape is what dockerd's cgroupfs driver makes: ``<parent>/docker/<64-hex id>`` in every
hierarchy cgwatch walks (on a v1 hybrid host: cpu, cpuacct, cpuset, memory, pids, blkio and the
controller-less ``unified`` tree). The parent and the cleanup are the tests' sandbox,
tests/support/cgroups.py, under the name cgwatch-bench-*; the sleepers (joined between fork and
exec) come from one keeper process a batch at a time (sleepers.py), so 10,000 take seconds, not
minutes.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import repo_path  # noqa: F401  (the repository root on sys.path: tests.support)
from cgwatch.host.layout import Mode, detect_layout
from sleepers import Sleepers
from tests.support.cgroups import CgroupSandbox

SLEEP_SECONDS = "86400"  # killed by PID at cleanup; the long duration only bounds a hard crash
PREFIX = "cgwatch-bench-"
BATCH = 500  # containers made, then their sleepers started, at a time


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
        # A new v1 cpuset has no CPUs and no memory nodes and refuses tasks. Writing them into each
        # container costs a rebuild of the scheduling domains that walks every cpuset (0.5 ms a
        # write at 2000 containers, growing with N); with clone_children set on the parent, mkdir
        # copies the parent's (Documentation/admin-guide/cgroup-v1/cgroups.rst, "clone_children").
        cpuset = self.layout.v1.get("cpuset")
        if cpuset is not None:
            (cpuset / self.path("docker").lstrip("/") / "cgroup.clone_children").write_text("1")
        self._sleepers: Sleepers | None = None

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

    def _make_container(self) -> str:
        """One container's directory in every hierarchy (its parents exist), with its limits."""
        cg = self.path(f"docker/{secrets.token_hex(32)}")
        self._created.add(cg)  # before mkdir: a half-made container is removed at cleanup too
        for root in self.roots:
            os.mkdir(f"{root}{cg}")
        self._apply(cg, shape_for(len(self.containers)))
        self.containers.append(cg)
        return cg

    def add_containers(self, count: int) -> None:
        """Create ``count`` more containers, each with its limits and one sleeping process."""
        if self._sleepers is None:
            self._sleepers = Sleepers(SLEEP_SECONDS)
        pending = 0
        while count > 0:
            batch = [self._make_container() for _ in range(min(BATCH, count))]
            if not self.read(batch[0], "cpuset.cpus").strip():
                raise RuntimeError(f"{batch[0]}: cpuset.cpus is empty: clone_children did not apply")
            if pending:  # the previous batch's sleepers, forked while this batch's cgroups were made
                self._sleepers.wait()
            self._sleepers.submit([[f"{root}{cg}/cgroup.procs" for root in self.roots] for cg in batch])
            pending = 1
            count -= len(batch)
        if pending:
            self._sleepers.wait()

    def cleanup(self) -> list[str]:
        """Kill and reap every sleeper, then remove every cgroup; returns what could not be removed."""
        if self._sleepers is not None and not self._sleepers.stop():
            self._kill_what_is_left()
        self._sleepers = None
        self.containers.clear()
        return super().cleanup()

    def _kill_what_is_left(self) -> None:
        """The keeper did not confirm (it was killed): its sleepers, orphaned now, are still in our
        containers. Only this bench puts processes there, so each PID listed is one of its own."""
        for cg in self.containers:
            try:
                pids = self.read(cg, "cgroup.procs").split()
            except FileNotFoundError:
                continue
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        print(f"sandbox: the sleeper keeper did not answer; killed what was left in /{self.name}",
              file=sys.stderr)


def stale_parents(root: Path = Path("/sys/fs/cgroup")) -> list[Path]:
    """Bench parents left by an earlier run that was killed hard (whose PID no longer runs)."""
    found = []
    for hierarchy in detect_layout(root).hierarchy_roots():
        for d in hierarchy.glob(f"{PREFIX}*"):
            pid = d.name[len(PREFIX):].split("-", 1)[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                found.append(d)
    return found


@contextmanager
def uninterruptible() -> Iterator[None]:
    """A bench's cleanup: Ctrl-C and SIGTERM are ignored until it ends (pressed again, they would
    leave cgroups, sleepers or an agent behind); Ctrl-C works again afterwards."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def remove_sandbox(sandbox: BenchCgroups | None, tmp: Path) -> list[str]:
    """The sandbox's sleepers and cgroups, and the bench's temporary directory, removed; the
    cgroup directories that could not be are returned, and named on stderr."""
    left = sandbox.cleanup() if sandbox is not None else []
    shutil.rmtree(tmp, ignore_errors=True)
    if left:
        print(f"warning: could not remove {len(left)} cgroup dirs, e.g. {left[0]}", file=sys.stderr, flush=True)
    return left


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
