"""Run both listeners until SIGTERM/SIGINT, then shut down in order."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import ssl

from aiohttp import web

from ..agent import Agent
from ..config import Settings
from .app import create_app

log = logging.getLogger("cgwatch.server")


class UnsafeListen(ValueError):
    """The write API would be reachable from the network without TLS."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_tls_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS for the API listener; refuses a non-loopback API without it unless explicitly allowed."""
    if settings.tls_cert and settings.tls_key:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
        return ctx
    if not is_loopback(settings.api_listen[0]) and not settings.insecure_remote_writes:
        raise UnsafeListen(
            f"--api-listen {settings.api_listen[0]} is not a loopback address: the API token would cross the "
            "network in clear. Give --tls-cert and --tls-key, or --insecure-allow-remote-writes-without-tls.")
    return None


async def serve(settings: Settings) -> int:
    tls = api_tls_context(settings)
    agent = Agent(settings)
    await agent.start()
    runners = []
    try:
        for role, (host, port), ctx in (("metrics", settings.listen, None), ("api", settings.api_listen, tls)):
            runner = web.AppRunner(create_app(agent, api=role == "api"),
                                   access_log=logging.getLogger("aiohttp.access"))
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, port, ssl_context=ctx).start()
            log.info("listening", extra={"role": role, "address": f"{host}:{port}", "tls": ctx is not None})
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, agent.reload_policy)
        await stop.wait()
        log.info("stopping")
        return 0
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        await agent.stop()
