"""`cgwatch ps` and `top`: per-container rates from two readings of the containers' JSON, sorted and laid out as text.

Pure: a reading is the list ``GET /api/v1/containers`` returns (or the same shapes built from
the host directly) with the monotonic time it was taken. CPU % and throttled % are rates, so
they need two readings; like below, a rate is computed only when the cgroup is the same one in
both (same path and same start time), so a recreated container never shows a fake delta.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# Runtimes that are not containers: `ps`/`top` leave them out unless asked for --all.
NOT_CONTAINERS = frozenset({"raw", "systemd"})
SORT_KEYS = ("cpu", "memory", "name", "pids")


@dataclass(frozen=True, slots=True)
class Reading:
    taken_at_s: float                  # when it was taken: the agent's collection time, or time.monotonic()
    containers: list[dict[str, Any]]   # the API's container JSON


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    name: str
    runtime: str
    cgroup: str
    cpu_percent: float | None          # of one CPU: 100 is one full CPU (as `docker stats`)
    cpus_limit: float | None           # quota / period; None = unlimited
    memory_bytes: int | None           # working set (usage minus inactive file cache), as `docker stats`
    memory_limit_bytes: int | None
    memory_percent: float | None
    throttled_percent: float | None    # share of CFS periods in the interval that were throttled
    oom_kills: int | None
    pids: int | None
    pids_limit: int | None


def _get(d: dict[str, Any] | None, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _delta(before: int | None, after: int | None) -> int | None:
    """A counter's increase; None when either side is missing or it went backwards (a reset)."""
    if before is None or after is None or after < before:
        return None
    return after - before


def cpu_percent(usage_before_ns: int | None, usage_after_ns: int | None, elapsed_s: float) -> float | None:
    """CPU time used in the interval over the interval's length, in % of one CPU."""
    used = _delta(usage_before_ns, usage_after_ns)
    if used is None or elapsed_s <= 0:
        return None
    return used / 1e9 / elapsed_s * 100


def throttled_percent(periods_before: int | None, periods_after: int | None, throttled_before: int | None,
                      throttled_after: int | None) -> float | None:
    """nr_throttled / nr_periods over the interval (scheduler/sched-bwc.rst). Periods only elapse
    while the cgroup has a quota and runnable tasks; none elapsed is 0 % throttled."""
    periods = _delta(periods_before, periods_after)
    throttled = _delta(throttled_before, throttled_after)
    if periods is None or throttled is None:
        return None
    return throttled / periods * 100 if periods else 0.0


