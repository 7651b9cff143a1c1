#!/bin/bash
# The guest tests of `make check`: a real Linux guest drives muser sample
# devices, under either of two VMMs.
#
#   tests/vm/tests.sh BUILD_DIR TEST [VMM]
#
# VMM (default: $VMM, else shim) is
#   shim       Debian 12's stock QEMU 7.2, LD_PRELOAD shim,
#              -device vfio-pci,sysfsdev=DIR   (meson: vm-NAME)
#   native     QEMU >= 10.1 from Debian testing in a cached chroot
#              (tests/vm/qemu-native.sh), its own vfio-user client:
#              -device '{"driver":"vfio-user-pci","socket":{...}}'
#                                              (meson: vm-native-NAME)
#
# TEST is one of:
#   edu        the guest-side methods against QEMU's own edu device (no
#              muser): proves the test method, so failures below are muser's
#   gpio       gpio-pci-idio-16 with Linux's driver: IDs, BARs, GPIO uAPI
#              reads and writes, host input changes -> INTx -> edge events
#   regs       the same board from user space, driver unbound: config
#              space and I/O BAR registers
#   dma        muser-dma-test, guest RAM shared (the server mmaps it): DMA
#              both ways, INTx, MSI, MSI-X
#   dma-nofd   the same with private guest RAM: every DMA is a
#              DMA_READ/DMA_WRITE message
#   two        both samples in one guest
#   nvme       muser-nvme with Linux's nvme driver: namespace size,
#              O_DIRECT patterns at many offsets and sizes, a controller
#              reset; then 4 resets (each when the block layer has I/O in
#              flight) while 6 threads write and read back generation-
#              tagged patterns: I/O goes on after them, every good write
#              reads back; the host then checks the backing file holds
#              every pattern and each stress slot's last good generation
#              (from the guest's stress-slots line), zeroes elsewhere
#   nvme-fs    muser-nvme with its own 33 MiB backing file in 4096-byte
#              blocks (the other nvme tests: 512): a 32 MiB ext4
#              made by e2fsprogs' mke2fs in the guest (initrd-fs.img),
#              files of 0 B to 3 MiB written (fsync, fdatasync, an
#              overwrite, a hole, a directory of small files) while the
#              controller is reset 3 times; after the fsyncs, still
#              mounted, the host copies the backing file with the server
#              stopped (HOST-REQUEST: snapshot) and acks in the last MiB;
#              umount, e2fsck -fn, remount, every byte read back. Host: its own e2fsck -fn on the backing file,
#              every file read out of it with debugfs, a device Flush
#              count >= the guest's fsyncs, and the mid-mount copy
#              recovers (journal replay) with every fsync'ed file whole
#   nvme-kill  muser-nvme killed mid-I/O: the guest's I/O fails, QEMU
#              runs on to the guest's power-off
#   kill       the server is killed mid-run: the guest reads all ones,
#              QEMU keeps running until the guest powers off
#
# Exit: 0 pass, 1 fail, 77 skip (QEMU can't be installed; native: the
# chroot can't be made, i.e. not root or no network). Environment:
# VM_KEEP_TMP=1 keeps the temp dir (sockets, logs), VM_TIMEOUT (s).
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
fi
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_init "$1" "${3:-}"
test=$2
gpio_bin=$VM_BUILD/samples/muser-gpio-idio16
dma_bin=$VM_BUILD/samples/muser-dma-test
nvme_bin=$VM_BUILD/samples/nvme/muser-nvme

vm_need_qemu
vm_guest

# shellcheck disable=SC2317 # called through vm_check
log_has() { grep -q -- "$2" "$VM_TMP/$1.log"; }
# shellcheck disable=SC2317
console_has() { tr -d '\r' <"$VM_TMP/console.log" | grep -q -- "$1"; }

gpio_server() {
    vm_server gpio "$gpio_bin" --control="$VM_TMP/gpio.ctl"
    vm_ctl gpio set-inputs 0x1234 >/dev/null
}

