"""Thin handlers: parse the request, call the agent, shape the response. No cgroup I/O here."""

from __future__ import annotations

import math
import re
from pathlib import Path

from aiohttp import web

from ..discovery.inventory import Target, parse_cgroup_path
from ..errors import InvalidCgroupPath, InvalidRequest, UnsupportedMediaType
from ..exposition import CONTENT_TYPE
from ..limits.request import Mode
from .body import accepts_gzip, send
from .keys import AGENT
from .openapi import OPENAPI
from .refusals import attempt_of
from .request_body import read_body


async def metrics(request: web.Request) -> web.StreamResponse:
    exporter = request.app[AGENT].exporter
    headers = {"Content-Type": CONTENT_TYPE, "Vary": "Accept-Encoding"}
    if accepts_gzip(request.headers.get("Accept-Encoding", "")):
        body = await exporter.metrics_gzip()
        headers["Content-Encoding"] = "gzip"
    else:
        body = await exporter.metrics()
    return await send(request, body, headers)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response(request.app[AGENT].health())


def query_number(request: web.Request, name: str) -> float | None:
    """The query parameter ``name`` as a number, None when absent, NaN when it is not one (the
    caller's range check refuses it with the parameter's own message)."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return math.nan


async def list_containers(request: web.Request) -> web.Response:
    # Serialised once per collection (agent.py), not once per request on the event loop.
    after = query_number(request, "after")
    if after is not None and not math.isfinite(after):
        raise InvalidRequest("after is the \"collection\" of an earlier listing (a number)", field="after")
    return web.Response(body=await request.app[AGENT].containers_json(after), content_type="application/json",
                        charset="utf-8")


async def get_container(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENT].container(request.match_info["ref"]))


# Percent-encoded '/' and '.', and control characters. aiohttp decodes the path before it matches
# a route, so "a%2Fb" would arrive as "a/b" and "%2e%2e" as "..": such a path is refused, never
# decoded into one the client did not spell out. Other escapes ("%5C" for the backslash of
# systemd's "\x2d") decode to the one character they name, which the walk's names are compared with.
_ENCODED_TRICK = re.compile(r"%(2[ef]|[01][0-9a-f]|7f)", re.IGNORECASE)


def target_of(request: web.Request) -> Target:
    """What a limits route names: {ref} of /api/v1/containers/, or {path} of /api/v1/cgroups/
    (the cgroup path without its leading '/', its slashes kept)."""
    if "path" not in request.match_info:
        return request.match_info["ref"]
    if _ENCODED_TRICK.search(request.rel_url.raw_path):
        raise InvalidCgroupPath("a cgroup path is sent as it is: its '/' and '.' never percent-encoded, and no "
                                "control characters", path=request.rel_url.raw_path[:200])
    return parse_cgroup_path(request.match_info["path"])


async def get_limits(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENT].limits_of(target_of(request)))


async def change_limits(request: web.Request) -> web.Response:
    mode = Mode(request.method.lower())
    target = target_of(request)
    body = await limits_body(request, mode)
    result = await request.app[AGENT].limits.change(target, mode, body, attempt_of(request))
    return web.json_response(result)


async def limits_body(request: web.Request, mode: Mode) -> bytes:
    """The request's body, if it can be a limits body: whole, at most MAX_BODY_BYTES, declared JSON."""
    body = await read_body(request)
    if (mode is not Mode.DELETE or body.strip()) and request.content_type != "application/json":
        raise UnsupportedMediaType("send the limits as JSON with Content-Type: application/json",
                                   content_type=request.content_type[:100])
    return body


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


async def get_policy(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENT].policy())


async def get_desired(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENT].desired(target_of(request)))


async def release_desired(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENT].release(target_of(request), attempt_of(request)))


# --- processes, inspect and the web page (cgwatch/views/inspect.py, cgwatch/web/) ---

# CPU % of the process list is measured over this interval unless ?interval= says otherwise.
PROCESSES_INTERVAL_S = 0.5
PROCESSES_MAX_INTERVAL_S = 5.0
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
WEB_ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}
# The page runs only its own files and talks only to this origin; nothing inline, no framing.
WEB_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


async def get_processes(request: web.Request) -> web.Response:
    interval = query_number(request, "interval")
    if interval is None:
        interval = PROCESSES_INTERVAL_S
    if not 0 <= interval <= PROCESSES_MAX_INTERVAL_S:  # NaN fails both comparisons
        raise InvalidRequest(f"interval is seconds from 0 (CPU % since each process started) to "
                             f"{PROCESSES_MAX_INTERVAL_S:g}", field="interval")
    return web.json_response(await request.app[AGENT].processes(request.match_info["ref"], interval))


async def inspect_container(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENT].inspect(request.match_info["ref"]))


async def web_page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB_DIR / "index.html",
                            headers={**WEB_HEADERS, "Content-Type": "text/html; charset=utf-8"})


async def web_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in WEB_ASSETS:  # only the page's own files: never a path from the request
        raise web.HTTPNotFound()
    return web.FileResponse(WEB_DIR / name, headers={**WEB_HEADERS, "Content-Type": WEB_ASSETS[name]})
