"""Bearer-token authentication on the API listener; refused writes are audited like any other."""

from __future__ import annotations

from aiohttp import web

from ..errors import Unauthorized
from ..security.token import bearer_matches
from .keys import AGENT

WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE", "POST"})
# Probes must work without a secret.
OPEN_PATHS = frozenset({"/healthz"})
# The web page and its own files hold no data (its API calls carry the token): GETs need none.
OPEN_PAGE_PATHS = frozenset({"/"})
OPEN_PAGE_PREFIX = "/static/"


def auth_middleware(token: str, anonymous_reads: bool):
    @web.middleware
    async def middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
        write = request.method in WRITE_METHODS
        page = request.method in ("GET", "HEAD") and (request.path in OPEN_PAGE_PATHS
                                                      or request.path.startswith(OPEN_PAGE_PREFIX))
        if request.path in OPEN_PATHS or page or (anonymous_reads and not write):
            return await handler(request)
        if bearer_matches(request.headers.get("Authorization"), token):
            return await handler(request)
        error = Unauthorized("this needs Authorization: Bearer <token> (the token is in the agent's "
                             "state directory, file 'token', or the --token-file it was given)")
        if write:
            entry = {"client": request.remote or "", "ref": request.match_info.get("ref", "")[:200],
                     "mode": request.method.lower(), "path": request.path[:200]}
            await request.app[AGENT].limits.refuse(entry, error)
        raise error
    return middleware
