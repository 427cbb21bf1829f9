"""CPU time and CFS throttling (cpuacct.* + cpu.stat on v1, cpu.stat on v2)."""

from __future__ import annotations

from typing import NamedTuple

from ..discovery.inventory import Container
from ..model import CpuStats
from .base import Collector, MetricSpec, ScrapeContext, ns_to_s


class CpuRow(NamedTuple):
    stats: CpuStats
    has_quota: bool


def _cfs(value: int | None, row: CpuRow) -> int | None:
    # cAdvisor emits the CFS counters only for a container with a quota (their condition is
    # Spec.Cpu.Quota != 0, lib/metrics/prometheus.go): without one nothing is throttled and the
    # kernel's counters stay 0 (Documentation/scheduler/sched-bwc.rst), zeros for every cgroup.
    return value if row.has_quota else None


SPECS = (
    MetricSpec("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.",
               "counter", lambda r: ns_to_s(r.stats.usage_ns), labels=(("cpu", "total"),)),
    MetricSpec("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.",
               "counter", lambda r: ns_to_s(r.stats.user_ns)),
    MetricSpec("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.",
               "counter", lambda r: ns_to_s(r.stats.system_ns)),
    MetricSpec("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.",
               "counter", lambda r: _cfs(r.stats.periods, r)),
    MetricSpec("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.",
               "counter", lambda r: _cfs(r.stats.throttled_periods, r)),
    MetricSpec("container_cpu_cfs_throttled_seconds_total",
               "Total time duration the container has been throttled.",
               "counter", lambda r: ns_to_s(_cfs(r.stats.throttled_ns, r))),
)


class CpuCollector(Collector):
    name = "cpu"
    specs = SPECS

    def read(self, ctx: ScrapeContext, c: Container) -> CpuRow | None:
        stats = ctx.reader.cpu(c.path)
        if stats is None:
            return None
        # Limits are read once per collection (exporter.OnceReader); the spec collector reads them too.
        return CpuRow(stats, ctx.reader.limits(c.path).cpu_quota_us is not None)
