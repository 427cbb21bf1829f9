"""`promtool check metrics` over a live scrape of the real host finds nothing to complain about."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid

import pytest

from tests.conftest import need
from tests.support.agent import samples

pytestmark = [pytest.mark.real, pytest.mark.prometheus]


async def test_live_scrape_passes_promtool_lint(sandbox, scrape):
    promtool = shutil.which("promtool")
    need(None if promtool else "needs promtool (Debian package prometheus)")
    cg = sandbox.create(f"docker/{uuid.uuid4().hex * 2}")
    sandbox.write(cg, "memory.max" if sandbox.is_v2 else "memory.limit_in_bytes", str(100 << 20))
    sandbox.busy_loop(cg)
    await asyncio.sleep(0.5)
    text = await scrape()
    assert f'id="{cg}"' in text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


async def test_every_collector_succeeds_on_the_real_host(sandbox, scrape):
    sandbox.sleeper(sandbox.create("plain/collectors"))
    text = await scrape()
    results = {s.labels["collector"]: s.value for s in samples(text, "cgwatch_collector_success")}
    assert set(results) >= {"cpu", "memory", "spec", "tasks", "blkio", "network", "pressure", "info", "machine"}
    assert {name for name, ok in results.items() if ok != 1} == set()
