"""Docker Engine API client (async, aiohttp) and a watcher that keeps an id -> container cache.

The API version is pinned to v1.41 (Docker 20.10): every later daemon still serves it, so the
fields parsed here mean the same thing on every daemon we meet. Pure pieces (``parse_container``,
``parse_docker_time``, ``parse_event``, ``JsonStreamDecoder``) are public so they can be tested
without a daemon.
"""

from __future__ import annotations

import asyncio
import inspect as _inspect
import json
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

log = logging.getLogger("cgwatch.docker")

API_VERSION = "v1.41"
DEFAULT_HOST = "unix:///var/run/docker.sock"
# Event actions after which the cached container may differ from the daemon's view.
REFRESH_ACTIONS = frozenset({"create", "start", "restart", "rename", "update", "die", "stop"})
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 10.0
_INSPECT_CONCURRENCY = 8
_MAX_EVENT_LINE = 1 << 20  # one event is ~1 KiB (labels included); more means a broken stream


class DockerError(Exception):
    """The daemon said no (``status`` is its HTTP status) or could not be reached (``status`` None)."""

    def __init__(self, status: int | None, message: str):
        super().__init__(f"{status}: {message}" if status is not None else message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class DockerContainer:
    id: str
    name: str                      # without the leading '/'
    image: str                     # Config.Image as the user gave it (e.g. 'local/busybox')
    labels: Mapping[str, str]      # Config.Labels (never env vars)
    created: float | None          # epoch seconds
    started_at: float | None       # State.StartedAt; None if never started
    pid: int | None                # State.Pid; None when 0 (not running)
    running: bool
    cgroup_parent: str = ""        # HostConfig.CgroupParent ('' = the daemon's default)


@dataclass(frozen=True, slots=True)
class DockerEvent:
    action: str                    # as sent: 'start', 'exec_start: sh -c ...', 'health_status: healthy'
    id: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    time: float = 0.0              # epoch seconds


# --- pure parsing ---------------------------------------------------------------------------

_TIME_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)")


def parse_docker_time(value: str | float | None) -> float | None:
    """RFC 3339 with up to nanosecond fractions (Docker's format) -> epoch seconds.

    None for a missing value and for Go's zero time ``0001-01-01T00:00:00Z``, which Docker sends for
    "never" (e.g. StartedAt of a created, never started container). Numbers are taken as epoch
    seconds (the list endpoint's ``Created``). Raises ValueError for anything else.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        return float(value) if value > 0 else None
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    m = _TIME_RE.fullmatch(value.strip())
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if year <= 1:
        return None
    zone = m.group(8)
    if zone in ("Z", "z"):
        tz = timezone.utc
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    # datetime keeps microseconds at most: add the fraction separately so nanoseconds parse too.
    whole = datetime(year, month, day, hour, minute, second, tzinfo=tz).timestamp()
    frac = m.group(7)
    return whole + (int(frac) / 10 ** len(frac) if frac else 0.0)


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _time_field(value: Any, what: str, cid: str) -> float | None:
    try:
        return parse_docker_time(value)
    except ValueError as exc:
        log.warning("unparseable docker time", extra={"container": cid, "field": what, "error": str(exc)})
        return None


def parse_container(data: Mapping[str, Any]) -> DockerContainer:
    """``GET /containers/{id}/json`` (inspect) -> DockerContainer. ValueError without an ``Id``."""
    if not isinstance(data, Mapping):
        raise ValueError("inspect JSON is not an object")
    cid = data.get("Id")
    if not isinstance(cid, str) or not cid:
        raise ValueError("inspect JSON without an Id")
    config = data.get("Config") or {}
    state = data.get("State") or {}
    host_config = data.get("HostConfig") or {}
    pid = state.get("Pid")
    return DockerContainer(
        id=cid,
        name=str(data.get("Name") or "").lstrip("/"),
        # Config.Image is what the user asked for; the top-level Image is the resolved sha256 ID.
        image=str(config.get("Image") or data.get("Image") or ""),
        labels=_str_map(config.get("Labels")),
        created=_time_field(data.get("Created"), "Created", cid),
        started_at=_time_field(state.get("StartedAt"), "State.StartedAt", cid),
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None,
        running=bool(state.get("Running")),
        cgroup_parent=str(host_config.get("CgroupParent") or ""),
    )


def parse_list_entry(data: Mapping[str, Any]) -> DockerContainer:
    """One entry of ``GET /containers/json``: a fallback when inspect fails (no StartedAt, no Pid)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("Id"), str) or not data["Id"]:
        raise ValueError("container list entry without an Id")
    cid = data["Id"]
    names = data.get("Names") or []
    host_config = data.get("HostConfig") or {}
    return DockerContainer(
        id=cid,
        name=str(names[0]).lstrip("/") if names else "",
        image=str(data.get("Image") or ""),
        labels=_str_map(data.get("Labels")),
        created=_time_field(data.get("Created"), "Created", cid),
        started_at=None,
        pid=None,
        running=data.get("State") == "running",
        cgroup_parent=str(host_config.get("CgroupParent") or "") if isinstance(host_config, Mapping) else "",
    )


