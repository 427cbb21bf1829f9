"""Every runtime adapter the agent follows, asked in order: the one place that knows there are several.

cgwatch_runtime_up{runtime} says which of them answer; /healthz shows each connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from .base import OnChange, Runtime, RuntimeContainer

log = logging.getLogger("cgwatch.runtimes")


class Runtimes:
    def __init__(self, adapters: Iterable[Runtime] = (), registry: CollectorRegistry | None = None):
        self.adapters: tuple[Runtime, ...] = tuple(adapters)
        self._by_name = {a.name: a for a in self.adapters}
        if registry is not None:
            registry.register(_UpCollector(self))

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.adapters)

    def get(self, name: str) -> Runtime | None:
        """The adapter called ``name`` ("docker", ...), if the agent follows that runtime."""
        return self._by_name.get(name)

    def find(self, path: str, container_id: str) -> RuntimeContainer | None:
        """The first runtime that claims the cgroup at ``path``. Thread-safe, no I/O."""
        for a in self.adapters:
            found = a.find(path, container_id)
            if found is not None:
                return found
        return None

    async def refresh(self, ref: str) -> RuntimeContainer | None:
        """Ask each runtime that answers about ``ref`` (a container started a moment ago)."""
        for a in self.adapters:
            if a.connected:
                found = await a.refresh(ref)
                if found is not None:
                    return found
        return None

    async def start(self, on_change: OnChange) -> None:
        for a in self.adapters:
            await a.start(on_change)

    async def stop(self) -> None:
        await asyncio.gather(*(a.stop() for a in self.adapters), return_exceptions=True)

    def health(self) -> dict[str, Any]:
        return {a.name: {"connected": a.connected, "host": a.host} for a in self.adapters}


class _UpCollector:
    """cgwatch_runtime_up{runtime}: 1 while the runtime's API answers (its event stream is open)."""

    def __init__(self, runtimes: Runtimes):
        self._runtimes = runtimes

    def collect(self):  # type: ignore[no-untyped-def]
        family = GaugeMetricFamily("cgwatch_runtime_up",
                                   "1 when the container runtime's API answers, 0 when it cannot be reached.",
                                   labels=["runtime", "host"])
        for a in self._runtimes:
            family.add_metric([a.name, a.host], 1.0 if a.connected else 0.0)
        yield family
