"""Scrape cost of the real cgwatch agent with N Docker-shaped cgroups on this host, and its floor.

    .venv/bin/python bench/scrape_bench.py --n 100 1000 3000 [--out bench/results/latest.json] [--scrapes 30]

For each N (ascending; containers are added to the ones already there): create the cgroups and
their sleepers, measure the floor (bench/floor.py), start `cgwatch serve --max-age 0`, measure
sequential scrapes, concurrent batches and idle CPU, stop the agent. Everything it made is
removed at the end, on errors and on Ctrl-C / SIGTERM too. bench/README.md explains the columns.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any, TypeVar

import floor
from agent_process import (DEPLOYED_NOFILE, IGNORE, REPO, AgentProcess, OtherLoad, Scraper, cpu_seconds,
                           nofile_for_agent, nofile_limits, rss_bytes, snapshot)
from sandbox import BenchCgroups, remove_sandbox, stale_parents, start_as_root, uninterruptible

MIB = 1024 * 1024
T = TypeVar("T")


def percentile(values: list[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); with 30 samples p99 ~ max."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


_AGENT_LINE = re.compile(rb'^(cgwatch_scrape_duration_seconds|cgwatch_collector_duration_seconds|cgwatch_containers)'
                         rb'(?:\{(?:collector|runtime)="([^"]*)"\})? (\S+)$', re.M)


def agent_reported(body: bytes) -> dict[str, Any]:
    """The agent's own timing of the collection that produced ``body`` (its trailing families)."""
    out: dict[str, Any] = {"collection_s": None, "collectors_s": {}, "containers": {}}
    regions = []
    for family in (b"cgwatch_scrape_duration_seconds", b"cgwatch_containers"):
        start = body.rfind(b"# HELP " + family + b" ")
        if start >= 0:
            regions.append(body[start:start + 4096])
    for name, label, value in _AGENT_LINE.findall(b"\n".join(regions)):
        if name == b"cgwatch_scrape_duration_seconds":
            out["collection_s"] = float(value)
        elif name == b"cgwatch_collector_duration_seconds":
            out["collectors_s"][label.decode()] = float(value)
        else:
            out["containers"][label.decode()] = int(float(value))
    return out


def sequential(agent: AgentProcess, scrapes: int, warmup: int = 2) -> dict[str, Any]:
    scraper = Scraper(agent.port)
    try:
        for _ in range(warmup):
            scraper.scrape()
        before, t0, other = snapshot(agent.pid), time.perf_counter(), OtherLoad(agent.pid)
        latencies, sizes, reported = [], [], []
        for _ in range(scrapes):
            elapsed, body = scraper.scrape()
            latencies.append(elapsed)
            sizes.append(len(body))
            reported.append(agent_reported(body))
        wall_s, after, other_cores = time.perf_counter() - t0, snapshot(agent.pid), other.cores()
    finally:
        scraper.close()
    collectors = sorted(reported[-1]["collectors_s"])
    return {
        "latency_s": latencies, "bytes": sizes, "wall_s": wall_s, "other_load_cores": other_cores,
        "cpu_s": after.cpu_s - before.cpu_s,
        "rss_bytes": after.rss_bytes, "hwm_bytes": after.hwm_bytes, "fds": after.fds,
        "threads": after.threads,
        "agent_collection_s": [r["collection_s"] for r in reported],
        "agent_collectors_p50_s": {c: statistics.median(r["collectors_s"].get(c, 0.0) for r in reported)
                                   for c in collectors},
        "agent_containers_by_runtime": reported[-1]["containers"],
    }


