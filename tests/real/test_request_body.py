"""A write's body is read whole, at most 4 KiB, within a deadline; Expect is answered after the checks.

Raw HTTP/1.1 bytes over a real socket to the real agent's API listener, so the body's framing
(split segments, chunks, a body that never comes) is exactly what the test writes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from aiohttp.test_utils import TestServer

from cgwatch.server.app import HTTP_LIMITS, create_app
from cgwatch.server.request_body import BODY_TIMEOUT, MAX_BODY_BYTES
from tests.real.test_bad_input import audit_lines, container  # noqa: F401 (a fixture)
from tests.real.test_limits_api import limit_files
from tests.support.served import serve_agent

pytestmark = pytest.mark.real

# Short enough that the deadline test takes about a second; long enough for a loaded CI machine
# to take in a body whose parts come PAUSE_S apart.
DEADLINE_S = 1.0
PAUSE_S = 0.3
BODY = b'{"cpus": 0.5}'


@pytest.fixture
async def listener(agent):
    """The agent's API listener on a real loopback port (host, port), the body deadline at DEADLINE_S."""
    app = create_app(agent, api=True)
    app[BODY_TIMEOUT] = DEADLINE_S
    server = TestServer(app)
    await server.start_server(**HTTP_LIMITS)
    yield server.host, server.port
    await server.close()


class Conn:
    """One HTTP/1.1 connection on which the test writes each byte and reads each response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, address: tuple[str, int]) -> Conn:
        reader, writer = await asyncio.open_connection(*address)
        # Each send() leaves as its own segment; the pauses between them are the test's.
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self) -> tuple[int, bytes]:
        """The next response's status and body (a 1xx has no body), within 10 s."""
        async with asyncio.timeout(10):
            status_line = await self.reader.readline()
            headers = {}
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            status = int(status_line.split()[1])
            length = 0 if status < 200 else int(headers.get("content-length", "0"))
            return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def head(address: tuple[str, int], cid: str, token: str | None, **headers: str) -> bytes:
    """A PATCH of ``cid``'s limits up to the blank line; the body is the test's to send."""
    fields = {"Host": "%s:%d" % address, "Content-Type": "application/json", **headers}
    if token:
        fields["Authorization"] = f"Bearer {token}"
    return (f"PATCH /api/v1/containers/{cid}/limits HTTP/1.1\r\n"
            + "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in fields.items()) + "\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112, 7.1)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.fixture
def unchanged(sandbox, agent, container):
    """Call after a refused request: no limit file changed, one "rejected" audit line."""
    before, audited = limit_files(sandbox, container[1]), len(audit_lines(agent))

    def check() -> list[dict]:
        assert limit_files(sandbox, container[1]) == before
        new = audit_lines(agent)[audited:]
        assert [line["result"] for line in new] == ["rejected"], new
        return new
    return check


async def test_a_body_split_across_two_segments_is_applied(sandbox, agent, listener, container):
    cid, cg = container
    conn = await Conn.open(listener)
    await conn.send(head(listener, cid, agent.token, Content_Length=str(len(BODY))) + BODY[:6])
    await asyncio.sleep(PAUSE_S)
    await conn.send(BODY[6:])
    status, body = await conn.response()
    conn.close()
    assert status == 200, body
    assert json.loads(body)["limits"]["cpus"] == 0.5
    quota = sandbox.read(cg, "cpu.max").split()[0] if sandbox.is_v2 else sandbox.read(cg, "cpu.cfs_quota_us").strip()
    assert int(quota) == 50000  # half of the default 100 ms period


async def test_a_chunked_body_past_4_kib_after_a_valid_first_chunk_is_a_413(agent, listener, container,
                                                                            unchanged):
    conn = await Conn.open(listener)
    await conn.send(head(listener, container[0], agent.token, Transfer_Encoding="chunked") + chunk(BODY))
    await asyncio.sleep(PAUSE_S)
    # JSON whitespace: the whole body would be a valid request if it were not too large.
    await conn.send(chunk(b" " * MAX_BODY_BYTES) + b"0\r\n\r\n")
    status, body = await conn.response()
    conn.close()
    assert status == 413, body
    assert json.loads(body)["error"] == "payload_too_large"
    unchanged()


