"""A small synchronous client of the agent's API for the CLI (standard library only), and the
options that say where the agent is and which token it takes."""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..config import DEFAULT_API_URL, DEFAULT_STATE_DIR

DEFAULT_TIMEOUT_S = 30.0


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
    def __init__(self, base: str = DEFAULT_API_URL, token: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
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


def add_api_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api", default=DEFAULT_API_URL, metavar="URL", help=f"the agent's API (default {DEFAULT_API_URL})")
    p.add_argument("--token-file", type=Path, help="bearer token file (default <state-dir>/token)")
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                   help=f"the agent's state directory, for its token (default {DEFAULT_STATE_DIR})")


def client_from(args: argparse.Namespace, timeout: float = DEFAULT_TIMEOUT_S) -> ApiClient:
    """The client the options of add_api_options describe."""
    return ApiClient(args.api, read_token(args.token_file, args.state_dir), timeout=timeout)


def refused(exc: Exception, status: int | None = None) -> int:
    """One line on stderr for a command that could not be done; exit status 1."""
    print(f"cgwatch: {exc}" + (f" (HTTP {status})" if status is not None else ""), file=sys.stderr)
    return 1
