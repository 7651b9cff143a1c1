#!/bin/bash
# QEMU >= 10.1 with its native vfio-user client (`-device vfio-user-pci`),
# taken from Debian testing ("forky") and kept in a chroot, so that Debian
# 12 (QEMU 7.2, no vfio-user) can run muser servers under QEMU's own client.
#
#   tests/vm/qemu-native.sh --setup     make the chroot if missing (once per
#                                       machine), check it, print the version
#   tests/vm/qemu-native.sh --root      print the chroot's path
#   tests/vm/qemu-native.sh QEMU_ARGS... run the chroot's qemu-system-x86_64
#
# The last form is a drop-in QEMU binary (QEMU=tests/vm/qemu-native.sh for
# tests/vm/run-guest.sh). It runs QEMU in a private mount namespace
# (nothing it mounts is seen outside or outlives it) in which /dev,
# /dev/shm, /tmp and a fresh /proc are mounted into the chroot, plus the
# directory of every argument that is an absolute path to an existing file
# (e.g. -kernel /x/vmlinuz binds /x) and the directories listed in
# MUSER_QEMU_BIND (colon separated). So sockets and RAM files belong in
# /tmp or /dev/shm, and paths given to QEMU must be absolute. The same
# process becomes QEMU (exec all the way), so a signal sent to this script
# reaches QEMU. LD_PRELOAD and LD_LIBRARY_PATH are dropped: the host's shim
# must never reach this QEMU.
#
# The chroot: MUSER_QEMU_ROOT (default /var/cache/muser/qemu-forky),
# outside any build dir, so `make clean` keeps it. It is built in ROOT.tmp
# with debootstrap (minbase) + apt-get install qemu-system-x86, checked
# (vfio-user-pci present, version >= 10.1), marked complete and renamed to
# ROOT: a ROOT that exists is complete. ROOT.lock (flock) serialises
# concurrent builders; a half-built ROOT.tmp of a killed run is removed.
# About a minute and 600 MB, once. MUSER_DEBIAN_MIRROR (default
# http://deb.debian.org/debian), MUSER_QEMU_SUITE (default forky).
# Remove ROOT to rebuild (e.g. for a newer QEMU).
#
# Exit status of --setup: 0 ready, 77 the chroot can't be made here (not
# root, or the Debian mirror is unreachable), 1 anything else (see the
# message; the build log is ROOT.log).
set -euo pipefail

