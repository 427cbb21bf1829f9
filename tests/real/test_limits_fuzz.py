"""Random bodies at the write path: never a 5xx, and a refused body never writes a file."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgwatch.agent import Agent
from cgwatch.errors import CgwatchError
from cgwatch.limits.request import FIELDS, Mode
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


def test_random_bodies_never_fail_the_server_nor_write_when_refused(sandbox, target):
    agent, cid, cg = target
    loop = asyncio.new_event_loop()
    baseline = snapshot(sandbox, cg)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies, mode=st.sampled_from([Mode.PATCH, Mode.PUT, Mode.DELETE]))
    def check(body: bytes, mode: Mode) -> None:
        before = snapshot(sandbox, cg)
        try:
            loop.run_until_complete(agent.limits.change(cid, mode, body, "application/json", "fuzz"))
        except CgwatchError as exc:
            assert exc.status < 500, (body, exc.to_json())
            assert snapshot(sandbox, cg) == before, body
        else:
            # Accepted: put everything back so the next example starts from the same place.
            loop.run_until_complete(agent.limits.change(cid, Mode.DELETE, b"", "", "fuzz"))
            assert snapshot(sandbox, cg) == baseline

    try:
        check()
    finally:
        loop.close()
