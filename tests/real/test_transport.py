"""TLS, client certificates and basic auth from a web config (--web-config-file), tried with real
clients: curl, `openssl s_client`, Python's ssl and a real Prometheus scraping over https.

Two agents: one with TLS only (its API on 0.0.0.0, which TLS allows), and one that wants a client
certificate from the test CA naming prometheus.test on both listeners plus a password on /metrics.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO, need
from tests.support.agent import samples
from tests.support.cgroups import have_real_cgroups, wait_for
from tests.support.pki import Pki, make_pki, openssl_missing
from tests.support.prometheus import prometheus_missing, running_prometheus
from tests.support.served import Served, free_port, http, serve_agent

pytestmark = pytest.mark.real

USER, PASSWORD = "prometheus", "correct horse battery staple"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    need(openssl_missing())
    need(None if shutil.which("curl") else "needs curl (Debian package curl)")
    return make_pki(tmp_path_factory.mktemp("pki"))


def client_context(pki: Pki, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pki.ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def healthy(url: str, ctx: ssl.SSLContext) -> bool:
    return http(f"{url}/healthz", context=ctx, timeout=5)[0] == 200


@dataclass(frozen=True)
class TlsOnly:
    served: Served
    api: str  # https://127.0.0.1:<port> of an --api-listen on 0.0.0.0


@pytest.fixture(scope="module")
def tls_only(pki, tmp_path_factory):
    """TLS on both listeners, no client certificates, no basic auth; the API on every address."""
    need(have_real_cgroups())
    work = tmp_path_factory.mktemp("tls-only")
    (work / "web.yml").write_text(f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n")
    api_port = free_port()
    ctx = client_context(pki)
    with serve_agent(work, "--web-config-file", str(work / "web.yml"), "--api-listen", f"0.0.0.0:{api_port}",
                     scheme="https", ready=lambda s: healthy(s.metrics, ctx)) as served:
        yield TlsOnly(served, f"https://127.0.0.1:{api_port}")


@pytest.fixture(scope="module")
def mtls(pki, tmp_path_factory):
    """Client certificates required (and their SAN checked) on both listeners, a password on /metrics."""
    need(have_real_cgroups())
    work = tmp_path_factory.mktemp("mtls")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    # Relative names: resolved against the web config's directory, as exporter-toolkit does.
    for path in (pki.server_cert, pki.server_key, pki.ca):
        os.symlink(path, work / path.name)
    (work / "web.yml").write_text(f"""\
tls_server_config:
  cert_file: {pki.server_cert.name}
  key_file: {pki.server_key.name}
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: {pki.ca.name}
  client_allowed_sans: [prometheus.test]
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
basic_auth_users:
  {USER}: '{hashed}'
