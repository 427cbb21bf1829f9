"""Domain errors know nothing of HTTP; server/errors.py gives each its status, in one table.

An audit line says "rejected" when the request was refused on its merits and "failed" when the
host could not do it (``host_fault``); the status says the same thing as 4xx against 5xx.
"""

from __future__ import annotations

import errno
import inspect

import pytest

from cgwatch import errors
from cgwatch.server.errors import STATUS, status_of

DOMAIN_ERRORS = [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
                 if issubclass(cls, errors.CgwatchError) and cls is not errors.CgwatchError]


def test_no_domain_error_carries_an_http_status():
    assert not [cls.__name__ for cls in [errors.CgwatchError, *DOMAIN_ERRORS] if hasattr(cls, "status")]


@pytest.mark.parametrize("cls", [c for c in DOMAIN_ERRORS if c is not errors.CgroupWriteError], ids=lambda c: c.__name__)
def test_every_domain_error_has_a_status_that_agrees_with_who_is_at_fault(cls):
    assert cls in STATUS, f"{cls.__name__} has no status in server/errors.py STATUS"
    assert (STATUS[cls] >= 500) == cls.host_fault


@pytest.mark.parametrize("code, status", [
    (errno.EBUSY, 409), (errno.EINVAL, 422), (errno.ENOENT, 404), (errno.ENODEV, 404),
    (errno.EROFS, 503), (errno.EACCES, 503), (errno.EPERM, 503), (errno.EIO, 500),
])
def test_a_refused_cgroup_write_maps_by_errno(code, status):
    exc = errors.CgroupWriteError("/sys/fs/cgroup/pids/x/pids.max", "50", code, "refused")
    assert status_of(exc) == status
    assert exc.host_fault == (status >= 500)
    assert exc.to_json()["errno"] == errno.errorcode[code]


def test_an_unknown_error_is_a_500():
    assert status_of(errors.CgwatchError("boom")) == 500
