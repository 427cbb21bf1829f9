"""Bearer-token authentication on the API listener."""

from __future__ import annotations

from aiohttp import web

from ..errors import Unauthorized
from ..security.token import bearer_matches

# Probes must work without a secret.
OPEN_PATHS = frozenset({"/healthz"})
# The web page and its own files hold no data (its API calls carry the token): GETs need none.
OPEN_PAGE_PATHS = frozenset({"/"})
OPEN_PAGE_PREFIX = "/static/"


def auth_middleware(token: str, anonymous_reads: bool):
    @web.middleware
    async def middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
        write = request.method not in ("GET", "HEAD")
        page = request.method in ("GET", "HEAD") and (request.path in OPEN_PAGE_PATHS
                                                      or request.path.startswith(OPEN_PAGE_PREFIX))
        if request.path in OPEN_PATHS or page or (anonymous_reads and not write):
            return await handler(request)
        if bearer_matches(request.headers.get("Authorization"), token):
            return await handler(request)
        # Audited by the refusal middleware when it was a write attempt.
        raise Unauthorized("this needs Authorization: Bearer <token> (the token is in the agent's "
                           "state directory, file 'token', or the --token-file it was given)")
    return middleware
