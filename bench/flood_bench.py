"""Reads cannot starve a scrape: /metrics under a flood of API reads, and 10 scrapes at once.

With N Docker-shaped cgroups (sandbox.py) and the real agent (agent_process.py, `--max-age 0`:
every request wants a collection begun after it arrived, the hardest case), it measures:

- the quiet /metrics p50 (gzip, as Prometheus asks; one keep-alive connection);
- /metrics p50 while ``--clients`` threads poll one read path each on keep-alive connections of
  their own, for ``--seconds``, for each path: the listing (public listener), one container's
  JSON, its inspect (API listener); and how many collections the agent made meanwhile
  (cgwatch_collections_total: a walk per request would be one per request);
- 10 scrapes released at once by a barrier against one (scrape_bench.concurrent_batches).

Targets (issue 15): the flood's p50 <= 2x the quiet p50; 10 at once <= 1.5x one.

    .venv/bin/python bench/flood_bench.py --n 1000
    .venv/bin/python bench/flood_bench.py --n 1000 --agent-tree /tmp/cgwatch-base   # another checkout

JSON in bench/results/flood-latest.json.
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from agent_process import AgentProcess, OtherLoad, cpu_seconds
from sandbox import BenchCgroups, remove_sandbox, start_as_root, uninterruptible
from scrape_bench import concurrent_batches, log, percentile, save_result, wait_quiet
from tests.support.env import REPO

_COLLECTIONS = re.compile(rb"^cgwatch_collections_total ([0-9.e+]+)$", re.MULTILINE)


def connection(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=600)


def get(conn: http.client.HTTPConnection, path: str, headers: dict[str, str] | None = None) -> bytes:
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"GET {path} answered {resp.status}: {body[:200]!r}")
    return body


def scrape_s(conn: http.client.HTTPConnection) -> float:
    t0 = time.perf_counter()
    get(conn, "/metrics", {"Accept-Encoding": "gzip"})
    return time.perf_counter() - t0


def collections(agent: AgentProcess) -> float:
    conn = connection(agent.port)
    try:
        found = _COLLECTIONS.search(get(conn, "/metrics"))
    finally:
        conn.close()
    return float(found.group(1)) if found else 0.0


def flood(agent: AgentProcess, port: int, path: str, headers: dict[str, str], clients: int,
          seconds: float) -> dict[str, Any]:
    """``clients`` threads polling ``path`` while the main thread scrapes; scrape latencies."""
    stop = threading.Event()
    answered = [0] * clients
    failures: list[str] = []

    def poll(i: int) -> None:
        conn = connection(port)
        try:
            while not stop.is_set():
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    failures.append(f"{resp.status} {body[:200]!r}")
                    return
                answered[i] += 1
        except OSError as exc:
            failures.append(repr(exc))
        finally:
            conn.close()

    before = collections(agent)
    scraper = connection(agent.port)
    threads = [threading.Thread(target=poll, args=(i,), daemon=True) for i in range(clients)]
    cpu0, other = cpu_seconds(agent.pid), OtherLoad(agent.pid)
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    latencies = []
    try:
        while time.perf_counter() - t0 < seconds:
            latencies.append(scrape_s(scraper))
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        scraper.close()
    wall = time.perf_counter() - t0
    made = collections(agent) - before - 1  # the count's own scrape
    if failures:
        raise RuntimeError(f"{len(failures)} reads of {path} failed: {failures[0]}")
    return {"path": path, "wall_s": wall, "reads": sum(answered), "reads_per_s": sum(answered) / wall,
            "scrapes": len(latencies), "latency_s": latencies, "p50_s": statistics.median(latencies),
            "p99_s": percentile(latencies, 99), "collections": made, "agent_cpu_s": cpu_seconds(agent.pid) - cpu0,
            "other_load_cores": other.cores()}


def run(args: argparse.Namespace, sandbox: BenchCgroups, tmp: Path, agents: list[AgentProcess]) -> dict[str, Any]:
    agent = AgentProcess(tmp / "state", extra_args=tuple(args.agent_arg), cwd=args.agent_tree)
    agents.append(agent)
    agent.start()
    token = (tmp / "state" / "token").read_text().strip()
    cid = sandbox.containers[len(sandbox.containers) // 2].rsplit("/", 1)[1]
    auth = {"Authorization": f"Bearer {token}"}
    paths = [("listing", agent.port, "/api/v1/containers", {}),
             ("container", agent.port, f"/api/v1/containers/{cid}", {}),
             ("inspect", agent.api_port, f"/api/v1/containers/{cid}/inspect", auth)]
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    scraper = connection(agent.port)
    for _ in range(2):
        scrape_s(scraper)
    quiet = [scrape_s(scraper) for _ in range(args.scrapes)]
    scraper.close()
    log(f"quiet p50 {statistics.median(quiet) * 1e3:.0f} ms")
    floods = {}
    for name, port, path, headers in paths:
        if args.wait_quiet:
            wait_quiet(args.wait_quiet)
        floods[name] = flood(agent, port, path, headers, args.clients, args.seconds)
        f = floods[name]
        log(f"{name}: {f['reads']} reads ({f['reads_per_s']:.0f}/s), {f['scrapes']} scrapes p50 "
            f"{f['p50_s'] * 1e3:.0f} ms, {f['collections']:.0f} collections")
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    conc = concurrent_batches(agent, 10, args.batches)
    return {"n": len(sandbox.containers), "agent_tree": str(args.agent_tree), "quiet_latency_s": quiet,
            "quiet_p50_s": statistics.median(quiet), "floods": floods, "concurrent": conc}


def table(r: dict[str, Any]) -> str:
    quiet = r["quiet_p50_s"]
    out = [f"quiet /metrics p50: {quiet * 1e3:.0f} ms (N={r['n']})", "",
           "| flood (50 clients) | reads/s | scrapes | /metrics p50 | x quiet | p99 | collections | other load |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, f in r["floods"].items():
        out.append(f"| {name} | {f['reads_per_s']:.0f} | {f['scrapes']} | {f['p50_s'] * 1e3:.0f} ms | "
                   f"{f['p50_s'] / quiet:.2f}x | {f['p99_s'] * 1e3:.0f} ms | {f['collections']:.0f} | "
                   f"{f['other_load_cores']:.2f} |")
    wall = statistics.median(r["concurrent"]["wall_s"])
    out += ["", f"10 scrapes at once: wall p50 {wall * 1e3:.0f} ms = {wall / quiet:.2f}x one"]
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=15.0, help="each flood")
    p.add_argument("--scrapes", type=int, default=15, help="quiet scrapes")
    p.add_argument("--batches", type=int, default=5, help="10-at-once batches")
    p.add_argument("--agent-tree", type=Path, default=REPO)
    p.add_argument("--agent-arg", action="append", default=[], metavar="ARG")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "flood-latest.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not start_as_root("flood_bench"):
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="cgwatch-flood-"))
    sandbox: BenchCgroups | None = None
    agents: list[AgentProcess] = []
    result: dict[str, Any] | None = None
    try:
        sandbox = BenchCgroups()
        sandbox.add_containers(args.n)
        result = run(args, sandbox, tmp, agents)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
    finally:
        with uninterruptible():
            for agent in agents:
                agent.stop()
            remove_sandbox(sandbox, tmp)
    if result is None:
        return 130
    print(table(result))
    save_result(args, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
