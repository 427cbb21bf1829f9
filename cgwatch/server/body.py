"""Sending the (large) exposition: gzip when the client takes it, and in chunks either way.

aiohttp writes a ``Response`` body with one ``transport.write``; what the socket does not take at
once, asyncio copies into that connection's buffer. With a 9 MB exposition and 50 slow readers
that is ~450 MB of copies (bench/LOAD.md). Writing 256 KiB at a time through ``StreamResponse``
waits for each chunk to drain (aiohttp drains past 64 KiB buffered), so a connection holds at
most about one chunk, however slowly it reads.
"""

from __future__ import annotations

from aiohttp import web

CHUNK_BYTES = 256 * 1024


def accepts_gzip(header: str) -> bool:
    """``Accept-Encoding`` gives gzip a q above 0, by name or through ``*`` (RFC 9110, 12.5.3)."""
    weights: dict[str, float] = {}
    for part in header.split(","):
        coding, _, params = part.partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        weights[coding.strip().lower()] = q
    named = [weights[c] for c in ("gzip", "x-gzip") if c in weights]
    return (max(named) if named else weights.get("*", 0.0)) > 0


async def send(request: web.Request, body: bytes, headers: dict[str, str]) -> web.StreamResponse:
    resp = web.StreamResponse(headers=headers)
    resp.content_length = len(body)
    await resp.prepare(request)
    if request.method != "HEAD":
        view = memoryview(body)
        for start in range(0, len(body), CHUNK_BYTES):
            await resp.write(view[start:start + CHUNK_BYTES])
    await resp.write_eof()
    return resp
