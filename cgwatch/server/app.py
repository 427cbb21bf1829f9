"""The app factory and the routes of both listeners.

The public listener (--listen) serves /metrics, /healthz and read-only GETs, without a token.
The API listener (--api-listen, loopback by default) serves everything, writes included,
behind the bearer token.
"""

from __future__ import annotations

from aiohttp import web

from ..agent import Agent
from . import handlers
from .auth import auth_middleware
from .errors import error_middleware
from .keys import AGENT

READ_ROUTES = [
    web.get("/metrics", handlers.metrics),
    web.get("/healthz", handlers.healthz),
    web.get("/api/v1/containers", handlers.list_containers),
    web.get("/api/v1/containers/{ref}", handlers.get_container),
    web.get("/api/v1/containers/{ref}/limits", handlers.get_limits),
    web.get("/api/v1/containers/{ref}/desired", handlers.get_desired),
    web.get("/api/v1/policy", handlers.get_policy),
    web.get("/api/v1/openapi.json", handlers.openapi),
]

WRITE_ROUTES = [
    web.put("/api/v1/containers/{ref}/limits", handlers.change_limits),
    web.patch("/api/v1/containers/{ref}/limits", handlers.change_limits),
    web.delete("/api/v1/containers/{ref}/limits", handlers.change_limits),
    web.delete("/api/v1/containers/{ref}/desired", handlers.release_desired),
]

# Only behind the token: command lines can carry secrets, and the page is the API's own client.
API_ONLY_READ_ROUTES = [
    web.get("/api/v1/containers/{ref}/processes", handlers.get_processes),
    web.get("/api/v1/containers/{ref}/inspect", handlers.inspect_container),
    web.get("/", handlers.web_page),
    web.get("/static/{name}", handlers.web_asset),
]


def create_app(agent: Agent, *, api: bool = False) -> web.Application:
    """One listener's app: ``api=True`` adds the write routes and the token check."""
    middlewares = [error_middleware]
    if api:
        middlewares.append(auth_middleware(agent.token, agent.settings.anonymous_api_reads))
    app = web.Application(middlewares=middlewares)
    app[AGENT] = agent
    app.add_routes(READ_ROUTES)
    if api:
        app.add_routes(WRITE_ROUTES)
        app.add_routes(API_ONLY_READ_ROUTES)
    return app
