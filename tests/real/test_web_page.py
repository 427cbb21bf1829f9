"""The web page, used as a person would: a real headless Chromium, driven over the DevTools protocol.

`cgwatch serve` runs as a subprocess; a real cgroup runs a busy loop. The browser opens the page,
the token is typed into its password field, the container's CPU number moves, and the limits form
sets cpus 0.5, which the kernel then holds. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import REPO, need
from tests.support.served import serve_agent
from tests.support.cgroups import wait_for

pytestmark = pytest.mark.real

ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--window-size=1400,1000", "--hide-scrollbars")
DEVTOOLS_LINE = re.compile(r"DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)")


def chromium_missing() -> str | None:
    return None if shutil.which("chromium") else "needs Debian's chromium (apt-get install chromium)"


# ---------------------------------------------------------------------------------------------
# The agent and the browser


@pytest.fixture
def served_agent(tmp_path):
    """`cgwatch serve` on free loopback ports; yields (API base URL, token)."""
    with serve_agent(tmp_path) as served:
        yield served.api, served.token


class Page:
    """One page target, spoken to over the Chrome DevTools Protocol (JSON over a websocket)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []

    async def send(self, method: str, **params) -> dict:
        self.next_id += 1
        call_id = self.next_id
        await self.ws.send_json({"id": call_id, "method": method, "params": params})
        while True:
            msg = await asyncio.wait_for(self.ws.receive_json(), timeout=30)
            if msg.get("id") == call_id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)   # console messages, exceptions, CSP reports: checked at the end

    async def js(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait(self, expression: str, timeout: float = 15.0):
        deadline = time.monotonic() + timeout
        while True:
            value = await self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"still false after {timeout}s: {expression}")
            await asyncio.sleep(0.2)

    async def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element, as a person's."""
        box = await self.js(f"""(() => {{
            const el = document.querySelector({json.dumps(selector)});
            el.scrollIntoView({{block: "center"}});
            const r = el.getBoundingClientRect();
            return {{x: r.left + r.width / 2, y: r.top + r.height / 2}};
        }})()""")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left",
                            clickCount=1)

    async def type(self, selector: str, text: str) -> None:
        await self.click(selector)
        await self.send("Input.insertText", text=text)

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path = ARTIFACTS / name
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def problems(self) -> list[dict]:
        """Uncaught exceptions and error-level console/log entries (a CSP violation is one)."""
        bad = []
        for e in self.events:
            if e.get("method") == "Runtime.exceptionThrown":
                bad.append(e["params"])
            elif e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error":
                bad.append(e["params"]["entry"])
            elif e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error":
                bad.append(e["params"])
        return bad


@pytest.fixture
async def page(tmp_path):
    need(chromium_missing())
    log_path = tmp_path / "chromium.log"
    log = log_path.open("w")
    # Its own session: the chromium wrapper script, the browser and its helpers form one process
    # group, ended together by that group's ID (the browser's PID) if closing it politely fails.
    # TMPDIR: its singleton socket directory lands in the test's tmp_path, not in /tmp.
    browser = subprocess.Popen(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                                "about:blank"], stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
                               env={**os.environ, "TMPDIR": str(tmp_path)})
    session = aiohttp.ClientSession()
    browser_url = None
    try:
        found = wait_for(lambda: DEVTOOLS_LINE.search(log_path.read_text()), timeout=30)
        browser_url, port = found.group(1), found.group(2)
        async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = await resp.json()
        target = next(t for t in targets if t["type"] == "page")
        ws = await session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        p = Page(ws)
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            await p.send(domain)
        yield p
        await ws.close()
    finally:
        if browser_url is not None:
            try:
                async with session.ws_connect(browser_url) as ws:
                    await ws.send_json({"id": 1, "method": "Browser.close"})
                    await asyncio.wait_for(ws.receive(), timeout=10)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                pass
        await session.close()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(browser.pid, signal.SIGKILL)   # whatever of the group is left
        except ProcessLookupError:
            pass
        browser.wait(timeout=20)
        log.close()


# ---------------------------------------------------------------------------------------------
# The test a person would do


