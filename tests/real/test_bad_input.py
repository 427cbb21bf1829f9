"""Bad input against the live API: every case is a 4xx with a JSON error, no cgroup file changes,
and one audit line says "rejected". Each case sits next to a control that the same request,
made valid, is accepted, so the harness would see a write if one happened.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import pytest

from tests.real.test_limits_api import limit_files

pytestmark = pytest.mark.real

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def container(sandbox):
    cid = uuid.uuid4().hex * 2
    return cid, sandbox.create(f"docker/{cid}")


def audit_lines(agent) -> list[dict]:
    path = agent.settings.state_dir / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def refused(sandbox, agent, container):
    """Run one request; assert it was a 4xx JSON error, wrote nothing and left one "rejected" line."""
    cid, cg = container

    async def check(send, status: int | tuple[int, ...]) -> dict:
        before, audited = limit_files(sandbox, cg), len(audit_lines(agent))
        got, body = await send()
        statuses = status if isinstance(status, tuple) else (status,)
        assert got in statuses, (got, body)
        err = json.loads(body)
        assert err["error"] and err["message"]
        assert limit_files(sandbox, cg) == before
        new = audit_lines(agent)[audited:]
        assert [line["result"] for line in new] == ["rejected"], new
        return err
    return check


async def _reply(resp) -> tuple[int, bytes]:
    return resp.status, await resp.read()


def patch_json(api, cid: str, body) -> callable:
    return lambda: _reply_of(api.patch(f"/api/v1/containers/{cid}/limits", data=json.dumps(body), headers=JSON))


async def _reply_of(request) -> tuple[int, bytes]:
    async with request as resp:
        return await _reply(resp)


async def raw(api, method: str, target: str, headers: dict[str, str] | None = None,
              body: bytes = b"") -> tuple[int, bytes]:
    """One HTTP/1.1 request with the request target sent byte for byte (no client normalises it)."""
    reader, writer = await asyncio.open_connection(api.server.host, api.server.port)
    head = {"Host": f"{api.server.host}:{api.server.port}", "Connection": "close",
            "Content-Length": str(len(body)), **(headers or {})}
    writer.write(f"{method} {target} HTTP/1.1\r\n".encode("latin-1")
                 + "".join(f"{k}: {v}\r\n" for k, v in head.items()).encode("latin-1") + b"\r\n" + body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


# --- values ------------------------------------------------------------------------------

HOST_CPUS = os.cpu_count() or 1
BAD_VALUES = [
    {"cpus": -1}, {"cpus": 0}, {"cpus": "0.0001"}, {"cpus": 0.009}, {"cpus": 1e9}, {"cpus": HOST_CPUS + 1},
    {"cpus": True}, {"cpus": "abc"}, {"cpus": ""}, {"cpus": []}, {"cpus": {}}, {"cpus": "0,5"},
    {"cpus": "1.0000000001"}, {"cpus": 0.5, "force": None}, {"cpus": 0.5, "cpu_quota_us": 50000},
    {"memory": "100x"}, {"memory": "1e3"}, {"memory": 4 << 20}, {"memory": 2 ** 63}, {"memory": 2 ** 64},
    {"memory": "128m", "memory_swap": "64m"}, {"memory": "64m", "memory_reservation": "128m"},
    {"memory_swap": "128m"},
    {"cpu_period_us": 999}, {"cpu_period_us": 1000001}, {"cpu_quota_us": 999},
    {"cpuset_cpus": "0-9223372036854775807"}, {"cpuset_cpus": "3-1"}, {"cpuset_cpus": "0,,1"},
    {"cpuset_cpus": str(HOST_CPUS)},   # a CPU this host does not have online
    {"pids_limit": 0}, {"pids_limit": -5}, {"pids_limit": 2 ** 32},
    # One value meant to become two writes to cpu.max / memory.max.
    {"cpu_quota_us": "50000 100000\nmax"}, {"memory": "100m\nmax"},
    {"bogus": 1}, {},
]


@pytest.mark.parametrize("body", BAD_VALUES, ids=[json.dumps(b)[:60] for b in BAD_VALUES])
async def test_a_bad_value_is_a_422_naming_field_and_rule(refused, api, container, body):
    err = await refused(patch_json(api, container[0], body), 422)
    assert "field" in err and err.get("rule")


BAD_BODIES = [
    (b'{"cpus": NaN}', 400), (b'{"cpus": Infinity}', 400), (b'{"cpus": -Infinity}', 400),
    (b"[]", 400), (b"null", 400), (b"{not json", 400), (b'{"cpus": 0.5, "cpus": 1}', 400),
    (b'{"cpus": ' + b"[" * 2000 + b"]" * 2000 + b"}", 400),          # deep nesting
    (b'{"memory": ' + b"9" * 4000 + b"}", (400, 422)),                  # past int()'s digit limit
    (b'{"memory": ' + b"9" * 5000 + b"}", 413),                         # a 5,000-digit integer
    (b'{"cpus": "0.5\x00"}', 400), (b"\xff\xfe", 400),
]


@pytest.mark.parametrize("data, status", BAD_BODIES, ids=[repr(d[:30]) for d, _ in BAD_BODIES])
async def test_a_malformed_body_is_refused(refused, api, container, data, status):
    await refused(lambda: _reply_of(api.patch(f"/api/v1/containers/{container[0]}/limits", data=data,
                                              headers=JSON)), status)


async def test_a_10_mb_body_is_refused_before_it_is_read(refused, api, container):
    data = b'{"cpus": 0.5, "x": "' + b"a" * (10 << 20) + b'"}'
    await refused(lambda: _reply_of(api.patch(f"/api/v1/containers/{container[0]}/limits", data=data,
                                              headers=JSON)), 413)


@pytest.mark.parametrize("data, content_type", [
    (b'{"cpus": 0.5}', "text/plain"),                                  # fetch() without a type
    (b"cpus=0.5", "application/x-www-form-urlencoded"),                # an HTML form post
    (b'--b\r\nContent-Disposition: form-data; name="cpus"\r\n\r\n0.5\r\n--b--\r\n', "multipart/form-data; boundary=b"),
    (b'{"cpus": 0.5}', ""),
])
async def test_a_body_that_is_not_declared_json_is_a_415(refused, api, container, data, content_type):
    await refused(lambda: _reply_of(api.patch(f"/api/v1/containers/{container[0]}/limits", data=data,
                                              headers={"Content-Type": content_type})), 415)


# --- refs ----------------------------------------------------------------------------------

# "../.." reaches no route (404); every other one is not ref-shaped (400), the 10,000-character one
# included: it is checked whole, not cut to the 200 characters the audit line keeps of it.
BAD_REFS = [("..", 400), ("../..", 404), ("..%2f..%2f", 400), ("%2e%2e", 400), ("%2e%2e%2f%2e%2e", 400),
            ("%2Fsys%2Ffs%2Fcgroup", 400), ("abc%00def", 400), ("abc%0Adef", 400), ("abc%0D%0AX-Injected:%201", 400),
            ("a" * 10_000, 400), ("-rf", 400), (".hidden", 400), ("%20", 400)]


@pytest.mark.parametrize("ref, status", BAD_REFS, ids=[r[:20] for r, _ in BAD_REFS])
async def test_a_ref_that_is_not_a_container_name_is_refused(refused, api, agent, ref, status):
    body = json.dumps({"cpus": 0.5}).encode()
    headers = {"Authorization": f"Bearer {agent.token}", **JSON}
    err = await refused(lambda: raw(api, "PATCH", f"/api/v1/containers/{ref}/limits", headers, body), status)
    assert err["error"] == ("invalid_ref" if status == 400 else "not_found")


async def test_dot_segments_in_the_path_do_not_reach_another_route(refused, api, agent, container):
    """"../../" must not climb out of the container routes (say, to a parent path the router serves)."""
    body = json.dumps({"cpus": 0.5}).encode()
    headers = {"Authorization": f"Bearer {agent.token}", **JSON}
    for target in (f"/api/v1/containers/{container[0]}/../../limits", "/api/v1/containers/../../../sys/fs/cgroup/limits"):
        await refused(lambda: raw(api, "PATCH", target, headers, body), (400, 404))


async def test_an_ambiguous_id_prefix_is_a_409(refused, sandbox, api):
    shared = uuid.uuid4().hex[:12]
    for _ in range(2):
        sandbox.create(f"docker/{shared}{uuid.uuid4().hex}{uuid.uuid4().hex[:20]}")
    err = await refused(patch_json(api, shared, {"cpus": 0.5}), 409)
    assert err["error"] == "ambiguous_ref"


async def test_control_the_same_raw_request_with_a_good_ref_writes(sandbox, api, agent, container):
    """The raw client above can write: the refusals are the server's, not the harness's."""
    cid, cg = container
    status, _ = await raw(api, "PATCH", f"/api/v1/containers/{cid}/limits",
                          {"Authorization": f"Bearer {agent.token}", **JSON}, b'{"pids_limit": 77}')
    assert status == 200
    assert limit_files(sandbox, cg)["pids.max"].strip() == "77"
    assert audit_lines(agent)[-1]["result"] == "accepted"


# --- methods, tokens, Host and Origin --------------------------------------------------------

@pytest.mark.parametrize("method", ["POST", "OPTIONS", "TRACE", "CONNECT", "PROPFIND"])
async def test_a_method_the_route_does_not_serve_is_a_405(refused, api, agent, container, method):
    headers = {"Authorization": f"Bearer {agent.token}", **JSON, "Origin": f"http://{api.server.host}:{api.server.port}"}
    target = f"/api/v1/containers/{container[0]}/limits"
    status, body = await raw(api, method, target, headers, b'{"cpus": 0.5}')
    if method == "CONNECT":       # not a request target aiohttp routes; still no write
        assert 400 <= status < 500
        return
    await refused(lambda: raw(api, method, target, headers, b'{"cpus": 0.5}'), 405)


async def test_options_grants_no_cross_origin_write(api, agent, container):
    """A browser's preflight gets no Access-Control-Allow-* headers, so it never sends the PUT."""
    resp = await api.options(f"/api/v1/containers/{container[0]}/limits",
                             headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "PUT"})
    assert resp.status in (403, 405)
    assert not [h for h in resp.headers if h.lower().startswith("access-control-")]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_get_and_head_with_a_body_only_read(sandbox, api, agent, container, method):
    cid, cg = container
    before, audited = limit_files(sandbox, cg), len(audit_lines(agent))
    resp = await api.request(method, f"/api/v1/containers/{cid}/limits", data=b'{"cpus": 0.5}', headers=JSON)
    assert resp.status == 200
    assert limit_files(sandbox, cg) == before and len(audit_lines(agent)) == audited


