"""Writable-layer disk usage, measured off the scrape path by one background thread.

cAdvisor runs a throttled `du` per container every minute (container/common/fsHandler.go,
``DefaultPeriod``) and serves the last result; a scrape never waits for a walk. Here one thread
walks the layers one at a time (new ones first, then the oldest measurement) for at most
``budget_s`` per pass, then rests; a walk the budget cut off resumes where it stopped, so a layer
of millions of files is measured over several passes without ever holding the thread (or the
GIL) for long. A layer's filesystem is statfs()ed (its size and inodes) when the layer is walked,
so a hung network filesystem blocks this thread, never a scrape.

Between passes the thread sleeps until the oldest measurement is an interval old, or a new layer
is tracked; it then also walks every layer due within ``SLACK_FRACTION`` of an interval, so a
thousand layers measured at scattered times wake it every few seconds only while they catch up,
then every ``SLACK_FRACTION`` × interval (15 s) at most. With no layer due it does not wake at all.

The layers are host paths (overlayfs's ``upperdir``). They are read under ``<proc-root>/1/root``,
the host's root as its init sees it, so an agent in a container with the host's PIDs (hostPID,
`--pid host`) and the right to read PID 1's root (CAP_SYS_PTRACE, and no LSM profile that denies
it: Docker's AppArmor default does) measures them without the host's filesystem mounted. Where
PID 1's root cannot be read, the agent's own root is used: on the host that is the same tree; in a
container without the host's filesystem the paths are absent, and the containers get no
``container_fs_*`` usage series (counted in cgwatch_fs_walk_errors_total, logged once a layer).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from .host.mountinfo import device_source, major_minor, read_mounts
from .host.procpid import Mount
from .host.procfs import ProcFS

log = logging.getLogger("cgwatch.fsusage")

# st_blocks counts 512-byte units whatever the filesystem's block size (stat(2)).
STAT_BLOCK_BYTES = 512
# cAdvisor's period: each layer is measured at most once a minute.
DEFAULT_INTERVAL_S = 60.0
DEFAULT_BUDGET_S = 1.0
# After a pass that used its whole budget the walker rests this many budgets: at most a fifth of
# one core (and of the disk's metadata reads) goes to walking, however many layers are due.
REST_BUDGETS = 4.0
# A pass also takes the layers due within this part of an interval: wakes are batched.
SLACK_FRACTION = 0.25


@dataclass(frozen=True, slots=True)
class DirUsage:
    bytes: int       # allocated bytes (st_blocks * 512), as `du -s -B1`
    inodes: int      # the tree's inodes, as `du -s --inodes`


class DirWalk:
    """A resumable `du -s --one-file-system` of one tree, as cAdvisor's GetDirUsage (fs/fs.go):
    every inode's st_blocks once (a file with several hard links in the tree counts once), the
    root itself included, not descending into other filesystems. Entries that vanish while it
    walks are skipped (a running container changes its layer under it).

    No directory stays open between steps: a step cut short remembers how many entries of the
    directory it was reading it had visited, and the next one reads past them again (readdir
    only, no stat). An open directory would pin the layer's filesystem (a container's tmpfs
    cannot be unmounted) for as long as the walker rests."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = os.fspath(root)
        self.bytes = 0
        self.inodes = 0
        self.errors = 0           # directories that could not be read (other than vanished ones)
        self._dev: int | None = None
        self._pending: list[str] = []
        self._current: str | None = None   # the directory a step stopped in
        self._visited = 0                  # ... and how many of its entries it had visited
        self._linked: set[int] = set()

    def step(self, stop: Callable[[], bool]) -> DirUsage | None:
        """Walk until done (the usage) or until ``stop()`` says so (None: call again to go on).
        ``stop`` is asked before every entry, so a pass ends within one entry of its deadline.
        Raises OSError when the root itself cannot be read (FileNotFoundError when absent)."""
        if self._dev is None:
            st = os.lstat(self.root)
            self._dev = st.st_dev
            self._count(st)
            self._pending.append(self.root)
        while True:
            if self._current is None:
                if not self._pending:
                    return DirUsage(self.bytes, self.inodes)
                self._current, self._visited = self._pending.pop(), 0
            if not self._read(self._current, stop):
                return None
            self._current = None

    def _read(self, path: str, stop: Callable[[], bool]) -> bool:
        """Visit the entries of ``path`` after the first ``_visited``; False when ``stop()`` cut it short."""
        try:
            with os.scandir(path) as entries:
                for n, entry in enumerate(entries):
                    if n < self._visited:
                        continue
                    if stop():
                        self._visited = n
                        return False
                    self._visit(entry)
        except OSError as exc:  # gone or replaced mid-walk is no error; anything else is counted
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                self.errors += 1
        return True

    def _visit(self, entry: os.DirEntry[str]) -> None:
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            return
        if st.st_dev != self._dev:
            return  # a mount inside the layer is another filesystem's usage
        self._count(st)
        if _is_dir(st):
            self._pending.append(entry.path)

    def _count(self, st: os.stat_result) -> None:
        if st.st_nlink > 1 and not _is_dir(st):
            if st.st_ino in self._linked:
                return
            self._linked.add(st.st_ino)
        self.bytes += st.st_blocks * STAT_BLOCK_BYTES
        self.inodes += 1


