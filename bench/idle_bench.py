"""What an idle agent costs: CPU of `cgwatch serve` with N containers, nothing enforced, no scrape.

Builds N Docker-shaped cgroups (sandbox.py), starts the agent (agent_process.py) and, beside it, a
bare Python process that only sleeps in asyncio (the floor: what any Python daemon costs), lets
both settle, then reads their CPU (/proc/<pid>/stat, 10 ms ticks) over ``--seconds``. Twice:

- ``never scraped``: the agent as started, nothing has asked it anything (its start made one
  collection, so the OOM watcher already holds its registrations);
- ``after one scrape``: one /metrics collection has run, so the OOM watcher holds a registration
  per container and the death keeper its records: idle between two scrapes of a long interval.

Per thread it gives CPU ticks and wakes (voluntary context switches, /proc/<pid>/task/<tid>/status):
a thread that wakes on a timer shows hundreds of wakes a minute; one blocked without a timeout, none.
Threads are named by what they are where that is known (the main thread runs the event loop: the
scheduler's jobs, the births and policy watchers); Python does not name its threads for the kernel.

    .venv/bin/python bench/idle_bench.py --n 1000 --seconds 60
    .venv/bin/python bench/idle_bench.py --n 1000 --agent-tree /tmp/cgwatch-base   # another tree's agent

``--agent-tree`` runs the agent from another checkout (e.g. `git archive <rev> | tar -x -C DIR`) to
measure before and after in one run. JSON in bench/results/idle-latest.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agent_process import CLK_TCK, AgentProcess, OtherLoad, Scraper, cpu_seconds
from sandbox import BenchCgroups, remove_sandbox, start_as_root, uninterruptible
from scrape_bench import log, save_result, wait_quiet
from tests.support.env import REPO

FLOOR_PROGRAM = "import asyncio; asyncio.run(asyncio.sleep(86400))"


def threads(pid: int) -> dict[int, tuple[float, int]]:
    """tid -> (CPU seconds, voluntary context switches) of every thread of ``pid``."""
    out: dict[int, tuple[float, int]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                wakes = next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))
        except (OSError, StopIteration):
            continue
        out[int(tid)] = ((int(fields[11]) + int(fields[12])) / CLK_TCK, wakes)
    return out


def idle_window(agent_pid: int, floor_pid: int, seconds: float) -> dict[str, Any]:
    a0, f0, t0, other = cpu_seconds(agent_pid), cpu_seconds(floor_pid), threads(agent_pid), OtherLoad(agent_pid)
    started = time.perf_counter()
    time.sleep(seconds)
    wall = time.perf_counter() - started
    a1, f1, t1 = cpu_seconds(agent_pid), cpu_seconds(floor_pid), threads(agent_pid)
    per_thread = []
    for tid, (cpu, wakes) in sorted(t1.items()):
        cpu0, wakes0 = t0.get(tid, (0.0, 0))
        per_thread.append({"tid": tid, "main": tid == agent_pid, "cpu_s": cpu - cpu0, "wakes": wakes - wakes0,
                           "wakes_per_s": (wakes - wakes0) / wall})
    return {"wall_s": wall, "agent_cpu_s": a1 - a0, "agent_cpu_pct": (a1 - a0) / wall * 100,
            "floor_cpu_s": f1 - f0, "floor_cpu_pct": (f1 - f0) / wall * 100,
            "other_load_cores": other.cores(), "threads": per_thread}


def run(args: argparse.Namespace, sandbox: BenchCgroups, tmp: Path, started: list[Any]) -> dict[str, Any]:
    agent = AgentProcess(tmp / "state", extra_args=tuple(args.agent_arg), cwd=args.agent_tree)
    floor = subprocess.Popen([sys.executable, "-c", FLOOR_PROGRAM], stdin=subprocess.DEVNULL)
    started += [agent, floor]
    agent.start()
    log(f"agent {agent.pid} from {args.agent_tree}; floor {floor.pid}; settling {args.settle:g}s")
    time.sleep(args.settle)
    phases: dict[str, Any] = {}
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    log(f"never scraped: {args.seconds:g}s")
    phases["never_scraped"] = idle_window(agent.pid, floor.pid, args.seconds)
    scraper = Scraper(agent.port)
    took, body = scraper.scrape()
    scraper.close()
    log(f"one scrape ({took * 1000:.0f} ms, {len(body) >> 20} MiB); settling {args.settle:g}s")
    time.sleep(args.settle)
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    log(f"after one scrape: {args.seconds:g}s")
    phases["after_one_scrape"] = idle_window(agent.pid, floor.pid, args.seconds)
    log_lines = sum(1 for _ in open(agent.log_path, errors="replace"))
    return {"n": len(sandbox.containers), "agent_tree": str(args.agent_tree), "phases": phases,
            "agent_log_lines": log_lines}


def table(result: dict[str, Any]) -> str:
    out = ["| phase | agent CPU % of a core | floor (bare asyncio) % | agent wakes/s (all threads) | "
           "busiest thread wakes/s | other load (cores) |",
           "|---|---:|---:|---:|---:|---:|"]
    for name, p in result["phases"].items():
        wakes = sum(t["wakes_per_s"] for t in p["threads"])
        busiest = max(p["threads"], key=lambda t: t["wakes_per_s"])
        label = "main" if busiest["main"] else f"tid {busiest['tid']}"
        out.append(f"| {name.replace('_', ' ')} | {p['agent_cpu_pct']:.3f} | {p['floor_cpu_pct']:.3f} | "
                   f"{wakes:.1f} | {busiest['wakes_per_s']:.1f} ({label}) | {p['other_load_cores']:.2f} |")
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1000, help="containers")
    p.add_argument("--seconds", type=float, default=60.0, help="each idle window")
    p.add_argument("--settle", type=float, default=10.0, help="wait after the start and after the scrape")
    p.add_argument("--agent-tree", type=Path, default=REPO, help="the checkout the agent runs from")
    p.add_argument("--agent-arg", action="append", default=[], metavar="ARG", help="one more `serve` argument")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each window, wait up to this long for other processes to use under 0.2 cores")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "idle-latest.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not start_as_root("idle_bench"):
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="cgwatch-idle-"))
    sandbox: BenchCgroups | None = None
    started: list[Any] = []
    result: dict[str, Any] | None = None
    try:
        sandbox = BenchCgroups()
        t0 = time.perf_counter()
        sandbox.add_containers(args.n)
        log(f"{args.n} containers under /{sandbox.name} in {time.perf_counter() - t0:.1f}s")
        result = run(args, sandbox, tmp, started)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
    finally:
        with uninterruptible():
            for proc in started:
                if isinstance(proc, AgentProcess):
                    proc.stop()
                else:
                    proc.kill()
                    proc.wait()
            remove_sandbox(sandbox, tmp)
    if result is None:
        return 130
    print(table(result))
    save_result(args, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
