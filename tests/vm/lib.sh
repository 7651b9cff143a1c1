# shellcheck shell=bash
# tests/vm/lib.sh - host side of the VM tests (tests/vm/tests.sh) and of
# the `make run` demo (scripts/demo.sh). Source it, then:
#
#   vm_init BUILD_DIR [VMM]  paths, temp dir, cleanup trap; VMM (default
#                            $VMM, else shim) picks the QEMU, see below
#   vm_need_qemu             get that QEMU; exit 77 (skip) if impossible
#   vm_guest                 (re)build the guest image in BUILD_DIR/vm if stale
#   vm_server NAME BIN ARGS  start a sample on $VM_TMP/NAME.sock, wait for it
#   vm_dev NAME              the -device argument for NAME's socket
#   vm_boot PROG ARGS QEMU_ARGS...   boot the guest, act on its requests
#
# Two VMMs run the same tests:
#   shim    Debian 12's QEMU 7.2 (or $QEMU) with LD_PRELOAD=libmuser-preload.so
#           and -device vfio-pci,sysfsdev=DIR (DIR from scripts/muser-vfio-dir)
#   native  QEMU >= 10.1 from Debian testing in a chroot (tests/vm/qemu-native.sh)
#           with its own client, straight on the socket:
#           -device '{"driver":"vfio-user-pci","socket":{"type":"unix","path":"SOCK"}}'
#
# Output lines are tagged: "[host]" this script, "[guest]" the guest's
# console, "[device]" (or "[device:NAME]") a sample server's stdout/stderr.
#
# The guest asks the host for things by printing lines on its console:
#   HOST-REQUEST: gpio CMD...   -> CMD goes to the gpio sample's control socket
#   HOST-REQUEST: kill NAME     -> SIGKILL to server NAME
#   HOST-REQUEST: snapshot NAME OFFSET
#                               -> a point-in-time copy of server NAME's
#                                  backing file (VM_BACKING[NAME]) to
#                                  $VM_TMP/NAME.snapshot, taken with the
#                                  server stopped (SIGSTOP, cp, SIGCONT), then
#                                  "MUSER-SNAPSHOT-ACK" written into the
#                                  backing file at byte OFFSET: the guest
#                                  reads it there to know the copy is made
# Every request and its answer is logged to $VM_TMP/requests.log.

VM_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VM_NATIVE_QEMU=$VM_SRC/tests/vm/qemu-native.sh
declare -A VM_PID=() VM_BACKING=()

vm_say() { printf '[host] %s\n' "$*"; }

vm_cleanup() {
    local n
    for n in "${!VM_PID[@]}"; do
        kill -TERM "${VM_PID[$n]}" 2>/dev/null || true
    done
    for n in "${!VM_PID[@]}"; do
        # Give a clean shutdown a moment, then insist.
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "${VM_PID[$n]}" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "${VM_PID[$n]}" 2>/dev/null || true
    done
    [ -z "${VM_TMP:-}" ] || [ -n "${VM_KEEP_TMP:-}" ] || rm -rf "$VM_TMP"
}

vm_init() {
    VM_BUILD=$(cd "$1" && pwd) || { echo "no build dir $1" >&2; exit 2; }
    VM_VMM=${2:-${VMM:-shim}}
    case "$VM_VMM" in
    shim) VM_QEMU=${QEMU:-qemu-system-x86_64} ;;
    native) VM_QEMU=$VM_NATIVE_QEMU ;;
    *) echo "VMM must be shim or native, not '$VM_VMM'" >&2; exit 2 ;;
    esac
    VM_OUT=${MUSER_VM_OUT:-$VM_BUILD/vm}
    VM_SHIM=$VM_BUILD/src/preload/libmuser-preload.so
    VM_TMP=$(mktemp -d /tmp/muser-vm.XXXXXX)
    # Our own group-number registry (see scripts/muser-vfio-dir): nothing
    # left behind in /tmp, no clash with other users of the helper.
    export MUSER_VFIO_REGISTRY=$VM_TMP/groups
    mkdir -p "$VM_OUT"
    trap vm_cleanup EXIT
    trap 'exit 130' INT TERM
}

