#!/usr/bin/env bash
# Run one command inside a throwaway cgroup v2 guest (QEMU, TCG) and exit with its status.
#
#   tests/vm/guest.sh [--] CMD [ARGS...]
#
# Why a VM: this project's hosts are cgroup v1 hybrids, and cgroup v2 (one tree, controllers enabled
# through cgroup.subtree_control) cannot be mounted next to controllers that v1 already holds. The
# guest boots a stock Debian kernel with nothing on v1, so every controller lands on the v2 tree.
#
# What CMD sees (in the guest):
#   - the HOST's root filesystem, read-only over virtio-9p, via chroot: the host's bash, python and
#     the repo's .venv work unchanged; the cwd is the repo root (same path as on the host). The repo
#     is read-only: run pytest with `-p no:cacheprovider` (PYTHONDONTWRITEBYTECODE=1 is set).
#   - cgroup2 at /sys/fs/cgroup (nsdelegate,memory_recursiveprot); the root's cgroup.subtree_control
#     is "+cpu +cpuset +memory +pids +io" before CMD starts.
#   - tmpfs on /tmp, /run and /dev/shm; proc, sysfs, devtmpfs, devpts; loopback up, no other
#     network (no NIC); the veth and overlay modules are loaded (container-like netns / rootfs).
#   - $CGWATCH_VM_SHARE: a directory shared read-write with the host (see CGWATCH_VM_SHARE_DIR).
#   - $CGWATCH_VM_DISK=/dev/vda: a 64 MiB scratch virtio disk (io.max / io.stat tests may wipe it).
#   - environment: only HOME=/root TMPDIR=/tmp TERM=dumb LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1, a
#     standard PATH, CI (if set on the host), every CGWATCH_* variable of the host, then
#     CGWATCH_KERNEL=v2-guest, CGWATCH_VM_SHARE, CGWATCH_VM_DISK. stdin is /dev/null.
#   - 2 vCPUs, 1536 MiB RAM, no swap. Everything runs 20-50x slower than on the host (TCG): Python
#     takes ~0.8 s to start, a fork+exec ~0.1 s; give timeouts room.
#
# Output: CMD's stdout and stderr (one stream, in order, through a second serial port) go to this
# script's stdout while it runs. This script's own messages go to stderr, prefixed "guest.sh:".
# The guest kernel's console log is kept apart and printed (tail) only when the guest fails.
#
# Exit status: CMD's exit status; 255 when the guest never reported one (guest setup failed, kernel
# crash, or CGWATCH_VM_BOOT_TIMEOUT / CGWATCH_VM_TIMEOUT expired; the message says which), or this script could not prepare
# the VM (package install / kernel download failed). 2: usage error. A CMD that itself exits 255
# cannot be told apart from a harness failure, except by the "guest.sh:" message on stderr.
#
# Environment (host side):
#   CGWATCH_VM_TIMEOUT    seconds CMD may run, counted from its start in the guest (default 900)
#   CGWATCH_VM_BOOT_TIMEOUT seconds from QEMU's start to CMD's start (default 300; a boot takes ~3 s,
#                         but a loaded host can stall an emulated guest for tens of seconds)
#   CGWATCH_VM_CACHE      cache dir for the kernel, vmlinux and initramfs (default /var/tmp/cgwatch-vm);
#                         per-run work dirs are created inside it and removed afterwards
#   CGWATCH_VM_SHARE_DIR  host dir to share read-write as $CGWATCH_VM_SHARE (default: a fresh dir
#                         in the run dir, deleted afterwards)
#   CGWATCH_VM_KERNEL_PKG Debian kernel package to boot (default: what linux-image-amd64 depends
#                         on, resolved once and remembered in the cache)
#   CGWATCH_VM_APPEND     extra kernel command line arguments
#   CGWATCH_VM_CPU        QEMU -cpu model (default Nehalem, see below)
#   CGWATCH_VM_KEEP=1     keep the run dir (console.log, run.sh) for debugging
#   CGWATCH_VM_QUIET=1    no timing summary line on stderr
#
# Needs: root to install missing Debian packages (qemu-system-x86, busybox-static); apt for the
# kernel .deb. First run downloads ~70 MB and takes ~15 s to prepare; later runs start at once.
set -euo pipefail