def cpu_quota_us(sandbox, cg: str) -> int | None:
    if sandbox.is_v2:
        quota = sandbox.read(cg, "cpu.max").split()[0]
        return None if quota == "max" else int(quota)
    value = int(sandbox.read(cg, "cpu.cfs_quota_us"))
    return None if value == -1 else value


async def test_the_page_shows_a_busy_container_and_its_form_sets_half_a_cpu(served_agent, page, sandbox):
    base, token = served_agent
    cid = uuid.uuid4().hex * 2
    cg = sandbox.create(f"docker/{cid}")
    sandbox.busy_loop(cg)
    row = f'tr[data-id="{cid}"]'

    await page.send("Page.navigate", url=base + "/")
    await page.wait("document.readyState === 'complete' && !!document.getElementById('token')")
    assert await page.js("document.getElementById('login').hidden") is False
    assert await page.js("document.getElementById('main').hidden") is True
    await page.screenshot("web-01-login.png")

    # The token is typed once into the password field.
    assert await page.js("document.getElementById('token').type") == "password"
    await page.type("#token", token)
    await page.click("#connect")

    # The container is found with the filter (the host may hold more containers than a page shows);
    # its CPU number is measured, then changes from one poll to the next.
    await page.wait("!document.getElementById('main').hidden")
    await page.type("#filter", cid[:16])
    await page.wait(f"!!document.querySelector('{row}')")
    first = await page.wait(f"(t => /^\\d+\\.\\d$/.test(t) && t)(document.querySelector('{row} .cpu').textContent)")
    second = await page.wait(f"(t => /^\\d+\\.\\d$/.test(t) && t !== {json.dumps(first)} && t)"
                             f"(document.querySelector('{row} .cpu').textContent)")
    assert float(first) > 5 and float(second) > 5, (first, second)
    assert await page.js(f"document.querySelector('{row} .mem').textContent.endsWith('/ unlimited')")
    await page.screenshot("web-02-running.png")

    # The token is where it was put, and nowhere a URL or a cookie could leak it.
    assert await page.js("sessionStorage.getItem('cgwatch.token')") == token
    assert token not in await page.js("location.href")
    assert await page.js("document.cookie") == ""

    # Select the container, ask for half a CPU (and a memory and PIDs limit, far above its use).
    await page.click(f"{row} td.name")
    await page.wait("!document.getElementById('detail').hidden")
    assert await page.js("document.getElementById('limit-ref').value") == cid
    await page.type("#limit-cpus", "0.5")
    await page.type("#limit-memory", "256m")
    await page.type("#limit-pids", "100")
    await page.click("#limit-submit")
    result = await page.wait("(el => el.className === 'ok' && el.textContent)(document.getElementById('limit-result'))")
    assert "CPUs 0.5, memory 256.0 MiB, PIDs 100" in result, result

    # The kernel holds it.
    assert cpu_quota_us(sandbox, cg) == 50000
    memory_file = "memory.max" if sandbox.is_v2 else "memory.limit_in_bytes"
    assert int(sandbox.read(cg, memory_file)) == 256 << 20
    assert sandbox.read(cg, "pids.max").strip() == "100"
    # The page follows: the limit shows, the busy loop is held near half a CPU and throttled.
    await page.wait(f"document.querySelector('{row} .cpu').title === 'limit 0.5 CPUs'")
    await page.wait(f"(t => /^\\d/.test(t) && parseFloat(t) < 60)(document.querySelector('{row} .cpu').textContent)",
                    timeout=20)
    await page.wait(f"(t => /%$/.test(t) && parseFloat(t) > 0)(document.querySelector('{row} .throttled').textContent)",
                    timeout=20)
    await page.wait(f"document.querySelector('{row} .mem').textContent.endsWith('/ 256.0 MiB')")
    await asyncio.sleep(6)   # a few more samples on the charts, under the limit line
    shot = await page.screenshot("web-03-limited.png")
    assert shot.stat().st_size > 10_000

    assert page.problems() == [], json.dumps(page.problems())


PAGED = 250   # more than a page (app.js PAGE_SIZE = 100): the page shows a page and a filter finds the rest


