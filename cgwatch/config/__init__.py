"""The agent's settings, built by the CLI (and by tests directly), and the one place that knows the
host's default paths and addresses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_LISTEN = ("0.0.0.0", 9338)
DEFAULT_API_LISTEN = ("127.0.0.1", 9339)
DEFAULT_API_URL = "http://127.0.0.1:9339"
DEFAULT_STATE_DIR = Path("/var/lib/cgwatch")
DEFAULT_CGROUP_ROOT = Path("/sys/fs/cgroup")
DEFAULT_PROC_ROOT = Path("/proc")
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DEFAULT_PODMAN_HOST = "unix:///run/podman/podman.sock"
DEFAULT_CONTAINERD_HOST = "unix:///run/containerd/containerd.sock"


def parse_hostport(value: str) -> tuple[str, int]:
    """"HOST:PORT" (or "[v6]:PORT") -> (host, port); raises ValueError with a message a user can act on."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


@dataclass(frozen=True, slots=True)
class Settings:
    listen: tuple[str, int] = DEFAULT_LISTEN
    api_listen: tuple[str, int] = DEFAULT_API_LISTEN
    state_dir: Path = DEFAULT_STATE_DIR
    cgroup_root: Path = DEFAULT_CGROUP_ROOT
    proc_root: Path = DEFAULT_PROC_ROOT
    # Each runtime's API; "" turns that runtime's integration off.
    docker_host: str = DEFAULT_DOCKER_HOST
    podman_host: str = DEFAULT_PODMAN_HOST
    containerd_host: str = DEFAULT_CONTAINERD_HOST
    include_raw: bool = True
    ignore_cgroups: tuple[str, ...] = ()
    label_allowlist: tuple[str, ...] = ()
    disabled_collectors: frozenset[str] = field(default_factory=frozenset)
    # A scrape is served from a collection at most this old; 0 collects on every scrape.
    max_age_s: float = 1.0
    # A removed container's last series stay exported (frozen) this long; 0 drops them at once.
    # 5 minutes: `time() - container_last_seen > 60` fires (with a `for:` of a minute or two), and
    # scrapes every 60 s see the final counters at least twice.
    removed_retention_s: float = 300.0
    log_level: str = "info"
    # The API's bearer token: this file, or <state_dir>/token generated on first start.
    token_file: Path | None = None
    # Reads on the API listener without the token (writes always need it).
    anonymous_api_reads: bool = False
    # The kubelet owns pod containers' limits; writing them needs this on.
    allow_kubernetes_writes: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # An exporter-toolkit web config: TLS (and client certificates) on both listeners, basic auth on --listen.
    web_config_file: Path | None = None
    # Serve the write API on a non-loopback address without TLS (the token would cross the network in clear).
    insecure_remote_writes: bool = False
    # Enforcement: a YAML policy file, how often every container is checked for drift, and how
    # often the hierarchy is looked at for new cgroups (Docker containers are seen by event at once).
    policy_file: Path | None = None
    reconcile_interval_s: float = 30.0
    birth_scan_interval_s: float = 10.0
    # The exporter keeps each cgroup's limits between collections (cgwatch's own writes and the
    # runtimes' update events drop them at once); a write nobody announced shows within this.
    limits_refresh_s: float = 60.0
    # The cgroup tree is kept between scans from inotify (discovery/live.py); a walk of every
    # hierarchy, at this period, is the safety net behind the events.
    rewalk_s: float = 60.0
    # Cgroup files kept open for pread: None sizes it from the agent's memory limit (a quarter of
    # it, 4.4-5.5 KB of memory a file: host/selfcgroup.py) and the descriptor limit.
    max_kept_files: int | None = None
    # audit.log is rotated past this size to audit.log.1 .. audit.log.<audit_keep> (logrotate's scheme).
    audit_max_bytes: int = 10 << 20
    audit_keep: int = 5
    # Repeated refusals of unauthenticated writes (same client, cause, method, path) within this
    # many seconds are written as one line with a count, after the first few.
    audit_refusal_window_s: float = 10.0
