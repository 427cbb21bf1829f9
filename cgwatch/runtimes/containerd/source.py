"""containerd as runtimes/watch.py's CacheWatcher wants a runtime: a listing of every namespace,
one container looked up, and the event stream.

A containerd ID is unique only within its namespace (`ctr -n a run x` and `ctr -n b run x` both
exist), so the cache's key is "<namespace>/<id>" (neither may hold a '/': containerd's
identifiers.Validate).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ..base import RuntimeContainer
from .client import ContainerdClient, ContainerdError, EventSubscription
from .parsing import NERDCTL_NAME, parse_container, parse_envelope, subscription_filters, task_container_id

log = logging.getLogger("cgwatch.containerd")

_HEX = re.compile(r"[0-9a-f]{1,64}")
# What containerd takes as an ID (identifiers/validate.go): anything else it answers INVALID_ARGUMENT.
_IDENTIFIER = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")
_IDENTIFIER_MAX = 76


def cache_key(namespace: str, container_id: str) -> str:
    return f"{namespace}/{container_id}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One cached container under its key."""

    id: str                          # cache_key(namespace, container ID)
    container: RuntimeContainer


@dataclass(frozen=True, slots=True)
class Event:
    id: str                          # cache_key(...)
    action: str                      # the topic: "/tasks/start", ...


class ContainerdEvents:
    """An open subscription as CacheWatcher iterates it: Events keyed like the cache."""

    def __init__(self, subscription: EventSubscription,
                 on_bad_line: Callable[[bytes, ValueError], None] | None):
        self._sub = subscription
        self._on_bad = on_bad_line

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        async for envelope in self._sub:
            try:
                ev = parse_envelope(envelope)
            except ValueError as exc:
                log.warning("bad containerd event", extra={"topic": envelope.topic, "error": str(exc)})
                if self._on_bad is not None:
                    self._on_bad(envelope.event.value[:200], exc)
                continue
            if ev is not None:
                yield Event(cache_key(ev.namespace, ev.container_id), ev.topic)

    async def aclose(self) -> None:
        await self._sub.aclose()


class ContainerdSource:
    """CacheWatcher's Source over a ContainerdClient; every failure is a ContainerdError."""

    def __init__(self, client: ContainerdClient):
        self.client = client
        self.host = client.host

    async def open_events(self, *, on_bad_line: Callable[[bytes, ValueError], None] | None = None
                          ) -> ContainerdEvents:
        return ContainerdEvents(await self.client.subscribe(subscription_filters()), on_bad_line)

    async def list_containers(self) -> list[Entry]:
        """Every container of every namespace (k8s.io, moby, default, ...), with its task's state."""
        out: list[Entry] = []
        for namespace in await self.client.namespaces():
            try:
                out += await self._namespace(namespace)
            except ContainerdError as exc:
                if exc.unreachable:
                    raise  # the daemon went away: the whole list is void
                # One namespace containerd will not list (removed meanwhile) must not hide the others.
                log.warning("containerd namespace not listed",
                            extra={"namespace": namespace, "error": exc.message, "status": exc.status})
        return out

    async def _namespace(self, namespace: str, filters: tuple[str, ...] = ()) -> list[Entry]:
        records = await self.client.containers(namespace, filters)
        if not records:
            return []
        tasks = {task_container_id(t): t for t in await self.client.tasks(namespace)}
        return [Entry(cache_key(namespace, r.id), parse_container(namespace, r, tasks.get(r.id)))
                for r in records]

    async def inspect(self, ref: str) -> Entry | None:
        """``ref`` is a cache key (from an event), or a user's ref: an ID in any namespace, a nerdctl
        name or a unique hex ID prefix. None when containerd knows no such container, or several."""
        if "/" in ref:
            namespace, cid = ref.split("/", 1)
            return await self._one(namespace, cid)
        namespaces = await self.client.namespaces()
        found: list[Entry] = []
        if len(ref) <= _IDENTIFIER_MAX and _IDENTIFIER.fullmatch(ref):
            found = [e for ns in namespaces if (e := await self._one(ns, ref)) is not None]
        if not found and '"' not in ref and "\\" not in ref:
            filters = [f'labels."{NERDCTL_NAME}"=="{ref}"']
            if _HEX.fullmatch(ref):
                filters.append(f'id~="^{ref}"')
            for ns in namespaces:
                found += await self._namespace(ns, tuple(filters))
        return found[0] if len(found) == 1 else None

    async def _one(self, namespace: str, container_id: str) -> Entry | None:
        record = await self.client.container(namespace, container_id)
        if record is None:
            return None
        task = await self.client.task(namespace, container_id)
        return Entry(cache_key(namespace, container_id), parse_container(namespace, record, task))
