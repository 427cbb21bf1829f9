"""The agent's settings, built by the CLI (and by tests directly)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


def parse_hostport(value: str) -> tuple[str, int]:
    """"HOST:PORT" (or "[v6]:PORT") -> (host, port); raises ValueError with a message a user can act on."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


@dataclass(frozen=True, slots=True)
class Settings:
    listen: tuple[str, int] = ("0.0.0.0", 9338)
    api_listen: tuple[str, int] = ("127.0.0.1", 9339)
    state_dir: Path = Path("/var/lib/cgwatch")
    cgroup_root: Path = Path("/sys/fs/cgroup")
    proc_root: Path = Path("/proc")
    # "" disables the Docker integration entirely.
    docker_host: str = "unix:///var/run/docker.sock"
    include_raw: bool = True
    ignore_cgroups: tuple[str, ...] = ()
    label_allowlist: tuple[str, ...] = ()
    disabled_collectors: frozenset[str] = field(default_factory=frozenset)
    # A scrape is served from a collection at most this old; 0 collects on every scrape.
    max_age_s: float = 1.0
    log_level: str = "info"
