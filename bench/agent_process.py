"""The real agent (`python -m cgwatch serve`) as a child process, and what /proc says about it."""

from __future__ import annotations

import http.client
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import repo_path  # noqa: F401  (the repository root on sys.path: tests.support)
from tests.support.env import REPO

CLK_TCK = os.sysconf("SC_CLK_TCK")
# /process_api*: the shell running this bench lives there, never touch it. /cgwatch-test-*: the
# real-cgroup tests other people run on this host come and go mid-run; left out of both the agent
# and the floor so every run measures the same set (the agent still lists the top level).
IGNORE = ("/process_api*", "/cgwatch-test-*")


# deploy/cgwatch.service's LimitNOFILE (soft and hard): the agent raises its soft limit to the hard
# one and keeps ~17 descriptors a container, so the hard limit decides how many containers' files
# stay open (deploy/README.md "File descriptors"). Benches give their agent the same.
DEPLOYED_NOFILE = 1 << 20


def nofile_limits(pid: int | str = "self") -> tuple[int, int]:
    """(soft, hard) RLIMIT_NOFILE of a process, from /proc/<pid>/limits ("Max open files")."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = (resource.RLIM_INFINITY if v == "unlimited" else int(v) for v in line.split()[3:5])
                return soft, hard
    raise RuntimeError(f"/proc/{pid}/limits has no \"Max open files\" line")


def raise_own_nofile(n: int) -> tuple[int, int]:
    """Raise this process's soft and hard RLIMIT_NOFILE to ``n`` where they are lower, so that
    floor.py, which keeps one descriptor per cgroup file, does not run out at 10,000 containers.
    Raising the hard limit needs CAP_SYS_RESOURCE (setrlimit(2)), which root may lack (this CI
    host's sandbox drops it: the hard limit stays at 20,000); then only the soft one is raised.
    Returns the limits now in force."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY or hard >= n else n
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, target))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def nofile_for_agent(requested: int) -> int:
    """The RLIMIT_NOFILE to start the agent with: ``requested``, or this process's hard limit when
    that is as far as it could be raised (a child gets no more than its parent may set). Raises this
    process's own limits on the way, and says on stderr when the agent gets less than asked."""
    _, hard = raise_own_nofile(requested)
    if hard == resource.RLIM_INFINITY or requested <= hard:
        return requested
    print(f"warning: the hard RLIMIT_NOFILE stops at {hard} here (raising it needs CAP_SYS_RESOURCE): "
          f"the agent gets {hard}, not {requested}", file=sys.stderr, flush=True)
    return hard


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ProcSnapshot:
    cpu_s: float          # utime + stime of every thread, seconds
    rss_bytes: int        # VmRSS
    hwm_bytes: int        # VmHWM: peak RSS
    fds: int              # entries in /proc/<pid>/fd
    threads: int


def cpu_seconds(pid: int) -> float:
    """utime + stime from /proc/<pid>/stat (fields 14 and 15, proc(5)), all threads included."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def host_busy_seconds() -> float:
    """CPU seconds all CPUs spent not idle since boot (/proc/stat "cpu" line; idle and iowait excluded)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already inside user)
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


class OtherLoad:
    """CPU the rest of the host burned while we measured: busy CPU minus the agent's and ours.

    Another heavy process on a 2-core host changes every number here; this says how much there was.
    """

    def __init__(self, agent_pid: int | None = None):
        self.agent_pid = agent_pid
        self._start = self._read()

    def _read(self) -> tuple[float, float, float, float]:
        agent = cpu_seconds(self.agent_pid) if self.agent_pid is not None else 0.0
        return (time.perf_counter(), host_busy_seconds(), agent, cpu_seconds(os.getpid()))

    def cores(self) -> float:
        """Average number of cores busy with other work since construction."""
        now = self._read()
        wall, busy, agent, me = (b - a for a, b in zip(self._start, now))
        return max(0.0, (busy - agent - me) / wall) if wall > 0 else 0.0


def rss_bytes(pid: int) -> int:
    """VmRSS alone (snapshot() also lists every fd, which at 10,000 containers is not free)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS (a kernel thread, or a zombie)")


def snapshot(pid: int) -> ProcSnapshot:
    status: dict[str, str] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    kib = lambda key: int(status[key].split()[0]) * 1024  # noqa: E731
    return ProcSnapshot(cpu_s=cpu_seconds(pid), rss_bytes=kib("VmRSS"), hwm_bytes=kib("VmHWM"),
                        fds=len(os.listdir(f"/proc/{pid}/fd")), threads=int(status["Threads"]))


class AgentProcess:
    """``cgwatch serve`` on two free loopback ports, collecting on every scrape (--max-age 0)."""

    def __init__(self, state_dir: Path, ignore: tuple[str, ...] = IGNORE,
                 extra_args: tuple[str, ...] = (), cwd: Path = REPO, nofile: int | None = None):
        """``cwd``: the checkout whose cgwatch runs (``-m`` puts it first on sys.path). ``nofile``:
        the agent's soft and hard RLIMIT_NOFILE, as ``LimitNOFILE=`` sets them (a hard limit above
        this process's needs root); None inherits this process's."""
        self.state_dir = state_dir
        self.cwd = cwd
        self.nofile = nofile
        self.port = free_port()
        self.api_port = free_port()
        self.log_path = state_dir / "agent.log"
        argv = [sys.executable, "-m", "cgwatch", "serve",
                "--listen", f"127.0.0.1:{self.port}", "--api-listen", f"127.0.0.1:{self.api_port}",
                "--state-dir", str(state_dir), "--docker-host", "", "--podman-host", "", "--containerd-host", "", "--max-age", "0"]
        for glob in ignore:
            argv += ["--ignore-cgroup", glob]
        argv += extra_args
        self.argv = argv
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout_s: float = 60.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        nofile = self.nofile
        # Set between fork and exec: the agent reads its limit once, at start (host/fdlimit.py).
        limit = None if nofile is None else lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, preexec_fn=limit)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited with {self.proc.returncode}; see {self.log_path}:\n"
                                   + self.log_tail())
            if self._healthy():
                return
            time.sleep(0.1)
        raise RuntimeError(f"agent not healthy within {timeout_s}s; see {self.log_path}")

    def _healthy(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", "/healthz")
                return conn.getresponse().status == 200
            finally:
                conn.close()
        except OSError:
            return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL by PID after ``grace_s``. Returns the exit status."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        return proc.wait()


class Scraper:
    """One keep-alive HTTP connection to /metrics."""

    def __init__(self, port: int, timeout_s: float = 600.0):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)

    def scrape(self) -> tuple[float, bytes]:
        t0 = time.perf_counter()
        self.conn.request("GET", "/metrics")
        resp = self.conn.getresponse()
        body = resp.read()
        elapsed = time.perf_counter() - t0
        if resp.status != 200:
            raise RuntimeError(f"/metrics answered {resp.status}: {body[:200]!r}")
        return elapsed, body

    def close(self) -> None:
        self.conn.close()
