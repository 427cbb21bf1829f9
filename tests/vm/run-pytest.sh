#!/usr/bin/env bash
# Run pytest inside the cgroup v2 guest (tests/vm/guest.sh) and exit with pytest's status.
#
#   tests/vm/run-pytest.sh [PYTEST ARGS...]
#
# Runs `.venv/bin/python -m pytest -p no:cacheprovider ARGS` from the repo root in the guest. The
# repo is read-only there, hence no cache provider (and PYTHONDONTWRITEBYTECODE=1 from guest.sh).
# With no ARGS: `-m real` over whichever of tests/real and tests/vm/guest exist (a path that does
# not exist yet is left out instead of making pytest fail on it).
#
# Exit status: pytest's (0 passed, 1 failures, 2 interrupted/usage, 5 nothing collected, ...), or
# 255 when the guest never reported (see guest.sh). Environment: everything guest.sh reads
# (CGWATCH_VM_TIMEOUT, CGWATCH_VM_CACHE, ...); CI and CGWATCH_* are passed into the guest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if [ $# -eq 0 ]; then
  paths=()
  for p in tests/real tests/vm/guest; do
    [ -e "$p" ] && paths+=("$p")
  done
  set -- -m real "${paths[@]}"
fi
[ -x .venv/bin/python ] || { echo "run-pytest.sh: .venv/bin/python missing (make venv)" >&2; exit 2; }
# Hypothesis keeps its example database under the (read-only) repo: point it at the guest's /tmp.
exec bash tests/vm/guest.sh -- env HYPOTHESIS_STORAGE_DIRECTORY=/tmp/hypothesis \
  .venv/bin/python -m pytest -p no:cacheprovider "$@"