# QEMU is the one thing a machine may be unable to provide (no package
# source, no root): then the VM tests are skipped (exit 77, meson's SKIP).
# vm_get_qemu returns 0 (ready), 77 (impossible here) or 1 (broken) and
# says why on stderr; it sets VM_QEMU_VERSION.
vm_get_qemu() {
    local rc=0
    # The host tools build the guest image for both VMMs.
    if ! command -v busybox >/dev/null 2>&1 ||
        { [ "$VM_VMM" = shim ] && ! command -v "$VM_QEMU" >/dev/null 2>&1; }; then
        vm_say "installing QEMU and the guest's tools (tests/vm/install-deps.sh)"
        "$VM_SRC/tests/vm/install-deps.sh" >&2 || true
    fi
    if [ "$VM_VMM" = native ]; then
        VM_QEMU_VERSION=$("$VM_NATIVE_QEMU" --setup) || rc=$?
        return "$rc"
    fi
    if ! command -v "$VM_QEMU" >/dev/null 2>&1; then
        echo "SKIP: $VM_QEMU is not installed and could not be installed" \
            "(apt-get install qemu-system-x86 failed: no root or no package" \
            "source); the VM tests need it" >&2
        return 77
    fi
    VM_QEMU_VERSION=$("$VM_QEMU" --version | head -n1)
}

vm_need_qemu() {
    local rc=0
    vm_get_qemu || rc=$?
    case "$rc" in
    0) ;;
    77)
        [ "$VM_VMM" = shim ] ||
            echo "SKIP: QEMU >= 10.1 (Debian testing, in a chroot) can't be" \
                "made on this machine; see the message above" >&2
        exit 77
        ;;
    *) exit "$rc" ;;
    esac
    if [ "$VM_VMM" = native ]; then
        vm_say "VMM: ${VM_QEMU_VERSION/emulator version /} from $("$VM_NATIVE_QEMU" --root), native vfio-user-pci client"
    else
        vm_say "VMM: ${VM_QEMU_VERSION/emulator version /}, vfio-pci + $(basename "$VM_SHIM")"
    fi
}

vm_need() {
    local f
    for f in "$@"; do
        [ -e "$f" ] || { echo "[host] FAIL: missing $f (build first: ninja -C $VM_BUILD)" >&2; exit 1; }
    done
}

# The guest image (kernel + initramfs with all guest programs) lives in
# $VM_OUT and is rebuilt only when a guest source is newer than it.
vm_guest() {
    local progs=() stale=0 f
    for f in "$VM_SRC"/tests/vm/guest/*.c; do
        # build-guest.sh always builds pci-list itself.
        [ "${f##*/}" = pci-list.c ] || progs+=("$f")
    done
    (
        flock 9
        if [ ! -f "$VM_OUT/initrd.img" ] || [ ! -f "$VM_OUT/vmlinuz" ] ||
            [ ! -f "$VM_OUT/initrd-fs.img" ] ||
            [ -n "$(find "$VM_SRC/tests/vm/guest" "$VM_SRC/tests/vm/init" \
                "$VM_SRC/tests/vm/build-guest.sh" \
                "$VM_SRC/samples/dma-test/dma-test.h" \
                -newer "$VM_OUT/initrd.img" 2>/dev/null | head -n1)" ]; then
            stale=1
        fi
        if [ "$stale" = 1 ]; then
            [ -f "$VM_OUT/cache/.extracted" ] ||
                vm_say "first run: fetching Debian's kernel package for the guest (once, ~70 MB)"
            GUEST_CFLAGS="-I$VM_SRC/samples/dma-test" \
                "$VM_SRC/tests/vm/build-guest.sh" "$VM_OUT" "${progs[@]}" \
                >"$VM_OUT/build.log" 2>&1 || {
                sed 's/^/[host] build-guest: /' "$VM_OUT/build.log"
                echo "[host] FAIL: building the guest image failed" >&2
                exit 1
            }
        fi
    ) 9>"$VM_OUT/.lock"
}

# The control-socket client: built by meson, or compiled here on demand.
vm_ctl_bin() {
    if [ -x "$VM_BUILD/tests/vm/vm-ctl" ]; then
        echo "$VM_BUILD/tests/vm/vm-ctl"
        return
    fi
    if [ ! -x "$VM_OUT/vm-ctl" ] ||
        [ "$VM_SRC/tests/vm/vm-ctl.c" -nt "$VM_OUT/vm-ctl" ]; then
        gcc -O2 -o "$VM_OUT/vm-ctl" "$VM_SRC/tests/vm/vm-ctl.c" || return 1
    fi
    echo "$VM_OUT/vm-ctl"
}

