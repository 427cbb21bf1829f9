#!/usr/bin/env bash
# Make a Python base image for deploy/Dockerfile out of this host's own Python, with `docker import`:
# for hosts that cannot pull python:3.11-slim (no registry). Debian 12's python3.11 + python3.11-venv
# and busybox-static are enough:
#
#   deploy/local-base.sh [TAG]          # default TAG: cgwatch-local/python:3.11
#   docker build -f deploy/Dockerfile --build-arg BASE=cgwatch-local/python:3.11 -t cgwatch .
#
# The image holds the interpreter, its standard library (without its test suite), the shared
# libraries it and its extension modules link (found with ldd), ensurepip's wheels (so
# `python3 -m venv` brings pip), busybox as /bin/sh, and the host's CA bundle (PIP_CERT points
# pip at it, so a TLS-intercepting proxy the host trusts works in the build too).
# Environment: PYTHON (default /usr/bin/python3.11), BUSYBOX (default /bin/busybox).
set -euo pipefail
TAG=${1:-cgwatch-local/python:3.11}
PY=$(readlink -f "${PYTHON:-/usr/bin/python3.11}")
BUSYBOX=${BUSYBOX:-/bin/busybox}
CA=/etc/ssl/certs/ca-certificates.crt

for f in "$PY" "$BUSYBOX" "$CA"; do
  [ -e "$f" ] || { echo "local-base: $f is missing (apt-get install python3.11-venv busybox-static ca-certificates)" >&2; exit 1; }
done
"$PY" -c 'import ensurepip, venv' 2>/dev/null || { echo "local-base: $PY lacks ensurepip (apt-get install python3.11-venv)" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
stdlib=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
version=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# A merged-/usr layout, as Debian's: /bin, /lib, /lib64 are links into /usr.
mkdir -p "$root"/usr/{bin,lib,lib64} "$root"/etc/ssl/certs "$root"/tmp "$root"/root "$root"/usr/share
ln -s usr/bin "$root/bin"; ln -s usr/bin "$root/sbin"; ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
chmod 1777 "$root/tmp"

into_usr() { case "$1" in /usr/*) echo "$1" ;; *) echo "/usr$1" ;; esac; }

cp "$PY" "$root/usr/bin/python$version"
ln -s "python$version" "$root/usr/bin/python3"
ln -s python3 "$root/usr/bin/python"
mkdir -p "$root$(into_usr "$stdlib")"
tar -C "$stdlib" --exclude=./test --exclude=./idlelib --exclude=./tkinter --exclude=./turtledemo \
    --exclude='__pycache__' -cf - . | tar -C "$root$(into_usr "$stdlib")" -xf -
[ -d /usr/share/python-wheels ] && cp -a /usr/share/python-wheels "$root/usr/share/"

# Shared libraries: the interpreter's and every extension module's, dereferenced into /usr.
{ ldd "$PY"; for so in "$stdlib"/lib-dynload/*.so; do ldd "$so" 2>/dev/null || true; done; } |
  awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u |
  while read -r lib; do
    dest="$root$(into_usr "$lib")"
    mkdir -p "$(dirname "$dest")"
    [ -e "$dest" ] || cp -L "$lib" "$dest"
  done

# Wheels with Rust or C++ extensions link libraries python:3.11-slim has but CPython itself does
# not need: libgcc_s (bcrypt's), libstdc++, librt and libpthread (grpcio's cygrpc, protobuf's _upb;
# seen with ldd). Take them from the directory of the interpreter's libc.
libdir=$(dirname "$(ldd "$PY" | awk '$1 == "libc.so.6" {print $3}')")
for lib in libgcc_s.so.1 libstdc++.so.6 librt.so.1 libpthread.so.0 libdl.so.2; do
  [ -e "$libdir/$lib" ] && cp -L "$libdir/$lib" "$root$(into_usr "$libdir")/"
done

cp "$BUSYBOX" "$root/usr/bin/busybox"
for tool in sh ls cat env; do ln -s busybox "$root/usr/bin/$tool"; done
cp "$CA" "$root$CA"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

tar -C "$root" -cf - . | docker import \
  --change "ENV PATH=/usr/local/bin:/usr/bin:/bin" \
  --change "ENV LANG=C.UTF-8" \
  --change "ENV SSL_CERT_FILE=$CA" \
  --change "ENV PIP_CERT=$CA" \
  --change 'CMD ["python3"]' \
  --message "Python $version from $(hostname) for cgwatch (deploy/local-base.sh)" \
  - "$TAG" >/dev/null
docker run --rm "$TAG" python3 -c 'import ssl, venv, ensurepip, sqlite3, ctypes, zlib' ||
  { echo "local-base: $TAG does not run Python" >&2; exit 1; }
echo "$TAG"
