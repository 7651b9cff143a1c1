#!/bin/sh
# Installs the Debian 12 packages muser needs, only those missing, so that
# `make run` and `make check` work on a fresh machine (as root).
set -eu
pkgs="meson ninja-build pkg-config gcc clang libclang-rt-14-dev llvm libjson-c-dev libcmocka-dev pciutils valgrind strace"
[ "${MUSER_EXTRA_PKGS:-}" ] && pkgs="$pkgs $MUSER_EXTRA_PKGS"
missing=""
for p in $pkgs; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
