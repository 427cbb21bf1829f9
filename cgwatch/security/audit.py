"""The audit trail: one JSON line per write attempt, on disk before the reply is sent."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any


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
