"""Every read on either listener answers from the shared, bounded-age collection: a flood of
requests about one container (its JSON, inspect, processes) walks the host no more often than
scrapes do (issue 15, item 6). The walks are counted by the agent's own Host, given to it as a
constructor argument; the collections by cgwatch_collections_total.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path

import pytest

from cgwatch.hostfs import Host

pytestmark = pytest.mark.real

REQUESTS = 50


class CountingHost(Host):
    """The real host, counting its walks of every hierarchy."""

    def __init__(self) -> None:
        super().__init__(Path("/sys/fs/cgroup"), Path("/proc"))
        self.walks = 0
        self._lock = threading.Lock()

    def scan(self, *args, **kwargs):
        with self._lock:
            self.walks += 1
        return super().scan(*args, **kwargs)


@pytest.fixture
async def counted(make_agent, api_client, sandbox):
    host = CountingHost()
    agent = await make_agent(host=host)
    cid = uuid.uuid4().hex * 2
    cg = sandbox.create(f"docker/{cid}")
    sandbox.sleeper(cg)
    return host, agent, await api_client(agent), cid


def collections(agent) -> float:
    return agent.exporter.registry.get_sample_value("cgwatch_collections_total") or 0.0


@pytest.mark.parametrize("what", ["", "/inspect", "/processes?interval=0"],
                         ids=["container", "inspect", "processes"])
async def test_a_flood_of_reads_about_one_container_shares_the_collection(counted, what):
    host, agent, api, cid = counted
    await api.get(f"/api/v1/containers/{cid}{what}")  # one collection knows it
    walks, before = host.walks, collections(agent)

    async def one() -> int:
        resp = await api.get(f"/api/v1/containers/{cid}{what}")
        await resp.read()
        return resp.status

    statuses = await asyncio.gather(*[one() for _ in range(REQUESTS)])
    assert statuses == [200] * REQUESTS
    made = collections(agent) - before
    # --max-age 0 (the tests' setting): each request wants a collection, and concurrent ones share
    # the one under way; a walk per request would be REQUESTS walks.
    assert host.walks - walks == made
    assert made <= 5, made


async def test_a_container_made_after_the_last_collection_is_found_by_one_begun_after_the_request(counted, sandbox):
    host, agent, api, _ = counted
    cid = uuid.uuid4().hex * 2
    sandbox.sleeper(sandbox.create(f"docker/{cid}"))
    resp = await api.get(f"/api/v1/containers/{cid}/inspect")
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["id"] == cid


async def test_a_container_nobody_has_is_not_found_after_one_collection(counted):
    host, agent, api, _ = counted
    walks = host.walks
    resp = await api.get(f"/api/v1/containers/{'f' * 64}/inspect")
    assert resp.status == 404
    assert host.walks - walks <= 2  # the latest collection, then one begun after the request
