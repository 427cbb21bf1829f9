"""The machine's size (cAdvisor's machine_* metrics), which dashboards divide usage by."""

from __future__ import annotations

from collections.abc import Iterable

from ..exposition import Family
from .base import Collector, MetricSpec, ScrapeContext, build_families

SPECS = (
    MetricSpec("machine_cpu_cores", "Number of logical CPU cores.", "gauge", lambda m: m[0]),
    MetricSpec("machine_memory_bytes", "Amount of memory installed on the machine.", "gauge", lambda m: m[1]),
)


class MachineCollector(Collector):
    name = "machine"
    specs = SPECS

    def collect(self, ctx: ScrapeContext) -> Iterable[Family]:
        # One row, the machine's (online CPUs, memory bytes), with no labels: these are host series.
        return build_families(self.specs, [("", ctx.proc.machine())])
