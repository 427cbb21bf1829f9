"""Running the real agent against the real host inside a test (aiohttp test client)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cgwatch.config import Settings

# The machine's own memory cgroup (see DEVELOPERS.md) is never read, let alone written.
HOST_IGNORE = ("/process_api*",)


def agent_settings(tmp_path: Path, **overrides) -> Settings:
    base = Settings(state_dir=tmp_path / "state", docker_host="", max_age_s=0.0, ignore_cgroups=HOST_IGNORE)
    return replace(base, **overrides)


def samples(text: str, name: str, **labels: str) -> list:
    """Samples of family/sample ``name`` whose labels include ``labels``."""
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                out.append(s)
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    found = samples(text, name, **labels)
    if len(found) > 1:
        raise AssertionError(f"{len(found)} samples of {name} match {labels}")
    return found[0].value if found else None
