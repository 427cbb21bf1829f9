"""The collectors, registered by name (node_exporter-style); each may be disabled by flag."""

from __future__ import annotations

from .base import Collector, ScrapeContext
from .blkio import BlkioCollector
from .cpu import CpuCollector
from .info import InfoCollector
from .machine import MachineCollector
from .memory import MemoryCollector
from .network import NetworkCollector
from .pressure import PressureCollector
from .spec import SpecCollector
from .tasks import TasksCollector

ALL: dict[str, type[Collector]] = {c.name: c for c in (
    CpuCollector, MemoryCollector, SpecCollector, TasksCollector, BlkioCollector,
    NetworkCollector, PressureCollector, InfoCollector, MachineCollector,
)}

__all__ = ["ALL", "Collector", "ScrapeContext", "enabled_collectors"]


def enabled_collectors(disabled: frozenset[str] = frozenset()) -> list[Collector]:
    """Instances of every default-enabled collector not named in ``disabled``."""
    unknown = disabled - ALL.keys()
    if unknown:
        raise ValueError(f"unknown collector(s): {', '.join(sorted(unknown))}; known: {', '.join(ALL)}")
    return [cls() for name, cls in ALL.items() if cls.default_enabled and name not in disabled]