def parse_event(data: Any) -> DockerEvent | None:
    """One object of ``GET /events`` -> DockerEvent; None for a non-container event.

    ValueError for something that is not an event at all (not an object, a container event with no ID).
    """
    if not isinstance(data, Mapping):
        raise ValueError("event is not a JSON object")
    if data.get("Type", "container") != "container":
        return None
    actor = data.get("Actor") if isinstance(data.get("Actor"), Mapping) else {}
    cid = actor.get("ID") or data.get("id")
    action = data.get("Action") or data.get("status")
    if not isinstance(cid, str) or not cid or not isinstance(action, str) or not action:
        raise ValueError("container event without an ID or an action")
    nanos = data.get("timeNano")
    if isinstance(nanos, int) and not isinstance(nanos, bool) and nanos > 0:
        when = nanos / 1e9
    else:
        t = data.get("time")
        when = float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else 0.0
    return DockerEvent(action=action, id=cid, attributes=_str_map(actor.get("Attributes")), time=when)


class JsonStreamDecoder:
    """Incremental decoder for a stream of JSON objects, one per line, whose bytes arrive in chunks
    cut anywhere (mid-object, mid-UTF-8 sequence). Several objects on one line are accepted too.

    ``feed`` returns the objects completed by a chunk; ``flush`` those left at end of stream. A bad
    line is counted in ``errors``, passed to ``on_error(line, exc)`` and skipped: decoding goes on
    at the next newline.
    """

    def __init__(self, on_error: Callable[[bytes, ValueError], None] | None = None,
                 max_line: int = _MAX_EVENT_LINE):
        self._buf = bytearray()
        self._on_error = on_error
        self._max_line = max_line
        self._decoder = json.JSONDecoder()
        self._skipping = False  # dropping the rest of an overlong line
        self.errors = 0

    def feed(self, data: bytes) -> list[Any]:
        out: list[Any] = []
        start = len(self._buf)  # the bytes before had no newline: search only the new ones first
        self._buf += data
        while True:
            nl = self._buf.find(b"\n", start)
            start = 0
            if nl < 0:
                break
            line = bytes(self._buf[:nl])
            del self._buf[:nl + 1]
            if self._skipping:
                self._skipping = False
                continue
            out.extend(self._decode_line(line))
        if len(self._buf) > self._max_line:
            self._bad(bytes(self._buf[:200]), ValueError(f"line longer than {self._max_line} bytes"))
            self._buf.clear()
            self._skipping = True
        return out

    def flush(self) -> list[Any]:
        """End of stream: decode a last line that had no newline."""
        line = bytes(self._buf)
        self._buf.clear()
        skipping, self._skipping = self._skipping, False
        return [] if skipping else self._decode_line(line)

    def _decode_line(self, line: bytes) -> list[Any]:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._bad(line, exc)
            return []
        objs: list[Any] = []
        pos, end = 0, len(text)
        while True:
            while pos < end and text[pos].isspace():
                pos += 1
            if pos >= end:
                return objs
            try:
                obj, pos = self._decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                self._bad(line, exc)
                return objs  # keep what decoded before the damage
            objs.append(obj)

    def _bad(self, line: bytes, exc: ValueError) -> None:
        self.errors += 1
        if self._on_error is not None:
            self._on_error(line, exc)


# --- the client -----------------------------------------------------------------------------

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


def _error_message(raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:500]
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return body["message"]
    return str(body)[:500]


