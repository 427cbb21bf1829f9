"""An unauthenticated write flood costs a few audit lines; accepted changes stay one line each;
audit.log rotates by size and keeps what it says.

The flood runs against `cgwatch serve` (tests/support/served.py) so its SIGTERM shutdown is the
one that must write the counts still open. Figures (bytes, lines, requests a second) are printed
for the record (pytest -s), not asserted as timings.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.support.cgroups import wait_for
from tests.support.served import serve_agent

pytestmark = pytest.mark.real

JSON = {"Content-Type": "application/json"}
FLOOD = 2000
BURST = 10  # cgwatch.security.coalesce.RefusalCoalescer.burst: lines written one by one per window


def audit_lines(state: Path, name: str = "audit.log") -> list[dict]:
    path = state / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def unauthorized(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line.get("error", {}).get("error") == "unauthorized"]


async def flood(api: str, token: str, cid: str, every: int) -> tuple[float, list[int]]:
    """FLOOD token-less PATCHes, 16 at a time, with an authenticated change after each ``every``;
    (seconds taken, the changes' statuses)."""
    url = f"{api}/api/v1/containers/{cid}/limits"
    changes: list[int] = []
    async with aiohttp.ClientSession() as session:
        async def anonymous(_: int) -> None:
            async with session.patch(url, data=b'{"pids_limit": 5}', headers=JSON) as resp:
                assert resp.status == 401

        started = time.monotonic()
        for batch in range(0, FLOOD, every):
            for i in range(batch, min(batch + every, FLOOD), 16):
                await asyncio.gather(*map(anonymous, range(i, min(i + 16, batch + every, FLOOD))))
            async with session.patch(url, data=json.dumps({"pids_limit": 100 + batch}).encode(),
                                     headers={**JSON, "Authorization": f"Bearer {token}"}) as resp:
                changes.append(resp.status)
        return time.monotonic() - started, changes


@pytest.fixture
def container(sandbox):
    cid = uuid.uuid4().hex * 2
    cg = sandbox.create(f"docker/{cid}")
    sandbox.sleeper(cg)
    return cid


def test_a_token_less_flood_is_a_few_counted_lines_and_each_accepted_change_one_line(tmp_path, container):
    # A window longer than the flood: what is written during it is the burst alone.
    with serve_agent(tmp_path, "--audit-refusal-window", "120") as served:
        seconds, changes = asyncio.run(flood(served.api, served.token, container, every=400))
        during = audit_lines(served.state)
        size_during = (served.state / "audit.log").stat().st_size
    after = audit_lines(served.state)  # SIGTERM: the open window's count is written at shutdown
    size_after = (served.state / "audit.log").stat().st_size
    print(f"\n{FLOOD} token-less PATCHes in {seconds:.2f} s ({FLOOD / seconds:.0f}/s): audit.log "
          f"{len(during)} lines, {size_during} bytes during the flood; {len(after)} lines, {size_after} bytes "
          f"after shutdown")
    assert changes == [200] * 5
    assert [line["result"] for line in during if line["result"] != "rejected"] == ["accepted"] * 5
    assert [line["count"] for line in unauthorized(during)] == [1] * BURST
    assert len(unauthorized(after)) == BURST + 1
    assert sum(line["count"] for line in unauthorized(after)) == FLOOD
    assert size_after < 16 << 10  # one line each would be about 2000 * 200 bytes


def test_a_closed_window_writes_its_count_while_the_agent_runs(tmp_path):
    with serve_agent(tmp_path, "--audit-refusal-window", "1") as served:
        async def send() -> None:
            async with aiohttp.ClientSession() as session:
                for _ in range(50):
                    async with session.patch(f"{served.api}/api/v1/containers/x/limits", data=b"{}",
                                             headers=JSON) as resp:
                        assert resp.status == 401
        asyncio.run(send())
        # The window closes 1 s after the first refusal; its count is written without another one.
        lines = wait_for(lambda: [line for line in unauthorized(audit_lines(served.state)) if line["count"] > 1])
        assert sum(line["count"] for line in unauthorized(audit_lines(served.state))) == 50
    assert len(lines) == 1


async def refuse_authenticated(make_agent, api_client, n: int, **settings):
    """``n`` authenticated PATCHes with a body that is not JSON: one "rejected" line each, ref-<i>."""
    agent = await make_agent(**settings)
    api = await api_client(agent)
    for i in range(n):
        resp = await api.patch(f"/api/v1/containers/ref-{i}/limits", data=b"{not json", headers=JSON)
        assert resp.status == 400
    return agent.settings.state_dir


def every_file(state: Path) -> list[str]:
    return sorted(p.name for p in state.iterdir() if p.name.startswith("audit.log"))


async def test_audit_log_rotates_by_size_without_losing_a_line(make_agent, api_client):
    state = await refuse_authenticated(make_agent, api_client, 200, audit_max_bytes=4096, audit_keep=100)
    names = every_file(state)
    refs = [line["ref"] for name in names for line in audit_lines(state, name)]
    print(f"\n200 lines over {len(names)} files: {names[:4]}...")
    assert len(names) > 5
    assert sorted(refs) == sorted(f"ref-{i}" for i in range(200))
    assert all((state / name).stat().st_size < 4096 + 512 for name in names)  # at most one line past the size


async def test_audit_log_keeps_at_most_audit_keep_rotated_files_the_newest(make_agent, api_client):
    state = await refuse_authenticated(make_agent, api_client, 200, audit_max_bytes=4096, audit_keep=3)
    assert every_file(state) == ["audit.log", "audit.log.1", "audit.log.2", "audit.log.3"]
    kept = [line["ref"] for name in ("audit.log.3", "audit.log.2", "audit.log.1", "audit.log")
            for line in audit_lines(state, name)]
    # The oldest lines went with the files past --audit-keep; what is kept is the newest, in order.
    assert len(kept) < 200 and kept == [f"ref-{i}" for i in range(200 - len(kept), 200)]
