"""Where the suite runs: the repository under test, and whether CI runs it (CI=true: a missing
real part fails the test instead of skipping it). Shared by tests/ and bench/."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI") == "true"
