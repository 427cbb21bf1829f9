"""The API's OpenAPI 3.0 description, served at /api/v1/openapi.json."""

from __future__ import annotations

from decimal import Decimal

from .. import __version__
from ..limits.fields import LIMIT_FIELDS, Kind, LimitField

_SIZE_STRING = {"type": "string", "pattern": r"^\d+(\.\d+)?\s?[kKmMgGtTpP]?[iI]?[bB]?$"}
_MINUS_ONE = {"type": "integer", "enum": [-1]}
# The JSON a kind of value takes: its bounded number (if any) first, then the other spellings.
_NUMBER_TYPE = {Kind.CPUS: "number", Kind.INTEGER: "integer", Kind.BYTES: "integer"}
_OTHER_SPELLINGS = {Kind.CPUS: [{"type": "string"}], Kind.INTEGER: [], Kind.BYTES: [_SIZE_STRING],
                    Kind.CPU_LIST: [{"type": "string"}]}


def _json_number(n: Decimal | int) -> int | float:
    return int(n) if n == int(n) else float(n)


def _limit_schema(field: LimitField) -> dict:
    """One LimitRequest property, from its row in limits/fields.py; rows the web page's form shows
    carry ``x-cgwatch-form``, which cgwatch/web/app.js builds the form's inputs from."""
    choices = list(_OTHER_SPELLINGS[field.kind])
    if field.kind in _NUMBER_TYPE:
        bounds = {} if field.bounds is None else {"minimum": _json_number(field.bounds[0]),
                                                 "maximum": _json_number(field.bounds[1])}
        choices.insert(0, {"type": _NUMBER_TYPE[field.kind], **bounds})
    if field.minus_one_unlimited:
        choices.append(_MINUS_ONE)
    schema = choices[0] if len(choices) == 1 else {"oneOf": choices}
    if field.example is not None:
        schema = {**schema, "example": field.example}
    schema = {**schema, "nullable": True, "description": field.description}
    if field.form is not None:
        form = field.form
        schema["x-cgwatch-form"] = {"id": form.id, "label": form.label, "example": form.example,
                                    "current": form.current, "inputmode": form.inputmode, "unit": field.unit,
                                    # "int": digits go as a JSON number; "text": as typed (the API parses it)
                                    "kind": "int" if field.kind is Kind.INTEGER else "text"}
    return schema


LIMIT_PROPERTIES = {field.name: _limit_schema(field) for field in LIMIT_FIELDS}

LIMITS_READ = {
    "type": "object",
    "properties": {k: {"type": "integer", "nullable": True} for k in (
        "cpu_quota_us", "cpu_period_us", "cpu_shares", "memory_limit_bytes", "memory_reservation_bytes",
        "memory_high_bytes", "memory_swap_limit_bytes", "pids_max")}
    | {"cpuset_cpus": {"type": "string", "nullable": True}, "cpus": {"type": "number", "nullable": True}},
}

