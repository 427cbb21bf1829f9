"""A write's body: read whole to its end, at most MAX_BODY_BYTES, within a deadline; Expect answered here.

aiohttp's ``read(n)`` returns what has arrived so far, so one call can see half a body (split TCP
segments) or only the first chunk of a chunked one; this reads to EOF instead. aiohttp's route
``expect_handler`` runs before any middleware, so the write routes get ``defer_expect``, which does
nothing then: ``100 Continue`` is sent only once the Host, Origin and token checks have let the
request reach its handler, and an unknown expectation is a 417 the refusal middleware audits.
"""

from __future__ import annotations

import asyncio

from aiohttp import hdrs, web
from aiohttp.http import HttpVersion11
from aiohttp.http_exceptions import BadHttpMessage

from ..errors import ExpectationFailed, InvalidRequest, PayloadTooLarge, RequestTimeout

# Limit bodies are a few fields; anything bigger is not a limit request.
MAX_BODY_BYTES = 4096
# The whole body must arrive within this many seconds of the handler asking for it, as the
# headers must within connguard's HEADER_TIMEOUT_S (nginx's client_body_timeout, 60 s, is per read;
# this bounds the whole body, which is a few hundred bytes).
BODY_TIMEOUT_S = 10.0
# An app may set a shorter deadline (tests do); BODY_TIMEOUT_S otherwise.
BODY_TIMEOUT: web.AppKey[float] = web.AppKey("body_timeout_s", float)
# How often a body that is not arriving is checked for a framing error (see _next_part).
FRAMING_POLL_S = 0.1


async def defer_expect(request: web.Request) -> None:
    """The write routes' expect_handler: nothing at route-match time (see the module's docstring)."""


async def read_body(request: web.Request) -> bytes:
    """The whole body, once the request is past every check; domain errors for what is refused."""
    expect = request.headers.get(hdrs.EXPECT)
    # RFC 9110, 10.1.1: 100-continue is the only expectation defined; 417 for any other.
    if expect is not None and expect.lower() != "100-continue":
        raise ExpectationFailed("the only expectation served is 100-continue", expect=expect[:100])
    if (request.content_length or 0) > MAX_BODY_BYTES:  # refused before a byte of it is read
        raise _too_large()
    deadline_s = request.app.get(BODY_TIMEOUT, BODY_TIMEOUT_S)
    try:
        async with asyncio.timeout(deadline_s):
            if expect is not None and request.version == HttpVersion11:
                await _send_continue(request)
            return await _read_to_end(request)
    except TimeoutError:
        _abandon(request)
        raise RequestTimeout(f"the body did not arrive within {deadline_s:g} s")
    except BadHttpMessage as exc:  # a broken chunked framing or content coding
        raise InvalidRequest("the body's chunked framing or content coding is broken",
                             detail=str(exc.message).partition("\n")[0][:100])


async def _send_continue(request: web.Request) -> None:
    """As aiohttp's own _default_expect_handler does it (web_urldispatcher.py)."""
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0  # the response proper has not started
    await request.writer.drain()


async def _read_to_end(request: web.Request) -> bytes:
    """Read until EOF; refused as soon as it passes the cap (a chunked body declares no length)."""
    parts: list[bytes] = []
    size = 0
    while chunk := await _next_part(request):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        parts.append(chunk)
    return b"".join(parts)


async def _next_part(request: web.Request) -> bytes:
    """The next bytes of the body (b"" at its end), or the framing error that ended it.

    aiohttp's pure-Python parser gives a broken chunked framing to the body's reader; its C parser
    (the one installed wheels use, aiohttp 3.14) does not: it queues a 400 "message" behind this
    request on the connection and leaves the body waiting forever. So, while waiting, look at that
    queue every FRAMING_POLL_S; should aiohttp's internals change, the deadline still ends it.
    The body is then ended here, as the parser would have: else aiohttp, after the reply, lingers
    up to its lingering_time (10 s) for the rest of a body that can never come.
    """
    while True:
        try:
            async with asyncio.timeout(FRAMING_POLL_S):
                return await request.content.readany()
        except TimeoutError:
            if (exc := _queued_parse_error(request)) is not None:
                request.content.feed_eof()
                raise exc from None


def _queued_parse_error(request: web.Request) -> BadHttpMessage | None:
    for message, _payload in getattr(request.protocol, "_messages", ()):
        if isinstance(exc := getattr(message, "exc", None), BadHttpMessage):
            return exc
    return None


def _abandon(request: web.Request) -> None:
    """Close the connection once the reply is out (RFC 9110, 15.5.9: a 408 closes it); ending the
    body here spares the wait aiohttp would otherwise give the rest of it (its lingering_time)."""
    request.protocol.close()
    request.content.feed_eof()


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"a limits body is at most {MAX_BODY_BYTES} bytes")
