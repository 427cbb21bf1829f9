"""The HTTP layer's own errors: logged at most once a minute per cause, without a traceback or
the bytes the client sent, answered without quoting them, and no credential in any aiohttp line.

aiohttp logs a request its parser refuses ("Error handling request", a BadHttpMessage) at ERROR
with a traceback, and both the exception's message and its 400 reply quote the offending header:
an Authorization header with a control byte (or a token file's stray CR) put the token in the
log and in the reply, and 500 such requests wrote 16 MB of tracebacks.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from http.client import responses
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..log import EveryInterval, extra_fields

LOG_EVERY_S = 60.0
# aiohttp's server-side loggers (aiohttp/log.py).
AIOHTTP_LOGGERS = ("aiohttp.server", "aiohttp.web", "aiohttp.access", "aiohttp.internal")

REDACTED = "<redacted>"
# The last line of defence, on whatever the filter lets through: an Authorization header's value
# (RFC 9110 section 11.6.2), a Bearer (RFC 6750 section 2.1) or Basic (RFC 7617) credential,
# and every query string (a client may put the token there, and the access log's %r is the
# request line). A credential's repr keeps its escapes (\x01, \r) inside the redacted run.
_SECRETS = (
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n]*"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s'\"]+"), rf"\1\2{REDACTED}"),
    (re.compile(r"(/[^\s?'\"]*)\?[^\s'\"]*"), rf"\1?{REDACTED}"),
)
# The parser's messages start with its own words ("Invalid header value char", "Got more than
# 16384 bytes when reading") and then quote the request; the cause keeps the words only.
_LEADING_WORDS = re.compile(r"[A-Za-z][A-Za-z0-9 ]{0,58}")


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def parser_cause(exc: HttpProcessingError) -> str:
    """``BadHttpMessage: Invalid header value char``: the error's class and the parser's words."""
    words = _LEADING_WORDS.match(str(exc.message).strip())
    return f"{type(exc).__name__}: {words.group().strip()}" if words else type(exc).__name__


class HttpLogFilter(logging.Filter):
    """On aiohttp's loggers: a parser error becomes one WARNING line naming its cause; warnings
    and errors pass at most once per cause an interval, with a count of those held back; all
    that passes is redacted."""

    def __init__(self, every_s: float = LOG_EVERY_S, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self._lines = EveryInterval(every_s, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        cause: object = None
        if isinstance(exc, HttpProcessingError):
            record.exc_info, record.exc_text = None, None
            cause = record.cause = parser_cause(exc)
            record.status = exc.code
            # A client's malformed request is not the agent's error.
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        elif record.levelno >= logging.WARNING:
            cause = (record.name, str(record.msg), type(exc).__name__)
        if cause is not None:
            held = self._lines.allow(cause)
            if held is None:
                return False
            record.more_since_last_line = held
        _redact_record(record)
        return True


def _redact_record(record: logging.LogRecord) -> None:
    record.msg, record.args = redact(record.getMessage()), None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    for key, value in extra_fields(record).items():  # the access log's request_header, first_request_line
        if isinstance(value, str):
            setattr(record, key, redact(value))
        elif isinstance(value, dict):
            setattr(record, key, {k: REDACTED if str(k).lower() == "authorization" else redact(str(v))
                                  for k, v in value.items()})


def install(every_s: float = LOG_EVERY_S) -> HttpLogFilter:
    """Put one filter on aiohttp's loggers (replacing one installed before)."""
    installed = HttpLogFilter(every_s)
    for name in AIOHTTP_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, HttpLogFilter)]:
            logger.removeFilter(old)
        logger.addFilter(installed)
    return installed


class CleanErrorHandler(web.RequestHandler):
    """aiohttp's per-connection protocol, whose reply to a request its parser refused names the
    cause without quoting the request (aiohttp's quotes the bad header, a token included)."""

    __slots__ = ()

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if isinstance(exc, HttpProcessingError):
            message = f"{status} {responses.get(status, 'Error')}: {parser_cause(exc)}"
        return super().handle_error(request, status, exc, message)


def clean_error_handlers(server: web.Server, **handler_kwargs: Any) -> Callable[[], CleanErrorHandler]:
    """A protocol factory for ``server``'s connections, as ``server()`` would build them; pass the
    keyword arguments its runner was given (access_log, max_line_size...)."""
    loop = asyncio.get_running_loop()
    return lambda: CleanErrorHandler(server, loop=loop, **handler_kwargs)
