#!/usr/bin/env python3
"""Copy a live cgroup tree (and the /proc parts that go with it) into plain files, for test fixtures.

    capture_cgroup_tree.py SRC_DIR DEST_DIR [--proc-root /proc --proc-dest DIR]
                           [--min-depth N] [--max-depth N] [--exclude GLOB]...
                           [--max-size BYTES]
                           [--cgroup-strip PREFIX]...

cgroup tree: every readable regular file under SRC_DIR (recursively) is read and written to
DEST_DIR under the same relative path. Skipped, with a line on stderr each:
  - write-only files (no read permission bit: cgroup.event_control, memory.force_empty, cgroup.kill,
    memory.reclaim, ...);
  - files whose read fails with EINVAL, EOPNOTSUPP, EPERM, EACCES, ENODEV or EBUSY (interfaces that
    exist but cannot be read in this state, e.g. v1 memory.pressure_level);
  - files larger than --max-size (default 64 KiB; keeps fixtures small: memory.numa_stat on a big
    machine, the root's cgroup.procs on a busy host);
  - paths matching an --exclude glob (relative to SRC_DIR, fnmatch; a matching directory is not
    entered at all, so nothing below it is ever read).
--max-depth 0 copies only SRC_DIR's own files (a hierarchy root without its children);
--min-depth 1 leaves out SRC_DIR's own files (a sandbox parent presented as a hierarchy root: its
children are captured, its own files are not, the real root's are captured separately).

/proc (with --proc-dest): for every PID listed in a captured cgroup.procs, copies
/proc/<pid>/{stat,status,cgroup,net/dev} and recreates /proc/<pid>/ns/{net,pid,mnt,uts,ipc,user,
cgroup} as symlinks whose target is the real link text (e.g. "net:[4026531992]"); also /proc/stat,
/proc/meminfo, /proc/uptime and /proc/self/ns/net (same symlink trick; "self" is this tool's own
process, i.e. the capturing host's namespaces). A parser can then read DIR as if it were /proc.
Tasks that exit during the capture are skipped (with a line on stderr). --cgroup-strip PREFIX
removes a leading PREFIX from the paths in the copied /proc/<pid>/cgroup files (used when the
captured tree was a sandbox parent that the fixture presents as the hierarchy root).

Exit status: 0, or 1 if an unexpected error (anything not listed above) occurred; the capture then
still contains everything else.
"""

from __future__ import annotations

import argparse
import errno
import fnmatch
import os
import stat
import sys
from pathlib import Path

SKIP_ERRNOS = {errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES, errno.ENODEV, errno.EBUSY}
GONE_ERRNOS = {errno.ENOENT, errno.ESRCH}
PROC_FILES = ("stat", "status", "cgroup", "net/dev")
NAMESPACES = ("net", "pid", "mnt", "uts", "ipc", "user", "cgroup")
PROC_GLOBAL_FILES = ("stat", "meminfo", "uptime")