case "$test" in
edu)
    # Not a muser test: no shim, QEMU's own device.
    set +e
    QEMU=$VM_QEMU QEMU_PRELOAD="" GUEST_LOG=$VM_TMP/console.log "$VM_SRC/tests/vm/run-guest.sh" \
        -t edu-test "$VM_OUT" -device edu 2>&1 | sed -u 's/\r$//; s/^/[guest] /'
    rc=${PIPESTATUS[0]}
    set -e
    vm_check "guest: edu-test passed" test "$rc" = 0
    ;;
gpio)
    gpio_server
    dev=$(vm_dev gpio)
    vm_boot gpio-test "0x1234,0xa5c3,0x5a3c" -device "$dev" &&
        rc=0 || rc=$?
    vm_check "guest: gpio-test passed" test "$rc" = 0
    vm_check "device printed the guest's outputs 0xa5c3" log_has gpio "outputs: 0xa5c3"
    vm_check "device printed the guest's outputs 0x5a3c" log_has gpio "outputs: 0x5a3c"
    vm_check "host input changes raised the interrupt" log_has gpio "inputs: 0x1235 (interrupt)"
    vm_check "device inputs end at 0x9234" test "$(vm_ctl gpio get-inputs)" = 0x9234
    ;;
regs)
    gpio_server
    dev=$(vm_dev gpio)
    vm_boot regs-test regs -device "$dev" && rc=0 || rc=$?
    vm_check "guest: regs-test passed" test "$rc" = 0
    vm_check "device saw the guest's register writes (outputs 0xa53c)" \
        log_has gpio "outputs: 0xa53c"
    vm_check "device inputs end at 0x80f1" test "$(vm_ctl gpio get-inputs)" = 0x80f1
    ;;
dma | dma-nofd)
    vm_server dma "$dma_bin"
    dev=$(vm_dev dma)
    if [ "$test" = dma-nofd ]; then
        export GUEST_MEM_BACKEND=ram
    fi
    vm_boot dma-test "$test" -device "$dev" && rc=0 || rc=$?
    vm_check "guest: dma-test passed" test "$rc" = 0
    vm_check "device ran copy, fill and checksum" \
        sh -c "grep -q '^copy .*done' '$VM_TMP/dma.log' &&
               grep -q '^fill .*done' '$VM_TMP/dma.log' &&
               grep -q '^checksum .*done' '$VM_TMP/dma.log'"
    if [ "$test" = dma ]; then
        vm_check "guest RAM was mapped into the server (fd passed)" \
            log_has dma "dma map iova=0x0 .*mmapped"
    else
        vm_check "guest RAM was mapped without fd (DMA by message)" \
            log_has dma "dma map iova=0x0 .*messages"
        # (BAR4's sparse-mmap area, above RAM, may be: it is the device's own
        # shareable memory, which QEMU maps for peer-to-peer.)
        vm_check "no map of guest RAM (below 256 MiB) was mmapped" \
            sh -c "! grep -Eq 'dma map iova=0x[0-9a-f]{1,7} .*mmapped' '$VM_TMP/dma.log'"
    fi
    ;;
nvme)
    img=$VM_TMP/nvme.img
    rm -f "$img"
    truncate -s 16M "$img"
    vm_server nvme "$nvme_bin" --backing="$img"
    dev=$(vm_dev nvme)
    vm_boot nvme-test 32768 -device "$dev" && rc=0 || rc=$?
    vm_check "guest: nvme-test passed" test "$rc" = 0
    # Linux uses Doorbell Buffer Config when OACS offers it (bit 8).
    vm_check "the guest's nvme driver turned on shadow doorbells" \
        log_has nvme "muser-nvme: shadow doorbells enabled (dbbuf 0x"
    vm_check_show 10 "the backing file holds every pattern and every stress slot's last good write at its offset, nothing else" \
        python3 "$VM_SRC/tests/vm/nvme-check.py" "$img" "$VM_TMP/console.log"
    ;;