def _is_dir(st: os.stat_result) -> bool:
    return (st.st_mode & 0o170000) == 0o040000


@dataclass(frozen=True, slots=True)
class FsFacts:
    """statfs(2) of the filesystem holding a layer, as cAdvisor reads a filesystem (fs/vfs/stats.go)."""

    device: str             # cAdvisor's `device` label: the block device ("/dev/vda"), else "MAJ:MIN"
    limit_bytes: int        # f_blocks * f_frsize: the filesystem's size
    inodes_total: int       # f_files
    inodes_free: int        # f_ffree


@dataclass(frozen=True, slots=True)
class LayerStats:
    fs: FsFacts
    usage: DirUsage | None  # None until the first walk of the layer is complete


@dataclass(frozen=True, slots=True)
class WalkerStats:
    """The walker's own figures (exported as cgwatch_fs_walk_*)."""

    passes: int = 0
    last_pass_s: float = 0.0
    longest_pass_s: float = 0.0     # since start (not exported: the budget's check in tests)
    errors: int = 0         # layers that could not be read, directories inside them that could not
    pending: int = 0        # layers due for a walk that the last pass did not finish


class LayerWalker:
    """Measures the layers ``track`` names, in a thread of its own, and answers ``stats`` from the
    last measurement without waiting. ``start``/``stop`` run it; without ``start`` nothing is read."""

    def __init__(self, proc_root: Path, *, interval_s: float = DEFAULT_INTERVAL_S,
                 budget_s: float = DEFAULT_BUDGET_S, rest_s: float | None = None):
        self._proc_root = Path(proc_root)
        self.interval_s = interval_s
        self.budget_s = budget_s
        self.rest_s = budget_s * REST_BUDGETS if rest_s is None else rest_s
        self._lock = threading.Lock()
        self._wanted: frozenset[str] = frozenset()
        self._stats: dict[str, LayerStats] = {}
        # The walker thread's own state: nothing else reads or writes these.
        self._walks: dict[str, DirWalk] = {}
        self._measured: dict[str, float] = {}      # layer -> when its last walk ended (or failed)
        self._failed: set[str] = set()             # layers already logged as unreadable
        self._devices: dict[int, str] = {}
        self._root: Path | None = None
        self._wake = threading.Event()     # set by track() for a new layer, and by stop()
        self._halt = threading.Event()     # set by stop() only
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.current: str | None = None            # the layer being walked now, if any
        self.stats_now = WalkerStats()

    # -- what the collector calls, from the scrape's worker thread: never blocks on I/O ------
    def track(self, layers: Iterable[str]) -> None:
        """The layers to measure from now on; the ones not named are forgotten."""
        wanted = frozenset(layers)
        with self._lock:
            new = wanted - self._wanted
            self._wanted = wanted
            for gone in self._stats.keys() - wanted:
                del self._stats[gone]
        if new:
            self._wake.set()  # a new container is measured now, not at the next interval

    def stats(self, layer: str) -> LayerStats | None:
        return self._stats.get(layer)

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._halt.clear()
            self._thread = threading.Thread(target=self._run, name="cgwatch-fs-walker", daemon=True)
            self._thread.start()

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping = True
        self._halt.set()
        self._wake.set()
        # A walk notices within one entry; a statfs() on a hung filesystem may not return at all,
        # and the daemon thread must not hold up the agent's exit.
        await asyncio.to_thread(thread.join, 5.0)
        self._walks.clear()

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping:
            try:
                wait = self._pass()
            except Exception:  # a bug must not end the measurements for good: log, rest, go on
                log.exception("fs walker pass failed")
                self.stats_now = replace(self.stats_now, errors=self.stats_now.errors + 1)
                wait = self.interval_s
            if self.stats_now.pending:
                # A rest is a rest: containers started meanwhile wait for its end (a host that
                # churns containers must not keep the walker busy for good).
                self._halt.wait(wait)
            else:
                self._wake.wait(wait)
            self._wake.clear()

    def _pass(self) -> float | None:
        """One pass: statfs and walk the due layers (in ``_due``'s order) until the budget is spent.
        Returns how long to wait before the next (None: until a layer is tracked)."""
        started = time.monotonic()
        deadline = started + self.budget_s
        with self._lock:
            wanted = self._wanted
        self._forget(wanted)
        due = [layer for layer in self._due(wanted, started) if self._statfs(layer, started)]
        finished = 0
        stop = lambda: self._stopping or time.monotonic() >= deadline  # noqa: E731
        try:
            for layer in due:
                self.current = layer
                if stop() or not self._walk(layer, stop):
                    break
                finished += 1
        finally:
            self.current = None
        took = time.monotonic() - started
        pending = len(due) - finished
        s = self.stats_now
        self.stats_now = replace(s, passes=s.passes + 1, last_pass_s=took,
                                 longest_pass_s=max(s.longest_pass_s, took), pending=pending)
        if pending:
            return self.rest_s
        if not wanted:
            return None
        next_due = min(self._measured.get(layer, started) for layer in wanted) + self.interval_s
        return max(next_due - time.monotonic(), 0.0)

    def _due(self, layers: Iterable[str], now: float) -> list[str]:
        """Layers to walk, in order: new ones (a container just started has no usage at all),
        then the walk a budget cut off, then the oldest measurements (those due within the slack too)."""
        never = -float("inf")
        age = self.interval_s * (1 - SLACK_FRACTION)
        due = [layer for layer in layers
               if layer in self._walks or now - self._measured.get(layer, never) >= age]
        return sorted(due, key=lambda layer: (layer in self._walks or layer in self._measured,
                                              layer not in self._walks, self._measured.get(layer, never)))

    def _walk(self, layer: str, stop: Callable[[], bool]) -> bool:
        """Advance ``layer``'s walk; True when it finished (measured or failed)."""
        walk = self._walks.get(layer)
        if walk is None:
            walk = self._walks[layer] = DirWalk(self._host_path(layer))
        errors_before = walk.errors
        try:
            usage = walk.step(stop)
        except OSError as exc:
            del self._walks[layer]
            self._measured[layer] = time.monotonic()
            self._unreadable(layer, exc)
            return True
        self._count_errors(walk.errors - errors_before)
        if usage is None:
            return False
        del self._walks[layer]
        self._measured[layer] = time.monotonic()
        with self._lock:
            current = self._stats.get(layer)
            if current is not None and layer in self._wanted:
                self._stats[layer] = LayerStats(current.fs, usage)
        return True

    def _statfs(self, layer: str, now: float) -> bool:
        """The layer's filesystem facts, published; False (and no series) when it is unreadable.
        An unreadable layer is tried again an interval later, not at every pass."""
        if layer in self._failed and now - self._measured.get(layer, -float("inf")) < self.interval_s:
            return False
        path = self._host_path(layer)
        try:
            st = os.stat(path)
            vfs = os.statvfs(path)
            device = self._device(st.st_dev)
        except OSError as exc:
            with self._lock:
                self._stats.pop(layer, None)
            self._measured[layer] = now
            self._unreadable(layer, exc)
            return False
        if layer in self._failed:  # readable again: due for a walk now
            self._failed.discard(layer)
            self._measured.pop(layer, None)
        facts = FsFacts(device=device, limit_bytes=vfs.f_blocks * vfs.f_frsize,
                        inodes_total=vfs.f_files, inodes_free=vfs.f_ffree)
        with self._lock:
            if layer in self._wanted:
                current = self._stats.get(layer)
                self._stats[layer] = LayerStats(facts, current.usage if current is not None else None)
        return True

    def _forget(self, wanted: frozenset[str]) -> None:
        for layer in self._walks.keys() - wanted:
            del self._walks[layer]
        for layer in self._measured.keys() - wanted:
            del self._measured[layer]
        self._failed &= wanted

    def _unreadable(self, layer: str, exc: OSError) -> None:
        self._count_errors(1)
        if layer not in self._failed:
            self._failed.add(layer)
            log.warning("writable layer unreadable: no container_fs_* for it",
                        extra={"layer": layer, "path": str(self._host_path(layer)), "error": str(exc)})

    def _count_errors(self, n: int) -> None:
        if n:
            self.stats_now = replace(self.stats_now, errors=self.stats_now.errors + n)

    def _host_path(self, layer: str) -> Path:
        return self._host_root() / layer.lstrip("/")

    def _host_root(self) -> Path:
        """PID 1's root when it can be read, else the agent's own (decided once)."""
        if self._root is None:
            pid1_root = self._proc_root / "1" / "root"
            try:
                os.stat(pid1_root)
                self._root = pid1_root
            except OSError as exc:
                self._root = Path("/")
                log.info("PID 1's root is unreadable: writable layers are read under the agent's own root",
                         extra={"path": str(pid1_root), "error": str(exc)})
        return self._root

    def _device(self, st_dev: int) -> str:
        """cAdvisor's device label: the /dev source of the host's mount of that filesystem, else
        its /proc/partitions name, else "MAJ:MIN"."""
        name = self._devices.get(st_dev)
        if name is None:
            mm = major_minor(st_dev)
            name = device_source(self._host_mounts(), mm) or ProcFS(self._proc_root).partitions().get(mm) or mm
            self._devices[st_dev] = name
        return name

    def _host_mounts(self) -> list[Mount]:
        """The host's mounts: PID 1's, else the agent's own (which, in a container, may not show
        the host's disks: the label then falls back to /proc/partitions)."""
        for pid in (1, "self"):
            try:
                mounts = read_mounts(self._proc_root, pid)
            except OSError:
                continue
            if mounts:
                return mounts
        return []