say() { echo "guest.sh: $*" >&2; }
die() { say "$*"; exit 255; }

if [ "${1:-}" = "--" ]; then shift; fi
if [ $# -eq 0 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
CACHE=${CGWATCH_VM_CACHE:-/var/tmp/cgwatch-vm}
TIMEOUT=${CGWATCH_VM_TIMEOUT:-900}
BOOT_TIMEOUT=${CGWATCH_VM_BOOT_TIMEOUT:-300}
for v in TIMEOUT BOOT_TIMEOUT; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] || { say "CGWATCH_VM_$v must be a whole number of seconds > 0, not '${!v}'"; exit 2; }
done
MEM_MIB=1536
CPUS=2
DISK_MIB=64
# Where the guest mounts the per-run control dir (run.sh, rc) and the result share.
G_CTL=/run/cgwatch-vm
G_SHARE=$G_CTL/share
T0=$EPOCHREALTIME

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd -P)

# ---------------------------------------------------------------------------------------------
# 1. Debian packages. Only apt when something is missing; `apt-get update` only when apt cannot
#    find a package (fresh machine with empty lists) or a download 404s (stale lists).
# ---------------------------------------------------------------------------------------------
apt_updated=0
apt_update() {
  [ $apt_updated = 1 ] && return 0
  say "apt-get update"
  apt-get update -qq >&2 || die "apt-get update failed"
  apt_updated=1
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
installed qemu-system-x86 || missing+=(qemu-system-x86)
# Static busybox is PID 1 of the initramfs (sh, mount, insmod, chroot); a dynamic one would need libc.
installed busybox-static || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "need root to install: ${missing[*]}"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_update
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
fi
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing after installing busybox-static"

# Everything below that writes to the cache runs under one lock, so parallel runs prepare it once.
exec 9>"$CACHE/.lock"
flock 9

# ---------------------------------------------------------------------------------------------
# 2. The guest kernel: a stock Debian kernel package, downloaded (never installed) and cached.
#    From the .deb we keep the kernel image and the handful of modules the initramfs needs.
# ---------------------------------------------------------------------------------------------
KPKG=${CGWATCH_VM_KERNEL_PKG:-}
if [ -z "$KPKG" ] && [ -s "$CACHE/kernel.pkg" ]; then KPKG=$(cat "$CACHE/kernel.pkg"); fi
if [ -z "$KPKG" ]; then
  resolve_kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
  KPKG=$(resolve_kpkg)
  if [ -z "$KPKG" ]; then apt_update; KPKG=$(resolve_kpkg); fi
  [ -n "$KPKG" ] || die "cannot resolve the kernel package linux-image-amd64 depends on"
  echo "$KPKG" > "$CACHE/kernel.pkg"
fi
KDIR=$CACHE/kernel/$KPKG

# Modules for the initramfs (their dependencies are added automatically):
#   virtio_pci    - the PCI transport every virtio device below hangs off
#   9pnet_virtio  - 9p over virtio: the host root and the shared dirs
#   9p            - the 9p filesystem itself
#   virtio_blk    - the scratch disk /dev/vda
#   veth          - virtual ethernet pairs, to give container-like network namespaces an eth0
#   overlay       - overlayfs, for tests that build container-like root filesystems
GUEST_MODULES="virtio_pci 9pnet_virtio 9p virtio_blk veth overlay"

if [ ! -f "$KDIR/ready" ] || [ "$(cat "$KDIR/ready")" != "$GUEST_MODULES" ]; then
  say "preparing kernel $KPKG in $KDIR (one-time)"
  tmp=$(mktemp -d "$CACHE/kernel.tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  ( cd "$tmp" && apt-get download "$KPKG" >/dev/null 2>"$tmp/apt.err" ) || {
    apt_update
    ( cd "$tmp" && apt-get download "$KPKG" >/dev/null 2>"$tmp/apt.err" ) \
      || { cat "$tmp/apt.err" >&2; die "apt-get download $KPKG failed"; }
  }
  # The module load order comes from the "depends=" field of each .ko's .modinfo section (the .deb
  # ships no modules.dep; depmod/modprobe are not needed at all). Modules built into the kernel
  # (modules.builtin) are skipped.
  # vmlinuz is a bzImage with an xz payload; we also store the uncompressed ELF vmlinux: QEMU boots
  # it through the PVH entry point, which skips the real-mode setup and the in-guest decompression
  # of ~30 MB (several seconds under TCG emulation).
  python3 - "$tmp"/*.deb "$tmp/out" $GUEST_MODULES <<'PY' || die "could not unpack the kernel package"
import lzma, os, subprocess, sys, tarfile, zlib

deb, out, WANT = sys.argv[1], sys.argv[2], sys.argv[3:]

def members():
    p = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=p.stdout, mode="r|") as tf:
        for m in tf:
            if m.isfile():
                yield m, tf.extractfile(m).read()
    if p.wait() != 0:
        sys.exit("dpkg-deb failed")

def modname(path):
    base = path.rsplit("/", 1)[1]
    return base.split(".ko")[0].replace("-", "_")

def ko_bytes(path, data):
    return lzma.decompress(data) if path.endswith(".ko.xz") else data

os.makedirs(out + "/mods")
deps, builtin, kernel = {}, set(), None
for m, data in members():                       # pass 1: dependency graph + kernel image
    if "/kernel/" in m.name and ".ko" in m.name:
        if m.name.endswith(".ko.zst"):
            continue                            # not needed so far; stdlib has no zstd
        data = ko_bytes(m.name, data)
        i = data.find(b"\0depends=")
        d = data[i + 9:data.index(b"\0", i + 9)].decode() if i >= 0 else ""
        deps[modname(m.name)] = (m.name, [x.replace("-", "_") for x in d.split(",") if x])
    elif m.name.endswith("/modules.builtin"):
        builtin = {modname(l.strip()) for l in data.decode().splitlines() if l.strip()}
    elif "/boot/vmlinuz-" in m.name:
        kernel = data

order = []
def visit(name, stack=()):
    if name in order or name in builtin:
        return
    if name not in deps:
        sys.exit(f"module {name} not in the package (needed by {'/'.join(stack) or 'the guest'})")
    for d in deps[name][1]:
        visit(d, stack + (name,))
    order.append(name)
for w in WANT:
    visit(w)

paths = {deps[n][0]: i for i, n in enumerate(order)}
for m, data in members():                       # pass 2: copy the modules, numbered in load order
    if m.name in paths:
        i = paths[m.name]
        with open(f"{out}/mods/{i + 1:02d}-{order[i]}.ko", "wb") as f:
            f.write(ko_bytes(m.name, data))

if kernel is None:
    sys.exit("no /boot/vmlinuz in the package")
with open(out + "/vmlinuz", "wb") as f:
    f.write(kernel)
# Uncompressed ELF for PVH boot. Fall back to the bzImage if the payload is not xz/gzip.
for magic, dec in ((b"\xfd7zXZ\x00", lambda b: lzma.LZMADecompressor().decompress(b)),
                   (b"\x1f\x8b\x08\x00", lambda b: zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(b))):
    i = kernel.find(magic)
    if i >= 0:
        elf = dec(kernel[i:])
        if elf[:4] == b"\x7fELF":
            with open(out + "/vmlinux", "wb") as f:
                f.write(elf)
            break
print("guest.sh: guest modules, in load order:", " ".join(order), file=sys.stderr)
PY
  rm -f "$tmp"/*.deb
  rm -rf "$KDIR"; mkdir -p "$(dirname "$KDIR")"
  mv "$tmp/out" "$KDIR"
  echo "$GUEST_MODULES" > "$KDIR/ready"
  rm -rf "$tmp"; trap - EXIT
fi
KERNEL_IMG=$KDIR/vmlinux
[ -f "$KERNEL_IMG" ] || KERNEL_IMG=$KDIR/vmlinuz   # no PVH: slower, but boots

# ---------------------------------------------------------------------------------------------
# 3. The initramfs: static busybox, the modules, and /init (below). /init mounts the host root over
#    9p, builds the writable pieces on top, mounts cgroup2, and runs the command by chroot into the
#    host root. It is cached by content; per-run settings come from the control share, not from it.
# ---------------------------------------------------------------------------------------------
IFS= read -r -d '' INIT <<'INIT_EOF' || true
#!/bin/busybox sh
# PID 1 of the cgwatch test guest (generated by tests/vm/guest.sh). Its output goes to the kernel
# console (ttyS0 -> console.log on the host); the command's output goes to ttyS1 (-> host stdout).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "GUEST: init starts at uptime $(cut -d' ' -f1 /proc/uptime)s"
# Any setup failure powers off without writing rc: the host then reports 255 with this log's tail.
fail() { echo "GUEST SETUP FAILED: $*"; poweroff -f; sleep 5; reboot -f; }
up() { cut -d' ' -f1 /proc/uptime; }

# Load order matters: each module after the ones it depends on (numbered by guest.sh).
for m in /mods/*.ko; do insmod "$m" || fail "insmod $m"; done

R=/newroot
# Host root, read-only. cache=loose caches dentries/attributes in the guest: the host tree does not
# change under a test run, and it makes Python imports over 9p several times faster.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot $R || fail "9p host root"
# Writable pieces over the read-only root (mounting on a directory of a ro fs is allowed).
mount -t tmpfs -o mode=1777 tmpfs $R/tmp || fail "tmpfs /tmp"
mount -t tmpfs -o mode=755 tmpfs $R/run || fail "tmpfs /run"
mount -t proc proc $R/proc || fail "proc"
mount -t sysfs sysfs $R/sys || fail "sysfs"
mount -t devtmpfs devtmpfs $R/dev || fail "devtmpfs"
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts || fail "devpts"
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm || fail "tmpfs /dev/shm"   # multiprocessing needs it
# Control share (run.sh, rc) and result share: no caching, the host must see writes at once.
mkdir -p $R/run/cgwatch-vm
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ctl $R/run/cgwatch-vm || fail "9p ctl"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share $R/run/cgwatch-vm/share || fail "9p share"
# The repository, read-only, at its host path: it may live under /tmp or /run, which the tmpfs
# mounts above hide (CI clones anywhere), so it comes through a share of its own.
P=$(cat $R/run/cgwatch-vm/repo_path) || fail "no repo_path"
mkdir -p "$R$P" 2>/dev/null
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose repo "$R$P" || fail "9p repo at $P"

# cgroup v2 as the project expects it on a systemd host: nsdelegate (delegation boundaries at
# cgroup namespaces) and memory_recursiveprot (memory.min/low protection applies to the subtree).
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 $R/sys/fs/cgroup || fail "cgroup2"
echo "+cpu +cpuset +memory +pids +io" > $R/sys/fs/cgroup/cgroup.subtree_control \
  || fail "enable controllers (available: $(cat $R/sys/fs/cgroup/cgroup.controllers))"
# Loopback: tests bind servers on 127.0.0.1.
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up || fail "loopback"
hostname cgwatch-guest

# ttyS1 carries the command's output to the host's stdout. raw: no "\n" -> "\r\n" translation.
stty -F /dev/ttyS1 raw -echo 2>/dev/null || echo "stty ttyS1 failed (output gets CRLF)"
echo "GUEST: command starts at uptime $(up)s"
chroot $R /usr/bin/env -i HOME=/root TMPDIR=/tmp TERM=dumb LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/bash /run/cgwatch-vm/run.sh </dev/null >/dev/ttyS1 2>&1
rc=$?
echo "GUEST: command exited $rc at uptime $(up)s"
echo $rc > $R/run/cgwatch-vm/rc.tmp && mv $R/run/cgwatch-vm/rc.tmp $R/run/cgwatch-vm/rc
sync
umount $R/run/cgwatch-vm/share $R/run/cgwatch-vm 2>/dev/null
# -no-reboot on the host turns either into a QEMU exit.
poweroff -f; sleep 5; reboot -f
INIT_EOF

INITRD_KEY=$( { echo "$INIT"; ls "$KDIR/mods"; sha256sum "$BUSYBOX"; } | sha256sum | cut -c1-16)
INITRD=$CACHE/initramfs-$KPKG-$INITRD_KEY.cpio
if [ ! -f "$INITRD" ]; then
  say "building $INITRD"
  rm -f "$CACHE/initramfs-$KPKG-"*.cpio     # older builds (other init script or module list)
  ird=$(mktemp -d "$CACHE/initramfs.tmp.XXXXXX")
  mkdir -p "$ird"/{bin,proc,sys,dev,newroot,mods}
  cp "$BUSYBOX" "$ird/bin/busybox"
  cp "$KDIR"/mods/*.ko "$ird/mods/"
  printf '%s\n' "$INIT" > "$ird/init"
  chmod 755 "$ird/init"
  # Uncompressed: the kernel would otherwise spend emulated time inflating it.
  ( cd "$ird" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null ) > "$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  rm -rf "$ird"
fi
flock -u 9

# ---------------------------------------------------------------------------------------------
# 4. This run: a work dir with the control share (the command as a script, rc), the result share,
#    and the scratch disk.
# ---------------------------------------------------------------------------------------------
RUN=$(mktemp -d "$CACHE/run.XXXXXX")
QPID=
cleanup() {
  if [ -n "$QPID" ]; then kill "$QPID" 2>/dev/null || true; wait "$QPID" 2>/dev/null || true; fi
  if [ "${CGWATCH_VM_KEEP:-0}" = 1 ]; then say "kept $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 255' INT TERM HUP

mkdir -p "$RUN/ctl/share"
SHARE=${CGWATCH_VM_SHARE_DIR:-$RUN/share}
mkdir -p "$SHARE"
SHARE=$(cd "$SHARE" && pwd -P)
{
  echo "# generated by tests/vm/guest.sh; runs in the guest (chroot into the host root)"
  while IFS= read -r name; do
    printf 'export %s=%q\n' "$name" "${!name}"
  done < <(compgen -e | grep -E '^CGWATCH_[A-Za-z0-9_]*$' | sort)
  if [ -n "${CI+set}" ]; then printf 'export CI=%q\n' "$CI"; fi
  echo "export CGWATCH_KERNEL=v2-guest"
  echo "export CGWATCH_VM_SHARE=$G_SHARE"
  echo "if [ -b /dev/vda ]; then export CGWATCH_VM_DISK=/dev/vda; else unset CGWATCH_VM_DISK; fi"
  printf 'cd %q || exit 255\n' "$REPO"
  printf 'exec'; printf ' %q' "$@"; echo
} > "$RUN/ctl/run.sh"
printf '%s\n' "$REPO" > "$RUN/ctl/repo_path"
truncate -s ${DISK_MIB}M "$RUN/disk.img"

# ---------------------------------------------------------------------------------------------
# 5. Boot. TCG (software emulation): KVM is not available on the CI hosts. qboot is a minimal
#    firmware that jumps straight to the kernel (SeaBIOS costs seconds under TCG); -nodefaults drops
#    the VGA card, NIC and other devices the kernel would otherwise probe.
# ---------------------------------------------------------------------------------------------
# CPU model: with "max" (every feature TCG can emulate) importing the agent's Python deps took 2x as
# long as with older models (measured: 14 s vs 6.5 s); Nehalem (x86-64-v2) was among the fastest.
QCPU=${CGWATCH_VM_CPU:-Nehalem}
FW=()
[ -f /usr/share/qemu/qboot.rom ] && FW=(-bios /usr/share/qemu/qboot.rom)
# Kernel command line: console on ttyS0 (-> console.log), quiet boot (printing to a UART is slow),
# panic -> reboot -> QEMU exits (-no-reboot) instead of hanging until the timeout, no controller
# ever bound to v1, and no CPU vulnerability mitigations (pointless in a throwaway guest, and
# costly to emulate).
APPEND="console=ttyS0 quiet panic=-1 cgroup_no_v1=all mitigations=off ${CGWATCH_VM_APPEND:-}"
q() { printf '%s' "${1//,/,,}"; }   # QEMU option values: a literal comma is written ",,"
BOOT0=$EPOCHREALTIME
qemu-system-x86_64 \
  -nodefaults -no-user-config -display none -no-reboot \
  -accel tcg,thread=multi -cpu "$QCPU" -smp "$CPUS" -m "$MEM_MIB" \
  "${FW[@]}" -kernel "$KERNEL_IMG" -initrd "$INITRD" -append "$APPEND" \
  -serial "file:$RUN/console.log" -serial stdio \
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
  -virtfs "local,path=$(q "$RUN/ctl"),mount_tag=ctl,security_model=none,multidevs=remap" \
  -virtfs "local,path=$(q "$REPO"),mount_tag=repo,security_model=none,readonly=on,multidevs=remap" \
  -virtfs "local,path=$(q "$SHARE"),mount_tag=share,security_model=none,multidevs=remap" \
  -drive "file=$(q "$RUN/disk.img"),if=virtio,format=raw,cache=unsafe" \
  </dev/null &
QPID=$!
# Two deadlines: the boot's (until /init says the command starts) and the command's own, so a slow
# boot neither eats the command's time nor hides a hung command. SIGTERM, then SIGKILL after 10 s.
now_us() { echo "${EPOCHREALTIME/./}"; }
stage=boot
deadline=$(( $(now_us) + BOOT_TIMEOUT * 1000000 ))
killed=
while kill -0 "$QPID" 2>/dev/null; do
  if [ $stage = boot ] && grep -q '^GUEST: command starts' "$RUN/console.log" 2>/dev/null; then
    stage=command
    deadline=$(( $(now_us) + TIMEOUT * 1000000 ))
  fi
  if [ "$(now_us)" -ge "$deadline" ]; then
    killed=$stage
    kill -TERM "$QPID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$QPID" 2>/dev/null || true
    break
  fi
  sleep 0.2
done
set +e
wait "$QPID"
qrc=$?
set -e
QPID=
END=$EPOCHREALTIME

if [ -s "$RUN/ctl/rc" ]; then
  rc=$(cat "$RUN/ctl/rc")
  if [ "${CGWATCH_VM_QUIET:-0}" != 1 ]; then
    start=$(sed -n 's/^GUEST: command starts at uptime \([0-9.]*\)s.*/\1/p' "$RUN/console.log" | head -1)
    say "$(awk -v rc="$rc" -v s="${start:-?}" -v t0="$T0" -v b0="$BOOT0" -v e="$END" \
      'BEGIN { printf "exit %s; guest uptime at command start %ss, total %.1fs (of which preparing %.1fs)", rc, s, e - t0, b0 - t0 }')"
  fi
  exit "$rc"
fi
if [ "$killed" = command ]; then
  say "the command did not finish within CGWATCH_VM_TIMEOUT=${TIMEOUT}s of its start (QEMU killed)"
elif [ "$killed" = boot ]; then
  say "the guest did not start the command within CGWATCH_VM_BOOT_TIMEOUT=${BOOT_TIMEOUT}s (QEMU killed)"
else
  say "the guest never reported an exit status (QEMU exit $qrc: guest setup failure or kernel crash)"
fi
say "last lines of the guest kernel console:"
tail -n 40 "$RUN/console.log" 2>/dev/null | sed 's/\r$//; s/^/  | /' >&2
exit 255
