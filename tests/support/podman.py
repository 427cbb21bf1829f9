"""The suite's own Podman: a store of its own, `podman system service` on a socket of its own, and
containers that clean up after themselves (and what Podman leaves behind them).

Nothing here touches the machine's Podman: the store (images, containers, locks, events log) lives
in ${CGWATCH_WORK:-/tmp/cgwatch-ci}/podman, set through containers.conf and storage.conf named by
CONTAINERS_CONF / CONTAINERS_STORAGE_CONF in every podman command's environment (the service's
and conmon's exit commands inherit it). Hand use: `eval "$(.venv/bin/python -m tests.support.podman env)"`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.support.docker import IMAGE as DOCKER_IMAGE
from tests.support.docker import DOCKER_HOST, WORK, docker_missing
from tests.support.served import stop

HOME = WORK / "podman"
# `docker save local/busybox` loaded into Podman: a name without a registry gets "localhost/".
IMAGE = "localhost/local/busybox:latest"
CG = Path("/sys/fs/cgroup")

# On this machine root lacks CAP_SYS_RESOURCE, so the hard rlimits Podman would give a container by
# default cannot be set (REAL-PARTS.md): these fit under the host's. No network: CNI is not needed,
# and no /run/netns bind mount is left behind. File locks in the store's tmp dir, not the
# machine-wide /dev/shm/libpod_lock segment the host's Podman uses. The events log and the cgroupfs
# manager are pinned so the tests see the same on a systemd host (journald, machine.slice).
_CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "none"

[engine]
tmp_dir = "{home}/tmp"
lock_type = "file"
events_logger = "file"
cgroup_manager = "cgroupfs"
"""
_STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{home}/root"
runroot = "{home}/run"
"""


def podman_env() -> dict[str, str]:
    """os.environ plus the two files that point podman at the suite's store (written if missing)."""
    HOME.mkdir(parents=True, exist_ok=True)
    files = {"containers.conf": _CONTAINERS_CONF, "storage.conf": _STORAGE_CONF}
    for name, template in files.items():
        path, text = HOME / name, template.format(home=HOME)
        if not path.exists() or path.read_text() != text:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
    return {**os.environ, "CONTAINERS_CONF": str(HOME / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(HOME / "storage.conf")}


def podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True,
                          timeout=timeout, check=check)


def podman_missing() -> str | None:
    """None when podman runs here with the test image in the suite's store (loaded from the suite's
    dockerd the first time); otherwise what is missing."""
    if shutil.which("podman") is None:
        return "needs podman (bash tests/support/install-deps.sh)"
    if os.geteuid() != 0:
        return "needs root (podman with the cgroupfs manager)"
    if podman("image", "exists", IMAGE, check=False).returncode == 0:
        return None
    reason = docker_missing()
    if reason is not None:
        return f"podman's test image comes from the suite's dockerd: {reason}"
    tar = HOME / "busybox.tar"
    try:
        subprocess.run(["docker", "save", DOCKER_IMAGE, "-o", str(tar)], env={**os.environ, "DOCKER_HOST": DOCKER_HOST},
                       check=True, capture_output=True, timeout=60)
        podman("load", "-q", "-i", str(tar))
    except subprocess.CalledProcessError as exc:
        return f"loading {IMAGE} into podman failed: {exc.stderr.strip()[:300]}"
    finally:
        tar.unlink(missing_ok=True)
    return None


def _ping(sock: Path) -> dict[str, str] | None:
    """The headers of a `GET /_ping` answered 200 on the socket, or None."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
            raw = b""
            while chunk := s.recv(4096):
                raw += chunk
    except OSError:
        return None
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    if not head or " 200 " not in head[0] + " ":
        return None
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}


class PodmanService:
    """`podman system service --time=0` on ``<workdir>/podman.sock``; ``stop`` ends it by its PID."""

    def __init__(self, workdir: Path):
        self.socket = workdir / "podman.sock"
        self.log = workdir / "podman-service.log"
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, timeout: float = 15.0) -> PodmanService:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(["podman", "system", "service", "--time=0", self.host],
                                         env=podman_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while _ping(self.socket) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"podman system service did not answer on {self.socket}: "
                                   f"{self.log.read_text()[-500:]}")
            time.sleep(0.05)
        return self

    def version(self) -> tuple[int, ...]:
        headers = _ping(self.socket) or {}
        return tuple(int(p) for p in headers.get("libpod-api-version", "0.0.0").split("-")[0].split("."))

    def stop(self) -> None:
        """SIGTERM to the service's PID; it closes its streams and exits in ~2.5 s (SIGKILL after 20)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop(proc, timeout=20)


class PodmanContainers:
    """Starts containers named cgw-test-*, removes them by ID at the end, and waits for (or ends,
    by PID) the conmon monitors they had."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def run(self, *args: str, cmd: tuple[str, ...] = ("sleep", "600")) -> tuple[str, str]:
        name = f"cgw-test-{uuid.uuid4().hex[:10]}"
        cid = podman("run", "-d", "--name", name, *args, IMAGE, *cmd).stdout.strip()
        self.ids.append(cid)
        return cid, name

    @staticmethod
    def inspect(ref: str) -> dict:
        return json.loads(podman("inspect", ref).stdout)[0]

    @staticmethod
    def remove(cid: str) -> None:
        podman("rm", "-f", "-t", "0", cid)

    def cleanup(self) -> None:
        if not self.ids:
            return
        podman("rm", "-f", "-t", "0", "--ignore", *self.ids, check=False)
        # conmon outlives `podman rm` by a moment (it runs the container's cleanup), and its cgroup
        # (libpod_parent/conmon) can only go once it has. A container restarted had several.
        deadline = time.monotonic() + 10
        while (alive := conmons_of(self.ids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in alive:
            os.kill(pid, signal.SIGKILL)


def conmons_of(ids: list[str]) -> list[int]:
    """PIDs of the live conmon processes monitoring one of the containers ``ids`` (its `-c <id>`)."""
    wanted = {cid.encode() for cid in ids}
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if (d / "comm").read_text().strip() != "conmon":
                continue
            argv = (d / "cmdline").read_bytes().split(b"\0")
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone meanwhile
        if state != "Z" and any(a in wanted for a in argv):
            found.append(int(d.name))
    return found


class LibpodCgroups:
    """Podman (cgroupfs manager) makes /libpod_parent and /libpod_parent/conmon in every hierarchy
    and leaves them, empty, when its containers are gone. Remembers which were absent at the start;
    ``cleanup`` removes those, deepest first, if empty (rmdir refuses otherwise: someone else's)."""

    def __init__(self, root: Path = CG):
        hierarchies = [root] if (root / "cgroup.controllers").exists() else \
            [d for d in root.iterdir() if d.is_dir() and not d.is_symlink()]
        self._made = [d / rel for d in hierarchies for rel in ("libpod_parent/conmon", "libpod_parent")
                      if not (d / rel).exists()]

    def cleanup(self) -> None:
        left = []
        for d in self._made:   # children listed before their parent
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    raise
                left.append(str(d))
        if left:
            print(f"podman cgroups still in use, left in place: {left}", file=sys.stderr)


if __name__ == "__main__" and sys.argv[1:] == ["env"]:
    env = podman_env()
    for key in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"):
        print(f"export {key}={env[key]}")
