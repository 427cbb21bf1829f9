#!/usr/bin/env bash
# The cgroup v2 stage of `make test`: the tests marked `guest` (discovery, metrics, limits on real
# cgroup v2) plus the guest's own kernel checks, inside the QEMU guest. Python runs ~30x slower
# there, so the stage is a chosen subset; everything else runs on the host stage.
# Fails if pytest fails in the guest, collects nothing, or the guest never reports (exit 255).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash tests/vm/run-pytest.sh -m guest -v tests/real tests/vm/guest "$@"
rc=$?
case $rc in
  0) echo "v2 stage: passed" ;;
  5) echo "v2 stage: FAILED: no test was collected in the guest" >&2 ;;
  255) echo "v2 stage: FAILED: the guest never reported" >&2 ;;
  *) echo "v2 stage: FAILED (pytest exit $rc)" >&2 ;;
esac
exit $rc
