"""Parse a web config file in the format of Prometheus's exporter-toolkit (pure: no TLS, no I/O
beyond reading the file).

The format is exporter-toolkit's docs/web-configuration.md, so a Prometheus user's existing file
works: ``tls_server_config``, ``http_server_config`` and ``basic_auth_users``. What cgwatch
cannot do exactly as the Go server does is refused with a message, never quietly done another way:
TLS 1.0/1.1 (cgwatch requires 1.2 or newer), client_auth_type RequestClientCert and
RequireAnyClientCert (Python's ssl cannot ask for a certificate without verifying it), more than
one curve, inline ``cert``/``key``, and ``rate_limit``.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config.yamlnodes import NodeReader, is_null
from ..errors import CgwatchError

TOP_KEYS = {"tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"}
TLS_KEYS = {"cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type", "client_ca_file",
            "client_allowed_sans", "min_version", "max_version", "cipher_suites",
            "prefer_server_cipher_suites", "curve_preferences"}
HTTP_KEYS = {"http2", "headers"}

# client_auth_type -> what the server asks of the client. Go's tls.ClientAuthType names.
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# Both ask for a certificate and then accept any, signed by anyone: OpenSSL verifies whatever it
# asks for, so Python's ssl has no such mode. Neither authenticates anyone anyway (exporter-toolkit's
# docs: "Other values are insecure"). "RequireClientCert" is Go's old alias of RequireAnyClientCert.
UNVERIFIED_CLIENT_AUTH = {"RequestClientCert", "RequireAnyClientCert", "RequireClientCert"}

TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
OLD_TLS_VERSIONS = {"TLS10", "TLS11"}

# Go's tls.CipherSuites() (the names exporter-toolkit accepts) -> OpenSSL's names
# (`openssl ciphers -stdname`). TLS 1.3 suites are not configurable, in Go as in OpenSSL's
# cipher list: accepted and left out, as Go does.
CIPHER_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
TLS13_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}

# Go's tls.CurveID names -> OpenSSL's group names.
CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1", "X25519": "X25519"}

# exporter-toolkit's extraHTTPHeaders: the only headers it lets a file set, and the fixed values of two.
HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}

# Modular crypt format of bcrypt: $2a$/$2b$/$2y$, a two-digit cost, 22 characters of salt and 31 of hash.
BCRYPT_HASH = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")


class WebConfigError(CgwatchError, ValueError):
    """The web config file is unusable; the message names the file and, where known, the line.
    (A ValueError too: `cgwatch serve` refuses to start on one, exit status 2.)"""

    code = "invalid_web_config"


@dataclass(frozen=True, slots=True)
class TLSServerConfig:
    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    client_ca_pem: str | None = None  # the inline `client_ca`
    client_allowed_sans: tuple[str, ...] = ()
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    openssl_ciphers: tuple[str, ...] = ()  # empty: OpenSSL's defaults
    prefer_server_cipher_suites: bool = True
    openssl_curve: str | None = None  # None: OpenSSL's defaults

    @property
    def verify_mode(self) -> ssl.VerifyMode:
        return CLIENT_AUTH[self.client_auth_type]


@dataclass(frozen=True, slots=True)
class WebConfig:
    source: Path
    tls: TLSServerConfig | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # user -> bcrypt hash; empty: no basic auth.
    basic_auth_users: Mapping[str, bytes] = field(default_factory=dict)


def load_web_config(path: Path) -> WebConfig:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise WebConfigError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_web_config(text, path)


def parse_web_config(text: str, source: Path) -> WebConfig:
    """The file's text -> WebConfig; relative file names resolve against ``source``'s directory."""
    reader = _Reader(source)
    root = reader.document(text)
    if root is None:
        return WebConfig(source)
    doc = reader.mapping(root, TOP_KEYS, "the web config")
    if "rate_limit" in doc:
        raise reader.error(doc["rate_limit"], "rate_limit is not supported by cgwatch; leave it out "
                           "(a reverse proxy or a network policy can limit request rates)")
    tls = _tls(reader, doc["tls_server_config"]) if "tls_server_config" in doc else None
    headers = _http(reader, doc["http_server_config"]) if "http_server_config" in doc else {}
    users = _users(reader, doc["basic_auth_users"]) if "basic_auth_users" in doc else {}
    return WebConfig(source, tls, headers, users)


def _tls(reader: _Reader, node: yaml.Node) -> TLSServerConfig | None:
    m = reader.mapping(node, TLS_KEYS, "tls_server_config")
    if not m:
        return None
    for inline, instead in (("cert", "cert_file"), ("key", "key_file")):
        if inline in m:
            raise reader.error(m[inline], f"an inline {inline!r} is not supported: put it in a file and "
                               f"give {instead}")
    for needed in ("cert_file", "key_file"):
        if needed not in m:
            raise reader.error(node, f"tls_server_config needs {needed}")
    auth = reader.string(m["client_auth_type"]) if "client_auth_type" in m else "NoClientCert"
    if auth in UNVERIFIED_CLIENT_AUTH:
        raise reader.error(m["client_auth_type"], f"client_auth_type {auth} (ask for a client certificate, "
                           "then accept it unverified) is not possible with Python's ssl and authenticates "
                           "no one: use RequireAndVerifyClientCert (or VerifyClientCertIfGiven) with client_ca_file")
    if auth not in CLIENT_AUTH:
        raise reader.error(m["client_auth_type"], f"unknown client_auth_type {auth!r} (expected one of: "
                           f"{', '.join(CLIENT_AUTH)})")
    if "client_ca_file" in m and "client_ca" in m:
        raise reader.error(m["client_ca"], "give client_ca_file or client_ca, not both")
    ca_file = reader.path(m["client_ca_file"]) if "client_ca_file" in m else None
    ca_pem = reader.string(m["client_ca"]) if "client_ca" in m else None
    has_ca = ca_file is not None or ca_pem is not None
    if auth == "NoClientCert" and has_ca:
        raise reader.error(m.get("client_ca_file") or m["client_ca"], "a client CA is configured but "
                           "client_auth_type is NoClientCert: set RequireAndVerifyClientCert to use it")
    if auth != "NoClientCert" and not has_ca:
        # exporter-toolkit would fall back to the system's roots: any public CA's customer could log in.
        raise reader.error(m["client_auth_type"], f"client_auth_type {auth} needs client_ca_file: the CA "
                           "that signs the client certificates")
    sans = tuple(reader.strings(m["client_allowed_sans"])) if "client_allowed_sans" in m else ()
    if "client_allowed_sans" in m and auth != "RequireAndVerifyClientCert":
        raise reader.error(m["client_allowed_sans"], "client_allowed_sans needs client_auth_type "
                           "RequireAndVerifyClientCert: other types let a client in without a certificate")
    min_version = _version(reader, m, "min_version", ssl.TLSVersion.TLSv1_2)
    max_version = _version(reader, m, "max_version", ssl.TLSVersion.TLSv1_3)
    if min_version > max_version:
        raise reader.error(m["min_version"], "min_version is above max_version")
    return TLSServerConfig(
        cert_file=reader.path(m["cert_file"]), key_file=reader.path(m["key_file"]), client_auth_type=auth,
        client_ca_file=ca_file, client_ca_pem=ca_pem, client_allowed_sans=sans, min_version=min_version,
        max_version=max_version, openssl_ciphers=_ciphers(reader, m, min_version),
        prefer_server_cipher_suites=(reader.boolean(m["prefer_server_cipher_suites"])
                                     if "prefer_server_cipher_suites" in m else True),
        openssl_curve=_curve(reader, m["curve_preferences"]) if "curve_preferences" in m else None)


def _version(reader: _Reader, m: dict[str, yaml.Node], key: str, default: ssl.TLSVersion) -> ssl.TLSVersion:
    if key not in m:
        return default
    name = reader.string(m[key])
    if name in OLD_TLS_VERSIONS:
        raise reader.error(m[key], f"{key} {name} is refused: cgwatch requires TLS 1.2 or newer (TLS12 or TLS13)")
    if name not in TLS_VERSIONS:
        raise reader.error(m[key], f"unknown TLS version {name!r} for {key} (expected TLS12 or TLS13)")
    return TLS_VERSIONS[name]


def _ciphers(reader: _Reader, m: dict[str, yaml.Node], min_version: ssl.TLSVersion) -> tuple[str, ...]:
    if "cipher_suites" not in m:
        return ()
    names = reader.strings(m["cipher_suites"])
    for name in names:
        if name not in CIPHER_SUITES and name not in TLS13_SUITES:
            raise reader.error(m["cipher_suites"], f"unknown cipher suite {name!r} (Go's tls.CipherSuites() "
                               "names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)")
    openssl = tuple(CIPHER_SUITES[n] for n in names if n in CIPHER_SUITES)
    if names and not openssl and min_version < ssl.TLSVersion.TLSv1_3:
        raise reader.error(m["cipher_suites"], "cipher_suites lists only TLS 1.3 suites, which are not "
                           "configurable: TLS 1.2 clients would have no cipher (add TLS 1.2 suites or set "
                           "min_version: TLS13)")
    return openssl


def _curve(reader: _Reader, node: yaml.Node) -> str | None:
    names = reader.strings(node)
    for name in names:
        if name not in CURVES:
            raise reader.error(node, f"unknown curve {name!r} (expected one of: {', '.join(CURVES)})")
    if len(names) > 1:
        # SSLContext.set_ecdh_curve takes one group; an ordered list cannot be expressed.
        raise reader.error(node, "cgwatch can honour one entry in curve_preferences (Python's ssl sets a "
                           "single curve): list one, or leave it out for OpenSSL's defaults")
    return CURVES[names[0]] if names else None


def _http(reader: _Reader, node: yaml.Node) -> dict[str, str]:
    m = reader.mapping(node, HTTP_KEYS, "http_server_config")
    if "http2" in m:
        reader.boolean(m["http2"])  # validated, then ignored: aiohttp serves HTTP/1.1 only
    if "headers" not in m:
        return {}
    headers = {}
    for name, value_node in reader.mapping(m["headers"], set(HEADERS), "headers").items():
        value = reader.string(value_node)
        allowed = HEADERS[name]
        if allowed and value and value not in allowed:
            raise reader.error(value_node, f"{name} must be one of: {', '.join(allowed)} (got {value!r})")
        if value:  # blank means unset, as in exporter-toolkit
            headers[name] = value
    return headers


def _users(reader: _Reader, node: yaml.Node) -> dict[str, bytes]:
    users = {}
    for user, hash_node in reader.mapping(node, None, "basic_auth_users").items():
        value = reader.string(hash_node)
        found = BCRYPT_HASH.fullmatch(value)
        if not found or not 4 <= int(found.group(1)) <= 31:
            raise reader.error(hash_node, f"the password of {user!r} is not a bcrypt hash ($2y$10$... from "
                               "`htpasswd -nBC 10 \"\" | tr -d ':\\n'`): basic_auth_users never holds clear text")
        if ":" in user:
            raise reader.error(hash_node, f"user name {user!r} has a ':', which basic auth cannot send")
        users[user] = value.encode()
    return users


class _Reader(NodeReader):
    """Nodes of one web config file; errors are WebConfigError naming the file and line."""

    def __init__(self, source: Path):
        super().__init__(lambda line, message: WebConfigError(f"{source}{f':{line}' if line else ''}: {message}"))
        self.source = source

    def mapping(self, node: yaml.Node, allowed: set[str] | None, what: str) -> dict[str, yaml.Node]:
        # An empty section ("basic_auth_users:") is an empty mapping, as in Go's YAML decoder.
        return {} if is_null(node) else super().mapping(node, allowed, what)

    def scalar(self, node: yaml.Node) -> Any:
        return self.plain(node)

    def string(self, node: yaml.Node) -> str:
        return self.typed(node, str, "a string")

    def boolean(self, node: yaml.Node) -> bool:
        return self.typed(node, bool, "true or false")

    def strings(self, node: yaml.Node) -> list[str]:
        if is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, "expected a list of strings")
        return [self.string(item) for item in node.value]

    def path(self, node: yaml.Node) -> Path:
        value = self.string(node)
        if not value:
            raise self.error(node, "expected a file name, got an empty string")
        # exporter-toolkit (config_util.JoinDir) resolves relative names against the file's directory.
        return self.source.parent / value
