"""The Docker Engine API over HTTP (a unix socket or tcp): inspect, list, update and the event stream."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from ...config import DEFAULT_DOCKER_HOST
from ..base import RuntimeApiError
from ..jsonevents import JsonEventStream, error_message, opened, refused
from ..listing import inspect_each
from .parsing import DockerContainer, DockerEvent, parse_container, parse_event, parse_list_entry
from .stream import OnBadLine

log = logging.getLogger("cgwatch.docker")

# Pinned to v1.41 (Docker 20.10): every later daemon still serves it, so the fields parsed here mean
# the same thing on every daemon we meet.
API_VERSION = "v1.41"
DEFAULT_HOST = DEFAULT_DOCKER_HOST


class DockerError(RuntimeApiError):
    """The daemon said no (``status`` is its HTTP status) or could not be reached (``status`` None)."""


def _split_host(host: str) -> tuple[str | None, str]:
    """``host`` -> (unix socket path or None, base URL)."""
    if host.startswith("/"):
        return host, "http://docker"
    parts = urlsplit(host)
    if parts.scheme == "unix":
        path = parts.path or ""
        if not path:
            raise ValueError(f"docker host {host!r}: no socket path")
        return path, "http://docker"
    if parts.scheme in ("tcp", "http", "https"):
        if not parts.netloc:
            raise ValueError(f"docker host {host!r}: no host:port")
        return None, f"{'https' if parts.scheme == 'https' else 'http'}://{parts.netloc}"
    raise ValueError(f"docker host {host!r}: use unix:///path, tcp://host:port or http://host:port")


class DockerClient:
    """Async Docker Engine API client over the unix socket (or tcp:// / http://)."""

    def __init__(self, host: str = DEFAULT_HOST, timeout: float = 5.0):
        self.host = host
        self._socket, self._base = _split_host(host)
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created on first use: a ClientSession belongs to the running event loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.UnixConnector(path=self._socket) if self._socket else aiohttp.TCPConnector()
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def _url(self, path: str) -> str:
        return f"{self._base}/{API_VERSION}{path}"

    async def _call(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                    body: Any = None, none_on_404: bool = False) -> Any:
        what = f"{method} {path}"
        try:
            async with self._get_session().request(
                    method, self._url(path), params=params, json=body,
                    timeout=aiohttp.ClientTimeout(total=self._timeout)) as resp:
                status, raw = resp.status, await resp.read()
        except TimeoutError as exc:
            raise DockerError(None, f"{what}: no answer from {self.host} within {self._timeout} s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise DockerError(None, f"{what}: {self.host} unreachable: {exc}") from exc
        if status == 404 and none_on_404:
            return None
        if status >= 400:
            raise DockerError(status, error_message(raw))
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise DockerError(status, f"{what}: the daemon sent bad JSON: {exc}") from exc

    async def ping(self) -> bool:
        """True when the daemon answers ``/_ping``; False when it is unreachable or unhealthy."""
        try:
            async with self._get_session().get(self._url("/_ping"),
                                               timeout=aiohttp.ClientTimeout(total=self._timeout)) as resp:
                return resp.status == 200 and (await resp.read()).strip() == b"OK"
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.debug("docker ping failed", extra={"docker_host": self.host, "error": repr(exc)})
            return False

    async def inspect_raw(self, container_id: str) -> dict[str, Any] | None:
        """The full inspect JSON, or None when the daemon does not know the container (404)."""
        data = await self._call("GET", f"/containers/{quote(container_id, safe='')}/json", none_on_404=True)
        if data is not None and not isinstance(data, dict):
            raise DockerError(200, "inspect answer is not a JSON object")
        return data

    async def inspect(self, container_id: str) -> DockerContainer | None:
        data = await self.inspect_raw(container_id)
        if data is None:
            return None
        try:
            return parse_container(data)
        except ValueError as exc:
            raise DockerError(200, f"inspect {container_id}: {exc}") from exc

    async def listed(self, container_id: str) -> DockerContainer | None:
        """The list entry of one container (full ID), None when the daemon has none: its name, image
        and labels without waiting. Inspect waits while dockerd holds the container's lock, which
        is all of its start (measured here: 0.2-0.6 s when asked at the cgroup's mkdir, the list
        1-2 ms); the list reads dockerd's in-memory view instead."""
        entries = await self._call("GET", "/containers/json",
                                   params={"all": "1", "filters": json.dumps({"id": [container_id]})})
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, Mapping) and entry.get("Id") == container_id:  # the filter takes prefixes
                try:
                    return parse_list_entry(entry)
                except ValueError as exc:
                    raise DockerError(200, f"list entry of {container_id}: {exc}") from exc
        return None

    async def list_containers(self) -> list[DockerContainer]:
        """All containers (running or not), each inspected for StartedAt and Pid."""
        entries = await self._call("GET", "/containers/json", params={"all": "1"})
        return await inspect_each("docker", entries, parse_list_entry, self.inspect, DockerError)

    async def update(self, container_id: str, resources: Mapping[str, object]) -> list[str]:
        """``POST /containers/{id}/update``; returns the daemon's Warnings. DockerError on 4xx/5xx."""
        data = await self._call("POST", f"/containers/{quote(container_id, safe='')}/update", body=dict(resources))
        warnings = data.get("Warnings") if isinstance(data, Mapping) else None
        return [str(w) for w in warnings] if isinstance(warnings, list) else []

    async def open_events(self, *, on_bad_line: OnBadLine | None = None) -> JsonEventStream[DockerEvent]:
        """Open the container event stream; returns once the daemon has accepted it, so a caller can
        list containers afterwards knowing that every later change is queued in the stream."""
        params = {"filters": json.dumps({"type": ["container"]})}
        # No total/read timeout: the stream is idle for as long as nothing happens.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=None)
        async def get() -> aiohttp.ClientResponse:
            return await self._get_session().get(self._url("/events"), params=params, timeout=timeout)

        try:
            # wait_for: the ClientTimeout above covers the connect only, this covers the headers too.
            resp = await asyncio.wait_for(get(), self._timeout)
        except TimeoutError as exc:
            raise DockerError(None, f"GET /events: no answer from {self.host} within {self._timeout} s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise DockerError(None, f"GET /events: {self.host} unreachable: {exc}") from exc
        if resp.status != 200:
            raise await refused(resp, DockerError)
        return JsonEventStream(opened(resp), parse=parse_event, error=DockerError, host=self.host, what="docker",
                               on_bad_line=on_bad_line)

    async def events(self, *, on_bad_line: OnBadLine | None = None) -> AsyncIterator[DockerEvent]:
        """Container events as they happen. Ends when the daemon closes the stream; DockerError when
        it cannot be opened or breaks."""
        stream = await self.open_events(on_bad_line=on_bad_line)
        try:
            async for ev in stream:
                yield ev
        finally:
            await stream.aclose()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
