"""Newline-delimited JSON (the ``GET /events`` body) decoded from chunks cut anywhere: pure, no I/O."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_MAX_EVENT_LINE = 1 << 20  # one event is ~1 KiB (labels included); more means a broken stream

# Told of each line skipped and why: the caller counts or logs it, decoding goes on.
OnBadLine = Callable[[bytes, ValueError], None]


class JsonStreamDecoder:
    """Incremental decoder for a stream of JSON objects, one per line, whose bytes arrive in chunks
    cut anywhere (mid-object, mid-UTF-8 sequence). Several objects on one line are accepted too.

    ``feed`` returns the objects completed by a chunk; ``flush`` those left at end of stream. A bad
    line is counted in ``errors``, passed to ``on_error(line, exc)`` and skipped: decoding goes on
    at the next newline.
    """

    def __init__(self, on_error: OnBadLine | None = None,
                 max_line: int = _MAX_EVENT_LINE):
        self._buf = bytearray()
        self._on_error = on_error
        self._max_line = max_line
        self._decoder = json.JSONDecoder()
        self._skipping = False  # dropping the rest of an overlong line
        self.errors = 0

    def feed(self, data: bytes) -> list[Any]:
        out: list[Any] = []
        start = len(self._buf)  # the bytes before had no newline: search only the new ones first
        self._buf += data
        while True:
            nl = self._buf.find(b"\n", start)
            start = 0
            if nl < 0:
                break
            line = bytes(self._buf[:nl])
            del self._buf[:nl + 1]
            if self._skipping:
                self._skipping = False
                continue
            out.extend(self._decode_line(line))
        if len(self._buf) > self._max_line:
            self._bad(bytes(self._buf[:200]), ValueError(f"line longer than {self._max_line} bytes"))
            self._buf.clear()
            self._skipping = True
        return out

    def flush(self) -> list[Any]:
        """End of stream: decode a last line that had no newline."""
        line = bytes(self._buf)
        self._buf.clear()
        skipping, self._skipping = self._skipping, False
        return [] if skipping else self._decode_line(line)

    def _decode_line(self, line: bytes) -> list[Any]:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._bad(line, exc)
            return []
        objs: list[Any] = []
        pos, end = 0, len(text)
        while True:
            while pos < end and text[pos].isspace():
                pos += 1
            if pos >= end:
                return objs
            try:
                obj, pos = self._decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                self._bad(line, exc)
                return objs  # keep what decoded before the damage
            objs.append(obj)

    def _bad(self, line: bytes, exc: ValueError) -> None:
        self.errors += 1
        if self._on_error is not None:
            self._on_error(line, exc)
