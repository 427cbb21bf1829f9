"""Processes and threads in each cgroup (cgroup.procs and tasks / cgroup.threads)."""

from __future__ import annotations

from collections.abc import Iterable

from ..exposition import Family
from .base import Collector, MetricSpec, ScrapeContext, build_families

SPECS = (
    MetricSpec("container_processes", "Number of processes running inside the container.",
               "gauge", lambda t: t.processes),
    MetricSpec("container_threads", "Number of threads running inside the container",
               "gauge", lambda t: t.threads),
)


class TasksCollector(Collector):
    name = "tasks"

    def collect(self, ctx: ScrapeContext) -> Iterable[Family]:
        return build_families(SPECS, ((ctx.labels(c), ctx.reader.tasks(c.path)) for c in ctx.containers))