""")
    ctx = client_context(pki, pki.client_cert, pki.client_key)
    # --max-age 30: a scrape is served from the last collection, so a busy host cannot time one out.
    with serve_agent(work, "--web-config-file", str(work / "web.yml"), "--no-raw-cgroups", "--max-age", "30",
                     scheme="https", ready=lambda s: healthy(s.api, ctx)) as served:
        yield served


@dataclass(frozen=True)
class Reply:
    code: int      # 0: no HTTP reply at all
    headers: str
    body: str
    error: str     # curl's message when it failed
    exit: int


def curl(url: str, *options: str | Path) -> Reply:
    """One request with the real curl; --fail is not used, so a 4xx is a reply like any other."""
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "-D", "/dev/stderr", "-o", "-", "-w", "\n%{http_code}",
                          *map(str, options), url], capture_output=True, text=True, timeout=30)
    body, _, code = out.stdout.rpartition("\n")
    return Reply(int(code or 0), out.stderr, body, out.stderr if out.returncode else "", out.returncode)


def trust(pki: Pki) -> list:
    return ["--cacert", pki.ca]


def as_client(pki: Pki) -> list:
    return [*trust(pki), "--cert", pki.client_cert, "--key", pki.client_key]


def basic(user: str = USER, password: str = PASSWORD) -> list:
    return ["-u", f"{user}:{password}"]


def bearer(served: Served) -> list:
    return ["-H", f"Authorization: Bearer {served.token}"]


def s_client(port: int, version: str, pki: Pki) -> subprocess.CompletedProcess:
    # No system config and security level 0: the client itself is willing to speak TLS 1.1, so a
    # failure is the server's refusal (Debian's openssl.cnf would stop the client first).
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", f"-{version}", "-msg",
                           "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", str(pki.ca), "-verify_return_error"],
                          input="", capture_output=True, text=True, timeout=30,
                          env={**os.environ, "OPENSSL_CONF": "/dev/null"})


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


# -- TLS alone --------------------------------------------------------------------------------


def test_curl_trusting_the_ca_reaches_both_listeners_over_https(tls_only, pki):
    reply = curl(f"{tls_only.served.metrics}/metrics", *trust(pki))
    assert reply.code == 200 and "container_cpu_usage_seconds_total" in reply.body
    assert curl(f"{tls_only.api}/healthz", *trust(pki)).code == 200
    assert curl(f"{tls_only.api}/api/v1/containers", *trust(pki)).code == 401  # the token still applies
    reply = curl(f"{tls_only.api}/api/v1/containers", *trust(pki), *bearer(tls_only.served))
    assert reply.code == 200 and json.loads(reply.body)["containers"]


def test_curl_without_the_ca_does_not_trust_the_server(tls_only):
    reply = curl(f"{tls_only.served.metrics}/healthz")
    assert reply.code == 0 and reply.exit == 60, reply.error  # CURLE_PEER_FAILED_VERIFICATION


def test_plain_http_to_a_tls_port_gets_no_reply(tls_only):
    for url in (tls_only.served.metrics, tls_only.api):
        reply = curl(url.replace("https://", "http://") + "/healthz")
        assert reply.code == 0 and reply.exit != 0, reply


def test_tls_1_1_is_refused(tls_only, pki):
    out = s_client(port_of(tls_only.served.metrics), "tls1_1", pki)
    # The client offered TLS 1.1 and the server never answered with a ServerHello.
    assert "ClientHello" in out.stdout and "ServerHello" not in out.stdout
    assert out.returncode != 0


@pytest.mark.parametrize("version, protocol", [("tls1_2", "TLSv1.2"), ("tls1_3", "TLSv1.3")])
def test_tls_1_2_and_1_3_are_served(tls_only, pki, version, protocol):
    for url in (tls_only.served.metrics, tls_only.api):
        out = s_client(port_of(url), version, pki)
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"New, {protocol}, Cipher is" in out.stdout and "Verify return code: 0 (ok)" in out.stdout


def handshake_failures(metrics_url: str, *options: str | Path) -> dict[tuple[str, str], float]:
    """cgwatch_tls_handshake_failures_total by (listener, reason), scraped with curl."""
    reply = curl(f"{metrics_url}/metrics", *options)
    assert reply.code == 200, reply
    return {(s.labels["listener"], s.labels["reason"]): s.value
            for s in samples(reply.body, "cgwatch_tls_handshake_failures_total")}


def increase(before: dict, after: dict) -> dict:
    return {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}


def test_failed_handshakes_are_counted_by_listener_and_cause_and_logged(tls_only, pki):
    metrics, api = tls_only.served.metrics, tls_only.api
    before = handshake_failures(metrics, *trust(pki))
    assert set(before) == {(listener, reason) for listener in ("metrics", "api") for reason in (
        "client_certificate", "no_shared_cipher", "other", "plain_http", "protocol_version",
        "server_certificate_rejected")}  # every series is there before the first failure
    assert curl(api.replace("https://", "http://") + "/healthz").code == 0           # plain HTTP
    assert s_client(port_of(metrics), "tls1_1", pki).returncode != 0                  # TLS 1.1
    assert curl(f"{metrics}/healthz").exit == 60                                       # curl distrusts us
    assert increase(before, handshake_failures(metrics, *trust(pki))) == {
        ("api", "plain_http"): 1, ("metrics", "protocol_version"): 1, ("metrics", "server_certificate_rejected"): 1}
    log = (tls_only.served.state.parent / "agent.log").read_text()
    lines = [json.loads(line) for line in log.splitlines() if "TLS handshake failed" in line]
    assert {(line["listener"], line["reason"], line["openssl"]) for line in lines} >= {
        ("api", "plain_http", "HTTP_REQUEST"), ("metrics", "protocol_version", "UNSUPPORTED_PROTOCOL")}


def test_a_client_silent_after_connecting_is_closed_at_the_handshake_deadline(tls_only):
    """asyncio would wait 60 s; cgwatch gives a handshake the 10 s it gives request headers."""
    for url in (tls_only.served.metrics, tls_only.api):
        with socket.create_connection(("127.0.0.1", port_of(url)), timeout=30) as sock:
            try:
                assert sock.recv(1) == b""  # closed by the agent, long before the 30 s timeout
            except ConnectionResetError:
                pass


def served_serial(url: str, pki: Pki) -> str:
    """The serial number of the certificate the server presents now."""
    with socket.create_connection(("127.0.0.1", port_of(url)), timeout=5) as raw:
        with client_context(pki).wrap_socket(raw, server_hostname="127.0.0.1") as conn:
            return conn.getpeercert()["serialNumber"]


def test_sighup_serves_a_renewed_certificate(tls_only, pki):
    def serial() -> str:
        return served_serial(tls_only.api, pki)
    assert serial() == "01"
    pki.renew_server(serial=2)
    try:
        os.kill(tls_only.served.pid, signal.SIGHUP)
        wait_for(lambda: serial() == "02", timeout=10, interval=0.1)
    finally:
        pki.renew_server(serial=1)
        os.kill(tls_only.served.pid, signal.SIGHUP)
        wait_for(lambda: serial() == "01", timeout=10, interval=0.1)


def test_sighup_between_a_new_certificate_and_its_key_keeps_the_old_pair(tls_only, pki):
    # A rotation caught half-way: the new certificate is written, its key not yet.
    old_cert, old_key = pki.server_cert.read_bytes(), pki.server_key.read_bytes()
    pki.renew_server(serial=3)
    pki.server_key.write_bytes(old_key)
    try:
        os.kill(tls_only.served.pid, signal.SIGHUP)
        wait_for(lambda: "web config not reloaded" in (tls_only.served.state.parent / "agent.log").read_text(),
                 timeout=10, interval=0.1)
        assert served_serial(tls_only.served.metrics, pki) == "01"
        assert curl(f"{tls_only.served.metrics}/healthz", *trust(pki)).code == 200
    finally:
        pki.server_cert.write_bytes(old_cert)


# -- client certificates and basic auth ---------------------------------------------------------


def test_the_right_certificate_and_password_get_the_metrics(mtls, pki):
    reply = curl(f"{mtls.metrics}/metrics", *as_client(pki), *basic())
    assert reply.code == 200, reply
    names = {f.name for f in text_string_to_metric_families(reply.body)}
    assert "container_cpu_usage_seconds" in names  # the parser drops _total from counters
    assert "x-content-type-options: nosniff" in reply.headers.lower()


def test_the_api_listener_takes_the_certificate_and_still_wants_the_token(mtls, pki):
    assert curl(f"{mtls.api}/api/v1/containers", *as_client(pki)).code == 401
    assert curl(f"{mtls.api}/api/v1/containers", *as_client(pki), *basic()).code == 401  # no basic auth here
    assert curl(f"{mtls.api}/api/v1/containers", *as_client(pki), *bearer(mtls)).code == 200


@pytest.mark.parametrize("listener", ["metrics", "api"])
def test_without_a_client_certificate_no_request_gets_through(mtls, pki, listener):
    reply = curl(f"{getattr(mtls, listener)}/healthz", *trust(pki), *basic())
    assert reply.code == 0 and reply.exit != 0, reply


@pytest.mark.parametrize("listener", ["metrics", "api"])
def test_a_certificate_from_a_foreign_ca_is_refused(mtls, pki, listener):
    reply = curl(f"{getattr(mtls, listener)}/healthz", *trust(pki), "--cert", pki.foreign_client_cert,
                 "--key", pki.foreign_client_key, *basic())
    assert reply.code == 0 and reply.exit != 0, reply


@pytest.mark.parametrize("listener", ["metrics", "api"])
def test_a_certificate_without_an_allowed_san_gets_403(mtls, pki, listener):
    reply = curl(f"{getattr(mtls, listener)}/healthz", *trust(pki), "--cert", pki.intruder_cert,
                 "--key", pki.intruder_key, *basic())
    assert reply.code == 403 and json.loads(reply.body)["error"] == "client_certificate_not_allowed"


def test_metrics_without_a_password_are_401_with_a_challenge(mtls, pki):
    reply = curl(f"{mtls.metrics}/metrics", *as_client(pki))
    assert reply.code == 401
    assert 'www-authenticate: basic realm="cgwatch"' in reply.headers.lower()
    assert json.loads(reply.body)["error"] == "unauthorized"


@pytest.mark.parametrize("user, password", [(USER, "wrong"), ("nobody", PASSWORD)])
def test_a_wrong_password_or_user_is_401(mtls, pki, user, password):
    assert curl(f"{mtls.metrics}/metrics", *as_client(pki), *basic(user, password)).code == 401


def test_the_public_read_api_needs_the_password_too(mtls, pki):
    assert curl(f"{mtls.metrics}/api/v1/containers", *as_client(pki)).code == 401
    assert curl(f"{mtls.metrics}/api/v1/containers", *as_client(pki), *basic()).code == 200


def test_handshakes_without_a_valid_client_certificate_are_counted(mtls, pki):
    before = handshake_failures(mtls.metrics, *as_client(pki), *basic())
    for url in (mtls.metrics, mtls.api):
        assert curl(f"{url}/healthz", *trust(pki)).code == 0
        assert curl(f"{url}/healthz", *trust(pki), "--cert", pki.foreign_client_cert,
                    "--key", pki.foreign_client_key).code == 0
    # This agent serves scrapes from a collection up to 30 s old (--max-age 30), so ``before`` may
    # predate the refusals of the tests above too: at least two more each, and of no other cause.
    def counted() -> bool:
        more = increase(before, handshake_failures(mtls.metrics, *as_client(pki), *basic()))
        return set(more) == {("metrics", "client_certificate"), ("api", "client_certificate")} and \
            min(more.values()) >= 2
    wait_for(counted, timeout=45, interval=1)


def test_healthz_needs_the_certificate_but_no_password(mtls, pki):
    reply = curl(f"{mtls.metrics}/healthz", *as_client(pki))
    assert reply.code == 200 and json.loads(reply.body)["status"] == "ok"


def test_prometheus_scrapes_over_https_with_a_client_certificate_and_basic_auth(mtls, pki, tmp_path):
    need(prometheus_missing())
    target = mtls.metrics.removeprefix("https://")
    job = {"job_name": "cgwatch-tls", "scheme": "https",
           "tls_config": {"ca_file": str(pki.ca), "cert_file": str(pki.client_cert), "key_file": str(pki.client_key)},
           "basic_auth": {"username": USER, "password": PASSWORD},
           "static_configs": [{"targets": [target]}]}
    with running_prometheus(tmp_path / "prometheus", [job]) as prom:
        up = f'up{{job="cgwatch-tls", instance="{target}"}}'
        # The first scrape comes a few seconds after start (target discovery batches every 5 s).
        wait_for(lambda: prom.value(up) is not None, timeout=45, interval=0.5)
        assert prom.value(up) == 1, prom.log.read_text()[-3000:]
        assert prom.query('container_cpu_usage_seconds_total{job="cgwatch-tls", id="/"}')


# -- refusals at start ------------------------------------------------------------------------


def serve_briefly(tmp_path: Path, *args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cgwatch", "serve", "--listen", "127.0.0.1:0", "--api-listen",
                           "127.0.0.1:0", "--state-dir", str(tmp_path / "state"), "--docker-host", "", "--podman-host", "", "--containerd-host", "", *map(str, args)],
                          capture_output=True, text=True, timeout=30, cwd=REPO)


def test_a_bad_web_config_file_exits_2_with_one_line(tmp_path):
    (tmp_path / "web.yml").write_text("tls_server_config:\n  cert_file: a.pem\n  key_file: a.key\n"
                                      "  min_version: TLS11\n")
    out = serve_briefly(tmp_path, "--web-config-file", tmp_path / "web.yml")
    assert out.returncode == 2
    assert out.stderr.splitlines() == [f"cgwatch serve: --web-config-file {tmp_path / 'web.yml'}:4: min_version "
                                       "TLS11 is refused: cgwatch requires TLS 1.2 or newer (TLS12 or TLS13)"]


def test_a_missing_web_config_file_exits_2(tmp_path):
    out = serve_briefly(tmp_path, "--web-config-file", tmp_path / "absent.yml")
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1 and "cannot read" in out.stderr


def test_a_certificate_that_does_not_match_its_key_exits_2(tmp_path, pki):
    (tmp_path / "web.yml").write_text(f"tls_server_config:\n  cert_file: {pki.server_cert}\n"
                                      f"  key_file: {pki.client_key}\n")
    out = serve_briefly(tmp_path, "--web-config-file", tmp_path / "web.yml")
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1
    assert f"cannot load cert_file {pki.server_cert}" in out.stderr and "KEY_VALUES_MISMATCH" in out.stderr


def test_a_client_ca_file_without_a_certificate_exits_2(tmp_path, pki):
    (tmp_path / "empty.pem").write_text("")
    (tmp_path / "web.yml").write_text(f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: "
                                      f"{pki.server_key}\n  client_auth_type: RequireAndVerifyClientCert\n"
                                      "  client_ca_file: empty.pem\n")
    out = serve_briefly(tmp_path, "--web-config-file", tmp_path / "web.yml")
    assert out.returncode == 2 and f"client_ca_file {tmp_path / 'empty.pem'}" in out.stderr


def test_web_config_tls_and_tls_flags_together_exit_2(tmp_path, pki):
    (tmp_path / "web.yml").write_text(f"tls_server_config:\n  cert_file: {pki.server_cert}\n"
                                      f"  key_file: {pki.server_key}\n")
    out = serve_briefly(tmp_path, "--web-config-file", tmp_path / "web.yml", "--tls-cert", pki.server_cert,
                        "--tls-key", pki.server_key)
    assert out.returncode == 2 and "--tls-cert/--tls-key were given too" in out.stderr
