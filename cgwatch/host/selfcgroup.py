"""The memory limit of the agent's own cgroup: what the kept-open cgroup files are sized against.

A cgroup file kept open and read holds its seq_file buffer, one page, until it is closed
(fs/seq_file.c: ``m->buf`` is allocated at the first read and freed at release), and that page is
kernel memory charged to the reader's memory cgroup (``kvmalloc(..., GFP_KERNEL_ACCOUNT)``).
Measured here (bench/kept_fd_memory.py, deploy/README.md): 4.4 to 5.5 KB of the agent's memcg per
kept file, 15 files per v1 container: 66 to 83 MB at 1000 containers, 10 times that at 10,000. An agent with a memory limit (the
DaemonSet's 256 MiB, the unit's MemoryMax) must not spend it all on descriptors kept for speed.

The process's own cgroup is found from /proc/self/cgroup (cgroups(7): ``ID:controllers:path``)
under the agent's own view of cgroupfs: on the host, the path under the mount; in a container with
its own cgroup namespace, the mount's root is its cgroup. The lowest limit on the way up counts.
"""

from __future__ import annotations

from pathlib import Path

from .cgroupfs import parse_v1_limit
from .parse import parse_max_int

# Memory per kept, read cgroup file, the larger of two measurements: the seq_file page plus the
# open file's own structures (struct file, kernfs_open_file: 338 bytes), and the process's own
# bookkeeping (bench/kept_fd_memory.py: 5.5 KB a file, all told).
KEPT_FILE_BYTES = 5632
# The share of the agent's memory limit the kept files may take; the rest is the process's own
# (~45 MB of interpreter and libraries, the exposition, the caches).
KEPT_SHARE = 4


def own_cgroup(text: str) -> tuple[str, str] | None:
    """("v1" | "v2", path) of the memory controller's cgroup, from /proc/self/cgroup's text."""
    unified = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, controllers, path = parts
        if "memory" in controllers.split(","):
            return "v1", path
        if hid == "0" and controllers == "":
            unified = path
    return ("v2", unified) if unified is not None else None


def parse_limit(text: str) -> int | None:
    """A memory limit file's value in bytes; None for v2's "max" or v1's no-limit value (the
    readers' own parsers, host/cgroupfs.py). ValueError for anything else that is not a number."""
    return None if parse_max_int(text) is None else parse_v1_limit(text)


def own_memory_limit(proc_root: Path = Path("/proc"), cgroup_root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The lowest memory limit on this process's cgroup and its visible ancestors; None when none
    is set or the cgroup cannot be found."""
    try:
        found = own_cgroup((proc_root / "self" / "cgroup").read_text())
    except OSError:
        return None
    if found is None:
        return None
    version, path = found
    mount, name = (cgroup_root / "memory", "memory.limit_in_bytes") if version == "v1" \
        else (cgroup_root, "memory.max")
    parts = [p for p in path.split("/") if p]
    limits = []
    # Every ancestor that exists in this view; in a cgroup namespace the path may not exist under
    # the mount at all, and the mount's root is the process's cgroup.
    for depth in range(len(parts) + 1):
        try:
            limit = parse_limit((mount.joinpath(*parts[:depth]) / name).read_text())
        except (OSError, ValueError):
            continue
        if limit is not None:
            limits.append(limit)
    return min(limits) if limits else None


def kept_files_cap(memory_limit: int | None) -> int | None:
    """How many cgroup files may be kept open under ``memory_limit`` (None: no cap from memory)."""
    if memory_limit is None:
        return None
    return memory_limit // KEPT_SHARE // KEPT_FILE_BYTES
