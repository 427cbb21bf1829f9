"""Memory usage, working set, page-cache split, failures, page faults, OOM kills (each cgroup's and the host's)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from ..exposition import Family
from .base import Collector, MetricSpec, ScrapeContext, build_families

SPECS = (
    MetricSpec("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed",
               "gauge", lambda m: m.usage_bytes),
    MetricSpec("container_memory_working_set_bytes", "Current working set in bytes.",
               "gauge", lambda m: m.working_set_bytes),
    MetricSpec("container_memory_rss", "Size of RSS in bytes.", "gauge", lambda m: m.rss_bytes),
    MetricSpec("container_memory_cache", "Number of bytes of page cache memory.", "gauge", lambda m: m.cache_bytes),
    MetricSpec("container_memory_swap", "Container swap usage in bytes.", "gauge", lambda m: m.swap_bytes),
    MetricSpec("container_memory_mapped_file", "Size of memory mapped files in bytes.",
               "gauge", lambda m: m.mapped_file_bytes),
    MetricSpec("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes",
               "gauge", lambda m: m.max_usage_bytes),
    # cAdvisor declares this a counter; a counter without the _total suffix fails
    # `promtool check metrics`, so it is untyped here, under cAdvisor's name.
    MetricSpec("container_memory_failcnt", "Number of memory usage hits limits",
               "untyped", lambda m: m.failcnt),
    # A living cgroup's value is the kernel's own; a removed container's (kept for
    # --removed-retention, deaths/) adds the kill that ended it, which its counter went away with.
    MetricSpec("container_oom_kills_total",
               "OOM kills in this cgroup, from the kernel's own counter (v2 memory.events, v1 memory.oom_control); "
               "a removed container's adds the kill that ended it.",
               "counter", lambda m: m.oom_kills),
    # cAdvisor's name for the OOM-kill counter; the same value, so queries written for either work.
    MetricSpec("container_oom_events_total", "Count of out of memory events observed for the container",
               "counter", lambda m: m.oom_kills),
)


class Fault(NamedTuple):
    """One of container_memory_failures_total's four samples a container and its MemoryStats field."""

    failure_type: str
    scope: str
    field: str


# In cAdvisor's order (lib/metrics/prometheus.go).
FAULTS = (Fault("pgfault", "container", "pgfault"), Fault("pgmajfault", "container", "pgmajfault"),
          Fault("pgfault", "hierarchy", "hierarchy_pgfault"),
          Fault("pgmajfault", "hierarchy", "hierarchy_pgmajfault"))
FAILURES = MetricSpec("container_memory_failures_total", "Cumulative count of memory allocation failures.",
                      "counter", lambda row: getattr(row[0], row[1].field),
                      labels=(("failure_type", lambda row: row[1].failure_type), ("scope", lambda row: row[1].scope)))
# Every OOM kill on the host, whatever cgroup the victim was in, even one removed since: the count no
# cgroup keeps. node_exporter's name for it is node_vmstat_oom_kill; cAdvisor has none (its
# container_oom_events_total{id="/"} counts OOMs of the root cgroup, not the host's kills), so it is
# cgwatch's own, with no labels, and not the root cgroup's series (v1's root memory.oom_control
# counts only tasks in the root cgroup itself).
HOST_OOM_KILLS = MetricSpec("cgwatch_host_oom_kills_total",
                            "OOM kills on the whole host since boot, in any cgroup (/proc/vmstat oom_kill).",
                            "counter", lambda kills: kills)


class MemoryCollector(Collector):
    name = "memory"
    specs = (*SPECS, FAILURES, HOST_OOM_KILLS)

    def collect(self, ctx: ScrapeContext) -> Iterable[Family]:
        rows = [(ctx.labels(c), m) for c in ctx.containers if (m := ctx.reader.memory(c.path)) is not None]
        return [*build_families(SPECS, rows),
                *build_families((FAILURES,), ((labels, (m, f)) for labels, m in rows for f in FAULTS)),
                *build_families((HOST_OOM_KILLS,), [("", ctx.proc.oom_kills())])]
