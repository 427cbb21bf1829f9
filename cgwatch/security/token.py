"""The API's bearer token: read from --token-file, or generated once into <state-dir>/token (0600)."""

from __future__ import annotations

import hmac
import logging
import secrets
from pathlib import Path

from .statedir import atomic_write_bytes, read_checked

log = logging.getLogger("cgwatch.token")

TOKEN_BYTES = 32


def load_or_create_token(token_file: Path | None, state_dir: Path) -> tuple[str, Path]:
    """The token and where it lives. A given file must exist and hold a non-empty token.

    Either file is read only if it is the agent's own, regular and private (statedir.check_file):
    a token someone else chose, or could read, must not authorise writes.
    """
    if token_file is not None:
        token = read_checked(token_file, secret=True).decode().strip()
        if not token:
            raise ValueError(f"token file {token_file} is empty")
        return token, token_file
    path = state_dir / "token"
    try:
        token = read_checked(path, secret=True).decode().strip()
        if token:
            return token, path
    except FileNotFoundError:
        pass
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    # A 0600 temp file from the first byte: the token is never readable by others, not even for a moment.
    atomic_write_bytes(path, (token + "\n").encode())
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
