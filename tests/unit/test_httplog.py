"""The filter on aiohttp's loggers: parser errors one line a minute per cause, no traceback or
header value, and no credential in anything it lets through."""

from __future__ import annotations

import json
import logging

import pytest
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from cgwatch.log import JsonFormatter
from cgwatch.server.httplog import HttpLogFilter, parser_cause, redact

TOKEN = "PpV_PdbWs7a4yfeNMoM0IphGaIAidzZdfB_2-w0hZoc"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bad_header() -> BadHttpMessage:
    # What aiohttp's C parser raises for a control byte in a header value (aiohttp 3.14).
    return BadHttpMessage(f"Invalid header value char:\n\n  b'Authorization: Bearer {TOKEN}\\x01'\n     ^")


def record(name: str = "aiohttp.server", level: int = logging.ERROR, msg: str = "Error handling request from %s",
           args: tuple = ("127.0.0.1",), exc: BaseException | None = None, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord(name, level, __file__, 1, msg, args, (type(exc), exc, exc.__traceback__) if exc else None)
    rec.__dict__.update(extra)
    return rec


def through(f: HttpLogFilter, rec: logging.LogRecord) -> dict | None:
    """The JSON line the agent would write for ``rec``, or None when the filter drops it."""
    return json.loads(JsonFormatter().format(rec)) if f.filter(rec) else None


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_parser_error_passes_once_a_minute_per_cause_with_the_count_held_back(clock):
    f = HttpLogFilter(every_s=60, clock=clock)
    passed = []
    for _ in range(5):
        passed.append(through(f, record(exc=bad_header())))
        clock.now += 10
    assert [p is not None for p in passed] == [True, False, False, False, False]
    clock.now += 20  # 70 s after the first line
    line = through(f, record(exc=bad_header()))
    assert line is not None and line["more_since_last_line"] == 4


def test_distinct_causes_are_limited_separately(clock):
    f = HttpLogFilter(every_s=60, clock=clock)
    assert through(f, record(exc=bad_header())) is not None
    assert through(f, record(exc=LineTooLong(b"GET /" + b"a" * 100, 16384))) is not None
    assert through(f, record(exc=bad_header())) is None


def test_a_parser_error_line_has_its_cause_and_neither_traceback_nor_header_value(clock):
    try:
        raise bad_header()
    except BadHttpMessage as exc:
        line = through(HttpLogFilter(clock=clock), record(exc=exc))
    assert line is not None
    assert line["cause"] == "BadHttpMessage: Invalid header value char"
    assert line["level"] == "warning" and "exc" not in line
    assert TOKEN not in json.dumps(line)


def test_the_cause_keeps_the_parsers_words_and_drops_the_quoted_request():
    cause = parser_cause(LineTooLong(f"GET /?token={TOKEN}", 16384))
    assert cause == "LineTooLong: Got more than 16384 bytes when reading"


def test_an_unexpected_error_keeps_its_traceback_with_the_credential_redacted(clock):
    try:
        raise ValueError(f"header was Authorization: Bearer {TOKEN}")
    except ValueError as exc:
        line = through(HttpLogFilter(clock=clock), record(msg="Unhandled exception", args=(), exc=exc))
    assert line is not None and "Traceback" in line["exc"] and "ValueError" in line["exc"]
    assert TOKEN not in json.dumps(line)


def test_a_query_string_in_an_access_log_line_is_redacted(clock):
    request_line = f"PATCH /api/v1/containers/abc/limits?{TOKEN} HTTP/1.1"
    line = through(HttpLogFilter(clock=clock), record(
        name="aiohttp.access", level=logging.INFO, msg=f'127.0.0.1 "{request_line}" 401', args=(),
        first_request_line=request_line, request_header={"Authorization": f"Bearer {TOKEN}"}))
    assert line is not None and "/api/v1/containers/abc/limits?<redacted>" in line["msg"]
    assert TOKEN not in json.dumps(line)


def test_access_log_lines_are_not_rate_limited(clock):
    f = HttpLogFilter(every_s=60, clock=clock)
    lines = [through(f, record(name="aiohttp.access", level=logging.INFO, msg='"GET /metrics HTTP/1.1" 200',
                               args=())) for _ in range(3)]
    assert all(line is not None for line in lines)


@pytest.mark.parametrize("text", [
    f"Authorization: Bearer {TOKEN}",
    f"b'Authorization: Bearer {TOKEN[:10]}\\x01{TOKEN[10:]}'",
    f"{{'Authorization': 'Basic {TOKEN}'}}",
    f"bearer {TOKEN}\\r",
    f"GET /api/v1/containers?token={TOKEN}&x=1 HTTP/1.1",
])
def test_credentials_are_redacted(text):
    assert TOKEN[:10] not in redact(text) and TOKEN[-10:] not in redact(text)
