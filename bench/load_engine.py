"""Load on a live agent: back-to-back scrapers, a paced limits writer, /proc samples, end checks.

Shared by bench/load_bench.py (minutes, 1000 containers, timings) and tests/real/test_load.py
(seconds, correctness only). The scrapers run in a child process (this file's ``scrape``
command) so that reading 50 large expositions does not delay the writer's pacing in this one.

The writer keeps at most one request in flight per container, so for every container the
reply order is the send order, and "the last acknowledged request" is simply the last 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
CFS_PERIOD_US = 100_000  # what `cpus` sets (Docker's --cpus; scheduler/sched-bwc.rst)
# The exposition ends with the agent's own registry; the lag histogram is in its last ~64 KiB.
TAIL_BYTES = 64 * 1024
_LAG = re.compile(rb'^cgwatch_event_loop_lag_seconds_(bucket\{le="([^"]+)"\}|sum|count) (\S+)$', re.M)


@dataclass
class Plan:
    containers: int = 1000
    scrapers: int = 50
    rate: float = 100.0          # limit updates a second
    duration_s: float = 180.0
    inflight: int = 32           # writes in flight at most (never two on one container)
    seed: int = 1


@dataclass
class Write:
    seq: int
    container: int               # index into the container list
    body: dict[str, Any]
    due: float                   # seconds after the start, when the pacing wanted it sent
    sent: float = 0.0
    done: float = 0.0
    status: int = 0              # 0: an exception, see error
    limits: dict[str, Any] | None = None
    error: str = ""


def random_body(rng: random.Random, host_cpus: int) -> dict[str, Any]:
    """A valid PATCH: a random non-empty subset of cpus, memory and pids_limit."""
    fields = {
        "cpus": float(f"{rng.randint(1, host_cpus * 100) / 100:.2f}"),  # 0.01 .. host CPUs, 2 decimals
        "memory": f"{rng.randint(256, 2048)}m",  # above the sandbox's 128m reservations and a sleeper's usage
        "pids_limit": rng.randint(16, 4096),
    }
    keys = list(fields) if rng.random() < 0.5 else rng.sample(list(fields), rng.randint(1, 2))
    return {k: fields[k] for k in keys}


def expected_kernel(body: dict[str, Any]) -> dict[str, int]:
    """The kernel values a body asks for, per file."""
    out: dict[str, int] = {}
    if "cpus" in body:
        # json.dumps writes the float's shortest repr, which the agent parses as that Decimal.
        out["cpu.cfs_quota_us"] = int(Decimal(repr(body["cpus"])) * CFS_PERIOD_US)
    if "memory" in body:
        out["memory.limit_in_bytes"] = int(body["memory"][:-1]) * MIB
    if "pids_limit" in body:
        out["pids.max"] = body["pids_limit"]
    return out


REPLY_KEYS = {"cpu.cfs_quota_us": "cpu_quota_us", "memory.limit_in_bytes": "memory_limit_bytes",
              "pids.max": "pids_max"}


# --- the writer -----------------------------------------------------------------------------

async def write_paced(api: str, token: str, ids: list[str], plan: Plan, host_cpus: int,
                      deadline_s: float | None = None) -> list[Write]:
    """plan.rate PATCHes a second for plan.duration_s, spread at random over ``ids``."""
    rng = random.Random(plan.seed)
    total = int(plan.rate * plan.duration_s)
    busy: set[int] = set()
    slots = asyncio.Semaphore(plan.inflight)
    writes: list[Write] = []
    tasks: set[asyncio.Task[None]] = set()
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=deadline_s or 60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=plan.inflight),
                                     timeout=timeout, headers=headers) as session:
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        async def one(w: Write) -> None:
            w.sent = loop.time() - t0
            try:
                async with session.patch(f"{api}/api/v1/containers/{ids[w.container]}/limits",
                                         json=w.body) as resp:
                    w.status = resp.status
                    doc = await resp.json(content_type=None)
                    if resp.status == 200:
                        w.limits = doc["limits"]
                    else:
                        w.error = json.dumps(doc)[:500]
            except Exception as exc:  # every failure is counted and reported, none ends the run
                w.error = repr(exc)[:500]
            finally:
                w.done = loop.time() - t0
                busy.discard(w.container)
                slots.release()

        for seq in range(total):
            due = seq / plan.rate
            delay = t0 + due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            container = rng.randrange(len(ids))
            while container in busy:  # one request in flight per container: replies come in send order
                container = rng.randrange(len(ids))
            busy.add(container)
            w = Write(seq, container, random_body(rng, host_cpus), due)
            writes.append(w)
            task = asyncio.create_task(one(w))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(set(tasks))
    return writes


# --- the scrapers (a child process) ---------------------------------------------------------

def parse_lag(tail: bytes) -> dict[str, Any] | None:
    found = _LAG.findall(tail)
    if not found:
        return None
    out: dict[str, Any] = {"buckets": {}}
    for kind, le, value in found:
        if kind == b"sum":
            out["sum"] = float(value)
        elif kind == b"count":
            out["count"] = float(value)
        else:
            out["buckets"][le.decode()] = float(value)
    return out


async def scrape_loop(url: str, scrapers: int, duration_s: float) -> dict[str, Any]:
    """``scrapers`` tasks GET ``url`` back to back for ``duration_s``; one record per scrape."""
    records: list[tuple[float, float, int, int, str]] = []  # (start, latency, status, bytes, error)
    lag: list[tuple[float, dict[str, Any]]] = []
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    end = t0 + duration_s
    timeout = aiohttp.ClientTimeout(total=120)

    async def scraper(i: int) -> None:
        # Like Prometheus, every scraper but the first asks for gzip (and, unlike Prometheus, does
        # not spend this machine's CPU inflating it); the first reads plain text, as curl does,
        # and its bodies' tails carry the agent's event-loop lag histogram.
        headers = {"Accept-Encoding": "identity" if i == 0 else "gzip"}
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
            while loop.time() < end:
                start = loop.time()
                status, size, error, tail = 0, 0, "", b""
                try:
                    async with session.get(url, headers=headers) as resp:
                        status = resp.status
                        async for chunk in resp.content.iter_chunked(1 << 20):
                            size += len(chunk)
                            tail = (tail + chunk)[-TAIL_BYTES:]
                except Exception as exc:  # counted as an error by the caller
                    error = repr(exc)[:300]
                finish = loop.time()
                records.append((start - t0, finish - start, status, size, error))
                sample = parse_lag(tail) if status == 200 and i == 0 else None
                if sample is not None:
                    lag.append((finish - t0, sample))
                if error:
                    await asyncio.sleep(0.1)  # do not spin on a refused connection

    await asyncio.gather(*(scraper(i) for i in range(scrapers)))
    return {"scrapes": records, "lag": lag}


class ScraperProcess:
    """This file's ``scrape`` command as a child; its JSON report is read at the end."""

    def __init__(self, url: str, scrapers: int, duration_s: float, out: Path):
        self.out = out
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "scrape", "--url", url,
                                      "--scrapers", str(scrapers), "--duration", str(duration_s),
                                      "--out", str(out)], stdin=subprocess.DEVNULL)

    def result(self, timeout_s: float) -> dict[str, Any]:
        rc = self.proc.wait(timeout_s)
        if rc != 0:
            raise RuntimeError(f"the scraper process exited with {rc}")
        return json.loads(self.out.read_text())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --- samples of the agent process ----------------------------------------------------------

