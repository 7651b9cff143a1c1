#!/bin/sh
# Install what the VM tests need (Debian 12). Idempotent: only calls apt-get
# when some package is missing, so it is near-instant on a prepared machine.
set -eu

PKGS="qemu-system-x86 busybox-static cpio kmod xz-utils zstd gzip gcc libc6-dev e2fsprogs"

missing=""
for p in $PKGS; do
    # dpkg -s exits 0 for removed-but-configured packages too; check Status.
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# The package lists may be empty on a fresh machine; update once before installing.
$SUDO apt-get update -qq
# --no-install-recommends keeps qemu from pulling in GUI/firmware extras.
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
