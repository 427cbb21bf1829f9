"""The one place domain errors become HTTP responses: a status per error, JSON bodies."""

from __future__ import annotations

import errno
import logging

from aiohttp import web

from .. import errors as e

log = logging.getLogger("cgwatch.http")

STATUS: dict[type[e.CgwatchError], int] = {
    e.InvalidRequest: 400,
    e.InvalidRef: 400,
    e.InvalidCgroupPath: 400,
    e.Unauthorized: 401,
    e.KubernetesManaged: 403,
    e.ProtectedCgroup: 403,
    e.ClientCertificateNotAllowed: 403,
    e.ForbiddenHost: 403,
    e.ForbiddenOrigin: 403,
    e.ContainerNotFound: 404,
    e.CgroupNotFound: 404,
    e.RequestTimeout: 408,
    e.AmbiguousRef: 409,
    e.LimitConflict: 409,
    e.RuntimeRefused: 409,
    e.PayloadTooLarge: 413,
    e.UnsupportedMediaType: 415,
    e.HeaderFieldsTooLarge: 431,
    e.ExpectationFailed: 417,
    e.InvalidLimit: 422,
    e.StateUnwritable: 503,
}

# The kernel's refusal of a write, by errno: EBUSY is a conflict (memory below usage on v1),
# EINVAL an invalid value, ENOENT/ENODEV a container that vanished, EROFS/EACCES/EPERM a host
# that cannot be written (503); anything else is ours to explain (500).
WRITE_ERRNO_STATUS = {errno.EBUSY: 409, errno.EINVAL: 422, errno.ENOENT: 404, errno.ENODEV: 404,
                      errno.EROFS: 503, errno.EACCES: 503, errno.EPERM: 503}


def status_of(exc: e.CgwatchError) -> int:
    if isinstance(exc, e.CgroupWriteError):
        return WRITE_ERRNO_STATUS.get(exc.errno, 500)
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def http_error_json(exc: web.HTTPException) -> dict[str, str]:
    """aiohttp's own 404/405/413... in the JSON shape of our errors."""
    return {"error": exc.reason.lower().replace(" ", "_"), "message": exc.reason}


def error_response(exc: e.CgwatchError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(exc.to_json(), status=status_of(exc), headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    try:
        return await handler(request)
    except e.CgwatchError as exc:
        return error_response(exc)
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
