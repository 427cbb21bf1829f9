# Sourced by docker-up.sh, docker-down.sh and tests/run.sh: where the suite's own dockerd lives.
#
# The suite never uses the machine's Docker (/var/run/docker.sock, /var/lib/docker, docker0, its
# iptables chains), so `make test` also runs on a host that already has one. Everything of ours is
# under the work dir ${CGWATCH_WORK:-/tmp/cgwatch-ci}; tests/support/docker.py derives the same
# socket for the test process.
W=${CGWATCH_WORK:-/tmp/cgwatch-ci}
export DOCKER_HOST=unix://$W/docker.sock

# One number per work dir names what cannot live under it: the bridge (IFNAMSIZ: 15 characters at
# most) and the containerd namespace (a dockerd shares the host's containerd when
# /run/containerd/containerd.sock exists; the host's dockerd uses namespace "moby" there).
TAG=cgw$(printf '%s' "$W" | cksum | cut -d' ' -f1)
BRIDGE=$TAG

# Is PID $1 a live (non-zombie) dockerd on our data root? A recycled PID or someone else's daemon
# is never signalled.
alive() { [ -n "$1" ] && [[ $(ps -o stat= -p "$1" 2>/dev/null) == [^Z]* ]]; }
cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }
ours() {
  alive "$1" && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = dockerd ] &&
    [[ " $(cmdline "$1")" == *" --data-root $W/docker "* ]]
}
answers() { timeout 5 docker info >/dev/null 2>&1; }
