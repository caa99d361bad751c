#!/usr/bin/env bash
# Sets up a Debian 12 machine (as root) to build and test ringside, then builds it.
# Idempotent: packages already present are not reinstalled, wolfSSL is built once per
# set of options (cached in /opt/ringside-deps), and the build directory is reused.
#
#   tools/setup.sh [BUILD_DIR]      (default: build)
#   RINGSIDE_BUILDTYPE=debugoptimized RINGSIDE_MESON_ARGS="-Db_sanitize=address,undefined" tools/setup.sh build-asan
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-build}
export DEBIAN_FRONTEND=noninteractive

# The package list is shared with the tests (tools/packages.txt says how).
mapfile -t packages < <(sed -e 's/#.*//' "$here/tools/packages.txt" | awk 'NF { print $1 }')
[ ${#packages[@]} -gt 0 ] || { echo "setup: no packages read from tools/packages.txt" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
  echo "setup: run as root (apt-get and the wolfSSL build need it)" >&2
  exit 1
fi

# deb-src entries: the wolfSSL build starts from Debian's source package.
if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources
  elif [ -f /etc/apt/sources.list ]; then
    sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list >/etc/apt/sources.list.d/ringside-src.list
  fi
  need_update=1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ -n "${need_update:-}" ] || [ ${#missing[@]} -gt 0 ] || ! ls /var/lib/apt/lists/*Sources* >/dev/null 2>&1; then
  echo "setup: apt-get update" >&2
  apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  # Debian's nginx and haproxy packages try to start their services; tests start their own.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

wolfssl_prefix=$("$here/tools/build-wolfssl.sh")

cd "$here"
meson_args=(-Dwolfssl_prefix="$wolfssl_prefix" --buildtype="${RINGSIDE_BUILDTYPE:-release}")
# shellcheck disable=SC2206
meson_args+=(${RINGSIDE_MESON_ARGS:-})
if [ -f "$build_dir/build.ninja" ]; then
  meson configure "$build_dir" "${meson_args[@]}" >/dev/null
else
  meson setup "$build_dir" "${meson_args[@]}" >/dev/null
fi
echo "setup: building in $build_dir" >&2
ninja -C "$build_dir" -j"$(nproc)" >/dev/null || ninja -C "$build_dir" -j1
echo "setup: done ($build_dir)" >&2
