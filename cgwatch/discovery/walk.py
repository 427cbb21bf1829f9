"""Listing every cgroup path under the host's hierarchies (the union over v1 controllers)."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from pathlib import Path

from ..host.fsread import is_absent


def walk_cgroups(roots: Iterable[Path], ignore: Iterable[str] = ()) -> list[str]:
    """All cgroup paths ("/", "/docker/<id>", ...) found under any of ``roots``, sorted.

    ``ignore`` holds globs matched against the path (``/process_api*``): a matching cgroup and
    everything below it is neither listed nor descended into.
    """
    patterns = tuple(ignore)
    seen: set[str] = set()
    for root in roots:
        _walk(str(root), "", patterns, seen)
    return sorted(seen)


def _walk(directory: str, rel: str, patterns: tuple[str, ...], seen: set[str]) -> None:
    seen.add(rel or "/")
    try:
        # kernfs (cgroupfs v1 and v2) gives a directory 2 + its number of subdirectories links
        # (fs/kernfs/inode.c, kernfs_refresh_inode), so a leaf cgroup, the common case, is known
        # from one stat without listing its dozens of control files.
        if os.stat(directory).st_nlink == 2:
            return
        with os.scandir(directory) as entries:
            children = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError as exc:
        if is_absent(exc):  # removed while we walked
            return
        raise
    for name in children:
        child = f"{rel}/{name}"
        if any(fnmatch.fnmatchcase(child, p) for p in patterns):
            continue
        _walk(os.path.join(directory, name), child, patterns, seen)
