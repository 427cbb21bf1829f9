"""Every write attempt on the API listener is one audit line, whoever refused it.

The middleware opens an ``Attempt`` per write request; the limit service records the attempts
that reach it. What is refused before that (a foreign Host or Origin, a missing or wrong token,
a method or path no route serves, a body too large or of the wrong type) is recorded here, once.
A write attempt is any method but GET and HEAD (OPTIONS included: it is how a browser asks
whether it may write).

The audit line keeps the path without its query string: no write route reads one, and a client
may put the token there, as a value or as a bare name (``?<token>``), so masking values alone
would not keep it out.

``http1_only_middleware`` refuses what aiohttp's parser lets through as if it were HTTP/1.1: a
request line naming HTTP/2.0 or any version but 1.0 and 1.1 (505, audited when it is a write).
"""

from __future__ import annotations

from aiohttp import HttpVersion10, HttpVersion11, web

from ..errors import CgwatchError
from ..security.audit import Attempt
from .errors import http_error_json
from .keys import AGENT, ATTEMPT

READ_METHODS = frozenset({"GET", "HEAD"})
HTTP_VERSIONS = frozenset({HttpVersion10, HttpVersion11})


def _target(request: web.Request) -> str:
    """What the write names, as its audit line's ref: a container ref, or "/<cgroup path>"."""
    info = request.match_info
    if "ref" in info:
        return info["ref"]
    return "/" + info["path"] if "path" in info else ""


@web.middleware
async def refusal_audit_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    if request.method in READ_METHODS:
        return await handler(request)
    attempt = request[ATTEMPT] = Attempt(client=request.remote or "", ref=_target(request),
                                         mode=request.method.lower(), path=request.rel_url.raw_path)
    try:
        return await handler(request)
    except CgwatchError as exc:
        await request.app[AGENT].auditor.refused(attempt, exc.to_json())
        raise
    except web.HTTPException as exc:
        if exc.status >= 400:
            await request.app[AGENT].auditor.refused(attempt, http_error_json(exc))
        raise


@web.middleware
async def http1_only_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    # HTTP/2 is never spoken in an HTTP/1 request line (RFC 9113 section 3: it starts with its
    # own preface); a server answers a major version it does not speak with 505 (RFC 9110
    # section 15.6.6). aiohttp's own exception, as for its 404 and 405: the version is HTTP's
    # concern, not the domain's, and the only 5xx that is the client's doing.
    if request.version not in HTTP_VERSIONS:
        raise web.HTTPVersionNotSupported()
    return await handler(request)


def attempt_of(request: web.Request) -> Attempt:
    """The request's attempt (the API listener always opens one for a write)."""
    return request[ATTEMPT]
