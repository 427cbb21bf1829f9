"""``cgwatch serve`` (the agent) and ``cgwatch check-policy`` (its policy file, offline)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from .. import log as logsetup
from ..collectors import ALL as ALL_COLLECTORS
from ..config import (DEFAULT_API_LISTEN, DEFAULT_CGROUP_ROOT, DEFAULT_CONTAINERD_HOST, DEFAULT_DOCKER_HOST,
                      DEFAULT_PODMAN_HOST, DEFAULT_LISTEN, DEFAULT_PROC_ROOT,
                      DEFAULT_STATE_DIR, Settings, parse_hostport)
from ..host.layout import LayoutError
from ..host.malloc import fix_mmap_threshold

log = logging.getLogger("cgwatch")


def _hostport(value: str) -> tuple[str, int]:
    try:
        return parse_hostport(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _nonnegative_int(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 0, got {value!r}")
    return int(value)


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return int(value)


def _text(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def add_serve_commands(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="run the agent", description="Run the agent: serve /metrics and the API.")
    serve.add_argument("--listen", type=_hostport, default=DEFAULT_LISTEN, metavar="HOST:PORT",
                       help=f"address for /metrics, /healthz and read-only GETs (default {_text(DEFAULT_LISTEN)})")
    serve.add_argument("--api-listen", type=_hostport, default=DEFAULT_API_LISTEN, metavar="HOST:PORT",
                       help=f"address for the whole API (default {_text(DEFAULT_API_LISTEN)})")
    serve.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                       help=f"where the agent keeps its state (default {DEFAULT_STATE_DIR})")
    serve.add_argument("--cgroup-root", type=Path, default=DEFAULT_CGROUP_ROOT,
                       help=f"cgroup filesystem mount point (default {DEFAULT_CGROUP_ROOT})")
    serve.add_argument("--proc-root", type=Path, default=DEFAULT_PROC_ROOT,
                       help=f"proc filesystem mount point (default {DEFAULT_PROC_ROOT})")
    serve.add_argument("--docker-host", default=DEFAULT_DOCKER_HOST, metavar="URL",
                       help=f"Docker Engine API (default {DEFAULT_DOCKER_HOST}; '' disables)")
    serve.add_argument("--podman-host", default=DEFAULT_PODMAN_HOST, metavar="URL",
                       help=f"Podman's API service (default {DEFAULT_PODMAN_HOST}; '' disables)")
    serve.add_argument("--containerd-host", default=DEFAULT_CONTAINERD_HOST, metavar="URL",
                       help=f"containerd's gRPC API, every namespace (default {DEFAULT_CONTAINERD_HOST}; '' disables)")
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
    serve.add_argument("--removed-retention", type=float, default=300.0, metavar="SECONDS",
                       help="keep a removed container's last series, frozen, this long (default 300; 0: drop them "
                       "at once), so its final counters and container_last_seen can be scraped")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--token-file", type=Path, help="the API's bearer token (default: <state-dir>/token, "
                       "generated on first start with mode 0600)")
    serve.add_argument("--anonymous-api-reads", action="store_true",
                       help="let GETs on the API listener through without the token (writes always need it)")
    serve.add_argument("--allow-kubernetes-writes", action="store_true",
                       help="allow changing limits of Kubernetes pod containers (the kubelet owns them)")
    serve.add_argument("--tls-cert", type=Path, help="serve the API over TLS with this certificate (PEM)")
    serve.add_argument("--tls-key", type=Path, help="the private key of --tls-cert (PEM)")
    serve.add_argument("--web-config-file", type=Path, metavar="FILE",
                       help="TLS (and client certificates) on both listeners and basic auth on --listen, in the "
                       "web config format of Prometheus exporters (exporter-toolkit); certificates and users "
                       "are reloaded on SIGHUP")
    serve.add_argument("--insecure-allow-remote-writes-without-tls", dest="insecure_remote_writes",
                       action="store_true", help="serve the write API on a non-loopback address in clear text")
    serve.add_argument("--policy", type=Path, metavar="FILE",
                       help="YAML policy of limits to enforce (reloaded on change and on SIGHUP)")
    serve.add_argument("--reconcile-interval", type=float, default=30.0, metavar="SECONDS",
                       help="how often every container is checked for drift from its desired limits (default 30)")
    serve.add_argument("--birth-scan-interval", type=float, default=10.0, metavar="SECONDS",
                       help="how often new cgroups are looked for while something is enforced, a fallback behind "
                            "the watch on their parents (default 10)")
    serve.add_argument("--limits-refresh-interval", type=float, default=60.0, metavar="SECONDS",
                       help="how long /metrics keeps a cgroup's limits before reading them again; cgwatch's own "
                            "changes and runtime update events show at once, a direct cgroupfs write within this "
                            "(default 60)")
    serve.add_argument("--rewalk-interval", type=float, default=60.0, metavar="SECONDS",
                       help="how often every cgroup hierarchy is walked again, a safety net behind the inotify "
                            "watches that keep the container list between scrapes (default 60)")
    serve.add_argument("--max-kept-files", type=_nonnegative_int, default=None, metavar="N",
                       help="cgroup files kept open between scrapes (read again with pread, much cheaper than "
                            "open/read/close); each holds 4.4-5.5 KB of memory charged to the agent's memory "
                            "cgroup. Default: a quarter of the agent's own memory limit, else as many as the "
                            "open files limit allows; 0 keeps none")
    serve.add_argument("--audit-max-bytes", type=_positive_int, default=10 << 20, metavar="BYTES",
                       help="rotate <state-dir>/audit.log to audit.log.1 once it reaches this size (default 10 MiB)")
    serve.add_argument("--audit-keep", type=_positive_int, default=5, metavar="N",
                       help="rotated audit logs kept, audit.log.1 (newest) to audit.log.N (default 5)")
    serve.add_argument("--audit-refusal-window", type=float, default=10.0, metavar="SECONDS",
                       help="repeats of an unauthenticated write refusal (same client, cause, method and path) "
                       "within this window are written as one line with a count, after the first 10 (default 10)")
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check-policy", help="validate a policy file offline",
                           description="Validate a policy file: exit 0 and list its rules, or exit 1 and say "
                           "which line is wrong.")
    check.add_argument("file", type=Path)
    check.set_defaults(func=cmd_check_policy)


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(listen=args.listen, api_listen=args.api_listen, state_dir=args.state_dir,
                    cgroup_root=args.cgroup_root, proc_root=args.proc_root, docker_host=args.docker_host,
                    podman_host=args.podman_host, containerd_host=args.containerd_host,
                    include_raw=args.include_raw, ignore_cgroups=tuple(args.ignore_cgroup),
                    label_allowlist=tuple(args.label_allowlist),
                    disabled_collectors=frozenset(args.disable_collector), max_age_s=args.max_age,
                    removed_retention_s=args.removed_retention,
                    log_level=args.log_level, token_file=args.token_file,
                    anonymous_api_reads=args.anonymous_api_reads,
                    allow_kubernetes_writes=args.allow_kubernetes_writes, tls_cert=args.tls_cert,
                    tls_key=args.tls_key, web_config_file=args.web_config_file,
                    insecure_remote_writes=args.insecure_remote_writes,
                    policy_file=args.policy, reconcile_interval_s=args.reconcile_interval,
                    birth_scan_interval_s=args.birth_scan_interval,
                    limits_refresh_s=args.limits_refresh_interval, rewalk_s=args.rewalk_interval, max_kept_files=args.max_kept_files,
                    audit_max_bytes=args.audit_max_bytes,
                    audit_keep=args.audit_keep, audit_refusal_window_s=args.audit_refusal_window)


def cmd_serve(args: argparse.Namespace) -> int:
    if bool(args.tls_cert) != bool(args.tls_key):
        print("cgwatch serve: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    settings = settings_from(args)
    if settings.web_config_file is not None:
        from ..server.transport import check_web_config
        from ..server.webconfig import WebConfigError
        try:
            check_web_config(settings)
        except WebConfigError as exc:
            print(f"cgwatch serve: --web-config-file {exc}", file=sys.stderr)
            return 2
    logsetup.setup(settings.log_level)
    fix_mmap_threshold()  # each collection's bodies go back to the kernel when freed (host/malloc.py)
    from ..server.run import serve  # imports aiohttp; keep `cgwatch --help` fast
    try:
        return asyncio.run(serve(settings))
    except LayoutError as exc:
        log.error("no cgroup filesystem", extra={"error": str(exc)})
        return 2
    except ValueError as exc:  # UnsafeListen, UnsafeStateDir, an empty token file, a bad policy file
        log.error("refusing to start", extra={"error": str(exc)})
        return 2
    except OSError as exc:
        log.error("cannot start", extra={"error": str(exc)})
        return 1


def cmd_check_policy(args: argparse.Namespace) -> int:
    from ..enforce.policy import PolicyError, load_policy_file

    try:
        policy = load_policy_file(args.file)
    except PolicyError as exc:
        print(f"cgwatch check-policy: {exc}", file=sys.stderr)
        return 1
    for rule in policy.rules:
        print(f"{args.file}:{rule.line}: rule {rule.name!r}: {dict(rule.limits)}")
    print(f"{args.file}: ok, {len(policy.rules)} rule(s)")
    return 0