class DockerEventStream:
    """An open ``GET /events`` response: iterate it for DockerEvents; ends when the daemon closes it.

    Raises DockerError(None, ...) when the connection breaks mid-stream. ``aclose`` drops it.
    """

    def __init__(self, resp: aiohttp.ClientResponse, on_bad_line: Callable[[bytes, ValueError], None] | None):
        self._resp = resp
        self._user_on_bad = on_bad_line
        self._decoder = JsonStreamDecoder(on_error=self._bad_line)
        self._pending: deque[DockerEvent] = deque()
        self._eof = False

    def __aiter__(self) -> DockerEventStream:
        return self

    async def __anext__(self) -> DockerEvent:
        while not self._pending:
            if self._eof:
                raise StopAsyncIteration
            try:
                chunk = await self._resp.content.readany()
            except (aiohttp.ClientError, OSError) as exc:
                raise DockerError(None, f"event stream broke: {exc!r}") from exc
            if chunk:
                objs = self._decoder.feed(chunk)
            else:
                self._eof = True
                objs = self._decoder.flush()
            for obj in objs:
                try:
                    ev = parse_event(obj)
                except ValueError as exc:
                    self._bad_line(json.dumps(obj).encode()[:200], exc)
                    continue
                if ev is not None:
                    self._pending.append(ev)
        return self._pending.popleft()

    def _bad_line(self, line: bytes, exc: ValueError) -> None:
        log.warning("bad line in the docker event stream", extra={"error": str(exc), "line": line[:200]})
        if self._user_on_bad is not None:
            self._user_on_bad(line, exc)

    async def aclose(self) -> None:
        # close, not release: the body was not read to its end, the connection cannot be reused.
        self._resp.close()


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
            raise DockerError(status, _error_message(raw))
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

    async def list_containers(self) -> list[DockerContainer]:
        """All containers (running or not), each inspected for StartedAt and Pid."""
        entries = await self._call("GET", "/containers/json", params={"all": "1"})
        if not isinstance(entries, list):
            raise DockerError(200, "container list is not a JSON array")
        sem = asyncio.Semaphore(_INSPECT_CONCURRENCY)

        async def one(entry: Any) -> DockerContainer | None:
            try:
                fallback = parse_list_entry(entry)
            except ValueError as exc:
                log.warning("bad docker container list entry", extra={"error": str(exc)})
                return None
            async with sem:
                try:
                    # None: removed between the list and the inspect.
                    return await self.inspect(fallback.id)
                except DockerError as exc:
                    if exc.status is None:
                        raise  # the daemon went away: the whole list is void
                    # One container the daemon cannot inspect must not hide all the others.
                    log.warning("docker inspect failed; using the list entry",
                                extra={"container": fallback.id, "error": exc.message, "status": exc.status})
                    return fallback

        found = await asyncio.gather(*(one(e) for e in entries))
        return [c for c in found if c is not None]

    async def update(self, container_id: str, resources: Mapping[str, object]) -> list[str]:
        """``POST /containers/{id}/update``; returns the daemon's Warnings. DockerError on 4xx/5xx."""
        data = await self._call("POST", f"/containers/{quote(container_id, safe='')}/update", body=dict(resources))
        warnings = data.get("Warnings") if isinstance(data, Mapping) else None
        return [str(w) for w in warnings] if isinstance(warnings, list) else []

    async def open_events(self, *, on_bad_line: Callable[[bytes, ValueError], None] | None = None
                          ) -> DockerEventStream:
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
            try:
                raw = await resp.read()
            except (aiohttp.ClientError, OSError):
                raw = b""
            finally:
                resp.release()
            raise DockerError(resp.status, _error_message(raw))
        return DockerEventStream(resp, on_bad_line)

    async def events(self, *, on_bad_line: Callable[[bytes, ValueError], None] | None = None
                     ) -> AsyncIterator[DockerEvent]:
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


# --- the watcher ----------------------------------------------------------------------------

OnChange = Callable[[str, DockerContainer | None], Awaitable[None] | None]


