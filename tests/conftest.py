"""Shared fixtures. Real parts (cgroups, dockerd, promtool) must run in CI: there a missing part
fails the test instead of skipping it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cgroups import CgroupSandbox, have_real_cgroups

IN_CI = os.environ.get("CI") == "true"
REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"


def need(reason: str | None) -> None:
    """Skip (laptop) or fail (CI) when a real part is missing; ``reason`` None means present."""
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true but a real part is missing: {reason}")
    pytest.skip(reason)


@pytest.fixture
def sandbox():
    need(have_real_cgroups())
    box = CgroupSandbox()
    try:
        yield box
    finally:
        box.cleanup()


@pytest.fixture
def docker_containers():
    from tests.support.docker import Containers, docker_missing

    need(docker_missing())
    box = Containers()
    try:
        yield box
    finally:
        box.cleanup()


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/*.prom from the fixture trees instead of comparing")
