"""client_allowed_sans: only client certificates naming an allowed Subject Alternative Name get in.

exporter-toolkit checks this during the handshake; Python's ssl has no verify callback, so the
check runs on every request instead, against the certificate OpenSSL already verified (the web
config insists on RequireAndVerifyClientCert with it). The connection gets a 403, not a failed
handshake.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

from ..errors import ClientCertificateNotAllowed

# The peercert dict's SAN kinds that exporter-toolkit matches (DNS, IP, e-mail, URI).
SAN_KINDS = frozenset({"DNS", "IP Address", "email", "URI"})


def canonical(value: str) -> str:
    """IP addresses in one spelling (Python's ssl writes IPv6 in full, in capitals; Go does not)."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return value


def peer_sans(peercert: dict | None) -> set[str]:
    if not peercert:
        return set()
    return {canonical(value) for kind, value in peercert.get("subjectAltName", ()) if kind in SAN_KINDS}


def client_sans_middleware(allowed: Iterable[str]):  # type: ignore[no-untyped-def]
    wanted = frozenset(canonical(s) for s in allowed)

    @web.middleware
    async def middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
        transport = request.transport
        peercert = transport.get_extra_info("peercert") if transport is not None else None
        if peer_sans(peercert) & wanted:
            return await handler(request)
        raise ClientCertificateNotAllowed("the client certificate names none of the web config's "
                                          "client_allowed_sans")
    return middleware
