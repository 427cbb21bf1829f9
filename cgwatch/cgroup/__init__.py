"""Reading one cgroup's usage and limits, behind one interface for cgroup v1 and v2."""

from __future__ import annotations

from ..host.layout import CgroupLayout
from .base import CgroupReader
from .v1 import V1Reader
from .v2 import V2Reader

__all__ = ["CgroupReader", "make_reader"]


def make_reader(layout: CgroupLayout) -> CgroupReader:
    """The reader for this host's layout, chosen once (cAdvisor injects the mode the same way)."""
    return V2Reader(layout) if layout.is_v2 else V1Reader(layout)
