"""Limits before the first instruction: watch the parent cgroups where runtimes create containers.

A runtime makes a container's cgroup before it starts the container's process (runc: `create`
makes the cgroups and parks the init process, `start` lets it exec the user's program), so a
watcher on the parent directories sees the mkdir (inotify IN_CREATE, host/inotify.py) and can
write the limits first. Docker's start event and the birth scan come after the process runs:
measured, up to 0.74 s unlimited (bench/BIRTHS.md). They stay as fallbacks.

One hierarchy is watched: v2's unified tree, or on v1 the memory hierarchy (cpu without it). On
v1 a container's directory appears in each hierarchy in turn (runc makes them one after another),
so a birth waits, a few milliseconds at most, until the directory exists in every hierarchy a
limit is written to. Watched, in that hierarchy:
  - the root, for new top-level cgroups: a watched parent appearing, and LXC's /lxc.payload.<name>;
  - /docker, /libpod_parent, /system.slice, /machine.slice, whose children are born;
  - /kubepods* and every directory below it that is not a container (QoS classes, pods: created
    and removed as pods come and go);
  - the literal parent of each policy rule's `cgroup:` glob ("/batch/docker/*" -> /batch/docker),
    and the ancestors of one that does not exist yet, until it does.
What is watched is worked out again when the policy changes (``resync``, called by the agent) and
after an overflow of the kernel's event queue; no timer: with no mkdir, the watcher costs nothing.
A directory that appears is watched before it is listed, and its children are births too: a
runtime's mkdir -p may have made them before the watch was in place. A watched directory that is
removed is forgotten on its parent's IN_DELETE: cgroupfs (kernfs) sends no IN_DELETE_SELF nor
IN_IGNORED for it (measured on 6.18), so its watch would otherwise stay on the dead directory
while a new one is made at the same path.
"""

from __future__ import annotations

import asyncio
import errno
import fnmatch
import logging
import os
import posixpath
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from ..discovery.classify import classify
from ..host.fsread import list_dirs
from ..host.inotify import (IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_IGNORED, IN_ISDIR, IN_ONLYDIR, IN_Q_OVERFLOW,
                            Event, Inotify)
from ..host.layout import CgroupLayout

log = logging.getLogger("cgwatch.enforce.births")

# Where runtimes put containers, at the top of the hierarchy (discovery/classify.py has the shapes).
STATIC_PARENTS = ("/docker", "/libpod_parent", "/system.slice", "/machine.slice")
KUBEPODS = "kubepods*"      # /kubepods (cgroupfs driver), /kubepods.slice (systemd driver)
LXC_PAYLOAD = "lxc.payload.*"
# The v1 controllers a limit is written to (cgroup/writer.py): a birth waits for each one's directory.
WRITTEN_CONTROLLERS = ("cpuset", "memory", "cpu", "pids")
# runc makes the hierarchies' directories within a millisecond or two of each other (measured
# here: all present when the memory one appears, or a few ms later); this bounds the wait when a
# runtime does not make one at all.
HIERARCHY_WAIT_S = 0.2
HIERARCHY_POLL_S = 0.002
WATCH_MASK = IN_CREATE | IN_DELETE | IN_ONLYDIR | IN_DELETE_SELF

Born = Callable[[str], Awaitable[object]]


def watched_hierarchy(layout: CgroupLayout) -> Path:
    """The one hierarchy whose mkdirs are watched: v2's tree, else v1 memory (cpu without it)."""
    if layout.is_v2 and layout.unified is not None:
        return layout.unified
    for controller in ("memory", "cpu"):
        if controller in layout.v1:
            return layout.v1[controller]
    return next(iter(layout.v1.values()))


def written_hierarchies(layout: CgroupLayout) -> list[Path]:
    """The mounts a limit is written under: the one tree on v2; on v1 each written controller's."""
    if layout.is_v2 and layout.unified is not None:
        return [layout.unified]
    return list(dict.fromkeys(layout.v1[c] for c in WRITTEN_CONTROLLERS if c in layout.v1))


def policy_parent(glob: str) -> str | None:
    """The directory whose children a rule's ``cgroup:`` glob matches, when it is a literal path:
    "/batch/docker/*" and "/batch/docker/<id>" -> "/batch/docker", "/batch-*" -> "/". None when a
    wildcard is above the leaf ("/*/docker/*": every top-level cgroup would need a watch)."""
    if not glob.startswith("/"):
        return None
    parent = posixpath.dirname(glob.rstrip("/")) or "/"
    return None if any(ch in parent for ch in "*?[") else parent


