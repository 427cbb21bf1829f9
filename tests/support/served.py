"""`cgwatch serve` as a subprocess on free loopback ports, as a person would run it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.cgroups import wait_for

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, data: bytes | None = None, method: str | None = None,
         headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, bytes]:
    """(status, body) of one request; status 0 when nothing answers."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    """A GET, with the bearer token when given."""
    return http(url, headers={"Authorization": f"Bearer {token}"} if token else None, timeout=5)


@dataclass(frozen=True)
class Served:
    metrics: str   # http://127.0.0.1:<port> of --listen
    api: str       # http://127.0.0.1:<port> of --api-listen
    state: Path

    @property
    def token(self) -> str:
        return (self.state / "token").read_text().strip()


@contextmanager
def serve_agent(workdir: Path, *extra: str) -> Iterator[Served]:
    """Start the agent with its state in ``workdir``/state; SIGTERM it (by PID) at the end."""
    state = workdir / "state"
    served = Served(f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}", state)
    log = (workdir / "agent.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cgwatch", "serve", "--listen", served.metrics.removeprefix("http://"),
         "--api-listen", served.api.removeprefix("http://"), "--state-dir", str(state), "--docker-host", "",
         "--ignore-cgroup", "/process_api*", "--max-age", "0", *extra], stderr=log, cwd=REPO)
    try:
        wait_for(lambda: get(f"{served.api}/healthz")[0] == 200, timeout=20)
        yield served
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()