async def test_many_containers_show_a_page_at_a_time_and_the_filter_finds_any(served_agent, page, sandbox):
    base, token = served_agent
    ids = [f"{i:04d}" + uuid.uuid4().hex + uuid.uuid4().hex[:28] for i in range(PAGED)]
    for cid in ids:
        sandbox.create(f"docker/{cid}")
    rows = "document.querySelectorAll('#containers tbody tr')"
    await page.send("Page.navigate", url=base + "/")
    await page.wait("document.readyState === 'complete' && !!document.getElementById('token')")
    await page.type("#token", token)
    await page.click("#connect")
    await page.wait(f"{rows}.length === 100 && !document.getElementById('pager').hidden")
    info = await page.js("document.getElementById('page-info').textContent")
    assert info.startswith("1–100 of ") and int(info.split(" of ")[1].split()[0]) >= PAGED, info
    # The last of ours, sorted by name, is past the first page; the filter brings it up alone.
    last = ids[-1]
    assert not await page.js(f"!!document.querySelector('tr[data-id=\"{last}\"]')")
    await page.type("#filter", last[:16])
    await page.wait(f"{rows}.length === 1 && !!document.querySelector('tr[data-id=\"{last}\"]')")
    assert await page.js("document.getElementById('pager').hidden") is True
    # Cleared, the first page again; "next" turns to the second.
    await page.js("(el => { el.value = ''; el.dispatchEvent(new Event('input')); })(document.getElementById('filter'))")
    await page.wait(f"{rows}.length === 100")
    await page.click("#next")
    await page.wait("document.getElementById('page-info').textContent.startsWith('101–')")
    assert page.problems() == [], json.dumps(page.problems())


async def test_a_wrong_token_brings_the_login_back(served_agent, page):
    base, _ = served_agent
    await page.send("Page.navigate", url=base + "/")
    await page.wait("document.readyState === 'complete' && !!document.getElementById('token')")
    await page.type("#token", "not-the-token")
    await page.click("#connect")
    message = await page.wait("(el => !el.hidden && el.textContent)(document.getElementById('login-error'))")
    assert "Bearer" in message
    assert await page.js("sessionStorage.getItem('cgwatch.token')") is None
    assert await page.js("document.getElementById('main').hidden") is True


# ---------------------------------------------------------------------------------------------
# What the page is served with (no browser needed)


async def test_the_page_and_its_files_load_without_the_token_with_a_strict_csp(agent, aiohttp_client):
    from cgwatch.server.app import create_app

    client = await aiohttp_client(create_app(agent, api=True))   # no Authorization header
    for path, kind in (("/", "text/html"), ("/static/app.js", "text/javascript"), ("/static/style.css", "text/css")):
        resp = await client.get(path)
        assert resp.status == 200, path
        assert resp.content_type == kind
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    html = await (await client.get("/")).text()
    # No inline script or style: everything the CSP allows comes from /static.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/app.js" defer>']
    assert "<style" not in html and " style=" not in html
    assert re.search(r"\son[a-z]+\s*=", html) is None      # no inline event handlers either


async def test_the_open_page_paths_open_nothing_else(agent, aiohttp_client):
    from cgwatch.server.app import create_app

    client = await aiohttp_client(create_app(agent, api=True))
    for path in ("/api/v1/containers", "/static/../api/v1/containers", "/static/%2e%2e/api/v1/containers",
                 "/static/..%2fapi%2fv1%2fcontainers", "/static/token", "/static/index.html/../../metrics"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status in (401, 404), (path, resp.status)
    # The same paths sent byte for byte (a client library would normalise the dots away first).
    for raw in ("/static/../api/v1/containers", "/static/%2e%2e/api/v1/containers", "/static//../metrics"):
        reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
        writer.write(f"GET {raw} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = (await reader.readline()).decode()
        writer.close()
        assert status_line.split()[1] in ("401", "404"), (raw, status_line)
    # Writes never pass as "the page".
    assert (await client.put("/", data=b"{}")).status in (401, 405)
    assert (await client.patch("/static/app.js", data=b"{}")).status == 401


async def test_the_public_listener_does_not_serve_the_page(agent, aiohttp_client):
    from cgwatch.server.app import create_app

    client = await aiohttp_client(create_app(agent))
    assert (await client.get("/")).status == 404
    assert (await client.get("/static/app.js")).status == 404