def is_birth(path: str, parents: frozenset[str]) -> bool:
    """A new directory at ``path`` may be a container to govern: a child of a parent where runtimes
    put containers, anything in a kubepods subtree, LXC's containers at the root."""
    parent, name = posixpath.split(path)
    if parent in parents:
        return True
    top = path.split("/")[1]
    if fnmatch.fnmatchcase(top, KUBEPODS):
        return parent != "/"
    return parent == "/" and fnmatch.fnmatchcase(name, LXC_PAYLOAD)


def should_watch(path: str, parents: frozenset[str]) -> bool:
    """Watch ``path`` for new children: the root, a parent, an ancestor of a parent (to see it
    appear), a kubepods directory that is not a container's own cgroup (QoS class, pod)."""
    if path == "/" or path in parents or any(p.startswith(path + "/") for p in parents):
        return True
    return fnmatch.fnmatchcase(path.split("/")[1], KUBEPODS) and not classify(path).is_container


def ignored(path: str, patterns: tuple[str, ...]) -> bool:
    """Hidden by an --ignore-cgroup glob: the path or one of its ancestors matches (as the walk skips)."""
    parts = path.strip("/").split("/")
    return any(fnmatch.fnmatchcase("/" + "/".join(parts[:i]), p) for i in range(1, len(parts) + 1) for p in patterns)


