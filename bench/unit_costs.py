"""Per-call costs of the steps a collection repeats for every cgroup, to price PROFILE.md's fixes.

    .venv/bin/python bench/unit_costs.py

Uses one real Docker-shaped cgroup (removed afterwards) and cgwatch's own helpers, so each line
is what the agent pays per call today next to a cheaper way to get the same bytes. Multiply by
the calls per collection from profile_collect.py to get milliseconds per scrape.
"""

from __future__ import annotations

import os
import sys
import timeit

from cgwatch.cgroup.base import join
from cgwatch.host.fsread import read_text
from cgwatch.host.parse import parse_flat_keyed

from sandbox import BenchCgroups


def per_call_us(stmt, number: int = 20000, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number * 1e6


def main() -> int:
    sandbox = BenchCgroups()
    try:
        sandbox.add_containers(1)
        cg = sandbox.containers[0]
        memory_root = str(sandbox.layout.v1["memory"])
        memory_dir = join(memory_root, cg)
        stat_path = f"{memory_dir}/memory.stat"
        usage_path = f"{memory_dir}/memory.usage_in_bytes"
        buf = bytearray(64 * 1024)
        kept = os.open(usage_path, os.O_RDONLY | os.O_CLOEXEC)
        kept_stat = os.open(stat_path, os.O_RDONLY | os.O_CLOEXEC)
        stat_text = read_text(stat_path) or ""
        labels = f'id="{cg}",image="",name="{cg.rsplit("/", 1)[1]}",container="",namespace="",pod=""'

        def open_read_close(p: str) -> int:
            fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
            try:
                return os.readv(fd, [buf])
            finally:
                os.close(fd)

        rows = [
            ("memory.usage_in_bytes: read_text(str) (os.open, os.read, close, decode)",
             per_call_us(lambda: read_text(usage_path))),
            ("memory.usage_in_bytes: os.open + readv into a reused buffer + close",
             per_call_us(lambda: open_read_close(usage_path))),
            ("memory.usage_in_bytes: preadv on a kept-open fd", per_call_us(lambda: os.preadv(kept, [buf], 0))),
            ("memory.stat: read_text(str)", per_call_us(lambda: read_text(stat_path), number=5000)),
            ("memory.stat: preadv on a kept-open fd", per_call_us(lambda: os.preadv(kept_stat, [buf], 0), number=5000)),
            ("memory.stat: parse_flat_keyed", per_call_us(lambda: parse_flat_keyed(stat_text), number=5000)),
            ("cgroup dir path: join(root, cgroup) (string concatenation)", per_call_us(lambda: join(memory_root, cg))),
            ("start time: one stat() of the cgroup dir", per_call_us(lambda: os.stat(memory_dir), number=5000)),
            ("walk, a leaf: one stat() for st_nlink", per_call_us(lambda: os.stat(memory_dir).st_nlink, number=5000)),
            ("walk, a parent: scandir + is_dir of a cgroup dir listing its control files",
             per_call_us(lambda: [e.name for e in os.scandir(memory_dir) if e.is_dir(follow_symlinks=False)],
                         number=5000)),
            ("render one sample line (f-string, int value)",
             per_call_us(lambda: f"container_memory_rss{{{labels}}} {4096}\n")),
        ]
        os.close(kept)
        os.close(kept_stat)
    finally:
        sandbox.cleanup()
    print("| step | µs per call |\n|---|---:|")
    for what, us in rows:
        print(f"| {what} | {us:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
