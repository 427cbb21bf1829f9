#!/usr/bin/env bash
# Stop the dockerd that docker-up.sh started (the PID it recorded, nothing else).
#   - removes the containers first: `sh` as PID 1 ignores SIGTERM, so dockerd's own shutdown would
#     wait 10 s per container before killing it;
#   - a dockerd this script did not start (docker-up.sh reused it) is left alone with its containers:
#     other test runs may be using it right now (tests remove their own containers by ID anyway);
#   - removes the empty /sys/fs/cgroup/<ctrl>/docker dirs the daemon leaves behind.
#   - CGWATCH_KEEP_CONTAINERS=1 stops the daemon with its containers in place (a restart test:
#     `--restart always` containers come back with the daemon); give them a short --stop-timeout.
set -euo pipefail
export DOCKER_HOST=unix:///var/run/docker.sock
W=${CGWATCH_WORK:-/tmp/cgwatch-ci}

# Same checks as docker-up.sh: a live (non-zombie) dockerd with our data root, so a recycled PID
# or someone else's daemon is never signalled.
alive() { [ -n "$1" ] && [[ $(ps -o stat= -p "$1" 2>/dev/null) == [^Z]* ]]; }
ours() {
  alive "$1" && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = dockerd ] &&
    grep -qF -- "--data-root $W/docker " <<<"$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)"
}
rm_containers() {
  local ids
  ids=$(timeout 30 docker ps -aq 2>/dev/null) || return 0   # daemon not answering: nothing to do
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086  # one ID per word
    timeout 120 docker rm -f $ids >/dev/null || echo "docker-down: some containers could not be removed" >&2
  fi
}

pid=$(cat "$W/dockerd.pid" 2>/dev/null || true)
if ! ours "$pid"; then
  rm -f "$W/dockerd.pid"
  echo "docker-down: no dockerd started by docker-up.sh is running; nothing stopped"
  exit 0
fi

t0=$(date +%s%N)
[ "${CGWATCH_KEEP_CONTAINERS:-0}" = 1 ] || rm_containers
kill -TERM "$pid"
for _ in $(seq 1 300); do alive "$pid" || break; sleep 0.1; done   # up to 30 s
if alive "$pid"; then
  echo "docker-down: dockerd PID $pid still running 30 s after SIGTERM; log tail:" >&2
  tail -n 20 "$W/dockerd.log" >&2
  exit 1
fi
rm -f "$W/dockerd.pid"
for d in /sys/fs/cgroup/*/docker; do
  [ -d "$d" ] && { rmdir "$d" 2>/dev/null || echo "docker-down: $d not empty, left in place"; }
done
echo "docker-down: dockerd PID $pid stopped in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
