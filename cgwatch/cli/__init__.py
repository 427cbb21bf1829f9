"""The ``cgwatch`` command: its parser, and a module per family of subcommands.

    serve.py     serve, check-policy    the agent, and its policy file checked offline
    limits.py    set, limits, reset     a container's limits, through the agent's API
    view.py      ps, top, inspect       the containers' usage, from the API or the host directly
    client.py    the API client those use, and the options that point it at the agent
    topview.py   ps's and top's rates and table (pure)

Default paths and addresses come from cgwatch/config.py.
"""

from __future__ import annotations

import argparse

from .. import __version__
from .limits import add_limit_commands
from .serve import add_serve_commands
from .view import add_view_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cgwatch", description="Per-host container resource agent: "
                                     "cAdvisor-compatible Prometheus metrics for every cgroup.")
    parser.add_argument("--version", action="version", version=f"cgwatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve_commands(sub)
    add_limit_commands(sub)
    add_view_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
