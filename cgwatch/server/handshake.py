"""TLS handshakes: a deadline for finishing one, and a count (and a log line) of those that fail.

asyncio hides both. A failed handshake is an ssl.SSLError, an OSError, and asyncio's SSL
transport drops OSErrors without a word unless the loop runs in debug mode (sslproto
_fatal_error), so a Prometheus with an expired client certificate, or someone trying TLS 1.1,
left no trace. The error is raised by SSLObject.do_handshake, and an SSLContext builds its
objects from ``sslobject_class``, so a subclass sees every failure with OpenSSL's reason.

The deadline: aiohttp's TCPSite passes no ssl_handshake_timeout, so asyncio's default of 60 s
applies, and a connection still in its handshake is not yet aiohttp's: connguard's header
deadline and connection cap (server/connguard.py) do not see it. Serving with the header
deadline as the handshake deadline bounds such a client the way it bounds a slow plain one.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry

from ..log import EveryInterval
from .connguard import HEADER_TIMEOUT_S
from .listener_metrics import listener_counter

log = logging.getLogger("cgwatch.server.tls")

HANDSHAKE_TIMEOUT_S = HEADER_TIMEOUT_S
LOG_EVERY_S = 60.0  # one log line per listener and reason per minute: a scanner must not flood the log

# OpenSSL's reason codes (include/openssl/sslerr.h; an alert the client sent is TLSV1_ALERT_* or
# SSLV3_ALERT_*, RFC 8446 section 6.2) folded into a few causes an operator can act on.
_REASONS = {
    "HTTP_REQUEST": "plain_http",
    "HTTPS_PROXY_REQUEST": "plain_http",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "client_certificate",
    "CERTIFICATE_VERIFY_FAILED": "client_certificate",
    "UNSUPPORTED_PROTOCOL": "protocol_version",
    "WRONG_VERSION_NUMBER": "protocol_version",
    "NO_PROTOCOLS_AVAILABLE": "protocol_version",
    "TLSV1_ALERT_PROTOCOL_VERSION": "protocol_version",
    "NO_SHARED_CIPHER": "no_shared_cipher",
    "NO_SHARED_GROUPS": "no_shared_cipher",
    "NO_SUITABLE_KEY_SHARE": "no_shared_cipher",
    "TLSV1_ALERT_UNKNOWN_CA": "server_certificate_rejected",
    "SSLV3_ALERT_BAD_CERTIFICATE": "server_certificate_rejected",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "server_certificate_rejected",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "server_certificate_rejected",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "server_certificate_rejected",
    "TLSV1_ALERT_ACCESS_DENIED": "server_certificate_rejected",
}
REASONS = (*sorted(set(_REASONS.values())), "other")

def reason_of(exc: ssl.SSLError) -> str:
    """The cause label for OpenSSL's ``exc.reason`` (``other`` when it is not one we fold)."""
    return _REASONS.get(exc.reason or "", "other")


def count_failures(ctx: ssl.SSLContext, listener: str, registry: CollectorRegistry) -> None:
    """Count (and log, at most once a minute per reason) every failed handshake on ``ctx``.
    One context per listener, so the count says which port was tried."""
    counter = listener_counter(registry, "cgwatch_tls_handshake_failures", "TLS handshakes that failed, by "
                               "listener and cause (plain_http, client_certificate, protocol_version, "
                               "no_shared_cipher, server_certificate_rejected, other).")
    for reason in REASONS:  # every series from the start, so rate() and increase() see the first failure
        counter.labels(listener, reason)
    lines = EveryInterval(LOG_EVERY_S)

    def failed(exc: ssl.SSLError) -> None:
        reason = reason_of(exc)
        counter.labels(listener, reason).inc()
        held = lines.allow(reason)
        if held is not None:
            log.warning("TLS handshake failed", extra={"listener": listener, "reason": reason,
                                                       "openssl": exc.reason or str(exc),
                                                       "more_since_last_line": held})

    class CountingSSLObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise  # not a failure: the handshake waits for the peer
            except ssl.SSLError as exc:
                failed(exc)
                raise

    ctx.sslobject_class = CountingSSLObject


async def listen(runner: web.AppRunner, host: str, port: int, ctx: ssl.SSLContext | None,
                 protocol: Callable[[], asyncio.Protocol] | None = None) -> asyncio.Server:
    """Serve ``runner`` on host:port, with the handshake deadline when ``ctx`` is given;
    ``protocol`` builds each connection's handler instead of ``runner.server`` (server/httplog.py).

    aiohttp's low-level way (its docs, "Low Level Server": a web.Server is a protocol factory),
    instead of TCPSite, which has no handshake deadline. Close the returned server before
    ``runner.cleanup()``, as TCPSite.stop would."""
    assert runner.server is not None, "call after runner.setup()"
    loop = asyncio.get_running_loop()
    return await loop.create_server(protocol or runner.server, host, port, ssl=ctx,
                                    backlog=128,  # TCPSite's backlog
                                    ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S if ctx else None)
