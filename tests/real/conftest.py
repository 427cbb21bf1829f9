"""Fixtures for tests against the real host: the agent under test, served by aiohttp's test client."""

from __future__ import annotations

import pytest

from cgwatch.agent import Agent
from cgwatch.server.app import create_app
from tests.support.agent import agent_settings


@pytest.fixture
async def agent(tmp_path):
    a = Agent(agent_settings(tmp_path))
    await a.start()
    try:
        yield a
    finally:
        await a.stop()


@pytest.fixture
async def client(agent, aiohttp_client):
    return await aiohttp_client(create_app(agent))


@pytest.fixture
def scrape(client):
    async def do() -> str:
        resp = await client.get("/metrics")
        assert resp.status == 200
        return await resp.text()
    return do


@pytest.fixture
async def api(agent, aiohttp_client):
    """The API listener's app, with the agent's token on every request."""
    client = await aiohttp_client(create_app(agent, api=True))
    client.session.headers["Authorization"] = f"Bearer {agent.token}"
    return client
