"""Does a governed container's first instruction run under its limits? N Docker runs, counted.

    .venv/bin/python bench/birth_window.py [--n 100] [--without-watcher] [--out FILE]

A policy holds containers named web-<run>-* to 100 MiB. Each run is
`docker run --rm --name web-<run>-<i> local/busybox cat <its own memory limit file>` against the
suite's dockerd (tests/support/docker.py; tests/support/docker-up.sh starts it): the container's
first and only instruction prints the limit it runs under. A hit is 104857600 printed.

The agent runs in this process (as tests/real/conftest.py's make_agent builds it), with its
default timers (birth scan 1 s, reconcile 30 s). An observer in a child process watches the memory
hierarchy's /docker with inotify on its own, notes when each container's cgroup is made, then
reads its memory limit every 0.5 ms until it holds 100 MiB (CLOCK_MONOTONIC both): creation to
limit written, whoever wrote it. --without-watcher stops the agent's births watcher after its
start, to measure what the start event and the birth scan alone do (the window before it).
Prints a table on stdout (progress on stderr) and writes every figure to --out.
bench/BIRTHS.md has the method and the latest numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import repo_path  # noqa: F401  (the repository root on sys.path: tests.support)
from cgwatch.agent import Agent
from cgwatch.hostfs import Host
from scrape_bench import log, machine, percentile
from tests.support.agent import agent_settings
from tests.support.docker import DOCKER_HOST, IMAGE, docker_missing
from tests.support.env import REPO

LIMIT = 100 << 20

# The observer (argv: parent directory, limit file, wanted value): "made <t> <name>" per directory
# made in the parent, then "limit <t> <name>" when its limit file reads the wanted value ("gone" when
# it went first, "never" after 5 s). t is CLOCK_MONOTONIC, shared by every process.
OBSERVER = """
import os, select, sys, time
from cgwatch.host.inotify import IN_CREATE, IN_ONLYDIR, Inotify
parent, limit_file, wanted = sys.argv[1:4]
ino = Inotify()
ino.add_watch(parent, IN_CREATE | IN_ONLYDIR)
print("ready", flush=True)
made = {}
while True:
    select.select([ino.fileno()], [], [], 0.0005 if made else None)
    for e in ino.read():
        if e.is_dir:
            made[e.name] = time.monotonic()
            print(f"made {made[e.name]:.6f} {e.name}", flush=True)
    for name, t in list(made.items()):
        try:
            with open(f"{parent}/{name}/{limit_file}") as f:
                value = f.read().strip()
        except OSError:
            value = None
        now = time.monotonic()
        what = "gone" if value is None else "limit" if value == wanted else "never" if now - t > 5 else None
        if what:
            print(f"{what} {now:.6f} {name}", flush=True)
            del made[name]
"""


def limit_file(host: Host) -> str:
    return "memory.max" if host.layout.is_v2 else "memory.limit_in_bytes"


def own_limit_file(host: Host) -> str:
    """What the container sees as its own limit (Docker mounts its cgroup there)."""
    return f"/sys/fs/cgroup/{limit_file(host)}" if host.layout.is_v2 else f"/sys/fs/cgroup/memory/{limit_file(host)}"


def docker_parent(host: Host) -> Path:
    root = host.layout.unified if host.layout.is_v2 else host.layout.v1["memory"]
    assert root is not None
    return root / "docker"


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)


async def one_run(name: str, limit_file: str, cidfile: Path) -> tuple[str, str]:
    out = await asyncio.to_thread(docker, "run", "--rm", "--cidfile", str(cidfile), "--name", name, IMAGE,
                                  "cat", limit_file)
    if out.returncode != 0:
        raise RuntimeError(f"docker run {name}: {out.stderr.strip()}")
    return cidfile.read_text().strip(), out.stdout.strip()


async def measure(n: int, with_watcher: bool, work: Path) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    policy = work / "policy.yaml"
    policy.write_text(f'rules:\n  - name: web\n    match: {{name: "web-{run}-*"}}\n    limits: {{memory: 100m}}\n')
    host = Host()
    parent = docker_parent(host)
    if not parent.is_dir():  # dockerd makes /docker with its first container
        await asyncio.to_thread(docker, "run", "--rm", IMAGE, "true")
    child = subprocess.Popen([sys.executable, "-c", OBSERVER, str(parent), limit_file(host), str(LIMIT)],
                             stdout=subprocess.PIPE, text=True, cwd=REPO)
    agent = Agent(agent_settings(work, docker_host=DOCKER_HOST, policy_file=policy), host=host)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        await agent.start()
        if not with_watcher:
            await agent.births.stop()
        for _ in range(100):
            if agent.runtimes.get("docker").connected:
                break
            await asyncio.sleep(0.05)
        runs = []
        for i in range(n):
            cid, seen = await one_run(f"web-{run}-{i}", own_limit_file(host), work / f"cid-{i}")
            runs.append({"id": cid, "seen": seen, "hit": seen == str(LIMIT)})
            if (i + 1) % 20 == 0:
                log(f"{i + 1}/{n} runs, {sum(r['hit'] for r in runs)} hits")
        await asyncio.sleep(1.5)  # the last birth scan has looked
    finally:
        await agent.stop()
        child.kill()
    seen: dict[tuple[str, str], float] = {}
    for line in child.stdout.read().splitlines():
        what, t, name = line.split()
        seen[(what, name)] = float(t)
    for r in runs:
        made, written = seen.get(("made", r["id"])), seen.get(("limit", r["id"]))
        r["made_to_written_s"] = None if made is None or written is None else written - made
    return summarise(runs, with_watcher)


def summarise(runs: list[dict[str, Any]], with_watcher: bool) -> dict[str, Any]:
    delays = [r["made_to_written_s"] for r in runs if r["made_to_written_s"] is not None]
    hits = sum(r["hit"] for r in runs)
    return {"births_watcher": with_watcher, "n": len(runs), "hits": hits, "rate": hits / len(runs),
            "limits_written": len(delays),
            "made_to_written_s": {"p50": percentile(delays, 50), "p95": percentile(delays, 95),
                                  "max": max(delays)} if delays else None,
            "runs": runs}


def table(result: dict[str, Any]) -> str:
    d = result["made_to_written_s"] or {}
    ms = lambda k: f"{d[k] * 1000:.1f}" if k in d else "-"  # noqa: E731
    return ("| births watcher | N | hits | rate | cgroup made -> limit written p50 / p95 / max (ms) |\n"
            "| --- | --- | --- | --- | --- |\n"
            f"| {'on' if result['births_watcher'] else 'off'} | {result['n']} | {result['hits']} | "
            f"{result['rate']:.0%} | {ms('p50')} / {ms('p95')} / {ms('max')} |")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100, help="docker runs")
    p.add_argument("--without-watcher", action="store_true",
                   help="stop the births watcher: only the start event and the birth scan apply limits")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "births-latest.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["DOCKER_HOST"] = DOCKER_HOST  # the docker CLI talks to the suite's dockerd
    missing = docker_missing()
    if missing:
        log(missing)
        return 2
    with tempfile.TemporaryDirectory(prefix="cgwatch-births-") as work:
        result = asyncio.run(measure(args.n, not args.without_watcher, Path(work)))
    result["machine"] = machine()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))
    log(f"every figure in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
