"""A rooted view of one host: its cgroup and proc mounts, and every reader built over them.

prometheus/procfs's ``NewFS(mountPoint)``: one value made from two paths gives the cgroup
layout (detected once), the v1 or v2 reader and writer, ``ProcFS``, the /proc inspector and the
walk. The agent, the CLI's direct mode, the golden test and the bench all take one, so the read
side is built in one place; a test points it at a fixture tree, a container deployment at
``/host/sys/fs/cgroup`` and ``/host/proc``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .cgroup import make_reader
from .cgroup.base import CgroupReader
from .cgroup.writer import CgroupWriter, make_writer
from .config import DEFAULT_CGROUP_ROOT, DEFAULT_PROC_ROOT
from .discovery.inventory import Container, DiscoveryOptions, LookupFn, scan
from .host.layout import CgroupLayout, detect_layout
from .host.procfs import ProcFS

if TYPE_CHECKING:
    from .views.inspect import ProcInspector


class Host:
    """The host under ``cgroup_root`` and ``proc_root``. Raises LayoutError when no cgroup
    filesystem is mounted there."""

    def __init__(self, cgroup_root: Path = DEFAULT_CGROUP_ROOT, proc_root: Path = DEFAULT_PROC_ROOT):
        self.cgroup_root = Path(cgroup_root)
        self.proc_root = Path(proc_root)
        self.layout: CgroupLayout = detect_layout(self.cgroup_root)
        self.reader: CgroupReader = make_reader(self.layout)
        self.writer: CgroupWriter = make_writer(self.layout)
        self.proc = ProcFS(self.proc_root)

    @property
    def inspector(self) -> ProcInspector:
        """Processes, namespaces, ID maps and the root filesystem of a container, from /proc."""
        from .views.inspect import ProcInspector
        return ProcInspector(self.proc_root, self.reader)

    def scan(self, options: DiscoveryOptions = DiscoveryOptions(), lookup: LookupFn | None = None,
             paths: Callable[[], Iterable[str]] | None = None) -> list[Container]:
        """Every cgroup on the host now, classified (and named by ``lookup``), from ``paths()``
        (the agent's live tree) or a walk. Blocking I/O."""
        return scan(self.layout, options, lookup, paths)
