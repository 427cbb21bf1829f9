"""A small synchronous client of the agent's API, for the CLI (standard library only)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_API = "http://127.0.0.1:9339"


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(body.get("message") or f"HTTP {status}")
        self.status = status
        self.body = body


def read_token(token_file: Path | None, state_dir: Path) -> str | None:
    path = token_file or state_dir / "token"
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


class ApiClient:
    def __init__(self, base: str = DEFAULT_API, token: str | None = None, timeout: float = 30.0,
                 cafile: str | None = None):
        self.base = base.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._ssl = ssl.create_default_context(cafile=cafile) if base.startswith("https:") else None

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self._ssl) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read() or b"{}")
            except ValueError:
                payload = {"message": exc.reason}
            raise ApiError(exc.code, payload) from None

    def get(self, path: str) -> Any:
        return self.request("GET", path)
