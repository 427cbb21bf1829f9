"""Pure parsers for the shapes cgroup and proc files share.

Documentation/admin-guide/cgroup-v2.rst, "Interface Files/Format": files are newline-separated
values, flat-keyed ("key value"), nested-keyed ("key sub=value ..."), or single values where
"max" means no limit. v1 files (Documentation/admin-guide/cgroup-v1/*.rst) use the same shapes.
"""

from __future__ import annotations


class ParseError(ValueError):
    """A pseudo-file's text did not have the shape the kernel documents for it."""


def parse_int(text: str | bytes) -> int:
    """A single integer value (``memory.current``, ``cpuacct.usage``, ``pids.current``).

    Text or the bytes a read returned: int() takes both and ignores the whitespace around the
    number (the trailing newline), so a per-scrape file is parsed without a decode or a strip.
    """
    try:
        return int(text)
    except ValueError as exc:
        raise ParseError(f"expected an integer, got {text.strip()[:40]!r}") from exc


def parse_max_int(text: str | bytes) -> int | None:
    """A v2 single value where ``max`` means unlimited (``memory.max``, ``pids.max``) -> None."""
    try:
        return int(text)
    except ValueError:
        value = text.strip()
        if value == (b"max" if isinstance(value, bytes) else "max"):
            return None
        raise ParseError(f"expected an integer or 'max', got {value[:40]!r}") from None


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


class FlatKeys:
    """The integer values of a few keys of a flat-keyed file, parsed from the bytes read.

    One search for "\\nkey " per wanted key instead of splitting every line: memory.stat has ~40
    lines of which a collection uses 12, cpu.stat 5 of which it uses 3; nothing is decoded and
    no entry for an unused key is built. A key not in the file (an older kernel, a controller
    not enabled) is not in the result; a value that is not an integer is skipped, as in
    ``parse_flat_keyed``.
    """

    __slots__ = ("keys", "_needles")

    def __init__(self, *keys: str):
        self.keys = keys
        # The trailing space ends the key: "\nrss " is not found in "rss_huge 0".
        self._needles = tuple((key, b"\n" + key.encode() + b" ") for key in keys)

    def parse(self, data: bytes) -> dict[str, int]:
        data = b"\n" + data  # the first line's key is then found like every other's
        out: dict[str, int] = {}
        for key, needle in self._needles:
            start = data.find(needle)
            if start < 0:
                continue
            start += len(needle)
            end = data.find(b"\n", start)
            try:
                out[key] = int(data[start:end] if end >= 0 else data[start:])
            except ValueError:
                continue
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
