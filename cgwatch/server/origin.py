"""Host and Origin checks on the API listener: a web page on another site cannot drive the API.

Two browser attacks reach a loopback listener. DNS rebinding: a page on evil.example re-points its
own name at 127.0.0.1, so the browser sends it to us as same-origin with ``Host: evil.example``.
Cross-site requests: a page on any site can fire requests at 127.0.0.1 (``Origin`` names that
site). The bearer token already stops both from writing (a foreign page has no token and cannot
make the browser add the header), and the checks here refuse them before the token is even looked
at, so a page cannot probe the API or read the (token-free) page itself under its own name.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web
from yarl import URL

from ..errors import ForbiddenHost, ForbiddenOrigin

# What a browser or a local client calls the loopback host (RFC 6761 reserves "localhost").
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def is_loopback_host(host: str) -> bool:
    """``host`` (a Host header without its port, brackets removed) names this machine's loopback."""
    host = host.lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_host(header: str) -> str | None:
    """The host part of a Host header ("[::1]:9339" -> "::1"); None when it is not one."""
    try:
        url = URL(f"http://{header}")
    except ValueError:
        return None
    if url.host is None or url.user is not None or url.path not in ("", "/"):
        return None
    return url.host


def same_origin(origin: str, request: web.Request) -> bool:
    """``Origin`` is this listener as the browser reached it: scheme, host and port all equal."""
    try:
        theirs, mine = URL(origin), URL(f"{request.scheme}://{request.host}")
    except ValueError:
        return False
    if theirs.scheme not in ("http", "https") or theirs.path not in ("", "/") or theirs.host is None:
        return False
    # yarl lower-cases hosts and fills in the scheme's default port.
    return (theirs.scheme, theirs.host, theirs.port) == (mine.scheme, mine.host, mine.port)


def origin_middleware(check_host: bool):
    """``check_host``: the listener is on loopback, where only loopback names are legitimate."""
    @web.middleware
    async def middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
        if check_host:
            host = split_host(request.headers.get("Host", ""))
            if host is None or not is_loopback_host(host):
                raise ForbiddenHost("this API listens on loopback and answers only to loopback names "
                                    "(localhost, 127.0.0.1, [::1]); use one of those in the URL")
        origin = request.headers.get("Origin")
        # Browsers send Origin on every cross-origin request and on same-origin writes; other
        # clients (curl, the cgwatch CLI, Prometheus) send none. "null" is a sandboxed or file:// page.
        if origin is not None and not same_origin(origin, request):
            raise ForbiddenOrigin("requests from another site's web page are refused; use the page this "
                                  "agent serves, or a client that sends no Origin header")
        return await handler(request)
    return middleware
