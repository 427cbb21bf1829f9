#!/usr/bin/env bash
# Stop the dockerd that docker-up.sh started (the PID it recorded, nothing else), then its bridge.
#   - removes the containers first: `sh` as PID 1 ignores SIGTERM, so dockerd's own shutdown would
#     wait 10 s per container before killing it;
#   - the host's own dockerd, if it has one, is another daemon on another socket: never touched;
#   - removes the empty /sys/fs/cgroup/<ctrl>/docker dirs the daemon leaves behind (the host's
#     dockerd, with the same cgroupfs parent, keeps its own: rmdir refuses a dir with children).
#   - CGWATCH_KEEP_CONTAINERS=1 stops the daemon with its containers in place (a restart test:
#     `--restart always` containers come back with the daemon); give them a short --stop-timeout.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/docker-env.sh"   # W, DOCKER_HOST, BRIDGE, ours, answers

rm_containers() {
  local ids
  ids=$(timeout 30 docker ps -aq 2>/dev/null) || return 0   # daemon not answering: nothing to do
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086  # one ID per word
    timeout 120 docker rm -f $ids >/dev/null || echo "docker-down: some containers could not be removed" >&2
  fi
}
# The bridge docker-up.sh made; only ours has its name, and no daemon of ours uses it any more.
bridge_down() { ip link del "$BRIDGE" 2>/dev/null || true; }

pid=$(cat "$W/dockerd.pid" 2>/dev/null || true)
if ! ours "$pid"; then
  rm -f "$W/dockerd.pid"
  answers || bridge_down   # left by a daemon that died
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
bridge_down
# A netns bind mount the daemon can leave in its exec root (exec/netns/default) keeps $W busy.
awk -v p="$W/exec/" 'index($2, p) == 1 {print $2}' /proc/mounts | while read -r m; do umount "$m" || true; done
for d in /sys/fs/cgroup/*/docker; do
  [ -d "$d" ] && { rmdir "$d" 2>/dev/null || echo "docker-down: $d not empty, left in place"; }
done
echo "docker-down: dockerd PID $pid stopped in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