nvme-fs)
    # Its own backing file: the file system owns the first 32 MiB, the
    # guest reads the host's snapshot acknowledgment after it.
    img=$VM_TMP/nvme-fs.img
    rm -f "$img"
    truncate -s 33M "$img"
    # 4096-byte blocks: the other nvme tests use 512.
    vm_server nvme "$nvme_bin" --backing="$img" --block-size=4096
    VM_BACKING[nvme]=$img
    dev=$(vm_dev nvme)
    export GUEST_INITRD=initrd-fs.img # with e2fsprogs and ext4
    vm_boot nvme-fs-test 67584,4096 -device "$dev" && rc=0 || rc=$?
    vm_check "guest: nvme-fs-test passed" test "$rc" = 0
    check=$VM_SRC/tests/vm/nvme-fs-check.py
    vm_check_show 2 "the host's e2fsck -fn finds the backing file's ext4 clean" \
        python3 "$check" fsck "$img"
    vm_check_show 3 "every file, read out of the backing file with debugfs, is intact" \
        python3 "$check" files "$img"
    vm_check_show 2 "the device got a Flush command for every fsync/fdatasync" \
        python3 "$check" flushes "$VM_TMP/nvme.log" "$VM_TMP/console.log"
    # e2fsck -fy changes the copy: check a copy of it, keep the original.
    cp --sparse=always "$VM_TMP/nvme.snapshot" "$VM_TMP/nvme.snapshot.fsck" 2>/dev/null || true
    vm_check_show 4 "a copy taken mid-mount after the fsyncs recovers, with every fsync'ed file" \
        python3 "$check" snapshot "$VM_TMP/nvme.snapshot.fsck"
    ;;
nvme-kill)
    # The QEMU 11.1.2 abort of the kill test above (a request of QEMU's
    # unread when the server dies) is likely here: the guest's doorbell
    # writes never stop. Same remedy: boot again, up to VM_KILL_BOOTS; if
    # every boot hits it, SKIP naming the QEMU bug (not a muser failure).
    boots=${VM_KILL_BOOTS:-8} boot=1
    img=$VM_TMP/nvme.img
    while :; do
        rm -f "$img" "$VM_TMP/nvme.sock"
        truncate -s 8M "$img"
        vm_server nvme "$nvme_bin" --backing="$img"
        dev=$(vm_dev nvme)
        vm_boot nvme-test "16384,kill" -device "$dev" && rc=0 || rc=$?
        if [ "$rc" != 0 ] && [ "$VM_VMM" = native ] &&
            console_has "error_setv: Assertion .*errp == NULL' failed"; then
            vm_say "KNOWN QEMU BUG: QEMU aborted on its own assertion after the kill" \
                "(tests/vm/README.md); boot $boot of $boots"
            if [ "$boot" -ge "$boots" ]; then
                echo "SKIP: QEMU 11.1's client aborted after the server kill on every boot" >&2
                exit 77
            fi
            boot=$((boot + 1))
            continue
        fi
        break
    done
    vm_check "guest: I/O failed after the kill, no hang" test "$rc" = 0
    vm_check "the kill happened" grep -q "kill nvme" "$VM_TMP/requests.log"
    vm_check "QEMU ran the guest to its normal power-off" console_has "reboot: Power down"
    ;;
two)
    VM_TAG_NAMES=1
    gpio_server
    vm_server dma "$dma_bin"
    d1=$(vm_dev gpio)
    d2=$(vm_dev dma)
    vm_boot multi "gpio-test,0x1234,--,dma-test,two-devices" \
        -device "$d1" -device "$d2" &&
        rc=0 || rc=$?
    vm_check "guest: gpio-test and dma-test passed in one boot" test "$rc" = 0
    vm_check "gpio device printed the outputs" log_has gpio "outputs: 0x5a3c"
    vm_check "dma device did the copy" log_has dma "copy .*done"
    ;;
