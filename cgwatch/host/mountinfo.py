"""Where a container's writable layer is, from /proc/<pid>/mountinfo (proc(5)).

Runtime-independent: Docker (overlay2), Podman and containerd (overlayfs snapshotter) all give a
container's init an overlay mounted at "/", and overlayfs lists its layers in the superblock
options, the writable one as ``upperdir=`` (Documentation/filesystems/overlayfs.rst, "Upper and
Lower"). The lines are parsed by host/procpid.py; this module picks from them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from .fsread import read_text
from .procpid import Mount, parse_mountinfo, parse_overlay_options, root_mount


def writable_layer(mounts: Iterable[Mount], host_root_device: str | None = None) -> str | None:
    """The upper directory of a task's root filesystem, as the runtime that mounted it named it
    (a path in its mount namespace: the host's, for every runtime cgwatch knows). None when the
    root is not an overlay, has no upper layer (a read-only overlay), names it relative to the
    mounting process's working directory (dockerd does so when the options outgrow a page:
    overlay2's mountFrom), or is the host's own root (``host_root_device``, the MAJ:MIN of the
    host's "/": a host booted from an overlay is not a container)."""
    root = root_mount(mounts)
    if root is None or root.fstype != "overlay" or root.device == host_root_device:
        return None
    upper = parse_overlay_options(root.super_options)["upperdir"]
    return upper if upper and upper.startswith("/") else None


def device_source(mounts: Iterable[Mount], device: str) -> str | None:
    """The block device a filesystem ``device`` ("MAJ:MIN", as stat(2)'s st_dev) was mounted from,
    when a mount of it names one under /dev: what cAdvisor puts in the ``device`` label of a
    filesystem (fs.go GetDirFsDevice takes the mount's source)."""
    for m in mounts:
        if m.device == device and m.source.startswith("/dev/"):
            return m.source
    return None


def major_minor(st_dev: int) -> str:
    """stat(2)'s st_dev as mountinfo's "MAJ:MIN"."""
    return f"{os.major(st_dev)}:{os.minor(st_dev)}"


def read_mounts(proc_root: os.PathLike[str] | str, pid: int | str) -> list[Mount] | None:
    """/proc/<pid>/mountinfo parsed; None when the task is gone."""
    text = read_text(os.path.join(proc_root, str(pid), "mountinfo"))
    return parse_mountinfo(text) if text is not None else None


def root_lines(text: str) -> str:
    """The lines of a mountinfo text whose mount point is "/": all ``root_mount`` needs. A host
    process on a Kubernetes node lists hundreds of mounts; one scrape reads one such file per
    cgroup with processes, so the rest are not parsed."""
    return "\n".join(line for line in text.splitlines() if line.split(" ", 5)[4:5] == ["/"])


def read_root_mounts(proc_root: os.PathLike[str] | str, pid: int | str) -> list[Mount] | None:
    """The mounts at "/" in /proc/<pid>/mountinfo, in order; None when the task is gone."""
    text = read_text(os.path.join(proc_root, str(pid), "mountinfo"))
    return parse_mountinfo(root_lines(text)) if text is not None else None
