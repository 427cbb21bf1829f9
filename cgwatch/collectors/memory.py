"""Memory usage, working set, page-cache split, failures and the kernel's OOM-kill counter."""

from __future__ import annotations

from ..discovery.inventory import Container
from ..model import MemoryStats
from .base import Collector, MetricSpec, ScrapeContext

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
    MetricSpec("container_oom_kills_total",
               "OOM kills in this cgroup, from the kernel's own counter (v2 memory.events, v1 memory.oom_control).",
               "counter", lambda m: m.oom_kills),
)


class MemoryCollector(Collector):
    name = "memory"
    specs = SPECS

    def read(self, ctx: ScrapeContext, c: Container) -> MemoryStats | None:
        return ctx.reader.memory(c.path)
