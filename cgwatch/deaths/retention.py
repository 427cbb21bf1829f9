"""Dead containers' last series, kept frozen for a while and bounded in number (pure; time passed in).

A container's series are the samples of the last collection that saw it, found by its ``id``
label. They stay as they were (``container_last_seen`` included: the last time it was seen), but
for the OOM counters, which are asked of the container's OomRecord at every collection: a kill
announced after the cgroup went still shows as +1.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..exposition import Family, escape_label_value
from .ledger import OomRecord

# The counters whose value comes from the OomRecord rather than the frozen samples (collectors/memory.py).
OOM_FAMILIES = ("container_oom_kills_total", "container_oom_events_total")
# An idle host's 1000 containers replaced every few minutes stays under this; a host that churns
# faster keeps the most recent deaths (the oldest go first), so the exposition stays bounded.
MAX_RETAINED = 1000

Samples = list[tuple[str, float]]


@dataclass(slots=True)
class DeadContainer:
    path: str
    died_at: float                      # when its death was noticed (time.monotonic())
    samples: dict[str, Samples]         # family name -> its frozen samples, the OOM counters left out
    labels: str | None                  # the container's labels, for the OOM counters
    oom: float | None = None            # the OOM count last exported while it lived
    record: OomRecord | None = None

    def oom_kills(self) -> float | None:
        if self.record is not None:
            return self.record.total(self.oom)
        return self.oom


def path_of(labels: str, paths: Mapping[str, str]) -> str | None:
    """Which of ``paths`` (escaped id -> path) a sample's labels name, if any. ``id`` is always
    followed by the container's other base labels (collectors/base.py BASE_LABELS): hence '",'."""
    if labels.startswith('id="'):
        start = 4
    else:
        at = labels.find(',id="')
        if at < 0:
            return None
        start = at + 5
    end = labels.find('",', start)
    return paths.get(labels[start:end]) if end > 0 else None


def samples_of(families: Sequence[Family], lengths: Sequence[int], dead: Mapping[str, str],
               every: Collection[int]) -> dict[str, dict[str, Samples]]:
    """The samples of each dead container in ``families`` (only the first ``lengths[i]`` samples
    of family i, those the collectors made), as path -> family name -> samples.

    ``dead`` maps each dead path to its labels as the collection rendered them (ScrapeContext.labels,
    one string per container), ``every`` holds the id() of every container's such string. A family
    without labels of its own puts that very string in each sample, so its samples are told apart by
    identity (~60 ns each); the others (own labels first, container_info's after) by their ``id``
    label. Called only when containers vanished: one pass over the last collection's samples.
    """
    escaped = {escape_label_value(p): p for p in dead}
    by_object = {id(labels): path for path, labels in dead.items()}
    out: dict[str, dict[str, Samples]] = {p: {} for p in dead}
    for family, n in zip(families, lengths):
        if not n:
            continue
        first = family.samples[0][0]
        if id(first) in every:
            for sample in [s for s in family.samples[:n] if id(s[0]) in by_object]:
                out[by_object[id(sample[0])]].setdefault(family.name, []).append(sample)
        elif 'id="' in first:
            for sample in family.samples[:n]:
                path = path_of(sample[0], escaped)
                if path is not None:
                    out[path].setdefault(family.name, []).append(sample)
    return out


def dead_from_samples(path: str, samples: dict[str, Samples], died_at: float,
                      record: OomRecord | None) -> DeadContainer:
    """A DeadContainer from its last samples: the OOM counters' labels and value set apart."""
    oom_labels, oom = None, None
    for name in OOM_FAMILIES:
        found = samples.pop(name, None)
        if found:
            oom_labels, oom = found[0]
    if oom_labels is None:
        seen = samples.get("container_last_seen")
        oom_labels = seen[0][0] if seen else None
    return DeadContainer(path, died_at, samples, oom_labels, oom, record)


class Retained:
    """Dead containers by path, oldest death first; at most ``max_kept``, each for ``keep_s``."""

    def __init__(self, keep_s: float, max_kept: int = MAX_RETAINED):
        self.keep_s = keep_s
        self.max_kept = max_kept
        self._dead: dict[str, DeadContainer] = {}
        self._frozen: dict[str, Samples] | None = {}  # the frozen samples by family, made on change

    def __len__(self) -> int:
        return len(self._dead)

    def __contains__(self, path: str) -> bool:
        return path in self._dead

    def paths(self) -> list[str]:
        return list(self._dead)

    def add(self, dead: DeadContainer) -> list[DeadContainer]:
        """Keep ``dead``; returns those dropped to stay within ``max_kept`` (the oldest deaths)."""
        self._dead.pop(dead.path, None)
        self._dead[dead.path] = dead
        self._frozen = None
        dropped = []
        while len(self._dead) > self.max_kept:
            dropped.append(self._dead.pop(next(iter(self._dead))))
        return dropped

    def drop(self, paths: Iterable[str]) -> list[DeadContainer]:
        """Forget the dead at ``paths`` (a new cgroup lives there now)."""
        dropped = [d for p in paths if (d := self._dead.pop(p, None)) is not None]
        if dropped:
            self._frozen = None
        return dropped

    def expire(self, now: float) -> list[DeadContainer]:
        """Forget the dead kept ``keep_s`` already (deaths are in order: the oldest are first)."""
        dropped = []
        while self._dead:
            oldest = next(iter(self._dead.values()))
            if now - oldest.died_at < self.keep_s:
                break
            dropped.append(self._dead.pop(oldest.path))
        if dropped:
            self._frozen = None
        return dropped

    def families(self) -> dict[str, Samples]:
        """Every kept sample by family name: the frozen ones (grouped once per change) and the OOM
        counters as their records say now."""
        if self._frozen is None:
            frozen: dict[str, Samples] = {}
            for dead in self._dead.values():
                for name, samples in dead.samples.items():
                    frozen.setdefault(name, []).extend(samples)
            self._frozen = frozen
        out = dict(self._frozen)
        oom = [(d.labels, v) for d in self._dead.values()
               if d.labels is not None and (v := d.oom_kills()) is not None]
        if oom:
            for name in OOM_FAMILIES:
                out[name] = oom
        return out
