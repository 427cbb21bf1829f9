"""Processes and threads in each cgroup, and its task limit (cgroup.procs, pids.current, pids.max)."""

from __future__ import annotations

from typing import NamedTuple

from ..discovery.inventory import Container
from .base import Collector, MetricSpec, ScrapeContext


class TaskCounts(NamedTuple):
    processes: int
    threads: int | None
    threads_max: int | None  # None: unlimited, no sample


SPECS = (
    MetricSpec("container_processes", "Number of processes running inside the container.",
               "gauge", lambda t: t.processes),
    MetricSpec("container_threads", "Number of threads running inside the container",
               "gauge", lambda t: t.threads),
    # cAdvisor's name for pids.max. It writes 0 for "max"; here unlimited is no sample, as for
    # every other limit (container_spec_pids_max, kept for a release, is the same value).
    MetricSpec("container_threads_max", "Maximum number of threads allowed inside the container (pids.max); no sample when unlimited.",
               "gauge", lambda t: t.threads_max),
)


class TasksCollector(Collector):
    name = "tasks"
    specs = SPECS

    def read(self, ctx: ScrapeContext, c: Container) -> TaskCounts:
        # cAdvisor's ThreadsCurrent is pids.current: every task of the cgroup's subtree, so
        # /docker or a pod's cgroup shows its containers' threads (cgroup-v1/pids.rst,
        # cgroup-v2.rst "pids.current"); the reader falls back to the cgroup's own threads.
        # Processes from the PIDs read once per scrape (ctx.procs), not cgroup.procs again.
        return TaskCounts(len(ctx.procs(c.path)), ctx.reader.threads(c.path), ctx.reader.limits(c.path).pids_max)
