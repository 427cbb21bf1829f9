"""The API's OpenAPI 3.0 description, served at /api/v1/openapi.json."""

from __future__ import annotations

from .. import __version__

_BYTES = {"oneOf": [{"type": "integer", "minimum": 0},
                    {"type": "string", "pattern": r"^\d+(\.\d+)?\s?[kKmMgGtTpP]?[iI]?[bB]?$"}]}


def _nullable(schema: dict, description: str) -> dict:
    return {**schema, "nullable": True, "description": description}


LIMIT_FIELDS = {
    "cpus": _nullable({"oneOf": [{"type": "number", "minimum": 0.01}, {"type": "string"}]},
                      "CPUs, as docker --cpus (0.5 = half a CPU). Not with cpu_period_us/cpu_quota_us."),
    "cpu_period_us": _nullable({"type": "integer", "minimum": 1000, "maximum": 1000000}, "CFS period, us."),
    "cpu_quota_us": _nullable({"type": "integer", "minimum": -1}, "CFS quota per period, us (>= 1000; -1 none)."),
    "cpu_shares": _nullable({"type": "integer", "minimum": 2, "maximum": 262144}, "Relative weight (v2: cpu.weight)."),
    "cpuset_cpus": _nullable({"type": "string", "example": "0-1,3"}, "CPUs the container may run on."),
    "memory": _nullable(_BYTES, "Memory limit: bytes or 100m, 1g, 512k (binary multiples); at least 6 MiB."),
    "memory_reservation": _nullable(_BYTES, "Soft limit (v1 soft_limit_in_bytes, v2 memory.low)."),
    "memory_swap": _nullable({"oneOf": [_BYTES, {"type": "integer", "enum": [-1]}]},
                             "Memory plus swap, as docker --memory-swap; -1 unlimited."),
    "pids_limit": _nullable({"type": "integer", "minimum": -1, "maximum": 4194304}, "Max tasks; -1 unlimited."),
}

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
        "/api/v1/containers": {"get": {"summary": "Every container with usage and limits",
                                       "responses": {"200": {"description": "ok"}}}},
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
                             "properties": {**LIMIT_FIELDS, "force": {
                                 "type": "boolean", "description": "Allow memory below current usage."}}},
            "Limits": LIMITS_READ,
            "LimitChange": {"type": "object", "properties": {
                "id": {"type": "string"}, "name": {"type": "string"}, "runtime": {"type": "string"},
                "applied_via": {"type": "string", "enum": ["docker", "docker+cgroupfs", "cgroupfs"]},
                "previous": {"$ref": "#/components/schemas/Limits"}, "limits": {"$ref": "#/components/schemas/Limits"},
                "notes": {"type": "array", "items": {"type": "string"}}}},
            "Error": ERROR,
        },
    },
}
