"""Shared fixtures. Real parts (cgroups, dockerd, promtool) must run in CI: there a missing part
fails the test instead of skipping it."""

from __future__ import annotations

import os

import pytest

from tests.support.cgroups import CgroupSandbox, have_real_cgroups
from tests.support.docker import DOCKER_HOST, Containers, docker_missing
from tests.support.env import IN_CI, REPO

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
    need(docker_missing())
    box = Containers()
    try:
        yield box
    finally:
        box.cleanup()


def pytest_configure(config):
    # Every `docker` a test runs talks to the suite's own dockerd, as in tests/run.sh, whatever
    # DOCKER_HOST or docker context the caller has.
    os.environ["DOCKER_HOST"] = DOCKER_HOST


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/*.prom from the fixture trees instead of comparing")
