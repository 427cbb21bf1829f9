"""Which cgroup hierarchies this host has: v2 unified, v1, or hybrid. Detected once at start.

Documentation/admin-guide/cgroup-v1/cgroups.rst: each v1 hierarchy is its own mount, named by
its controllers ("cpu,cpuacct" or, as on this project's CI host, "cpu" and "cpuacct" apart).
Documentation/admin-guide/cgroup-v2.rst: one tree, its root lists the controllers in
``cgroup.controllers``. systemd's "hybrid" layout mounts v1 controllers and a v2 tree at
``unified/`` that carries no controllers but does carry ``cpu.stat`` and PSI files.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from .fsread import list_dirs, read_text

# The v1 controllers cgwatch reads or writes. Others (devices, freezer, ...) are ignored.
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio")


class Mode(enum.Enum):
    V1 = "v1"
    V2 = "v2"
    HYBRID = "hybrid"


@dataclass(frozen=True, slots=True)
class CgroupLayout:
    """The hierarchies under a cgroup root. Injected into readers; they never probe themselves."""

    mode: Mode
    # v1 controller name -> mount point of the hierarchy carrying it.
    v1: dict[str, Path] = field(default_factory=dict)
    # The v2 tree: the root itself on v2, ``<root>/unified`` on hybrid, None on pure v1.
    unified: Path | None = None
    # Controllers enabled on the v2 tree (empty on hybrid).
    v2_controllers: frozenset[str] = frozenset()

    @property
    def is_v2(self) -> bool:
        return self.mode is Mode.V2

    def hierarchy_roots(self) -> list[Path]:
        """Distinct mount points to walk when discovering cgroups (v1 first, then unified)."""
        roots: list[Path] = []
        for path in self.v1.values():
            if path not in roots:
                roots.append(path)
        if self.unified is not None and self.unified not in roots:
            roots.append(self.unified)
        return roots


class LayoutError(RuntimeError):
    """No cgroup filesystem could be recognised under the given root."""


def parse_controllers(text: str) -> frozenset[str]:
    """``cgroup.controllers`` / ``cgroup.subtree_control``: space-separated names."""
    return frozenset(text.split())


def detect_layout(cgroup_root: Path) -> CgroupLayout:
    """Classify the cgroup mount(s) below ``cgroup_root`` by the files each directory holds."""
    root_controllers = read_text(cgroup_root / "cgroup.controllers")
    if root_controllers is not None:
        return CgroupLayout(Mode.V2, unified=cgroup_root,
                            v2_controllers=parse_controllers(root_controllers))

    v1: dict[str, Path] = {}
    for name in sorted(list_dirs(cgroup_root)) + _symlinked_dirs(cgroup_root):
        mount = cgroup_root / name
        if not (mount / "cgroup.procs").exists() or (mount / "cgroup.controllers").exists():
            continue
        # A hierarchy dir is named after its controllers ("cpu,cpuacct"); a symlink "cpu" may point at it.
        for ctrl in name.split(","):
            if ctrl in V1_CONTROLLERS and ctrl not in v1:
                v1[ctrl] = mount.resolve() if mount.is_symlink() else mount

    unified = cgroup_root / "unified"
    unified_controllers = read_text(unified / "cgroup.controllers")
    if not v1:
        raise LayoutError(f"no cgroup hierarchy found under {cgroup_root}")
    if unified_controllers is None:
        return CgroupLayout(Mode.V1, v1=v1)
    return CgroupLayout(Mode.HYBRID, v1=v1, unified=unified,
                        v2_controllers=parse_controllers(unified_controllers))


def _symlinked_dirs(root: Path) -> list[str]:
    """Names of symlinks to directories (systemd links ``cpu`` -> ``cpu,cpuacct``)."""
    try:
        return sorted(p.name for p in root.iterdir() if p.is_symlink() and p.is_dir())
    except FileNotFoundError:
        return []
