"""A runtime's container list, each entry inspected: what Docker's and Podman's clients share.

Both list cheaply but without everything an event's refresh caches (Docker's list has no
StartedAt or Pid, Podman's StartedAt has whole seconds), so each entry is inspected, a few at a
time. One entry that does not parse is skipped, one the runtime cannot inspect stands as its list
entry, and the runtime going away (``status`` None) voids the whole list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .base import RuntimeApiError

log = logging.getLogger("cgwatch.runtimes.listing")

C = TypeVar("C")
INSPECT_CONCURRENCY = 8


async def inspect_each(runtime: str, entries: Any, parse_entry: Callable[[Any], C],
                       inspect: Callable[[str], Awaitable[C | None]], error: type[RuntimeApiError]) -> list[C]:
    """``entries`` (the list's JSON) as containers, each from ``inspect(id)``; ``error`` (the
    client's RuntimeApiError) when the list is not a list. ``parse_entry`` gives an ``id``."""
    if not isinstance(entries, list):
        raise error(200, "container list is not a JSON array")
    sem = asyncio.Semaphore(INSPECT_CONCURRENCY)

    async def one(entry: Any) -> C | None:
        try:
            fallback = parse_entry(entry)
        except ValueError as exc:
            log.warning(f"bad {runtime} container list entry", extra={"error": str(exc)})
            return None
        async with sem:
            try:
                return await inspect(fallback.id)  # type: ignore[attr-defined]  # None: removed since the list
            except RuntimeApiError as exc:
                if exc.status is None:
                    raise  # the runtime went away: the whole list is void
                # One container the runtime cannot inspect must not hide all the others.
                log.warning(f"{runtime} inspect failed; using the list entry",
                            extra={"container": fallback.id, "error": exc.message,  # type: ignore[attr-defined]
                                   "status": exc.status})
                return fallback

    found = await asyncio.gather(*(one(e) for e in entries))
    return [c for c in found if c is not None]
