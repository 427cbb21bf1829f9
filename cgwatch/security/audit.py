"""The audit trail: one JSON line per write attempt, on disk before the reply is sent.

``AuditLog`` is the file; ``Auditor`` is what the rest of the agent uses: it counts each line in
``cgwatch_limit_updates_total{result}``, refuses changes while the line could not be written,
and keeps the promise "one attempt, one line" through ``Attempt``: the HTTP layer opens one per
write request, the limit service records it when the request reaches it, and the HTTP layer
records a refusal only for an attempt nothing recorded yet.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from ..errors import StateUnwritable

log = logging.getLogger("cgwatch.audit")

# The audit line must fit on disk before a change is made (a full disk refuses changes).
AUDIT_HEADROOM_BYTES = 1 << 20


class AuditLog:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    def record(self, entry: dict[str, Any]) -> None:
        """Append one entry and fsync it. Blocking: call from a worker thread.

        O_APPEND makes each line one atomic append; fsync before returning is what lets the
        caller promise the line is on disk when the client sees the reply.
        """
        line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **entry},
                          default=str, separators=(",", ":")) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)


@dataclass(slots=True)
class Attempt:
    """One write request: who sent it and what it named. ``recorded`` once its line is written."""

    client: str
    ref: str = ""
    mode: str = ""
    path: str = ""
    recorded: bool = False


class Auditor:
    def __init__(self, audit_log: AuditLog, registry: CollectorRegistry):
        self._log = audit_log
        self.updates = Counter("cgwatch_limit_updates", "Limit change attempts through the API, by result.",
                               ["result"], registry=registry)

    async def record(self, entry: dict[str, Any], attempt: Attempt | None = None) -> None:
        """Write ``entry`` (its ``result`` set) as the attempt's one line; raises StateUnwritable."""
        if attempt is not None:
            attempt.recorded = True
        self.updates.labels(entry["result"]).inc()
        try:
            await asyncio.to_thread(self._log.record, entry)
        except OSError as exc:
            log.error("audit write failed", extra={"error": str(exc), "entry": entry})
            raise StateUnwritable(f"the audit log cannot be written: {exc.strerror}") from exc

    async def refused(self, attempt: Attempt, error: dict[str, Any]) -> None:
        """A write refused before any part of the agent recorded it (origin, token, route, body)."""
        if attempt.recorded:
            return
        # Only what identifies the attempt, bounded: the path may be 16 KiB of anything.
        entry = {"client": attempt.client, "ref": attempt.ref[:200], "mode": attempt.mode[:16],
                 "path": attempt.path[:200], "result": "rejected", "error": error}
        await self.record(entry, attempt)

    def check_space(self) -> None:
        """Refuse a change up front when its audit line could not be written afterwards."""
        directory = self._log.path.parent
        try:
            free = shutil.disk_usage(directory).free
        except OSError as exc:
            raise StateUnwritable(f"the state directory is not usable: {exc.strerror}") from exc
        if free < AUDIT_HEADROOM_BYTES or not os.access(directory, os.W_OK):
            raise StateUnwritable("the state directory is full or read-only; limit changes are refused "
                                  "until the audit log can be written")
