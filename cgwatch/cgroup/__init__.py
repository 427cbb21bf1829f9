"""Reading one cgroup's usage and limits, behind one interface for cgroup v1 and v2."""

from __future__ import annotations

from ..host.keptfiles import KeptFiles
from ..host.layout import CgroupLayout
from .base import CgroupReader
from .v1 import V1Reader
from .v2 import V2Reader

__all__ = ["CgroupReader", "make_reader"]


def make_reader(layout: CgroupLayout, files: KeptFiles | None = None) -> CgroupReader:
    """The reader for this host's layout, chosen once (cAdvisor injects the mode the same way);
    with ``files``, what changes between reads is re-read on kept descriptors."""
    return V2Reader(layout, files) if layout.is_v2 else V1Reader(layout, files)
