"""Waiting for the agent inside a test without blocking the event loop it runs on."""

from __future__ import annotations

import asyncio
import inspect
import time


async def until(check, timeout: float = 5.0, what: str = "condition", interval: float = 0.05):
    """Poll ``check`` (a function, sync or async) until it returns something truthy; that value.
    AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(interval)


async def scrape(client) -> str:
    """GET /metrics through an aiohttp test client: the body, which must be a 200."""
    resp = await client.get("/metrics")
    assert resp.status == 200
    return await resp.text()
