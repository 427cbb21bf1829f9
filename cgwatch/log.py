"""Structured logs: one JSON object per line, with the ``extra=`` fields of each call."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Hashable

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    """The fields a call passed in ``extra=`` (or a filter added)."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(extra_fields(record))
        # exc_text is logging's cache of the formatted traceback; a filter may have set it (redacted).
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, default=str)


class EveryInterval:
    """At most one log line per cause an interval, so a flood (a scanner, a fuzzer) cannot fill the
    log; the line that is let through says how many were held back since the last one."""

    MAX_CAUSES = 256  # causes come from code, but bound the table anyway: the rest share one

    def __init__(self, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._held: dict[Hashable, int] = {}

    def allow(self, cause: Hashable) -> int | None:
        """None: drop this line. Otherwise log it, with the returned count of lines held back."""
        if cause not in self._last and len(self._last) >= self.MAX_CAUSES:
            cause = "other"
        now = self._clock()
        if cause in self._last and now - self._last[cause] < self.interval_s:
            self._held[cause] = self._held.get(cause, 0) + 1
            return None
        self._last[cause] = now
        return self._held.pop(cause, 0)


def setup(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log is one line per request: keep it, in the same format, at info.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING if level != "debug" else logging.INFO)
