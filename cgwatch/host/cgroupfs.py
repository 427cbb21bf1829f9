"""Pure parsers of cgroup files, v1 and v2: contents in, values out (the readers are cgroup/v1.py,
cgroup/v2.py; Documentation/admin-guide/cgroup-v1/, cgroup-v2.rst, accounting/psi.rst).

The files every collection reads (usage, stat, blkio, PSI) are parsed from the bytes the read
returned, for only the keys used; the limit files, read once a refresh period, from text.
"""

from __future__ import annotations

import os

from ..model import CpuStats, IoDevice, Pressure
from .parse import FlatKeys, parse_int

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


CPUACCT_STAT = FlatKeys("user", "system")


def parse_cpuacct_stat(data: bytes, user_hz: int = USER_HZ) -> tuple[int | None, int | None]:
    """cpuacct.stat "user <ticks>" / "system <ticks>" -> (user_ns, system_ns)."""
    fields = CPUACCT_STAT.parse(data)
    scale = 1_000_000_000 // user_hz

    def ns(key: str) -> int | None:
        return fields[key] * scale if key in fields else None

    return ns("user"), ns("system")


def parse_blkio_throttle(bytes_data: bytes, ops_data: bytes | None) -> list[IoDevice]:
    """blkio.throttle.io_service_bytes / io_serviced: "MAJ:MIN Read|Write|... N", then "Total N"."""
    devices: dict[tuple[int, int], IoDevice] = {}

    def feed(data: bytes, read_attr: str, write_attr: str) -> None:
        for line in data.splitlines():
            fields = line.split()
            if len(fields) != 3 or b":" not in fields[0]:
                continue
            major, minor = (int(x) for x in fields[0].split(b":", 1))
            dev = devices.setdefault((major, minor), IoDevice(major, minor))
            if fields[1] == b"Read":
                setattr(dev, read_attr, int(fields[2]))
            elif fields[1] == b"Write":
                setattr(dev, write_attr, int(fields[2]))

    feed(bytes_data, "read_bytes", "write_bytes")
    if ops_data:
        feed(ops_data, "reads", "writes")
    return sorted(devices.values(), key=lambda d: (d.major, d.minor))


def parse_cpu_max(text: str) -> tuple[int | None, int]:
    """cpu.max "$MAX $PERIOD": quota (None for "max") and period, both in microseconds."""
    fields = text.split()
    if len(fields) != 2:
        raise ValueError(f"cpu.max: expected '$MAX $PERIOD', got {text.strip()!r}")
    quota = None if fields[0] == "max" else int(fields[0])
    return quota, int(fields[1])


# v2 cpu.stat: the usage keys always, the throttling keys with the cpu controller enabled.
CPU_STAT = FlatKeys("usage_usec", "user_usec", "system_usec", "nr_periods", "nr_throttled", "throttled_usec")


def parse_cpu_stat(data: bytes) -> CpuStats:
    """cpu.stat: usage_usec, user_usec, system_usec and, with the cpu controller, throttling."""
    f = CPU_STAT.parse(data)

    def ns(key: str) -> int | None:
        return f[key] * 1000 if key in f else None

    return CpuStats(usage_ns=ns("usage_usec"), user_ns=ns("user_usec"), system_ns=ns("system_usec"),
                    periods=f.get("nr_periods"), throttled_periods=f.get("nr_throttled"),
                    throttled_ns=ns("throttled_usec"))


def parse_io_stat(data: bytes) -> list[IoDevice]:
    """io.stat: "MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=.."."""
    out = []
    for line in data.splitlines():
        fields = line.split()
        if not fields:
            continue
        major, _, minor = fields[0].partition(b":")
        if not minor:
            continue
        f = dict(pair.split(b"=", 1) for pair in fields[1:] if b"=" in pair)
        out.append(IoDevice(int(major), int(minor),
                            read_bytes=int(f.get(b"rbytes", 0)), write_bytes=int(f.get(b"wbytes", 0)),
                            reads=int(f.get(b"rios", 0)), writes=int(f.get(b"wios", 0))))
    return sorted(out, key=lambda d: (d.major, d.minor))


def parse_pressure(data: bytes) -> Pressure:
    """A PSI file (Documentation/accounting/psi.rst): "some ... total=<us>" and "full ... total=<us>".

    Only the totals are used, so only they are parsed: no dict of the avg* fields per line.
    """
    some = full = None
    for line in data.splitlines():
        at = line.find(b" total=")
        if at < 0:
            continue
        end = line.find(b" ", at + 7)
        total = int(line[at + 7:end] if end >= 0 else line[at + 7:])
        if line.startswith(b"some "):
            some = total
        elif line.startswith(b"full "):
            full = total
    return Pressure(some_us=some, full_us=full)
