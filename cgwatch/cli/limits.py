"""``cgwatch set``, ``limits`` and ``reset``: a container's (or any cgroup's) limits, through the
agent's API.

``set``'s flags are the rows of the limit fields' table (cgwatch/limits/fields.py). Each command
names a container by ref, or any cgroup by ``--cgroup PATH`` (/api/v1/cgroups/<path>/...).
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
from typing import Any

from ..limits.fields import LIMIT_FIELDS
from .client import ApiError, add_api_options, client_from, refused


def add_limit_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("set", help="change a container's (or a cgroup's) limits",
                       description="Change a container's limits, or any cgroup's with --cgroup, through the "
                       "agent's API (PATCH: only the given limits change). A value of 'unlimited' removes "
                       "that limit.",
                       epilog="examples: cgwatch set web --cpus 0.5 --memory 100m; "
                              "cgwatch set --cgroup /batch/job-7 --cpus 0.5")
    add_target_options(s)
    for field in LIMIT_FIELDS:
        s.add_argument(field.flag, dest=field.name, metavar="VALUE", help=field.help)
    s.add_argument("--force", action="store_true", help="allow memory below what the container uses now")
    s.add_argument("--keep-for-name", action="store_true",
                   help="also give these limits to a container recreated under the same name")
    add_api_options(s)
    s.set_defaults(func=cmd_set)

    g = sub.add_parser("limits", help="show a container's (or a cgroup's) limits",
                       description="Show the limits the kernel holds now for a container, or any cgroup "
                       "with --cgroup.")
    add_target_options(g)
    add_api_options(g)
    g.set_defaults(func=cmd_limits)

    r = sub.add_parser("reset", help="remove all of a container's (or a cgroup's) limits",
                       description="Remove every CPU, memory and pids limit of a container, or of any "
                       "cgroup with --cgroup (DELETE).")
    add_target_options(r)
    add_api_options(r)
    r.set_defaults(func=cmd_reset)


def add_target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", nargs="?", help="container ID, unique ID prefix, or name (or give --cgroup)")
    p.add_argument("--cgroup", metavar="PATH",
                   help="any cgroup by its path instead of a container ref, as `cgwatch ps` or GET "
                        "/api/v1/containers shows it (\"cgroup\"): /batch/job-7, /lxc.payload.web")


def target_url(args: argparse.Namespace) -> str:
    """The API path of what the command names: /api/v1/containers/<ref> or /api/v1/cgroups/<path>.
    Exactly one of ``ref`` and ``--cgroup``; either is percent-encoded as it is, so the agent
    judges it (a '/' in a ref, a '..' in a path are refused there, not rewritten here)."""
    if (args.ref is None) == (args.cgroup is None):
        which = "not both" if args.ref is not None else f"e.g. cgwatch {args.command} web or --cgroup /batch/job-7"
        raise SystemExit(f"cgwatch {args.command}: name a container (REF) or a cgroup (--cgroup PATH), {which}")
    if args.ref is not None:
        return f"/api/v1/containers/{urllib.parse.quote(args.ref, safe='')}"
    # One leading '/' is the root's; the API takes the path without it, its slashes kept.
    path = args.cgroup[1:] if args.cgroup.startswith("/") else args.cgroup
    return f"/api/v1/cgroups/{urllib.parse.quote(path, safe='/')}"


def set_body(args: argparse.Namespace) -> dict[str, Any]:
    """The PATCH body of ``cgwatch set``: each flag's text as the API takes it ("unlimited" clears it)."""
    body: dict[str, Any] = {}
    for field in LIMIT_FIELDS:
        raw = getattr(args, field.name)
        if raw is None:
            continue
        if raw == "unlimited":
            body[field.name] = None
            continue
        try:
            body[field.name] = field.cli_type(raw)
        except ValueError:
            raise SystemExit(f"cgwatch set: {field.flag} takes a whole number, not {raw!r}") from None
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
        return refused(exc, exc.status)
    except OSError as exc:
        return refused(f"cannot reach the agent: {exc}")


def cmd_set(args: argparse.Namespace) -> int:
    url = target_url(args)
    body = set_body(args)
    return _run(lambda: client_from(args).request("PATCH", f"{url}/limits", body))


def cmd_limits(args: argparse.Namespace) -> int:
    url = target_url(args)
    return _run(lambda: client_from(args).get(f"{url}/limits"))


def cmd_reset(args: argparse.Namespace) -> int:
    url = target_url(args)
    return _run(lambda: client_from(args).request("DELETE", f"{url}/limits"))
