"""Host overview: which containers use the host's CPU and memory, who is throttled, OOM-killed, stalled."""

from __future__ import annotations

from grafanalib.core import Dashboard

from .common import (BLUE, GREEN, HOST_UID, INSTANCE, ORANGE, RED, YELLOW, container_data_link, dashboard,
                     grid, instance_variable, rate, sel, stat, steps, timeseries)

# Containers are the cgroups with a name (cAdvisor's convention: systemd units and raw cgroups
# have name=""), so every panel here selects name!="".
C = (INSTANCE, 'name!=""')
CPU_TOTAL = 'cpu="total"'
BY = "sum by (instance, name)"
TOP = 10


def cpu_usage() -> str:
    return f'{BY} ({rate("container_cpu_usage_seconds_total", *C, CPU_TOTAL)})'


def panels() -> list:
    link = container_data_link()
    top_cpu = timeseries(
        f"Top {TOP} containers by CPU", (f"topk({TOP}, {cpu_usage()})", "{{name}} ({{instance}})"),
        unit="short", thresholds=steps((GREEN, None)), extra=link,
        description="CPU time used per second (1 = one full core), from container_cpu_usage_seconds_total.")
    top_memory = timeseries(
        f"Top {TOP} containers by memory working set",
        (f'topk({TOP}, {BY} ({sel("container_memory_working_set_bytes", *C)}))', "{{name}} ({{instance}})"),
        unit="bytes", thresholds=steps((GREEN, None)), extra=link,
        description="Working set (usage minus inactive page cache): what the OOM killer and the limit see.")
    throttling = timeseries(
        "CPU throttling ratio (throttled periods / periods)",
        (f'{BY} ({rate("container_cpu_cfs_throttled_periods_total", *C)})'
         f' / {BY} ({rate("container_cpu_cfs_periods_total", *C)})', "{{name}} ({{instance}})"),
        unit="percentunit", thresholds=steps((GREEN, None), (YELLOW, 0.1), (RED, 0.25)), show_thresholds=True,
        extra=link, softmax=1,
        description="Share of CFS periods in which the container hit its quota. Above 25% for 15 minutes "
                    "fires ContainerCpuThrottled.")
    oom = timeseries(
        "OOM kills",
        (f'{BY} (increase({sel("container_oom_kills_total", *C)}[$__rate_interval]))', "{{name}} ({{instance}})"),
        unit="short", thresholds=steps((GREEN, None), (RED, 1)), bars=True, extra=link,
        description="Processes killed by the kernel's OOM killer, from its per-cgroup counter "
                    "(memory.oom_control / memory.events). Any kill fires ContainerOomKilled.")
    memory_vs_limit = timeseries(
        "Memory working set / limit",
        (f'{sel("container_memory_working_set_bytes", *C)} / {sel("container_spec_memory_limit_bytes", *C)}',
         "{{name}} ({{instance}})"),
        unit="percentunit", thresholds=steps((GREEN, None), (ORANGE, 0.8), (RED, 0.9)), show_thresholds=True,
        extra=link, softmax=1,
        description="Containers without a memory limit have no line (no limit sample). Above 90% for "
                    "5 minutes fires ContainerMemoryNearLimit.")
    cpu_vs_quota = timeseries(
        "CPU usage / quota",
        (f'{rate("container_cpu_usage_seconds_total", *C, CPU_TOTAL)} / ignoring(cpu) '
         f'({sel("container_spec_cpu_quota", *C)} / {sel("container_spec_cpu_period", *C)})',
         "{{name}} ({{instance}})"),
        unit="percentunit", thresholds=steps((GREEN, None), (ORANGE, 0.8), (RED, 0.95)), show_thresholds=True,
        extra=link, softmax=1,
        description="CPU used against the CFS quota (quota/period CPUs). Containers without a quota "
                    "have no line.")
    psi = [timeseries(
        f"{title} pressure (PSI)",
        (f'{BY} ({rate(f"container_pressure_{resource}_waiting_seconds_total", *C)})',
         "{{name}} waiting ({{instance}})"),
        (f'{BY} ({rate(f"container_pressure_{resource}_stalled_seconds_total", *C)})',
         "{{name}} stalled ({{instance}})"),
        unit="percentunit", thresholds=steps((GREEN, None), (ORANGE, warn), (RED, crit)), show_thresholds=True,
        extra=link,
        description=f"Share of wall time in which at least one task (waiting, PSI 'some') or every "
                    f"non-idle task (stalled, PSI 'full') of the container waited for {resource}.")
        for resource, title, warn, crit in (("cpu", "CPU", 0.25, 0.5), ("memory", "Memory", 0.05, 0.1),
                                            ("io", "IO", 0.1, 0.3))]
    runtimes = stat(
        "Cgroups by runtime", (f'sum by (runtime) ({sel("cgwatch_containers", INSTANCE)})', "{{runtime}}"),
        unit="short", thresholds=steps((BLUE, None)),
        description="Cgroups cgwatch saw in its last collection, by the runtime that owns them.")
    return grid([
        [top_cpu, top_memory],
        [cpu_vs_quota, memory_vs_limit],
        [throttling, oom],
        psi,
        [runtimes],
    ])


def build() -> Dashboard:
    return dashboard(HOST_UID, "Every container on the selected hosts: CPU, memory, limits, throttling, "
                     "OOM kills and pressure, from cgwatch's cAdvisor-compatible metrics.",
                     panels(), [instance_variable()])
