"""CLI commands to look at containers without Grafana: ``cgwatch ps``, ``top`` and ``inspect``.

They read the agent's API; when no agent answers, they read the host directly (cgroupfs and
/proc, as the agent would, without Docker names) and say so in their output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import DEFAULT_CGROUP_ROOT, DEFAULT_PROC_ROOT
from .client import ApiClient, ApiError, add_api_options, client_from, refused
from .topview import (SORT_KEYS, Reading, Row, frame_json, human_bytes, printable, rows_between, select, sort_rows,
                      table_lines)

if TYPE_CHECKING:
    from ..discovery.inventory import Container, DiscoveryOptions
    from ..hostfs import Host

# How long to wait for the agent before deciding that none is there and reading the host.
PROBE_TIMEOUT_S = 5.0


class NoData(Exception):
    """The source answered with an error a user must act on (wrong token, unknown container)."""


class ApiSource:
    def __init__(self, client: ApiClient):
        self.client = client
        self.label = f"agent API {client.base}"
        self._collection: float | None = None   # the last listing's, to ask for a newer one

    def containers(self) -> tuple[float | None, list[dict[str, Any]]]:
        """(when the agent's collection read them, epoch seconds; the containers). Each call after
        the first asks for a collection begun after the last one's: the agent may serve one
        collection for --max-age, and rates over a repeated reading would be 0."""
        after = f"?after={self._collection!r}" if self._collection is not None else ""
        got = self.client.get(f"/api/v1/containers{after}")
        self._collection = got.get("collection")
        return got.get("collected_at"), got["containers"]

    def inspect(self, ref: str) -> dict[str, Any]:
        return self.client.get(f"/api/v1/containers/{ref}/inspect")

    def processes(self, ref: str, interval_s: float) -> dict[str, Any]:
        return self.client.get(f"/api/v1/containers/{ref}/processes?interval={interval_s:g}")


class HostSource:
    """The host read directly: the agent's readers without the agent (no Docker names)."""

    def __init__(self, host: Host, options: DiscoveryOptions, why: str):
        self.host = host
        self.options = options
        self.label = f"host cgroupfs {host.cgroup_root} and {host.proc_root} ({why})"

    def containers(self) -> tuple[float | None, list[dict[str, Any]]]:
        from ..views import container_json
        return None, [container_json(c, self.host.reader) for c in self.host.scan(self.options)]

    def _find(self, ref: str) -> Container:
        from ..discovery.inventory import resolve
        from ..errors import CgwatchError
        try:
            return resolve(ref, self.host.scan(self.options))
        except CgwatchError as exc:
            raise NoData(exc.message) from None

    def inspect(self, ref: str) -> dict[str, Any]:
        from ..views import container_json
        c = self._find(ref)
        return {**container_json(c, self.host.reader), **self.host.inspector.details(c)}

    def processes(self, ref: str, interval_s: float) -> dict[str, Any]:
        c = self._find(ref)
        inspector = self.host.inspector
        first = None
        if interval_s > 0:
            first = inspector.snapshot(c)
            time.sleep(interval_s)
        return inspector.report(c, first, inspector.snapshot(c))


def open_source(args: argparse.Namespace) -> tuple[ApiSource | HostSource, Reading | None]:
    """The agent's API if one answers at --api (with its first reading), else the host."""
    api = ApiSource(client_from(args, timeout=PROBE_TIMEOUT_S))
    try:
        return api, read(api)
    except ApiError as exc:
        hint = " (give --token-file, or --state-dir of the agent)" if exc.status == 401 else ""
        raise NoData(f"the agent at {args.api} answered HTTP {exc.status}: {exc}{hint}") from None
    except OSError as exc:
        from ..discovery.inventory import DiscoveryOptions  # the host's readers: only when needed
        from ..hostfs import Host

        why = f"no agent answered at {args.api}: {getattr(exc, 'reason', exc)}"
        options = DiscoveryOptions(ignore=tuple(args.ignore_cgroup))
        return HostSource(Host(args.cgroup_root, args.proc_root), options, why), None


def read(source: ApiSource | HostSource) -> Reading:
    """One reading, timed when the agent's collection read it, or (read here, or from an agent
    that does not say) at the middle of the request: the files are read somewhere inside it."""
    started = time.monotonic()
    collected_at, containers = source.containers()
    if collected_at is not None:
        return Reading(collected_at, containers)
    return Reading((started + time.monotonic()) / 2, containers)


def _rows(args: argparse.Namespace, before: Reading | None, after: Reading, sort: str) -> list[Row]:
    return sort_rows(select(rows_between(before, after), everything=args.all, match=args.match), sort)


# ---------------------------------------------------------------------------------------------
# Parsers


def add_source_options(p: argparse.ArgumentParser) -> None:
    add_api_options(p)
    p.add_argument("--cgroup-root", type=Path, default=DEFAULT_CGROUP_ROOT,
                   help=f"without an agent: cgroup filesystem mount point (default {DEFAULT_CGROUP_ROOT})")
    p.add_argument("--proc-root", type=Path, default=DEFAULT_PROC_ROOT,
                   help=f"without an agent: proc filesystem mount point (default {DEFAULT_PROC_ROOT})")
    p.add_argument("--ignore-cgroup", action="append", default=[], metavar="GLOB",
                   help="without an agent: skip cgroups whose path matches GLOB (repeatable)")


def add_table_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="systemd units and raw cgroups too, not just containers")
    p.add_argument("--match", metavar="GLOB", help="only containers whose name, ID or cgroup path matches GLOB")
    p.add_argument("--sort", choices=SORT_KEYS, default="cpu", help="order of the rows (default cpu)")
    p.add_argument("--json", action="store_true", help="JSON for scripts instead of a table")
    add_source_options(p)


