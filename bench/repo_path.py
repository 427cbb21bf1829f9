"""Puts the repository root on sys.path, for what the bench shares with the tests (tests/support:
the cgroup sandbox, REPO). bench/ scripts run as `python bench/<script>.py`, with only bench/ on
sys.path; import this before anything from tests."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(1, _ROOT)  # after bench/ itself
