"""The limits the kernel enforces now (cAdvisor's container_spec_*), and start times.

Unlimited is the absence of a sample: no ``container_spec_cpu_quota`` without a quota and no
``container_spec_memory_limit_bytes`` without a memory limit (cAdvisor omits the quota too, but
writes 0 for any memory value above 2^62, its specMemoryValue, which makes usage / limit a
division by zero).
"""

from __future__ import annotations

from ..discovery.inventory import Container
from ..model import Limits
from .base import Collector, MetricSpec, ScrapeContext


def _period(lim: Limits) -> int | None:
    # The period means nothing without a quota, so it goes with it (cAdvisor emits it always:
    # a stated difference, README "Metrics").
    return lim.cpu_period_us if lim.cpu_quota_us is not None else None


SPECS = (
    MetricSpec("container_spec_cpu_quota", "CPU quota of the container.", "gauge", lambda r: r[0].cpu_quota_us),
    MetricSpec("container_spec_cpu_period", "CPU period of the container.", "gauge", lambda r: _period(r[0])),
    MetricSpec("container_spec_cpu_shares", "CPU share of the container.", "gauge", lambda r: r[0].cpu_shares),
    MetricSpec("container_spec_memory_limit_bytes", "Memory limit for the container.",
               "gauge", lambda r: r[0].memory_limit_bytes),
    MetricSpec("container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container.",
               "gauge", lambda r: r[0].memory_reservation_bytes),
    MetricSpec("container_spec_memory_swap_limit_bytes",
               "Memory swap limit for the container (memory plus swap, as Docker's --memory-swap).",
               "gauge", lambda r: r[0].memory_swap_limit_bytes),
    MetricSpec("container_spec_pids_max", "Maximum number of tasks (pids.max) of the container.",
               "gauge", lambda r: r[0].pids_max),
    MetricSpec("container_start_time_seconds", "Start time of the container since unix epoch in seconds.",
               "gauge", lambda r: r[1]),
)


class SpecCollector(Collector):
    name = "spec"
    specs = SPECS

    def read(self, ctx: ScrapeContext, c: Container) -> tuple[Limits, float | None]:
        start = c.started_at if c.started_at is not None else ctx.reader.created(c.path)
        return ctx.reader.limits(c.path), start
