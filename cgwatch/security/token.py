"""The API's bearer token: read from --token-file, or generated once into <state-dir>/token (0600)."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger("cgwatch.token")

TOKEN_BYTES = 32


def load_or_create_token(token_file: Path | None, state_dir: Path) -> tuple[str, Path]:
    """The token and where it lives. A given file must exist and hold a non-empty token."""
    if token_file is not None:
        token = token_file.read_text().strip()
        if not token:
            raise ValueError(f"token file {token_file} is empty")
        return token, token_file
    path = state_dir / "token"
    try:
        token = path.read_text().strip()
        if token:
            return token, path
    except FileNotFoundError:
        pass
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    # O_EXCL|0600 from the start: the token is never readable by others, not even for a moment.
    tmp = path.with_name(f".token.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (token + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    log.info("generated API token", extra={"token_file": str(path)})
    return token, path


def bearer_matches(header: str | None, token: str) -> bool:
    """Constant-time check of an ``Authorization: Bearer <token>`` header."""
    if not header:
        return False
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    # compare_digest's time does not depend on where the strings differ.
    return hmac.compare_digest(presented.strip().encode(), token.encode())
