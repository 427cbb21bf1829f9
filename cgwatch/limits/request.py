"""Parsing a limits request: strict JSON in Docker's vocabulary, normalized, before any host check.

Every rejection is a domain error. InvalidRequest (400): the body is not a well-formed request
(not UTF-8, not JSON, duplicate keys, NaN/Infinity, not an object). InvalidLimit (422): a value
breaks a rule, named by ``field`` and a stable ``rule`` slug (type, format, min, max, precision,
unknown_field, combination, empty). What depends on the host (its CPUs, the parent's cpuset, the
relations between memory fields) is validate.py's to check.
"""

from __future__ import annotations

import enum
import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from ..errors import InvalidLimit, InvalidRequest
from .fields import LIMIT_FIELDS, MAX_BYTES, MAX_CPUS, MIN_CPUS, NANO, Kind, LimitField

# The limit fields, in the table's order (fields.py declares them).
FIELDS = tuple(field.name for field in LIMIT_FIELDS)
# Flags say how to apply a request, not what the limits are.
FLAGS = ("force", "keep_for_name")

# Beyond any machine cgwatch serves (validate.py checks the real CPUs); the cap keeps a range like
# "0-9223372036854775807" from building a huge set.
MAX_CPU_ID = 4095

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The decimal syntax Docker's ParseCPUs accepts (big.Rat.SetString): sign, point, exponent.
_DECIMAL = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?", re.IGNORECASE | re.ASCII)
# docker/go-units RAMInBytes: binary multiples, case-insensitive, optional "i"/"b", one space.
_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([kmgtp]?)i?b?", re.IGNORECASE | re.ASCII)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_CPU_RANGE = re.compile(r"(\d+)(?:-(\d+))?", re.ASCII)
_KINDS = {bool: "a boolean", str: "a string", list: "a list", dict: "an object", int: "an integer",
          Decimal: "a fractional number", type(None): "null"}

Parser = Callable[[Any, str], object]


class Mode(enum.Enum):
    PUT = "put"          # replace: every limit not sent becomes unlimited
    PATCH = "patch"      # change only the limits sent
    DELETE = "delete"    # remove every limit


@dataclass(frozen=True, slots=True)
class LimitRequest:
    mode: Mode
    # Only the fields sent, normalized: cpus Decimal; cpu_*, pids_limit int; memory* int bytes;
    # cpuset_cpus canonical "0-1,3"; None = sent as null, or Docker's -1 "unlimited". Read-only.
    fields: Mapping[str, object]
    force: bool = False
    keep_for_name: bool = False


def parse_limit_request(body: bytes, mode: Mode) -> LimitRequest:
    """The request ``body`` makes for ``mode``, each value checked alone and normalized."""
    doc = _decode(body, mode)
    sent = _limit_names(doc, mode)
    flags = {name: _flag(doc.get(name, False), name) for name in FLAGS}
    fields = {name: _PARSERS[name](doc[name], name) for name in sent}
    return LimitRequest(mode, MappingProxyType(fields), **flags)


