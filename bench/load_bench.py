"""A bounded load test of the real agent on loopback: scrapers and limit writes at once.

    .venv/bin/python bench/load_bench.py [--containers 1000] [--scrapers 50] [--rate 100] [--duration 180]

Creates the Docker-shaped cgroups (bench/sandbox.py), starts `cgwatch serve` on free loopback
ports with its own state directory, then for --duration seconds runs --scrapers concurrent
back-to-back GET /metrics (in a child process) and a writer pacing --rate PATCH .../limits a
second (random cpus / memory / pids_limit, spread over the containers, several in flight, never
two on one container). At the end it checks: no error, every container's kernel files equal its
last acknowledged request, one audit line per request; and it compares the agent's event-loop
lag (cgwatch_event_loop_lag_seconds) and RSS in the first and the last window. Everything it
made is removed at the end. bench/LOAD.md explains the method and the latest numbers.
Exit status: 0 when every correctness check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from agent_process import IGNORE, REPO, AgentProcess
from load_engine import Outcome, Plan, check, correct, run_load
from sandbox import BenchCgroups, remove_sandbox, stale_parents, start_as_root, uninterruptible
from scrape_bench import log, machine, percentile

# "Flat": the last window's median RSS within this much of the first window's, and its lag p99
# no worse than the first's by more than LAG_SLACK_S (one histogram bucket step at these sizes).
RSS_GROWTH_MAX = 0.10
LAG_SLACK_S = 0.05


def window_bounds(duration_s: float) -> tuple[tuple[float, float], tuple[float, float]]:
    w = min(60.0, duration_s / 3)
    return (0.0, w), (duration_s - w, duration_s)


def lag_between(lag: list[tuple[float, dict[str, Any]]], a: float, b: float) -> dict[str, Any] | None:
    """Mean and bucket-bound quantiles of the lag observed in [a, b] (cumulative snapshots)."""
    before = [s for t, s in lag if t <= a] or [s for t, s in lag if t >= a][:1]
    upto = [s for t, s in lag if t <= b]
    if not before or not upto:
        return None
    first, last = before[-1], upto[-1]
    count = last["count"] - first["count"]
    if count <= 0:
        return None
    les = sorted(last["buckets"], key=lambda le: float(le))
    delta = [(le, last["buckets"][le] - first["buckets"].get(le, 0.0)) for le in les]

    def quantile(q: float) -> float:
        for le, n in delta:
            if n >= q * count:
                return float(le)
        return float("inf")

    return {"observations": int(count), "mean_s": (last["sum"] - first["sum"]) / count,
            "p50_le_s": quantile(0.5), "p99_le_s": quantile(0.99), "max_le_s": quantile(1.0)}


def stats_ms(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"p50_ms": statistics.median(values) * 1e3, "p99_ms": percentile(values, 99) * 1e3,
            "max_ms": max(values) * 1e3, "n": len(values)}


def summarize(outcome: Outcome, plan: Plan) -> dict[str, Any]:
    first, last = window_bounds(plan.duration_s)
    ok_writes = [w for w in outcome.writes if w.status == 200]
    in_window = lambda rows, key, lo, hi: [r for r in rows if lo <= key(r) < hi]  # noqa: E731
    scrapes_ok = [s for s in outcome.scrapes if s[2] == 200 and not s[4]]

    def window(lo: float, hi: float) -> dict[str, Any]:
        samples = in_window(outcome.samples, lambda s: s["t"], lo, hi)
        return {
            "from_s": lo, "to_s": hi,
            "scrape_latency": stats_ms([s[1] for s in in_window(scrapes_ok, lambda s: s[0], lo, hi)]),
            "write_latency": stats_ms([w.done - w.sent for w in in_window(ok_writes, lambda w: w.sent, lo, hi)]),
            "event_loop_lag": lag_between(outcome.lag, lo, hi),
            "rss_median_bytes": statistics.median(s["rss_bytes"] for s in samples) if samples else None,
            "rss_max_bytes": max(s["rss_bytes"] for s in samples) if samples else None,
            "fds_max": max(s["fds"] for s in samples) if samples else None,
        }

    w_first, w_last = window(*first), window(*last)
    lateness = [w.sent - w.due for w in outcome.writes]
    flat_rss = (w_first["rss_median_bytes"] and w_last["rss_median_bytes"]
                and w_last["rss_median_bytes"] <= w_first["rss_median_bytes"] * (1 + RSS_GROWTH_MAX))
    lf, ll = w_first["event_loop_lag"], w_last["event_loop_lag"]
    flat_lag = bool(lf and ll and ll["p99_le_s"] <= lf["p99_le_s"] + LAG_SLACK_S)
    return {
        "write_rate_achieved_per_s": len(outcome.writes) / outcome.wall_s,
        "writer_wall_s": outcome.wall_s,
        "write_lateness": stats_ms(lateness),
        "scrape_latency": stats_ms([s[1] for s in scrapes_ok]),
        "scrapes_per_s": len(outcome.scrapes) / plan.duration_s,
        "scrape_mb_p50": statistics.median(s[3] for s in scrapes_ok) / 1e6 if scrapes_ok else None,
        "write_latency": stats_ms([w.done - w.sent for w in ok_writes]),
        "first_window": w_first, "last_window": w_last,
        "rss_flat": bool(flat_rss), "lag_flat": flat_lag,
        "rss_bytes_at_start": outcome.samples[0]["rss_bytes"] if outcome.samples else None,
        "rss_bytes_at_end": outcome.samples[-1]["rss_bytes"] if outcome.samples else None,
        "fds_max": max((s["fds"] for s in outcome.samples), default=None),
        "agent_cpu_cores": ((outcome.samples[-1]["cpu_s"] - outcome.samples[0]["cpu_s"])
                            / (outcome.samples[-1]["t"] - outcome.samples[0]["t"])) if len(outcome.samples) > 1 else None,
    }


def report(summary: dict[str, Any], checks: dict[str, Any]) -> str:
    def ms(d: dict[str, float] | None) -> str:
        return "n/a" if d is None else f"p50 {d['p50_ms']:.0f} ms, p99 {d['p99_ms']:.0f} ms, max {d['max_ms']:.0f} ms"

    def lag(d: dict[str, Any] | None) -> str:
        return "n/a" if d is None else (f"mean {d['mean_s'] * 1e3:.1f} ms, p50 <= {d['p50_le_s'] * 1e3:g} ms, "
                                        f"p99 <= {d['p99_le_s'] * 1e3:g} ms")

    f, last = summary["first_window"], summary["last_window"]
    mb = lambda b: "n/a" if b is None else f"{b / 2**20:.0f} MiB"  # noqa: E731
    return "\n".join([
        f"writes: {checks['writes']} at {summary['write_rate_achieved_per_s']:.1f}/s, errors {checks['write_errors']}; "
        f"latency {ms(summary['write_latency'])}; sent late {ms(summary['write_lateness'])}",
        f"scrapes: {checks['scrapes']} ({summary['scrapes_per_s']:.1f}/s), errors {checks['scrape_errors']}; "
        f"latency {ms(summary['scrape_latency'])}",
        f"kernel == last acknowledged: {checks['containers_written'] - len({m['cgroup'] for m in checks['kernel_mismatch_examples']})}"
        f" of {checks['containers_written']} containers ({checks['kernel_mismatches']} mismatched files); "
        f"replies == requests: {checks['reply_mismatches']} mismatches",
        f"audit lines: {checks['audit_lines']} for {checks['writes']} requests {checks['audit_lines_by_mode']}",
        f"event-loop lag: first window {lag(f['event_loop_lag'])}; last {lag(last['event_loop_lag'])} "
        f"({'flat' if summary['lag_flat'] else 'NOT flat'})",
        f"RSS median: first window {mb(f['rss_median_bytes'])}, last {mb(last['rss_median_bytes'])} "
        f"({'flat' if summary['rss_flat'] else 'NOT flat'}); fds max {summary['fds_max']}; "
        f"agent CPU {summary['agent_cpu_cores']:.2f} cores",
    ])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--containers", type=int, default=1000, help="Docker-shaped cgroups to create")
    p.add_argument("--scrapers", type=int, default=50, help="concurrent back-to-back /metrics scrapers")
    p.add_argument("--rate", type=float, default=100.0, help="PATCH .../limits requests a second")
    p.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    p.add_argument("--inflight", type=int, default=32, help="writes in flight at most")
    p.add_argument("--max-age", type=float, default=1.0,
                   help="the agent's --max-age (its default, 1 s: concurrent scrapes share a collection)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "load-latest.json")
    p.add_argument("--raw", action="store_true", help="also keep every request and scrape in the JSON")
    p.add_argument("--agent-arg", action="append", default=[], metavar="ARG",
                   help="one more argument for `cgwatch serve` (repeatable)")
    args = p.parse_args(argv)
    if args.containers < args.inflight:
        p.error("--containers must be at least --inflight (one write in flight per container)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not start_as_root("load_bench"):
        return 2
    for d in stale_parents():
        log(f"warning: {d} is left from an earlier run that was killed; it is not touched")
    plan = Plan(args.containers, args.scrapers, args.rate, args.duration, args.inflight, args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="cgwatch-load-"))
    sandbox: BenchCgroups | None = None
    agent: AgentProcess | None = None
    try:
        sandbox = BenchCgroups()
        t0 = time.perf_counter()
        sandbox.add_containers(plan.containers)
        log(f"{plan.containers} containers under /{sandbox.name} ({time.perf_counter() - t0:.1f}s); starting the agent")
        agent = AgentProcess(tmp / "state", IGNORE, ("--max-age", str(args.max_age), *args.agent_arg))
        agent.start()
        token = (agent.state_dir / "token").read_text().strip()
        layout = sandbox.layout
        file_for = lambda cg, name: layout.v1[name.split(".", 1)[0]] / cg.lstrip("/") / name  # noqa: E731
        ids = [cg.rsplit("/", 1)[1] for cg in sandbox.containers]
        log(f"load: {plan.scrapers} scrapers, {plan.rate:g} writes/s for {plan.duration_s:g}s")
        outcome = asyncio.run(run_load(f"http://127.0.0.1:{agent.port}", f"http://127.0.0.1:{agent.api_port}",
                                       token, agent.pid, ids, plan, os.cpu_count() or 1, tmp))
        checks = check(outcome, sandbox.containers, file_for, agent.state_dir / "audit.log")
        summary = summarize(outcome, plan)
        status = agent.stop()
        agent = None
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        return 130
    finally:
        with uninterruptible():
            if agent is not None:
                log(f"agent log tail:\n{agent.log_tail()}")
                agent.stop()
            remove_sandbox(sandbox, tmp)
    ok = correct(checks)
    print(report(summary, checks))
    print(f"correctness: {'PASS' if ok else 'FAIL'}; agent exit status {status}")
    result = {"machine": machine(), "plan": asdict(plan),
              "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "correct": ok, "checks": checks, "summary": summary, "agent_exit_status": status,
              "samples": outcome.samples, "lag_snapshots": len(outcome.lag)}
    if args.raw:
        from load_engine import outcome_json
        result["raw"] = outcome_json(outcome)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"results in {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
