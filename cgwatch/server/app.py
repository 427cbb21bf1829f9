"""The app factory and the routes of both listeners.

The public listener (--listen) serves /metrics, /healthz and read-only GETs, without a token.
The API listener (--api-listen, loopback by default) serves everything, writes included,
behind the bearer token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web

from ..agent import Agent
from . import handlers
from .auth import auth_middleware
from .errors import error_middleware
from .keys import AGENT
from .looplag import LoopLagMonitor
from .origin import is_loopback_host as is_loopback, origin_middleware
from .refusals import http1_only_middleware, refusal_audit_middleware
from .request_body import defer_expect

# Any cgroup by its path, slashes kept: /api/v1/cgroups/batch/job-7/limits. Any characters, none
# at all included, so that the root ("/api/v1/cgroups//limits") and a decoded newline reach the
# handler and are refused in words, not with a bare 404; the route's fixed suffix says where the
# path ends. handlers.target_of checks the path.
CGROUP = r"/api/v1/cgroups/{path:[\s\S]*}"

READ_ROUTES = [
    web.get("/metrics", handlers.metrics),
    web.get("/healthz", handlers.healthz),
    web.get("/api/v1/containers", handlers.list_containers),
    web.get("/api/v1/containers/{ref}", handlers.get_container),
    web.get("/api/v1/containers/{ref}/limits", handlers.get_limits),
    web.get("/api/v1/containers/{ref}/desired", handlers.get_desired),
    web.get(CGROUP + "/limits", handlers.get_limits),
    web.get(CGROUP + "/desired", handlers.get_desired),
    web.get("/api/v1/policy", handlers.get_policy),
    web.get("/api/v1/openapi.json", handlers.openapi),
]

# Expect is answered by the handler, past the middlewares' checks (server/request_body.py).
WRITE_ROUTES = [
    web.put("/api/v1/containers/{ref}/limits", handlers.change_limits, expect_handler=defer_expect),
    web.patch("/api/v1/containers/{ref}/limits", handlers.change_limits, expect_handler=defer_expect),
    web.delete("/api/v1/containers/{ref}/limits", handlers.change_limits, expect_handler=defer_expect),
    web.delete("/api/v1/containers/{ref}/desired", handlers.release_desired, expect_handler=defer_expect),
    web.put(CGROUP + "/limits", handlers.change_limits, expect_handler=defer_expect),
    web.patch(CGROUP + "/limits", handlers.change_limits, expect_handler=defer_expect),
    web.delete(CGROUP + "/limits", handlers.change_limits, expect_handler=defer_expect),
    web.delete(CGROUP + "/desired", handlers.release_desired, expect_handler=defer_expect),
]

# Only behind the token: command lines can carry secrets, and the page is the API's own client.
API_ONLY_READ_ROUTES = [
    web.get("/api/v1/containers/{ref}/processes", handlers.get_processes),
    web.get("/api/v1/containers/{ref}/inspect", handlers.inspect_container),
    web.get("/", handlers.web_page),
    web.get("/static/{name}", handlers.web_asset),
]


# Passed to aiohttp's request handler (AppRunner/TestServer keyword arguments). The request line
# may hold a 10,000-character ref: let it reach the ref check (a 4xx in the audit log) instead of
# dying in the HTTP parser; anything longer is refused by the parser with a 400. A header field is
# at most 8190 bytes and a request has at most 100 of them (Apache httpd's LimitRequestFieldSize
# and LimitRequestFields); more is a 400 from the parser. Their sum is bounded on served
# listeners by server/connguard.py (MAX_HEADER_BYTES: a 431).
HTTP_LIMITS = {"max_line_size": 16384, "max_field_size": 8190, "max_headers": 100}


def create_app(agent: Agent, *, api: bool = False, extra_middlewares: Sequence = (),
               owns_agent: bool = False) -> web.Application:
    """One listener's app: ``api=True`` adds the write routes and the token check.
    ``extra_middlewares`` are the transport's checks (basic auth, client SANs; server/transport.py).
    ``owns_agent``: the app starts the agent when it starts and stops it at its cleanup (one of the
    two listeners' apps does; tests that start the agent themselves leave it off)."""
    middlewares = [error_middleware]
    if api:
        # Outermost first: audit whatever is refused inside; HTTP/1.x only; refuse foreign pages
        # before the token.
        middlewares += [refusal_audit_middleware, http1_only_middleware, *extra_middlewares,
                        origin_middleware(check_host=is_loopback(agent.settings.api_listen[0])),
                        auth_middleware(agent.token, agent.settings.anonymous_api_reads)]
    else:
        middlewares += [http1_only_middleware, *extra_middlewares]
    app = web.Application(middlewares=middlewares)
    app[AGENT] = agent
    if owns_agent:
        app.cleanup_ctx.append(agent_lifecycle(agent))
    app.add_routes(READ_ROUTES)
    if api:
        app.add_routes(WRITE_ROUTES)
        app.add_routes(API_ONLY_READ_ROUTES)
    return app


def agent_lifecycle(agent: Agent) -> Callable[[web.Application], AsyncIterator[None]]:
    """The agent's start and stop as an aiohttp cleanup context, with the loop-lag monitor of the
    event loop that serves it."""
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        lag = LoopLagMonitor(agent.exporter.registry)
        await agent.start()
        lag.start()
        try:
            yield
        finally:
            await lag.stop()
            await agent.stop()
    return lifecycle
