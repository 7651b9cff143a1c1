#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# `make run`: a real Linux guest under Debian's stock QEMU 7.2 drives a
# muser device - the ACCES PCI-IDIO-16 GPIO board emulated by the sample
# muser-gpio-idio16 - with the kernel's own gpio-pci-idio-16 driver.
#
#   scripts/demo.sh BUILD_DIR
#
# Lines are tagged: [host] this script, [device] the vfio-user server,
# [guest] the guest's serial console. The guest image is built once into
# BUILD_DIR/vm (first run: Debian's kernel package is downloaded).
set -euo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 BUILD_DIR   (after: meson setup BUILD_DIR && ninja -C BUILD_DIR)" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/lib.sh
. "$here/../tests/vm/lib.sh"
vm_init "$1"
VM_SQUEEZE=1
start=$(date +%s.%N)

cat <<'EOF'
[host] ================================================================
[host] muser demo: stock QEMU 7.2 + a Linux guest on a vfio-user device
[host]   device: ACCES PCI-IDIO-16 (16 inputs, 16 outputs, INTx),
[host]           emulated by samples/gpio-pci-idio-16 on a UNIX socket
[host]   QEMU:   -device vfio-pci,sysfsdev=DIR with libmuser-preload.so
[host]   guest:  Debian's 6.1 kernel, its gpio-pci-idio-16 driver, and a
[host]           program using the GPIO character device (/dev/gpiochipN)
[host] ================================================================
EOF

# QEMU missing and not installable: say so plainly and fail (the demo is
# the point of `make run`; unlike `make check` there is nothing to skip to).
if ! command -v "$VM_QEMU" >/dev/null 2>&1; then
    vm_say "$VM_QEMU not found; installing it (tests/vm/install-deps.sh)"
    "$VM_SRC/tests/vm/install-deps.sh" || true
fi
if ! command -v "$VM_QEMU" >/dev/null 2>&1; then
    vm_say "ERROR: QEMU (Debian package qemu-system-x86) is not installed and"
    vm_say "       could not be installed (needs root and a package source)."
    vm_say "       Install it with: sudo apt-get install qemu-system-x86"
    vm_say "       busybox-static cpio kmod; then run 'make run' again."
    exit 1
fi
vm_need "$VM_SHIM" "$VM_BUILD/samples/muser-gpio-idio16"

vm_say "preparing the guest image in $VM_OUT"
vm_guest

vm_say "starting the device server: muser-gpio-idio16 --socket-path=$VM_TMP/gpio.sock"
vm_server gpio "$VM_BUILD/samples/muser-gpio-idio16" --control="$VM_TMP/gpio.ctl"
vm_say "host sets the board's inputs to 0x1234 (control socket: set-inputs 0x1234)"
vm_ctl gpio set-inputs 0x1234 >/dev/null
dir=$(vm_devdir gpio)
vm_say "sysfsdev directory for QEMU: $dir (scripts/muser-vfio-dir)"
vm_say "booting: LD_PRELOAD=libmuser-preload.so qemu-system-x86_64 ... -device vfio-pci,sysfsdev=$dir"
vm_say "(the guest will ask the host to change inputs; the host does it through the control socket)"

rc=0
MUSER_PRELOAD_QUIET=${MUSER_PRELOAD_QUIET:-1} \
    vm_boot gpio-test "0x1234,0xa5c3,0x5a3c" -device "vfio-pci,sysfsdev=$dir" || rc=$?
end=$(date +%s.%N)

con=$VM_TMP/console.log
dev=$VM_TMP/gpio.log
seen() { tr -d '\r' <"$con" | grep -m1 -- "$1" || true; }
echo "[host] ================================================================"
vm_say "summary"
vm_say "  guest saw:      $(seen 'device .*494f:0dc8' | sed 's/^gpio-test: //')"
vm_say "                  $(seen 'BAR2' | sed 's/^gpio-test: *//')"
vm_say "  guest read:     $(seen 'inputs read' | sed 's/^gpio-test: //')"
vm_say "  guest drove:    outputs; the device printed: $(grep -o 'outputs: 0x[0-9a-f]*' "$dev" | sed 's/outputs: //' | uniq | tr '\n' ' ')"
vm_say "  host changed:   inputs $(grep -o 'inputs: 0x[0-9a-f]* (interrupt)' "$dev" | sed 's/inputs: //; s/ (interrupt)/*/' | tr '\n' ' ')(* = interrupt raised)"
vm_say "  guest got:      $(tr -d '\r' <"$con" | grep -c 'ok   edge event') edge events on the lines the host changed, via INTx"
vm_say "  checks:         $(tr -d '\r' <"$con" | grep -c '^  ok ') passed, $(tr -d '\r' <"$con" | grep -c '^  FAIL') failed"
vm_say "  time:           $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f s", b - a }')"
if [ "$rc" = 0 ]; then
    vm_say "RESULT: the guest drove the muser device with its stock driver: PASS"
else
    vm_say "RESULT: FAIL (console log: $con; kept in $VM_TMP)"
    VM_KEEP_TMP=1
fi
exit "$rc"
