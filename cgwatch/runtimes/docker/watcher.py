"""An id -> DockerContainer cache: one full listing, then the event stream; reconnects with backoff."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType

from .client import DockerClient, DockerError
from .parsing import DockerContainer, DockerEvent

log = logging.getLogger("cgwatch.docker")

# Event actions after which the cached container may differ from the daemon's view.
REFRESH_ACTIONS = frozenset({"create", "start", "restart", "rename", "update", "die", "stop"})
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 10.0

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
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # the caller's bug must not stop the cache from following Docker
            self.errors_total += 1
            log.exception("docker on_change callback failed", extra={"container": cid, "error": repr(exc)})