class DockerWatcher:
    """Keeps an up-to-date id -> DockerContainer cache from one full list plus the event stream;
    reconnects with capped exponential backoff (0.5 s .. 10 s) when dockerd is absent, stops or
    restarts; never raises into the caller.

    ``on_change(id, container_or_None)`` is called after each cache change: after every event-driven
    refresh (even if the fields kept here did not change: an ``update`` event changes limits, which
    are not cached) and for each difference a full re-list finds. None means the container is gone.
    """

    def __init__(self, client: DockerClient, on_change: OnChange | None = None):
        self._client = client
        self._on_change = on_change
        self._cache: dict[str, DockerContainer] = {}
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self.errors_total = 0  # connection failures/losses, bad stream lines, failed refreshes, callback errors

    # Reads may come from worker threads (the agent scans cgroups in one): dict.get and dict.copy
    # are atomic under the GIL, and a re-list swaps in a whole new dict.
    def get(self, container_id: str) -> DockerContainer | None:
        return self._cache.get(container_id)

    def all(self) -> Mapping[str, DockerContainer]:
        return MappingProxyType(self._cache.copy())

    @property
    def connected(self) -> bool:
        return self._connected

    async def refresh(self, ref: str) -> DockerContainer | None:
        """Inspect ``ref`` now (an ID, a unique ID prefix or a name: the daemon resolves it) and put
        the answer in the cache. For a caller that just saw a container the events have not brought
        yet (they lag by a few ms of event-loop time). None when Docker does not know it or cannot be
        asked (logged and counted, never raised)."""
        try:
            found = await self._client.inspect(ref)
        except DockerError as exc:
            self.errors_total += 1
            log.warning("docker refresh failed", extra={"ref": ref[:200], "error": exc.message, "status": exc.status})
            return None
        if found is not None and self._cache.get(found.id) != found:
            self._cache[found.id] = found
            await self._notify(found.id, found)
        return found

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="cgwatch-docker-watcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        # wait() rather than `await task`: the task's CancelledError must not be confused with a
        # cancellation of stop() itself.
        await asyncio.wait({task})
        self._connected = False

    async def _run(self) -> None:
        delay = BACKOFF_MIN_S
        failures = 0  # consecutive: the first is a warning, the rest of a streak are quieter
        while True:
            try:
                stream = await self._client.open_events(on_bad_line=self._bad_line)
            except DockerError as exc:
                self._failed("docker unreachable", exc, failures)
                failures += 1
            else:
                try:
                    self._connected = True
                    log.info("docker event stream connected", extra={"docker_host": self._client.host})
                    # Re-list after every (re)connect: while we were not listening containers may have
                    # come, gone or changed, and no event will ever tell us. The stream is already open,
                    # so whatever happens during the list is queued in it and applied afterwards.
                    await self._relist()
                    delay, failures = BACKOFF_MIN_S, 0
                    async for ev in stream:
                        await self._handle(ev)
                    raise DockerError(None, "the daemon closed the event stream")
                except DockerError as exc:
                    self._failed("docker event stream lost", exc, failures)
                    failures += 1
                except Exception as exc:  # a bug must not end the watcher: log it, start over
                    self.errors_total += 1
                    failures += 1
                    log.exception("docker watcher failed", extra={"error": repr(exc)})
                finally:
                    self._connected = False
                    await stream.aclose()
            log.log(logging.INFO if failures <= 1 else logging.DEBUG, "docker reconnect backoff",
                    extra={"backoff_s": delay, "attempt": failures})
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    def _failed(self, what: str, exc: DockerError, streak: int) -> None:
        self.errors_total += 1
        log.log(logging.WARNING if streak == 0 else logging.DEBUG, what,
                extra={"docker_host": self._client.host, "error": exc.message, "status": exc.status,
                       "errors_total": self.errors_total})

    def _bad_line(self, line: bytes, exc: ValueError) -> None:
        self.errors_total += 1  # the stream already logged it

    async def _relist(self) -> None:
        containers = await self._client.list_containers()
        new = {c.id: c for c in containers}
        old, self._cache = self._cache, new
        for cid in old.keys() - new.keys():
            await self._notify(cid, None)
        for cid, c in new.items():
            if old.get(cid) != c:
                await self._notify(cid, c)
        log.info("docker containers listed", extra={"containers": len(new), "was": len(old)})

    async def _handle(self, ev: DockerEvent) -> None:
        action = ev.action.split(":", 1)[0].strip()
        if action == "destroy":
            if self._cache.pop(ev.id, None) is not None:
                await self._notify(ev.id, None)
            return
        if action not in REFRESH_ACTIONS:
            return
        try:
            found = await self._client.inspect(ev.id)
        except DockerError as exc:
            if exc.status is None:
                raise  # connection gone: reconnect and re-list
            self.errors_total += 1
            log.warning("docker inspect after event failed",
                        extra={"container": ev.id, "action": action, "error": exc.message, "status": exc.status})
            return
        if found is None:  # already removed: a destroy event follows (or was missed)
            if self._cache.pop(ev.id, None) is not None:
                await self._notify(ev.id, None)
            return
        self._cache[found.id] = found
        await self._notify(found.id, found)

    async def _notify(self, cid: str, container: DockerContainer | None) -> None:
        if self._on_change is None:
            return
        try:
            result = self._on_change(cid, container)
            if _inspect.isawaitable(result):
                await result
        except Exception as exc:  # the caller's bug must not stop the cache from following Docker
            self.errors_total += 1
            log.exception("docker on_change callback failed", extra={"container": cid, "error": repr(exc)})
