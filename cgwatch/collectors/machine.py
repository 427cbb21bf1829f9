"""The machine's size (cAdvisor's machine_* metrics), which dashboards divide usage by."""

from __future__ import annotations

from collections.abc import Iterable

from ..exposition import Family
from .base import Collector, ScrapeContext


class MachineCollector(Collector):
    name = "machine"

    def collect(self, ctx: ScrapeContext) -> Iterable[Family]:
        cpus, memory = ctx.proc.machine()
        cores = Family("machine_cpu_cores", "Number of logical CPU cores.", "gauge")
        mem = Family("machine_memory_bytes", "Amount of memory installed on the machine.", "gauge")
        if cpus is not None:
            cores.add("", cpus)
        if memory is not None:
            mem.add("", memory)
        return [cores, mem]
