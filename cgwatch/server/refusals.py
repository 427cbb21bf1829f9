"""Every refused write attempt on the API listener is one audit line, whoever refused it.

The limit service audits what reaches it. This middleware audits the rest: a foreign Host or
Origin, a missing or wrong token, a method or path no route serves, a body too large to read.
A write attempt is any method but GET and HEAD (OPTIONS included: it is how a browser asks
whether it may write).
"""

from __future__ import annotations

from aiohttp import web

from ..errors import CgwatchError
from .keys import AGENT

READ_METHODS = frozenset({"GET", "HEAD"})


def http_error_json(exc: web.HTTPException) -> dict[str, str]:
    """aiohttp's own 404/405/413... in the JSON shape of our errors."""
    return {"error": exc.reason.lower().replace(" ", "_"), "message": exc.reason}


@web.middleware
async def refusal_audit_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    if request.method in READ_METHODS:
        return await handler(request)
    try:
        return await handler(request)
    except CgwatchError as exc:
        if not exc.audited:
            await _refuse(request, exc.to_json())
            exc.audited = True
        raise
    except web.HTTPException as exc:
        if exc.status >= 400:
            await _refuse(request, http_error_json(exc))
        raise


async def _refuse(request: web.Request, error: dict[str, object]) -> None:
    # Only what identifies the attempt, bounded: the path may be 16 KiB of anything.
    entry = {"client": request.remote or "", "ref": request.match_info.get("ref", "")[:200],
             "mode": request.method.lower()[:16], "path": request.raw_path[:200]}
    await request.app[AGENT].limits.refuse(entry, error)
