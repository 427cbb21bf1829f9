"""What each container should have, and who said so: API overrides kept durably, policy rules.

An API change is kept by container ID, or by name when the request asked to keep it for the
name (``keep_for_name``: a container re-created under that name gets it too). It outranks the
policy until it is released (``DELETE .../desired``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ..discovery.inventory import Container
from ..limits.request import LimitRequest
from ..limits.validate import HostFacts, resolve_target
from ..model import Limits
from .policy import Rule
from .store import DesiredStore


class Desired:
    """What one container should have, and who said so."""

    __slots__ = ("source", "rule", "limits", "request")

    def __init__(self, source: str, rule: Rule | None = None, limits: Limits | None = None,
                 request: LimitRequest | None = None):
        self.source = source      # "api" or "policy"
        self.rule = rule
        self.limits = limits      # complete target (API overrides)
        self.request = request    # declared fields only (policy rules)

    def target(self, current: Limits, host: HostFacts) -> Limits:
        if self.limits is not None:
            return self.limits
        assert self.request is not None
        return resolve_target(self.request, current, host)


class ApiOverrides:
    """The API's desired limits, on disk (store.py). The limit service records into it
    (``remember``, its ChangeRecorder); enforcement reads it and forgets what is released."""

    def __init__(self, store: DesiredStore, changed: Callable[[], None] = lambda: None):
        """``changed()`` is called after every record stored or removed, from the thread that did it
        (the agent adds or removes the enforcement passes: nothing runs while nothing is desired)."""
        self.store = store
        self._changed = changed

    def remember(self, c: Container, target: Limits, keep_for_name: bool) -> None:
        """Store an API change as the container's desired state (blocking: fsyncs)."""
        self.store.put(c.id, {"name": c.name, "runtime": c.runtime, "limits": asdict(target),
                              "keep_for_name": keep_for_name, "updated": time.time()})
        self._changed()

    def record_for(self, c: Container) -> dict[str, Any] | None:
        """The container's own record, or one kept for its name."""
        return self.store.get(c.id) or self._sticky_record(c)

    def _sticky_record(self, c: Container) -> dict[str, Any] | None:
        if not c.name:
            return None
        for record in self.store.all().values():
            if record.get("keep_for_name") and record.get("name") == c.name:
                return record
        return None

    def forget(self, c: Container) -> bool:
        removed = self.store.remove(c.id)
        for cid, record in self.store.all().items():
            if record.get("keep_for_name") and record.get("name") == c.name:
                removed = self.store.remove(cid) or removed
        if removed:
            self._changed()
        return removed

    def destroyed(self, container_id: str) -> bool:
        """The runtime removed the container for good: its API desired state goes with it,
        unless it was asked to pass to a container re-created under the same name (blocking)."""
        record = self.store.get(container_id)
        if record is None or record.get("keep_for_name"):
            return False
        removed = self.store.remove(container_id)
        if removed:
            self._changed()
        return removed

    def empty(self) -> bool:
        return not self.store.all()
