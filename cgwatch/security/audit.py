"""The audit trail: one JSON line per write attempt, on disk before the reply is sent.

``AuditLog`` is the file; ``Auditor`` is what the rest of the agent uses: it counts each line in
``cgwatch_limit_updates_total{result}``, refuses changes while the line could not be written,
and keeps the promise "one attempt, one line" through ``Attempt``: the HTTP layer opens one per
write request, the limit service records it when the request reaches it, and the HTTP layer
records a refusal only for an attempt nothing recorded yet.

Refusals of who is asking (no or a wrong token, a foreign Host or Origin, a client certificate
not allowed) come before anyone is known and cost nothing to send, so they are coalesced
(``coalesce.RefusalCoalescer``): a flood becomes a few lines carrying counts. Everything else
(changes, refusals of an authenticated request, repairs) stays one fsynced line each: the
token holder is accountable for every attempt, and could as well flood accepted changes.
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

from .. import errors
from ..errors import StateUnwritable
from .coalesce import RefusalCoalescer

log = logging.getLogger("cgwatch.audit")

# The audit line must fit on disk before a change is made (a full disk refuses changes).
AUDIT_HEADROOM_BYTES = 1 << 20
DEFAULT_MAX_BYTES = 10 << 20
DEFAULT_KEEP = 5
DEFAULT_REFUSAL_WINDOW_S = 10.0
REDACTED = "<redacted>"
# The causes of refusals that come before the client is known: only these are coalesced.
UNAUTHENTICATED_CAUSES = frozenset({errors.Unauthorized.code, errors.ForbiddenHost.code, errors.ForbiddenOrigin.code,
                                    errors.ClientCertificateNotAllowed.code})


class AuditLog:
    """``audit.log``, rotated by size to ``audit.log.1`` .. ``audit.log.<keep>`` as logrotate's
    numbered scheme does (logrotate(8) ``rotate``/``size``): the newest rotated file is ``.1``."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, keep: int = DEFAULT_KEEP,
                 secret: str | None = None):
        self.path = path
        self.max_bytes = max_bytes
        self.keep = max(1, keep)
        # The API token: a client may send it anywhere a line quotes (a ref, a path); never kept.
        self._secret = secret or None
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    def record(self, entry: dict[str, Any]) -> None:
        """Append one entry and fsync it. Blocking: call from a worker thread."""
        self.record_many([entry])

    def record_many(self, entries: list[dict[str, Any]]) -> None:
        """Append entries, one line each, with one fsync. Blocking: call from a worker thread.

        O_APPEND makes each write one atomic append; fsync before returning is what lets the
        caller promise the lines are on disk when the client sees the reply. O_NOFOLLOW: root
        never appends through a symlink put in the log's place.
        """
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        text = "".join(json.dumps({"time": stamp, **e}, default=str, separators=(",", ":")) + "\n"
                       for e in entries)
        if self._secret is not None and self._secret in text:
            text = text.replace(self._secret, REDACTED)
        data = text.encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size >= self.max_bytes:
                self._rotate()

    def _rotate(self) -> None:
        """audit.log.<keep-1> -> .<keep> (the oldest replaced), ..., audit.log -> .1. Under _lock,
        between appends, so no line is lost; the next append creates a new audit.log."""
        for n in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)  # the renames are durable, as the lines were
        finally:
            os.close(dir_fd)


@dataclass(slots=True)
class Attempt:
    """One write request: who sent it and what it named. ``recorded`` once its line is written."""

    client: str
    ref: str = ""
    mode: str = ""
    path: str = ""
    recorded: bool = False


class Auditor:
    def __init__(self, audit_log: AuditLog, registry: CollectorRegistry, *,
                 refusal_window_s: float = DEFAULT_REFUSAL_WINDOW_S):
        self._log = audit_log
        self._refusals = RefusalCoalescer(window_s=refusal_window_s)
        self._closer: asyncio.Task[None] | None = None  # writes the counts of windows as they close
        self.updates = Counter("cgwatch_limit_updates", "Limit change attempts through the API, by result.",
                               ["result"], registry=registry)

    async def record(self, entry: dict[str, Any], attempt: Attempt | None = None) -> None:
        """Write ``entry`` (its ``result`` set) as the attempt's one line; raises StateUnwritable."""
        if attempt is not None:
            attempt.recorded = True
        self.updates.labels(entry["result"]).inc()
        await self._write([entry])

    async def _write(self, entries: list[dict[str, Any]]) -> None:
        try:
            await asyncio.to_thread(self._log.record_many, entries)
        except OSError as exc:
            log.error("audit write failed", extra={"error": str(exc), "entries": entries})
            raise StateUnwritable(f"the audit log cannot be written: {exc.strerror}") from exc

    async def refused(self, attempt: Attempt, error: dict[str, Any]) -> None:
        """A write refused before any part of the agent recorded it (origin, token, route, body)."""
        if attempt.recorded:
            return
        # Only what identifies the attempt, bounded: the path may be 16 KiB of anything.
        entry = {"client": attempt.client, "ref": attempt.ref[:200], "mode": attempt.mode[:16],
                 "path": attempt.path[:200], "result": "rejected", "error": error}
        cause = str(error.get("error", ""))
        if cause not in UNAUTHENTICATED_CAUSES:
            await self.record(entry, attempt)
            return
        attempt.recorded = True
        self.updates.labels("rejected").inc()
        key = (entry["client"], cause, entry["mode"], entry["path"])  # the path has no query (refusals.py)
        line, closed = self._refusals.admit(key, entry)
        self._close_windows_later()
        if line is not None or closed:
            await self._write(closed + ([line] if line is not None else []))

    def _close_windows_later(self) -> None:
        if self._closer is None or self._closer.done():
            self._closer = asyncio.get_running_loop().create_task(self._close_windows())

    async def _close_windows(self) -> None:
        """Write each window's count when it closes, while any window is open."""
        while (deadline := self._refusals.next_deadline()) is not None:
            await asyncio.sleep(max(0.0, deadline - self._refusals.clock()))
            if closed := self._refusals.due():
                try:
                    await self._write(closed)
                except StateUnwritable:
                    pass  # logged by _write; the window's count is in the agent's log line

    async def close(self) -> None:
        """Write every open window's count now (at shutdown): no counted refusal is lost."""
        if self._closer is not None:
            self._closer.cancel()
            try:
                await self._closer
            except asyncio.CancelledError:
                pass
        if remaining := self._refusals.drain():
            try:
                await self._write(remaining)
            except StateUnwritable:
                pass  # logged by _write with the counts; shutdown goes on

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
