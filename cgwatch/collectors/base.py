"""What every collector shares: the scrape context, the collector interface, metric spec tables.

node_exporter's shape: one collector per file, each reading its own files for every container,
run and timed centrally (exporter.py); cAdvisor's shape: each metric described once as a row of
{name, help, type, getter}.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..cgroup.base import CgroupReader
from ..discovery.inventory import Container, allowed_labels
from ..exposition import Family, render_labels
from ..host.procfs import ProcFS

# The label names of every container series: cAdvisor's (id, image, name) plus the ones the
# kubelet's cAdvisor endpoint adds (container, namespace, pod), empty when not Kubernetes.
BASE_LABELS = ("id", "image", "name", "container", "namespace", "pod")


@dataclass(slots=True)
class ScrapeContext:
    """Everything a collector may read during one collection."""

    containers: list[Container]
    reader: CgroupReader
    proc: ProcFS
    now: float
    label_allowlist: tuple[str, ...] = ()
    _labels: dict[str, str] = field(default_factory=dict)
    _procs: dict[str, list[int]] = field(default_factory=dict)

    def procs(self, path: str) -> list[int]:
        """The cgroup's PIDs, read once per scrape for every collector that needs them."""
        found = self._procs.get(path)
        if found is None:
            found = self._procs[path] = self.reader.procs(path)
        return found

    def labels(self, c: Container) -> str:
        """The container's labels on every series: the base labels, then its container labels that
        match ``label_allowlist`` (cAdvisor's container_label_*), rendered once per scrape."""
        rendered = self._labels.get(c.path)
        if rendered is None:
            rendered = render_labels([*zip(BASE_LABELS, (c.path, c.image, c.name, c.k8s_container,
                                                         c.k8s_namespace, c.k8s_pod)),
                                      *container_labels(c, self.label_allowlist)])
            self._labels[c.path] = rendered
        return rendered


_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def label_name(key: str) -> str:
    """A container label key as a Prometheus label name, as cAdvisor does: container_label_<key>."""
    return "container_label_" + _LABEL_CHARS.sub("_", key)


def container_labels(c: Container, allowlist: tuple[str, ...]) -> list[tuple[str, str]]:
    """The container's labels whose keys match an allowlist glob, as (label name, value) sorted by
    name; none without an allowlist. Environment variables are never among them (they are not
    container labels). Two keys that sanitise to one name (``a.b``, ``a-b``) would repeat a label
    name, which the exposition format forbids: the last key in sorted order wins."""
    if not allowlist:
        return []
    named = {label_name(k): v for k, v in sorted(allowed_labels(c.labels, allowlist).items())}
    return sorted(named.items())


# A label's value in a MetricSpec row: a constant ("total") or read from the row's object.
LabelValue = str | Callable[[Any], str]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One family: ``getter`` reads a sample's value from a row's object (None: no sample);
    ``labels`` are the family's own labels, put before the row's (the container's)."""

    name: str
    help: str
    type: str
    getter: Callable[[Any], float | None]
    labels: tuple[tuple[str, LabelValue], ...] = ()


def own_labels(key: tuple[tuple[str, LabelValue], ...]) -> Callable[[Any], str]:
    """A spec's own labels for a row's object, rendered: once for the whole table when they are
    constants (memory's failure_type and scope), else once per distinct combination of values
    (a host's few devices), not once per row."""
    if all(isinstance(v, str) for _, v in key):
        fixed = render_labels(key)  # type: ignore[arg-type]
        return lambda obj: fixed
    names = [k for k, _ in key]
    seen: dict[tuple[str, ...], str] = {}

    def render(obj: Any) -> str:
        values = tuple(v if isinstance(v, str) else v(obj) for _, v in key)
        found = seen.get(values)
        if found is None:
            found = seen[values] = render_labels(zip(names, values))
        return found
    return render


def build_families(specs: tuple[MetricSpec, ...], rows: Iterable[tuple[str, Any]]) -> list[Family]:
    """Families for ``specs`` over (rendered row labels, value object) rows; None values are skipped."""
    families = [Family(s.name, s.help, s.type) for s in specs]
    # A table's specs share one labels tuple (blkio's DEVICE): rendered once a row, not once a spec.
    by_key: dict[tuple, list[tuple[MetricSpec, Family]]] = {}
    for spec, family in zip(specs, families):
        by_key.setdefault(spec.labels, []).append((spec, family))
    groups = [(own_labels(key) if key else None, members) for key, members in by_key.items()]
    for labels, obj in rows:
        for own, members in groups:
            sample = None
            for spec, family in members:
                value = spec.getter(obj)
                if value is not None:
                    if sample is None:
                        sample = labels if own is None else (f"{own(obj)},{labels}" if labels else own(obj))
                    family.add(sample, value)
    return families


class Collector:
    """A named group of metric families. ``collect`` must not raise for vanished cgroups."""

    name: ClassVar[str]
    default_enabled: ClassVar[bool] = True
    # The families ``collect`` yields, in order (tests/unit/test_collector_specs.py holds it to that).
    specs: ClassVar[tuple[MetricSpec, ...]]

    def collect(self, ctx: ScrapeContext) -> Iterable[Family]:
        """The table over one row per container; collectors with other rows override this."""
        rows = ((ctx.labels(c), obj) for c in ctx.containers if (obj := self.read(ctx, c)) is not None)
        return build_families(self.specs, rows)

    def read(self, ctx: ScrapeContext, c: Container) -> Any:
        """The object one container's row reads its values from (None: no row)."""
        raise NotImplementedError


def ns_to_s(value: int | None) -> float | None:
    return None if value is None else value / 1e9


def us_to_s(value: int | None) -> float | None:
    return None if value is None else value / 1e6
