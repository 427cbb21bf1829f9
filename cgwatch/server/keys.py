"""Typed application and request state keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..security.audit import Attempt

if TYPE_CHECKING:
    from ..agent import Agent

AGENT: web.AppKey["Agent"] = web.AppKey("agent")
# The write attempt the refusal middleware opened for a request.
ATTEMPT: web.RequestKey[Attempt] = web.RequestKey("attempt", Attempt)
