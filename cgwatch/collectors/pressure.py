"""Pressure stall information per cgroup (Documentation/accounting/psi.rst).

cAdvisor's names: "waiting" is PSI's "some" (at least one task stalled), "stalled" is "full"
(all non-idle tasks stalled at once). Present on v2 and, on hybrid hosts, from the unified tree.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..exposition import Family
from .base import Collector, ScrapeContext, us_to_s


class PressureCollector(Collector):
    name = "pressure"

    def collect(self, ctx: ScrapeContext) -> Iterable[Family]:
        families: dict[tuple[str, str], Family] = {}
        for resource in ("cpu", "memory", "io"):
            for kind, who in (("waiting", "at least one task"), ("stalled", "all non-idle tasks")):
                families[resource, kind] = Family(
                    f"container_pressure_{resource}_{kind}_seconds_total",
                    f"Total time {who} in the container waited for {resource} (PSI).",
                    "counter")
        for c in ctx.containers:
            psi = ctx.reader.pressure(c.path)
            if not psi:
                continue
            labels = ctx.labels(c)
            for resource, p in psi.items():
                if p.some_us is not None:
                    families[resource, "waiting"].add(labels, us_to_s(p.some_us))
                if p.full_us is not None:
                    families[resource, "stalled"].add(labels, us_to_s(p.full_us))
        return families.values()
