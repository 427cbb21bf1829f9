"""Podman's libpod REST API over its unix socket (`podman system service`): list, inspect, update, events.

API reference: https://docs.podman.io/en/latest/_static/api.html (the libpod endpoints).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from ..base import RuntimeApiError
from ..docker.stream import OnBadLine
from ..jsonevents import JsonEventStream, error_message
from ..listing import inspect_each
from .parsing import PodmanContainer, PodmanEvent, parse_container, parse_event, parse_list_entry, parse_version

# Podman routes every /v{any}/libpod/ path to the same handlers; 4.3.0 is the first API with
# containers/{id}/update, so it is the version whose fields are parsed here.
API_PREFIX = "/v4.3.0/libpod"
# Events are asked for from a moment before the stream is opened: the container list that follows
# the opening then cannot miss a change (one seen twice is harmless, a refresh is idempotent).
# Podman replays them from its events log (`since`, any backend); the log is read from its start.
EVENTS_SINCE_MARGIN_S = 1.0


class PodmanError(RuntimeApiError):
    """Podman said no (``status`` is its HTTP status) or could not be reached (``status`` None)."""


def _socket_path(host: str) -> str:
    """``unix:///run/podman/podman.sock`` or a bare ``/run/podman/podman.sock`` -> the path."""
    if host.startswith("/"):
        return host
    parts = urlsplit(host)
    if parts.scheme == "unix" and parts.path:
        return parts.path
    raise ValueError(f"podman host {host!r}: use unix:///path/to/podman.sock or the socket's path")


class PodmanClient:
    """Async libpod API client over Podman's unix socket."""

    def __init__(self, host: str, timeout: float = 5.0):
        self.host = host
        self._socket = _socket_path(host)
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        # From the Libpod-Api-Version header of the last answer: which Podman this is decides what
        # its update does (plan.py). None until Podman has answered once.
        self.version: tuple[int, int, int] | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created on first use: a ClientSession belongs to the running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=self._socket))
        return self._session

    @staticmethod
    def _url(path: str) -> str:
        return f"http://podman{API_PREFIX}{path}"

    def _saw(self, resp: aiohttp.ClientResponse) -> None:
        version = parse_version(resp.headers.get("Libpod-Api-Version"))
        if version is not None:
            self.version = version

    async def _call(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                    body: Any = None) -> tuple[int, bytes]:
        """(status, body) of a 2xx answer; PodmanError for any other or none at all."""
        what = f"{method} {path}"
        try:
            async with self._get_session().request(
                    method, self._url(path), params=params, json=body,
                    timeout=aiohttp.ClientTimeout(total=self._timeout)) as resp:
                status, raw = resp.status, await resp.read()
                self._saw(resp)
        except TimeoutError as exc:
            raise PodmanError(None, f"{what}: no answer from {self.host} within {self._timeout} s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise PodmanError(None, f"{what}: {self.host} unreachable: {exc}") from exc
        if status >= 400:
            raise PodmanError(status, error_message(raw))
        return status, raw

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        _, raw = await self._call(method, path, **kw)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise PodmanError(200, f"{method} {path}: podman sent bad JSON: {exc}") from exc

    async def ping(self) -> None:
        """Returns when Podman answers ``/_ping``; PodmanError otherwise."""
        await self._call("GET", "/_ping")

    async def inspect(self, ref: str) -> PodmanContainer | None:
        """``ref`` (an ID, a unique ID prefix or a name) as Podman sees it; None if it does not know it."""
        try:
            data = await self._json("GET", f"/containers/{quote(ref, safe='')}/json")
        except PodmanError as exc:
            if exc.status == 404:
                return None
            raise
        try:
            return parse_container(data)
        except ValueError as exc:
            raise PodmanError(200, f"inspect {ref}: {exc}") from exc

    async def list_containers(self) -> list[PodmanContainer]:
        """All containers (running or not), each inspected, so an entry equals what an event's
        refresh would cache (the list's StartedAt has whole seconds only)."""
        entries = await self._json("GET", "/containers/json", params={"all": "true"})
        return await inspect_each("podman", entries, parse_list_entry, self.inspect, PodmanError)

    async def update(self, container_id: str, resources: Mapping[str, object]) -> None:
        """``POST /libpod/containers/{id}/update`` with an OCI LinuxResources body. PodmanError on
        4xx/5xx (404: Podman does not know the container)."""
        await self._call("POST", f"/containers/{quote(container_id, safe='')}/update", body=dict(resources))

    async def open_events(self, *, on_bad_line: OnBadLine | None = None) -> JsonEventStream[PodmanEvent]:
        """Start following container events. Returns once Podman has answered a ping (so a caller can
        list containers next): every change from a moment before this call on comes through the
        stream (``since``), whenever Podman gets to answering the request itself."""
        await self.ping()
        params = {"stream": "true", "since": f"{time.time() - EVENTS_SINCE_MARGIN_S:.6f}",
                  "filters": json.dumps({"type": ["container"]})}
        # No total/read timeout: the stream is idle for as long as nothing happens.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=None)

        async def get() -> aiohttp.ClientResponse:
            resp = await self._get_session().get(self._url("/events"), params=params, timeout=timeout)
            self._saw(resp)
            return resp

        return JsonEventStream(asyncio.create_task(get(), name="cgwatch-podman-events"), parse=parse_event,
                               error=PodmanError, host=self.host, what="podman", on_bad_line=on_bad_line)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
