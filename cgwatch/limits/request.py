"""Parsing a limits request: strict JSON in Docker's vocabulary, normalized, before any write.

Every rejection is a domain error naming the field and the rule: InvalidRequest (400) for a
body that is not a well-formed request, InvalidLimit (422) for a value outside its bounds.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import InvalidLimit, InvalidRequest

FIELDS = ("cpus", "cpu_period_us", "cpu_quota_us", "cpu_shares", "cpuset_cpus", "memory",
          "memory_reservation", "memory_swap", "pids_limit")
FLAGS = ("force", "keep_for_name")

MIN_MEMORY = 6 * 1024 * 1024          # Docker's minimum (daemon/daemon_unix.go linuxMinMemory)
# At or above this the kernel reads a limit as "no limit" (PAGE_COUNTER_MAX in bytes): refuse.
MAX_BYTES = 2 ** 63 - 2 ** 16
MIN_CPUS = Decimal("0.01")            # 1000 us of quota per 100000 us period: the kernel's minimum
PERIOD_US = (1000, 1_000_000)         # Documentation/scheduler/sched-bwc.rst
MIN_QUOTA_US = 1000
SHARES = (2, 262144)                  # kernel/sched: MIN_SHARES .. MAX_SHARES
PID_MAX_LIMIT = 4 * 1024 * 1024       # include/linux/threads.h
MAX_CPU_ID = 4095                     # beyond any NR_CPUS a distribution kernel is built with

_MEMORY = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp]?)(?:i?b)?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_CPU_RANGE = re.compile(r"^(\d{1,4})(?:-(\d{1,4}))?$")
_DECIMAL = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


class Mode(enum.Enum):
    PUT = "put"
    PATCH = "patch"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class LimitRequest:
    mode: Mode
    # Only the fields sent, normalized: cpus Decimal; cpu_*, pids_limit int; memory* int bytes;
    # cpuset_cpus canonical "0-1,3"; None = sent as null, or Docker's -1 "unlimited".
    fields: Mapping[str, object] = field(default_factory=dict)
    force: bool = False
    keep_for_name: bool = False


def parse_limit_request(body: bytes, mode: Mode) -> LimitRequest:
    doc = _decode(body, mode)
    unknown = sorted(set(doc) - set(FIELDS) - set(FLAGS))
    if unknown:
        raise InvalidLimit(unknown[0], "unknown_field",
                           f"unknown field(s): {', '.join(unknown)}; known: {', '.join(FIELDS + FLAGS)}")
    flags = {}
    for name in FLAGS:
        value = doc.get(name, False)
        if not isinstance(value, bool):
            raise InvalidLimit(name, "type", f"{name} must be true or false")
        flags[name] = value
    fields = {name: _PARSERS[name](doc[name], name) for name in FIELDS if name in doc}
    if "cpus" in fields and ({"cpu_period_us", "cpu_quota_us"} & fields.keys()):
        raise InvalidLimit("cpus", "combination",
                           "cpus cannot be combined with cpu_period_us or cpu_quota_us (as docker --cpus)")
    if mode is Mode.DELETE and fields:
        raise InvalidLimit(next(iter(fields)), "combination", "DELETE removes every limit; send no limit fields")
    if mode is not Mode.DELETE and not fields:
        hint = " (to remove every limit, use DELETE)" if mode is Mode.PUT else ""
        raise InvalidLimit("", "empty", f"the request names no limit to change{hint}")
    return LimitRequest(mode, fields, **flags)


def _decode(body: bytes, mode: Mode) -> dict[str, Any]:
    if mode is Mode.DELETE and not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_float=Decimal,
                         parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise InvalidRequest("the body is not UTF-8") from None
    except RecursionError:
        raise InvalidRequest("the body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and int() refusing a 5,000-digit number
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidRequest("the body must be a JSON object of limit fields")
    return doc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise InvalidRequest(f"duplicate key(s): {', '.join(dupes)}")
    return dict(pairs)


def _no_constants(name: str) -> Any:
    raise InvalidRequest(f"{name} is not a number cgwatch accepts")


def _number(value: Any, name: str, *, integral: bool) -> Decimal | int:
    """A JSON number (never a boolean) or, for cpus, a numeric string."""
    if isinstance(value, bool) or value is None or not isinstance(value, (int, Decimal, str)):
        raise InvalidLimit(name, "type", f"{name} must be a number")
    if isinstance(value, str):
        if not _DECIMAL.match(value):
            raise InvalidLimit(name, "format", f"{name} must be a number, like 0.5")
        value = Decimal(value)
    if integral:
        if isinstance(value, Decimal):
            raise InvalidLimit(name, "type", f"{name} must be a whole number")
        return value
    return Decimal(value)


def parse_cpus(value: Any, name: str = "cpus") -> Decimal:
    """Docker's ParseCPUs: a decimal whose value times 1e9 is whole (else "too precise")."""
    try:
        cpus = _number(value, name, integral=False)
        if (cpus * 1_000_000_000) != (cpus * 1_000_000_000).to_integral_value():
            raise InvalidLimit(name, "precision", f"{name} {value} is too precise: at most 9 decimals")
    except InvalidOperation:
        raise InvalidLimit(name, "format", f"{name} must be a number, like 0.5") from None
    assert isinstance(cpus, Decimal)
    if cpus < MIN_CPUS:
        raise InvalidLimit(name, "min", f"{name} must be at least {MIN_CPUS} (1 ms of CPU per 100 ms)")
    return cpus


