"""The OpenAPI description is valid OpenAPI 3 and covers every route the API listener serves."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from cgwatch.server.app import API_ONLY_READ_ROUTES, READ_ROUTES, WRITE_ROUTES
from cgwatch.server.openapi import OPENAPI


def test_spec_is_valid_openapi():
    validate(OPENAPI)


def test_every_api_route_is_described():
    described = {(path, method) for path, ops in OPENAPI["paths"].items() for method in ops}
    # aiohttp's "{path:.*}" (a parameter with its regex) is OpenAPI's "{path}".
    routes = {(re.sub(r"\{(\w+):[^}]*\}", r"{\1}", r.path), r.method.lower())
              for r in READ_ROUTES + WRITE_ROUTES + API_ONLY_READ_ROUTES if r.path.startswith("/api/")}
    missing = sorted(routes - described - {("/api/v1/openapi.json", "get")})
    assert missing == []