class Capture:
    def __init__(self, max_size: int, excludes: list[str], strip: list[str]):
        self.max_size = max_size
        self.excludes = excludes
        self.strip = [p.rstrip("/") for p in strip if p.strip("/")]
        self.files = 0
        self.bytes = 0
        self.skipped = 0
        self.errors = 0
        self.pids: set[int] = set()

    def log(self, msg: str) -> None:
        print(f"capture: {msg}", file=sys.stderr)

    def skip(self, what: str, why: str) -> None:
        self.skipped += 1
        self.log(f"skip {what}: {why}")

    def error(self, what: str, err: BaseException) -> None:
        self.errors += 1
        self.log(f"ERROR {what}: {err}")

    def excluded(self, rel: str) -> bool:
        return any(fnmatch.fnmatch(rel, g) for g in self.excludes)

    # -- cgroup tree ---------------------------------------------------------------------------

    def tree(self, src: Path, dest: Path, min_depth: int, max_depth: int | None) -> None:
        for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
            d = Path(dirpath)
            rel_dir = d.relative_to(src)
            depth = 0 if str(rel_dir) == "." else len(rel_dir.parts)
            keep = []
            for name in sorted(dirnames):
                rel = str(rel_dir / name) if depth else name
                if self.excluded(rel):
                    self.log(f"exclude {rel}/")
                elif max_depth is None or depth < max_depth:
                    keep.append(name)
            dirnames[:] = keep
            out_dir = dest / rel_dir
            out_dir.mkdir(parents=True, exist_ok=True)
            if depth < min_depth:
                continue
            for name in sorted(filenames):
                rel = str(rel_dir / name) if depth else name
                if self.excluded(rel):
                    self.log(f"exclude {rel}")
                    continue
                self.copy_file(d / name, out_dir / name, rel)

    def copy_file(self, src: Path, dest: Path, rel: str) -> None:
        try:
            st = os.lstat(src)
        except OSError as e:
            if e.errno in GONE_ERRNOS:
                return self.skip(rel, "vanished")
            return self.error(rel, e)
        if not stat.S_ISREG(st.st_mode):
            return self.skip(rel, "not a regular file")
        if not st.st_mode & 0o444:
            return self.skip(rel, "write-only")
        try:
            with open(src, "rb") as f:
                data = f.read(self.max_size + 1)
        except OSError as e:
            if e.errno in SKIP_ERRNOS | GONE_ERRNOS:
                return self.skip(rel, f"read failed: {errno.errorcode.get(e.errno, e.errno)} ({e.strerror})")
            return self.error(rel, e)
        if len(data) > self.max_size:
            return self.skip(rel, f"larger than {self.max_size} bytes")
        dest.write_bytes(data)
        self.files += 1
        self.bytes += len(data)
        if src.name == "cgroup.procs":
            self.pids.update(int(x) for x in data.split())

    # -- /proc ---------------------------------------------------------------------------------

    def proc(self, proc_root: Path, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        for name in PROC_GLOBAL_FILES:
            self.copy_plain(proc_root / name, dest / name, f"/proc/{name}")
        self.copy_link(proc_root / "self/ns/net", dest / "self/ns/net", "/proc/self/ns/net")
        for pid in sorted(self.pids):
            self.proc_pid(proc_root, dest, pid)

    def proc_pid(self, proc_root: Path, dest: Path, pid: int) -> None:
        src = proc_root / str(pid)
        if not src.is_dir():
            return self.skip(f"/proc/{pid}", "task exited")
        for name in PROC_FILES:
            self.copy_plain(src / name, dest / str(pid) / name, f"/proc/{pid}/{name}",
                            rewrite=self.strip_cgroup if name == "cgroup" else None)
        for ns in NAMESPACES:
            self.copy_link(src / "ns" / ns, dest / str(pid) / "ns" / ns, f"/proc/{pid}/ns/{ns}")

    def strip_cgroup(self, data: bytes) -> bytes:
        """ "4:memory:/PREFIX/docker/x" -> "4:memory:/docker/x" for each --cgroup-strip PREFIX."""
        out = []
        for line in data.decode().splitlines():
            hid, ctrl, path = line.split(":", 2)
            for p in self.strip:
                if path == p:
                    path = "/"
                elif path.startswith(p + "/"):
                    path = path[len(p):]
            out.append(f"{hid}:{ctrl}:{path}")
        return ("\n".join(out) + "\n").encode()

    def copy_plain(self, src: Path, dest: Path, what: str, rewrite=None) -> None:
        try:
            data = src.read_bytes()
        except OSError as e:
            if e.errno in SKIP_ERRNOS | GONE_ERRNOS:
                return self.skip(what, f"read failed: {errno.errorcode.get(e.errno, e.errno)}")
            return self.error(what, e)
        if rewrite and self.strip:
            data = rewrite(data)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        self.files += 1
        self.bytes += len(data)

    def copy_link(self, src: Path, dest: Path, what: str) -> None:
        try:
            target = os.readlink(src)
        except OSError as e:
            if e.errno in SKIP_ERRNOS | GONE_ERRNOS:
                return self.skip(what, f"readlink failed: {errno.errorcode.get(e.errno, e.errno)}")
            return self.error(what, e)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or dest.exists():
            dest.unlink()
        os.symlink(target, dest)
        self.files += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Copy a cgroup tree (and matching /proc parts) into plain files for fixtures.",
        epilog="See the module docstring for what is skipped and why.")
    ap.add_argument("src", type=Path, help="cgroup directory to capture (e.g. /sys/fs/cgroup)")
    ap.add_argument("dest", type=Path, help="where to write the copy (created if missing)")
    ap.add_argument("--proc-root", type=Path, default=Path("/proc"), help="proc mount to read (/proc)")
    ap.add_argument("--proc-dest", type=Path, help="also copy /proc parts for the PIDs in cgroup.procs here")
    ap.add_argument("--min-depth", type=int, default=0,
                    help="copy only files at least N directory levels below SRC (1: not SRC's own)")
    ap.add_argument("--max-depth", type=int, default=None,
                    help="descend at most N directory levels below SRC (0: SRC's own files only)")
    ap.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                    help="skip paths (relative to SRC) matching GLOB; matching directories are not entered")
    ap.add_argument("--max-size", type=int, default=64 * 1024, help="skip files larger than this (65536)")
    ap.add_argument("--cgroup-strip", action="append", default=[], metavar="PREFIX",
                    help="remove PREFIX from the paths in copied /proc/<pid>/cgroup files")
    args = ap.parse_args(argv)

    if not args.src.is_dir():
        ap.error(f"{args.src} is not a directory")
    cap = Capture(args.max_size, args.exclude, args.cgroup_strip)
    cap.tree(args.src, args.dest, args.min_depth, args.max_depth)
    if args.proc_dest:
        cap.proc(args.proc_root, args.proc_dest)
    cap.log(f"{args.src} -> {args.dest}: {cap.files} files ({cap.bytes} bytes), "
            f"{cap.skipped} skipped, {cap.errors} errors"
            + (f", {len(cap.pids)} pids" if args.proc_dest else ""))
    return 1 if cap.errors else 0


if __name__ == "__main__":
    sys.exit(main())
