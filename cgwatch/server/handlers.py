"""Thin handlers: parse the request, call the agent, shape the response. No cgroup I/O here."""

from __future__ import annotations

from aiohttp import web

from ..exposition import CONTENT_TYPE
from ..limits.request import Mode
from ..limits.service import MAX_BODY_BYTES
from .keys import AGENT
from .openapi import OPENAPI


async def metrics(request: web.Request) -> web.Response:
    body = await request.app[AGENT].exporter.metrics()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response(request.app[AGENT].health())


async def list_containers(request: web.Request) -> web.Response:
    return web.json_response({"containers": await request.app[AGENT].containers()})


async def get_container(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENT].container(request.match_info["ref"]))


async def get_limits(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENT].limits.read(request.match_info["ref"]))


async def change_limits(request: web.Request) -> web.Response:
    mode = Mode(request.method.lower())
    # Read one byte past the cap so an oversized body is refused, not truncated.
    body = await request.content.read(MAX_BODY_BYTES + 1)
    result = await request.app[AGENT].limits.change(request.match_info["ref"], mode, body,
                                                    request.content_type, request.remote or "")
    return web.json_response(result)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


async def get_policy(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENT].policy())


async def get_desired(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENT].desired(request.match_info["ref"]))


async def release_desired(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENT].release(request.match_info["ref"], request.remote or ""))
