"""Domain errors. Raised anywhere below the API; mapped to HTTP in one middleware (server/errors.py)."""

from __future__ import annotations

import errno


class CgwatchError(Exception):
    """Base of every error a user may see; ``status`` is the HTTP status it maps to."""

    status = 500
    code = "internal"
    # Set once the refusal is in the audit log, so the HTTP layer does not record it twice.
    audited = False

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


class KubernetesManaged(CgwatchError):
    """The kubelet owns this container's limits; its resize API is the right tool."""

    status = 403
    code = "kubernetes_managed"


_WRITE_ERRNO_STATUS = {errno.EBUSY: 409, errno.EINVAL: 422, errno.ENOENT: 404, errno.ENODEV: 404,
                       errno.EROFS: 503, errno.EACCES: 503, errno.EPERM: 503}


class CgroupWriteError(CgwatchError):
    """The kernel refused a write. The status follows the errno: EBUSY is a conflict (memory
    below usage on v1), EINVAL an invalid value, EROFS/EACCES/EPERM a host that cannot be
    written (503), ENOENT a container that vanished (404)."""

    code = "cgroup_write_failed"

    def __init__(self, file: str, value: str, errno_: int, strerror: str):
        self.status = _WRITE_ERRNO_STATUS.get(errno_, 500)
        super().__init__(f"the kernel refused {value!r} for {file}: {strerror}", file=file, value=value,
                         errno=errno.errorcode.get(errno_, str(errno_)))
        self.errno = errno_


class RuntimeRefused(CgwatchError):
    """The container runtime's API refused a change (its status and message are passed on)."""

    status = 409
    code = "runtime_refused"


class StateUnwritable(CgwatchError):
    """The state or audit files cannot be written (full disk, read-only): changes are refused."""

    status = 503
    code = "state_unwritable"


class Unauthorized(CgwatchError):
    status = 401
    code = "unauthorized"


class ForbiddenHost(CgwatchError):
    """A loopback API reached under a foreign Host name: a DNS-rebinding page, not a local client."""

    status = 403
    code = "host_not_allowed"


class ForbiddenOrigin(CgwatchError):
    """A browser request sent from another site's page."""

    status = 403
    code = "origin_not_allowed"


class PayloadTooLarge(CgwatchError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(CgwatchError):
    status = 415
    code = "unsupported_media_type"
