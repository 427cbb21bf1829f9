"""Pure parsers of cgroup files, v1 and v2: text in, values out (the readers are cgroup/v1.py,
cgroup/v2.py; Documentation/admin-guide/cgroup-v1/, cgroup-v2.rst, accounting/psi.rst)."""

from __future__ import annotations

import os

from ..model import CpuStats, IoDevice, Pressure
from .parse import parse_flat_keyed, parse_int, parse_nested_keyed

# The kernel reports "no limit" as PAGE_COUNTER_MAX in bytes: LONG_MAX rounded down to a page
# (9223372036854771712 with 4 KiB pages, ...710272 with 64 KiB). Anything this large is unlimited.
V1_UNLIMITED_FLOOR = 0x7FFF_FFFF_FFFF_0000

# USER_HZ: the unit of cpuacct.stat (Documentation/admin-guide/cgroup-v1/cpuacct.rst).
USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_v1_limit(text: str) -> int | None:
    """memory.*limit_in_bytes: bytes, or None for the unlimited sentinel (or -1)."""
    value = parse_int(text)
    return None if value < 0 or value >= V1_UNLIMITED_FLOOR else value


def parse_cfs_quota(text: str) -> int | None:
    """cpu.cfs_quota_us: -1 means no quota (Documentation/scheduler/sched-bwc.rst)."""
    value = parse_int(text)
    return None if value < 0 else value


def parse_cpuacct_stat(text: str, user_hz: int = USER_HZ) -> tuple[int | None, int | None]:
    """cpuacct.stat "user <ticks>" / "system <ticks>" -> (user_ns, system_ns)."""
    fields = parse_flat_keyed(text)
    scale = 1_000_000_000 // user_hz

    def ns(key: str) -> int | None:
        return fields[key] * scale if key in fields else None

    return ns("user"), ns("system")


def parse_blkio_throttle(bytes_text: str, ops_text: str | None) -> list[IoDevice]:
    """blkio.throttle.io_service_bytes / io_serviced: "MAJ:MIN Read|Write|... N", then "Total N"."""
    devices: dict[tuple[int, int], IoDevice] = {}

    def feed(text: str, read_attr: str, write_attr: str) -> None:
        for line in text.splitlines():
            fields = line.split()
            if len(fields) != 3 or ":" not in fields[0]:
                continue
            major, minor = (int(x) for x in fields[0].split(":", 1))
            dev = devices.setdefault((major, minor), IoDevice(major, minor))
            if fields[1] == "Read":
                setattr(dev, read_attr, int(fields[2]))
            elif fields[1] == "Write":
                setattr(dev, write_attr, int(fields[2]))

    feed(bytes_text, "read_bytes", "write_bytes")
    if ops_text:
        feed(ops_text, "reads", "writes")
    return sorted(devices.values(), key=lambda d: (d.major, d.minor))


def parse_cpu_max(text: str) -> tuple[int | None, int]:
    """cpu.max "$MAX $PERIOD": quota (None for "max") and period, both in microseconds."""
    fields = text.split()
    if len(fields) != 2:
        raise ValueError(f"cpu.max: expected '$MAX $PERIOD', got {text.strip()!r}")
    quota = None if fields[0] == "max" else int(fields[0])
    return quota, int(fields[1])


def parse_cpu_stat(text: str) -> CpuStats:
    """cpu.stat: usage_usec, user_usec, system_usec and, with the cpu controller, throttling."""
    f = parse_flat_keyed(text)

    def ns(key: str) -> int | None:
        return f[key] * 1000 if key in f else None

    return CpuStats(usage_ns=ns("usage_usec"), user_ns=ns("user_usec"), system_ns=ns("system_usec"),
                    periods=f.get("nr_periods"), throttled_periods=f.get("nr_throttled"),
                    throttled_ns=ns("throttled_usec"))


def parse_io_stat(text: str) -> list[IoDevice]:
    """io.stat: "MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=.."."""
    out = []
    for key, fields in parse_nested_keyed(text).items():
        major, _, minor = key.partition(":")
        if not minor:
            continue
        out.append(IoDevice(int(major), int(minor),
                            read_bytes=int(fields.get("rbytes", 0)), write_bytes=int(fields.get("wbytes", 0)),
                            reads=int(fields.get("rios", 0)), writes=int(fields.get("wios", 0))))
    return sorted(out, key=lambda d: (d.major, d.minor))


def parse_pressure(text: str) -> Pressure:
    """A PSI file (Documentation/accounting/psi.rst): "some ... total=<us>" and "full ... total=<us>"."""
    lines = parse_nested_keyed(text)

    def total(kind: str) -> int | None:
        value = lines.get(kind, {}).get("total")
        return int(value) if value is not None else None

    return Pressure(some_us=total("some"), full_us=total("full"))