ERROR = {"type": "object", "required": ["error", "message"],
         "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                        "field": {"type": "string"}, "rule": {"type": "string"}}}


def _errors(*codes: int) -> dict:
    return {str(c): {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            for c in codes}


def _json(ref: str, description: str = "ok") -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


_REF = {"name": "ref", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "Full container ID, unique ID prefix, or name."}
# OpenAPI 3.0 has no path parameter that spans segments: {path} is documented as one and sent
# with its slashes as they are ("batch/job-7"); the route takes everything up to the suffix.
_PATH = {"name": "path", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "A cgroup path as GET /api/v1/containers lists it (\"cgroup\"), without its leading '/' "
                        "and with its slashes kept: batch/job-7. Never '..', '.', empty segments or "
                        "percent-encoded '/', '.' or '%'; not the root, an ignored cgroup, or one the agent does not see."}
_CHANGE = {
    "parameters": [_REF],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LimitRequest"}}}},
    "responses": {"200": _json("#/components/schemas/LimitChange", "applied and read back"),
                  **_errors(400, 401, 403, 404, 409, 413, 415, 422, 503)},
    "security": [{"bearer": []}],
}

OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "cgwatch", "version": __version__,
             "description": "Read containers and change their CPU and memory limits, in Docker's vocabulary."},
    "paths": {
        "/api/v1/containers": {"get": {
            "summary": "Every container with usage and limits, and the collection they are from "
                       "(collected_at: epoch seconds of its readings; collection: pass it as ?after= for a newer one)",
            "parameters": [{"name": "after", "in": "query", "required": False, "schema": {"type": "number"},
                            "description": "an earlier listing's \"collection\": answer from one begun after it"}],
            "responses": {"200": {"description": "ok"}, **_errors(400)}}},
        "/api/v1/containers/{ref}": {"get": {"summary": "One container", "parameters": [_REF],
                                             "responses": {"200": {"description": "ok"}, **_errors(400, 404, 409)}}},
        "/api/v1/containers/{ref}/limits": {
            "get": {"summary": "The limits as the kernel holds them now", "parameters": [_REF],
                    "responses": {"200": {"description": "ok"}, **_errors(400, 401, 404, 409)}},
            "put": {**_CHANGE, "summary": "Replace the limits (fields not given become unlimited)"},
            "patch": {**_CHANGE, "summary": "Change only the fields given (null clears one)"},
            "delete": {**_CHANGE, "summary": "Remove every limit", "requestBody": {
                "required": False, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LimitRequest"}}}}},
        },
        "/api/v1/containers/{ref}/desired": {
            "get": {"summary": "The limits cgwatch holds the container to, and who asked (API or a policy rule)",
                    "parameters": [_REF], "responses": {"200": {"description": "ok"}, **_errors(401, 404, 409)}},
            "delete": {"summary": "Forget the API's desired limits; the policy governs again",
                       "parameters": [_REF], "security": [{"bearer": []}],
                       "responses": {"200": {"description": "ok"}, **_errors(401, 404, 409, 503)}},
        },
        "/api/v1/cgroups/{path}/limits": {
            "get": {"summary": "The limits the kernel holds now for any cgroup, by its path", "parameters": [_PATH],
                    "responses": {"200": {"description": "ok"}, **_errors(400, 401, 403, 404)}},
            "put": {**_CHANGE, "parameters": [_PATH], "summary": "Replace a cgroup's limits"},
            "patch": {**_CHANGE, "parameters": [_PATH], "summary": "Change only the given limits of a cgroup"},
            "delete": {**_CHANGE, "parameters": [_PATH], "summary": "Remove every limit of a cgroup", "requestBody": {
                "required": False, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LimitRequest"}}}}},
        },
        "/api/v1/cgroups/{path}/desired": {
            "get": {"summary": "The limits cgwatch holds a cgroup to, and who asked", "parameters": [_PATH],
                    "responses": {"200": {"description": "ok"}, **_errors(400, 401, 403, 404)}},
            "delete": {"summary": "Forget the API's desired limits of a cgroup", "parameters": [_PATH],
                       "security": [{"bearer": []}],
                       "responses": {"200": {"description": "ok"}, **_errors(400, 401, 403, 404, 503)}},
        },
        "/api/v1/containers/{ref}/processes": {"get": {
            "summary": "The container's processes (pid, user, command, CPU %, RSS, threads)",
            "parameters": [_REF, {"name": "interval", "in": "query", "schema": {"type": "number", "minimum": 0,
                                  "maximum": 5}, "description": "seconds to measure CPU % over (0: since start)"}],
            "responses": {"200": {"description": "ok"}, **_errors(400, 401, 404, 409)}}},
        "/api/v1/containers/{ref}/inspect": {"get": {
            "summary": "The container plus its namespaces, user-namespace ID maps and root filesystem",
            "parameters": [_REF], "responses": {"200": {"description": "ok"}, **_errors(401, 404, 409)}}},
        "/api/v1/policy": {"get": {"summary": "The loaded policy, its last load error, which rule governs each container",
                                   "responses": {"200": {"description": "ok"}}}},
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
        "/metrics": {"get": {"summary": "Prometheus exposition", "responses": {"200": {"description": "ok"}}}},
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "LimitRequest": {"type": "object", "additionalProperties": False,
                             "properties": {**LIMIT_PROPERTIES, "force": {
                                 "type": "boolean", "description": "Allow memory below current usage."}}},
            "Limits": LIMITS_READ,
            "LimitChange": {"type": "object", "properties": {
                "id": {"type": "string"}, "name": {"type": "string"}, "runtime": {"type": "string"},
                "cgroup": {"type": "string"}, "applied_via": {"type": "string", "enum": [
                    "docker", "docker+cgroupfs", "podman", "podman+cgroupfs", "containerd", "containerd+cgroupfs",
                    "cgroupfs"]},
                "previous": {"$ref": "#/components/schemas/Limits"}, "limits": {"$ref": "#/components/schemas/Limits"},
                "notes": {"type": "array", "items": {"type": "string"}}}},
            "Error": ERROR,
        },
    },
}