def add_view_commands(sub: argparse._SubParsersAction) -> None:
    ps = sub.add_parser("ps", help="list containers with their CPU, memory and limits",
                        description="One table of the containers: CPU % (of one CPU) and throttling over "
                        "--interval, memory working set against its limit, OOM kills, PIDs.",
                        epilog="example: cgwatch ps --sort memory")
    ps.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                    help="time between the two readings the rates come from (default 1; 0: no rates)")
    add_table_options(ps)
    ps.set_defaults(func=cmd_ps)

    top = sub.add_parser("top", help="the containers' usage, refreshed live",
                         description="ps, refreshed every --interval. Keys: c sort by CPU, m memory, n name, "
                         "p pids, q quit.", epilog="example: cgwatch top --json --iterations 3")
    top.add_argument("--interval", type=float, default=1.0, metavar="SECONDS", help="refresh period (default 1)")
    top.add_argument("--iterations", type=int, metavar="N", help="stop after N refreshes")
    add_table_options(top)
    top.set_defaults(func=cmd_top)

    ins = sub.add_parser("inspect", help="what is inside a container: processes, namespaces, ID maps, rootfs",
                         description="A container's limits and usage, the namespaces, user-namespace ID maps and "
                         "root filesystem of its init process, and its processes.",
                         epilog="example: cgwatch inspect web")
    ins.add_argument("ref", help="container ID, unique ID prefix, or name")
    ins.add_argument("--json", action="store_true", help="the JSON of GET /api/v1/containers/{ref}/inspect")
    add_source_options(ins)
    ins.set_defaults(func=cmd_inspect)


def _guard(run):  # type: ignore[no-untyped-def]
    try:
        return run()
    except NoData as exc:
        return refused(exc)
    except ApiError as exc:
        return refused(exc, exc.status)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `cgwatch ps | head`: the reader is gone; say nothing more (and nothing at exit either).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


# ---------------------------------------------------------------------------------------------
# ps


def cmd_ps(args: argparse.Namespace) -> int:
    return _guard(lambda: _ps(args))


def _ps(args: argparse.Namespace) -> int:
    source, first = open_source(args)
    before = first or read(source)
    after = None
    if args.interval > 0:
        time.sleep(args.interval)
        after = read(source)
    rows = _rows(args, before if after else None, after or before, args.sort)
    interval = after.taken_at_s - before.taken_at_s if after else None
    if args.json:
        print(json.dumps(frame_json(rows, source=source.label, sort=args.sort, interval_s=interval)))
        return 0
    rates = f"rates over {interval:.1f}s" if interval else "no rates (--interval 0)"
    print(f"source: {source.label}; {len(rows)} containers; {rates}; CPU % of one CPU")
    print("\n".join(table_lines(rows)))
    return 0


