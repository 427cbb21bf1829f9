"""CPU time and CFS throttling (cpuacct.* + cpu.stat on v1, cpu.stat on v2)."""

from __future__ import annotations

from ..discovery.inventory import Container
from ..model import CpuStats
from .base import Collector, MetricSpec, ScrapeContext, ns_to_s

SPECS = (
    MetricSpec("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.",
               "counter", lambda s: ns_to_s(s.usage_ns), labels=(("cpu", "total"),)),
    MetricSpec("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.",
               "counter", lambda s: ns_to_s(s.user_ns)),
    MetricSpec("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.",
               "counter", lambda s: ns_to_s(s.system_ns)),
    MetricSpec("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.",
               "counter", lambda s: s.periods),
    MetricSpec("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.",
               "counter", lambda s: s.throttled_periods),
    MetricSpec("container_cpu_cfs_throttled_seconds_total",
               "Total time duration the container has been throttled.",
               "counter", lambda s: ns_to_s(s.throttled_ns)),
)


class CpuCollector(Collector):
    name = "cpu"
    specs = SPECS

    def read(self, ctx: ScrapeContext, c: Container) -> CpuStats | None:
        return ctx.reader.cpu(c.path)
