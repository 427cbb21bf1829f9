"""Who each container is: container_info with the wide labels, last-seen time, counts by runtime."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from ..discovery.inventory import allowed_labels
from ..exposition import Family, render_labels
from .base import Collector, ScrapeContext

_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def label_name(key: str) -> str:
    """A container label key as a Prometheus label name, as cAdvisor does: container_label_<key>."""
    return "container_label_" + _LABEL_CHARS.sub("_", key)


class InfoCollector(Collector):
    name = "info"

    def collect(self, ctx: ScrapeContext) -> Iterable[Family]:
        info = Family("container_info",
                      "Constant 1, labelled with the container's runtime, runtime ID and allowlisted labels.",
                      "gauge")
        seen = Family("container_last_seen", "Last time a container was seen by the exporter", "gauge")
        counts = Family("cgwatch_containers", "Cgroups seen in the last collection, by runtime.", "gauge")
        by_runtime: Counter[str] = Counter()
        for c in ctx.containers:
            by_runtime[c.runtime] += 1
            base = ctx.labels(c)
            extra = [("runtime", c.runtime), ("runtime_id", c.id)]
            if c.qos:
                extra.append(("qos", c.qos))
            labels = allowed_labels(c.labels, ctx.label_allowlist) if ctx.label_allowlist else {}
            extra.extend(sorted((label_name(k), v) for k, v in labels.items()))
            info.add(f"{base},{render_labels(extra)}", 1)
            seen.add(base, int(ctx.now))
        for runtime, n in sorted(by_runtime.items()):
            counts.add(f'runtime="{runtime}"', n)
        return [info, seen, counts]
