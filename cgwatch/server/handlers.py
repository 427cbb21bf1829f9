"""Thin handlers: parse the request, call the agent, shape the response. No cgroup I/O here."""

from __future__ import annotations

from aiohttp import web

from ..exposition import CONTENT_TYPE
from .keys import AGENT


async def metrics(request: web.Request) -> web.Response:
    body = await request.app[AGENT].exporter.metrics()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response(request.app[AGENT].health())


async def list_containers(request: web.Request) -> web.Response:
    return web.json_response({"containers": await request.app[AGENT].containers()})


async def get_container(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENT].container(request.match_info["ref"]))
