"""What every collector shares: the scrape context, the collector interface, metric spec tables.

node_exporter's shape: one collector per file, each reading its own files for every container,
run and timed centrally (exporter.py); cAdvisor's shape: each metric described once as a row of
{name, help, type, getter}.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..cgroup.base import CgroupReader
from ..discovery.inventory import Container
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
        """The container's base labels, rendered once per scrape and reused by every family."""
        rendered = self._labels.get(c.path)
        if rendered is None:
            rendered = render_labels(zip(BASE_LABELS, (c.path, c.image, c.name, c.k8s_container,
                                                       c.k8s_namespace, c.k8s_pod)))
            self._labels[c.path] = rendered
        return rendered


class Collector:
    """A named group of metric families. ``collect`` must not raise for vanished cgroups."""

    name: ClassVar[str]
    default_enabled: ClassVar[bool] = True

    def collect(self, ctx: ScrapeContext) -> Iterable[Family]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    help: str
    type: str
    getter: Callable[[Any], float | None]
    # Labels before the container's, rendered (e.g. 'cpu="total"').
    extra: str = ""


def build_families(specs: tuple[MetricSpec, ...], rows: Iterable[tuple[str, Any]]) -> list[Family]:
    """Families for ``specs`` over (rendered labels, value object) rows; None values are skipped."""
    families = [Family(s.name, s.help, s.type) for s in specs]
    pairs = list(zip(specs, families))
    for labels, obj in rows:
        for spec, family in pairs:
            value = spec.getter(obj)
            if value is not None:
                family.add(f"{spec.extra},{labels}" if spec.extra else labels, value)
    return families


def ns_to_s(value: int | None) -> float | None:
    return None if value is None else value / 1e9


def us_to_s(value: int | None) -> float | None:
    return None if value is None else value / 1e6
