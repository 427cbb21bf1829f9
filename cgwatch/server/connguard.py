"""Slow or greedy clients cannot starve a listener: fds, a header deadline and budget, a connection cap.

What starved first (tests/real/test_slowloris.py, bench/LOAD.md): aiohttp has no deadline for
request headers, so a client that sends a request line and then one byte a second holds its
connection, and its file descriptor, as long as it likes. Under systemd's default soft
RLIMIT_NOFILE of 1024, about a thousand such clients used every descriptor: accept(2) failed
with EMFILE (asyncio pauses the listener, so scrapes were never accepted) and the collection
could not open cgroup files. Four defences, each covering the others' gap:

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
   busy is the new one refused. The cap is also at most MAX_CONNECTIONS, so header memory has a
   ceiling (point 4).
4. The request line and header fields of a request are at most MAX_HEADER_BYTES together,
   Node.js's default (--max-http-header-size, 16 KiB): beyond, a 431 (RFC 6585, section 5) and the
   connection closed, before the bytes reach aiohttp's parser (which keeps each header twice, as
   bytes and as str). aiohttp bounds each field and their number (HTTP_LIMITS, server/app.py), not
   their sum: 100 connections each holding 126 headers of 16 KB took the agent from 48 MB to
   448 MB RSS. Worst case now: 2 listeners x MAX_CONNECTIONS x MAX_HEADER_BYTES = 37.5 MiB of
   header bytes; a connection holding a request's headers just under the budget costs ~30 KiB of
   RSS (tests/real/test_header_flood.py), ~71 MiB at the cap. Past a request's blank line, bytes
   beyond its declared body (pipelined requests) pause reading and close the connection once the
   request is answered: a pipelining client holds one read (asyncio's, 256 KiB at most) past its
   budget, and only until its request is answered.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from ..errors import HeaderFieldsTooLarge
from ..host.fdlimit import raise_nofile
from .errors import status_of
from .listener_metrics import listener_counter

log = logging.getLogger("cgwatch.server.connguard")

HEADER_TIMEOUT_S = 10.0
RESERVED_FDS = 256
LISTENERS = 2
# Above the 1100 slow clients per listener tests/real/test_slowloris.py holds without eviction.
MAX_CONNECTIONS = 1200
MAX_HEADER_BYTES = 16384
# A chunked body's length is not declared: a limits body is 4 KiB (server/request_body.py), and
# aiohttp's reader buffers at most 2 x 64 KiB of one; past this reading pauses, and the connection
# is closed once the request is answered.
CHUNKED_BODY_BYTES = 1 << 16
HEADER_END = b"\r\n\r\n"

def guard_connections(runner: web.AppRunner, role: str, registry: CollectorRegistry) -> None:
    """Put the defences on ``runner``'s server; call after ``runner.setup()``, before its site starts."""
    soft = raise_nofile()
    server = runner.server
    assert server is not None, "call after runner.setup()"
    closed = listener_counter(registry, "cgwatch_http_connections_closed", "Connections the agent closed to "
                              "protect a listener, by reason (header_timeout, evicted, refused, header_bytes).")
    ConnectionGuard(server, role, min(MAX_CONNECTIONS, max(64, (soft - RESERVED_FDS) // LISTENERS)), closed)


class _Conn:
    __slots__ = ("transport", "busy", "timer", "headers_in", "received", "budget", "tail", "paused")

    def __init__(self, transport: asyncio.Transport):
        self.transport = transport
        self.busy = 0                                  # requests of this connection being handled
        self.timer: asyncio.TimerHandle | None = None  # set while headers are awaited
        self.headers_in = False    # the blank line ending a request's headers was seen
        self.received = 0          # header bytes until the blank line, then every byte after it
        self.budget = MAX_HEADER_BYTES
        self.tail = b""            # the last bytes, for a blank line split across reads
        self.paused = False        # reading paused by us: over budget past the blank line

    def await_request(self) -> None:
        self.headers_in, self.received, self.budget, self.tail = False, 0, MAX_HEADER_BYTES, b""

    def over_budget(self, data: bytes) -> bool:
        """Count ``data``; True when a request's line and headers pass MAX_HEADER_BYTES. Until
        the blank line only header bytes count (a body may follow in the same read); after it,
        everything: the body, and any pipelined request (``received`` against ``budget``)."""
        if self.headers_in or self.busy:
            self.received += len(data)
            return False
        end = (self.tail + data).find(HEADER_END)
        if end < 0:
            self.received += len(data)
            self.tail = (self.tail + data)[-3:]
            return self.received > MAX_HEADER_BYTES
        after = end + len(HEADER_END) - len(self.tail)  # where the blank line ends in ``data``
        header_bytes = self.received + after
        self.headers_in, self.received = True, len(data) - after
        return header_bytes > MAX_HEADER_BYTES


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
        transport.set_protocol(_FirstByte(handler, lambda data: self._admit(conn, data)))
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
        # Past its blank line the connection may send this request's body and the next headers.
        length = request.content_length
        conn.budget = MAX_HEADER_BYTES + (length if length is not None else
                                          CHUNKED_BODY_BYTES if request.body_exists else 0)
        if conn.paused and conn.received <= conn.budget:
            conn.paused = False
            conn.transport.resume_reading()
        try:
            return await handle(request)
        finally:
            conn.busy -= 1
            if conn.received > conn.budget:
                # Answered, then closed, the rest unread: aiohttp's RequestHandler.close() "closes
                # the connection when handlers are done" (the response is sent after this returns).
                self._closed.labels(self._role, "header_bytes").inc()
                request.protocol.close()
            elif not conn.busy:
                conn.await_request()

    def _admit(self, conn: _Conn, data: bytes) -> bool:
        """Whether ``data`` may reach aiohttp's parser; refuses a request whose headers are over
        budget. Past the blank line, more than the request's budget (a body not yet asked for,
        or pipelined requests) waits in the kernel's buffer: reading pauses until the handler
        starts, and a connection still over budget is closed once its request is answered."""
        self._arm(conn)
        if conn.over_budget(data):
            self._refuse_headers(conn)
            return False
        if conn.received > conn.budget and not conn.paused:
            conn.paused = True
            conn.transport.pause_reading()
        return True

    def _refuse_headers(self, conn: _Conn) -> None:
        if not conn.busy:  # no answer under way on this connection
            err = HeaderFieldsTooLarge(f"a request's line and headers are at most {MAX_HEADER_BYTES} bytes",
                                       limit_bytes=MAX_HEADER_BYTES)
            body = json.dumps(err.to_json()).encode()
            conn.transport.write(f"HTTP/1.1 {status_of(err)} Request Header Fields Too Large\r\n"
                                 f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                                 f"Connection: close\r\n\r\n".encode() + body)
        self._close(conn, "header_bytes")

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
    """Forwards what the guard admits to aiohttp's handler; tells the guard when bytes arrive, so
    an idle keep-alive connection that starts a new request gets a header deadline again."""

    def __init__(self, inner: asyncio.Protocol, admit: Callable[[bytes], bool]):
        self.inner = inner
        self._admit = admit

    def data_received(self, data: bytes) -> None:
        if self._admit(data):
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()
