"""The cgroup tree kept between scans: walked once, then told what changed by inotify.

A scan used to walk every hierarchy (on v1 each cgroup is found once per controller: 7,035
directory visits for 1,005 cgroups, 15 % of a collection at 1000 containers, bench/PROFILE.md).
cAdvisor's raw watcher keeps its containers from inotify instead; so does this. Every cgroup
directory of every hierarchy is watched (``IN_CREATE``/``IN_DELETE`` of subdirectories: vfs_mkdir
and vfs_rmdir report to fsnotify on cgroupfs as on any file system), and the events are read when
a scan asks for the paths: with nothing created or removed a scan costs one read(2) that finds
the queue empty, and an idle agent costs nothing at all (no thread, no timer).

The kernel's own limits decide when events cannot be trusted, and a walk decides instead:
  - at the first scan ("start");
  - after the event queue overflowed (``IN_Q_OVERFLOW``: fs.inotify.max_queued_events, 16384 by
    default, queued between two scans; "overflow");
  - after a cgroup directory was renamed (v1 allows rename(2) within a parent; "moved");
  - every ``rewalk_s``, a safety net for anything the events did not say ("period"); what it
    finds that the events had not told is counted (``missed``), so a gap shows in the metrics;
  - on every scan, when the watches do not fit (ENOSPC: fs.inotify.max_user_watches, or EMFILE:
    max_user_instances; "unwatched"): the walk per scan of before, logged once.

Checked on this kernel (6.18, cgroupfs/kernfs): a removed cgroup's own watch gets neither
``IN_DELETE_SELF`` nor ``IN_IGNORED`` (enforce/births.py says the same), so the parent's
``IN_DELETE`` drops it and its watch is removed here; and a write(2) to a control file raises
``IN_MODIFY`` on the directory's watch, whoever writes it: ``on_modify(path)`` tells the limits
cache (cgroup/limitcache.py) at the next scan that a direct ``echo > memory.limit_in_bytes``
changed them (``on_modify(None)`` after an overflow: any cgroup may have been written). Only the hierarchies limits live in (``modify_roots``) ask for ``IN_MODIFY``, so the
queue is not filled by writes nobody needs to hear of (blkio, devices, freezer, ...).

Each path has a generation, new whenever the path's directory is created (in any hierarchy): a
cgroup removed and made again at the same path is a new generation, which is what the limits
cache keys its kept values by (no ``stat`` per cgroup per scan to tell an inode).
"""

from __future__ import annotations

import errno
import fnmatch
import itertools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..host.fsread import is_absent
from ..host.inotify import (IN_CREATE, IN_DELETE, IN_IGNORED, IN_ISDIR, IN_MODIFY, IN_MOVED_FROM, IN_MOVED_TO,
                            IN_ONLYDIR, IN_Q_OVERFLOW, Inotify)
from .walk import walk_cgroups

log = logging.getLogger("cgwatch.discovery.live")

# A safety net, not the mechanism: at 1000 containers a walk is ~47 ms (bench/PROFILE.md).
REWALK_S = 60.0
_TREE_MASK = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR
_WALK_REASONS = ("start", "period", "overflow", "moved", "unwatched")


