#!/usr/bin/env bash
# Start the suite's own dockerd (idempotent) and make sure the registry-free image local/busybox exists.
#   - installs docker.io + busybox-static when missing (there is no systemd here and policy-rc.d
#     refuses daemon auto-start, so the daemon is started by hand below); a Docker already on the
#     host (docker-ce conflicts with docker.io) is used as the binaries only;
#   - always a daemon of its own, beside any the host runs (tests/support/docker-env.sh): its own
#     socket, data root, exec root, pid file, config file, bridge and containerd namespace, and no
#     iptables rules, so it never touches the host's Docker; an earlier one of ours is reused;
#   - records the PID it started, so docker-down.sh stops that one and only that one.
# Work dir ${CGWATCH_WORK:-/tmp/cgwatch-ci}: docker.sock, dockerd.pid, dockerd.log, docker/ (data
# root), exec/ (exec root), docker.pid (dockerd's own), daemon.json.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
. "$(dirname "${BASH_SOURCE[0]}")/docker-env.sh"   # W, DOCKER_HOST, TAG, BRIDGE, ours, answers
IMAGE=local/busybox:latest
mkdir -p "$W"
exec 9>"$W/.lock" && flock 9   # two concurrent runs would start two daemons
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
t0=$(date +%s%N)

# 1. Packages. `apt-get update` only when apt does not know the packages yet (fresh machine).
need=()
command -v dockerd >/dev/null && command -v docker >/dev/null || need+=(docker.io)
for p in busybox-static iproute2; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "docker-up: installing ${need[*]}"
  apt-cache show "${need[@]}" >/dev/null 2>&1 || apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  echo "docker-up: packages installed in $(ms "$t0") ms"
fi

# The bridge. docker0 is the host dockerd's; ours is $BRIDGE on a 10.213.N.0/24 that no route
# uses (outside Docker's default address pools, 172.17-31.0.0/16 and 192.168.0.0/16). dockerd
# creates only docker0 itself ("bridge device with non default name ... must be created
# manually", libnetwork drivers/bridge) and takes the subnet from the bridge's address.
bridge_up() {
  if ip -4 -o addr show dev "$BRIDGE" 2>/dev/null | grep -q ' inet '; then return 0; fi   # an earlier run's
  ip link del "$BRIDGE" 2>/dev/null || true   # half made: no address
  local i n net
  for i in $(seq 0 255); do
    n=$(( (${TAG#cgw} + i) % 256 )) net=10.213.$n.0/24
    # Free: no route inside it, and none around it but the default one.
    if [ -z "$(ip -4 route show root "$net"; ip -4 route show match "$net" | grep -v '^default')" ]; then
      ip link add "$BRIDGE" type bridge
      ip addr add "10.213.$n.1/24" dev "$BRIDGE"
      ip link set "$BRIDGE" up
      echo "docker-up: bridge $BRIDGE on $net"
      return 0
    fi
  done
  echo "docker-up: no free /24 in 10.213.0.0/16 for the bridge $BRIDGE" >&2
  return 1
}

# 2. The daemon.
pid=$(cat "$W/dockerd.pid" 2>/dev/null || true)
if ours "$pid"; then
  if [[ " $(cmdline "$pid")" != *" --host $DOCKER_HOST "* ]]; then
    echo "docker-up: dockerd PID $pid on $W/docker does not listen on $DOCKER_HOST (an older" \
         "docker-up.sh started it on the host's socket): stop it with docker-down.sh first" >&2
    exit 1
  fi
  echo "docker-up: dockerd PID $pid (started by this script earlier) is running"
elif answers; then
  echo "docker-up: a daemon answers on $DOCKER_HOST but is not the dockerd recorded in" \
       "$W/dockerd.pid; not starting a second one on the same socket" >&2
  exit 1
else
  rm -f "$W/dockerd.pid"
  bridge_up
  [ -f "$W/daemon.json" ] || echo '{}' >"$W/daemon.json"
  t1=$(date +%s%N)
  # Beside the host's dockerd, nothing shared: --config-file (not /etc/docker/daemon.json, whose
  # settings would clash with these flags), --pidfile (not /var/run/docker.pid), --exec-root (not
  # /var/run/docker: netns, runc state, the managed containerd's socket), --iptables=false (at
  # start a dockerd deletes and rebuilds the DOCKER chains, the host daemon's port mappings with
  # them; published ports still work through docker-proxy), --ip-forward=false (no host sysctl
  # changed; nothing here routes out of a container).
  # setsid: the daemon outlives this script and is not hit by a Ctrl-C aimed at `make test`.
  # (No job control here, so setsid execs in place and $! is dockerd's own PID.)
  # 9>&-: the daemon must not inherit (and hold forever) the lock taken above.
  setsid dockerd --host "$DOCKER_HOST" --data-root "$W/docker" --exec-root "$W/exec" \
    --pidfile "$W/docker.pid" --config-file "$W/daemon.json" \
    --bridge "$BRIDGE" --iptables=false --ip-forward=false \
    --containerd-namespace "$TAG" --containerd-plugins-namespace "$TAG-plugins" \
    --exec-opt native.cgroupdriver=cgroupfs \
    </dev/null >"$W/dockerd.log" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$W/dockerd.pid"
  echo "docker-up: started dockerd PID $pid on $DOCKER_HOST (log $W/dockerd.log)"
fi

# 3. Wait until it answers: poll for up to 30 s, fail early if the process died.
deadline=$(( $(date +%s) + 30 ))
t1=${t1:-$(date +%s%N)}
until answers; do
  if ! alive "$pid"; then
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
