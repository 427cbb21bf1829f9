"""`cgwatch serve` as a subprocess on free loopback ports, as a person would run it."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from tests.support.cgroups import wait_for
from tests.support.env import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, data: bytes | None = None, method: str | None = None,
         headers: dict[str, str] | None = None, timeout: float = 10,
         context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    """(status, body) of one request; status 0 when nothing answers (or TLS fails); ``context``
    for https."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def raw_http(url: str, request: bytes, timeout: float = 10) -> bytes:
    """Send ``request`` byte for byte to ``url``'s host and port (no client normalises it); all
    the agent answers until it closes the connection (the request should say Connection: close)."""
    host, _, port = url.split("://")[-1].rpartition(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM by PID, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    """A GET, with the bearer token when given."""
    return http(url, headers={"Authorization": f"Bearer {token}"} if token else None, timeout=5)


@dataclass(frozen=True)
class Served:
    metrics: str   # http://127.0.0.1:<port> of --listen
    api: str       # http://127.0.0.1:<port> of --api-listen
    state: Path
    pid: int = 0   # the agent's process, for a signal (SIGHUP)
    log: Path | None = None  # the agent's stderr (its JSON log)

    @property
    def token(self) -> str:
        return (self.state / "token").read_text().strip()


@contextmanager
def serve_agent(workdir: Path, *extra: str, prefix: Sequence[str] = (), scheme: str = "http",
                ready: Callable[[Served], bool] | None = None) -> Iterator[Served]:
    """Start the agent with its state in ``workdir``/state; SIGTERM it (by PID) at the end.

    ``scheme`` "https" for an agent given TLS in ``extra``; ``ready`` says when it answers (default:
    the API's /healthz over plain HTTP). An agent that exits while starting fails with its log.

    ``prefix`` runs it through a wrapper that execs it in place (``unshare``, ``setpriv``), so
    the PID signalled is still the agent's.
    """
    state = workdir / "state"
    served = Served(f"{scheme}://127.0.0.1:{free_port()}", f"{scheme}://127.0.0.1:{free_port()}", state)
    log = (workdir / "agent.log").open("w")
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "cgwatch", "serve", "--listen", served.metrics.removeprefix(f"{scheme}://"),
         "--api-listen", served.api.removeprefix(f"{scheme}://"), "--state-dir", str(state), "--docker-host", "", "--podman-host", "", "--containerd-host", "",
         "--ignore-cgroup", "/process_api*", "--max-age", "0", *extra], stderr=log, cwd=REPO)
    try:
        answers = ready or (lambda s: get(f"{s.api}/healthz")[0] == 200)
        wait_for(lambda: proc.poll() is not None or answers(served), timeout=20)
        if proc.poll() is not None:
            log.flush()
            raise AssertionError(f"the agent exited with {proc.returncode}: "
                                 f"{(workdir / 'agent.log').read_text()[-2000:]}")
        yield replace(served, pid=proc.pid, log=workdir / "agent.log")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()
