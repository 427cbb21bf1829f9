"""Deaths are seen, on real cgroups: a container's cgroup OOM-killed and removed at once, as a runtime
removes it when its main process dies, keeps its series with the kill counted and its last-seen
time frozen, for --removed-retention, then goes.

Runs on the v1 hybrid host (the eventfd on memory.oom_control) and, unchanged, in the cgroup v2 guest
(memory.events) (tests/vm). The cgroups are made by the test, in Docker's shape
(<sandbox>/docker/<id>): a container's, whose OOM notifications the agent watches.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import time
import uuid

import pytest

from cgwatch.server.app import create_app
from tests.support.agent import samples, value
from tests.support.aio import until

pytestmark = pytest.mark.real

# Python runs ~30x slower in the guest: a collection there takes seconds.
IN_GUEST = os.environ.get("CGWATCH_KERNEL") == "v2-guest"
RETENTION_S = 20.0 if IN_GUEST else 3.0


def hexid() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


def limited(sandbox, mib: int) -> str:
    """A container-shaped cgroup that OOM-kills at ``mib`` MiB (no swap to escape to)."""
    cg = sandbox.create(f"docker/{hexid()}")
    if sandbox.is_v2:
        sandbox.write(cg, "memory.max", str(mib << 20))
        sandbox.write(cg, "memory.swap.max", "0")
    else:
        sandbox.write(cg, "memory.limit_in_bytes", str(mib << 20))
        if sandbox.file(cg, "memory.memsw.limit_in_bytes").exists():
            sandbox.write(cg, "memory.memsw.limit_in_bytes", str(mib << 20))
    return cg


async def oom_killed_and_removed(sandbox, cg: str) -> None:
    hog = sandbox.memory_hog(cg, mib=300)
    assert await asyncio.to_thread(hog.wait, 120) == -signal.SIGKILL, "the hog was not OOM-killed"
    assert await asyncio.to_thread(sandbox.remove, cg) == [], "the cgroup could not be removed"


async def scraper(make_agent, aiohttp_client, **settings):
    agent = await make_agent(**settings)
    client = await aiohttp_client(create_app(agent))

    async def scrape() -> str:
        resp = await client.get("/metrics")
        assert resp.status == 200
        return await resp.text()
    return agent, scrape


@pytest.mark.guest
async def test_an_oom_killed_container_removed_at_once_keeps_its_series_with_the_kill(sandbox, make_agent,
                                                                                      aiohttp_client):
    agent, scrape = await scraper(make_agent, aiohttp_client, removed_retention_s=RETENTION_S)
    cg = limited(sandbox, 64)
    alive = await scrape()
    assert value(alive, "container_oom_kills_total", id=cg) == 0
    seen = value(alive, "container_last_seen", id=cg)

    await asyncio.sleep(1.1)  # container_last_seen is in whole seconds
    await oom_killed_and_removed(sandbox, cg)
    dead = await scrape()
    assert value(dead, "container_oom_kills_total", id=cg) == 1
    assert value(dead, "container_oom_events_total", id=cg) == 1
    assert value(dead, "container_last_seen", id=cg) == seen < value(dead, "container_last_seen", id="/")
    assert value(dead, "container_spec_memory_limit_bytes", id=cg) == 64 << 20  # its last values, frozen
    assert len(samples(dead, "container_info", id=cg)) == 1
    # The API lists the living only.
    assert cg not in {c.path for c in (await agent.exporter.collection()).containers}

    await asyncio.sleep(RETENTION_S)
    gone = await scrape()
    assert not samples(gone, "container_info", id=cg)
    assert not samples(gone, "container_oom_kills_total", id=cg)


@pytest.mark.guest
async def test_a_container_there_before_the_start_and_oom_killed_before_any_scrape_keeps_its_kill(
        sandbox, make_agent, aiohttp_client):
    cg = limited(sandbox, 64)
    agent, scrape = await scraper(make_agent, aiohttp_client, removed_retention_s=RETENTION_S)
    # Nothing has scraped the agent: its start collected once, and watches the container from there.
    assert agent.oom_watcher is not None and agent.oom_watcher.watching(cg)
    hog = sandbox.memory_hog(cg, mib=300)
    assert await asyncio.to_thread(hog.wait, 120) == -signal.SIGKILL, "the hog was not OOM-killed"
    # The watcher's own read of the kill, before the cgroup goes: on v2 the count rests on the
    # watcher reading memory.events before the rmdir (nothing wakes at a removal), a race the test
    # above runs; this one is about the start, so it lets that read happen first.
    record = agent.deaths.ledger.get(cg)
    await until(lambda: record.total() == 1, 60, "the OOM watcher's count of the kill")
    assert await asyncio.to_thread(sandbox.remove, cg) == [], "the cgroup could not be removed"
    dead = await scrape()
    assert value(dead, "container_oom_kills_total", id=cg) == 1
    assert value(dead, "container_spec_memory_limit_bytes", id=cg) == 64 << 20
    assert len(samples(dead, "container_info", id=cg)) == 1


@pytest.mark.guest
async def test_a_cgroup_made_again_at_the_path_replaces_the_kept_one(sandbox, make_agent, aiohttp_client):
    _, scrape = await scraper(make_agent, aiohttp_client, removed_retention_s=300.0)
    cg = limited(sandbox, 64)
    await scrape()
    await oom_killed_and_removed(sandbox, cg)
    assert value(await scrape(), "container_oom_kills_total", id=cg) == 1
    await asyncio.sleep(1.1)

    assert limited_at(sandbox, cg, 32) == cg  # `docker restart`: a new cgroup, the same path
    text = await scrape()
    assert value(text, "container_oom_kills_total", id=cg) == 0       # the new cgroup's own count
    assert value(text, "container_spec_memory_limit_bytes", id=cg) == 32 << 20
    assert value(text, "container_last_seen", id=cg) == value(text, "container_last_seen", id="/")


def limited_at(sandbox, cg: str, mib: int) -> str:
    rel = cg.removeprefix(sandbox.path() + "/")
    made = sandbox.create(rel)
    sandbox.write(made, "memory.max" if sandbox.is_v2 else "memory.limit_in_bytes", str(mib << 20))
    return made


async def test_with_no_retention_a_removed_cgroups_series_go_at_once(sandbox, make_agent, aiohttp_client):
    agent, scrape = await scraper(make_agent, aiohttp_client, removed_retention_s=0.0)
    assert agent.oom_watcher is None  # nothing kept, so nothing watched
    cg = limited(sandbox, 64)
    assert samples(await scrape(), "container_info", id=cg)
    await oom_killed_and_removed(sandbox, cg)
    assert not samples(await scrape(), "container_info", id=cg)


async def test_containers_are_watched_from_their_first_collection_with_the_open_files_limit_raised(
        sandbox, make_agent):
    agent = await make_agent(removed_retention_s=300.0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == hard or hard == resource.RLIM_INFINITY  # two descriptors a container on v1
    assert agent.oom_watcher is not None and agent.oom_watcher.limit > 0
    cg = limited(sandbox, 64)
    plain = sandbox.create("plain/leaf")
    await agent.exporter.collection(since=time.monotonic())
    assert agent.oom_watcher.watching(cg)
    assert not agent.oom_watcher.watching(plain)  # a plain cgroup is kept when it goes, not watched
