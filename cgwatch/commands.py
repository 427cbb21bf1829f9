"""CLI commands for humans on the host: ``cgwatch set``, ``limits`` and ``reset``, through the API."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .client import DEFAULT_API, ApiClient, ApiError, read_token

# CLI flag -> API field, and how the flag's text becomes JSON ("unlimited" clears the field).
SET_FLAGS = (
    ("--cpus", "cpus", str, "CPUs, as docker --cpus (0.5)"),
    ("--cpu-period", "cpu_period_us", int, "CFS period in us (1000..1000000)"),
    ("--cpu-quota", "cpu_quota_us", int, "CFS quota in us per period (>= 1000)"),
    ("--cpu-shares", "cpu_shares", int, "relative CPU weight (2..262144)"),
    ("--cpuset-cpus", "cpuset_cpus", str, "CPUs allowed, e.g. 0-1,3"),
    ("--memory", "memory", str, "memory limit: bytes or 100m, 1g, 512k"),
    ("--memory-reservation", "memory_reservation", str, "soft memory limit"),
    ("--memory-swap", "memory_swap", str, "memory plus swap; -1 unlimited"),
    ("--pids-limit", "pids_limit", int, "max tasks; -1 unlimited"),
)


def add_api_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api", default=DEFAULT_API, metavar="URL", help=f"the agent's API (default {DEFAULT_API})")
    p.add_argument("--token-file", type=Path, help="bearer token file (default <state-dir>/token)")
    p.add_argument("--state-dir", type=Path, default=Path("/var/lib/cgwatch"),
                   help="the agent's state directory, for its token (default /var/lib/cgwatch)")


def add_client_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("set", help="change a container's limits",
                       description="Change a container's limits through the agent's API (PATCH: only the "
                       "given limits change). A value of 'unlimited' removes that limit.",
                       epilog="example: cgwatch set web --cpus 0.5 --memory 100m")
    s.add_argument("ref", help="container ID, unique ID prefix, or name")
    for flag, field, _, text in SET_FLAGS:
        s.add_argument(flag, dest=field, metavar="VALUE", help=text)
    s.add_argument("--force", action="store_true", help="allow memory below what the container uses now")
    s.add_argument("--keep-for-name", action="store_true",
                   help="also give these limits to a container recreated under the same name")
    add_api_options(s)
    s.set_defaults(func=cmd_set)

    g = sub.add_parser("limits", help="show a container's limits",
                       description="Show the limits the kernel holds now for a container.")
    g.add_argument("ref", help="container ID, unique ID prefix, or name")
    add_api_options(g)
    g.set_defaults(func=cmd_limits)

    r = sub.add_parser("reset", help="remove all of a container's limits",
                       description="Remove every CPU, memory and pids limit of a container (DELETE).")
    r.add_argument("ref", help="container ID, unique ID prefix, or name")
    add_api_options(r)
    r.set_defaults(func=cmd_reset)


def client_from(args: argparse.Namespace) -> ApiClient:
    return ApiClient(args.api, read_token(args.token_file, args.state_dir))


def set_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for flag, field, kind, _ in SET_FLAGS:
        raw = getattr(args, field)
        if raw is None:
            continue
        if raw == "unlimited":
            body[field] = None
            continue
        try:
            body[field] = kind(raw)
        except ValueError:
            raise SystemExit(f"cgwatch set: {flag} takes a whole number, not {raw!r}") from None
    if not body:
        raise SystemExit("cgwatch set: give at least one limit, e.g. --cpus 0.5 or --memory 100m")
    if args.force:
        body["force"] = True
    if args.keep_for_name:
        body["keep_for_name"] = True
    return body


def _run(call) -> int:  # type: ignore[no-untyped-def]
    try:
        print(json.dumps(call(), indent=2))
        return 0
    except ApiError as exc:
        print(f"cgwatch: {exc} (HTTP {exc.status})", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cgwatch: cannot reach the agent: {exc}", file=sys.stderr)
        return 1


def cmd_set(args: argparse.Namespace) -> int:
    body = set_body(args)
    return _run(lambda: client_from(args).request("PATCH", f"/api/v1/containers/{args.ref}/limits", body))


def cmd_limits(args: argparse.Namespace) -> int:
    return _run(lambda: client_from(args).get(f"/api/v1/containers/{args.ref}/limits"))


def cmd_reset(args: argparse.Namespace) -> int:
    return _run(lambda: client_from(args).request("DELETE", f"/api/v1/containers/{args.ref}/limits"))