class LiveTree:
    """Every cgroup path under ``roots`` ("/", "/docker/<id>", ...; the union over hierarchies),
    kept between calls of ``paths()``. Thread-safe: scans come from worker threads."""

    def __init__(self, roots: Sequence[Path], ignore: Collection[str] = (), rewalk_s: float = REWALK_S, *,
                 modify_roots: Collection[Path] = (), on_modify: Callable[[str | None], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, inotify: Callable[[], Inotify] = Inotify):
        # One entry per hierarchy: two roots on one superblock would share inodes, and so watches
        # (inotify keys them by inode, and a second add_watch replaces the first one's mask).
        hearing = {Path(r) for r in modify_roots} if on_modify is not None else set()
        by_dev: dict[int, int] = {}
        self._roots: list[str] = []
        self._masks: list[int] = []
        for r in roots:
            mask = _TREE_MASK | (IN_MODIFY if Path(r) in hearing else 0)
            dev = _device(r)
            if dev is not None and dev in by_dev:
                self._masks[by_dev[dev]] |= mask
                continue
            if dev is not None:
                by_dev[dev] = len(self._roots)
            self._roots.append(str(r))
            self._masks.append(mask)
        self._ignore = tuple(ignore)
        self._rewalk_s = rewalk_s
        self._on_modify = on_modify
        self._clock = clock
        self._make_inotify = inotify
        self._lock = threading.Lock()
        self._notify: Inotify | None = None
        self._unwatched: str | None = None                 # why every scan walks (the watches do not fit)
        self._wds: dict[int, tuple[int, str]] = {}          # watch -> (hierarchy, path)
        self._dirs: list[dict[str, int]] = [{} for _ in self._roots]           # per hierarchy: path -> watch
        self._kids: list[dict[str, set[str]]] = [{} for _ in self._roots]      # per hierarchy: path -> child paths
        self._holders: Counter[str] = Counter()             # path -> hierarchies that have it
        self._generation: dict[str, int] = {}
        self._generations = itertools.count(1)
        self._sorted: list[str] | None = None
        self._walked_at = 0.0
        self.walks: Counter[str] = Counter({r: 0 for r in _WALK_REASONS})
        self.missed = 0            # changes a periodic walk found that no event had told

    # -- what scans ask -----------------------------------------------------------------------
    def paths(self) -> list[str]:
        """Every cgroup path now, sorted. Blocking (a read of the queued events, sometimes a walk)."""
        with self._lock:
            if self._unwatched is not None:
                self.walks["unwatched"] += 1
                return walk_cgroups(self._roots, self._ignore)
            if self._notify is None:
                self._rebuild("start")
            else:
                reason = self._drain()
                if reason is None and self._clock() - self._walked_at >= self._rewalk_s:
                    reason = "period"
                if reason is not None:
                    if reason == "overflow" and self._on_modify is not None:
                        self._on_modify(None)  # the writes the lost events told of: anywhere
                    self._rebuild(reason)
            if self._unwatched is not None:  # the rebuild found the watches do not fit
                return walk_cgroups(self._roots, self._ignore)
            if self._sorted is None:
                self._sorted = sorted(self._holders)
            return self._sorted

    def generation(self, path: str) -> int | None:
        """A number that changes whenever ``path``'s cgroup is made again; None when it is gone
        (as of the last ``paths()``)."""
        return self._generation.get(path)

    @property
    def watches(self) -> int:
        return len(self._wds)

    @property
    def watching(self) -> bool:
        """False once the watches did not fit: every scan walks, and no generation is kept."""
        return self._unwatched is None

    def close(self) -> None:
        with self._lock:
            if self._notify is not None:
                self._notify.close()
                self._notify = None

    # -- events -------------------------------------------------------------------------------
    def _drain(self) -> str | None:
        """Apply every queued event; a reason to walk instead when they cannot be trusted."""
        walk_for = None
        while self._notify is not None:  # closed by _give_up when a watch does not fit
            events = self._notify.read()
            if not events:
                return walk_for
            for ev in events:
                if walk_for is not None or self._notify is None:
                    continue  # a walk follows: read the queue empty, apply nothing
                if ev.mask & IN_Q_OVERFLOW:
                    walk_for = "overflow"
                    continue
                where = self._wds.get(ev.wd)
                if where is None:
                    continue  # a watch removed since (its directory's events still queued)
                h, parent = where
                if ev.mask & IN_IGNORED:
                    self._remove(h, parent, rm_watch=False)
                elif not ev.mask & IN_ISDIR:
                    if ev.mask & IN_MODIFY and self._on_modify is not None:
                        self._on_modify(parent)
                elif ev.mask & (IN_MOVED_FROM | IN_MOVED_TO):
                    walk_for = "moved"  # a renamed subtree: every path below it changed
                elif ev.mask & IN_CREATE:
                    child = _child(parent, ev.name)
                    if not self._ignored(child):
                        self._add_tree(h, child)
                elif ev.mask & IN_DELETE:
                    # The queue may be behind the directory: made again since, it is a new cgroup
                    # (new inode, new watch) that replaces the one the event is about.
                    child = _child(parent, ev.name)
                    self._remove(h, child)
                    if not self._ignored(child) and os.path.isdir(self._dir(h, child)):
                        self._add_tree(h, child)
        return None

    # -- the tree -----------------------------------------------------------------------------
    def _rebuild(self, reason: str) -> None:
        """Walk every hierarchy, watching each directory before listing it (so a child made
        meanwhile is an event), and make the kept tree what the walk found."""
        if self._notify is None:
            try:
                self._notify = self._make_inotify()
            except OSError as exc:
                self._give_up(exc)
                return
        self.walks[reason] += 1
        found: list[dict[str, int]] = [{} for _ in self._roots]
        if not self._walk_into(found):
            return
        old, old_generation = self._dirs, self._generation
        changed = 0
        renewed: set[str] = set()   # paths with a directory not kept before: a new generation
        for h, seen in enumerate(found):
            for path, wd in old[h].items():
                if seen.get(path) != wd:  # gone, or made again (a new inode has a new watch)
                    changed += 1
                    renewed.add(path)
                    if self._wds.get(wd) == (h, path):
                        self._rm_watch(wd)
            for path, wd in seen.items():
                if old[h].get(path) != wd:
                    changed += path not in old[h]  # one made again was counted above
                    renewed.add(path)
        self._dirs = found
        self._wds = {wd: (h, path) for h, seen in enumerate(found) for path, wd in seen.items()}
        self._kids = [{} for _ in self._roots]
        self._holders = Counter()
        self._generation = {}
        for h, seen in enumerate(found):
            for path in seen:
                self._link(h, path)
        for path in self._holders:
            kept = old_generation.get(path)
            self._generation[path] = kept if kept is not None and path not in renewed else next(self._generations)
        self._sorted = None
        if reason == "period" and changed:
            self.missed += changed
            log.warning("the periodic walk found cgroups the events had not reported",
                        extra={"changes": changed})
        self._walked_at = self._clock()

    def _walk_into(self, found: list[dict[str, int]], h: int | None = None, path: str = "") -> bool:
        """Walk (every hierarchy, or ``path`` in ``h``) into ``found``; False when the watches do
        not fit and the tree was given up."""
        try:
            for i in range(len(self._roots)) if h is None else (h,):
                self._walk(i, path, found[i])
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EMFILE):  # max_user_watches / instances reached
                self._give_up(exc)
                return False
            raise
        return True

    def _walk(self, h: int, path: str, found: dict[str, int]) -> None:
        directory = self._dir(h, path)
        try:
            wd = self._notify.add_watch(directory, self._masks[h])  # type: ignore[union-attr]
            if os.stat(directory).st_nlink == 2:  # kernfs: a leaf (walk.py says why)
                names = []
            else:
                with os.scandir(directory) as entries:
                    names = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
        except OSError as exc:
            if is_absent(exc):
                return
            raise
        found[path or "/"] = wd
        for name in names:
            child = f"{path}/{name}"
            if not self._ignored(child):
                self._walk(h, child, found)

    def _add_tree(self, h: int, path: str) -> None:
        """A directory just made, and what a `mkdir -p` made in it before its watch was in place."""
        found: list[dict[str, int]] = [{} for _ in self._roots]
        if not self._walk_into(found, h, path):
            return
        for p, wd in found[h].items():  # parents first
            if self._dirs[h].get(p) != wd:
                self._remove(h, p)  # made again: the old directory's watch goes with it
                self._dirs[h][p] = wd
                self._wds[wd] = (h, p)
                self._link(h, p)
                self._generation[p] = next(self._generations)
                self._sorted = None

    def _link(self, h: int, path: str) -> None:
        if path != "/":
            self._kids[h].setdefault(path.rsplit("/", 1)[0] or "/", set()).add(path)
        self._holders[path] += 1

    def _remove(self, h: int, path: str, rm_watch: bool = True) -> None:
        """``path`` and what is kept below it (normally nothing: a cgroup with children cannot be
        removed, so their deletions came first) are gone from hierarchy ``h``."""
        wd = self._dirs[h].pop(path, None)
        if wd is None:
            return
        for kid in list(self._kids[h].pop(path, ())):
            self._remove(h, kid, rm_watch)
        if path != "/":
            siblings = self._kids[h].get(path.rsplit("/", 1)[0] or "/")
            if siblings is not None:
                siblings.discard(path)
        if self._wds.get(wd) == (h, path):
            del self._wds[wd]
            if rm_watch:
                self._rm_watch(wd)
        self._holders[path] -= 1
        if self._holders[path] <= 0:
            del self._holders[path]
            self._generation.pop(path, None)
        self._sorted = None

    def _rm_watch(self, wd: int) -> None:
        if self._notify is not None:
            try:
                self._notify.rm_watch(wd)
            except OSError:
                pass  # already gone with its inode

    def _give_up(self, exc: OSError) -> None:
        self._unwatched = exc.strerror or str(exc)
        log.warning("cgroups cannot all be watched: every scan walks the hierarchies instead (raise "
                    "fs.inotify.max_user_watches / max_user_instances)", extra={"error": self._unwatched})
        if self._notify is not None:
            self._notify.close()
            self._notify = None
        self._dirs = [{} for _ in self._roots]
        self._kids = [{} for _ in self._roots]
        self._wds = {}
        self._holders = Counter()
        self._generation = {}
        self._sorted = None

    def _dir(self, h: int, path: str) -> str:
        return self._roots[h] + (path if path != "/" else "")

    def _ignored(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, p) for p in self._ignore)


def _device(root: str | Path) -> int | None:
    try:
        return os.stat(root).st_dev
    except OSError:
        return None


def _child(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent != "/" else f"/{name}"


class LiveTreeMetrics:
    """The tree's own health: how often it walked and why, what a periodic walk found that no
    event had said (should stay 0), and the watches it holds (fs.inotify.max_user_watches)."""

    def __init__(self, tree: LiveTree):
        self._tree = tree

    def collect(self):  # type: ignore[no-untyped-def]
        walks = CounterMetricFamily("cgwatch_inventory_walks", "Walks of every cgroup hierarchy, by why the "
                                    "events kept between scans were not enough.", labels=["reason"])
        for reason, n in sorted(self._tree.walks.items()):
            walks.add_metric([reason], n)
        yield walks
        yield CounterMetricFamily("cgwatch_inventory_missed", "Cgroups a periodic walk found created or removed "
                                  "that no inotify event had reported.", value=self._tree.missed)
        yield GaugeMetricFamily("cgwatch_inventory_watches", "inotify watches held on cgroup directories.",
                                value=self._tree.watches)
