"""Processes and threads in each cgroup (cgroup.procs and tasks / cgroup.threads)."""

from __future__ import annotations

from collections.abc import Iterable

from ..exposition import Family
from .base import Collector, MetricSpec, ScrapeContext, build_families

SPECS = (
    MetricSpec("container_processes", "Number of processes running inside the container.",
               "gauge", lambda t: t[0]),
    MetricSpec("container_threads", "Number of threads running inside the container",
               "gauge", lambda t: t[1]),
)


class TasksCollector(Collector):
    name = "tasks"

    def collect(self, ctx: ScrapeContext) -> Iterable[Family]:
        rows = ((ctx.labels(c), (len(ctx.procs(c.path)), ctx.reader.threads(c.path))) for c in ctx.containers)
        return build_families(SPECS, rows)
