"""The floor: the cost of only reading the cgroup files a cgwatch scrape reads, nothing else.

No parsing, no formatting, no objects: one buffer reused for every read. Two ways:
open + read + close each file on every pass (what cgwatch does), and file descriptors kept open
across passes and re-read from offset 0 with pread (seq_file restarts at position 0, so a pread
at 0 returns the file's current contents: fs/seq_file.c, seq_read_iter).

The file list is not written down here: it is traced from one real collection
(bench/trace_opens.py, an audit hook on ``open``), so it follows cgwatch as its readers change.
Each distinct existing file is read once per pass; what cgwatch opens twice, or opens and finds
missing, is counted (``Trace``) but not paid by the floor.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

BUF_SIZE = 64 * 1024  # every cgroup file read here is far smaller; a full buffer is drained

# PID lists are seq_files of one record per task, and one read(2) returns at most what fits the
# seq_file's own buffer (a page to start with: 4095 bytes, ~800 PIDs, on this kernel even when
# the caller's buffer is 64 KiB), so they are read until EOF. Every other file here is a single
# record (single_open, or one show() call), which the kernel grows its buffer for and hands out
# whole: one read with a larger buffer returns all of it. fs/seq_file.c, seq_read_iter.
MULTI_RECORD = ("/cgroup.procs", "/tasks", "/cgroup.threads")


@dataclass(frozen=True, slots=True)
class Trace:
    """What one collection opened under the cgroup hierarchies."""

    opened: list[str]       # every open, in order, duplicates included
    roots: list[str]

    @property
    def files(self) -> list[str]:
        """Distinct files that exist, in first-open order: what the floor reads each pass."""
        return [f for f in dict.fromkeys(self.opened) if os.path.exists(f)]

    def summary(self, sample_cgroup: str) -> dict[str, object]:
        distinct = dict.fromkeys(self.opened)
        missing = [f for f in distinct if not os.path.exists(f)]
        repeats = Counter(self.opened)
        return {
            "opens_per_collection": len(self.opened),
            "distinct_files": len(distinct),
            "opens_of_missing_files": sum(repeats[f] for f in missing),
            "repeat_opens": len(self.opened) - len(distinct),
            "repeated_names": sorted({f.rsplit("/", 1)[1] for f, n in repeats.items() if n > 1}),
            "files_of_one_container": self.files_of(sample_cgroup),
        }

    def files_of(self, cgroup: str) -> list[str]:
        """``<hierarchy>/<file>`` for every file opened in one cgroup's directories."""
        out = []
        for f in dict.fromkeys(self.opened):
            for root in self.roots:
                if f.startswith(f"{root}{cgroup}/") and "/" not in f[len(root) + len(cgroup) + 1:]:
                    out.append(f"{os.path.basename(root)}/{f.rsplit('/', 1)[1]}")
        return out


