"""Running the real agent against the real host inside a test (aiohttp test client)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cgwatch.config import Settings

# The machine's own memory cgroup (see DEVELOPERS.md) is never read, let alone written.
HOST_IGNORE = ("/process_api*",)


def agent_settings(tmp_path: Path, **overrides) -> Settings:
    # No runtime unless a test asks for one: the host's own daemons are not the suite's.
    base = Settings(state_dir=tmp_path / "state", docker_host="", podman_host="", containerd_host="",
                    max_age_s=0.0, ignore_cgroups=HOST_IGNORE)
    return replace(base, **overrides)


def samples(text: str, metric: str, /, **labels: str) -> list:
    """Samples named ``metric`` whose labels include ``labels`` (positional-only: a label may be called name)."""
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items()):
                out.append(s)
    return out


def value(text: str, metric: str, /, **labels: str) -> float | None:
    found = samples(text, metric, **labels)
    if len(found) > 1:
        raise AssertionError(f"{len(found)} samples of {metric} match {labels}")
    return found[0].value if found else None
