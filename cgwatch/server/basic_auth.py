"""HTTP basic auth against bcrypt hashes (a web config's basic_auth_users), for the public listener.

bcrypt is slow on purpose (~70 ms at cost 10), so, as in exporter-toolkit: checks run one at a time
off the event loop (a guessing flood takes at most one core from collection), a verified
(user, hash, password) is remembered so Prometheus's scrapes every few seconds pay bcrypt once,
and an unknown user is still compared against a real hash so the time taken does not tell
which user names exist.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import bcrypt
from aiohttp import web

from ..errors import Unauthorized
from .errors import error_response

# Liveness probes (kubelet, Docker HEALTHCHECK) carry no password; /healthz says only "ok" and how
# the last collection went, nothing about containers.
OPEN_PATHS = frozenset({"/healthz"})
CHALLENGE = {"WWW-Authenticate": 'Basic realm="cgwatch"'}
CACHE_SIZE = 100  # exporter-toolkit keeps 100 too: a handful of scrapers, a few passwords each


class BasicAuth:
    def __init__(self, users: Mapping[str, bytes]):
        self.set_users(users)
        # The cache keys are keyed digests, so even a memory dump holds no fast-to-guess password hash.
        self._key = os.urandom(32)
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cgwatch-bcrypt")

    async def allows(self, authorization: str | None) -> bool:
        credentials = parse_basic(authorization)
        if credentials is None:
            return False
        user, password = credentials
        known = self._hash_of(user)
        hashed = known if known is not None else self._decoy
        # No ':' in a user name or a hash: the joined bytes cannot be split another way.
        digest = hmac.new(self._key, b":".join((user, hashed, password)), hashlib.sha256).digest()
        if digest in self._verified:
            self._verified.move_to_end(digest)
            return True
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(self._executor, _checkpw, password, hashed)
        if not ok or known is None:
            return False
        self._verified[digest] = None
        if len(self._verified) > CACHE_SIZE:
            self._verified.popitem(last=False)
        return True

    def set_users(self, users: Mapping[str, bytes]) -> None:
        """(Re)set the users; cached verifications of a changed hash no longer match (the hash is in the key)."""
        self.users = dict(users)
        # Timing decoy for unknown users: the costliest real hash (its result is never used).
        self._decoy = max(self.users.values(), key=lambda h: int(h[4:6]))

    def _hash_of(self, user: bytes) -> bytes | None:
        try:
            return self.users.get(user.decode("utf-8"))
        except UnicodeDecodeError:
            return None

    def middleware(self):  # type: ignore[no-untyped-def]
        @web.middleware
        async def basic_auth_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
            if request.path in OPEN_PATHS or await self.allows(request.headers.get("Authorization")):
                return await handler(request)
            error = Unauthorized("this needs HTTP basic auth: a user and password from the agent's "
                                 "web config file (basic_auth_users)")
            # Returned, not raised: the error middleware's JSON response cannot carry the challenge.
            return error_response(error, headers=CHALLENGE)
        return basic_auth_middleware

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def parse_basic(authorization: str | None) -> tuple[bytes, bytes] | None:
    """``Basic base64(user:password)`` -> (user, password) as bytes; None when absent or malformed."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # bcrypt >= 5 refuses passwords over 72 bytes, as Go's bcrypt does
        return False

