"""Block I/O per device (v1 blkio.throttle.io_service{_bytes,d}, v2 io.stat).

cAdvisor labels these by device node ("/dev/vda"); the cgroup files name devices by
MAJ:MIN, so names come from /proc/partitions, read once per scrape.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from ..exposition import Family
from ..model import IoDevice
from .base import Collector, MetricSpec, ScrapeContext, build_families


class NamedDevice(NamedTuple):
    name: str  # "/dev/vda", or "MAJ:MIN" when /proc/partitions does not list the device
    io: IoDevice


DEVICE = (("device", lambda d: d.name),)
SPECS = (
    MetricSpec("container_fs_reads_bytes_total", "Cumulative count of bytes read",
               "counter", lambda d: d.io.read_bytes, labels=DEVICE),
    MetricSpec("container_fs_writes_bytes_total", "Cumulative count of bytes written",
               "counter", lambda d: d.io.write_bytes, labels=DEVICE),
    MetricSpec("container_fs_reads_total", "Cumulative count of reads completed",
               "counter", lambda d: d.io.reads, labels=DEVICE),
    MetricSpec("container_fs_writes_total", "Cumulative count of writes completed",
               "counter", lambda d: d.io.writes, labels=DEVICE),
)


class BlkioCollector(Collector):
    name = "blkio"
    specs = SPECS

    def collect(self, ctx: ScrapeContext) -> Iterable[Family]:
        names = ctx.proc.partitions()
        rows = ((ctx.labels(c), NamedDevice(names.get(dev.device, dev.device), dev))
                for c in ctx.containers for dev in ctx.reader.io(c.path))
        return build_families(self.specs, rows)
