"""GET /api/v1/containers says which collection it is from, and ``?after=`` asks for a newer one:
clients that take rates (`cgwatch top`, `ps --interval`, the web page) never divide a repeated
reading by the time between their requests (the agent serves one collection for --max-age)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from cgwatch.cli.client import ApiClient
from cgwatch.cli.topview import rows_between
from cgwatch.cli.view import ApiSource, read

pytestmark = pytest.mark.real


async def listing(api, query: str = ""):
    resp = await api.get(f"/api/v1/containers{query}")
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_after_asks_for_a_collection_begun_after_the_one_named(sandbox, make_agent, api_client):
    a = await make_agent(max_age_s=60.0)  # without ?after= every read within a minute shares one collection
    api = await api_client(a)
    first = await listing(api)
    assert abs(first["collected_at"] - time.time()) < 60
    assert (await listing(api))["collection"] == first["collection"]  # served again, as --max-age allows
    newer = await listing(api, f"?after={first['collection']!r}")
    assert newer["collection"] > first["collection"]
    assert newer["collected_at"] > first["collected_at"]


async def test_an_after_from_the_future_means_now_and_bad_ones_are_refused(sandbox, make_agent, api_client):
    a = await make_agent(max_age_s=60.0)
    api = await api_client(a)
    first = await listing(api)
    # A number the agent never gave (another agent's, one restarted since): a collection begun
    # after the request, not a wait for a moment that may never come.
    later = await asyncio.wait_for(listing(api, "?after=1e300"), timeout=30)
    assert later["collection"] > first["collection"]
    for bad in ("nan", "inf", "soon", ""):
        resp = await api.get(f"/api/v1/containers?after={bad}")
        assert resp.status == 400, bad
        assert (await resp.json())["field"] == "after"


async def test_top_rates_are_over_the_agents_collections_not_its_own_requests(sandbox, make_agent, api_client):
    """A busy loop at one CPU: read twice through the API as `cgwatch top` does, with --max-age
    long enough that a plain second request would be served the first reading again."""
    cg = sandbox.create(f"docker/{uuid.uuid4().hex * 2}")
    sandbox.busy_loop(cg)
    a = await make_agent(max_age_s=60.0)  # its start collects once: the loop is in that reading
    api = await api_client(a)
    source = ApiSource(ApiClient(str(api.make_url("")), token=a.token))
    before = await asyncio.to_thread(read, source)
    await asyncio.sleep(1.0)
    after = await asyncio.to_thread(read, source)
    assert after.taken_at_s - before.taken_at_s >= 0.9  # two collections, a second apart
    row = next(r for r in rows_between(before, after) if r.cgroup == cg)
    assert row.cpu_percent is not None and 60 <= row.cpu_percent <= 110, row
