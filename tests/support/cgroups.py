"""Real cgroups for tests and bench/: a uniquely named parent on every hierarchy, removed afterwards.

Works on this project's v1 hybrid CI host (one directory per controller hierarchy, plus the
controller-less unified tree) and in the cgroup v2 guest (one tree; controllers enabled level by
level through cgroup.subtree_control, per Documentation/admin-guide/cgroup-v2.rst "Enabling and
Disabling"). Processes are started already inside their cgroup, because v1 memory does not move
charges with a migrated task.

Cleanup order (kill, reap, rmdir deepest first in every hierarchy, retry on EBUSY) follows the
kernel's rule that a cgroup with tasks or children cannot be removed
(Documentation/admin-guide/cgroup-v1/cgroups.rst, "rmdir").
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from cgwatch.host.layout import CgroupLayout, Mode, detect_layout

from .procjoin import write_pid

V2_CONTROLLERS = "+cpu +cpuset +memory +pids +io"


class CgroupSandbox:
    """``<prefix><pid>-<8 hex>`` in every hierarchy, the cgroups made under it and the processes
    started in them; ``cleanup()`` removes them all."""

    def __init__(self, root: Path = Path("/sys/fs/cgroup"), prefix: str = "cgwatch-test-"):
        self.root = root
        self.layout: CgroupLayout = detect_layout(root)
        self.roots: list[Path] = self.layout.hierarchy_roots()
        self.name = f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.procs: list[subprocess.Popen] = []
        self._created: set[str] = set()
        self._mkdir("")

    @property
    def is_v2(self) -> bool:
        return self.layout.mode is Mode.V2

    def path(self, rel: str = "") -> str:
        """The cgroup path cgwatch sees ("/cgwatch-test-.../docker/<id>")."""
        return f"/{self.name}/{rel}".rstrip("/")

    def _mkdir(self, rel: str, leaf: bool = False) -> None:
        cg = self.path(rel)
        for root in self.roots:
            d = root / cg.lstrip("/")
            if d.exists():
                continue
            d.mkdir()
            if d.parent.name != "" and (d.parent / "cpuset.mems").exists() and not self.is_v2:
                # v1 cpuset: a new cgroup starts with no CPUs and no memory nodes, and refuses tasks.
                for f in ("cpuset.cpus", "cpuset.mems"):
                    (d / f).write_text((d.parent / f).read_text())
        if self.is_v2 and not leaf:
            self._enable_controllers(cg)
        self._created.add(cg)

    def _enable_controllers(self, cg: str) -> None:
        d = self.root / cg.lstrip("/")
        available = set((d / "cgroup.controllers").read_text().split())
        wanted = [c for c in V2_CONTROLLERS.split() if c[1:] in available]
        if wanted:
            (d / "cgroup.subtree_control").write_text(" ".join(wanted))

    def create(self, rel: str) -> str:
        """Create ``rel`` (and its parents) under the sandbox; returns the cgroup path."""
        parts = rel.strip("/").split("/")
        for i in range(1, len(parts)):
            self._mkdir("/".join(parts[:i]))
        # Leaves hold processes, and v2 forbids processes in a cgroup that enables controllers for
        # children ("no internal process" rule): a new leaf enables none, as a runtime's container
        # cgroup. (Enabling and then disabling them would also change the leaf directory's ctime,
        # which is how cgwatch tells a cgroup from one re-created at its path.) A leaf that existed
        # already keeps what it had.
        leaf = "/".join(parts)
        existed = (self.root / self.path(leaf).lstrip("/")).exists() if self.is_v2 else True
        self._mkdir(leaf, leaf=True)
        if self.is_v2 and existed:
            control = self.root / self.path(rel).lstrip("/") / "cgroup.subtree_control"
            enabled = control.read_text().split()
            if enabled:
                control.write_text(" ".join(f"-{c}" for c in enabled))
        return self.path(rel)

    def file(self, cg: str, name: str) -> Path:
        """The host path of a cgroup file, in whichever hierarchy carries its controller."""
        if self.is_v2:
            return self.root / cg.lstrip("/") / name
        controller = name.split(".", 1)[0]
        if controller == "cgroup" or controller == "tasks":
            controller = "pids"
        hierarchy = self.layout.v1.get(controller)
        if hierarchy is None:
            raise KeyError(f"no v1 hierarchy for {name}")
        return hierarchy / cg.lstrip("/") / name

    def write(self, cg: str, name: str, value: str) -> None:
        self.file(cg, name).write_text(value)

    def read(self, cg: str, name: str) -> str:
        return self.file(cg, name).read_text()

    def spawn(self, cg: str, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start ``argv`` inside cgroup ``cg`` (joined between fork and exec)."""
        files = [f for f in (root / cg.lstrip("/") / "cgroup.procs" for root in self.roots) if f.exists()]

        proc = subprocess.Popen(argv, preexec_fn=lambda: write_pid(files), **kwargs)
        self.procs.append(proc)
        return proc

    def busy_loop(self, cg: str) -> subprocess.Popen:
        return self.spawn(cg, [sys.executable, "-c", "while True: pass"])

    def sleeper(self, cg: str) -> subprocess.Popen:
        return self.spawn(cg, ["sleep", "600"])

    def memory_hog(self, cg: str, mib: int, hold_s: float = 600) -> subprocess.Popen:
        """Allocates and touches ``mib`` MiB after joining, then holds it."""
        code = (f"import time; b = bytearray({mib} * 1024 * 1024)\n"
                f"for i in range(0, len(b), 4096): b[i] = 1\n"
                f"print('allocated', flush=True); time.sleep({hold_s})")
        return self.spawn(cg, [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)

    def remove(self, cg: str) -> list[str]:
        """Remove cgroup ``cg`` (empty of tasks) from every hierarchy, as a runtime does at exit;
        returns the directories still there after a moment of EBUSY."""
        return [str(d) for d in (root / cg.lstrip("/") for root in self.roots) if not _rmdir_retrying(d)]

    def cleanup(self) -> list[str]:
        """Kill and reap every process started here, then remove every cgroup, deepest first;
        returns the directories that could not be removed."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in self.procs:
            proc.wait()
        self.procs.clear()
        left = [d for cg in sorted(self._created, key=lambda c: c.count("/"), reverse=True) for d in self.remove(cg)]
        self._created.clear()
        return left


def _rmdir_retrying(d: Path, timeout_s: float = 2.5, pause_s: float = 0.02) -> bool:
    """rmdir, retrying EBUSY for ``timeout_s``: the kernel frees a cgroup just after its last task
    exits. True when ``d`` is gone; any other error is raised."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            d.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause_s)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll ``predicate`` until it returns a truthy value; return it, or raise AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def have_real_cgroups(root: Path = Path("/sys/fs/cgroup")) -> str | None:
    """None when tests can create cgroups here; otherwise what is missing."""
    if os.geteuid() != 0:
        return "needs root to create cgroups"
    try:
        layout = detect_layout(root)
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable here"
        return f"no usable cgroup filesystem at {root}: {exc}"
    if layout.mode is not Mode.V2 and "memory" not in layout.v1:
        return "needs the v1 memory controller"
    return None


__all__ = ["CgroupSandbox", "wait_for", "have_real_cgroups"]
