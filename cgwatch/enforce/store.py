"""Durable desired state: one JSON document, replaced atomically.

The write path is the classic one (see rename(2) and fsync(2)): write a temp file in the same
directory, fsync it, rename it over the old file, fsync the directory. A crash (kill -9, power
loss) at any point leaves either the old or the new document, never a torn one.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1


class StateCorrupt(RuntimeError):
    """The state file exists but is not a document this version can read."""


def atomic_write_json(path: Path, document: Any) -> None:
    data = (json.dumps(document, indent=1, sort_keys=True) + "\n").encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class DesiredStore:
    """Container ID -> desired-state record, persisted on every change."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, Any]] = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise StateCorrupt(f"{self.path} is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
            raise StateCorrupt(f"{self.path}: unknown format (expected version {FORMAT_VERSION})")
        return dict(doc.get("containers", {}))

    def _save(self, records: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_json(self.path, {"version": FORMAT_VERSION, "containers": records})

    def all(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(v) for k, v in self._records.items()}

    def get(self, container_id: str) -> dict[str, Any] | None:
        with self._lock:
            rec = self._records.get(container_id)
            return dict(rec) if rec is not None else None

    def put(self, container_id: str, record: dict[str, Any]) -> None:
        """Persist first, then update memory: a failed write changes nothing."""
        with self._lock:
            records = {**self._records, container_id: record}
            self._save(records)
            self._records = records

    def remove(self, container_id: str) -> bool:
        with self._lock:
            if container_id not in self._records:
                return False
            records = {k: v for k, v in self._records.items() if k != container_id}
            self._save(records)
            self._records = records
            return True
