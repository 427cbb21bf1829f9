"""The collectors, registered by name (node_exporter-style); each may be disabled by flag."""

from __future__ import annotations

from ..fsusage import LayerWalker
from .base import Collector, ScrapeContext
from .blkio import BlkioCollector
from .cpu import CpuCollector
from .fs import FsCollector
from .health import HealthCollector
from .info import InfoCollector
from .machine import MachineCollector
from .memory import MemoryCollector
from .network import NetworkCollector
from .pressure import PressureCollector
from .spec import SpecCollector
from .tasks import TasksCollector

ALL: dict[str, type[Collector]] = {c.name: c for c in (
    CpuCollector, MemoryCollector, SpecCollector, TasksCollector, BlkioCollector, FsCollector,
    NetworkCollector, PressureCollector, InfoCollector, HealthCollector, MachineCollector,
)}

__all__ = ["ALL", "Collector", "ScrapeContext", "enabled_collectors"]


def enabled_collectors(disabled: frozenset[str] = frozenset(), *,
                       fs_walker: LayerWalker | None = None) -> list[Collector]:
    """Instances of every default-enabled collector not named in ``disabled``; the fs collector
    reads what ``fs_walker`` measured (without one it has nothing to report)."""
    unknown = disabled - ALL.keys()
    if unknown:
        raise ValueError(f"unknown collector(s): {', '.join(sorted(unknown))}; known: {', '.join(ALL)}")
    return [FsCollector(fs_walker) if cls is FsCollector else cls()
            for name, cls in ALL.items() if cls.default_enabled and name not in disabled]
