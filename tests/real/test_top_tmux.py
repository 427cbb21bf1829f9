"""`cgwatch top` in a real terminal (tmux), and `ps`/`top --json` for scripts, against real cgroups.

The agent runs as `cgwatch serve` in a subprocess, as a person would run it; `top` reads its API.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO, need
from tests.support.served import free_port, serve_agent
from tests.support.cgroups import wait_for

pytestmark = pytest.mark.real


@pytest.fixture
def served_agent(tmp_path):
    """`cgwatch serve` on free loopback ports; yields (api URL, state dir)."""
    with serve_agent(tmp_path) as served:
        yield served.api, served.state


@pytest.fixture
def two_containers(sandbox):
    """Docker-shaped cgroups: one spinning a CPU with little memory, one holding 200 MiB idle."""
    busy_id, hog_id = uuid.uuid4().hex * 2, uuid.uuid4().hex * 2
    busy_cg, hog_cg = sandbox.create(f"docker/{busy_id}"), sandbox.create(f"docker/{hog_id}")
    sandbox.busy_loop(busy_cg)
    hog = sandbox.memory_hog(hog_cg, 200)
    assert hog.stdout.readline().strip() == "allocated"
    return busy_id, hog_id


def cgwatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "cgwatch", *args]


class Tmux:
    """A tmux server of our own (its own socket), so nothing else's sessions are touched."""

    def __init__(self, tmp: Path):
        self.socket = f"cgwatch-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.socket_path = ""
        self.tmp = tmp

    def run(self, *args: str) -> subprocess.CompletedProcess:
        # An explicit environment: something in the pytest process puts COLUMNS=80/LINES=24 into the C-level
        # environ (not os.environ), and curses in the pane would believe them over the 160x40 terminal.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10, env=env)

    def start(self, argv: list[str]) -> Path:
        """Run argv in a 160x40 terminal; its exit status lands in the returned file."""
        status = self.tmp / "exit-status"
        command = f"{shlex.join(argv)}; echo $? > {shlex.quote(str(status))}"
        result = self.run("new-session", "-d", "-s", "top", "-x", "160", "-y", "40", "-c", str(REPO), command)
        assert result.returncode == 0, result.stderr
        self.socket_path = self.run("display", "-p", "-t", "top", "#{socket_path}").stdout.strip()
        return status

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "top").stdout

    def keys(self, *keys: str) -> None:
        assert self.run("send-keys", "-t", "top", *keys).returncode == 0

    def kill(self) -> None:
        self.run("kill-server")
        if self.socket_path:
            Path(self.socket_path).unlink(missing_ok=True)   # tmux leaves its socket file behind

    def wait_screen(self, predicate, timeout: float = 10) -> str:
        """The screen, once ``predicate(screen)`` holds."""
        def ready() -> str | None:
            screen = self.screen()
            return screen if predicate(screen) else None
        return wait_for(ready, timeout=timeout)


@pytest.fixture
def tmux(tmp_path):
    need(None if shutil.which("tmux") else "needs tmux (Debian package tmux)")
    t = Tmux(tmp_path)
    try:
        yield t
    finally:
        t.kill()


def row_order(screen: str, *ids: str) -> list[str]:
    """The given container IDs in the order their rows appear (as top shows them: 12 characters)."""
    lines = screen.splitlines()
    found = []
    for i, line in enumerate(lines):
        for cid in ids:
            if line.startswith(cid[:12] + " "):
                found.append((i, cid))
    return [cid for _, cid in sorted(found)]


def cpu_of(screen: str, cid: str) -> str | None:
    for line in screen.splitlines():
        if line.startswith(cid[:12] + " "):
            return line.split()[2]
    return None