def _decode(body: bytes, mode: Mode) -> dict[str, Any]:
    if not body.strip():
        if mode is Mode.DELETE:
            return {}
        raise InvalidRequest('the body is empty: send a JSON object of limits, like {"cpus": 0.5}')
    try:
        doc = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_float=Decimal,
                         parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise InvalidRequest("the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
    except (ValueError, InvalidOperation):
        # int() past its 4300-digit limit, or an exponent no Decimal holds (1e999999999999999999).
        raise InvalidRequest("a number in the body is out of range (too many digits, or too large an exponent)") from None
    except RecursionError:
        raise InvalidRequest("the body is nested too deeply") from None
    if not isinstance(doc, dict):
        raise InvalidRequest(f"the body must be a JSON object of limits, not {_kind(doc)}")
    return doc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Which of two values would win is parser-specific; a proxy and cgwatch could disagree.
    doc = dict(pairs)
    if len(doc) != len(pairs):
        dupes = [key for key, n in Counter(key for key, _ in pairs).items() if n > 1]
        raise InvalidRequest(f"duplicate key(s) in the body: {_names(dupes)}")
    return doc


def _no_constant(name: str) -> Any:
    raise InvalidRequest(f"{name} is not JSON; limits are finite numbers")


def _limit_names(doc: Mapping[str, Any], mode: Mode) -> list[str]:
    """The limit fields sent, after the checks on which fields a request may hold."""
    unknown = sorted(set(doc) - set(FIELDS) - set(FLAGS))
    if unknown:
        raise InvalidLimit(unknown[0], "unknown_field", f"unknown field(s) {_names(unknown)}; the limits "
                           f"are {', '.join(FIELDS)} and the flags {', '.join(FLAGS)}")
    sent = [name for name in FIELDS if name in doc]
    if mode is Mode.DELETE and sent:
        raise InvalidLimit(sent[0], "combination", f"DELETE removes every limit and takes no limit fields "
                           f"(got {sent[0]}); to remove one limit, PATCH it to null")
    if mode is not Mode.DELETE and not sent:
        hint = "; to remove every limit, use DELETE" if mode is Mode.PUT else ""
        raise InvalidLimit("", "empty", f"the request names no limit to set{hint}")
    if "cpus" in sent and {"cpu_period_us", "cpu_quota_us"} & doc.keys():
        # Docker: "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set".
        raise InvalidLimit("cpus", "combination",
                           "cpus sets the quota and period itself: send cpus or cpu_quota_us/cpu_period_us")
    return sent


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise _type_error(name, "true or false", value)
    return value


def parse_cpus(value: object, field: str = "cpus") -> Decimal:
    """Docker's ParseCPUs (opts/opts.go): a number or numeric string ("0.5", "1e3") whose value
    times 1e9 is a whole number of nano-CPUs, at least 0.01. The host's CPUs: validate.py."""
    cpus = _decimal(value, field)
    if cpus < MIN_CPUS:
        raise InvalidLimit(field, "min", f"{field} must be at least {MIN_CPUS} (1 ms of CPU per 100 ms)")
    if cpus > MAX_CPUS:
        raise InvalidLimit(field, "max", f"{field} must be at most {MAX_CPUS} (Docker's nano-CPU count "
                           "is a 64-bit integer)")
    # Exact like Docker's big.Rat; the bounds above keep the fraction small.
    nano = Fraction(cpus) * NANO
    if nano.denominator != 1:
        raise InvalidLimit(field, "precision", f"{field} is too precise: at most 9 decimals (Docker counts "
                           "billionths of a CPU)")
    return Decimal(nano.numerator) / NANO  # one spelling per value: "0.50" and "5e-1" are 0.5


def _decimal(value: object, field: str) -> Decimal:
    if isinstance(value, str):
        if _DECIMAL.fullmatch(_text(value, field)):
            try:
                return Decimal(value)
            except InvalidOperation:  # an exponent no Decimal holds
                pass
        raise InvalidLimit(field, "format", f"{field} {_show(value)} is not a number like 0.5 or \"0.5\"")
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return Decimal(value)
    raise _type_error(field, 'a number like 0.5 or a string like "0.5"', value)


def parse_memory(value: object, field: str) -> int:
    """Docker's RAMInBytes (docker/go-units size.go): bytes as a JSON integer, or a string such as
    "100m", "1.5g", "512k", "100MiB", "100 MB" (binary multiples; a fraction of a byte is dropped,
    as Docker's int64 conversion does). Never negative, and below the kernel's "max" (MAX_BYTES)."""
    if isinstance(value, str):
        n = _size(value, field)
    else:
        n = _integer(value, field, 'bytes as an integer, or a size string like "100m"')
    if n < 0:
        raise InvalidLimit(field, "min", f"{field} cannot be negative")
    if n >= MAX_BYTES:
        raise InvalidLimit(field, "max", f"{field} must be below {MAX_BYTES} bytes (8 EiB - 64 KiB); the "
                           "kernel would read more as no limit (send null for that)")
    return n


def _size(text: str, field: str) -> int:
    m = _SIZE.fullmatch(_text(text, field))
    if not m:
        raise InvalidLimit(field, "format",
                           f'{field} {_show(text)} is not a size like "100m", "1.5g", "512k" or "100MiB"')
    return int(Decimal(m[1]) * _UNITS[m[2].lower()])


def _bytes(lo: int, *, minus_one_unlimited: bool = False) -> Parser:
    """A size of at least ``lo`` bytes; null resets it (and -1 or "-1" too, where Docker says
    "unlimited", as for --memory-swap). Docker refuses memory and memory_reservation below 6 MiB
    (daemon_unix.go)."""

    def parse(value: Any, field: str) -> int | None:
        if value is None or (minus_one_unlimited and (value == "-1" or (type(value) is int and value == -1))):
            return None
        n = parse_memory(value, field)
        if n < lo:
            raise InvalidLimit(field, "min", f"{field} must be at least {lo >> 20} MiB ({lo} bytes), as in Docker")
        return n
    return parse


def _bounded(lo: int, hi: int, *, minus_one_unlimited: bool = False) -> Parser:
    """An integer field in [lo, hi]; null resets it (and -1 too, where Docker says "unlimited")."""
    reset = " (or -1 or null for no limit)" if minus_one_unlimited else " (or null for the default)"
    wanted = f"an integer from {lo} to {hi}{reset}"

    def parse(value: Any, field: str) -> int | None:
        if value is None or (minus_one_unlimited and type(value) is int and value == -1):
            return None
        n = _integer(value, field, wanted)
        if not lo <= n <= hi:
            raise InvalidLimit(field, "min" if n < lo else "max", f"{field} must be {wanted}")
        return n
    return parse


def _integer(value: object, field: str, wanted: str) -> int:
    # A JSON integer only: true is not 1, 1000.0 and "1000" are not integers (nor in Docker's API).
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _type_error(field, wanted, value)


def parse_cpuset(value: object, field: str = "cpuset_cpus") -> frozenset[int]:
    """A CPU list as cpuset.cpus takes it ("0-1,3"; cgroup-v2.rst "cpuset.cpus"), strictly: no
    empty elements, reversed ranges, spaces, signs, or CPU numbers above MAX_CPU_ID."""
    if not isinstance(value, str):
        raise _type_error(field, 'a CPU list string like "0-1,3"', value)
    cpus: set[int] = set()
    for part in _text(value, field).split(","):
        m = _CPU_RANGE.fullmatch(part)
        if not m:
            raise InvalidLimit(field, "format", f'{field} {_show(value)} is not a CPU list like "0-1,3" '
                               "(numbers and ranges, comma-separated, no spaces)")
        first, last = _cpu_id(m[1], field), _cpu_id(m[2] or m[1], field)
        if last < first:
            raise InvalidLimit(field, "format", f"{field}: the range {part!r} runs backwards; write {last}-{first}")
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def _cpu_id(digits: str, field: str) -> int:
    # Judged on the text's length first: int() of a 5,000-digit string is itself an error.
    n = int(digits) if len(digits) <= 5 else MAX_CPU_ID + 1
    if n > MAX_CPU_ID:
        raise InvalidLimit(field, "max", f"{field}: CPU numbers go from 0 to {MAX_CPU_ID}")
    return n


def format_cpuset(cpus: frozenset[int]) -> str:
    """The kernel's own spelling of a CPU list: sorted, runs collapsed ("0-3,5")."""
    runs = []
    # Consecutive CPUs share (cpu - position): each group is one run.
    for _, group in itertools.groupby(enumerate(sorted(cpus)), lambda pair: pair[1] - pair[0]):
        ids = [cpu for _, cpu in group]
        runs.append(str(ids[0]) if len(ids) == 1 else f"{ids[0]}-{ids[-1]}")
    return ",".join(runs)


def _cpuset_field(value: Any, field: str) -> str | None:
    return None if value is None else format_cpuset(parse_cpuset(value, field))


def _text(value: str, field: str) -> str:
    # Values end up in cgroup files: a newline could smuggle a second write ("50000 100000\nmax").
    if _CONTROL.search(value):
        raise InvalidLimit(field, "format", f"{field} must not contain control characters such as newlines")
    return value


def _type_error(field: str, wanted: str, value: object) -> InvalidLimit:
    return InvalidLimit(field, "type", f"{field} must be {wanted}, not {_kind(value)}")


def _kind(value: object) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def _show(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _names(names: list[str]) -> str:
    return ", ".join(_show(name) for name in names[:10]) + (" ..." if len(names) > 10 else "")


def _cpus_field(value: Any, field: str) -> Decimal | None:
    return None if value is None else parse_cpus(value, field)


def _parser(field: LimitField) -> Parser:
    """A row of the table as a parser: its kind, held to its bounds."""
    if field.kind is Kind.CPUS:       # bounds: MIN_CPUS and MAX_CPUS, in parse_cpus
        return _cpus_field
    if field.kind is Kind.CPU_LIST:
        return _cpuset_field
    assert field.bounds is not None, field.name
    lo, hi = (int(bound) for bound in field.bounds)
    if field.kind is Kind.BYTES:      # hi: below MAX_BYTES, in parse_memory
        return _bytes(lo, minus_one_unlimited=field.minus_one_unlimited)
    return _bounded(lo, hi, minus_one_unlimited=field.minus_one_unlimited)


_PARSERS: dict[str, Parser] = {field.name: _parser(field) for field in LIMIT_FIELDS}
