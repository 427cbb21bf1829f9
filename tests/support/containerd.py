"""A standalone containerd for tests: its own root, state and socket under a temp dir, never the
host's /run/containerd/containerd.sock; the test image imported from the suite's dockerd; containers
run and removed with `ctr` (Debian's containerd 1.6.20, as /work/shared/REAL-PARTS.md checked).

The daemon is started and stopped by PID. Its shims outlive it (containerd-shim-runc-v2 detaches),
so every container is removed before the daemon is stopped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.support.cgroups import _rmdir_retrying
from tests.support.docker import DOCKER_HOST, IMAGE, docker_missing
from tests.support.served import stop

# `docker save local/busybox` imported with --base-name local/busybox is named like this.
CTR_IMAGE = f"docker.io/{IMAGE}:latest"
READY_TIMEOUT_S = 15.0

CONFIG = """\
version = 2
root = "{dir}/root"
state = "{dir}/state"
# The CRI plugin would want CNI and a kubelet: the tests make CRI-shaped containers with ctr.
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{dir}/containerd.sock"

[ttrpc]
  address = "{dir}/containerd.sock.ttrpc"

[debug]
  address = "{dir}/debug.sock"

[plugins."io.containerd.internal.v1.opt"]
  # Its default is /opt/containerd on the host.
  path = "{dir}/opt"
