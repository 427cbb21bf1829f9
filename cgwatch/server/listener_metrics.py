"""Counters the two listeners share, labelled by listener and reason.

Each listener's set-up asks for them, and prometheus_client refuses to register a name twice in
one registry, so they are made once per registry (tests run several agents in one process)."""

from __future__ import annotations

import weakref

from prometheus_client import CollectorRegistry, Counter

_made: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Counter]] = weakref.WeakKeyDictionary()


def listener_counter(registry: CollectorRegistry, name: str, documentation: str) -> Counter:
    """The Counter ``name`` with labels (listener, reason) in ``registry``, made on first use."""
    made = _made.setdefault(registry, {})
    if name not in made:
        made[name] = Counter(name, documentation, ["listener", "reason"], registry=registry)
    return made[name]
