#!/usr/bin/env bash
# The whole suite: the host stage (unit tests, real v1 cgroups, a real dockerd, promtool), then
# the cgroup v2 stage inside the QEMU guest. Fails if either fails; dockerd is stopped either way.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export CGWATCH_WORK=${CGWATCH_WORK:-/tmp/cgwatch-ci}
# The suite's own dockerd, never the host's: every `docker` from here on talks to it.
. tests/support/docker-env.sh   # exports DOCKER_HOST

bash tests/support/docker-up.sh || { echo "run.sh: dockerd did not start" >&2; exit 1; }
trap 'bash tests/support/docker-down.sh' EXIT

$PY -m pytest tests
host_rc=$?
[ "${1:-}" = "--host-only" ] && exit $host_rc

bash tests/vm/run-v2-stage.sh
v2_rc=$?
echo "run.sh: host stage exit $host_rc, cgroup v2 guest stage exit $v2_rc"
[ $host_rc -eq 0 ] && [ $v2_rc -eq 0 ]
