"""An id -> container cache for any runtime: one full listing, then its event stream; reconnects
with backoff. Docker's and Podman's adapters each give it a `Source` (their API client)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar

from .base import RuntimeApiError

log = logging.getLogger("cgwatch.runtimes")

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 10.0


class Keyed(Protocol):
    @property
    def id(self) -> str: ...


class Event(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def action(self) -> str: ...


C = TypeVar("C", bound=Keyed)


class EventStream(Protocol):
    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def aclose(self) -> None: ...


class Source(Protocol[C]):
    """A runtime API client as the watcher needs it; every failure is a RuntimeApiError."""

    host: str

    async def open_events(self, *, on_bad_line: Callable[[bytes, ValueError], None] | None = None) -> EventStream: ...

    async def list_containers(self) -> list[C]: ...

    async def inspect(self, container_id: str) -> C | None: ...


OnChange = Callable[[str, "C | None"], Awaitable[None] | None]
OnEvent = Callable[[str, str], Awaitable[None] | None]   # (container ID, action)


class CacheWatcher(Generic[C]):
    """Keeps an up-to-date id -> container cache from one full list plus the event stream;
    reconnects with capped exponential backoff (0.5 s .. 10 s) when the daemon is absent, stops or
    restarts; never raises into the caller.

    ``on_change(id, container_or_None)`` is called after each cache change: after every event-driven
    refresh (even if the fields kept here did not change: an ``update`` event changes limits, which
    are not cached) and for each difference a full re-list finds. None means the container is gone.
    """

    # Event actions after which the cached container may differ from the daemon's view, and those
    # that say it is gone: the runtime's own words (Docker's here; Podman's adapter passes its own).
    refresh_actions: frozenset[str] = frozenset({"create", "start", "restart", "rename", "update", "die", "stop",
                                                 "health_status"})
    remove_actions: frozenset[str] = frozenset({"destroy"})

    def __init__(self, client: Source[C], on_change: OnChange | None = None, *, what: str = "docker",
                 on_event: OnEvent | None = None):
        """``on_event(id, action)``: every event the runtime sends, before the cache acts on it
        (actions it does not act on too: Docker's ``oom``)."""
        self._client = client
        self._on_change = on_change
        self._on_event = on_event
        self._what = what  # the runtime's name in log lines
        self._cache: dict[str, C] = {}
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self.errors_total = 0  # connection failures/losses, bad stream lines, failed refreshes, callback errors

    # Reads may come from worker threads (the agent scans cgroups in one): dict.get and dict.copy
    # are atomic under the GIL, and a re-list swaps in a whole new dict.
    def get(self, container_id: str) -> C | None:
        return self._cache.get(container_id)

    def all(self) -> Mapping[str, C]:
        return MappingProxyType(self._cache.copy())

    @property
    def connected(self) -> bool:
        return self._connected

    async def refresh(self, ref: str) -> C | None:
        """Inspect ``ref`` now (an ID, a unique ID prefix or a name: the daemon resolves it) and put
        the answer in the cache. For a caller that just saw a container the events have not brought
        yet (they lag by a few ms of event-loop time). None when Docker does not know it or cannot be
        asked (logged and counted, never raised)."""
        try:
            found = await self._client.inspect(ref)
        except RuntimeApiError as exc:
            self.errors_total += 1
            log.warning(f"{self._what} refresh failed", extra={"ref": ref[:200], "error": exc.message, "status": exc.status})
            return None
        if found is not None and self._cache.get(found.id) != found:
            self._cache[found.id] = found
            await self._notify(found.id, found)
        return found

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"cgwatch-{self._what}-watcher")

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
            except RuntimeApiError as exc:
                self._failed(f"{self._what} unreachable", exc, failures)
                failures += 1
            else:
                try:
                    self._connected = True
                    log.info(f"{self._what} event stream connected", extra={"runtime": self._what, "host": self._client.host})
                    # Re-list after every (re)connect: while we were not listening containers may have
                    # come, gone or changed, and no event will ever tell us. The stream is already open,
                    # so whatever happens during the list is queued in it and applied afterwards.
                    await self._relist()
                    delay, failures = BACKOFF_MIN_S, 0
                    async for ev in stream:
                        await self._handle(ev)
                    raise RuntimeApiError(None, "the daemon closed the event stream")
                except RuntimeApiError as exc:
                    self._failed(f"{self._what} event stream lost", exc, failures)
                    failures += 1
                except Exception as exc:  # a bug must not end the watcher: log it, start over
                    self.errors_total += 1
                    failures += 1
                    log.exception(f"{self._what} watcher failed", extra={"error": repr(exc)})
                finally:
                    self._connected = False
                    await stream.aclose()
            log.log(logging.INFO if failures <= 1 else logging.DEBUG, f"{self._what} reconnect backoff",
                    extra={"backoff_s": delay, "attempt": failures})
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    def _failed(self, what: str, exc: RuntimeApiError, streak: int) -> None:
        self.errors_total += 1
        log.log(logging.WARNING if streak == 0 else logging.DEBUG, what,
                extra={"runtime": self._what, "host": self._client.host, "error": exc.message, "status": exc.status,
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
        log.info(f"{self._what} containers listed", extra={"containers": len(new), "was": len(old)})

    async def _handle(self, ev: Event) -> None:
        action = ev.action.split(":", 1)[0].strip()
        if self._on_event is not None:
            await self._event(ev.id, action)
        if action in self.remove_actions:
            if self._cache.pop(ev.id, None) is not None:
                await self._notify(ev.id, None)
            return
        if action not in self.refresh_actions:
            return
        try:
            found = await self._client.inspect(ev.id)
        except RuntimeApiError as exc:
            if exc.status is None:
                raise  # connection gone: reconnect and re-list
            self.errors_total += 1
            log.warning(f"{self._what} inspect after event failed",
                        extra={"container": ev.id, "action": action, "error": exc.message, "status": exc.status})
            return
        if found is None:  # already removed: a destroy event follows (or was missed)
            if self._cache.pop(ev.id, None) is not None:
                await self._notify(ev.id, None)
            return
        self._cache[found.id] = found
        await self._notify(found.id, found)

    async def _notify(self, cid: str, container: C | None) -> None:
        if self._on_change is None:
            return
        try:
            result = self._on_change(cid, container)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # the caller's bug must not stop the cache from following Docker
            self.errors_total += 1
            log.exception(f"{self._what} on_change callback failed", extra={"container": cid, "error": repr(exc)})

    async def _event(self, cid: str, action: str) -> None:
        assert self._on_event is not None
        try:
            result = self._on_event(cid, action)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # as for on_change
            self.errors_total += 1
            log.exception(f"{self._what} on_event callback failed", extra={"container": cid, "error": repr(exc)})