def test_top_in_a_terminal_sorts_by_memory_on_m_and_quits_on_q(served_agent, two_containers, sandbox, tmux):
    api, state = served_agent
    busy_id, hog_id = two_containers
    status = tmux.start(cgwatch("top", "--api", api, "--state-dir", str(state), "--match", f"*/{sandbox.name}/*"))

    # The busy loop's CPU is measured (a number, not "-") and it leads the default CPU order.
    screen = tmux.wait_screen(lambda s: re.fullmatch(r"\d+\.\d%", cpu_of(s, busy_id) or ""), timeout=20)
    assert f"source: agent API {api}" in screen
    assert "sorted by CPU %" in screen and "2 containers" in screen
    assert float(cpu_of(screen, busy_id).rstrip("%")) > 5
    assert row_order(screen, busy_id, hog_id) == [busy_id, hog_id]

    tmux.keys("m")
    # The screen is read while top may be redrawing it: wait for the whole of both rows.
    screen = tmux.wait_screen(lambda s: "sorted by memory" in s and re.search(r"\b2\d\d\.\dMiB / unlimited", s)
                              and len(row_order(s, busy_id, hog_id)) == 2)
    assert row_order(screen, busy_id, hog_id) == [hog_id, busy_id]

    tmux.keys("n")
    tmux.wait_screen(lambda s: "sorted by name" in s)

    tmux.keys("q")
    wait_for(lambda: status.exists() and status.read_text().strip() != "", timeout=10)
    assert status.read_text().strip() == "0"


def test_top_without_a_terminal_asks_for_json(served_agent):
    api, state = served_agent
    result = subprocess.run(cgwatch("top", "--api", api, "--state-dir", str(state)), capture_output=True, text=True,
                            timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "--json" in result.stderr


def test_top_json_prints_one_document_per_refresh(served_agent, two_containers, sandbox):
    api, state = served_agent
    busy_id, hog_id = two_containers
    started = time.monotonic()
    result = subprocess.run(cgwatch("top", "--json", "--iterations", "3", "--interval", "0.5", "--api", api,
                                    "--state-dir", str(state), "--match", f"*/{sandbox.name}/*"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(docs) == 3 and time.monotonic() - started >= 1.5
    for doc in docs:
        assert doc["source"] == f"agent API {api}"
        by_id = {c["id"]: c for c in doc["containers"]}
        assert set(by_id) == {busy_id, hog_id}
        assert by_id[busy_id]["cpu_percent"] > 5
        assert by_id[hog_id]["memory_bytes"] > 190 << 20


def test_ps_reads_the_agent_and_sorts(served_agent, two_containers, sandbox):
    api, state = served_agent
    busy_id, hog_id = two_containers
    result = subprocess.run(cgwatch("ps", "--api", api, "--state-dir", str(state), "--sort", "memory",
                                    "--match", f"*/{sandbox.name}/*"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # The interval is the measured time between the two readings: --interval (1 s) plus the reads.
    assert re.match(rf"source: agent API {re.escape(api)}; 2 containers; rates over \d+\.\ds", lines[0]), lines[0]
    assert lines[1].split()[:2] == ["NAME", "RUNTIME"]
    assert [line.split()[0] for line in lines[2:]] == [hog_id[:12], busy_id[:12]]


def test_ps_reads_the_host_when_no_agent_answers(two_containers, sandbox):
    busy_id, hog_id = two_containers
    result = subprocess.run(cgwatch("ps", "--json", "--interval", "0.5", "--api", f"http://127.0.0.1:{free_port()}",
                                    "--ignore-cgroup", "/process_api*", "--match", f"*/{sandbox.name}/*"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["source"].startswith("host cgroupfs /sys/fs/cgroup and /proc (no agent answered at")
    by_id = {c["id"]: c for c in doc["containers"]}
    assert by_id[busy_id]["cpu_percent"] > 5
    assert by_id[hog_id]["cpu_percent"] < 20


def test_ps_with_a_wrong_token_says_so_and_does_not_fall_back(served_agent, tmp_path):
    api, _ = served_agent
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token\n")
    result = subprocess.run(cgwatch("ps", "--api", api, "--token-file", str(wrong)), capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 1
    assert "answered HTTP 401" in result.stderr and "--token-file" in result.stderr
