"""Fixtures for tests against the real host: the agent under test, served by aiohttp's test client."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer

from cgwatch.agent import Agent
from cgwatch.server.app import HTTP_LIMITS, create_app
from tests.support.agent import agent_settings


@pytest.fixture
async def make_agent(tmp_path):
    """Start agents with test settings plus overrides; all are stopped at the end."""
    agents: list[Agent] = []

    async def make(*, host=None, docker_client=None, **overrides) -> Agent:
        """``host`` and ``docker_client`` replace the agent's parts (a reader or writer that fails
        on cue, a runtime client that races); the rest are Settings fields."""
        a = Agent(agent_settings(tmp_path, **overrides), host=host, docker_client=docker_client)
        await a.start()
        agents.append(a)
        return a

    yield make
    for a in agents:
        await a.stop()


@pytest.fixture
async def agent(make_agent):
    return await make_agent()


@pytest.fixture
def api_client(aiohttp_client):
    """The API listener's app for an agent, with that agent's token on every request."""
    async def make(a: Agent):
        # Started here: TestServer drops keyword arguments given to its constructor.
        server = TestServer(create_app(a, api=True))
        await server.start_server(**HTTP_LIMITS)
        client = await aiohttp_client(server)
        client.session.headers["Authorization"] = f"Bearer {a.token}"
        return client
    return make


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
async def api(agent, api_client):
    """The API listener's app, with the agent's token on every request."""
    return await api_client(agent)