def concurrent_batches(agent: AgentProcess, concurrency: int, batches: int) -> dict[str, Any]:
    """``concurrency`` scrapes released at once by a barrier, ``batches`` times."""
    out: dict[str, Any] = {"wall_s": [], "cpu_s": [], "latency_s": [], "bytes": []}
    other = OtherLoad(agent.pid)
    for _ in range(batches):
        scrapers = [Scraper(agent.port) for _ in range(concurrency)]
        for s in scrapers:
            s.conn.connect()
        barrier = threading.Barrier(concurrency + 1)
        results: list[tuple[float, int] | BaseException] = []
        lock = threading.Lock()

        def one(s: Scraper) -> None:
            barrier.wait()
            try:
                elapsed, body = s.scrape()
                got: tuple[float, int] | BaseException = (elapsed, len(body))
            except BaseException as exc:  # reported below, in the main thread
                got = exc
            with lock:
                results.append(got)

        threads = [threading.Thread(target=one, args=(s,), daemon=True) for s in scrapers]
        for t in threads:
            t.start()
        cpu0 = cpu_seconds(agent.pid)
        t0 = time.perf_counter()
        barrier.wait()
        for t in threads:
            t.join()
        out["wall_s"].append(time.perf_counter() - t0)
        out["cpu_s"].append(cpu_seconds(agent.pid) - cpu0)
        for s in scrapers:
            s.close()
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise RuntimeError(f"{len(errors)} of {concurrency} concurrent scrapes failed: {errors[0]!r}")
        out["latency_s"].append([r[0] for r in results])  # type: ignore[index]
        out["bytes"].append([r[1] for r in results])  # type: ignore[index]
    out["other_load_cores"] = other.cores()
    return out


