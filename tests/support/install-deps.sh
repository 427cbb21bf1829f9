#!/usr/bin/env bash
# Install the Debian packages the test suite drives for real. Idempotent; apt runs only when
# something is missing.
#   docker.io       dockerd 20.10 (the suite's own daemon, started by tests/support/docker-up.sh);
#                   not when dockerd and docker are already installed (docker-ce conflicts with it)
#   busybox-static  the root filesystem of the locally built test image (no registry here)
#   iproute2        `ip`: the bridge of the suite's dockerd (docker0 is left to the host's)
#   prometheus      promtool (exposition lint) and the server the dashboards are checked against
#   qemu-system-x86 the cgroup v2 guest (tests/vm)
#   docker-compose  validates docker-compose.yml (`docker-compose config`)
#   python3.11-venv deploy/local-base.sh builds a registry-free base image from the host's Python
#   systemd         systemd-analyze verify of deploy/cgwatch.service (installed, not run as init)
#   chromium        the web page, tested as a person would use it (headless)
#   tmux            `cgwatch top` driven in a real terminal
#   openssl curl    test certificates and real TLS clients (tests/real/test_transport.py)
#   podman          a real Podman and its API service (tests/real/test_podman.py)
#   containerd      a standalone containerd and `ctr` (tests/real/test_containerd.py); docker.io brings it
#   lxc             a real LXC container (tests/real/test_lxc.py)
#   prometheus-node-exporter  the host metrics dockprom's rules and dashboard divide by (tests/real/test_thirdparty.py)
set -euo pipefail
PKGS=(docker.io busybox-static iproute2 prometheus qemu-system-x86 docker-compose python3.11-venv systemd chromium
      tmux openssl curl podman containerd lxc prometheus-node-exporter)
missing=()
for p in "${PKGS[@]}"; do
  [ "$p" = docker.io ] && command -v dockerd >/dev/null && command -v docker >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d on hosts without systemd refuses to start the daemons: they are started by hand.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
