"""The ``cgwatch`` command. The only place that knows the host's default paths."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from . import __version__
from . import log as logsetup
from .collectors import ALL as ALL_COLLECTORS
from .config import Settings, parse_hostport
from .host.layout import LayoutError

log = logging.getLogger("cgwatch")


def _hostport(value: str) -> tuple[str, int]:
    try:
        return parse_hostport(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cgwatch", description="Per-host container resource agent: "
                                     "cAdvisor-compatible Prometheus metrics for every cgroup.")
    parser.add_argument("--version", action="version", version=f"cgwatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the agent", description="Run the agent: serve /metrics and the API.")
    serve.add_argument("--listen", type=_hostport, default=("0.0.0.0", 9338), metavar="HOST:PORT",
                       help="address for /metrics, /healthz and read-only GETs (default 0.0.0.0:9338)")
    serve.add_argument("--api-listen", type=_hostport, default=("127.0.0.1", 9339), metavar="HOST:PORT",
                       help="address for the whole API (default 127.0.0.1:9339)")
    serve.add_argument("--state-dir", type=Path, default=Path("/var/lib/cgwatch"),
                       help="where the agent keeps its state (default /var/lib/cgwatch)")
    serve.add_argument("--cgroup-root", type=Path, default=Path("/sys/fs/cgroup"),
                       help="cgroup filesystem mount point (default /sys/fs/cgroup)")
    serve.add_argument("--proc-root", type=Path, default=Path("/proc"),
                       help="proc filesystem mount point (default /proc)")
    serve.add_argument("--docker-host", default="unix:///var/run/docker.sock", metavar="URL",
                       help="Docker Engine API (default unix:///var/run/docker.sock; '' disables)")
    serve.add_argument("--no-raw-cgroups", dest="include_raw", action="store_false",
                       help="skip cgroups that belong to no known runtime (the root '/' stays)")
    serve.add_argument("--ignore-cgroup", action="append", default=[], metavar="GLOB",
                       help="skip cgroups whose path matches GLOB, and everything below (repeatable)")
    serve.add_argument("--label-allowlist", action="append", default=[], metavar="GLOB",
                       help="container label keys exported on container_info (repeatable; default none)")
    serve.add_argument("--disable-collector", action="append", default=[], metavar="NAME",
                       choices=sorted(ALL_COLLECTORS), help=f"turn a collector off: {', '.join(ALL_COLLECTORS)}")
    serve.add_argument("--max-age", type=float, default=1.0, metavar="SECONDS",
                       help="serve a scrape from a collection at most this old (default 1.0; 0: always collect)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=cmd_serve)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(listen=args.listen, api_listen=args.api_listen, state_dir=args.state_dir,
                    cgroup_root=args.cgroup_root, proc_root=args.proc_root, docker_host=args.docker_host,
                    include_raw=args.include_raw, ignore_cgroups=tuple(args.ignore_cgroup),
                    label_allowlist=tuple(args.label_allowlist),
                    disabled_collectors=frozenset(args.disable_collector), max_age_s=args.max_age,
                    log_level=args.log_level)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    logsetup.setup(settings.log_level)
    from .server.run import serve  # imports aiohttp; keep `cgwatch --help` fast
    try:
        return asyncio.run(serve(settings))
    except LayoutError as exc:
        log.error("no cgroup filesystem", extra={"error": str(exc)})
        return 2
    except OSError as exc:
        log.error("cannot start", extra={"error": str(exc)})
        return 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
