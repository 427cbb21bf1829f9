"""What the three dashboards share: the data source, template variables, links, panel shapes, layout.

Every query goes through ``sel()``, so every vector selector carries the dashboard's filter
(``instance=~"$instance"``, plus ``name=~"$name"`` on the container dashboard); the unit tests
and the live Prometheus test check that no query escapes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import attr
from grafanalib.core import (GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR, REFRESH_ON_TIME_RANGE_CHANGE, Dashboard,
                             DashboardLink, GridPos, Panel, Stat, Target, Template, Templating, Time,
                             TimeSeries)

# Grafana 9.x-11.x read this schema without migrating: datasource references are objects and
# thresholds are "steps", as written below.
SCHEMA_VERSION = 37
TAGS = ["cgwatch"]

HOST_UID = "cgwatch-host"
CONTAINER_UID = "cgwatch-container"
AGENT_UID = "cgwatch-agent"
TITLES = {HOST_UID: "cgwatch / Host overview", CONTAINER_UID: "cgwatch / Container", AGENT_UID: "cgwatch / Agent"}

# Panels and targets name the data source through the ${datasource} variable, so one JSON works
# against whichever Prometheus data source the user picks (or Grafana's default).
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

INSTANCE = 'instance=~"$instance"'
NAME = 'name=~"$name"'
RATE = "$__rate_interval"

# Threshold colours, in Grafana's palette.
GREEN, YELLOW, ORANGE, RED, BLUE = "green", "yellow", "orange", "red", "blue"


def sel(metric: str, *matchers: str) -> str:
    """A vector selector: ``sel("up", INSTANCE, 'job="x"')`` -> ``up{instance=~"$instance", job="x"}``."""
    return f"{metric}{{{', '.join(matchers)}}}"


def rate(metric: str, *matchers: str) -> str:
    return f"rate({sel(metric, *matchers)}[{RATE}])"


def steps(*pairs: tuple[str, float | None]) -> list[dict]:
    """Threshold steps, lowest first; the first one's value is None (the base colour)."""
    return [{"color": color, "value": value} for color, value in pairs]


# -- template variables ------------------------------------------------------------------------

def datasource_variable() -> Template:
    return Template(name="datasource", label="Data source", query="prometheus", type="datasource",
                    default="default")


def instance_variable() -> Template:
    return Template(name="instance", label="Host", query="label_values(machine_cpu_cores, instance)",
                    dataSource=DATASOURCE, includeAll=True, multi=True, allValue=".*",
                    refresh=REFRESH_ON_TIME_RANGE_CHANGE)


def name_variable() -> Template:
    return Template(name="name", label="Container",
                    query='label_values(container_info{instance=~"$instance", name!=""}, name)',
                    dataSource=DATASOURCE, refresh=REFRESH_ON_TIME_RANGE_CHANGE)


# -- links ---------------------------------------------------------------------------------------

def dashboard_links(own_uid: str) -> list[DashboardLink]:
    """Links to the other two dashboards, carrying the time range and the template variables."""
    return [DashboardLink(type="link", title=TITLES[uid], uri=f"/d/{uid}", icon="dashboard",
                          keepTime=True, includeVars=True, tooltip=f"Open {TITLES[uid]}")
            for uid in (HOST_UID, CONTAINER_UID, AGENT_UID) if uid != own_uid]


def container_data_link() -> dict:
    """A click on a container's series opens the container dashboard on it."""
    url = (f"/d/{CONTAINER_UID}?${{__url_time_range}}&var-datasource=${{datasource}}"
           "&var-instance=${__field.labels.instance}&var-name=${__field.labels.name}")
    return {"fieldConfig": {"defaults": {"links": [{"title": "Open this container", "url": url}]}}}


# -- panels --------------------------------------------------------------------------------------

def targets(*queries: tuple[str, str]) -> list[Target]:
    """(expr, legend) pairs as targets A, B, C, ..."""
    return [Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + i), datasource=DATASOURCE)
            for i, (expr, legend) in enumerate(queries)]


def timeseries(title: str, *queries: tuple[str, str], unit: str, thresholds: list[dict],
               description: str, show_thresholds: bool = False, bars: bool = False,
               stacked: bool = False, extra: dict | None = None, softmax: int | None = None) -> TimeSeries:
    return TimeSeries(
        title=title, description=description, dataSource=DATASOURCE, targets=targets(*queries),
        unit=unit, thresholds=thresholds, thresholdsStyleMode="line" if show_thresholds else "off",
        drawStyle="bars" if bars else "line", fillOpacity=60 if bars else (30 if stacked else 10),
        stacking={"mode": "normal", "group": "A"} if stacked else {},
        legendDisplayMode="table", legendPlacement="right" if len(queries) > 2 else "bottom",
        legendCalcs=["lastNotNull", "max"], tooltipMode="multi", tooltipSort="desc",
        valueMin=0, axisSoftMax=softmax, extraJson=extra)


def stat(title: str, *queries: tuple[str, str], unit: str, thresholds: list[dict], description: str,
         reduce: str = "lastNotNull") -> Stat:
    return Stat(title=title, description=description, dataSource=DATASOURCE, targets=targets(*queries),
                format=unit, thresholds=thresholds, reduceCalc=reduce, colorMode="background",
                graphMode="area", textMode="value_and_name", noValue="0")


def grid(rows: Sequence[Sequence[Panel]], height: int = 8) -> list[Panel]:
    """Lay panels out row by row, each row's panels sharing the 24 columns evenly."""
    out: list[Panel] = []
    for r, row in enumerate(rows):
        width = 24 // len(row)
        for c, panel in enumerate(row):
            out.append(attr.evolve(panel, gridPos=GridPos(h=height, w=width, x=c * width, y=r * height)))
    return out


def dashboard(uid: str, description: str, panels: list[Panel], variables: list[Template]) -> Dashboard:
    return Dashboard(
        title=TITLES[uid], uid=uid, description=description, tags=TAGS, panels=panels,
        templating=Templating(list=[datasource_variable(), *variables]), links=dashboard_links(uid),
        time=Time("now-1h", "now"), refresh="30s", timezone="browser", schemaVersion=SCHEMA_VERSION,
        graphTooltip=GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
    ).auto_panel_ids()
