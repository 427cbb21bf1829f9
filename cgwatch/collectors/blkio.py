"""Block I/O per device (v1 blkio.throttle.io_service{_bytes,d}, v2 io.stat).

cAdvisor labels these by device node ("/dev/vda"); the cgroup files name devices by
MAJ:MIN, so names come from /proc/partitions, read once per scrape.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..exposition import Family, escape_label_value
from ..host.fsread import read_text
from .base import Collector, ScrapeContext

SPECS = (
    ("container_fs_reads_bytes_total", "Cumulative count of bytes read", "read_bytes"),
    ("container_fs_writes_bytes_total", "Cumulative count of bytes written", "write_bytes"),
    ("container_fs_reads_total", "Cumulative count of reads completed", "reads"),
    ("container_fs_writes_total", "Cumulative count of writes completed", "writes"),
)


def parse_partitions(text: str) -> dict[str, str]:
    """/proc/partitions "major minor #blocks name" -> {"MAJ:MIN": "/dev/name"}."""
    out = {}
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) == 4 and f[0].isdigit():
            out[f"{f[0]}:{f[1]}"] = f"/dev/{f[3]}"
    return out


class BlkioCollector(Collector):
    name = "blkio"

    def collect(self, ctx: ScrapeContext) -> Iterable[Family]:
        names = parse_partitions(read_text(ctx.proc.root / "partitions") or "")
        families = [(Family(name, help_, "counter"), attr) for name, help_, attr in SPECS]
        for c in ctx.containers:
            devices = ctx.reader.io(c.path)
            if not devices:
                continue
            base = ctx.labels(c)
            for dev in devices:
                device = escape_label_value(names.get(dev.device, dev.device))
                labels = f'device="{device}",{base}'
                for family, attr in families:
                    family.add(labels, getattr(dev, attr))
        return [f for f, _ in families]
