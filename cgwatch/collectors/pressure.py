"""Pressure stall information per cgroup (Documentation/accounting/psi.rst).

cAdvisor's names: "waiting" is PSI's "some" (at least one task stalled), "stalled" is "full"
(all non-idle tasks stalled at once). Present on v2 and, on hybrid hosts, from the unified tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..cgroup.base import PSI_RESOURCES
from ..exposition import Family
from ..model import Pressure
from .base import Collector, MetricSpec, ScrapeContext, build_families, us_to_s


def _stall_s(resource: str, field: str) -> Callable[[dict[str, Pressure]], float | None]:
    return lambda psi: us_to_s(getattr(psi[resource], field)) if resource in psi else None


SPECS = tuple(
    MetricSpec(f"container_pressure_{resource}_{kind}_seconds_total",
               f"Total time {who} in the container waited for {resource} (PSI).",
               "counter", _stall_s(resource, field))
    for resource in PSI_RESOURCES
    for kind, who, field in (("waiting", "at least one task", "some_us"), ("stalled", "all non-idle tasks", "full_us"))
)


class PressureCollector(Collector):
    name = "pressure"
    specs = SPECS

    def collect(self, ctx: ScrapeContext) -> Iterable[Family]:
        rows = ((ctx.labels(c), psi) for c in ctx.containers if (psi := ctx.reader.pressure(c.path)))
        return build_families(self.specs, rows)
