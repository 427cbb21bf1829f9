"""Where the host's pseudo-filesystems are mounted; passed to every reader, never hard-coded below the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class HostPaths:
    """Mount points of the host's /proc and cgroup filesystems.

    Like prometheus/procfs's ``NewFS(mountPoint)``: a test points these at a fixture tree, a
    container deployment at ``/host/proc`` and ``/host/sys/fs/cgroup``.
    """

    proc: Path = Path("/proc")
    cgroup: Path = Path("/sys/fs/cgroup")

    @classmethod
    def of(cls, proc: str | Path, cgroup: str | Path) -> "HostPaths":
        return cls(proc=Path(proc), cgroup=Path(cgroup))
