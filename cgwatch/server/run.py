"""Run both listeners until SIGTERM/SIGINT, then shut down in order."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from ..agent import Agent
from ..config import Settings
from .app import HTTP_LIMITS, create_app
from .connguard import guard_connections
from .handshake import count_failures, listen
from .httplog import clean_error_handlers, install as install_http_log_filter
from .transport import load_transport

log = logging.getLogger("cgwatch.server")


async def serve(settings: Settings) -> int:
    transport = load_transport(settings)  # refuses a remote API without TLS before anything starts
    install_http_log_filter()  # aiohttp's own error lines: server/httplog.py
    agent = Agent(settings)
    runners, servers = [], []
    try:
        # The API's app owns the agent (started at its setup, stopped at its cleanup): it is set
        # up first and cleaned up last, so the agent runs whenever either listener does.
        for role, (host, port) in (("api", settings.api_listen), ("metrics", settings.listen)):
            ctx = transport.tls(role)
            app = create_app(agent, api=role == "api", owns_agent=role == "api",
                             extra_middlewares=transport.middlewares(role))
            transport.add_headers(app)
            handler_kwargs = {"access_log": logging.getLogger("aiohttp.access"), **HTTP_LIMITS}
            runner = web.AppRunner(app, **handler_kwargs)
            await runner.setup()
            guard_connections(runner, role, agent.exporter.registry)  # slow clients: server/connguard.py
            runners.append(runner)
            if ctx is not None:
                count_failures(ctx, role, agent.exporter.registry)  # server/handshake.py
            servers.append(await listen(runner, host, port, ctx,
                                        clean_error_handlers(runner.server, **handler_kwargs)))
            log.info("listening", extra={"role": role, "address": f"{host}:{port}", "tls": ctx is not None,
                                         "basic_auth": role == "metrics" and transport.basic_auth is not None})
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def reload() -> None:
            agent.reload_policy()
            transport.reload()
        loop.add_signal_handler(signal.SIGHUP, reload)
        await stop.wait()
        log.info("stopping")
        return 0
    finally:
        for server in servers:  # stop accepting first, as aiohttp's TCPSite.stop does
            server.close()
        for runner in reversed(runners):
            await runner.cleanup()
        transport.close()
