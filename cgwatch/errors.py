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
