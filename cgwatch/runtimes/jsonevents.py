"""A runtime's event stream as HTTP serves it: one long response whose body is a run of JSON objects
(Docker's `GET /events`, Podman's `GET /libpod/events`), decoded as it arrives.

The request is a task from the moment the stream is made and its answer is awaited at the first
iteration: Podman sends the response's headers only with the first event (podman issues #7263,
#23712), so a caller that waited for them before listing would wait for the next event.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import aiohttp

from .base import RuntimeApiError
from .docker.stream import JsonStreamDecoder, OnBadLine

log = logging.getLogger("cgwatch.runtimes")
E = TypeVar("E")


def error_message(raw: bytes) -> str:
    """An error body's message: Docker's and libpod's are both {"message": ...} JSON."""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:500]
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return body["message"]
    return str(body)[:500]


async def refused(resp: aiohttp.ClientResponse, error: type[RuntimeApiError]) -> RuntimeApiError:
    """The error for a non-200 answer, its body read and the connection released."""
    try:
        raw = await resp.read()
    except (aiohttp.ClientError, OSError):
        raw = b""
    finally:
        resp.release()
    return error(resp.status, error_message(raw))


class JsonEventStream(Generic[E]):
    """Iterate for events (``parse`` of each object; None skips one); ends when the daemon closes
    the body. Raises ``error(None, ...)`` when the connection breaks, ``error(status, ...)`` when the
    daemon refused the request. ``aclose`` drops it, waiting for headers or not."""

    def __init__(self, request: asyncio.Future[aiohttp.ClientResponse], *, parse: Callable[[Any], E | None],
                 error: type[RuntimeApiError], host: str, what: str, on_bad_line: OnBadLine | None = None):
        self._request = request
        self._parse = parse
        self._error = error
        self._host = host
        self._what = what  # "docker", "podman": log lines
        self._resp: aiohttp.ClientResponse | None = None
        self._user_on_bad = on_bad_line
        self._decoder = JsonStreamDecoder(on_error=self._bad_line)
        self._pending: deque[E] = deque()
        self._eof = False

    def __aiter__(self) -> JsonEventStream[E]:
        return self

    async def __anext__(self) -> E:
        while not self._pending:
            if self._eof:
                raise StopAsyncIteration
            resp = await self._response()
            try:
                chunk = await resp.content.readany()
            except (aiohttp.ClientError, OSError) as exc:
                raise self._error(None, f"event stream broke: {exc!r}") from exc
            if chunk:
                objs = self._decoder.feed(chunk)
            else:
                self._eof = True
                objs = self._decoder.flush()
            for obj in objs:
                try:
                    ev = self._parse(obj)
                except ValueError as exc:
                    self._bad_line(json.dumps(obj).encode()[:200], exc)
                    continue
                if ev is not None:
                    self._pending.append(ev)
        return self._pending.popleft()

    async def _response(self) -> aiohttp.ClientResponse:
        if self._resp is not None:
            return self._resp
        try:
            resp = await self._request
        except (aiohttp.ClientError, OSError) as exc:
            raise self._error(None, f"event stream: {self._host} unreachable: {exc}") from exc
        if resp.status != 200:
            raise await refused(resp, self._error)
        self._resp = resp
        return resp

    def _bad_line(self, line: bytes, exc: ValueError) -> None:
        log.warning(f"bad line in the {self._what} event stream", extra={"error": str(exc), "line": line[:200]})
        if self._user_on_bad is not None:
            self._user_on_bad(line, exc)

    async def aclose(self) -> None:
        if self._resp is None:
            # Still waiting for the headers: stop waiting; an answer that came meanwhile is closed too.
            self._request.cancel()
            await asyncio.wait({self._request})
            if not self._request.cancelled() and self._request.exception() is None:
                self._resp = self._request.result()
        if self._resp is not None:
            # close, not release: the body was not read to its end, the connection cannot be reused.
            self._resp.close()


def opened(resp: aiohttp.ClientResponse) -> asyncio.Future[aiohttp.ClientResponse]:
    """An answer already had (Docker sends its headers at once), as the stream's request."""
    done: asyncio.Future[aiohttp.ClientResponse] = asyncio.get_running_loop().create_future()
    done.set_result(resp)
    return done
