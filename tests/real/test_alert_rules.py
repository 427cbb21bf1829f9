"""The alert rules load and their unit tests pass under the real promtool."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO, need

pytestmark = pytest.mark.prometheus


def promtool() -> str:
    path = shutil.which("promtool")
    need(None if path else "needs promtool (Debian package prometheus)")
    return path


def test_rules_are_valid():
    out = subprocess.run([promtool(), "check", "rules", "alerts/cgwatch.rules.yml"], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_rule_unit_tests_pass():
    out = subprocess.run([promtool(), "test", "rules", "tests.yml"], cwd=REPO / "alerts", capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout
