"""cgwatch's Grafana dashboards, written with grafanalib; `python -m dashboards.build` writes json/."""