def trace_collection(ignore: Sequence[str]) -> Trace:
    """Run bench/trace_opens.py in a child process (its audit hook stays out of this one)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = [sys.executable, str(Path(__file__).with_name("trace_opens.py")), out.name]
        for glob in ignore:
            argv += ["--ignore", glob]
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        data = json.loads(Path(out.name).read_text())
    return Trace(opened=data["opened"], roots=data["roots"])


def walk(roots: Iterable[str | Path], ignore: Sequence[str]) -> list[str]:
    """Every cgroup path under any root, minus ignored subtrees: the set cgwatch collects.

    The cheapest correct walk: kernfs gives a directory 2 + its number of subdirectories links
    (fs/kernfs/inode.c), so a leaf is one stat() and only parents are listed.
    """
    seen: set[str] = set()

    def visit(directory: str, rel: str) -> None:
        seen.add(rel or "/")
        try:
            if os.stat(directory).st_nlink == 2:
                return
            with os.scandir(directory) as entries:
                children = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:  # removed while we walked (another user's cgroup)
            return
        for name in children:
            child = f"{rel}/{name}"
            if not any(fnmatch.fnmatchcase(child, p) for p in ignore):
                visit(f"{directory}/{name}", child)

    for root in roots:
        visit(str(root), "")
    return sorted(seen)


def read_to_eof(f: str) -> bool:
    return f.endswith(MULTI_RECORD)


def _drain(fd: int, buf: bytearray, offset: int | None) -> int:
    """Read on until EOF (read, or pread from ``offset``); returns the further bytes read."""
    total = 0
    while True:
        n = os.readv(fd, [buf]) if offset is None else os.preadv(fd, [buf], offset + total)
        if n == 0:
            return total
        total += n


def pass_open_close(files: Sequence[str], buf: bytearray) -> int:
    """One scrape's worth of reads, opening and closing every file. Returns the bytes read."""
    total = 0
    for f in files:
        try:
            fd = os.open(f, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # a cgroup removed by someone else since the list was made
        try:
            n = os.readv(fd, [buf])
            if n == len(buf) or (n and read_to_eof(f)):
                n += _drain(fd, buf, None)
            total += n
        except OSError as exc:
            if exc.errno != errno.ENODEV:  # ENODEV: the cgroup is being removed
                raise
        finally:
            os.close(fd)
    return total


def pass_pread(fds: Sequence[tuple[int, bool]], buf: bytearray) -> int:
    """One pass over kept-open fds: (fd, read to EOF) pairs, each read from offset 0."""
    total = 0
    for fd, to_eof in fds:
        try:
            n = os.preadv(fd, [buf], 0)
            if n == len(buf) or (n and to_eof):
                n += _drain(fd, buf, n)
            total += n
        except OSError as exc:
            if exc.errno != errno.ENODEV:
                raise
    return total


@dataclass(slots=True)
class FloorResult:
    cgroups: int
    files: int
    open_close_s: list[float]        # per pass
    pread_s: list[float]             # per pass, summed over chunks
    pread_chunks: int                # 1: every fd open at once; >1: measured chunk by chunk
    pread_max_fds: int               # the fd budget one chunk could use
    walk_s: list[float]              # the directory walk alone, per pass
    bytes_per_pass: int

    def summary(self) -> dict[str, object]:
        return {
            "cgroups": self.cgroups, "files": self.files, "bytes_per_pass": self.bytes_per_pass,
            "open_close_p50_s": statistics.median(self.open_close_s),
            "pread_p50_s": statistics.median(self.pread_s) if self.pread_s else None,
            "pread_chunks": self.pread_chunks, "pread_fd_budget": self.pread_max_fds,
            "pread_all_open_at_once": self.pread_chunks == 1,
            "walk_p50_s": statistics.median(self.walk_s),
            "raw": {"open_close_s": self.open_close_s, "pread_s": self.pread_s, "walk_s": self.walk_s},
        }


def fd_budget(margin: int = 1000) -> int:
    """How many more fds this process may open (soft RLIMIT_NOFILE minus open ones and a margin)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(0, soft - len(os.listdir("/proc/self/fd")) - margin)


def _timed(fn, passes: int, warmup: int = 2) -> list[float]:  # type: ignore[no-untyped-def]
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(passes):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _open_present(files: Iterable[str]) -> Iterable[tuple[int, bool]]:
    for f in files:
        try:
            yield os.open(f, os.O_RDONLY | os.O_CLOEXEC), read_to_eof(f)
        except FileNotFoundError:
            continue


def pread_matches_read(files: Sequence[str]) -> bool:
    """A second pread at offset 0 on a kept-open fd returns what a fresh open + read returns."""
    buf = bytearray(BUF_SIZE)
    for f in files:
        fd = os.open(f, os.O_RDONLY | os.O_CLOEXEC)
        try:
            pass_pread([(fd, read_to_eof(f))], buf)  # the first read of the kept fd
            n = os.preadv(fd, [buf], 0)
            again = bytes(buf[:n])
        finally:
            os.close(fd)
        with open(f, "rb", buffering=0) as fh:
            fresh = fh.read()
        if again != fresh:
            return False
    return True


def measure(trace: Trace, ignore: Sequence[str], passes: int) -> FloorResult:
    files = trace.files
    buf = bytearray(BUF_SIZE)
    walk_s = _timed(lambda: walk(trace.roots, ignore), passes)
    cgroups = len(walk(trace.roots, ignore))
    open_close_s = _timed(lambda: pass_open_close(files, buf), passes)
    bytes_per_pass = pass_open_close(files, buf)

    # pread on kept-open fds, in chunks that fit this process's fd limit. Per pass, the chunks'
    # times add up to the time one pass over every file would take with all fds open.
    budget = fd_budget()
    chunks = [files[i:i + budget] for i in range(0, len(files), budget)] if budget else []
    pread_s = [0.0] * passes
    for chunk in chunks:
        fds: list[tuple[int, bool]] = []
        try:
            fds.extend(_open_present(chunk))
            for i, t in enumerate(_timed(lambda: pass_pread(fds, buf), passes)):
                pread_s[i] += t
        finally:
            for fd, _ in fds:
                os.close(fd)
    return FloorResult(cgroups=cgroups, files=len(files), open_close_s=open_close_s,
                       pread_s=pread_s if chunks else [], pread_chunks=len(chunks), pread_max_fds=budget,
                       walk_s=walk_s, bytes_per_pass=bytes_per_pass)
