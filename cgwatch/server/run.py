"""Run both listeners until SIGTERM/SIGINT, then shut down in order."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from ..agent import Agent
from ..config import Settings
from .app import create_app

log = logging.getLogger("cgwatch.server")


async def serve(settings: Settings) -> int:
    agent = Agent(settings)
    await agent.start()
    runners = []
    try:
        for role, (host, port) in (("metrics", settings.listen), ("api", settings.api_listen)):
            runner = web.AppRunner(create_app(agent), access_log=logging.getLogger("aiohttp.access"))
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, port).start()
            log.info("listening", extra={"role": role, "address": f"{host}:{port}"})
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping")
        return 0
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        await agent.stop()
