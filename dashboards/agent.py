"""The agent itself: what a scrape costs, which collectors fail, what enforcement does, what it uses."""

from __future__ import annotations

from grafanalib.core import Dashboard

from .common import (AGENT_UID, BLUE, GREEN, INSTANCE, ORANGE, RED, dashboard, grid, instance_variable, rate,
                     sel, stat, steps, timeseries)

I = (INSTANCE,)
PLAIN = steps((GREEN, None))


def scrape_panels() -> list:
    cost = timeseries(
        "Scrape cost",
        (sel("cgwatch_scrape_duration_seconds", *I), "collection {{instance}}"),
        (sel("scrape_duration_seconds", *I), "Prometheus scrape {{instance}}"),
        unit="s", thresholds=steps((GREEN, None), (ORANGE, 1), (RED, 5)), show_thresholds=True,
        description="Seconds one collection of the whole host took (cgwatch_scrape_duration_seconds), and "
                    "the whole scrape as Prometheus timed it. Over 5 s for 10 minutes fires CgwatchScrapeSlow.")
    series = timeseries(
        "Series per scrape",
        (sel("scrape_samples_scraped", *I), "{{instance}}"),
        (f'sum by (instance) ({sel("cgwatch_containers", *I)})', "cgroups {{instance}}"),
        unit="short", thresholds=PLAIN,
        description="Samples in each scrape, and the cgroups they describe; the cost grows with both.")
    return [cost, series]


def collector_panels() -> list:
    duration = timeseries(
        "Collector duration",
        (f'max by (instance, collector) ({sel("cgwatch_collector_duration_seconds", *I)})',
         "{{collector}} {{instance}}"),
        unit="s", thresholds=steps((GREEN, None), (ORANGE, 0.5), (RED, 2)), stacked=True,
        description="Seconds each collector took in the last collection (stacked: the whole collection).")
    success = stat(
        "Collector success",
        (f'min by (collector) ({sel("cgwatch_collector_success", *I)})', "{{collector}}"),
        unit="bool_yes_no", thresholds=steps((RED, None), (GREEN, 1)), reduce="lastNotNull",
        description="1 when the collector succeeded in the last collection on every selected host. "
                    "A failing one is reported, the rest of the scrape is served (CgwatchCollectorFailing).")
    return [duration, success]


def enforcement_panels() -> list:
    repairs = timeseries(
        "Drift repairs",
        (f'sum by (instance, resource) ({rate("cgwatch_limit_drift_repairs_total", *I)})',
         "{{resource}} {{instance}}"),
        unit="ops", thresholds=steps((GREEN, None), (ORANGE, 0.1)), bars=True,
        description="Limits the reconciler put back per second, by resource: someone (docker update, a "
                    "script, systemd) changed them behind cgwatch's back.")
    updates = timeseries(
        "Limit changes through the API",
        (f'sum by (instance, result) ({rate("cgwatch_limit_updates_total", *I)})', "{{result}} {{instance}}"),
        unit="reqps", thresholds=PLAIN, bars=True, stacked=True,
        description="Write attempts per second by result: accepted, rejected (validation, safety rules, "
                    "authentication) or failed (the kernel or Docker refused).")
    rules = stat(
        "Policy rules",
        (f'max by (instance) ({sel("cgwatch_policy_rules", *I)})', "{{instance}}"),
        unit="short", thresholds=steps((BLUE, None)),
        description="Rules in the loaded policy file (0 without --policy).")
    return [repairs, updates, rules]


def resource_panels() -> list:
    cpu = timeseries(
        "Agent CPU",
        (rate("process_cpu_seconds_total", *I), "{{instance}}"),
        unit="percentunit", thresholds=steps((GREEN, None), (ORANGE, 0.05), (RED, 0.2)), show_thresholds=True,
        description="Share of one core the agent uses (its own process_cpu_seconds_total).")
    rss = timeseries(
        "Agent memory (RSS)",
        (sel("process_resident_memory_bytes", *I), "{{instance}}"),
        unit="bytes", thresholds=steps((GREEN, None), (ORANGE, 200 * 2**20), (RED, 400 * 2**20)),
        show_thresholds=True, description="Resident memory of the agent's process.")
    return [cpu, rss]


def panels() -> list:
    return grid([scrape_panels(), collector_panels(), enforcement_panels(), resource_panels()])


def build() -> Dashboard:
    return dashboard(AGENT_UID, "cgwatch itself: collection cost, collector health, limit enforcement, "
                     "and the agent's own CPU and memory.", panels(), [instance_variable()])
