"""Pure parsers for the shapes cgroup and proc files share.

Documentation/admin-guide/cgroup-v2.rst, "Interface Files/Format": files are newline-separated
values, flat-keyed ("key value"), nested-keyed ("key sub=value ..."), or single values where
"max" means no limit. v1 files (Documentation/admin-guide/cgroup-v1/*.rst) use the same shapes.
"""

from __future__ import annotations


class ParseError(ValueError):
    """A pseudo-file's text did not have the shape the kernel documents for it."""


def parse_int(text: str) -> int:
    """A single integer value (``memory.current``, ``cpuacct.usage``, ``pids.current``)."""
    try:
        return int(text.strip())
    except ValueError as exc:
        raise ParseError(f"expected an integer, got {text.strip()[:40]!r}") from exc


def parse_max_int(text: str) -> int | None:
    """A v2 single value where ``max`` means unlimited (``memory.max``, ``pids.max``) -> None."""
    value = text.strip()
    return None if value == "max" else parse_int(value)


def parse_flat_keyed(text: str) -> dict[str, int]:
    """Flat-keyed "key value" lines (``memory.stat``, ``cpu.stat``, ``memory.events``).

    Non-integer values are skipped rather than fatal: a newer kernel may add such keys.
    """
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if not value:
            continue
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def parse_flat_keys(text: str, keys: frozenset[str]) -> dict[str, int]:
    """``parse_flat_keyed`` of only ``keys``: memory.stat has ~36 lines, a collection uses 10."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key in keys:
            try:
                out[key] = int(value)
            except ValueError:
                continue
    return out


def parse_nested_keyed(text: str) -> dict[str, dict[str, str]]:
    """Nested-keyed lines "key sub1=v1 sub2=v2" (``io.stat``, ``*.pressure``)."""
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        entry: dict[str, str] = {}
        for pair in fields[1:]:
            sub, eq, value = pair.partition("=")
            if eq:
                entry[sub] = value
        out[fields[0]] = entry
    return out


def parse_cpu_list(text: str) -> frozenset[int]:
    """A CPU list such as ``0-3,5`` (``cpuset.cpus``, /sys/devices/system/cpu/online)."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            first = int(lo)
            last = int(hi) if dash else first
        except ValueError as exc:
            raise ParseError(f"bad CPU list {text.strip()!r}") from exc
        if last < first:
            raise ParseError(f"bad CPU range {part!r}")
        cpus.update(range(first, last + 1))
    return frozenset(cpus)
