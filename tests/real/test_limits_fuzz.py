"""Random bodies at the write route: never a 5xx, one audit line each, and a refused body never writes a file."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgwatch.agent import Agent
from cgwatch.limits.request import FIELDS
from cgwatch.server.app import HTTP_LIMITS, create_app
from tests.support.agent import agent_settings

pytestmark = pytest.mark.real

LIMIT_FILES_V1 = ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares", "cpuset.cpus", "memory.limit_in_bytes",
                  "memory.soft_limit_in_bytes", "pids.max")
LIMIT_FILES_V2 = ("cpu.max", "cpu.weight", "cpuset.cpus", "memory.max", "memory.low", "memory.swap.max", "pids.max")

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2 ** 70, max_value=2 ** 70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
                    st.sampled_from(["100m", "1g", "0.5", "-1", "0-1", "0,,1", "max", "1e3", "50000 100000\nmax"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS + ("force", "keep_for_name", "bogus")), values, max_size=5)
    .map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=200),
    values.map(lambda v: json.dumps(v).encode()),
)


def snapshot(sandbox, cg: str) -> dict[str, str]:
    names = LIMIT_FILES_V2 if sandbox.is_v2 else LIMIT_FILES_V1
    return {n: sandbox.read(cg, n) for n in names if sandbox.file(cg, n).exists()}


@pytest.fixture
def target(sandbox, tmp_path):
    cid = uuid.uuid4().hex * 2
    return Agent(agent_settings(tmp_path)), cid, sandbox.create(f"docker/{cid}")


def audit_count(agent: Agent) -> int:
    path = agent.settings.state_dir / "audit.log"
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def test_random_bodies_at_the_write_route_never_fail_the_server_nor_write_when_refused(sandbox, target):
    """Through the live HTTP route (token, middlewares, handler, service), as a client sends them."""
    agent, cid, cg = target
    loop = asyncio.new_event_loop()
    server = TestServer(create_app(agent, api=True))
    loop.run_until_complete(server.start_server(**HTTP_LIMITS))
    session = loop.run_until_complete(_session(agent))
    url = f"http://{server.host}:{server.port}/api/v1/containers/{cid}/limits"
    baseline = snapshot(sandbox, cg)

    async def send(method: str, body: bytes, content_type: str) -> tuple[int, str]:
        async with session.request(method, url, data=body, headers={"Content-Type": content_type}) as resp:
            return resp.status, await resp.text()

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies, method=st.sampled_from(["PATCH", "PUT", "DELETE"]),
           content_type=st.sampled_from(["application/json"] * 4 + ["text/plain", "application/x-www-form-urlencoded",
                                                                    "application/json; charset=utf-8", ""]))
    def check(body: bytes, method: str, content_type: str) -> None:
        before, audited = snapshot(sandbox, cg), audit_count(agent)
        status, text = loop.run_until_complete(send(method, body, content_type))
        assert status < 500, (body, status, text)
        assert audit_count(agent) == audited + 1, (body, status)
        if status != 200:
            assert snapshot(sandbox, cg) == before, body
        else:
            # Accepted: put everything back so the next example starts from the same place.
            assert loop.run_until_complete(send("DELETE", b"", ""))[0] == 200
            assert snapshot(sandbox, cg) == baseline

    try:
        check()
    finally:
        loop.run_until_complete(session.close())
        loop.run_until_complete(server.close())
        loop.close()


async def _session(agent: Agent) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers={"Authorization": f"Bearer {agent.token}"})