"""


def containerd_missing() -> str | None:
    """None when a test can run its own containerd with the test image; otherwise what is missing."""
    if os.geteuid() != 0:
        return "needs root to run containerd"
    for tool in ("containerd", "ctr", "runc", "containerd-shim-runc-v2"):
        if shutil.which(tool) is None:
            return f"needs {tool} (apt-get install containerd)"
    return docker_missing()  # the image comes from the suite's dockerd


class Containerd:
    """One containerd daemon under a fresh temp dir (short: a unix socket path is at most 107 bytes)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cgw-ctd-"))
        self.socket = self.dir / "containerd.sock"
        self.host = f"unix://{self.socket}"
        self.proc: subprocess.Popen | None = None
        self._ran: list[tuple[str, str]] = []  # (namespace, id)

    # -- the daemon ------------------------------------------------------------------------------
    def start(self) -> Containerd:
        config = self.dir / "config.toml"
        config.write_text(CONFIG.format(dir=self.dir))
        log = open(self.dir / "containerd.log", "ab")
        try:
            self.proc = subprocess.Popen(["containerd", "--config", str(config)], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while self.ctr("version", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not come up; its log:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL after 10 s."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop(proc, timeout=10)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.dir / "containerd.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def cleanup(self) -> None:
        """Remove every container run here, stop the daemon, remove its directory."""
        if self.running:
            for ns, cid in reversed(self._ran):
                self.remove(ns, cid)
        self.stop()
        # A task that would not go leaves its rootfs (an overlay) mounted in the bundle under our
        # state dir: unmount what is ours, deepest first, so rmtree does not walk into it.
        mounts = [f.split()[1] for f in Path("/proc/self/mounts").read_text().splitlines()
                  if f.split()[1].startswith(f"{self.dir}/")]
        for m in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- ctr ------------------------------------------------------------------------------------
    def ctr(self, *args: str, namespace: str = "default", check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess:
        out = subprocess.run(["ctr", "-a", str(self.socket), "-n", namespace, *args],
                             capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)} (namespace {namespace}) failed: {out.stderr.strip()}")
        return out

    def import_image(self, namespace: str) -> str:
        """`docker save local/busybox` from the suite's dockerd, imported into ``namespace``."""
        tar = self.dir / "busybox.tar"
        if not tar.exists():
            subprocess.run(["docker", "save", "-o", str(tar), IMAGE], check=True, capture_output=True, timeout=60,
                           env={**os.environ, "DOCKER_HOST": DOCKER_HOST})
        self.ctr("image", "import", "--base-name", IMAGE, str(tar), namespace=namespace)
        return CTR_IMAGE

    def run(self, namespace: str, cid: str, *, cgroup: str | None = None, labels: dict[str, str] | None = None,
            cmd: tuple[str, ...] = ("sleep", "600")) -> str:
        """`ctr run -d` a container (its task started); returns its ID. Without ``cgroup`` ctr puts it
        at /<namespace>/<id> (containerd's oci.WithDefaultSpec)."""
        args = ["run", "-d"]
        if cgroup is not None:
            args += ["--cgroup", cgroup]
        for k, v in (labels or {}).items():
            args += ["--label", f"{k}={v}"]
        self._ran.append((namespace, cid))
        self.ctr(*args, CTR_IMAGE, cid, *cmd, namespace=namespace)
        return cid

    def remove(self, namespace: str, cid: str) -> None:
        """Kill and delete the task, then the container (and its snapshot)."""
        self.ctr("tasks", "kill", "-s", "SIGKILL", cid, namespace=namespace, check=False)
        deadline = time.monotonic() + 10
        while True:  # the task is deletable once it has exited: a moment after the SIGKILL
            out = self.ctr("tasks", "delete", cid, namespace=namespace, check=False)
            if out.returncode == 0 or "not found" in out.stderr:
                break
            if time.monotonic() > deadline:
                self.ctr("tasks", "delete", "--force", cid, namespace=namespace, check=False)
                break
            time.sleep(0.05)
        self.ctr("containers", "delete", cid, namespace=namespace, check=False)
        if (namespace, cid) in self._ran:
            self._ran.remove((namespace, cid))


class ParentCgroups:
    """The parent cgroups runc makes for a container (--cgroup /kubepods/besteffort/pod<uid>/<id>,
    ctr's default /<namespace>/<id>) and leaves behind when it is removed: those this run made are
    removed afterwards, deepest first, in every hierarchy; those that were there before are left."""

    def __init__(self, *paths: str):
        self.roots = mounted_hierarchies()
        self.paths = sorted(paths, key=lambda p: p.count("/"), reverse=True)
        self.existing = {p for p in paths if self._exists(p)}

    def _exists(self, path: str) -> bool:
        return any((r / path.lstrip("/")).exists() for r in self.roots)

    def cleanup(self) -> list[str]:
        """Returns the directories that could not be removed (still busy)."""
        left = []
        for path in self.paths:
            if path in self.existing:
                continue
            for d in (r / path.lstrip("/") for r in self.roots):
                if d.exists() and not _rmdir_retrying(d):
                    left.append(str(d))
        return left


def kubepods(pod_uid: str, qos: str = "besteffort") -> ParentCgroups:
    """The kubelet's cgroupfs-driver parents of a pod: /kubepods/<qos>/pod<uid>."""
    return ParentCgroups("/kubepods", f"/kubepods/{qos}", f"/kubepods/{qos}/pod{pod_uid}")


def mounted_hierarchies(mounts: Path = Path("/proc/self/mounts")) -> list[Path]:
    """Every mounted cgroup hierarchy: runc makes a container's cgroup in each (devices, freezer and
    name=systemd too, which cgwatch does not read)."""
    out = []
    for line in mounts.read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] in ("cgroup", "cgroup2"):
            out.append(Path(fields[1].replace("\\040", " ")))
    return out


def kubepods_in_use() -> str | None:
    """What is wrong with making /kubepods here: None when no hierarchy has one (a kubelet's, or one
    a failed run left behind) that the test would share and then remove."""
    found = [str(r / "kubepods") for r in mounted_hierarchies() if (r / "kubepods").exists()]
    return f"a /kubepods cgroup exists already ({found[0]}); the test makes its own and removes it" if found else None


def unique_id() -> str:
    """A 64-hex ID, as the CRI and nerdctl make them."""
    return uuid.uuid4().hex + uuid.uuid4().hex


def unique_pod_uid() -> str:
    return str(uuid.uuid4())