vm_ctl() { # NAME COMMAND... : one round trip to NAME's control socket
    local name=$1
    shift
    "$(vm_ctl_bin)" "$VM_TMP/$name.ctl" "$@"
}

# Copy stdin to LOG and, tagged, to stdout (a shell loop: no buffering).
vm_tag_lines() { # TAG SQUEEZE LOG
    local l last="" n=0
    while IFS= read -r l; do
        printf '%s\n' "$l" >>"$3"
        if [ "$2" = 1 ] && [ "$l" = "$last" ]; then
            n=$((n + 1))
            continue
        fi
        [ "$n" = 0 ] || printf '%s (the line above %d more times)\n' "$1" "$n"
        n=0 last=$l
        printf '%s %s\n' "$1" "$l"
    done
    [ "$n" = 0 ] || printf '%s (the line above %d more times)\n' "$1" "$n"
}

# vm_server NAME BIN [ARGS...]: start a sample on $VM_TMP/NAME.sock; its
# output goes to $VM_TMP/NAME.log and, tagged, to our stdout.
vm_server() {
    local name=$1 bin=$2 tag="[device]"
    shift 2
    vm_need "$bin"
    [ "${VM_TAG_NAMES:-0}" = 0 ] || tag="[device:$name]"
    # VM_SQUEEZE=1 (the demo): runs of one repeated line are shown once,
    # with a count; the log file keeps everything.
    "$bin" --socket-path="$VM_TMP/$name.sock" "$@" \
        > >(vm_tag_lines "$tag" "${VM_SQUEEZE:-0}" "$VM_TMP/$name.log") 2>&1 &
    VM_PID[$name]=$!
    disown "${VM_PID[$name]}" # no "Killed" notice from bash when a test kills it
    for _ in $(seq 100); do
        [ -S "$VM_TMP/$name.sock" ] && return 0
        kill -0 "${VM_PID[$name]}" 2>/dev/null || break
        sleep 0.05
    done
    echo "[host] FAIL: $name server did not create $VM_TMP/$name.sock" >&2
    exit 1
}

# vm_dev NAME: QEMU's -device argument for NAME's socket, for this VMM.
vm_dev() {
    local dir
    if [ "$VM_VMM" = native ]; then
        printf '{"driver":"vfio-user-pci","socket":{"type":"unix","path":"%s"}}\n' \
            "$VM_TMP/$1.sock"
        return
    fi
    dir=$(vm_devdir "$1") || exit 1
    echo "vfio-pci,sysfsdev=$dir"
}

# vm_devdir NAME: the directory QEMU gets as vfio-pci sysfsdev=DIR, made
# by scripts/muser-vfio-dir (the user-facing helper, docs/qemu.md).
vm_devdir() {
    local name=$1 dir
    dir=$VM_TMP/vfio/$name
    "$VM_SRC/scripts/muser-vfio-dir" -q "$dir" "$VM_TMP/$name.sock" >/dev/null || {
        echo "[host] FAIL: scripts/muser-vfio-dir $dir $VM_TMP/$name.sock" >&2
        exit 1
    }
    echo "$dir"
}

# vm_wait_stopped PID: after SIGSTOP, until every thread of PID is stopped
# (kill returns before threads on other CPUs have got there: one could
# still finish a write into the file being copied).
vm_wait_stopped() {
    local f st
    for _ in $(seq 200); do
        st=0
        for f in /proc/"$1"/task/*/stat; do
            # The state is the field after the ")" that ends the name.
            case "$(sed 's/.*) \(.\).*/\1/' "$f" 2>/dev/null)" in
            T | t | "") ;;
            *) st=1 ;;
            esac
        done
        [ "$st" = 1 ] || return 0
        sleep 0.01
    done
    return 1
}

