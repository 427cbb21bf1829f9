"""The human side at scale: the web page's first paint in headless Chromium, and `cgwatch top`'s
refresh under tmux, with N Docker-shaped containers (sandbox.py) and the real agent.

- page: Chromium (as tests/real/test_web_page.py drives it, over the DevTools protocol) opens the
  page with the token already in the tab's sessionStorage; first paint is the page's own clock
  (performance.now(), from the navigation's start) at the first animation frame after the table
  has its rows. Then the time each 2 s poll spends in the page's script (render, at the poll).
- top: `cgwatch top --interval 1` in a tmux pane of 200x50; the clock in its header line is read
  every 50 ms for ``--top-seconds``: the refresh period is the time between header changes.

    .venv/bin/python bench/web_bench.py --n 3000
    .venv/bin/python bench/web_bench.py --n 3000 --agent-tree /tmp/cgwatch-base

Needs chromium and tmux. JSON in bench/results/web-latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from agent_process import DEPLOYED_NOFILE, AgentProcess, nofile_for_agent, nofile_limits
from sandbox import BenchCgroups, remove_sandbox, start_as_root, uninterruptible
from scrape_bench import log, save_result
from tests.real.test_web_page import CHROMIUM_FLAGS, DEVTOOLS_LINE, Page
from tests.support.cgroups import wait_for
from tests.support.env import REPO

# Set before the page's own script runs (CDP runs it in every new document): when the table first
# has rows, the next animation frame's time is recorded. The page's CSP does not apply to it.
FIRST_PAINT = """
new MutationObserver((_, obs) => {
  const body = document.querySelector('#containers tbody');
  if (body && body.children.length) {
    obs.disconnect();
    requestAnimationFrame(() => { window.__cgwatchFirstRows = performance.now(); });
  }
}).observe(document, {childList: true, subtree: true});
// When the page starts reading each containers response: the script's share of a poll begins.
window.__cgwatchBodies = [];
const json = Response.prototype.json;
Response.prototype.json = function () {
  if (new URL(this.url).pathname === '/api/v1/containers') window.__cgwatchBodies.push(performance.now());
  return json.call(this);
};
"""


class BenchPage(Page):
    """The test's DevTools client, patient: the page before paging keeps its main thread busy for
    tens of seconds at 3000 rows, and an evaluation waits for it."""

    async def send(self, method: str, **params) -> dict:
        self.next_id += 1
        call_id = self.next_id
        await self.ws.send_json({"id": call_id, "method": method, "params": params})
        while True:
            msg = await asyncio.wait_for(self.ws.receive_json(), timeout=600)
            if msg.get("id") == call_id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)


async def page_figures(agent: AgentProcess, token: str, tmp: Path, polls: int) -> dict[str, Any]:
    log_path = tmp / "chromium.log"
    with log_path.open("w") as chromium_log:
        browser = subprocess.Popen(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=chromium_log, start_new_session=True,
                                   env={**os.environ, "TMPDIR": str(tmp)})
    session = aiohttp.ClientSession()
    try:
        found = wait_for(lambda: DEVTOOLS_LINE.search(log_path.read_text()), timeout=30)
        async with session.get(f"http://127.0.0.1:{found.group(2)}/json/list") as resp:
            target = next(t for t in await resp.json() if t["type"] == "page")
        ws = await session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        page = BenchPage(ws)
        for domain in ("Page.enable", "Runtime.enable"):
            await page.send(domain)
        base = f"http://127.0.0.1:{agent.api_port}"
        await page.send("Page.navigate", url=base + "/static/style.css")  # the origin, without the app
        await page.js(f"sessionStorage.setItem('cgwatch.token', {json.dumps(token)})")
        await page.send("Page.addScriptToEvaluateOnNewDocument", source=FIRST_PAINT)
        await page.send("Page.navigate", url=base + "/")
        await asyncio.sleep(0.5)  # the navigation commits (the figure is the page's own clock)
        first_paint_ms = await page.wait("window.__cgwatchFirstRows", timeout=600)
        rows = await page.js("document.querySelectorAll('#containers tbody tr').length")
        listed = await page.js("(document.getElementById('page-info') || {textContent: 'no pager'}).textContent")
        fetch_ms = await page.js("""(() => {
            const e = performance.getEntriesByType('resource').find((r) => new URL(r.name).pathname === '/api/v1/containers');
            return e ? {request_start: e.requestStart, response_start: e.responseStart, response_end: e.responseEnd,
                        bytes: e.encodedBodySize} : null; })()""")
        # Each later poll: from the page starting to read the response to the next frame after the
        # table and the status line are updated (the script's share of a poll).
        renders = await page.js(f"""new Promise((resolve) => {{
            const times = [];
            new MutationObserver(() => {{
              const start = window.__cgwatchBodies[window.__cgwatchBodies.length - 1];
              requestAnimationFrame(() => {{ times.push(performance.now() - start);
                                             if (times.length >= {polls}) resolve(times); }});
            }}).observe(document.getElementById('status'), {{childList: true, characterData: true, subtree: true}});
        }})""")
        filter_ms = await page.js("""(() => {
            const el = document.getElementById('filter');
            const t = performance.now();
            el.value = 'ff'; el.dispatchEvent(new Event('input'));
            return performance.now() - t;
        })()""")
        await ws.close()
        return {"first_paint_ms": first_paint_ms, "first_fetch": fetch_ms, "rows_in_dom": rows, "page_info": listed,
                "poll_to_render_ms": renders, "filter_keystroke_ms": filter_ms}
    finally:
        await session.close()
        try:
            os.killpg(browser.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        browser.wait(timeout=20)


HEADER_CLOCK = re.compile(r"cgwatch top\s+(\d\d:\d\d:\d\d)")


def top_figures(agent: AgentProcess, seconds: float) -> dict[str, Any]:
    socket = f"cgwatch-bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    tmux = ["tmux", "-L", socket]
    cmd = (f"cd {agent.cwd} && exec {sys.executable} -m cgwatch top --interval 1 "
           f"--api http://127.0.0.1:{agent.api_port} --state-dir {agent.state_dir}")
    env = {"PATH": os.environ["PATH"], "TERM": "xterm-256color", "HOME": os.environ.get("HOME", "/root")}
    subprocess.run([*tmux, "new-session", "-d", "-x", "200", "-y", "50", cmd], check=True, env=env)
    try:
        changes: list[float] = []
        last = None
        deadline = time.monotonic() + seconds
        first_screen = None
        started = time.monotonic()
        while time.monotonic() < deadline:
            screen = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True).stdout
            found = HEADER_CLOCK.search(screen)
            stamp = (found.group(1), screen.splitlines()[4:6]) if found else None
            if found and first_screen is None:
                first_screen = time.monotonic() - started
            if stamp is not None and stamp != last:
                changes.append(time.monotonic())
                last = stamp
            time.sleep(0.05)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    periods = [b - a for a, b in zip(changes[1:], changes[2:])]
    return {"first_screen_s": first_screen, "refreshes": len(changes), "periods_s": periods,
            "period_p50_s": statistics.median(periods) if periods else None,
            "period_max_s": max(periods) if periods else None}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--polls", type=int, default=5, help="page polls timed after the first paint")
    p.add_argument("--top-seconds", type=float, default=20.0)
    p.add_argument("--agent-tree", type=Path, default=REPO)
    p.add_argument("--agent-arg", action="append", default=[], metavar="ARG",
                   help="one more `serve` argument (the bench's agent runs with --max-age 0 unless told)")
    p.add_argument("--agent-nofile", type=int, default=DEPLOYED_NOFILE, metavar="N",
                   help="the agent's soft and hard RLIMIT_NOFILE, as deploy/cgwatch.service's LimitNOFILE "
                   f"(default {DEPLOYED_NOFILE}; capped at this process's hard limit when it cannot raise it)")
    p.add_argument("--warm", action="store_true",
                   help="scrape /metrics once before opening the page, as Prometheus will have done on any agent "
                        "that has run a while (the first collection after a start also registers every cgroup for "
                        "OOM kills and reads every limit)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "web-latest.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not start_as_root("web_bench"):
        return 2
    for tool in ("chromium", "tmux"):
        if shutil.which(tool) is None:
            print(f"web_bench: needs {tool}", file=sys.stderr)
            return 2
    nofile = nofile_for_agent(args.agent_nofile)
    tmp = Path(tempfile.mkdtemp(prefix="cgwatch-web-"))
    sandbox: BenchCgroups | None = None
    agent: AgentProcess | None = None
    result: dict[str, Any] | None = None
    try:
        sandbox = BenchCgroups()
        sandbox.add_containers(args.n)
        agent = AgentProcess(tmp / "state", extra_args=tuple(args.agent_arg), cwd=args.agent_tree, nofile=nofile)
        agent.start()
        agent_nofile = list(nofile_limits(agent.pid))  # the soft one as the agent raised it
        token = (tmp / "state" / "token").read_text().strip()
        if args.warm:
            t0 = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{agent.port}/metrics", timeout=600) as resp:
                resp.read()
            log(f"warmed: one scrape in {time.monotonic() - t0:.2f}s")
        log("page")
        page = asyncio.run(page_figures(agent, token, tmp, args.polls))
        log(f"page: first paint {page['first_paint_ms']:.0f} ms; top for {args.top_seconds:g}s")
        top = top_figures(agent, args.top_seconds)
        result = {"n": len(sandbox.containers), "agent_tree": str(args.agent_tree), "warm": args.warm,
                  "agent_args": args.agent_arg,
                  "agent_rlimit_nofile": agent_nofile, "page": page, "top": top}
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
    finally:
        with uninterruptible():
            if agent is not None:
                agent.stop()
            remove_sandbox(sandbox, tmp)
    if result is None:
        return 130
    page, top = result["page"], result["top"]
    print(f"N={result['n']}: page first paint {page['first_paint_ms']:.0f} ms ({page['rows_in_dom']} rows in the "
          f"DOM, {page['page_info']}); first /api/v1/containers response "
          f"{page['first_fetch']['response_start']:.0f}-{page['first_fetch']['response_end']:.0f} ms; poll to render p50 {statistics.median(page['poll_to_render_ms']):.0f} ms; "
          f"filter keystroke {page['filter_keystroke_ms']:.0f} ms")
    print(f"top --interval 1: first screen {top['first_screen_s']}s; refresh period p50 {top['period_p50_s']} s, "
          f"max {top['period_max_s']} s over {top['refreshes']} refreshes")
    save_result(args, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
