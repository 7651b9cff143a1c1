#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# `make run`: a real Linux guest under QEMU drives a muser device - the
# ACCES PCI-IDIO-16 GPIO board emulated by the sample muser-gpio-idio16 -
# with the kernel's own gpio-pci-idio-16 driver.
#
#   scripts/demo.sh BUILD_DIR [VMM]
#
# VMM (default: $VMM, else shim; `make run VMM=native`):
#   shim    Debian 12's stock QEMU 7.2 with the LD_PRELOAD shim
#           (libmuser-preload.so) and -device vfio-pci,sysfsdev=DIR
#   native  QEMU >= 10.1 from Debian testing, in a chroot that
#           tests/vm/qemu-native.sh makes once (about a minute), with its
#           own vfio-user client: -device vfio-user-pci on the socket
#
# Lines are tagged: [host] this script, [device] the vfio-user server,
# [guest] the guest's serial console. The guest image is built once into
# BUILD_DIR/vm (first run: Debian's kernel package is downloaded).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ ! -d "$1" ]; then
    echo "usage: $0 BUILD_DIR [shim|native]   (after: meson setup BUILD_DIR && ninja -C BUILD_DIR)" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/lib.sh
. "$here/../tests/vm/lib.sh"
vm_init "$1" "${2:-}"
VM_SQUEEZE=1
start=$(date +%s.%N)

if [ "$VM_VMM" = native ]; then
    title="QEMU >= 10.1's own vfio-user client"
    qemu_line1="QEMU from Debian testing (chroot: tests/vm/qemu-native.sh),"
    qemu_line2="-device vfio-user-pci straight on the socket, no shim"
else
    title="stock QEMU 7.2 + the LD_PRELOAD shim"
    qemu_line1="Debian 12's QEMU, -device vfio-pci,sysfsdev=DIR"
    qemu_line2="with libmuser-preload.so (no vfio-user support of its own)"
fi
cat <<EOF
[host] ================================================================
[host] muser demo: a Linux guest on a vfio-user device,
[host]             $title
[host]   device: ACCES PCI-IDIO-16 (16 inputs, 16 outputs, INTx),
[host]           emulated by samples/gpio-pci-idio-16 on a UNIX socket
[host]   QEMU:   $qemu_line1
[host]           $qemu_line2
[host]   guest:  Debian's 6.1 kernel, its gpio-pci-idio-16 driver, and a
[host]           program using the GPIO character device (/dev/gpiochipN)
[host] ================================================================
EOF

# QEMU missing and not installable: say so plainly and fail (the demo is
# the point of `make run`; unlike `make check` there is nothing to skip to).
if [ "$VM_VMM" = native ] && [ ! -d "$("$VM_NATIVE_QEMU" --root)" ]; then
    vm_say "first run: making $("$VM_NATIVE_QEMU" --root) (tests/vm/qemu-native.sh:"
    vm_say "QEMU from Debian testing by debootstrap + apt-get; about a minute, once)"
fi
qrc=0
vm_get_qemu || qrc=$?
if [ "$qrc" != 0 ]; then
    if [ "$VM_VMM" = native ]; then
        vm_say "ERROR: QEMU >= 10.1 could not be set up (see the message above):"
        vm_say "       tests/vm/qemu-native.sh needs root and network access to"
        vm_say "       deb.debian.org. 'make run' (without VMM=native) uses"
        vm_say "       Debian 12's own QEMU with the shim instead."
    else
        vm_say "ERROR: QEMU (Debian package qemu-system-x86) is not installed and"
        vm_say "       could not be installed (needs root and a package source)."
        vm_say "       Install it with: sudo apt-get install qemu-system-x86"
        vm_say "       busybox-static cpio kmod; then run 'make run' again."
    fi
    exit 1
fi
vm_say "QEMU: ${VM_QEMU_VERSION/emulator version /}"
[ "$VM_VMM" = native ] || vm_need "$VM_SHIM"
vm_need "$VM_BUILD/samples/muser-gpio-idio16"

vm_say "preparing the guest image in $VM_OUT"
vm_guest

vm_say "starting the device server: muser-gpio-idio16 --socket-path=$VM_TMP/gpio.sock"
vm_server gpio "$VM_BUILD/samples/muser-gpio-idio16" --control="$VM_TMP/gpio.ctl"
# The samples sandbox themselves by default (docs/security.md): show it.
sbx=$(awk '/^Seccomp:/ {print $2}' "/proc/${VM_PID[gpio]}/status" 2>/dev/null || true)
if [ "$sbx" = 2 ]; then
    vm_say "the server sandboxed itself (mu_dev_sandbox, docs/security.md): seccomp"
    vm_say "allowlist, own user/mount/net/IPC namespaces, undeclared fds closed"
else
    vm_say "the server runs without a sandbox here (no seccomp; docs/security.md)"
fi
vm_say "host sets the board's inputs to 0x1234 (control socket: set-inputs 0x1234)"
vm_ctl gpio set-inputs 0x1234 >/dev/null
devarg=$(vm_dev gpio)
if [ "$VM_VMM" = native ]; then
    vm_say "booting: qemu-system-x86_64 ... -device '$devarg'"
    vm_say "(QEMU connects to the socket itself: no shim, no sysfsdev directory)"
else
    vm_say "sysfsdev directory for QEMU: ${devarg#vfio-pci,sysfsdev=} (scripts/muser-vfio-dir)"
    vm_say "booting: LD_PRELOAD=libmuser-preload.so qemu-system-x86_64 ... -device $devarg"
fi
vm_say "(the guest will ask the host to change inputs; the host does it through the control socket)"

rc=0
MUSER_PRELOAD_QUIET=${MUSER_PRELOAD_QUIET:-1} \
    vm_boot gpio-test "0x1234,0xa5c3,0x5a3c" -device "$devarg" || rc=$?
end=$(date +%s.%N)

con=$VM_TMP/console.log
dev=$VM_TMP/gpio.log
seen() { tr -d '\r' <"$con" | grep -m1 -- "$1" || true; }
echo "[host] ================================================================"
vm_say "summary"
if [ "$VM_VMM" = native ]; then
    vm_say "  VMM:            ${VM_QEMU_VERSION/emulator version /}, its own vfio-user-pci client"
else
    vm_say "  VMM:            ${VM_QEMU_VERSION/emulator version /}, vfio-pci + libmuser-preload.so"
fi
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
