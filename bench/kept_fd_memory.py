"""What a kept-open cgroup file costs in memory: the charge to the keeper's memory cgroup.

cgwatch keeps ~15 cgroup files open per container and re-reads them with pread
(cgwatch/host/keptfiles.py). A kept descriptor holds its ``struct file`` and, once read, the
seq_file's buffer (a page: fs/seq_file.c ``seq_read_iter``), kernel memory charged to the memory
cgroup of the process that holds it (the v1 memory.usage_in_bytes counts it; so does v2's
memory.current). So a deployment's memory limit must cover it. This opens the files of N sandbox
containers (sandbox.py) in a child that sits alone in a fresh memory cgroup, and reports the
charge per descriptor after open, after one read and after close. With ``--oom-check`` the child
then runs again under a limit 30 MiB above its start, to see what reaching the limit does.

    .venv/bin/python bench/kept_fd_memory.py --n 1000 [--oom-check]
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import resource
import sys

from sandbox import BenchCgroups, start_as_root

# Files a v1 container's collection re-reads (host/keptfiles.py keeps these kinds).
FILES = ("cpuacct.usage", "cpuacct.stat", "cpuacct.usage_percpu", "cpu.stat", "memory.usage_in_bytes",
         "memory.stat", "memory.max_usage_in_bytes", "memory.failcnt", "pids.current",
         "blkio.throttle.io_service_bytes")


def _charge(memcg: str) -> int:
    with open(f"{memcg}/memory.usage_in_bytes") as f:
        return int(f.read())


def _child(memcg: str, files: list[str], limit_extra: int | None, report: int) -> None:
    """In a fresh memory cgroup: keep every file open and read it once; report on ``report``."""
    with open(f"{memcg}/cgroup.procs", "w") as f:
        f.write(str(os.getpid()))
    start = _charge(memcg)
    if limit_extra is not None:
        with open(f"{memcg}/memory.limit_in_bytes", "w") as f:
            f.write(str(start + limit_extra))
    fds: list[int] = []
    errors: dict[str, int] = {}
    for path in files:
        try:
            fds.append(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        except OSError as exc:
            errors[errno.errorcode[exc.errno]] = errors.get(errno.errorcode[exc.errno], 0) + 1
    opened = _charge(memcg)
    for fd in fds:
        try:
            os.pread(fd, 65536, 0)
        except OSError as exc:
            errors[errno.errorcode[exc.errno]] = errors.get(errno.errorcode[exc.errno], 0) + 1
    read = _charge(memcg)
    for fd in fds:
        os.close(fd)
    closed = _charge(memcg)
    n = max(1, len(fds))
    os.write(report, json.dumps({"fds": len(fds), "errors": errors, "bytes_per_fd_open": (opened - start) / n,
                                 "bytes_per_fd_read": (read - start) / n,
                                 "bytes_per_fd_after_close": (closed - start) / n}).encode())


def run(memcg: str, files: list[str], limit_extra: int | None) -> dict[str, object]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            _child(memcg, files, limit_extra, w)
        finally:
            os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(r, "rb") as f:
        out = f.read()
    result: dict[str, object] = json.loads(out) if out else {}
    result["killed_by_signal"] = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    with open(f"{memcg}/memory.oom_control") as f:
        result["oom_control"] = dict(line.split() for line in f)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1000, help="containers whose files are kept open")
    p.add_argument("--oom-check", action="store_true", help="run again under a limit 30 MiB above the start")
    args = p.parse_args(argv)
    if not start_as_root("kept_fd_memory"):
        return 2
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sandbox = BenchCgroups()
    try:
        sandbox.add_containers(args.n)
        files = [str(sandbox.file(cg, name)) for cg in sandbox.containers for name in FILES][:max(0, hard - 1000)]
        memory = sandbox.layout.v1["memory"]
        out = {}
        for case, limit in (("unlimited", None), ("limit_start_plus_30MiB", 30 << 20)):
            if limit is not None and not args.oom_check:
                continue
            memcg = str(memory / sandbox.create(f"probe-{case}").lstrip("/"))
            out[case] = run(memcg, files, limit)
        print(json.dumps({"kernel": os.uname().release, "containers": args.n, **out}, indent=1))
    finally:
        left = sandbox.cleanup()
        if left:
            print(f"warning: could not remove {len(left)} cgroup dirs, e.g. {left[0]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