async def malformed_chunked(address: tuple[str, int], cid: str, token: str) -> tuple[int, bytes]:
    """A chunked PATCH whose first chunk is a valid body and whose next chunk size is not a number."""
    conn = await Conn.open(address)
    await conn.send(head(address, cid, token, Transfer_Encoding="chunked") + chunk(BODY))
    await asyncio.sleep(PAUSE_S)
    await conn.send(b"zz\r\n  \r\n0\r\n\r\n")
    reply = await conn.response()
    conn.close()
    return reply


async def test_a_chunked_body_with_a_malformed_later_chunk_is_a_400(agent, listener, container,
                                                                   unchanged):
    status, body = await malformed_chunked(listener, container[0], agent.token)
    assert status == 400, body
    assert json.loads(body)["error"] == "invalid_request"
    unchanged()


async def test_cgwatch_serve_refuses_a_malformed_later_chunk_with_a_400(sandbox, container, tmp_path):
    """The same through the real server (its C HTTP parser and the connection guard), at the
    default deadline: a 400 at once, not a 408 ten seconds later."""
    cid, cg = container
    before = limit_files(sandbox, cg)
    with serve_agent(tmp_path) as served:
        host, port = served.api.removeprefix("http://").rsplit(":", 1)
        status, body = await malformed_chunked((host, int(port)), cid, served.token)
        audited = (served.state / "audit.log").read_text().splitlines()
    assert status == 400, body
    assert limit_files(sandbox, cg) == before
    assert [json.loads(line)["result"] for line in audited] == ["rejected"]


async def test_a_body_that_never_arrives_is_a_408_after_the_deadline(agent, listener, container,
                                                                    unchanged):
    conn = await Conn.open(listener)
    started = time.monotonic()
    await conn.send(head(listener, container[0], agent.token, Content_Length=str(len(BODY))))
    status, body = await conn.response()
    waited = time.monotonic() - started
    conn.close()
    assert status == 408, body
    assert json.loads(body)["error"] == "request_timeout"
    assert waited >= DEADLINE_S
    unchanged()


async def test_the_connection_is_closed_after_a_408(agent, listener, container):
    conn = await Conn.open(listener)
    await conn.send(head(listener, container[0], agent.token, Content_Length=str(len(BODY))))
    status, _ = await conn.response()
    # aiohttp would otherwise wait its lingering_time (10 s) for the body before closing.
    async with asyncio.timeout(5):
        rest = await conn.reader.read()
    conn.close()
    assert (status, rest) == (408, b"")


async def test_an_expectation_other_than_100_continue_is_a_417_and_audited(agent, listener, container,
                                                                          unchanged):
    conn = await Conn.open(listener)
    await conn.send(head(listener, container[0], agent.token, Content_Length=str(len(BODY)), Expect="bogus") + BODY)
    status, body = await conn.response()
    conn.close()
    assert status == 417, body
    assert json.loads(body)["error"] == "expectation_failed"
    unchanged()


async def test_100_continue_without_the_token_is_a_401_with_no_100_continue_first(listener, container,
                                                                                 unchanged):
    conn = await Conn.open(listener)
    await conn.send(head(listener, container[0], None, Content_Length=str(len(BODY)), Expect="100-continue"))
    status, body = await conn.response()  # the first response on the wire, whatever it is
    conn.close()
    assert status == 401, body
    unchanged()


async def test_100_continue_with_the_token_is_answered_before_the_body_then_applied(agent, listener,
                                                                                   container):
    conn = await Conn.open(listener)
    await conn.send(head(listener, container[0], agent.token, Content_Length=str(len(BODY)), Expect="100-continue"))
    interim, _ = await conn.response()  # before a byte of the body is sent
    await conn.send(BODY)
    status, body = await conn.response()
    conn.close()
    assert (interim, status) == (100, 200), body
    assert json.loads(body)["limits"]["cpus"] == 0.5

