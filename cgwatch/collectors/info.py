"""Who each container is: container_info with the wide labels, last-seen time, counts by runtime."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ..discovery.inventory import Container
from ..exposition import Family, render_labels
from .base import Collector, MetricSpec, ScrapeContext, build_families


def info_labels(c: Container) -> str:
    """container_info's own labels after the container's (which carry the allowlisted container
    labels, as every series does): runtime, runtime ID and QoS class."""
    extra = [("runtime", c.runtime), ("runtime_id", c.id)]
    if c.qos:
        extra.append(("qos", c.qos))
    return render_labels(extra)


INFO = MetricSpec("container_info",
                  "Constant 1, labelled with the container's runtime, runtime ID and allowlisted labels.",
                  "gauge", lambda _: 1)
LAST_SEEN = MetricSpec("container_last_seen", "Last time a container was seen by the exporter",
                       "gauge", lambda now: now)
CONTAINERS = MetricSpec("cgwatch_containers", "Cgroups seen in the last collection, by runtime.",
                        "gauge", lambda count: count[1], labels=(("runtime", lambda count: count[0]),))
SPECS = (INFO, LAST_SEEN, CONTAINERS)


class InfoCollector(Collector):
    name = "info"
    specs = SPECS

    def collect(self, ctx: ScrapeContext) -> Iterable[Family]:
        now = int(ctx.now)
        by_runtime = sorted(Counter(c.runtime for c in ctx.containers).items())
        return [
            *build_families((INFO,), ((f"{ctx.labels(c)},{info_labels(c)}", c)
                                      for c in ctx.containers)),
            *build_families((LAST_SEEN,), ((ctx.labels(c), now) for c in ctx.containers)),
            *build_families((CONTAINERS,), (("", count) for count in by_runtime)),
        ]
