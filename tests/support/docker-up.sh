#!/usr/bin/env bash
# Start a dockerd for the tests (idempotent) and make sure the registry-free image local/busybox exists.
#   - installs docker.io + busybox-static when missing (there is no systemd here and policy-rc.d
#     refuses daemon auto-start, so the daemon is started by hand below);
#   - reuses a dockerd already answering on /var/run/docker.sock;
#   - otherwise starts one and records its PID, so docker-down.sh stops that one and only that one.
# Work dir ${CGWATCH_WORK:-/tmp/cgwatch-ci}: dockerd.pid, dockerd.log, docker/ (data root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# Pin the CLI to the socket we start/check, whatever docker context or DOCKER_HOST the caller has.
export DOCKER_HOST=unix:///var/run/docker.sock
W=${CGWATCH_WORK:-/tmp/cgwatch-ci}
IMAGE=local/busybox:latest
mkdir -p "$W"
exec 9>"$W/.lock" && flock 9   # two concurrent runs would start two daemons
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
t0=$(date +%s%N)

# 1. Packages. `apt-get update` only when apt does not know the packages yet (fresh machine).
need=()
for p in docker.io busybox-static; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "docker-up: installing ${need[*]}"
  apt-cache show "${need[@]}" >/dev/null 2>&1 || apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  echo "docker-up: packages installed in $(ms "$t0") ms"
fi

# Is the PID in the pid file a dockerd that this script started (right data root, not a zombie)?
alive() { [ -n "$1" ] && [[ $(ps -o stat= -p "$1" 2>/dev/null) == [^Z]* ]]; }
ours() {
  alive "$1" && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = dockerd ] &&
    grep -qF -- "--data-root $W/docker " <<<"$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)"
}
answers() { timeout 5 docker info >/dev/null 2>&1; }

# 2. The daemon.
pid=$(cat "$W/dockerd.pid" 2>/dev/null || true)
if ours "$pid"; then
  echo "docker-up: dockerd PID $pid (started by this script earlier) is running"
elif answers; then
  pid=; rm -f "$W/dockerd.pid"   # stale; docker-down.sh must not stop a daemon it did not start
  echo "docker-up: reusing the dockerd already answering on /var/run/docker.sock (not started here;" \
       "docker-down.sh will leave it running)"
else
  rm -f "$W/dockerd.pid"
  t1=$(date +%s%N)
  # setsid: the daemon outlives this script and is not hit by a Ctrl-C aimed at `make test`.
  # (No job control here, so setsid execs in place and $! is dockerd's own PID.)
  # 9>&-: the daemon must not inherit (and hold forever) the lock taken above.
  setsid dockerd --data-root "$W/docker" --exec-opt native.cgroupdriver=cgroupfs \
    </dev/null >"$W/dockerd.log" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$W/dockerd.pid"
  echo "docker-up: started dockerd PID $pid (log $W/dockerd.log)"
fi

# 3. Wait until it answers: poll for up to 30 s, fail early if the process died.
deadline=$(( $(date +%s) + 30 ))
t1=${t1:-$(date +%s%N)}
until answers; do
  if [ -n "$pid" ] && ! alive "$pid"; then
    echo "docker-up: dockerd PID $pid exited; log tail:" >&2; tail -n 40 "$W/dockerd.log" >&2; exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "docker-up: dockerd did not answer within 30 s; log tail:" >&2
    tail -n 40 "$W/dockerd.log" >&2 2>/dev/null || true; exit 1
  fi
  sleep 0.1
done
echo "docker-up: dockerd $(docker version -f '{{.Server.Version}}') answers (after $(ms "$t1") ms)"

# 4. The test image, built from busybox-static: no registry is reachable in CI.
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  t2=$(date +%s%N)
  R=$(mktemp -d "$W/rootfs.XXXXXX")
  trap 'rm -rf "$R"' EXIT
  mkdir -p "$R"/{bin,tmp,proc,sys,dev,etc}
  cp /bin/busybox "$R/bin/busybox"   # the static build: the image has no libc
  for a in $("$R/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$R/bin/$a"; done
  tar -C "$R" -c . | docker import -c 'CMD ["sh"]' - "$IMAGE" >/dev/null
  docker run --rm "$IMAGE" true   # smoke test: the image runs
  echo "docker-up: built $IMAGE in $(ms "$t2") ms"
else
  echo "docker-up: image $IMAGE present"
fi
echo "docker-up: ready in $(ms "$t0") ms"
