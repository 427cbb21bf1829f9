"""Processes and threads in each cgroup (cgroup.procs and tasks / cgroup.threads)."""

from __future__ import annotations

from ..discovery.inventory import Container
from .base import Collector, MetricSpec, ScrapeContext

SPECS = (
    MetricSpec("container_processes", "Number of processes running inside the container.",
               "gauge", lambda t: t[0]),
    MetricSpec("container_threads", "Number of threads running inside the container",
               "gauge", lambda t: t[1]),
)


class TasksCollector(Collector):
    name = "tasks"
    specs = SPECS

    def read(self, ctx: ScrapeContext, c: Container) -> tuple[int, int | None]:
        return len(ctx.procs(c.path)), ctx.reader.threads(c.path)