# ---------------------------------------------------------------------------------------------
# top


def cmd_top(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        print("cgwatch top: --interval must be above 0", file=sys.stderr)
        return 2
    if args.json:
        return _guard(lambda: _top_json(args))
    if not sys.stdout.isatty():
        print("cgwatch top: stdout is not a terminal; use --json (or cgwatch ps)", file=sys.stderr)
        return 2
    import curses
    return _guard(lambda: curses.wrapper(lambda screen: TopScreen(screen, args).run()))


def _top_json(args: argparse.Namespace) -> int:
    source, first = open_source(args)
    before = first or read(source)
    done = 0
    while args.iterations is None or done < args.iterations:
        time.sleep(args.interval)
        after = read(source)
        rows = _rows(args, before, after, args.sort)
        print(json.dumps(frame_json(rows, source=source.label, sort=args.sort,
                                    interval_s=after.taken_at_s - before.taken_at_s)), flush=True)
        before = after
        done += 1
    return 0


SORT_BY_KEY = {ord("c"): "cpu", ord("m"): "memory", ord("n"): "name", ord("p"): "pids"}
SORT_TITLES = {"cpu": "CPU %", "memory": "memory", "name": "name", "pids": "PIDs"}


class TopScreen:
    """The curses loop: read every --interval, redraw at once on a key."""

    def __init__(self, screen, args: argparse.Namespace):  # type: ignore[no-untyped-def]
        self.screen = screen
        self.args = args
        self.sort = args.sort
        self.rows: list[Row] = []
        self.error: str | None = None
        self.refreshes = 0

    def run(self) -> int:
        import curses

        curses.curs_set(0)
        self.screen.timeout(100)
        self.source, first = open_source(self.args)
        before = first or read(self.source)
        self.rows = _rows(self.args, None, before, self.sort)
        self.draw()
        # A fixed cadence: a read that takes part of the interval (3000 containers' JSON) does not
        # push every later refresh back by as much.
        next_at = time.monotonic() + self.args.interval
        while self.args.iterations is None or self.refreshes < self.args.iterations:
            key = self.screen.getch()
            if key in (ord("q"), ord("Q")):
                return 0
            if key in SORT_BY_KEY:
                self.sort = SORT_BY_KEY[key]
                self.rows = sort_rows(self.rows, self.sort)
                self.draw()
            elif key == curses.KEY_RESIZE:
                self.draw()
            if time.monotonic() >= next_at:
                before = self.refresh(before)
                next_at = max(next_at + self.args.interval, time.monotonic())
        return 0

    def refresh(self, before: Reading) -> Reading:
        try:
            after = read(self.source)
        except (OSError, ApiError, NoData) as exc:
            self.error = f"reading failed: {exc}"
            self.draw()
            return before
        self.error = None
        self.rows = _rows(self.args, before, after, self.sort)
        self.refreshes += 1
        self.draw()
        return after

    def draw(self) -> None:
        import curses

        height, width = self.screen.getmaxyx()
        self.screen.erase()
        now = datetime.now(timezone.utc).astimezone().strftime("%H:%M:%S")
        lines = [
            (f"cgwatch top  {now}  every {self.args.interval:g}s  sorted by {SORT_TITLES[self.sort]}  "
             f"{len(self.rows)} containers  (c cpu, m memory, n name, p pids, q quit)", curses.A_BOLD),
            (f"source: {self.source.label}", curses.A_NORMAL),
            (self.error or "CPU % of one CPU; memory is the working set", curses.A_NORMAL),
        ]
        table = table_lines(self.rows[:max(0, height - len(lines) - 1)])  # what fits: not 3000 lines
        lines.append((table[0], curses.A_REVERSE))
        lines.extend((line, curses.A_NORMAL) for line in table[1:])
        for y, (text, attr) in enumerate(lines[:height]):
            # The last cell of the screen cannot be written without an error: stop one short.
            self.screen.addnstr(y, 0, text, max(0, width - 1), attr)
        self.screen.refresh()


# ---------------------------------------------------------------------------------------------
# inspect


def cmd_inspect(args: argparse.Namespace) -> int:
    return _guard(lambda: _inspect(args))


def _inspect(args: argparse.Namespace) -> int:
    source, _ = open_source(args)
    details = source.inspect(args.ref)
    if args.json:
        print(json.dumps({"source": source.label, **details}, indent=2))
        return 0
    processes = source.processes(args.ref, 0)
    print(f"source: {source.label}")
    print("\n".join(inspect_lines(details, processes)))
    return 0


def _limit_text(limits: dict[str, Any]) -> str:
    cpus = limits.get("cpus")
    memory = limits.get("memory_limit_bytes")
    pids = limits.get("pids_max")
    return (f"cpus {cpus:g}" if cpus is not None else "cpus unlimited") + ", " + \
        (f"memory {human_bytes(memory)}" if memory is not None else "memory unlimited") + ", " + \
        (f"pids {pids}" if pids is not None else "pids unlimited")


def inspect_lines(d: dict[str, Any], processes: dict[str, Any]) -> list[str]:
    """The readable summary of `cgwatch inspect`."""
    usage = d.get("usage") or {}
    memory = usage.get("memory") or {}
    tasks = usage.get("tasks") or {}
    out = [f"{printable(d['name'])}  ({d['runtime']}, id {printable(d['id'])})",
           f"  cgroup      {printable(d['cgroup'])}",
           f"  image       {printable(d.get('image') or '-')}",
           f"  limits      {_limit_text(d.get('limits') or {})}",
           f"  usage       memory {human_bytes(memory.get('working_set_bytes'))} working set, "
           f"{tasks.get('processes', '-')} processes, {tasks.get('threads', '-')} threads"]
    if d.get("inspected_pid") is None:
        out.append(f"  {d.get('note') or 'no process to inspect'}")
    else:
        ref = d.get("host_reference") or {}
        against = "PID 1" if ref.get("process") == "pid1" else "the agent's own (PID 1's are unreadable)"
        out.append(f"  namespaces  of PID {d['inspected_pid']}, compared with {against}")
        for ns, info in (d.get("namespaces") or {}).items():
            shared = {True: "host's", False: "own", None: "unknown"}[info["shared_with_host"]]
            out.append(f"    {ns:<7} {info['inode'] or '-':<12} {shared}")
        maps = d.get("id_maps")
        if maps is not None:
            if maps["identity"]:
                out.append("  id maps     the host's (no user namespace remapping)")
            else:
                for kind in ("uid", "gid"):
                    ranges = ", ".join(f"{r['inside']}-{r['inside'] + r['count'] - 1} -> "
                                       f"{r['outside']}-{r['outside'] + r['count'] - 1}" for r in maps[kind])
                    out.append(f"  {kind} map     {ranges}")
        rootfs = d.get("rootfs")
        if rootfs is not None:
            out.append(f"  rootfs      {printable(rootfs['fstype'])} {printable(rootfs['source'])}")
            for i, layer in enumerate(rootfs.get("lowerdir") or []):
                out.append(f"    {'lowerdir' if i == 0 else '':<9} {printable(layer)}")
            for key in ("upperdir", "workdir"):
                if rootfs.get(key):
                    out.append(f"    {key:<9} {printable(rootfs[key])}")
    out.append("  processes   (CPU % of one CPU since each process started)")
    out.append(f"    {'PID':>7}  {'USER':<10} {'CPU %':>6} {'RSS':>9} {'THR':>4}  COMMAND")
    for p in processes.get("processes", []):
        cpu = "-" if p["cpu_percent"] is None else f"{p['cpu_percent']:.1f}"
        out.append(f"    {p['pid']:>7}  {str(p['user'])[:10]:<10} {cpu:>6} {human_bytes(p['rss_bytes']):>9} "
                   f"{p['threads']:>4}  {printable(p['command'])[:120]}")
    return out
