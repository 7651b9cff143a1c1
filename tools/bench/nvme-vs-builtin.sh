#!/bin/bash
# muser-nvme against QEMU's built-in NVMe emulation: boots the test guest
# (tests/vm) twice on the same backing file - once with muser-nvme
# through vfio-user, once with QEMU's own `-device nvme` - runs the same
# O_DIRECT load in it (tests/vm/guest/nvme-bench.c: sequential 128 KiB and
# random 4 KiB, read and write, queue depth 1 and 32) and prints each
# figure with the ratio muser/builtin. Figures, not a test.
#
#   tools/bench/nvme-vs-builtin.sh [BUILD_DIR] [shim|native|both]
#
# Environment: BENCH_SECONDS per workload (default 3), BENCH_SIZE of the
# backing file (default 256M), MUSER_NVME_ARGS extra muser-nvme options
# (e.g. --no-shadow-doorbells for the figures without them), BENCH_BUILTIN=0
# to skip the builtin run. No KVM here:
# under TCG the guest's own CPU cost dominates; read docs/perf.md before
# quoting these.
set -euo pipefail

build=${1:-build}
vmms=${2:-both}
[ "$vmms" = both ] && vmms="shim native"
src=$(cd "$(dirname "$0")/../.." && pwd)
[ -d "$build" ] || build=$src/$build
# shellcheck source=tests/vm/lib.sh
. "$src/tests/vm/lib.sh"

secs=${BENCH_SECONDS:-3}
size=${BENCH_SIZE:-256M}

run_one() { # LABEL QEMU_ARGS... -> BENCH lines in $VM_TMP/LABEL.txt
    local label=$1
    shift
    vm_boot nvme-bench "$secs" "$@" >"$VM_TMP/$label.out" 2>&1 || {
        cat "$VM_TMP/$label.out" >&2
        echo "[bench] $label: the guest failed" >&2
        return 1
    }
    tr -d '\r' <"$VM_TMP/$label.out" | sed -n 's/^\[guest\] BENCH //p' >"$VM_TMP/$label.txt"
}

for vmm in $vmms; do
    (
        vm_init "$build" "$vmm"
        vm_need_qemu
        vm_guest
        img=$VM_TMP/bench.img
        truncate -s "$size" "$img"
        # Not --quiet: its log tells whether the guest turned on shadow
        # doorbells (Doorbell Buffer Config); the lines are not shown.
        # shellcheck disable=SC2086 # MUSER_NVME_ARGS: words on purpose
        vm_server nvme "$VM_BUILD/samples/nvme/muser-nvme" --backing="$img" \
            ${MUSER_NVME_ARGS:-} >/dev/null
        run_one muser -device "$(vm_dev nvme)"
        kill "${VM_PID[nvme]}" 2>/dev/null || true
        dbbuf=$(grep -m1 -o 'shadow doorbells enabled.*' "$VM_TMP/nvme.log" || echo "shadow doorbells not enabled")
        # Doorbell register writes on I/O queues over the whole run (the
        # guest shuts the controller down before powering off).
        dbw=$(grep -o 'I/O doorbell writes [0-9]*' "$VM_TMP/nvme.log" | tail -n1 || true)
        cmds=$(sed -n 's/.*shutdown complete.*(reads \([0-9]*\), writes \([0-9]*\),.*/\1 \2/p' "$VM_TMP/nvme.log" |
            tail -n1 | awk '{ print $1 + $2 }')
        # The builtin device: no shim, QEMU's own NVMe on the same file,
        # page cache like muser-nvme's buffered backing.
        # BENCH_BUILTIN=0 skips it (muser figures only); a builtin run
        # that fails (QEMU 7.2 stalls at QD32, docs/perf.md) leaves its
        # columns empty rather than losing muser's.
        : >"$VM_TMP/builtin.txt"
        if [ "${BENCH_BUILTIN:-1}" != 0 ]; then
            VM_VMM_SAVED=$VM_VMM
            VM_VMM=builtin
            run_one builtin -drive "file=$img,if=none,id=nvm,format=raw" \
                -device nvme,drive=nvm,serial=bench || true
            VM_VMM=$VM_VMM_SAVED
        fi
        echo
        echo "== $vmm: $(echo "${VM_QEMU_VERSION:-QEMU}" | head -n1), ${secs} s per workload, TCG =="
        echo "muser-nvme: $dbbuf; ${dbw:-I/O doorbell writes ?} for ${cmds:-?} reads+writes"
        printf '%-22s %12s %12s %12s %12s %7s %12s %12s\n' workload "muser IOPS" "muser MiB/s" \
            "builtin IOPS" "builtin MiB/s" ratio "muser irq/io" "bltin irq/io"
        # The last two columns: guest interrupts per request (nvme-bench.c).
        join --nocheck-order -a 1 -e - -o 0,1.2,1.3,2.2,2.3,1.4,2.4 "$VM_TMP/muser.txt" "$VM_TMP/builtin.txt" |
            awk '{ r = ($4 + 0 > 0) ? sprintf("%7.2f", $2 / $4) : "      -";
                   printf "%-22s %12s %12s %12s %12s %s %12s %12s\n", $1, $2, $3, $4, $5, r, $6, $7 }'
    )
done