root=${MUSER_QEMU_ROOT:-/var/cache/muser/qemu-forky}
mirror=${MUSER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${MUSER_QEMU_SUITE:-forky}
# The chroot's QEMU must be at least this (first release with vfio-user-pci).
min_major=10 min_minor=1
marker=.muser-qemu-native-complete

say() { printf 'qemu-native: %s\n' "$*" >&2; }

# 0 if the chroot's QEMU is usable: prints its version line.
check_root() { # DIR
    local dir=$1 ver maj min
    ver=$(chroot "$dir" qemu-system-x86_64 --version 2>&1 | head -n1) || {
        say "$dir: qemu-system-x86_64 --version failed: $ver"
        return 1
    }
    if [[ ! $ver =~ version\ ([0-9]+)\.([0-9]+) ]]; then
        say "$dir: can't parse the version of qemu-system-x86_64: $ver"
        return 1
    fi
    maj=${BASH_REMATCH[1]} min=${BASH_REMATCH[2]}
    if [ "$maj" -lt "$min_major" ] ||
        { [ "$maj" = "$min_major" ] && [ "$min" -lt "$min_minor" ]; }; then
        say "$dir: $ver is older than $min_major.$min_minor (no vfio-user-pci)"
        return 1
    fi
    # -device help lists every device model; the native client is a module
    # of its own in some builds, so ask for the device itself.
    if ! chroot "$dir" qemu-system-x86_64 -nodefaults -device vfio-user-pci,help \
        2>&1 | grep -q 'socket='; then
        say "$dir: $ver has no vfio-user-pci device (or no socket= property)"
        return 1
    fi
    printf '%s\n' "$ver"
}

# Unmount whatever a killed build left under DIR (debootstrap mounts /proc
# and /sys in its target; we build in a private namespace, so this is only
# for a build killed by an older script or by hand).
umount_under() { # DIR
    local mnt
    awk -v d="$1/" 'index($2 "/", d) == 1 { print $2 }' /proc/self/mounts |
        sort -r | while IFS= read -r mnt; do
        umount -l "$mnt" 2>/dev/null || true
    done
}

# Build ROOT.tmp from nothing and rename it to ROOT. Called with the lock.
build_root() {
    local tmp=$root.tmp log=$root.log script
    say "making $root (QEMU from Debian $suite: debootstrap + apt-get, about a minute, once)"
    : >"$log"
    if ! command -v debootstrap >/dev/null 2>&1; then
        say "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            debootstrap >>"$log" 2>&1 || {
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$log" 2>&1 &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                    --no-install-recommends debootstrap >>"$log" 2>&1
        } || {
            say "SKIP: can't install debootstrap (no package source?): see $log"
            exit 77
        }
    fi
    # No network (or no mirror): skip rather than fail.
    if ! { wget -q -O /dev/null --timeout=30 --tries=2 "$mirror/dists/$suite/Release" ||
        curl -fsS -o /dev/null --max-time 30 "$mirror/dists/$suite/Release"; } >>"$log" 2>&1; then
        say "SKIP: can't reach $mirror/dists/$suite/Release (no network?)"
        exit 77
    fi
    # Debian 12's debootstrap has no script for forky; sid's works for it.
    script=/usr/share/debootstrap/scripts/$suite
    [ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
    if [ -e "$tmp" ]; then
        say "removing the half-built $tmp of an earlier run"
        umount_under "$tmp"
        rm -rf --one-file-system "$tmp"
    fi
    # In a private mount namespace: debootstrap's /proc and /sys mounts and
    # ours for apt-get vanish with it, even if this is killed.
    # Testing's Release file may be past its Valid-Until on a mirror
    # snapshot: tell apt inside the chroot not to care (for later updates).
    # shellcheck disable=SC2016 # expanded by the inner bash
    if ! unshare -m --propagation private bash -euc '
        tmp=$1 suite=$2 mirror=$3 script=$4
        debootstrap --variant=minbase "$suite" "$tmp" "$mirror" "$script"
        echo "Acquire::Check-Valid-Until \"false\";" \
            >"$tmp/etc/apt/apt.conf.d/99muser-no-valid-until"
        mountpoint -q "$tmp/proc" || mount -t proc proc "$tmp/proc"
        export DEBIAN_FRONTEND=noninteractive
        chroot "$tmp" apt-get install -y --no-install-recommends qemu-system-x86 || {
            chroot "$tmp" apt-get update &&
                chroot "$tmp" apt-get install -y --no-install-recommends qemu-system-x86
        }
        chroot "$tmp" apt-get clean
    ' _ "$tmp" "$suite" "$mirror" "$script" >>"$log" 2>&1; then
        say "FAIL: building $tmp failed; last lines of $log:"
        tail -n 15 "$log" | sed 's/^/  /' >&2
        exit 1
    fi
    if ! ver=$(check_root "$tmp"); then
        say "FAIL: the QEMU in $tmp is not usable (kept for inspection)"
        exit 1
    fi
    printf '%s\n' "$ver" >"$tmp/$marker"
    mv -T "$tmp" "$root"
    say "ready: $root ($ver)"
}

setup() {
    if [ "$(id -u)" != 0 ]; then
        # chroot and mount need root (the user-namespace way would need a
        # PID namespace for /proc too, and would fork).
        say "SKIP: needs root (chroot, mount) for QEMU from Debian $suite"
        exit 77
    fi
    if [ ! -f "$root/$marker" ]; then
        mkdir -p "$(dirname "$root")"
        exec 9>"$root.lock"
        if ! flock -n 9; then
            say "waiting for another run that is making $root"
            flock 9
        fi
        # Someone else may have finished it while we waited.
        [ -f "$root/$marker" ] || build_root
        exec 9>&-
    fi
    check_root "$root" || {
        say "FAIL: $root is complete but its QEMU is not usable; remove it to rebuild"
        exit 1
    }
}

case "${1:-}" in
--setup)
    setup
    exit 0
    ;;
--root)
    echo "$root"
    exit 0
    ;;
esac

[ -f "$root/$marker" ] || setup >/dev/null

# Directories to bind: same path inside the chroot.
binds=()
add_bind() {
    local d=$1 real inside
    [ -d "$d" ] || return 0
    d=$(cd "$d" && pwd)
    case "$d" in /) return 0 ;; esac
    real=$(realpath "$root")
    case "$d/" in "$real/"*) return 0 ;; esac
    # A symlink in the chroot (e.g. /var/run -> /run) must not take the
    # mount point outside it.
    inside=$(realpath -m "$root$d")
    case "$inside/" in
    "$real/"*) ;;
    *)
        say "can't bind $d: $root$d leads outside the chroot"
        exit 2
        ;;
    esac
    binds+=("$d")
}
for a in "$@"; do
    case "$a" in
    /*) if [ -f "$a" ]; then add_bind "$(dirname "$a")"; elif [ -d "$a" ]; then add_bind "$a"; fi ;;
    esac
done
IFS=: read -r -a extra <<<"${MUSER_QEMU_BIND:-}"
for d in "${extra[@]}"; do
    [ -z "$d" ] || add_bind "$d"
done

unset LD_PRELOAD LD_LIBRARY_PATH
# Every step execs the next: this PID ends up as QEMU's. Mounts made in the
# private namespace go away with QEMU.
# shellcheck disable=SC2016 # expanded by the inner shell
exec unshare -m --propagation private /bin/sh -euc '
    r=$1 n=$2
    shift 2
    mount --bind /dev "$r/dev"
    mount --bind /dev/shm "$r/dev/shm"
    mount --bind /tmp "$r/tmp"
    mount -t proc proc "$r/proc"
    while [ "$n" -gt 0 ]; do
        mkdir -p "$r$1"
        mount --bind "$1" "$r$1"
        shift
        n=$((n - 1))
    done
    exec chroot "$r" qemu-system-x86_64 "$@"
' _ "$root" "${#binds[@]}" "${binds[@]}" "$@"