def parse_memory(value: Any, name: str) -> int:
    """Docker's RAMInBytes: bytes as an integer, or "100m", "1g", "512k" (binary, case-insensitive)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidLimit(name, "type", f"{name} must be bytes as an integer or a string like \"100m\"")
    if isinstance(value, str):
        m = _MEMORY.match(value)
        if not m:
            raise InvalidLimit(name, "format", f"{name} {value[:40]!r} is not a size like 100m, 1g or 512k")
        value = int(Decimal(m.group(1)) * _UNITS[m.group(2).lower()])
    if value < 0:
        raise InvalidLimit(name, "min", f"{name} cannot be negative")
    if value >= MAX_BYTES:
        raise InvalidLimit(name, "max", f"{name} must be below 2^63 - 2^16 bytes (the kernel reads more as unlimited)")
    return value


def _memory_limit(value: Any, name: str) -> int | None:
    if value is None:
        return None
    n = parse_memory(value, name)
    if name == "memory" and n < MIN_MEMORY:
        raise InvalidLimit(name, "min", f"memory must be at least 6m ({MIN_MEMORY} bytes), as in Docker")
    return n


def _memory_swap(value: Any, name: str) -> int | None:
    if value is None or value == -1 or value == "-1":
        return None
    return parse_memory(value, name)


def _int_in(value: Any, name: str, lo: int, hi: int, unlimited: int | None = None) -> int | None:
    if value is None:
        return None
    n = _number(value, name, integral=True)
    assert isinstance(n, int)
    if unlimited is not None and n == unlimited:
        return None
    if n < lo:
        raise InvalidLimit(name, "min", f"{name} must be at least {lo}" +
                           (f" (or {unlimited} for unlimited)" if unlimited is not None else ""))
    if n > hi:
        raise InvalidLimit(name, "max", f"{name} must be at most {hi}")
    return n


def parse_cpuset(value: Any, name: str = "cpuset_cpus") -> frozenset[int]:
    """A strict CPU list: "0-1,3"; no empty elements, reversed ranges, spaces or huge numbers."""
    if not isinstance(value, str) or not value:
        raise InvalidLimit(name, "type", f"{name} must be a CPU list string like \"0-1,3\"")
    cpus: set[int] = set()
    for part in value.split(","):
        m = _CPU_RANGE.match(part)
        if not m:
            raise InvalidLimit(name, "format", f"{name} {value[:40]!r} is not a CPU list like \"0-1,3\"")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise InvalidLimit(name, "format", f"{name}: range {part!r} runs backwards")
        if hi > MAX_CPU_ID:
            raise InvalidLimit(name, "max", f"{name}: CPU {hi} does not exist")
        cpus.update(range(lo, hi + 1))
    return frozenset(cpus)


def format_cpuset(cpus: frozenset[int]) -> str:
    """Canonical form: sorted, ranges collapsed ("0-3,5")."""
    out: list[str] = []
    ordered = sorted(cpus)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


_PARSERS = {
    "cpus": lambda v, n: None if v is None else parse_cpus(v, n),
    "cpu_period_us": lambda v, n: _int_in(v, n, *PERIOD_US),
    "cpu_quota_us": lambda v, n: _int_in(v, n, MIN_QUOTA_US, 2 ** 44, unlimited=-1),
    "cpu_shares": lambda v, n: _int_in(v, n, *SHARES),
    "cpuset_cpus": lambda v, n: None if v is None else format_cpuset(parse_cpuset(v, n)),
    "memory": _memory_limit,
    "memory_reservation": _memory_limit,
    "memory_swap": _memory_swap,
    "pids_limit": lambda v, n: _int_in(v, n, 1, PID_MAX_LIMIT, unlimited=-1),
}