def rss_series(agent: AgentProcess, scrapes: int) -> dict[str, Any]:
    """The agent's VmRSS after each of ``scrapes`` sequential scrapes, from its first: where it
    settles (issue 15: "RSS <= 60 MB steady after 100 scrapes"). Reported as the value after the
    last scrape and the range over the second half (scrapes 50-100 of 100)."""
    scraper = Scraper(agent.port)
    try:
        at_start, other = rss_bytes(agent.pid), OtherLoad(agent.pid)
        series, latencies = [], []
        for _ in range(scrapes):
            elapsed, _body = scraper.scrape()
            latencies.append(elapsed)
            series.append(rss_bytes(agent.pid))
        other_cores = other.cores()
    finally:
        scraper.close()
    half = series[scrapes // 2 - 1:]  # 1-based scrapes K/2 .. K
    return {"scrapes": scrapes, "rss_bytes_at_start": at_start, "rss_bytes_after_last": series[-1],
            "second_half_from_scrape": scrapes // 2, "rss_bytes_min_second_half": min(half),
            "rss_bytes_max_second_half": max(half), "hwm_bytes": snapshot(agent.pid).hwm_bytes,
            "latency_p50_s": statistics.median(latencies), "other_load_cores": other_cores,
            "rss_bytes": series}


def idle_cpu(agent: AgentProcess, seconds: float) -> tuple[float, float]:
    """CPU seconds the agent burns with no scrapes (its birth scan and reconcile timers)."""
    c0, other = cpu_seconds(agent.pid), OtherLoad(agent.pid)
    time.sleep(seconds)
    return cpu_seconds(agent.pid) - c0, other.cores()


NOISY_CORES = 0.3  # other processes busier than this during a phase: measure it again


def quietly(measure: Callable[[], T], other_cores: Callable[[T], float], args: argparse.Namespace,
            what: str) -> tuple[T, int, float]:
    """Run ``measure`` until other processes stayed under NOISY_CORES during it (at most
    1 + --retries times, waiting for quiet before each when --wait-quiet is given); keep the
    quietest attempt. Returns (result, attempts, seconds waited)."""
    best: T | None = None
    waited = 0.0
    attempt = 0
    for attempt in range(1, args.retries + 2):
        if args.wait_quiet:
            waited += wait_quiet(args.wait_quiet)
        result = measure()
        if best is None or other_cores(result) < other_cores(best):
            best = result
        if other_cores(result) < NOISY_CORES:
            break
        if attempt <= args.retries:
            log(f"{what}: other processes used {other_cores(result):.2f} cores meanwhile; measuring again")
    assert best is not None
    return best, attempt, waited


def wait_quiet(max_wait_s: float, threshold_cores: float = 0.2, window_s: float = 2.0) -> float:
    """Wait until other processes use under ``threshold_cores`` for a whole window (at most
    ``max_wait_s``); returns the seconds waited. A shared 2-core host needs it."""
    started = time.monotonic()
    last_log = started
    while time.monotonic() - started < max_wait_s:
        other = OtherLoad()
        time.sleep(window_s)
        cores = other.cores()
        if cores < threshold_cores:
            break
        if time.monotonic() - last_log > 30:
            log(f"waiting for a quiet host: other processes use {cores:.2f} cores")
            last_log = time.monotonic()
    return time.monotonic() - started


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    git = lambda *a: subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()  # noqa: E731
    return {
        "nproc": len(os.sched_getaffinity(0)), "kernel": os.uname().release, "cpu_model": model,
        "python": sys.version.split()[0], "python_impl": platform.python_implementation(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "mem_total_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "rlimit_nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "git_head": git("rev-parse", "HEAD"),
        "cgwatch_files_modified_vs_head": len(git("status", "--porcelain", "--", "cgwatch").splitlines()),
        # The agent is measured from the working tree: this names its uncommitted state.
        "cgwatch_worktree_diff_sha1": hashlib.sha1(git("diff", "HEAD", "--", "cgwatch").encode()).hexdigest(),
    }


def measure_rss(n: int, args: argparse.Namespace, tmp: Path, agents: list[AgentProcess],
                nofile: int) -> dict[str, Any]:
    """rss_series() on a fresh agent, so its RSS is that of exactly 1..K scrapes (the main agent's
    has its warm-ups and 10-at-once batches behind it)."""
    agent = AgentProcess(tmp / f"state-{n}-rss", IGNORE, tuple(args.agent_arg), nofile=nofile)
    agents.append(agent)
    agent.start()
    try:
        return rss_series(agent, args.rss_scrapes)
    finally:
        agent.stop()
        agents.remove(agent)


def run_one(sandbox: BenchCgroups, n: int, args: argparse.Namespace, tmp: Path,
            agents: list[AgentProcess], nofile: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    sandbox.add_containers(n - len(sandbox.containers))
    create_s = time.perf_counter() - t0
    log(f"N={n}: {len(sandbox.containers)} containers ready ({create_s:.1f}s); measuring the floor")

    t0 = time.perf_counter()
    trace = floor.trace_collection(IGNORE)

    def measure_floor() -> tuple[floor.FloorResult, float]:
        other = OtherLoad()
        return floor.measure(trace, IGNORE, args.scrapes), other.cores()

    (fl, floor_other_cores), floor_attempts, waited_s = quietly(measure_floor, lambda r: r[1], args, f"N={n} floor")
    stable = [f for f in trace.files if f"/{sandbox.name}/" in f and f.rsplit("/", 1)[1] in
              ("cgroup.procs", "tasks", "cpu.cfs_quota_us", "memory.limit_in_bytes", "pids.max")][:100]
    pread_ok = floor.pread_matches_read(stable)
    floor_s = time.perf_counter() - t0
    log(f"N={n}: floor {statistics.median(fl.open_close_s) * 1e3:.1f} ms open/close over {fl.files} files; "
        "starting the agent")

    t0 = time.perf_counter()
    agent = AgentProcess(tmp / f"state-{n}", IGNORE, tuple(args.agent_arg), nofile=nofile)
    agents.append(agent)
    agent.start()
    started = snapshot(agent.pid)
    agent_nofile = nofile_limits(agent.pid)  # the soft one as the agent raised it
    seq, seq_attempts, waited = quietly(lambda: sequential(agent, args.scrapes), lambda r: r["other_load_cores"],
                                        args, f"N={n} scrapes")
    waited_s += waited
    log(f"N={n}: p50 {statistics.median(seq['latency_s']) * 1e3:.0f} ms; other load on the host "
        f"{seq['other_load_cores']:.2f} cores; concurrent batches")
    conc, conc_attempts, waited = quietly(lambda: concurrent_batches(agent, args.concurrency, args.batches),
                                          lambda r: r["other_load_cores"], args, f"N={n} concurrent")
    waited_s += waited
    after_conc = snapshot(agent.pid)
    log(f"N={n}: idle for {args.idle_seconds:g}s")
    idle_s, idle_other = idle_cpu(agent, args.idle_seconds)
    final = snapshot(agent.pid)
    status = agent.stop()
    agents.remove(agent)
    agent_s = time.perf_counter() - t0
    rss = None
    if args.rss_scrapes and n in args.rss_at:
        log(f"N={n}: RSS over {args.rss_scrapes} scrapes of a fresh agent")
        rss = measure_rss(n, args, tmp, agents, nofile)

    per_scrape_cpu = seq["cpu_s"] / args.scrapes
    idle_rate = idle_s / args.idle_seconds  # CPU seconds per second with no scrapes
    net_per_scrape = max(0.0, (seq["cpu_s"] - idle_rate * seq["wall_s"]) / args.scrapes)
    p50 = statistics.median(seq["latency_s"])
    single_wall = p50
    return {
        "n": n,
        "cgroups_collected": sum(seq["agent_containers_by_runtime"].values()),
        "create_s": create_s, "floor_phase_s": floor_s, "agent_phase_s": agent_s, "waited_for_quiet_s": waited_s,
        "attempts": {"floor": floor_attempts, "sequential": seq_attempts, "concurrent": conc_attempts},
        "scrapes": args.scrapes,
        "latency_p50_s": p50, "latency_p99_s": percentile(seq["latency_s"], 99),
        "latency_max_s": max(seq["latency_s"]),
        "agent_collection_p50_s": statistics.median(seq["agent_collection_s"]),
        "cpu_s_per_scrape": per_scrape_cpu,
        "cpu_s_per_scrape_net_of_idle": net_per_scrape,
        "idle_cpu_s": idle_s, "idle_seconds": args.idle_seconds, "idle_cpu_pct": idle_rate * 100,
        "interval_s": args.interval,
        # (CPU per scrape, background excluded) / interval + background: one core's percentage.
        "cpu_pct_at_interval": net_per_scrape / args.interval * 100 + idle_rate * 100,
        "bytes_per_scrape": int(statistics.median(seq["bytes"])),
        "rss_bytes": seq["rss_bytes"], "fds": seq["fds"],
        "rss_bytes_at_start": started.rss_bytes, "fds_at_start": started.fds,
        "rss_bytes_after_concurrent": after_conc.rss_bytes, "fds_after_concurrent": after_conc.fds,
        "hwm_bytes_final": final.hwm_bytes, "threads": seq["threads"],
        "agent_rlimit_nofile": list(agent_nofile), "rss_steady": rss,
        "floor": fl.summary(), "pread_matches_fresh_read": pread_ok,
        "traced_opens": trace.summary(sandbox.containers[0]),
        "ratio_p50_to_floor_open_close": p50 / statistics.median(fl.open_close_s),
        "ratio_p50_to_floor_pread": p50 / statistics.median(fl.pread_s) if fl.pread_s else None,
        "concurrent": {
            "concurrency": args.concurrency, "batches": args.batches,
            "wall_p50_s": statistics.median(conc["wall_s"]),
            "cpu_p50_s": statistics.median(conc["cpu_s"]),
            "wall_vs_1_scrape": statistics.median(conc["wall_s"]) / single_wall,
            "cpu_vs_1_scrape": statistics.median(conc["cpu_s"]) / per_scrape_cpu if per_scrape_cpu else None,
            "raw": conc,
        },
        "agent_collectors_p50_s": seq["agent_collectors_p50_s"],
        "agent_containers_by_runtime": seq["agent_containers_by_runtime"],
        "agent_argv": agent.argv[1:], "agent_exit_status": status,
        # Cores busy with other processes (not the agent, not this bench) during each phase.
        "other_load_cores": {"floor": floor_other_cores, "sequential": seq["other_load_cores"],
                             "concurrent": conc["other_load_cores"], "idle": idle_other},
        "raw": {"latency_s": seq["latency_s"], "bytes": seq["bytes"], "cpu_s": seq["cpu_s"],
                "wall_s": seq["wall_s"], "agent_collection_s": seq["agent_collection_s"]},
    }


COLUMNS = ("N", "cgroups", "p50 ms", "p99 ms", "floor o/c ms", "floor pread ms", "walk ms", "p50/floor",
           "CPU s/scrape", "CPU %@15s", "MB/scrape", "RSS MB", "fds", "10x wall ms (x1)", "10x CPU s (x1)",
           "other load")


def table(rows: list[dict[str, Any]], interval: float) -> str:
    head = [f"CPU %@{interval:g}s" if h == "CPU %@15s" else h for h in COLUMNS]
    lines = []
    for r in rows:
        fl, c = r["floor"], r["concurrent"]
        pread = "n/a" if fl["pread_p50_s"] is None else f"{fl['pread_p50_s'] * 1e3:.1f}"
        if fl["pread_p50_s"] is not None and not fl["pread_all_open_at_once"]:
            pread += f" ({fl['pread_chunks']} chunks)"
        lines.append([
            str(r["n"]), str(r["cgroups_collected"]),
            f"{r['latency_p50_s'] * 1e3:.0f}", f"{r['latency_p99_s'] * 1e3:.0f}",
            f"{fl['open_close_p50_s'] * 1e3:.1f}", pread, f"{fl['walk_p50_s'] * 1e3:.1f}",
            f"{r['ratio_p50_to_floor_open_close']:.1f}x",
            f"{r['cpu_s_per_scrape']:.3f}", f"{r['cpu_pct_at_interval']:.2f}",
            f"{r['bytes_per_scrape'] / MIB:.2f}", f"{r['rss_bytes'] / MIB:.0f}", str(r["fds"]),
            f"{c['wall_p50_s'] * 1e3:.0f} ({c['wall_vs_1_scrape']:.1f}x)",
            f"{c['cpu_p50_s']:.2f} ({c['cpu_vs_1_scrape']:.1f}x)",
            f"{r['other_load_cores']['sequential']:.2f}",
        ])
    widths = [max(len(h), *(len(row[i]) for row in lines)) for i, h in enumerate(head)]
    fmt = lambda cells: " | ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([fmt(head), "-+-".join("-" * w for w in widths), *(fmt(row) for row in lines)])


def footnotes(rows: list[dict[str, Any]], cleanup_s: float) -> str:
    """What the table has no column for: the agent's fd limit, the time to make the containers,
    and the RSS series where one ran."""
    soft, hard = rows[0]["agent_rlimit_nofile"]
    made = ", ".join(f"{r['n'] - (rows[i - 1]['n'] if i else 0)} more in {r['create_s']:.1f}s"
                     for i, r in enumerate(rows))
    lines = [f"\nagent RLIMIT_NOFILE {soft}/{hard} (soft/hard); containers made: {made}; "
             f"all removed in {cleanup_s:.1f}s"]
    for r in rows:
        rss = r["rss_steady"]
        if rss:
            lines.append(f"RSS at N={r['n']}, a fresh agent: {rss['rss_bytes_after_last'] / MIB:.1f} MB after scrape "
                         f"{rss['scrapes']}, {rss['rss_bytes_min_second_half'] / MIB:.1f}-"
                         f"{rss['rss_bytes_max_second_half'] / MIB:.1f} MB over scrapes "
                         f"{rss['second_half_from_scrape']}-{rss['scrapes']} ({rss['rss_bytes_at_start'] / MIB:.1f} MB "
                         f"before the first; other load {rss['other_load_cores']:.2f} cores)")
    return "\n".join(lines)


def save_result(args: argparse.Namespace, result: Any) -> None:
    """A bench's JSON at ``args.out``: this machine, the arguments, the result."""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
                                    "result": result}, indent=1) + "\n")
    print(f"\nraw numbers in {args.out}")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[100, 1000, 3000], help="container counts")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latest.json")
    p.add_argument("--scrapes", type=int, default=30, help="sequential scrapes measured per N (after 2 warm-ups)")
    p.add_argument("--concurrency", type=int, default=10, help="scrapes released at once in a batch")
    p.add_argument("--batches", type=int, default=5, help="concurrent batches per N")
    p.add_argument("--idle-seconds", type=float, default=10.0, help="idle period for the background CPU")
    p.add_argument("--interval", type=float, default=15.0, help="scrape interval for the CPU %% column")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before the floor and before the agent's scrapes, wait up to this long for other "
                   "processes to use under 0.2 cores (default 0: do not wait)")
    p.add_argument("--retries", type=int, default=2,
                   help="measure the floor, the scrapes or the concurrent batches again (up to this many "
                   f"times) when other processes used over {NOISY_CORES} cores meanwhile; the quietest is kept")
    p.add_argument("--agent-arg", action="append", default=[], metavar="ARG",
                   help="one more argument for `cgwatch serve` (repeatable), e.g. "
                   "--agent-arg=--birth-scan-interval --agent-arg=3600")
    p.add_argument("--agent-nofile", type=int, default=DEPLOYED_NOFILE, metavar="N",
                   help="the agent's soft and hard RLIMIT_NOFILE, as deploy/cgwatch.service's LimitNOFILE "
                   f"(default {DEPLOYED_NOFILE}; capped at this process's hard limit when it cannot raise it). "
                   "Runs before it inherited the bench's: 20000 on the CI host")
    p.add_argument("--rss-scrapes", type=int, default=0, metavar="K",
                   help="also start a fresh agent at each --rss-at N and read its RSS after each of K "
                   "sequential scrapes (issue 15: 100); default 0, off")
    p.add_argument("--rss-at", type=int, nargs="+", default=[1000], metavar="N",
                   help="the container counts (of --n) the RSS series runs at (default 1000)")
    args = p.parse_args(argv)
    if min(args.n) < 1 or args.scrapes < 2:
        p.error("--n values must be >= 1 and --scrapes >= 2")
    if args.agent_nofile < 1 or args.rss_scrapes == 1 or args.rss_scrapes < 0:
        p.error("--agent-nofile must be >= 1 and --rss-scrapes 0 or >= 2")
    if args.rss_scrapes and not set(args.rss_at) & set(args.n):
        p.error(f"--rss-at {args.rss_at}: none of them is in --n {args.n}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not start_as_root("scrape_bench"):
        return 2
    for d in stale_parents():
        log(f"warning: {d} is left from an earlier run that was killed; it is not touched")
    nofile = nofile_for_agent(args.agent_nofile)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    agents: list[AgentProcess] = []
    sandbox: BenchCgroups | None = None
    tmp = Path(tempfile.mkdtemp(prefix="cgwatch-bench-"))
    interrupted = False
    cleanup_s = 0.0
    try:
        sandbox = BenchCgroups()
        log(f"parent cgroup /{sandbox.name} in {len(sandbox.roots)} hierarchies")
        for n in sorted(set(args.n)):
            rows.append(run_one(sandbox, n, args, tmp, agents, nofile))
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: cleaning up")
    finally:
        with uninterruptible():
            for agent in agents:
                agent.stop()
            t0 = time.perf_counter()
            remove_sandbox(sandbox, tmp)
            if sandbox is not None:
                cleanup_s = time.perf_counter() - t0
                log(f"removed the cgroups and sleepers in {cleanup_s:.1f}s")
    total_s = time.perf_counter() - started
    if rows:
        print(table(rows, args.interval))
        print(footnotes(rows, cleanup_s))
    if interrupted:
        return 130
    result = {"machine": machine(), "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "agent_nofile": {"requested": args.agent_nofile, "given": nofile},
              "total_run_s": total_s, "cleanup_s": cleanup_s, "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nfull run: {total_s:.0f}s; raw numbers in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
