"""The CLI contract: `cgwatch serve` on both listeners, health, metrics, a clean SIGTERM exit."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import urllib.request

import pytest

from tests.support.cgroups import wait_for
from tests.support.served import free_port, get, serve_agent

pytestmark = pytest.mark.real


def test_serve_answers_on_both_listeners_and_stops_on_sigterm(sandbox, tmp_path):
    metrics_port, api_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cgwatch", "serve", "--listen", f"127.0.0.1:{metrics_port}",
         "--api-listen", f"127.0.0.1:{api_port}", "--state-dir", str(tmp_path), "--docker-host", "", "--podman-host", "", "--containerd-host", "",
         "--ignore-cgroup", "/process_api*", "--max-age", "0"],
        stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{metrics_port}/healthz")[0] == 200, timeout=20)
        status, body = get(f"http://127.0.0.1:{metrics_port}/healthz")
        assert json.loads(body)["status"] == "ok"
        cg = sandbox.create("plain/serve")
        sandbox.sleeper(cg)
        status, body = get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200 and f'container_processes{{id="{cg}"'.encode() in body
        # The API listener wants the token, even for reads; it was generated into the state dir.
        assert get(f"http://127.0.0.1:{api_port}/api/v1/containers")[0] == 401
        token = (tmp_path / "token").read_text().strip()
        assert (tmp_path / "token").stat().st_mode & 0o777 == 0o600
        status, body = get(f"http://127.0.0.1:{api_port}/api/v1/containers", token)
        assert status == 200 and any(c["cgroup"] == cg for c in json.loads(body)["containers"])
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    # Structured logs: every line is one JSON object.
    events = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert any(e["msg"] == "listening" and e["role"] == "api" for e in events)


def test_serve_rejects_a_bad_listen_address():
    result = subprocess.run([sys.executable, "-m", "cgwatch", "serve", "--listen", "nonsense"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "expected HOST:PORT" in result.stderr


def test_serve_refuses_a_remote_api_without_tls(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cgwatch", "serve", "--api-listen", "0.0.0.0:0",
                             "--listen", "127.0.0.1:0", "--state-dir", str(tmp_path), "--docker-host", ""],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--tls-cert" in result.stderr


def test_metrics_are_gzipped_for_clients_that_ask_and_the_same_text_otherwise(sandbox, tmp_path):
    """Prometheus sends Accept-Encoding: gzip; curl without --compressed does not."""
    cg = sandbox.create("plain/gzip")
    sandbox.sleeper(cg)
    with serve_agent(tmp_path, "--max-age", "60") as served:   # both requests share one collection
        url = f"{served.metrics}/metrics"
        status, zipped, headers = _get_with_headers(url, {"Accept-Encoding": "gzip, deflate"})
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        assert int(headers["Content-Length"]) == len(zipped)
        status, plain, headers = _get_with_headers(url, {"Accept-Encoding": "gzip;q=0, identity"})
        assert status == 200 and "Content-Encoding" not in headers
        assert gzip.decompress(zipped) == plain
        assert len(zipped) * 5 < len(plain)
        assert f'container_processes{{id="{cg}"'.encode() in plain
        status, head, headers = _get_with_headers(url, {}, method="HEAD")
        assert status == 200 and head == b"" and int(headers["Content-Length"]) == len(plain)


def _get_with_headers(url: str, headers: dict[str, str], method: str = "GET") -> tuple[int, bytes, dict[str, str]]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers, method=method), timeout=10) as resp:
        return resp.status, resp.read(), dict(resp.headers)
