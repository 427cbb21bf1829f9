"""The one place domain errors become HTTP responses (JSON bodies with the error and message)."""

from __future__ import annotations

import logging

from aiohttp import web

from ..errors import CgwatchError
from .refusals import http_error_json

log = logging.getLogger("cgwatch.http")


@web.middleware
async def error_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    try:
        return await handler(request)
    except CgwatchError as exc:
        return web.json_response(exc.to_json(), status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # aiohttp's own 404/405/413...: same JSON shape as ours.
        return web.json_response(http_error_json(exc), status=exc.status, headers={k: v for k, v in exc.headers.items()
                                                             if k.lower() == "allow"})
    except Exception:
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return web.json_response({"error": "internal", "message": "internal error; see the agent's log"},
                                 status=500)
