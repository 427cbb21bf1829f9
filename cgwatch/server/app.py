"""The app factory and the routes of both listeners.

Both listeners serve the same read-only routes today: the public one (--listen) for Prometheus,
the API one (--api-listen, loopback by default) for tools on the host.
"""

from __future__ import annotations

from aiohttp import web

from ..agent import Agent
from . import handlers
from .errors import error_middleware
from .keys import AGENT

READ_ROUTES = [
    web.get("/metrics", handlers.metrics),
    web.get("/healthz", handlers.healthz),
    web.get("/api/v1/containers", handlers.list_containers),
    web.get("/api/v1/containers/{ref}", handlers.get_container),
]


def create_app(agent: Agent) -> web.Application:
    """One listener's app. The agent's lifecycle is owned by the caller (cli.serve)."""
    app = web.Application(middlewares=[error_middleware], client_max_size=64 * 1024)
    app[AGENT] = agent
    app.add_routes(READ_ROUTES)
    return app
