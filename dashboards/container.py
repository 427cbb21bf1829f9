"""One container, chosen by $name: its usage against its limits, and the limits cgwatch holds it to."""

from __future__ import annotations

from grafanalib.core import Dashboard

from .common import (BLUE, CONTAINER_UID, GREEN, INSTANCE, NAME, ORANGE, RED, YELLOW, dashboard, grid,
                     instance_variable, name_variable, rate, sel, steps, timeseries)

C = (INSTANCE, NAME)
CPU_TOTAL = 'cpu="total"'
BY = "sum by (instance, name)"
PLAIN = steps((GREEN, None))


def desired(resource: str) -> str:
    return sel("cgwatch_limit_desired", *C, f'resource="{resource}"')


def cpu_panels() -> list:
    cpu = timeseries(
        "CPU usage vs quota",
        (f'{BY} ({rate("container_cpu_usage_seconds_total", *C, CPU_TOTAL)})', "usage ({{instance}})"),
        (f'{BY} ({rate("container_cpu_user_seconds_total", *C)})', "user ({{instance}})"),
        (f'{BY} ({rate("container_cpu_system_seconds_total", *C)})', "system ({{instance}})"),
        (f'{BY} ({sel("container_spec_cpu_quota", *C)} / {sel("container_spec_cpu_period", *C)})',
         "quota ({{instance}})"),
        unit="short", thresholds=PLAIN,
        description="CPUs used (1 = one full core) beside the CFS quota in CPUs (quota / period). "
                    "No quota line: the container has no quota.")
    throttled = timeseries(
        "CPU throttling",
        (f'{BY} ({rate("container_cpu_cfs_throttled_seconds_total", *C)})', "throttled s/s ({{instance}})"),
        (f'{BY} ({rate("container_cpu_cfs_throttled_periods_total", *C)})'
         f' / {BY} ({rate("container_cpu_cfs_periods_total", *C)})', "throttled periods ratio ({{instance}})"),
        unit="short", thresholds=steps((GREEN, None), (YELLOW, 0.1), (RED, 0.25)), show_thresholds=True,
        description="Seconds per second the container's tasks were held back by the quota, and the share "
                    "of CFS periods that hit it (ContainerCpuThrottled fires above 0.25).")
    return [cpu, throttled]


def memory_panels() -> list:
    memory = timeseries(
        "Memory working set vs limit and reservation",
        (f'{BY} ({sel("container_memory_working_set_bytes", *C)})', "working set ({{instance}})"),
        (f'{BY} ({sel("container_memory_usage_bytes", *C)})', "usage ({{instance}})"),
        (f'{BY} ({sel("container_spec_memory_limit_bytes", *C)})', "limit ({{instance}})"),
        (f'{BY} ({sel("container_spec_memory_reservation_limit_bytes", *C)})', "reservation ({{instance}})"),
        unit="bytes", thresholds=PLAIN,
        description="Working set (usage minus inactive page cache) against the hard limit and the soft "
                    "reservation. No limit or reservation line: none is set.")
    split = timeseries(
        "Memory: RSS, cache, swap, mapped files",
        (f'{BY} ({sel("container_memory_rss", *C)})', "rss ({{instance}})"),
        (f'{BY} ({sel("container_memory_cache", *C)})', "cache ({{instance}})"),
        (f'{BY} ({sel("container_memory_swap", *C)})', "swap ({{instance}})"),
        (f'{BY} ({sel("container_memory_mapped_file", *C)})', "mapped file ({{instance}})"),
        unit="bytes", thresholds=PLAIN, stacked=False,
        description="Anonymous memory (RSS) grows with the workload; page cache is reclaimable.")
    return [memory, split]