def proc_sample(pid: int) -> dict[str, float]:
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.split()
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return {"rss_bytes": int(status["VmRSS"][0]) * 1024, "threads": int(status["Threads"][0]),
            "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "cpu_s": (int(fields[11]) + int(fields[12])) / CLK_TCK}  # utime + stime, proc(5)


async def sample_agent(pid: int, stop: asyncio.Event, every_s: float = 1.0) -> list[dict[str, float]]:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    out = []
    while not stop.is_set():
        out.append({"t": loop.time() - t0, **proc_sample(pid)})
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except asyncio.TimeoutError:
            pass
    return out


# --- one run and its checks ------------------------------------------------------------------

@dataclass
class Outcome:
    writes: list[Write]
    scrapes: list[tuple[float, float, int, int, str]]
    lag: list[tuple[float, dict[str, Any]]]
    samples: list[dict[str, float]]
    wall_s: float
    checks: dict[str, Any] = field(default_factory=dict)


async def run_load(metrics: str, api: str, token: str, agent_pid: int, ids: list[str], plan: Plan,
                   host_cpus: int, workdir: Path) -> Outcome:
    """Scrapers and the writer at once, for plan.duration_s; the agent sampled every second."""
    scrapers = ScraperProcess(f"{metrics}/metrics", plan.scrapers, plan.duration_s, workdir / "scrapes.json")
    try:
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_agent(agent_pid, stop))
        t0 = time.monotonic()
        writes = await write_paced(api, token, ids, plan, host_cpus)
        wall_s = time.monotonic() - t0
        scraped = await asyncio.to_thread(scrapers.result, plan.duration_s + 300)
        stop.set()
        samples = await sampler
    finally:
        scrapers.kill()
    return Outcome(writes, [tuple(r) for r in scraped["scrapes"]], scraped["lag"], samples, wall_s)


