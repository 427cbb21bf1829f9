"""Repeated refusals folded into counted audit lines, so a flood costs bounded disk and fsyncs.

A key is (client address, cause, method, path without query). In a window of ``window_s`` from
a key's first refusal, its first ``burst`` refusals are written one line each (``count`` 1) and
the rest are only counted; when the window closes, one line carries their number (``count``
n). So a key costs at most ``burst + 1`` lines a window, and the counts always sum to the
attempts. At most ``max_keys`` keys are open at once; past that, new keys share one overflow
key per cause (client, method and path "*"), so many addresses or paths cannot lift the bound.
This is pure: the clock is injected, the caller writes the lines it is handed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str, str, str]
OVERFLOW = "*"


@dataclass(slots=True)
class _Window:
    opened: float
    entry: dict[str, Any]
    since: str
    written: int = 0
    counted: int = 0


@dataclass
class RefusalCoalescer:
    window_s: float = 10.0
    burst: int = 10
    max_keys: int = 256
    clock: Callable[[], float] = time.monotonic
    _open: dict[Key, _Window] = field(default_factory=dict)

    def admit(self, key: Key, entry: dict[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """(the line to write for this refusal now, or None if only counted; the summary lines of
        windows that closed by now). ``entry`` gets its ``count``."""
        now = self.clock()
        closed = self.due(now)
        if key not in self._open and len(self._open) >= self.max_keys:
            key = (OVERFLOW, key[1], OVERFLOW, OVERFLOW)
            entry = {**entry, "client": OVERFLOW, "ref": OVERFLOW, "mode": OVERFLOW, "path": OVERFLOW}
        window = self._open.get(key)
        if window is None:
            window = self._open[key] = _Window(now, entry, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        if window.written < self.burst:
            window.written += 1
            return {**entry, "count": 1}, closed
        window.counted += 1
        return None, closed

    def due(self, now: float | None = None) -> list[dict[str, Any]]:
        """Close the windows that ended by ``now``; a line for each that counted refusals."""
        now = self.clock() if now is None else now
        ended = [k for k, w in self._open.items() if now >= w.opened + self.window_s]
        return [line for k in ended if (line := _summary(self._open.pop(k))) is not None]

    def drain(self) -> list[dict[str, Any]]:
        """Close every window now (shutdown): nothing counted is lost."""
        windows, self._open = list(self._open.values()), {}
        return [line for w in windows if (line := _summary(w)) is not None]

    def next_deadline(self) -> float | None:
        """When the earliest open window closes (the clock's time), or None when none is open."""
        return min((w.opened + self.window_s for w in self._open.values()), default=None)


def _summary(window: _Window) -> dict[str, Any] | None:
    if not window.counted:
        return None
    return {**window.entry, "count": window.counted, "coalesced_since": window.since}
