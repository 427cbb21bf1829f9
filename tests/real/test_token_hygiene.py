"""The token never reaches the agent's log, an error body or the audit trail, whatever the client
sends; the HTTP parser's errors cost a line a minute per cause, not a traceback each; request
lines that are not HTTP/1.x and refs with a trailing newline are refused.

Against `cgwatch serve` as a subprocess (its stderr is the log), over raw sockets, since HTTP
clients refuse to send the bytes these tests are about.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.real.test_limits_api import limit_files
from tests.support.cgroups import wait_for
from tests.support.served import Served, get, raw_http, serve_agent

pytestmark = pytest.mark.real

FLOOD = 500


@pytest.fixture
def served(tmp_path):
    with serve_agent(tmp_path) as s:
        yield s


def request(served: Served, method: str, target: str, headers: dict[str, str] | None = None,
            body: bytes = b"", version: str = "HTTP/1.1", url: str | None = None) -> tuple[int, bytes, bytes]:
    """(status, status line and headers, body) of one raw request; header values sent as given."""
    url = url or served.api
    head = {"Host": url.split("://")[1], "Connection": "close", "Content-Length": str(len(body)), **(headers or {})}
    data = raw_http(url, f"{method} {target} {version}\r\n".encode("latin-1")
                    + "".join(f"{k}: {v}\r\n" for k, v in head.items()).encode("latin-1") + b"\r\n" + body)
    top, _, rest = data.partition(b"\r\n\r\n")
    return int(top.split()[1]), top, rest


def complete_log_lines(served: Served) -> list[str]:
    """The agent's log lines written so far (not one a thread is still writing)."""
    assert served.log is not None
    text = served.log.read_text()
    return text[:text.rfind("\n") + 1].splitlines()


def log_lines(served: Served) -> list[dict]:
    return [json.loads(line) for line in complete_log_lines(served)]


def audit_text(served: Served) -> str:
    path = served.state / "audit.log"
    return path.read_text() if path.exists() else ""


def audit_lines(served: Served) -> list[dict]:
    return [json.loads(line) for line in audit_text(served).splitlines()]


def shows(text: str | bytes, token: str) -> bool:
    """Either end of the token is in ``text`` (a bad byte inside it may split it in two)."""
    ends = (token[:10], token[-10:])
    return any((end.encode() if isinstance(text, bytes) else end) in text for end in ends)


def parser_warnings(served: Served) -> list[dict]:
    return [e for e in log_lines(served) if e["logger"] == "aiohttp.server" and "cause" in e]


@pytest.mark.parametrize("spoil", [
    pytest.param(lambda t: t + "\x01", id="control-byte-after"),
    pytest.param(lambda t: t[:10] + "\x01" + t[10:], id="control-byte-inside"),
    pytest.param(lambda t: t + "\r", id="cr-from-a-crlf-token-file"),
])
def test_a_bad_byte_in_the_authorization_header_is_a_400_that_shows_the_token_nowhere(served, spoil):
    token = served.token
    status, head, body = request(served, "PATCH", "/api/v1/containers/abc/limits",
                                 {"Authorization": f"Bearer {spoil(token)}"})
    assert status == 400
    assert not shows(head + body, token)
    assert len(parser_warnings(served)) == 1  # the parser's refusal was logged: the log is not empty
    log = served.log.read_text()
    assert not shows(log, token) and "Traceback" not in log
    assert not shows(audit_text(served), token)


@pytest.mark.parametrize("query", ["token={token}", "{token}", "a=1&access_token={token}"])
def test_a_token_in_the_query_string_of_a_write_is_not_in_the_audit_log(served, query):
    token = served.token
    status, _, body = request(served, "PATCH", f"/api/v1/containers/abc/limits?{query.format(token=token)}")
    assert status == 401 and token.encode() not in body
    assert [(line["path"], line["error"]["error"]) for line in audit_lines(served)] == [
        ("/api/v1/containers/abc/limits", "unauthorized")]
    assert token not in audit_text(served)
    assert token not in served.log.read_text()