def read_kernel(file_for: Any, cgroup: str) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for name in REPLY_KEYS:
        text = Path(file_for(cgroup, name)).read_text().strip()
        value = None if text == "max" else int(text)
        if name == "cpu.cfs_quota_us" and value == -1:
            value = None
        out[name] = value
    return out


def check(outcome: Outcome, cgroups: list[str], file_for: Any, audit_log: Path) -> dict[str, Any]:
    """The correctness properties; ``file_for(cgroup, name)`` is the host path of a cgroup file."""
    bad_writes = [w for w in outcome.writes if w.status != 200]
    bad_scrapes = [s for s in outcome.scrapes if s[2] != 200 or s[4]]
    # The last acknowledged value of each file, per container (one in flight per container).
    last: dict[int, dict[str, int]] = {}
    reply_mismatch = []
    for w in sorted(outcome.writes, key=lambda w: w.done):
        if w.status != 200:
            continue
        asked = expected_kernel(w.body)
        assert w.limits is not None
        for name, value in asked.items():
            if w.limits[REPLY_KEYS[name]] != value:
                reply_mismatch.append({"seq": w.seq, "file": name, "asked": value,
                                       "reply": w.limits[REPLY_KEYS[name]]})
        last.setdefault(w.container, {}).update(asked)
    kernel_mismatch = []
    for index, files in last.items():
        now = read_kernel(file_for, cgroups[index])
        for name, value in files.items():
            if now[name] != value:
                kernel_mismatch.append({"cgroup": cgroups[index], "file": name, "last_acknowledged": value,
                                        "kernel": now[name]})
    lines = [json.loads(line) for line in audit_log.read_text().splitlines() if line.strip()]
    by_mode: dict[str, int] = {}
    for entry in lines:
        by_mode[entry.get("mode", "?")] = by_mode.get(entry.get("mode", "?"), 0) + 1
    return {
        "writes": len(outcome.writes), "write_errors": len(bad_writes),
        "write_error_examples": [{"seq": w.seq, "status": w.status, "error": w.error} for w in bad_writes[:5]],
        "scrapes": len(outcome.scrapes), "scrape_errors": len(bad_scrapes),
        "scrape_error_examples": [list(s) for s in bad_scrapes[:5]],
        "containers_written": len(last),
        "reply_mismatches": len(reply_mismatch), "reply_mismatch_examples": reply_mismatch[:5],
        "kernel_mismatches": len(kernel_mismatch), "kernel_mismatch_examples": kernel_mismatch[:5],
        "audit_lines": len(lines), "audit_lines_by_mode": by_mode,
        "audit_one_line_per_request": len(lines) == len(outcome.writes) and by_mode.get("patch", 0) == len(lines),
    }


def correct(checks: dict[str, Any]) -> bool:
    return (checks["write_errors"] == 0 and checks["scrape_errors"] == 0 and checks["reply_mismatches"] == 0
            and checks["kernel_mismatches"] == 0 and checks["audit_one_line_per_request"])


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {"writes": [asdict(w) for w in outcome.writes], "scrapes": outcome.scrapes, "lag": outcome.lag,
            "samples": outcome.samples, "wall_s": outcome.wall_s}


def _scrape_command(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="load_engine.py scrape")
    p.add_argument("--url", required=True)
    p.add_argument("--scrapers", type=int, required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    result = asyncio.run(scrape_loop(args.url, args.scrapers, args.duration))
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["scrape"]:
        sys.exit("usage: load_engine.py scrape --url URL --scrapers N --duration S --out FILE")
    sys.exit(_scrape_command(sys.argv[2:]))
