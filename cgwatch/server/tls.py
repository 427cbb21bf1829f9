"""Server TLS: an ssl.SSLContext from a web config's tls_server_config (TLS 1.2 or newer, always)."""

from __future__ import annotations

import ssl
from pathlib import Path

from .webconfig import TLSServerConfig, WebConfigError


def plain_server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context with only a certificate: TLS 1.2 or newer, no client certificates."""
    # SSLContext(PROTOCOL_TLS_SERVER), not create_default_context(CLIENT_AUTH): the latter loads the
    # system's CAs into the store that client certificates are checked against.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def server_context(tls: TLSServerConfig, source: Path) -> ssl.SSLContext:
    """The context both listeners serve with; errors name ``source`` (the web config file)."""
    try:
        ctx = plain_server_context(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(f"{source}: cannot load cert_file {tls.cert_file} with key_file {tls.key_file}: "
                             f"{_reason(exc)}") from None
    ctx.minimum_version = max(tls.min_version, ssl.TLSVersion.TLSv1_2)
    ctx.maximum_version = tls.max_version
    if tls.openssl_ciphers:
        ctx.set_ciphers(":".join(tls.openssl_ciphers))  # TLS 1.2 only; TLS 1.3 suites stay OpenSSL's
    if tls.prefer_server_cipher_suites:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if tls.openssl_curve:
        ctx.set_ecdh_curve(tls.openssl_curve)
    ctx.verify_mode = tls.verify_mode
    if tls.verify_mode != ssl.CERT_NONE:
        _load_client_cas(ctx, tls, source)
    return ctx


def _load_client_cas(ctx: ssl.SSLContext, tls: TLSServerConfig, source: Path) -> None:
    what = f"client_ca_file {tls.client_ca_file}" if tls.client_ca_file else "client_ca"
    try:
        ctx.load_verify_locations(cafile=tls.client_ca_file, cadata=tls.client_ca_pem)
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(f"{source}: cannot load {what}: {_reason(exc)}") from None
    if ctx.cert_store_stats()["x509"] == 0:
        raise WebConfigError(f"{source}: {what} holds no certificate")


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror or str(exc)
