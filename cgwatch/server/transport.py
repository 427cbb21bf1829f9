"""What --web-config-file and --tls-cert/--tls-key make of the two listeners: their TLS contexts,
the checks in front of their apps (basic auth, client SANs) and the headers on their responses.

A web config's TLS (and client certificates) applies to both listeners; its basic auth to the
public one only (the API listener keeps its bearer token). --tls-cert/--tls-key are the older,
API-only way to TLS and cannot be combined with a web config that has TLS.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field

from aiohttp import web

from ..config import Settings
from .basic_auth import BasicAuth
from .client_sans import client_sans_middleware
from .origin import is_loopback_host
from .tls import plain_server_context, server_context
from .webconfig import WebConfig, WebConfigError, load_web_config

log = logging.getLogger("cgwatch.server")


class UnsafeListen(ValueError):
    """The write API would be reachable from the network without TLS."""


@dataclass
class Transport:
    metrics_tls: ssl.SSLContext | None = None
    api_tls: ssl.SSLContext | None = None
    web_config: WebConfig | None = None
    basic_auth: BasicAuth | None = None
    api_middlewares: list = field(default_factory=list)
    metrics_middlewares: list = field(default_factory=list)

    def tls(self, role: str) -> ssl.SSLContext | None:
        return self.api_tls if role == "api" else self.metrics_tls

    def middlewares(self, role: str) -> list:
        return self.api_middlewares if role == "api" else self.metrics_middlewares

    def add_headers(self, app: web.Application) -> None:
        """The web config's http_server_config.headers on every response, errors included."""
        headers = dict(self.web_config.headers) if self.web_config else {}
        if not headers:
            return

        async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
            for name, value in headers.items():
                # A handler's own value wins, as in exporter-toolkit (it sets them before the handler).
                response.headers.setdefault(name, value)
        app.on_response_prepare.append(on_prepare)

    def reload(self) -> None:
        """SIGHUP: re-read the web config for a renewed certificate and changed basic auth users.
        Anything else (turning TLS or basic auth on or off, client certificates, versions) needs a
        restart. A file that no longer parses leaves everything as it was."""
        if self.web_config is None:
            return
        try:
            new = load_web_config(self.web_config.source)
            if new.tls and self.metrics_tls:
                # Tried on a spare context first: a failed load into the live one can leave it with the
                # new certificate and no key, and every handshake would fail.
                plain_server_context(new.tls.cert_file, new.tls.key_file)
                # Connections made from now on present it; open ones keep theirs.
                for ctx in filter(None, (self.metrics_tls, self.api_tls)):
                    ctx.load_cert_chain(new.tls.cert_file, new.tls.key_file)
        except (WebConfigError, OSError, ssl.SSLError) as exc:
            log.error("web config not reloaded; the previous one stays", extra={"error": str(exc)})
            return
        if self.basic_auth and new.basic_auth_users:
            self.basic_auth.set_users(new.basic_auth_users)
        log.info("web config reloaded (certificate, basic auth users; other changes need a restart)",
                 extra={"file": str(self.web_config.source)})

    def close(self) -> None:
        if self.basic_auth:
            self.basic_auth.close()


def check_web_config(settings: Settings) -> tuple[WebConfig | None, ssl.SSLContext | None]:
    """The web config and its TLS context, or a WebConfigError (also for --tls-cert given with it)."""
    if settings.web_config_file is None:
        return None, None
    config = load_web_config(settings.web_config_file)
    if config.tls is None:
        return config, None
    if settings.tls_cert or settings.tls_key:
        raise WebConfigError(f"{config.source}: has tls_server_config, and --tls-cert/--tls-key were given too: "
                             "use one (the web config's TLS covers both listeners)")
    return config, server_context(config.tls, config.source)


def load_transport(settings: Settings) -> Transport:
    config, ctx = check_web_config(settings)
    # A context per listener, so failed handshakes are counted per port (server/handshake.py).
    api_ctx = server_context(config.tls, config.source) if config and config.tls else None
    transport = Transport(metrics_tls=ctx, api_tls=api_ctx, web_config=config)
    if ctx is None and settings.tls_cert and settings.tls_key:
        transport.api_tls = plain_server_context(settings.tls_cert, settings.tls_key)
    remote = not is_loopback_host(settings.api_listen[0])
    if transport.api_tls is None and remote and not settings.insecure_remote_writes:
        raise UnsafeListen(
            f"--api-listen {settings.api_listen[0]} is not a loopback address: the API token would cross the "
            "network in clear. Give --tls-cert and --tls-key (or --web-config-file with tls_server_config), "
            "or --insecure-allow-remote-writes-without-tls.")
    if config and config.tls and config.tls.client_allowed_sans:
        sans = client_sans_middleware(config.tls.client_allowed_sans)
        transport.api_middlewares.append(sans)
        transport.metrics_middlewares.append(sans)
    if config and config.basic_auth_users:
        transport.basic_auth = BasicAuth(config.basic_auth_users)
        transport.metrics_middlewares.append(transport.basic_auth.middleware())
        if ctx is None:
            log.warning("basic auth without TLS: passwords cross the network in clear; add tls_server_config",
                        extra={"file": str(config.source)})
    return transport
