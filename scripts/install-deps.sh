#!/bin/sh
# Installs the Debian 12 packages muser needs, only those missing, so that
# `make run` and `make check` work on a fresh machine (as root). The guest
# tests' own list (QEMU, busybox, ...) lives in tests/vm/install-deps.sh.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
pkgs="meson ninja-build pkg-config gcc clang libclang-rt-14-dev llvm libjson-c-dev libcmocka-dev libseccomp-dev pciutils valgrind strace"
missing=""
for p in $pkgs; do
	# dpkg -s succeeds for removed-but-configured packages: check Status.
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "install-deps: installing$missing"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
exec "$here/../tests/vm/install-deps.sh"
