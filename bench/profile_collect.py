"""Where a collection's time goes: cProfile over Exporter.collect_blocking with N containers.

    .venv/bin/python bench/profile_collect.py [--n 1000] [--collections 5]

Builds the same Docker-shaped cgroups as scrape_bench.py, runs the agent's exporter in this
process (cgwatch.agent.Agent, Docker off, --max-age 0, /process_api* ignored), profiles a few
whole collections and prints markdown tables: top functions by cumulative and by own time,
the syscall-level builtins with their call counts per collection, and the per-collector split.
The raw profile is saved as a .pstats file for `python -m pstats` or snakeviz.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from agent_process import IGNORE, REPO, OtherLoad
from sandbox import BenchCgroups, remove_sandbox, uninterruptible
from scrape_bench import wait_quiet

# Builtins whose own time is (almost all) time in the kernel, and what they stand for.
SYSCALL_BUILTINS = {
    "<built-in method posix.open>": "open(2)",
    "<built-in method posix.read>": "read(2)",
    "<built-in method posix.readv>": "readv(2)",
    "<built-in method posix.close>": "close(2)",
    "<built-in method io.open>": "open(2) (+ fstat, ioctl for isatty)",
    "<method 'read' of '_io.FileIO' objects>": "read(2), until EOF",
    "<method '__exit__' of '_io._IOBase' objects>": "close(2)",
    "<built-in method posix.stat>": "stat(2)",
    "<built-in method posix.readlink>": "readlink(2)",
    "<built-in method posix.scandir>": "opendir + getdents",
    "<method 'is_dir' of 'posix.DirEntry' objects>": "DirEntry.is_dir (d_type, no syscall)",
}


def label(key: tuple[str, int, str]) -> str:
    filename, line, func = key
    if filename == "~":
        return func
    root = str(REPO) + "/"
    if filename.startswith(root):
        filename = filename[len(root):]
    elif "/lib/python" in filename:
        filename = filename.split("/lib/python", 1)[1].split("/", 1)[1]
    return f"{filename}:{line}({func})"


def top_rows(stats: pstats.Stats, total: float, sort_index: int, limit: int) -> list[str]:
    """Markdown rows: function, cumulative %, own %, calls per collection. sort_index: 2 own, 3 cum."""
    entries = sorted(stats.stats.items(), key=lambda kv: kv[1][sort_index], reverse=True)  # type: ignore[attr-defined]
    collections = stats.collections  # type: ignore[attr-defined]
    rows = []
    for key, (_, ncalls, tt, ct, _) in entries[:limit]:
        rows.append(f"| `{label(key)}` | {ct / total * 100:.1f} | {tt / total * 100:.1f} | "
                    f"{ncalls / collections:,.0f} |")
    return rows


class GcClock:
    """Time spent in the cyclic garbage collector, from gc.callbacks start/stop events."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self.counts: dict[int, int] = {}
        self._t0 = 0.0
        gc.callbacks.append(self._event)

    def _event(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.total_s += time.perf_counter() - self._t0
            self.counts[info["generation"]] = self.counts.get(info["generation"], 0) + 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--collections", type=int, default=5)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="wait up to this long for other processes to use under 0.2 cores before measuring")
    p.add_argument("--pstats", type=Path, default=REPO / "bench" / "results" / "profile.pstats")
    args = p.parse_args(argv)

    from cgwatch.agent import Agent
    from cgwatch.config import Settings

    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(KeyboardInterrupt()))
    tmp = Path(tempfile.mkdtemp(prefix="cgwatch-profile-"))
    sandbox: BenchCgroups | None = None
    try:
        sandbox = BenchCgroups()
        sandbox.add_containers(args.n)
        agent = Agent(Settings(docker_host="", podman_host="", containerd_host="", ignore_cgroups=IGNORE, max_age_s=0, state_dir=tmp))
        collect = agent.exporter.collect_blocking
        gc_clock = GcClock()
        for _ in range(2):
            collect()
        if args.wait_quiet:
            wait_quiet(args.wait_quiet)
        other = OtherLoad()
        plain, plain_cpu, gc_share = [], [], []
        for _ in range(args.collections):
            t0, c0, gc_before = time.perf_counter(), time.thread_time(), gc_clock.total_s
            body = collect()
            plain.append(time.perf_counter() - t0)
            plain_cpu.append(time.thread_time() - c0)
            gc_share.append((gc_clock.total_s - gc_before, dict(gc_clock.counts)))
            gc_clock.counts.clear()
        gc.disable()
        try:
            no_gc = []
            for _ in range(args.collections):
                t0 = time.perf_counter()
                collect()
                no_gc.append(time.perf_counter() - t0)
        finally:
            gc.enable()
        profiler = cProfile.Profile()
        for _ in range(args.collections):
            profiler.enable()
            collect()
            profiler.disable()
        cgroups = agent.exporter.last_stats.containers if agent.exporter.last_stats else 0
        other_cores = other.cores()
    finally:
        with uninterruptible():
            remove_sandbox(sandbox, tmp)

    stats = pstats.Stats(profiler)
    stats.collections = args.collections  # type: ignore[attr-defined]
    args.pstats.parent.mkdir(parents=True, exist_ok=True)
    stats.dump_stats(args.pstats)
    entry = next(v for k, v in stats.stats.items() if k[2] == "collect_blocking")  # type: ignore[attr-defined]
    total = entry[3]
    per = total / args.collections
    print(f"N={args.n} containers, {cgroups} cgroups collected, {len(body):,} bytes; "
          f"collect_blocking p50 {statistics.median(plain) * 1e3:.0f} ms unprofiled "
          f"({statistics.median(plain_cpu) * 1e3:.0f} ms CPU), "
          f"{per * 1e3:.0f} ms under cProfile (mean of {args.collections}); other processes used "
          f"{other_cores:.2f} cores meanwhile\n")
    gc_s = statistics.median(g for g, _ in gc_share)
    print(f"Cyclic GC inside a collection (gc.callbacks): p50 {gc_s * 1e3:.0f} ms "
          f"({gc_s / statistics.median(plain) * 100:.0f}%), collections by generation: {gc_share[-1][1]}; "
          f"with gc.disable(): p50 {statistics.median(no_gc) * 1e3:.0f} ms.\n")
    print("### Top by cumulative time\n\n| function | cum % | own % | calls/collection |\n|---|---:|---:|---:|")
    print("\n".join(top_rows(stats, total, 3, args.top)))
    print("\n### Top by own time\n\n| function | cum % | own % | calls/collection |\n|---|---:|---:|---:|")
    print("\n".join(top_rows(stats, total, 2, args.top)))
    print("\n### Syscall-level builtins\n\n| builtin | what | own % | calls/collection |\n|---|---|---:|---:|")
    syscall_total = 0.0
    for key, (_, ncalls, tt, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        what = SYSCALL_BUILTINS.get(key[2]) if key[0] == "~" else None
        if what:
            syscall_total += tt
            print(f"| `{key[2]}` | {what} | {tt / total * 100:.1f} | {ncalls / args.collections:,.0f} |")
    print(f"\nIn those builtins: {syscall_total / total * 100:.1f}% of the collection; "
          f"the rest is Python around them.")
    print("\n### Per collector (cumulative)\n\n| collector | cum % | ms/collection |\n|---|---:|---:|")
    for key, (_, _, _, ct, _) in sorted(stats.stats.items(), key=lambda kv: -kv[1][3]):  # type: ignore[attr-defined]
        if key[2] == "collect" and "/collectors/" in key[0]:
            name = Path(key[0]).stem
            print(f"| {name} | {ct / total * 100:.1f} | {ct / args.collections * 1e3:.1f} |")
    for key, (_, _, _, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        if key[2] in ("scan", "render", "generate_latest") and ("cgwatch" in key[0] or "prometheus" in key[0]):
            print(f"| ({label(key)}) | {ct / total * 100:.1f} | {ct / args.collections * 1e3:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
