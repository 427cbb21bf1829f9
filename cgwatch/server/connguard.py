"""Slow clients cannot starve a listener: the whole fd budget, a header deadline, a connection cap.

What starved first (tests/real/test_slowloris.py, bench/LOAD.md): aiohttp has no deadline for
request headers, so a client that sends a request line and then one byte a second holds its
connection, and its file descriptor, as long as it likes. Under systemd's default soft
RLIMIT_NOFILE of 1024, about a thousand such clients used every descriptor: accept(2) failed
with EMFILE (asyncio pauses the listener, so scrapes were never accepted) and the collection
could not open cgroup files. Three defences, each covering the others' gap:

1. Raise the soft RLIMIT_NOFILE to the hard limit at start, as Go does for every program since
   Go 1.19 ("os: raise open file rlimit at startup", go.dev/issue/46279): the soft limit of 1024
   exists for select(2), which asyncio's epoll loop does not use. Children do not inherit it
   (cgwatch starts none).
2. A connection must finish each request's headers within HEADER_TIMEOUT_S of its first byte
   (of connecting, for the first request), or it is closed: Go's http.Server ReadHeaderTimeout,
   nginx's client_header_timeout. A scrape's headers arrive in one packet.
3. At most max_connections per listener, from what the fd limit leaves after RESERVED_FDS for
   cgroup files, the audit log, Docker and threads. At the cap, the oldest connection that is
   not running a request (still sending headers, or idle between keep-alive requests) is closed
   to make room, so a flood cannot lock out the next scrape, and only if every connection is
   busy is the new one refused.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from .listener_metrics import listener_counter

log = logging.getLogger("cgwatch.server.connguard")

HEADER_TIMEOUT_S = 10.0
RESERVED_FDS = 256
LISTENERS = 2

def raise_nofile_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (point 1 above); returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft != resource.RLIM_INFINITY and soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise RLIMIT_NOFILE", extra={"soft": soft, "hard": hard, "error": str(exc)})
    return soft


def guard_connections(runner: web.AppRunner, role: str, registry: CollectorRegistry) -> None:
    """Put the defences on ``runner``'s server; call after ``runner.setup()``, before its site starts."""
    soft = raise_nofile_limit()
    server = runner.server
    assert server is not None, "call after runner.setup()"
    closed = listener_counter(registry, "cgwatch_http_connections_closed", "Connections the agent closed to "
                              "protect a listener, by reason (header_timeout, evicted, refused).")
    ConnectionGuard(server, role, max(64, (soft - RESERVED_FDS) // LISTENERS), closed)


class _Conn:
    __slots__ = ("transport", "busy", "timer")

    def __init__(self, transport: asyncio.Transport):
        self.transport = transport
        self.busy = 0                                  # requests of this connection being handled
        self.timer: asyncio.TimerHandle | None = None  # set while headers are awaited


class ConnectionGuard:
    """Wraps one aiohttp ``web.Server``: its connection hooks, its request handler, and each
    transport's protocol (to see the first byte of a request)."""

    def __init__(self, server: web.Server, role: str, max_connections: int, closed: Counter,
                 header_timeout_s: float = HEADER_TIMEOUT_S):
        self._loop = asyncio.get_running_loop()
        self._role = role
        self._max = max_connections
        self._closed = closed
        self._timeout_s = header_timeout_s
        self._conns: dict[Any, _Conn] = {}  # aiohttp's RequestHandler -> its state; oldest first
        made, lost, handle = server.connection_made, server.connection_lost, server.request_handler
        # aiohttp's RequestHandler looks these up on the server when a connection starts.
        server.connection_made = lambda handler, transport: self._made(made, handler, transport)  # type: ignore[method-assign]
        server.connection_lost = lambda handler, exc=None: self._lost(lost, handler, exc)  # type: ignore[method-assign]
        server.request_handler = lambda request: self._handle(handle, request)

    def _made(self, made: Callable[..., None], handler: Any, transport: asyncio.Transport) -> None:
        made(handler, transport)
        if len(self._conns) >= self._max and not self._evict_one():
            self._close(_Conn(transport), "refused")
            return
        conn = _Conn(transport)
        self._conns[handler] = conn
        transport.set_protocol(_FirstByte(handler, lambda: self._arm(conn)))
        self._arm(conn)

    def _lost(self, lost: Callable[..., None], handler: Any, exc: BaseException | None) -> None:
        conn = self._conns.pop(handler, None)
        if conn is not None and conn.timer is not None:
            conn.timer.cancel()
        lost(handler, exc)

    async def _handle(self, handle: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
                      request: web.BaseRequest) -> web.StreamResponse:
        conn = self._conns.get(request.protocol)
        if conn is None:
            return await handle(request)
        conn.busy += 1
        if conn.timer is not None:  # the headers are in
            conn.timer.cancel()
            conn.timer = None
        try:
            return await handle(request)
        finally:
            conn.busy -= 1

    def _arm(self, conn: _Conn) -> None:
        """Start the header deadline, unless it runs already or a request is being handled."""
        if conn.timer is None and not conn.busy:
            conn.timer = self._loop.call_later(self._timeout_s, self._expire, conn)

    def _expire(self, conn: _Conn) -> None:
        conn.timer = None
        if not conn.busy:
            self._close(conn, "header_timeout")

    def _evict_one(self) -> bool:
        for conn in self._conns.values():
            if not conn.busy:
                self._close(conn, "evicted")
                return True
        return False

    def _close(self, conn: _Conn, reason: str) -> None:
        """Close now; aiohttp's connection_lost (and ours) follows from the loop."""
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        self._closed.labels(self._role, reason).inc()
        log.debug("connection closed", extra={"listener": self._role, "reason": reason})
        conn.transport.close()


class _FirstByte(asyncio.Protocol):
    """Forwards everything to aiohttp's handler; tells the guard when bytes arrive, so an idle
    keep-alive connection that starts a new request gets a header deadline again."""

    def __init__(self, inner: asyncio.Protocol, on_data: Callable[[], None]):
        self.inner = inner
        self._on_data = on_data

    def data_received(self, data: bytes) -> None:
        self._on_data()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()
