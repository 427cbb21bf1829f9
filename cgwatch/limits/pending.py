"""Changes written to cgroupfs while their runtime's API could not be reached, to be sent to it later.

`dockerd --live-restore` keeps containers running through a daemon upgrade, exactly when an operator
may need to clamp one: the kernel takes the change at once, and the runtime's own record (`docker
inspect`, what `docker restart` re-applies) is told as soon as it answers. Kept per cgroup: the
latest target, and what the runtime's record held before the first change it missed (the values a
plan is made against, since the kernel already holds the target). In memory: an agent restarted
while its runtime is down re-applies the desired state to the kernel, not to the runtime's record.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Limits


@dataclass(slots=True)
class Pending:
    runtime: str
    container_id: str
    name: str
    target: Limits
    recorded: Limits      # what the runtime's record held when it stopped answering


class PendingPushes:
    def __init__(self) -> None:
        self._by_path: dict[str, Pending] = {}

    def defer(self, path: str, runtime: str, container_id: str, name: str, target: Limits, before: Limits) -> None:
        held = self._by_path.get(path)
        recorded = held.recorded if held is not None and held.container_id == container_id else before
        self._by_path[path] = Pending(runtime, container_id, name, target, recorded)

    def done(self, path: str, pending: Pending) -> None:
        """Drop ``pending`` unless a newer change replaced it meanwhile."""
        if self._by_path.get(path) is pending:
            del self._by_path[path]

    def items(self) -> list[tuple[str, Pending]]:
        return list(self._by_path.items())

    def __len__(self) -> int:
        return len(self._by_path)