def _tokens(token: str) -> list[str]:
    return ["", "Bearer", "Bearer ", "Bearer wrong", f"Bearer {token[:-1]}", f"Bearer {token}x",
            f"Bearer {token * 2}", f"Basic {token}", f"bearer{token}"]


async def test_no_token_a_wrong_one_and_one_of_the_wrong_length_are_401(refused, api, agent, container):
    for auth in _tokens(agent.token):
        headers = {**JSON, "Authorization": auth}
        err = await refused(lambda: raw(api, "PATCH", f"/api/v1/containers/{container[0]}/limits", headers,
                                        b'{"cpus": 0.5}'), (400, 401))
        assert err["error"] in ("unauthorized", "bad_request"), auth


@pytest.mark.parametrize("host", ["evil.example", "evil.example:9339", "127.0.0.1.nip.io", "localhost.evil.example",
                                  "user@127.0.0.1", "0.0.0.0", "[::ffff:7f00:1]:80x"])
async def test_a_foreign_host_name_is_refused(refused, api, agent, container, host):
    """DNS rebinding: a page on evil.example pointed its name at 127.0.0.1."""
    headers = {"Authorization": f"Bearer {agent.token}", **JSON, "Host": host}
    await refused(lambda: raw(api, "PATCH", f"/api/v1/containers/{container[0]}/limits", headers,
                              b'{"cpus": 0.5}'), (400, 403))


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "https://127.0.0.1:{port}",
                                    "http://127.0.0.1:{other}", "http://localhost.evil.example:{port}", "file://"])
async def test_a_foreign_origin_is_refused(refused, api, agent, container, origin):
    headers = {"Authorization": f"Bearer {agent.token}", **JSON,
               "Origin": origin.format(port=api.server.port, other=api.server.port + 1)}
    err = await refused(lambda: raw(api, "PATCH", f"/api/v1/containers/{container[0]}/limits", headers,
                                    b'{"cpus": 0.5}'), 403)
    assert err["error"] == "origin_not_allowed"


@pytest.mark.parametrize("host, origin", [("127.0.0.1:{port}", "http://127.0.0.1:{port}"),
                                          ("localhost:{port}", "http://localhost:{port}"),
                                          ("localhost:8080", None)])   # through an ssh -L tunnel
async def test_loopback_names_and_the_same_origin_are_served(sandbox, api, agent, container, host, origin):
    cid, cg = container
    headers = {"Authorization": f"Bearer {agent.token}", **JSON, "Host": host.format(port=api.server.port)}
    if origin:
        headers["Origin"] = origin.format(port=api.server.port)
    status, body = await raw(api, "PATCH", f"/api/v1/containers/{cid}/limits", headers, b'{"pids_limit": 55}')
    assert status == 200, body
    assert limit_files(sandbox, cg)["pids.max"].strip() == "55"
