"""Prometheus text exposition (format 0.0.4) for the per-container families.

client_python's ``generate_latest`` formats each sample's label dict anew (~6.5 us a sample);
a container's labels are the same in every family, so they are escaped once per scrape and
reused. The output parses identically with client_python's parser (tests/unit/test_exposition.py).
Agent-own metrics still go through client_python (exporter.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_labels(pairs: Iterable[tuple[str, str]]) -> str:
    """``name="value",...`` without braces; values escaped per the exposition format."""
    return ",".join(f'{k}="{escape_label_value(v)}"' for k, v in pairs)


def format_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class Family:
    """One metric family: HELP, TYPE and samples whose labels are pre-rendered strings."""

    __slots__ = ("name", "help", "type", "samples")

    def __init__(self, name: str, help: str, type: str):
        self.name = name
        self.help = help
        self.type = type  # counter | gauge | untyped
        self.samples: list[tuple[str, float]] = []

    def add(self, labels: str, value: float) -> None:
        self.samples.append((labels, value))

    def render(self, out: list[str]) -> None:
        if not self.samples:
            return
        help_text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        out.append(f"# HELP {self.name} {help_text}\n# TYPE {self.name} {self.type}\n")
        name = self.name
        for labels, value in self.samples:
            out.append(f"{name}{{{labels}}} {format_value(value)}\n" if labels
                       else f"{name} {format_value(value)}\n")


def render_chunks(families: Iterable[Family]) -> Iterator[bytes]:
    """The exposition as bytes, one chunk a family: only one family's line strings live at a time
    (the whole body as ~29,000 strings, their join and its encoding were three copies of it)."""
    for family in families:
        out: list[str] = []
        family.render(out)
        if out:
            yield "".join(out).encode()


def render(families: Iterable[Family]) -> bytes:
    return b"".join(render_chunks(families))