def _same_cgroup(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.get("cgroup") == b.get("cgroup") and a.get("started_at") == b.get("started_at")


def row_of(after: dict[str, Any], before: dict[str, Any] | None, elapsed_s: float) -> Row:
    """One container's row: levels from ``after``, rates between ``before`` and ``after``."""
    if before is not None and not _same_cgroup(before, after):
        before = None
    cpu_b, cpu_a = _get(before, "usage", "cpu"), _get(after, "usage", "cpu")
    limits = after.get("limits") or {}
    memory = _get(after, "usage", "memory") or {}
    used = memory.get("working_set_bytes")
    if used is None:
        used = memory.get("usage_bytes")
    mem_limit = limits.get("memory_limit_bytes")
    tasks = _get(after, "usage", "tasks") or {}
    pids = tasks.get("pids_current")
    quota = limits.get("cpu_quota_us")
    return Row(
        id=after.get("id", ""), name=after.get("name") or after.get("id", ""), runtime=after.get("runtime", ""),
        cgroup=after.get("cgroup", ""),
        cpu_percent=cpu_percent(_get(cpu_b, "usage_ns"), _get(cpu_a, "usage_ns"), elapsed_s),
        cpus_limit=limits.get("cpus"),
        memory_bytes=used, memory_limit_bytes=mem_limit,
        memory_percent=used / mem_limit * 100 if used is not None and mem_limit else None,
        throttled_percent=None if quota is None else throttled_percent(
            _get(cpu_b, "periods"), _get(cpu_a, "periods"),
            _get(cpu_b, "throttled_periods"), _get(cpu_a, "throttled_periods")),
        oom_kills=memory.get("oom_kills"),
        pids=pids if pids is not None else tasks.get("threads"),
        pids_limit=limits.get("pids_max"),
    )


def rows_between(before: Reading | None, after: Reading) -> list[Row]:
    """A row per container in ``after``; rates need ``before`` (None: levels only)."""
    previous = {c.get("cgroup"): c for c in before.containers} if before is not None else {}
    elapsed = after.taken_at_s - before.taken_at_s if before is not None else 0.0
    return [row_of(c, previous.get(c.get("cgroup")), elapsed) for c in after.containers]


def select(rows: Iterable[Row], *, everything: bool = False, match: str | None = None) -> list[Row]:
    """Containers only (no systemd units, no raw cgroups) unless ``everything``; ``match`` is a
    glob on the name, the ID or the cgroup path."""
    out = []
    for r in rows:
        if not everything and r.runtime in NOT_CONTAINERS:
            continue
        if match and not any(fnmatch.fnmatchcase(v, match) for v in (r.name, r.id, r.cgroup)):
            continue
        out.append(r)
    return out


def sort_rows(rows: Iterable[Row], key: str) -> list[Row]:
    """Busiest first for cpu, memory and pids (unknown values last); A to Z for name."""
    if key == "name":
        return sorted(rows, key=lambda r: (r.name, r.cgroup))
    attr = {"cpu": "cpu_percent", "memory": "memory_bytes", "pids": "pids"}[key]

    def busiest(r: Row) -> tuple[bool, float, str]:
        v = getattr(r, attr)
        return (v is None, -(v or 0), r.name)
    return sorted(rows, key=busiest)


# ---------------------------------------------------------------------------------------------
# Text


def human_bytes(n: int | None) -> str:
    """Binary units, as `docker stats`: 1.5GiB, 12.3MiB, 512KiB, 100B."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{n}B"


def short_name(name: str) -> str:
    """A 64-hex container ID is shown as its first 12 characters, as `docker ps` does."""
    if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
        return name[:12]
    return name


def printable(text: str) -> str:
    """Control characters shown as '?', as ps(1) does: a name or command line must not drive the terminal."""
    return "".join(c if c.isprintable() else "?" for c in text)


def fit(text: str, width: int) -> str:
    """Cut to ``width`` with '~' where it was cut; a cgroup path keeps its end, which tells paths apart."""
    if len(text) <= width:
        return text
    return "~" + text[-(width - 1):] if text.startswith("/") else text[:width - 1] + "~"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}%"


def _cpus(v: float | None) -> str:
    return "unlimited" if v is None else f"{v:g}"


COLUMNS = (("NAME", 28, "<"), ("RUNTIME", 10, "<"), ("CPU %", 8, ">"), ("CPU LIMIT", 10, ">"),
           ("MEM USAGE / LIMIT", 24, ">"), ("MEM %", 7, ">"), ("THROTTLED", 10, ">"), ("OOM KILLS", 9, ">"),
           ("PIDS", 12, ">"))


def _cells(r: Row) -> tuple[str, ...]:
    limit = human_bytes(r.memory_limit_bytes) if r.memory_limit_bytes else "unlimited"
    memory = f"{human_bytes(r.memory_bytes)} / {limit}"
    pids = "-" if r.pids is None else str(r.pids)
    if r.pids_limit is not None:
        pids += f" / {r.pids_limit}"
    return (short_name(r.name), r.runtime, _pct(r.cpu_percent), _cpus(r.cpus_limit), memory,
            _pct(r.memory_percent), _pct(r.throttled_percent), "-" if r.oom_kills is None else str(r.oom_kills),
            pids)


def _line(cells: Sequence[str]) -> str:
    parts = []
    for (_, width, align), cell in zip(COLUMNS, cells):
        cell = fit(printable(cell), width)
        parts.append(f"{cell:{align}{width}}")
    return "  ".join(parts).rstrip()


def header_line() -> str:
    return _line([title for title, _, _ in COLUMNS])


def table_lines(rows: Iterable[Row]) -> list[str]:
    """The column header, then one line per row, in the order given."""
    return [header_line()] + [_line(_cells(r)) for r in rows]


def frame_json(rows: Sequence[Row], *, source: str, sort: str, interval_s: float | None) -> dict[str, Any]:
    """One refresh, for scripts (`ps --json`, one line of `top --json`)."""
    return {"source": source, "sort": sort, "interval_seconds": None if interval_s is None else round(interval_s, 3),
            "cpu_percent_of": "one CPU", "containers": [asdict(r) for r in rows]}
