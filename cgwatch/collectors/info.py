"""Who each container is: container_info with the wide labels, last-seen time, counts by runtime."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from ..discovery.inventory import Container, allowed_labels
from ..exposition import Family, render_labels
from .base import Collector, MetricSpec, ScrapeContext, build_families

_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def label_name(key: str) -> str:
    """A container label key as a Prometheus label name, as cAdvisor does: container_label_<key>."""
    return "container_label_" + _LABEL_CHARS.sub("_", key)


def info_labels(c: Container, allowlist: tuple[str, ...]) -> str:
    """container_info's labels after the container's: runtime, runtime ID, QoS class and the
    allowlisted container labels. Their names vary per container, so the row renders them."""
    extra = [("runtime", c.runtime), ("runtime_id", c.id)]
    if c.qos:
        extra.append(("qos", c.qos))
    labels = allowed_labels(c.labels, allowlist) if allowlist else {}
    extra.extend(sorted((label_name(k), v) for k, v in labels.items()))
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
            *build_families((INFO,), ((f"{ctx.labels(c)},{info_labels(c, ctx.label_allowlist)}", c)
                                      for c in ctx.containers)),
            *build_families((LAST_SEEN,), ((ctx.labels(c), now) for c in ctx.containers)),
            *build_families((CONTAINERS,), (("", count) for count in by_runtime)),
        ]