def test_a_token_sent_as_the_ref_of_a_write_is_not_in_the_audit_log(served):
    """A ref has the shape of a token: a client that pastes the token in the wrong place must not
    leave it in the trail (0600, but read by whoever audits)."""
    token = served.token
    status, _, _ = request(served, "PATCH", f"/api/v1/containers/{token}/limits")
    assert status == 401
    [line] = audit_lines(served)
    assert line["error"]["error"] == "unauthorized" and line["ref"] == "<redacted>"
    assert token not in audit_text(served)


def test_a_flood_of_bad_header_bytes_adds_a_line_a_minute_and_the_agent_still_answers(served, record_property):
    before = complete_log_lines(served)
    started = time.monotonic()
    # A long header (within the parser's limits, server/app.py HTTP_LIMITS), its last byte bad:
    # each was a traceback quoting it twice (16 MB of log for 500 such requests of 16 KB).
    statuses = {request(served, "GET", "/healthz", {"X-Probe": "a" * 4000 + "\x01"})[0] for _ in range(FLOOD)}
    elapsed = time.monotonic() - started
    added = complete_log_lines(served)[len(before):]
    http_bytes = sum(len(line) + 1 for line in added if json.loads(line)["logger"].startswith("aiohttp"))
    record_property("aiohttp_log_bytes_for_500_bad_requests", http_bytes)
    print(f"{FLOOD} bad-header requests: {elapsed:.2f} s, aiohttp's log lines {http_bytes} bytes, "
          f"the whole log grew {sum(len(line) + 1 for line in added)} bytes")
    assert statuses == {400}
    assert len(parser_warnings(served)) == 1
    assert http_bytes < 1024
    assert get(f"{served.api}/healthz")[0] == 200
    assert get(f"{served.metrics}/metrics")[0] == 200


@pytest.mark.parametrize("listener", ["api", "metrics"])
def test_an_http_2_0_request_line_is_a_505(served, listener):
    status, _, body = request(served, "GET", "/healthz", version="HTTP/2.0", url=getattr(served, listener))
    assert status == 505
    assert json.loads(body)["error"] == "http_version_not_supported"


def test_an_http_2_0_write_is_a_505_and_audited(served):
    status, _, _ = request(served, "PATCH", "/api/v1/containers/abc/limits",
                           {"Authorization": f"Bearer {served.token}"}, version="HTTP/2.0")
    assert status == 505
    assert [(line["result"], line["error"]["error"]) for line in audit_lines(served)] == [
        ("rejected", "http_version_not_supported")]


def test_a_ref_ending_in_a_newline_is_an_invalid_ref_audited_and_nothing_written(sandbox, served):
    cid = uuid.uuid4().hex * 2
    cg = sandbox.create(f"docker/{cid}")
    before = limit_files(sandbox, cg)
    headers = {"Authorization": f"Bearer {served.token}", "Content-Type": "application/json"}
    change = json.dumps({"cpus": 0.5}).encode()
    status, _, body = request(served, "PATCH", f"/api/v1/containers/{cid}%0A/limits", headers, change)
    assert (status, json.loads(body)["error"]) == (400, "invalid_ref")
    assert limit_files(sandbox, cg) == before
    assert [(line["result"], line["error"]["error"]) for line in audit_lines(served)] == [("rejected", "invalid_ref")]
    # The control: the same request without the newline changes the container.
    assert request(served, "PATCH", f"/api/v1/containers/{cid}/limits", headers, change)[0] == 200
    assert limit_files(sandbox, cg) != before


def test_a_token_in_the_query_string_is_not_in_the_debug_access_log(tmp_path):
    with serve_agent(tmp_path, "--log-level", "debug") as served:
        token = served.token
        status, _, _ = request(served, "GET", f"/api/v1/containers?{token}", {"Authorization": f"Bearer {token}"})
        assert status == 200
        # aiohttp writes the access line once the reply is out: wait for it.
        wait_for(lambda: any(e.get("first_request_line") == "GET /api/v1/containers?<redacted> HTTP/1.1"
                             for e in log_lines(served) if e["logger"] == "aiohttp.access"), timeout=10)
        assert token not in served.log.read_text()
