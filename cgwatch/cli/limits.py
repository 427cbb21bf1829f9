"""``cgwatch set``, ``limits`` and ``reset``: a container's limits, through the agent's API.

``set``'s flags are the rows of the limit fields' table (cgwatch/limits/fields.py).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..limits.fields import LIMIT_FIELDS
from .client import ApiError, add_api_options, client_from, refused


def add_limit_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("set", help="change a container's limits",
                       description="Change a container's limits through the agent's API (PATCH: only the "
                       "given limits change). A value of 'unlimited' removes that limit.",
                       epilog="example: cgwatch set web --cpus 0.5 --memory 100m")
    s.add_argument("ref", help="container ID, unique ID prefix, or name")
    for field in LIMIT_FIELDS:
        s.add_argument(field.flag, dest=field.name, metavar="VALUE", help=field.help)
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
    body = set_body(args)
    return _run(lambda: client_from(args).request("PATCH", f"/api/v1/containers/{args.ref}/limits", body))


def cmd_limits(args: argparse.Namespace) -> int:
    return _run(lambda: client_from(args).get(f"/api/v1/containers/{args.ref}/limits"))


def cmd_reset(args: argparse.Namespace) -> int:
    return _run(lambda: client_from(args).request("DELETE", f"/api/v1/containers/{args.ref}/limits"))