def io_panels() -> list:
    network = timeseries(
        "Network",
        (f'sum by (instance, name, interface) ({rate("container_network_receive_bytes_total", *C)})',
         "rx {{interface}} ({{instance}})"),
        (f'-sum by (instance, name, interface) ({rate("container_network_transmit_bytes_total", *C)})',
         "tx {{interface}} ({{instance}})"),
        unit="Bps", thresholds=PLAIN,
        description="Bytes per second by interface of the container's own network namespace (received "
                    "up, transmitted down). Containers on the host network have none.")
    net_errors = timeseries(
        "Network errors and drops",
        *[(f'sum by (instance, name, interface) ({rate(f"container_network_{m}_total", *C)})',
           f"{m.replace('_', ' ')} {{{{interface}}}} ({{{{instance}}}})")
          for m in ("receive_errors", "receive_packets_dropped", "transmit_errors", "transmit_packets_dropped")],
        unit="pps", thresholds=steps((GREEN, None), (RED, 1)),
        description="Packets per second lost or broken, by interface.")
    disk = timeseries(
        "Block IO bytes",
        (f'sum by (instance, name, device) ({rate("container_fs_reads_bytes_total", *C)})',
         "read {{device}} ({{instance}})"),
        (f'-sum by (instance, name, device) ({rate("container_fs_writes_bytes_total", *C)})',
         "write {{device}} ({{instance}})"),
        unit="Bps", thresholds=PLAIN,
        description="Bytes per second by device (reads up, writes down), from blkio.throttle / io.stat.")
    iops = timeseries(
        "Block IO operations",
        (f'sum by (instance, name, device) ({rate("container_fs_reads_total", *C)})',
         "reads {{device}} ({{instance}})"),
        (f'-sum by (instance, name, device) ({rate("container_fs_writes_total", *C)})',
         "writes {{device}} ({{instance}})"),
        unit="iops", thresholds=PLAIN, description="Operations per second by device (reads up, writes down).")
    return [network, net_errors, disk, iops]


def pressure_panel():
    queries = [(f'{BY} ({rate(f"container_pressure_{r}_{kind}_seconds_total", *C)})',
                f"{r} {kind} ({{{{instance}}}})")
               for r in ("cpu", "memory", "io") for kind in ("waiting", "stalled")]
    return timeseries(
        "Pressure (PSI)", *queries, unit="percentunit",
        thresholds=steps((GREEN, None), (ORANGE, 0.1), (RED, 0.5)), show_thresholds=True, softmax=1,
        description="Share of wall time in which at least one task (waiting, PSI 'some') or all non-idle "
                    "tasks (stalled, PSI 'full') waited for CPU, memory or IO.")


def task_panels() -> list:
    tasks = timeseries(
        "Processes and threads",
        (f'{BY} ({sel("container_processes", *C)})', "processes ({{instance}})"),
        (f'{BY} ({sel("container_threads", *C)})', "threads ({{instance}})"),
        (f'{BY} ({sel("container_threads_max", *C)})', "pids.max ({{instance}})"),
        unit="short", thresholds=PLAIN, description="Processes in the cgroup and threads in it and its descendants (pids.current), "
                                       "beside pids.max when it is set.")
    oom = timeseries(
        "OOM kills",
        (f'{BY} (increase({sel("container_oom_kills_total", *C)}[$__rate_interval]))', "OOM kills ({{instance}})"),
        unit="short", thresholds=steps((GREEN, None), (RED, 1)), bars=True,
        description="Processes of this container killed by the kernel's OOM killer.")
    return [tasks, oom]


def limit_panels() -> list:
    cpu = timeseries(
        "CPU quota: desired vs actual",
        (f'max by (instance, name) ({desired("cpu_quota_us")})', "desired ({{instance}})"),
        (f'max by (instance, name) ({sel("container_spec_cpu_quota", *C)})', "actual ({{instance}})"),
        unit="µs", thresholds=steps((BLUE, None)),
        description="The CFS quota (per period) cgwatch holds the container to, from the API or the policy, "
                    "beside what the kernel holds. Apart for long: ContainerLimitDriftNotRepaired.")
    memory = timeseries(
        "Memory limit: desired vs actual",
        (f'max by (instance, name) ({desired("memory_limit_bytes")})', "desired ({{instance}})"),
        (f'max by (instance, name) ({sel("container_spec_memory_limit_bytes", *C)})', "actual ({{instance}})"),
        unit="bytes", thresholds=steps((BLUE, None)),
        description="The memory limit cgwatch holds the container to beside what the kernel holds.")
    return [cpu, memory]


def panels() -> list:
    io = io_panels()
    return grid([cpu_panels(), memory_panels(), [pressure_panel(), *task_panels()], io[:2], io[2:],
                 limit_panels()])


def build() -> Dashboard:
    return dashboard(CONTAINER_UID, "One container ($name): CPU and memory against its limits, IO, network, "
                     "pressure, OOM kills, and the limits cgwatch enforces beside the kernel's.",
                     panels(), [instance_variable(), name_variable()])
