#!/bin/bash
# Boot the test guest built by build-guest.sh under QEMU TCG and report.
#
#   run-guest.sh [-t PROG] [-a ARGS] [-k KARGS] [-T SECS] [-i] OUTDIR [QEMU_ARGS...]
#
#   -t PROG   guest program to run (/bin/PROG in the initramfs; default pci-list)
#   -a ARGS   its arguments, space or comma separated (no embedded commas)
#   -k KARGS  extra kernel command line
#   -T SECS   hard timeout for the whole VM (default 120)
#   -i        interactive: keep stdin, no timeout, shell after the test
#   QEMU_ARGS are appended verbatim, e.g. -device vfio-pci,sysfsdev=DIR
#   (QEMU 7.2 + shim) or, with QEMU=tests/vm/qemu-native.sh (QEMU >= 10.1
#   in a chroot), -device '{"driver":"vfio-user-pci","socket":{"type":
#   "unix","path":"SOCK"}}'
#
# Environment:
#   QEMU_PRELOAD    LD_PRELOAD for the QEMU process only (not this script)
#   QEMU            QEMU binary (default qemu-system-x86_64); may be
#                   tests/vm/qemu-native.sh, which needs absolute paths in
#                   /tmp, /dev/shm or the directories of file arguments
#   GUEST_MACHINE   QEMU machine type (default q35; pc also works)
#   GUEST_MEM       guest RAM (default 256M)
#   GUEST_MEM_PATH  backing file of guest RAM (default /dev/shm/muser-vm-PID,
#                   removed on exit; a caller-given path is left alone)
#   GUEST_MEM_BACKEND  file (default: shared file, another process can map
#                   guest RAM) or ram (private anonymous memory: nothing to
#                   pass to a device server, so DMA must go by message)
#   GUEST_LOG       console log (default OUTDIR/last-run.log)
#   GUEST_INITRD    initramfs in OUTDIR (default initrd.img; initrd-fs.img
#                   adds e2fsprogs and ext4, see build-guest.sh)
#
# Exit status: 0 iff the guest printed "GUEST-RESULT: PASS", else 1.
set -eu
set -o pipefail

prog="" args="" kargs="" tmo=${GUEST_TIMEOUT:-120} interactive=0
while getopts "t:a:k:T:i" o; do
    case "$o" in
    t) prog=$OPTARG ;;
    a) args=$OPTARG ;;
    k) kargs=$OPTARG ;;
    T) tmo=$OPTARG ;;
    i) interactive=1 ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -lt 1 ]; then
    echo "usage: $0 [-t PROG] [-a ARGS] [-k KARGS] [-T SECS] [-i] OUTDIR [QEMU_ARGS...]" >&2
    exit 2
fi
# Absolute: QEMU may run in a chroot (tests/vm/qemu-native.sh), where a
# relative path would not resolve.
out=$(cd "$1" && pwd) || { echo "run-guest: no directory $1" >&2; exit 2; }
shift
initrd=${GUEST_INITRD:-initrd.img}
for f in vmlinuz "$initrd"; do
    [ -f "$out/$f" ] || { echo "run-guest: $out/$f missing; run build-guest.sh" >&2; exit 2; }
done

mem=${GUEST_MEM:-256M}
log=${GUEST_LOG:-$out/last-run.log}
if [ -n "${GUEST_MEM_PATH:-}" ]; then
    mempath=$GUEST_MEM_PATH
else
    mempath=/dev/shm/muser-vm-$$
    trap 'rm -f "$mempath"' EXIT
fi

# The kernel command line is space separated, so init takes commas.
append="console=ttyS0 quiet panic=-1"
[ -z "$prog" ] || append="$append muser.test=$prog"
[ -z "$args" ] || append="$append muser.args=$(echo "$args" | tr ' ' ',')"
[ "$interactive" = 0 ] || append="$append muser.shell=1"
[ -z "$kargs" ] || append="$append $kargs"

# share=on with a file backing: only then can another process (the device
# server: QEMU's vfio-user client, or the LD_PRELOAD shim, passes it the fd)
# map guest RAM for DMA.
# q35 so that devices sit on PCIe; TCG because this host has no KVM.
case "${GUEST_MEM_BACKEND:-file}" in
file) backend="memory-backend-file,id=mem,size=$mem,mem-path=$mempath,share=on" ;;
ram) backend="memory-backend-ram,id=mem,size=$mem" ;;
*) echo "run-guest: GUEST_MEM_BACKEND must be file or ram" >&2; exit 2 ;;
esac
qemu_cmd=(
    "${QEMU:-qemu-system-x86_64}"
    -nodefaults -display none -serial stdio -no-reboot
    -accel tcg
    -machine "${GUEST_MACHINE:-q35},memory-backend=mem"
    -m "$mem"
    -object "$backend"
    -kernel "$out/vmlinuz" -initrd "$out/$initrd"
    -append "$append"
    "$@"
)
# `env` scopes the preload to QEMU instead of timeout/tail/grep.
pre=()
[ -z "${QEMU_PRELOAD:-}" ] || pre=(env "LD_PRELOAD=$QEMU_PRELOAD")

if [ "$interactive" = 1 ]; then
    # No exec: the EXIT trap must still remove the RAM file.
    "${pre[@]}" "${qemu_cmd[@]}"
    exit
fi

start=$(date +%s%N)
rc=0
# stdin from /dev/null: QEMU would otherwise put a terminal into raw mode,
# and a killed QEMU would leave it that way. -k: SIGKILL if SIGTERM is ignored.
# Run in the background and `wait`, because bash only runs traps between
# commands: a caller's kill must reach QEMU now (timeout forwards TERM).
: >"$log" # exists before tail opens it (the job below may start later)
timeout -k 5 "$tmo" "${pre[@]}" "${qemu_cmd[@]}" </dev/null >"$log" 2>&1 &
tpid=$!
tail -s 0.1 -n +1 -f --pid="$tpid" "$log" &
tailpid=$!
trap 'kill "$tpid" "$tailpid" 2>/dev/null; exit 130' INT TERM
wait "$tpid" || rc=$?
wait "$tailpid" || true
end=$(date +%s%N)
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')

if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "run-guest: TIMEOUT after ${tmo}s" >&2
fi
# Serial output has CRLF line ends; match without anchoring the end.
if tr -d '\r' <"$log" | grep -q '^GUEST-RESULT: PASS'; then
    echo "run-guest: PASS (${secs}s)" >&2
    exit 0
fi
echo "run-guest: FAIL (qemu rc=$rc, ${secs}s, log $log)" >&2
exit 1
