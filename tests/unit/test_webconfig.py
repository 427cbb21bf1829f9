"""Web config files in exporter-toolkit's format: what is read, and what is refused with the line."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from cgwatch.errors import CgwatchError
from cgwatch.server.webconfig import CIPHER_SUITES, WebConfigError, load_web_config, parse_web_config

SOURCE = Path("/etc/cgwatch/web.yml")
HASH = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"  # exporter-toolkit docs' example

GOOD = f"""\
tls_server_config:
  cert_file: tls/server.pem
  key_file: /secrets/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.pem
  client_allowed_sans: [prometheus.example, 10.0.0.9]
  min_version: TLS13
  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]
  prefer_server_cipher_suites: false
  curve_preferences: [X25519]
http_server_config:
  http2: false
  headers:
    X-Content-Type-Options: nosniff
    Strict-Transport-Security: max-age=31536000
    Content-Security-Policy: ""
basic_auth_users:
  prometheus: {HASH}
"""

TLS = "tls_server_config:\n  cert_file: s.pem\n  key_file: s.key\n"


def parse(text: str):
    return parse_web_config(text, SOURCE)


def refused(text: str) -> str:
    with pytest.raises(WebConfigError) as info:
        parse(text)
    return info.value.message


def test_a_full_file_is_read():
    config = parse(GOOD)
    tls = config.tls
    assert tls is not None
    assert tls.client_auth_type == "RequireAndVerifyClientCert" and tls.verify_mode == ssl.CERT_REQUIRED
    assert tls.client_allowed_sans == ("prometheus.example", "10.0.0.9")
    assert tls.min_version == ssl.TLSVersion.TLSv1_3 and tls.max_version == ssl.TLSVersion.TLSv1_3
    assert tls.openssl_ciphers == ("ECDHE-RSA-AES128-GCM-SHA256",)  # TLS 1.3 suites are not configurable
    assert tls.prefer_server_cipher_suites is False
    assert tls.openssl_curve == "X25519"
    # A blank header is unset, as in exporter-toolkit.
    assert dict(config.headers) == {"X-Content-Type-Options": "nosniff",
                                    "Strict-Transport-Security": "max-age=31536000"}
    assert dict(config.basic_auth_users) == {"prometheus": HASH.encode()}


def test_relative_file_names_resolve_against_the_config_files_directory():
    tls = parse(GOOD).tls
    assert tls.cert_file == Path("/etc/cgwatch/tls/server.pem")
    assert tls.key_file == Path("/secrets/server.key")
    assert tls.client_ca_file == Path("/etc/cgwatch/ca.pem")


def test_defaults_are_tls12_to_13_without_client_certificates():
    tls = parse(TLS).tls
    assert (tls.min_version, tls.max_version) == (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    assert tls.verify_mode == ssl.CERT_NONE and tls.openssl_ciphers == () and tls.openssl_curve is None
    assert tls.prefer_server_cipher_suites is True


def test_an_empty_file_or_section_turns_nothing_on():
    for text in ("", "tls_server_config: {}\nbasic_auth_users:\n", "# nothing\n"):
        config = parse(text)
        assert config.tls is None and not config.basic_auth_users and not config.headers


def test_basic_auth_alone_needs_no_tls():
    config = parse(f"basic_auth_users:\n  a: '{HASH}'\n")
    assert config.tls is None and set(config.basic_auth_users) == {"a"}


def test_load_reads_the_file(tmp_path):
    (tmp_path / "web.yml").write_text(TLS)
    assert load_web_config(tmp_path / "web.yml").tls.cert_file == tmp_path / "s.pem"


def test_a_missing_file_is_a_domain_error(tmp_path):
    with pytest.raises(WebConfigError, match="cannot read: No such file"):
        load_web_config(tmp_path / "absent.yml")
    assert issubclass(WebConfigError, CgwatchError)


@pytest.mark.parametrize("text, line, words", [
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cert_fiel: c\n", 4,
     "unknown key 'cert_fiel' in tls_server_config"),
    ("web_listen: x\n", 1, "unknown key 'web_listen' in the web config"),
    ("http_server_config:\n  headers:\n    X-Powered-By: me\n", 3, "unknown key 'X-Powered-By' in headers"),
    ("http_server_config:\n  keep_alive: true\n", 2, "unknown key 'keep_alive' in http_server_config"),
])
def test_unknown_keys_are_named_with_their_line(text, line, words):
    message = refused(text)
    assert message.startswith(f"{SOURCE}:{line}: ") and words in message


@pytest.mark.parametrize("version", ["TLS10", "TLS11"])
@pytest.mark.parametrize("key", ["min_version", "max_version"])
def test_tls_below_1_2_is_refused(key, version):
    assert f"{key} {version} is refused: cgwatch requires TLS 1.2 or newer" in refused(f"{TLS}  {key}: {version}\n")


def test_an_unknown_tls_version_is_refused():
    assert "unknown TLS version 'TLS1.3'" in refused(f"{TLS}  min_version: TLS1.3\n")


def test_min_version_above_max_version_is_refused():
    assert "min_version is above max_version" in refused(f"{TLS}  min_version: TLS13\n  max_version: TLS12\n")


@pytest.mark.parametrize("auth", ["RequestClientCert", "RequireAnyClientCert", "RequireClientCert"])
def test_client_auth_types_that_accept_unverified_certificates_are_refused(auth):
    message = refused(f"{TLS}  client_auth_type: {auth}\n  client_ca_file: ca.pem\n")
    assert f"client_auth_type {auth}" in message and "use RequireAndVerifyClientCert" in message


def test_an_unknown_client_auth_type_is_refused():
    assert "unknown client_auth_type 'Mutual'" in refused(f"{TLS}  client_auth_type: Mutual\n")


@pytest.mark.parametrize("auth, mode", [("VerifyClientCertIfGiven", ssl.CERT_OPTIONAL),
                                        ("RequireAndVerifyClientCert", ssl.CERT_REQUIRED)])
def test_verifying_client_auth_types_map_to_ssl_modes(auth, mode):
    assert parse(f"{TLS}  client_auth_type: {auth}\n  client_ca_file: ca.pem\n").tls.verify_mode == mode


def test_an_inline_client_ca_is_accepted():
    tls = parse(f"{TLS}  client_auth_type: RequireAndVerifyClientCert\n"
                "  client_ca: |\n    -----BEGIN CERTIFICATE-----\n").tls
    assert tls.client_ca_pem.startswith("-----BEGIN CERTIFICATE-----") and tls.client_ca_file is None


def test_verifying_client_certificates_needs_a_ca():
    assert "needs client_ca_file" in refused(f"{TLS}  client_auth_type: RequireAndVerifyClientCert\n")


def test_a_client_ca_without_a_client_auth_type_is_refused():
    assert "client_auth_type is NoClientCert" in refused(f"{TLS}  client_ca_file: ca.pem\n")


def test_client_allowed_sans_need_required_verified_certificates():
    message = refused(f"{TLS}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n"
                      "  client_allowed_sans: [a]\n")
    assert "client_allowed_sans needs client_auth_type RequireAndVerifyClientCert" in message


@pytest.mark.parametrize("missing", ["cert_file", "key_file"])
def test_tls_needs_a_certificate_and_a_key(missing):
    text = "tls_server_config:\n" + "".join(f"  {k}: x\n" for k in ("cert_file", "key_file") if k != missing)
    assert f"tls_server_config needs {missing}" in refused(text)


def test_an_inline_certificate_is_refused():
    assert "an inline 'cert' is not supported" in refused("tls_server_config:\n  cert: PEM\n  key_file: k\n")


def test_every_mapped_cipher_suite_is_known_to_this_openssl():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for go_name, openssl_name in CIPHER_SUITES.items():
        ctx.set_ciphers(openssl_name)  # raises SSLError("No cipher can be selected") when unknown
        assert [c["name"] for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"] == [openssl_name], go_name


def test_an_unknown_or_insecure_cipher_suite_is_refused():
    # CBC_SHA256 suites are in Go's InsecureCipherSuites(), which exporter-toolkit refuses too.
    assert "unknown cipher suite 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256'" in refused(
        f"{TLS}  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256]\n")


def test_only_tls13_cipher_suites_would_leave_tls12_clients_without_a_cipher():
    assert "only TLS 1.3 suites" in refused(f"{TLS}  cipher_suites: [TLS_AES_128_GCM_SHA256]\n")
    assert parse(f"{TLS}  min_version: TLS13\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n").tls.openssl_ciphers == ()


def test_curves_map_to_openssl_groups_one_at_a_time():
    assert parse(f"{TLS}  curve_preferences: [CurveP384]\n").tls.openssl_curve == "secp384r1"
    assert "can honour one entry in curve_preferences" in refused(f"{TLS}  curve_preferences: [X25519, CurveP256]\n")
    assert "unknown curve 'P256'" in refused(f"{TLS}  curve_preferences: [P256]\n")


@pytest.mark.parametrize("header, value", [("X-Frame-Options", "allow"), ("X-Content-Type-Options", "sniff")])
def test_headers_with_fixed_values_refuse_others(header, value):
    assert f"{header} must be one of" in refused(f"http_server_config:\n  headers:\n    {header}: {value}\n")


def test_http2_must_be_a_boolean():
    assert "expected true or false" in refused("http_server_config:\n  http2: yes please\n")


@pytest.mark.parametrize("value", ["secret", "$2y$10$short", "$1$abc$0123456789012345678901",
                                   "$2y$03$" + "a" * 53, "$2z$10$" + "a" * 53])
def test_a_basic_auth_password_that_is_not_a_bcrypt_hash_is_refused(value):
    message = refused(f"basic_auth_users:\n  prometheus: '{value}'\n")
    assert message.startswith(f"{SOURCE}:2: the password of 'prometheus' is not a bcrypt hash")
    assert value not in message  # never echo what may be a clear-text password


def test_a_user_name_with_a_colon_is_refused():
    assert "has a ':'" in refused(f"basic_auth_users:\n  'a:b': '{HASH}'\n")


def test_rate_limit_is_refused_rather_than_ignored():
    assert "rate_limit is not supported" in refused("rate_limit:\n  interval: 1s\n  burst: 10\n")


def test_a_key_given_twice_is_refused():
    assert "'cert_file' appears twice" in refused(f"{TLS}  cert_file: other.pem\n")


def test_broken_yaml_names_its_line():
    message = refused("tls_server_config:\n  cert_file: [a\n")
    assert message.startswith(f"{SOURCE}:2: not valid YAML")


def test_a_list_where_a_mapping_belongs_is_refused():
    assert "tls_server_config must be a mapping" in refused("tls_server_config: [a]\n")


def test_the_example_in_deploy_parses():
    example = Path(__file__).resolve().parents[2] / "deploy" / "web-config.example.yml"
    config = load_web_config(example)
    assert config.tls.verify_mode == ssl.CERT_REQUIRED and config.tls.cert_file == example.parent / "tls/server.pem"
    assert set(config.basic_auth_users) == {"prometheus"}