class BirthWatcher:
    """Calls ``born(path)`` for every cgroup created under a watched parent, as soon as its
    directory exists in every hierarchy limits are written to. ``globs()`` gives the policy's
    ``cgroup:`` globs now; ``ignore`` the --ignore-cgroup globs (never watched, never born)."""

    def __init__(self, layout: CgroupLayout, born: Born, globs: Callable[[], Iterable[str]] = tuple,
                 ignore: Iterable[str] = ()):
        self._root = watched_hierarchy(layout)
        self._written = written_hierarchies(layout)
        self._born = born
        self._globs = globs
        self._ignore = tuple(ignore)
        self._inotify: Inotify | None = None
        self._paths: dict[int, str] = {}     # watch descriptor -> cgroup path
        self._wds: dict[str, int] = {}       # cgroup path -> watch descriptor
        self._inodes: dict[str, int] = {}    # cgroup path -> the watched directory's inode
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def watched(self) -> list[str]:
        return sorted(self._wds)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Watch the parents that exist now (their children now are not new: the reconciler's
        passes govern them). Without inotify (no such syscall, no instance left) the start event
        and the birth scan still apply limits: logged, not raised."""
        try:
            self._inotify = Inotify()
        except OSError as exc:
            log.warning("cannot watch for new cgroups; limits of new containers wait for the birth scan",
                        extra={"error": str(exc)})
            return
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._inotify.fileno(), self._readable)
        self._sync(full=True)
        log.info("watching for new cgroups", extra={"hierarchy": str(self._root), "parents": self.watched()})

    async def stop(self) -> None:
        if self._inotify is not None and self._loop is not None:
            self._loop.remove_reader(self._inotify.fileno())
            self._inotify.close()
        self._inotify = None
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- what to watch ------------------------------------------------------------------------
    def _parents(self) -> frozenset[str]:
        wanted = set(STATIC_PARENTS)
        for glob in self._globs():
            parent = policy_parent(glob)
            if parent is not None:
                wanted.add(parent)
        return frozenset(p for p in wanted if not ignored(p, self._ignore))

    def resync(self) -> None:
        """The policy changed: watch the parents its rules' ``cgroup:`` globs name now."""
        if self._inotify is not None:
            self._sync()

    def _sync(self, full: bool = False) -> None:
        """Watch every wanted directory that exists (the ancestors of a parent that does not exist
        yet, to see it come). What is found is not new. ``full`` also walks the kubepods subtrees,
        which events keep up to date after the start (an overflow of the event queue aside)."""
        parents = self._parents()
        for path in list(self._wds):
            if _inode(self._dir(path)) != self._inodes.get(path):
                self._unwatch(path)  # removed (and maybe made again) while its events were lost
        self._watch("/", parents, births=False)
        for path in sorted(self._wanted_existing(parents, full)):
            self._watch(path, parents, births=False)

    def _wanted_existing(self, parents: frozenset[str], kubepods: bool) -> set[str]:
        out: set[str] = set()
        for parent in parents:
            parts = parent.strip("/").split("/")
            for i in range(1, len(parts) + 1):
                path = "/" + "/".join(parts[:i])
                if not os.path.isdir(self._dir(path)):
                    break
                out.add(path)
        for name in list_dirs(self._root) if kubepods else ():
            if fnmatch.fnmatchcase(name, KUBEPODS) and not ignored("/" + name, self._ignore):
                out |= self._subtree("/" + name, parents)
        return out

    def _subtree(self, path: str, parents: frozenset[str]) -> set[str]:
        out = {path}
        for name in list_dirs(self._dir(path)):
            child = f"{path}/{name}"
            if should_watch(child, parents):
                out |= self._subtree(child, parents)
        return out

    def _watch(self, path: str, parents: frozenset[str], births: bool) -> None:
        """Watch ``path``; with ``births`` (it just appeared), its children are new: hand them on."""
        if path in self._wds or self._inotify is None or ignored(path, self._ignore):
            return
        try:
            wd = self._inotify.add_watch(self._dir(path), WATCH_MASK)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):  # gone again: nothing to watch
                log.warning("cannot watch a parent cgroup", extra={"cgroup": path, "error": str(exc)})
            return
        self._paths[wd], self._wds[path] = path, wd
        self._inodes[path] = _inode(self._dir(path)) or 0
        if births:
            for name in list_dirs(self._dir(path)):
                self._created(f"{path.rstrip('/')}/{name}", parents)

    # -- events -------------------------------------------------------------------------------
    def _readable(self) -> None:
        assert self._inotify is not None
        try:
            events = self._inotify.read()
        except (OSError, ValueError) as exc:
            log.error("reading cgroup events failed", extra={"error": str(exc)})
            return
        parents = self._parents() if events else frozenset()
        for ev in events:
            self._event(ev, parents)

    def _event(self, ev: Event, parents: frozenset[str]) -> None:
        if ev.mask & IN_Q_OVERFLOW:
            # Events were lost: watch again what is there; the birth scan finds the lost births.
            log.warning("the kernel dropped cgroup events (queue overflow); the birth scan covers them")
            self._sync(full=True)
            return
        if ev.mask & IN_IGNORED:
            # The directory was removed (IN_DELETE_SELF came first) and its watch with it; the
            # watch on its parent sees it if it is made again.
            path = self._paths.pop(ev.wd, None)
            if path is not None and self._wds.get(path) == ev.wd:
                del self._wds[path]
                self._inodes.pop(path, None)
            return
        parent = self._paths.get(ev.wd)
        if parent is None or not ev.mask & IN_ISDIR or not ev.name:
            return
        path = f"{parent.rstrip('/')}/{ev.name}"
        if ev.mask & IN_DELETE:
            self._unwatch(path)
        elif ev.mask & IN_CREATE:
            self._created(path, parents)

    def _unwatch(self, path: str) -> None:
        wd = self._wds.pop(path, None)
        self._inodes.pop(path, None)
        if wd is None:
            return
        self._paths.pop(wd, None)
        try:
            assert self._inotify is not None
            self._inotify.rm_watch(wd)
        except OSError:
            pass  # EINVAL: the kernel dropped it already (IN_IGNORED on file systems that send it)

    def _created(self, path: str, parents: frozenset[str]) -> None:
        if ignored(path, self._ignore):
            return
        if should_watch(path, parents):
            if _inode(self._dir(path)) != self._inodes.get(path):
                self._unwatch(path)  # a watch left on a removed directory of the same path
            self._watch(path, parents, births=True)
        if is_birth(path, parents) and path not in self._pending:
            assert self._loop is not None
            task = self._loop.create_task(self._deliver(path), name=f"cgwatch-birth:{path}")
            self._pending[path] = task

    async def _deliver(self, path: str) -> None:
        try:
            if await self._complete(path):
                await self._born(path)
        except Exception as exc:  # one birth's failure must not stop the next
            log.exception("applying limits to a new cgroup failed", extra={"cgroup": path, "error": repr(exc)})
        finally:
            self._pending.pop(path, None)

    async def _complete(self, path: str) -> bool:
        """Wait (bounded) until ``path`` exists in every hierarchy a limit is written to; False when
        it is gone from the watched one meanwhile (a container that lived a few milliseconds)."""
        dirs = [f"{root}{path}" for root in self._written]
        deadline = time.monotonic() + HIERARCHY_WAIT_S
        while not all(os.path.isdir(d) for d in dirs):
            if not os.path.isdir(self._dir(path)):
                return False
            if time.monotonic() >= deadline:
                log.info("a new cgroup is missing from some hierarchies; applying what can be",
                         extra={"cgroup": path})
                break
            await asyncio.sleep(HIERARCHY_POLL_S)
        return True

    def _dir(self, path: str) -> str:
        return f"{self._root}{path.rstrip('/')}"


def _inode(directory: str) -> int | None:
    try:
        return os.stat(directory).st_ino
    except OSError:
        return None
