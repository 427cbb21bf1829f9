"""Every write attempt on the API listener is one audit line, whoever refused it.

The middleware opens an ``Attempt`` per write request; the limit service records the attempts
that reach it. What is refused before that (a foreign Host or Origin, a missing or wrong token,
a method or path no route serves, a body too large or of the wrong type) is recorded here, once.
A write attempt is any method but GET and HEAD (OPTIONS included: it is how a browser asks
whether it may write).
"""

from __future__ import annotations

from aiohttp import web

from ..errors import CgwatchError
from ..security.audit import Attempt
from .errors import http_error_json
from .keys import AGENT, ATTEMPT

READ_METHODS = frozenset({"GET", "HEAD"})


@web.middleware
async def refusal_audit_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    if request.method in READ_METHODS:
        return await handler(request)
    attempt = request[ATTEMPT] = Attempt(client=request.remote or "", ref=request.match_info.get("ref", ""),
                                         mode=request.method.lower(), path=request.raw_path)
    try:
        return await handler(request)
    except CgwatchError as exc:
        await request.app[AGENT].auditor.refused(attempt, exc.to_json())
        raise
    except web.HTTPException as exc:
        if exc.status >= 400:
            await request.app[AGENT].auditor.refused(attempt, http_error_json(exc))
        raise


def attempt_of(request: web.Request) -> Attempt:
    """The request's attempt (the API listener always opens one for a write)."""
    return request[ATTEMPT]