kill)
    # QEMU 11.1.2's client aborts when its server dies with one of QEMU's
    # requests unread (the socket is reset, ECONNRESET rather than EOF):
    # "util/error.c:62: error_setv: Assertion `*errp == NULL' failed."
    # (SIGABRT, the guest is gone). A QEMU bug: SIGSTOP, a guest access,
    # then SIGKILL reproduces it every time, and the shim survives the same.
    # Here the SIGKILL lands on one of the guest's 50 ms polls now and then
    # (6 of 44 boots in one series, 9 of 29 in another under load). Such a
    # boot is reported as a known QEMU bug and done again with a fresh
    # server, up to VM_KILL_BOOTS boots (default 8); every check below is
    # made on the last boot, so a pass still means QEMU survived a kill.
    # Any other failure is not retried.
    # On the native client the guest leaves the device alone for 2 s
    # after asking for the kill, so that the kill lands with no access in
    # flight: in a 2026-12-04 series QEMU 11.1.2 aborted on 6 of 6 boots
    # of the mid-poll kill on a quiet machine (with this code and with the
    # last stop's), 8 of 8 in a CI run. The shim gets the kill mid-poll.
    dead_args=dead
    [ "$VM_VMM" = native ] && dead_args=dead,idle
    boots=${VM_KILL_BOOTS:-8} boot=1
    while :; do
        rm -f "$VM_TMP/gpio.sock" "$VM_TMP/gpio.ctl"
        gpio_server
        dev=$(vm_dev gpio)
        vm_boot regs-test "$dead_args" -device "$dev" && rc=0 || rc=$?
        if [ "$rc" != 0 ] && [ "$VM_VMM" = native ] && [ "$boot" -lt "$boots" ] &&
            console_has "error_setv: Assertion .*errp == NULL' failed"; then
            vm_say "KNOWN QEMU BUG: QEMU aborted on its own assertion after the kill" \
                "(tests/vm/README.md); boot $boot of $boots, booting again"
            cp "$VM_TMP/console.log" "$VM_TMP/console.boot$boot.log"
            boot=$((boot + 1))
            continue
        fi
        break
    done
    vm_check "guest: saw all ones after the kill and powered off" test "$rc" = 0
    vm_check "the kill happened" grep -q "kill gpio" "$VM_TMP/requests.log"
    vm_check "the server is gone" sh -c "! kill -0 ${VM_PID[gpio]}"
    # What a user sees on QEMU's stderr differs: the shim says once that
    # the device is dead; QEMU 11.1's own client prints two error lines for
    # every access after the kill ("vfio_region_read(vfio-user:SOCK:
    # region2+0x0, 1) failed: Bad address", vfio_pci_read_config for config
    # space), and sometimes, not always (a race with those accesses),
    # "failed to read header: EOF" first - so that line is not checked.
    # Both keep the VM running, reads give all ones and writes are dropped.
    if [ "$VM_VMM" = shim ]; then
        vm_check "the shim reported the server gone" \
            console_has "muser-preload: error: .* is gone"
    else
        vm_check "QEMU reported the failed BAR and config accesses" \
            sh -c "tr -d '\r' <'$VM_TMP/console.log' | grep -q 'vfio_region_read(vfio-user:.*) failed' &&
                   tr -d '\r' <'$VM_TMP/console.log' | grep -q 'vfio_pci_read_config(vfio-user:.*) failed'"
        vm_check "QEMU did not abort" sh -c "! tr -d '\r' <'$VM_TMP/console.log' | grep -q 'Assertion'"
    fi
    vm_check "QEMU ran the guest to its normal power-off" console_has "reboot: Power down"
    ;;
*)
    echo "unknown test '$test'" >&2
    exit 2
    ;;
esac
vm_result
