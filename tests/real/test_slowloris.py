"""Slow clients (slowloris) hold connections open; scrapes and API reads still get through.

The agent runs as `cgwatch serve` with the soft RLIMIT_NOFILE systemd gives services by default
(1024; systemd.exec(5) LimitNOFILE=, "DefaultLimitNOFILE=1024:524288"), and more connections
than that are opened against each listener, each sending a request line and then one header
byte a second, never finishing its headers.
"""

from __future__ import annotations

import json
import resource
import shutil
import socket
import threading
import time

import pytest

from cgwatch.server.connguard import HEADER_TIMEOUT_S
from tests.support.served import get, serve_agent

pytestmark = pytest.mark.real

SLOW_PER_LISTENER = 1100  # more than the 1024 soft limit on their own


class SlowClients:
    """Connections that send a partial request and then a byte a second from one thread."""

    def __init__(self, url: str, count: int):
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.socks: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)
        for i in range(count):
            try:
                s = socket.create_connection((host, int(port)), timeout=10)
            except OSError as exc:
                self.close()
                pytest.fail(f"the agent stopped accepting connections after {i} slow clients: {exc!r}")
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            s.setblocking(False)
            self.socks.append(s)
        self._thread.start()

    def _drip(self) -> None:
        while not self._stop.wait(1.0):
            for s in self.socks:
                try:
                    s.send(b"a")
                except OSError:
                    pass  # closed by the server: counted by closed_by_server()

    def closed_by_server(self) -> int:
        closed = 0
        for s in self.socks:
            try:
                closed += s.recv(1) == b""
            except BlockingIOError:
                pass  # still open, nothing sent
            except OSError:
                closed += 1  # reset
        return closed

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for s in self.socks:
            s.close()


@pytest.fixture
def low_nofile_agent(tmp_path, sandbox):
    """The agent started with soft RLIMIT_NOFILE 1024 and room above it in the hard limit."""
    if shutil.which("prlimit") is None:
        pytest.fail("needs prlimit (util-linux)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # This process holds every slow connection; root may raise its own hard limit (up to
    # fs.nr_open), so a host whose default hard limit is low still runs the test.
    roomy = max(hard, 8 * SLOW_PER_LISTENER)
    resource.setrlimit(resource.RLIMIT_NOFILE, (roomy, roomy))
    cg = sandbox.create("docker/" + "5" * 64)
    sandbox.sleeper(cg)
    try:
        with serve_agent(tmp_path, prefix=("prlimit", f"--nofile=1024:{roomy}", "--")) as served:
            yield served, cg
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_scrapes_and_api_reads_succeed_while_slow_clients_hold_both_listeners(low_nofile_agent):
    served, cg = low_nofile_agent
    slow = [SlowClients(served.metrics, SLOW_PER_LISTENER), SlowClients(served.api, SLOW_PER_LISTENER)]
    try:
        started = time.monotonic()
        for _ in range(3):
            status, body = get(f"{served.metrics}/metrics")
            assert status == 200 and f'container_processes{{id="{cg}"'.encode() in body
            status, body = get(f"{served.api}/api/v1/containers/{'5' * 12}/limits", served.token)
            assert status == 200, body
            assert json.loads(body)["id"] == "5" * 64
        # ...and it was while they were all held open, not after the agent dropped them.
        assert time.monotonic() - started < HEADER_TIMEOUT_S
        assert sum(s.closed_by_server() for s in slow) == 0
    finally:
        for s in slow:
            s.close()


def test_connections_that_never_finish_their_headers_are_closed(low_nofile_agent):
    served, _ = low_nofile_agent
    slow = SlowClients(served.metrics, 50)
    try:
        time.sleep(HEADER_TIMEOUT_S + 2)
        assert slow.closed_by_server() == 50
        assert get(f"{served.metrics}/metrics")[0] == 200
    finally:
        slow.close()
