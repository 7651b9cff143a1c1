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
# Environment: BENCH_SECONDS per workload (default 3), BENCH_ROUNDS
# (default 3: each device booted that many times, alternating; medians
# shown), BENCH_SIZE of the
# backing file (default 256M), MUSER_NVME_ARGS extra muser-nvme options
# (e.g. --no-shadow-doorbells for the figures without them), BENCH_COMPARE
# a second set of muser-nvme options run in the same rounds (an A/B on one
# machine state, e.g. "--poll-us=0"), BENCH_ONLY one workload by name
# (e.g. seq-read-128k-qd32, to profile it), BENCH_BUILTIN=0
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
rounds=${BENCH_ROUNDS:-3}
size=${BENCH_SIZE:-256M}

median() { # FILES... (lines "name iops MiB/s irqs/io") -> each column's median per name
    [ -s "$1" ] || return 0
    awk '{ n[$1]++; for (i = 2; i <= 4; i++) v[$1, i, n[$1]] = $i; if (!($1 in o)) o[$1] = ++k; nm[o[$1]] = $1 }
         END {
             for (j = 1; j <= k; j++) {
                 w = nm[j]; line = w
                 for (i = 2; i <= 4; i++) {
                     f = (i == 2) ? "%.0f" : (i == 3) ? "%.1f" : "%.2f"
                     m = n[w]
                     for (a = 1; a <= m; a++) x[a] = v[w, i, a] + 0
                     for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (x[b] < x[a]) { t = x[a]; x[a] = x[b]; x[b] = t }
                     line = line " " sprintf(f, (m % 2) ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2)
                 }
                 print line
             }
         }' "$@"
}

run_one() { # LABEL QEMU_ARGS... -> BENCH lines in $VM_TMP/LABEL.txt
    local label=$1
    shift
    vm_boot nvme-bench "$secs${BENCH_ONLY:+ $BENCH_ONLY}" "$@" >"$VM_TMP/$label.out" 2>&1 || {
        cat "$VM_TMP/$label.out" >&2
        echo "[bench] $label: the guest failed" >&2
        return 1
    }
    tr -d '\r' <"$VM_TMP/$label.out" | sed -n 's/^\[guest\] BENCH //p' >"$VM_TMP/$label.txt"
}

run_muser() { # LABEL SERVER_NAME ARGS...: one boot on muser-nvme
    local label=$1 name=$2
    shift 2
    # Not --quiet: its log tells whether the guest turned on shadow
    # doorbells (Doorbell Buffer Config) and counts doorbell writes.
    vm_server "$name" "$VM_BUILD/samples/nvme/muser-nvme" --backing="$img" "$@" >/dev/null
    run_one "$label" -device "$(vm_dev "$name")"
    kill "${VM_PID[$name]}" 2>/dev/null || true
}

table() { # LABEL SERVER_PREFIX ARGS: medians of LABEL.* against the builtin's
    local label=$1 logs dbbuf dbw cmds
    median "$VM_TMP/$label".*.txt >"$VM_TMP/$label.txt"
    logs=$(ls "$VM_TMP/$2"[0-9]*.log)
    # shellcheck disable=SC2086 # one word per log
    dbbuf=$(grep -h -m1 -o 'shadow doorbells enabled.*' $logs | head -n1 || true)
    # Doorbell register writes on I/O queues and commands, all rounds
    # (the guest shuts the controller down before powering off).
    # shellcheck disable=SC2086
    read -r dbw cmds < <(sed -n 's/.*shutdown complete.*(reads \([0-9]*\), writes \([0-9]*\), I\/O doorbell writes \([0-9]*\),.*/\1 \2 \3/p' $logs |
        awk '{ c += $1 + $2; d += $3 } END { print d + 0, c + 0 }')
    echo
    echo "muser-nvme ${3:-(defaults)}: ${dbbuf:-shadow doorbells not enabled}; $dbw I/O doorbell writes for $cmds reads+writes"
    printf '%-22s %12s %12s %12s %12s %7s %12s %12s\n' workload "muser IOPS" "muser MiB/s" \
        "builtin IOPS" "builtin MiB/s" ratio "muser irq/io" "bltin irq/io"
    # The last two columns: guest interrupts per request (nvme-bench.c).
    join --nocheck-order -a 1 -e - -o 0,1.2,1.3,2.2,2.3,1.4,2.4 "$VM_TMP/$label.txt" "$VM_TMP/builtin.txt" |
        awk '{ r = ($4 + 0 > 0) ? sprintf("%7.2f", $2 / $4) : "      -";
               printf "%-22s %12s %12s %12s %12s %s %12s %12s\n", $1, $2, $3, $4, $5, r, $6, $7 }'
}

for vmm in $vmms; do
    (
        vm_init "$build" "$vmm"
        vm_need_qemu
        vm_guest
        img=$VM_TMP/bench.img
        truncate -s "$size" "$img"
        # Rounds alternate the two devices (muser, builtin, muser, ...)
        # and the table shows each one's median: on a shared machine two
        # runs of the same thing minutes apart differ by up to 2x.
        for r in $(seq "$rounds"); do
            # shellcheck disable=SC2086 # options: one word each
            run_muser "muser.$r" "nvme$r" ${MUSER_NVME_ARGS:-}
            # BENCH_COMPARE: a second muser-nvme set-up in the same
            # rounds (e.g. "--poll-us=0"), for a fair A/B.
            # shellcheck disable=SC2086
            [ -z "${BENCH_COMPARE:-}" ] ||
                run_muser "muser2.$r" "cmp$r" $BENCH_COMPARE
            # The builtin device: no shim, QEMU's own NVMe on the same
            # file, page cache like muser-nvme's buffered backing.
            # BENCH_BUILTIN=0 skips it (muser figures only); a builtin
            # run that fails (QEMU 7.2 stalls at QD32, docs/perf.md)
            # leaves its columns empty rather than losing muser's.
            : >"$VM_TMP/builtin.$r.txt"
            if [ "${BENCH_BUILTIN:-1}" != 0 ]; then
                VM_VMM_SAVED=$VM_VMM
                VM_VMM=builtin
                run_one "builtin.$r" -drive "file=$img,if=none,id=nvm,format=raw" \
                    -device nvme,drive=nvm,serial=bench || true
                VM_VMM=$VM_VMM_SAVED
            fi
        done
        median "$VM_TMP"/builtin.*.txt >"$VM_TMP/builtin.txt"
        echo
        echo "== $vmm: $(echo "${VM_QEMU_VERSION:-QEMU}" | head -n1), ${secs} s per workload, TCG =="
        echo "median of $rounds round(s) each, alternating"
        table muser nvme "${MUSER_NVME_ARGS:-}"
        [ -z "${BENCH_COMPARE:-}" ] || table muser2 cmp "$BENCH_COMPARE"
    )
done
