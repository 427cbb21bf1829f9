"""Cgroup files kept open and re-read with pread(2): what a collection reads every time.

Opening a cgroup file walks the path through kernfs and builds a ``struct file`` that ``close``
tears down again: 19 % of a collection, five times the read itself (bench/PROFILE.md: 2.8 µs a
small file with open/read/close, 0.45 µs a ``pread`` on a kept descriptor). A seq_file read at
offset 0 starts over and returns the current contents (fs/seq_file.c ``seq_read_iter``), so a
kept descriptor re-read with ``pread(fd, n, 0)`` sees what a fresh open would.

- **Bounded**: a descriptor is kept while the process's ``FdBudget`` has room (and fewer than
  ``max_kept`` are: each kept file holds a page of kernel memory, host/selfcgroup.py), and given back
  when another part (the OOM watcher) needs it (``shed``). A file that does not fit is read with
  open/read/close as before: first come, kept; a cyclic scan larger than the bound would get no
  hits at all from an LRU, this way it gets bound/total of them.
- **Gone**: a removed cgroup's files answer ENODEV to a read on a kept descriptor (kernfs
  deactivates the node: ``kernfs_fop_read_iter``), so no read of an old descriptor ever returns a
  later cgroup's data; the descriptor is closed and the path opened afresh (a cgroup made again at
  the same path has new files). ``retain`` closes the descriptors of cgroups the walk no longer
  lists, so a removed cgroup is not kept alive (a dying memcg) by our descriptors.
- **Not kept**: ``cgroup.procs`` and v1 ``tasks``. Besides being read to EOF in pages, v1 keeps
  each open file's PID list and reuses it for a second read within a second
  (kernel/cgroup/cgroup-v1.c ``cgroup_pidlist_start``): a kept descriptor would return stale PIDs.
"""

from __future__ import annotations

import os
import threading

from .fdlimit import FdBudget
from .fsread import READ_CHUNK, is_absent, read_bytes


class KeptFiles:
    """Kept-open descriptors by file path, grouped by the cgroup they belong to."""

    def __init__(self, budget: FdBudget | None = None, max_kept: int | None = None):
        """Without a ``budget`` nothing is kept: every read is open/read/close. ``max_kept`` bounds
        the kept files apart from descriptors: each holds a page of kernel memory charged to the
        agent's memory cgroup (host/selfcgroup.py)."""
        self._budget = budget
        self._max_kept = max_kept
        self._fds: dict[str, int] = {}
        self._by_cgroup: dict[str, list[str]] = {}
        # pread and close of one descriptor must not interleave: a closed number may be reused by
        # the next open, and a pread of it would read another file.
        self._lock = threading.Lock()
        if budget is not None:
            budget.add_shedder(self)

    def __len__(self) -> int:
        return len(self._fds)

    def read(self, cgroup: str, path: str) -> bytes | None:
        """``path`` (a file of cgroup ``cgroup``), or None when it does not exist.

        Bytes as read, not decoded: the readers parse numbers straight from them (host/parse.py).
        """
        with self._lock:
            fd = self._fds.get(path)
            if fd is not None:
                try:
                    data = os.pread(fd, READ_CHUNK, 0)
                except OSError as exc:
                    if not is_absent(exc):
                        raise
                    self._close_cgroup(cgroup)  # it went: a new one at its path has new files
                else:
                    if len(data) < READ_CHUNK:
                        return data
                    return read_bytes(path)  # larger than one read: not a single-record file
        return self._open(cgroup, path)

    def _open(self, cgroup: str, path: str) -> bytes | None:
        if (self._budget is None or (self._max_kept is not None and len(self._fds) >= self._max_kept)
                or not self._budget.take(1, may_shed=False)):
            return read_bytes(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self._budget.give(1)
            if is_absent(exc):
                return None
            raise
        try:
            data = os.pread(fd, READ_CHUNK, 0)
        except OSError as exc:
            os.close(fd)
            self._budget.give(1)
            if is_absent(exc):
                return None
            raise
        with self._lock:
            if path in self._fds:  # another thread kept it meanwhile
                os.close(fd)
                self._budget.give(1)
            else:
                self._fds[path] = fd
                self._by_cgroup.setdefault(cgroup, []).append(path)
        if len(data) < READ_CHUNK:
            return data
        return read_bytes(path)

    def retain(self, cgroups: set[str]) -> None:
        """Close the descriptors of every cgroup not in ``cgroups`` (the walk's)."""
        with self._lock:
            for cgroup in [c for c in self._by_cgroup if c not in cgroups]:
                self._close_cgroup(cgroup)

    def shed(self, n: int) -> int:
        """Close up to ``n`` kept descriptors, whole cgroups at a time (FdBudget's Shedder)."""
        closed = 0
        with self._lock:
            while closed < n and self._by_cgroup:
                closed += self._close_cgroup(next(iter(self._by_cgroup)))
        return closed

    def close(self) -> None:
        """Close every kept descriptor and leave the budget (it may be the process's, outliving us)."""
        with self._lock:
            for cgroup in list(self._by_cgroup):
                self._close_cgroup(cgroup)
        if self._budget is not None:
            self._budget.remove_shedder(self)

    def _close_cgroup(self, cgroup: str) -> int:
        """Under the lock: close every kept descriptor of ``cgroup``; how many."""
        closed = 0
        for path in self._by_cgroup.pop(cgroup, ()):
            fd = self._fds.pop(path, None)
            if fd is not None:
                os.close(fd)
                closed += 1
        if closed and self._budget is not None:
            self._budget.give(closed)
        return closed
