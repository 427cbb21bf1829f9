"""The part of a runtime adapter that follows the runtime through a CacheWatcher (watch.py): the
connection, naming from the cache, refresh, and telling the agent what changed. Docker's, Podman's
and containerd's adapters add what is their own: how they claim a path and how they update."""

from __future__ import annotations

from typing import Any, Generic

from .base import OnChange, RuntimeContainer
from .watch import C, CacheWatcher


class CachedRuntime(Generic[C]):
    name: str
    host: str
    client: Any             # the API client: closed at stop
    watcher: CacheWatcher[C]
    _on_change: OnChange | None = None

    def to_runtime(self, c: C) -> RuntimeContainer:
        """The seam's view of one cached container."""
        raise NotImplementedError

    def id_of(self, key: str) -> str:
        """The container ID of a cache key (the key itself, unless the runtime qualifies it)."""
        return key

    @property
    def connected(self) -> bool:
        return self.watcher.connected

    def find(self, path: str, container_id: str) -> RuntimeContainer | None:
        found = self.watcher.get(container_id) if container_id else None
        return self.to_runtime(found) if found is not None else None

    async def refresh(self, ref: str) -> RuntimeContainer | None:
        found = await self.watcher.refresh(ref)
        return self.to_runtime(found) if found is not None else None

    def writable(self, c: RuntimeContainer) -> bool:
        return True

    async def start(self, on_change: OnChange) -> None:
        self._on_change = on_change
        await self.watcher.start()

    async def stop(self) -> None:
        await self.watcher.stop()
        await self.client.close()

    async def _changed(self, key: str, c: C | None) -> None:
        """The watcher's on_change: passed on as (runtime, container ID, the container or None)."""
        if self._on_change is not None:
            result = self._on_change(self.name, self.id_of(key), self.to_runtime(c) if c is not None else None)
            if result is not None:
                await result