# Act on one console line (already stripped of CR).
vm_request() {
    local req=${1#HOST-REQUEST: } what rc=0 ans
    read -r what _ <<<"$req"
    case "$what" in
    kill)
        local name=${req#kill }
        ans="SIGKILL to $name (pid ${VM_PID[$name]:-?})"
        kill -KILL "${VM_PID[$name]}" 2>/dev/null || rc=$?
        ;;
    snapshot)
        local name off r
        read -r _ name off <<<"$req"
        ans="copy of ${VM_BACKING[$name]:-?} with $name stopped, ack at byte $off"
        {
            kill -STOP "${VM_PID[$name]}" &&
                vm_wait_stopped "${VM_PID[$name]}" &&
                cp --sparse=always "${VM_BACKING[$name]}" "$VM_TMP/$name.snapshot"
            r=$?
            kill -CONT "${VM_PID[$name]}" && [ "$r" = 0 ] &&
                printf 'MUSER-SNAPSHOT-ACK\n' |
                dd of="${VM_BACKING[$name]}" bs=1 seek="$off" conv=notrunc status=none
        } 2>/dev/null || rc=$?
        ;;
    *)
        ans=$(vm_ctl "$what" "${req#"$what" }" 2>&1) || rc=$?
        ;;
    esac
    printf '%s => %s (rc %s)\n' "$req" "$ans" "$rc" >>"$VM_TMP/requests.log"
    vm_say "guest asked: $req -> $ans"
}

# vm_boot PROG ARGS [QEMU_ARGS...]: boot under this VMM (shim: with the
# shim preloaded into QEMU; native: never); returns run-guest.sh's status
# (0 iff the guest printed PASS).
# A device that fails mid-run can make QEMU print an error for every
# access (QEMU 11.1's client prints two lines per BAR access once the
# socket is gone: millions in a polling loop). This loop reads a line at a
# time, so past VM_MAX_LINES (default 20000) console lines it stops
# relaying them and serving guest requests, and only drains the rest
# (console.log still has it all).
vm_boot() {
    local prog=$1 args=$2 line rc preload="" n=0 max=${VM_MAX_LINES:-20000}
    shift 2
    if [ "$VM_VMM" = shim ]; then
        vm_need "$VM_SHIM"
        preload=$VM_SHIM
    fi
    : >"$VM_TMP/requests.log"
    set +e
    QEMU=$VM_QEMU QEMU_PRELOAD=$preload GUEST_LOG=$VM_TMP/console.log \
        "$VM_SRC/tests/vm/run-guest.sh" -T "${VM_TIMEOUT:-200}" -t "$prog" \
        ${args:+-a "$args"} "$VM_OUT" "$@" 2>&1 |
        while IFS= read -r line; do
            line=${line%$'\r'}
            n=$((n + 1))
            if [ "$n" -gt "$max" ]; then
                vm_say "more than $max console lines: the rest is not shown and guest" \
                    "requests are no longer served (VM_KEEP_TMP=1 keeps $VM_TMP/console.log)"
                grep -a '^run-guest:' | sed 's/^/[host] /'
                break
            fi
            case "$line" in
            HOST-REQUEST:*)
                printf '[guest] %s\n' "$line"
                vm_request "$line"
                ;;
            run-guest:*) printf '[host] %s\n' "$line" ;;
            *) printf '[guest] %s\n' "$line" ;;
            esac
        done
    rc=${PIPESTATUS[0]}
    set -e
    return "$rc"
}

# Host-side assertions (vm_check, vm_check_show); vm_result prints the
# verdict and exits.
VM_FAILS=0
vm_check() { # DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then
        vm_say "ok   $what"
    else
        vm_say "FAIL $what"
        VM_FAILS=$((VM_FAILS + 1))
    fi
}

# vm_check_show LINES DESCRIPTION COMMAND...: vm_check, running COMMAND
# once, then the last LINES lines of its output (stdout and stderr), tagged.
vm_check_show() {
    local n=$1 what=$2 out rc=0
    shift 2
    out=$("$@" 2>&1) || rc=$?
    if [ "$rc" = 0 ]; then
        vm_say "ok   $what"
    else
        vm_say "FAIL $what"
        VM_FAILS=$((VM_FAILS + 1))
    fi
    [ -z "$out" ] || printf '%s\n' "$out" | tail -n "$n" | sed 's/^/[host]      /'
}

vm_result() {
    if [ "$VM_FAILS" = 0 ]; then
        vm_say "PASS"
        exit 0
    fi
    vm_say "FAIL ($VM_FAILS host-side checks failed)"
    exit 1
}
