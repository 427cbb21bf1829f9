"""Domain errors. Raised anywhere below the API; they know nothing of HTTP: server/errors.py maps
each to a status in one table."""

from __future__ import annotations

import errno


class CgwatchError(Exception):
    """Base of every error a user may see; ``code`` is its stable name in error bodies.

    ``host_fault`` says who is at fault: False (the default) when the request was refused on its
    merits (an audit line's "rejected"), True when the host could not do what was valid (its
    "failed": a read-only cgroupfs, a full disk, an unexpected errno)."""

    code = "internal"
    host_fault = False

    def __init__(self, message: str, **details: object):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, object]:
        return {"error": self.code, "message": self.message, **self.details}


class ContainerNotFound(CgwatchError):
    code = "container_not_found"


class CgroupNotFound(ContainerNotFound):
    """A cgroup path the agent does not see now: never made, removed, or skipped by --ignore-cgroup."""

    code = "cgroup_not_found"


class AmbiguousRef(CgwatchError):
    code = "ambiguous_ref"


class InvalidRef(CgwatchError):
    code = "invalid_ref"


class InvalidCgroupPath(InvalidRef):
    """A cgroup path that could name something other than one cgroup the walk found: "..", ".",
    "//", control characters, percent-encoded '/', '.' or '%'."""

    code = "invalid_cgroup_path"


class ProtectedCgroup(CgwatchError):
    """A cgroup cgwatch never changes: the root cgroup holds the whole host, not a container."""

    code = "protected_cgroup"


class InvalidRequest(CgwatchError):
    """The body is not a well-formed request (JSON syntax, duplicate keys, wrong shape)."""

    code = "invalid_request"


class InvalidLimit(CgwatchError):
    """A limit value breaks a rule (Docker's or the kernel's bounds); ``field`` and ``rule`` say which."""

    code = "invalid_limit"

    def __init__(self, field: str, rule: str, message: str, **details: object):
        super().__init__(message, field=field, rule=rule, **details)
        self.field = field
        self.rule = rule


class LimitConflict(CgwatchError):
    """The request is valid alone but conflicts with the container's state (e.g. memory below usage)."""

    code = "limit_conflict"


class KubernetesManaged(CgwatchError):
    """The kubelet owns this container's limits; its resize API is the right tool."""

    code = "kubernetes_managed"


# The kernel's answers that judge the value or the container, not the host: EBUSY (memory below
# usage on v1), EINVAL (a value the kernel will not take), ENOENT/ENODEV (the cgroup vanished).
REQUEST_ERRNOS = frozenset({errno.EBUSY, errno.EINVAL, errno.ENOENT, errno.ENODEV})


class CgroupWriteError(CgwatchError):
    """The kernel refused a write; ``errno`` says why (server/errors.py maps it to a status)."""

    code = "cgroup_write_failed"

    def __init__(self, file: str, value: str, errno_: int, strerror: str):
        self.host_fault = errno_ not in REQUEST_ERRNOS
        super().__init__(f"the kernel refused {value!r} for {file}: {strerror}", file=file, value=value,
                         errno=errno.errorcode.get(errno_, str(errno_)))
        self.errno = errno_


class RuntimeRefused(CgwatchError):
    """The container runtime's API refused a change (its status and message are passed on)."""

    code = "runtime_refused"


class StateUnwritable(CgwatchError):
    """The state or audit files cannot be written (full disk, read-only): changes are refused."""

    host_fault = True
    code = "state_unwritable"


class Unauthorized(CgwatchError):
    code = "unauthorized"


class ForbiddenHost(CgwatchError):
    """A loopback API reached under a foreign Host name: a DNS-rebinding page, not a local client."""

    code = "host_not_allowed"


class ClientCertificateNotAllowed(CgwatchError):
    """A client certificate that names none of the web config's client_allowed_sans."""

    code = "client_certificate_not_allowed"


class ForbiddenOrigin(CgwatchError):
    """A browser request sent from another site's page."""

    code = "origin_not_allowed"


class RequestTimeout(CgwatchError):
    """The request's body did not arrive within the agent's deadline."""

    code = "request_timeout"


class PayloadTooLarge(CgwatchError):
    code = "payload_too_large"


class HeaderFieldsTooLarge(CgwatchError):
    """A request's line and header fields exceed the agent's byte budget (RFC 6585, section 5)."""

    code = "header_fields_too_large"


class UnsupportedMediaType(CgwatchError):
    code = "unsupported_media_type"


class ExpectationFailed(CgwatchError):
    """An Expect header asks for something other than 100-continue (RFC 9110, 10.1.1)."""

    code = "expectation_failed"
