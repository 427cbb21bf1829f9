"""Domain errors. Raised anywhere below the API; mapped to HTTP in one middleware (server/errors.py)."""

from __future__ import annotations


class CgwatchError(Exception):
    """Base of every error a user may see; ``status`` is the HTTP status it maps to."""

    status = 500
    code = "internal"

    def __init__(self, message: str, **details: object):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, object]:
        return {"error": self.code, "message": self.message, **self.details}


class ContainerNotFound(CgwatchError):
    status = 404
    code = "container_not_found"


class AmbiguousRef(CgwatchError):
    status = 409
    code = "ambiguous_ref"


class InvalidRef(CgwatchError):
    status = 400
    code = "invalid_ref"


class InvalidRequest(CgwatchError):
    """The body is not a well-formed request (JSON syntax, duplicate keys, wrong shape)."""

    status = 400
    code = "invalid_request"


class InvalidLimit(CgwatchError):
    """A limit value breaks a rule (Docker's or the kernel's bounds); ``field`` and ``rule`` say which."""

    status = 422
    code = "invalid_limit"

    def __init__(self, field: str, rule: str, message: str, **details: object):
        super().__init__(message, field=field, rule=rule, **details)
        self.field = field
        self.rule = rule


class LimitConflict(CgwatchError):
    """The request is valid alone but conflicts with the container's state (e.g. memory below usage)."""

    status = 409
    code = "limit_conflict"
