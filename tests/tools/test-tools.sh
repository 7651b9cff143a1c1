#!/bin/sh
# test-tools.sh CASE PROBE BENCH GPIO-SERVER DMA-SERVER [LSPCI]
# muser-probe and muser-bench against the sample servers, over real
# sockets. Exit 0 pass, 1 fail, 77 skip (meson's convention).
set -eu
case_=$1 probe=$2 bench=$3 gpio=$4 dma=$5 lspci=${6:-}

work=$(mktemp -d /tmp/muser-tools-test.XXXXXX)
spid=""
cleanup() {
	if [ -n "$spid" ]; then
		kill "$spid" 2>/dev/null || true
		wait "$spid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# start SERVER: runs it on $work/sock, waits for the socket
start() {
	"$1" --socket-path="$work/sock" --quiet >"$work/server.log" 2>&1 &
	spid=$!
	i=0
	while [ ! -S "$work/sock" ]; do
		i=$((i + 1))
		[ $i -le 100 ] || fail "server $1 did not start"
		kill -0 "$spid" 2>/dev/null || fail "server $1 exited"
		sleep 0.05
	done
}

# expect FILE PATTERN...: every fixed string must occur in FILE
expect() {
	f=$1
	shift
	for p in "$@"; do
		grep -qF -- "$p" "$f" || { cat "$f" >&2; fail "'$p' not in $f"; }
	done
}

case $case_ in
probe-gpio)
	start "$gpio"
	"$probe" "$work/sock" >"$work/out" || fail "probe exit $?"
	cat "$work/out"
	expect "$work/out" "Protocol: vfio-user" "[494f:0dc8]" \
		"Subsystem:" "BAR2" "INTx" "Region 2: I/O ports" \
		"Interrupt: pin A"
	# registers, for scripting
	"$probe" "$work/sock" --write BAR2:0:1:0x5a --read BAR2:0:1 \
		--read CONFIG:0:4 >"$work/rw" || fail "probe --read/--write"
	[ "$(sed -n 1p "$work/rw")" = 0x5a ] || fail "outputs read $(cat "$work/rw")"
	[ "$(sed -n 2p "$work/rw")" = 0x0dc8494f ] || fail "IDs read $(cat "$work/rw")"
	if "$probe" "$work/sock" --read BAR2:0x100:4 2>"$work/err"; then
		fail "read beyond BAR2 succeeded"
	fi
	expect "$work/err" "muser-probe: read BAR2"
	;;
probe-dma)
	start "$dma"
	"$probe" "$work/sock" --size-bars >"$work/out" || fail "probe exit $?"
	cat "$work/out"
	expect "$work/out" "[7e57:0001]" "Power Management version" \
		"MSI: Enable- Count=1/1 Maskable+ 64bit+" \
		"MSI-X: Enable- Count=4" "Vector table: BAR=2 offset=00000000" \
		"Express (v2) Endpoint" "FLReset+" \
		"Device Serial Number 6d-75-73-65-72-00-00-01" \
		"sparse mmap 0x1000-0xffff" "(64-bit, prefetchable)" \
		"BAR4   0x10000"
	;;
dump-lspci)
	if [ -z "$lspci" ] || [ ! -x "$lspci" ]; then
		echo "no lspci"
		exit 77
	fi
	for s in "$gpio" "$dma"; do
		start "$s"
		"$probe" "$work/sock" --dump >"$work/dump" || fail "--dump"
		kill "$spid"
		wait "$spid" || true
		spid=""
		rm -f "$work/sock"
		head -n 3 "$work/dump"
		"$lspci" -nn -vvv -F "$work/dump" >"$work/lspci" 2>"$work/err" ||
			fail "lspci -F: $(cat "$work/err")"
		cat "$work/lspci"
		if [ "$s" = "$gpio" ]; then
			expect "$work/lspci" "[494f:0dc8]" "Interrupt: pin A"
			[ "$(grep -c '^[0-9a-f]*: ' "$work/dump")" = 16 ] ||
				fail "gpio dump is not 256 bytes"
		else
			expect "$work/lspci" "[7e57:0001]" \
				"Power Management version 3" \
				"MSI: Enable- Count=1/1 Maskable+ 64bit+" \
				"MSI-X: Enable- Count=4 Masked-" \
				"Express (v2) Endpoint" \
				"Device Serial Number 6d-75-73-65-72-00-00-01"
			[ "$(grep -c '^[0-9a-f]*: ' "$work/dump")" = 256 ] ||
				fail "dma dump is not 4096 bytes"
		fi
	done
	;;
probe-dead)
	# no file, then a socket file nobody listens on
	if "$probe" "$work/none" 2>"$work/err"; then fail "exit 0"; fi
	expect "$work/err" "cannot connect to $work/none"
	start "$gpio"
	kill -KILL "$spid" # leaves a stale socket file
	wait "$spid" || true
	spid=""
	if [ -S "$work/sock" ]; then
		if "$probe" "$work/sock" 2>"$work/err"; then fail "exit 0"; fi
		expect "$work/err" "cannot connect"
	fi
	# usage errors exit 2
	set +e
	"$probe" 2>/dev/null
	[ $? = 2 ] || fail "no argument: not exit 2"
	"$probe" "$work/sock" --read BAR9:0 2>/dev/null
	[ $? = 2 ] || fail "bad --read: not exit 2"
	set -e
	;;
probe-hostile)
	# config spaces with looping and out-of-range capability chains
	cfg=$work/cfg
	mk() { # mk SIZE then patch OFFSET OCTAL-BYTES...
		head -c "$1" /dev/zero >"$cfg"
	}
	# shellcheck disable=SC2059 # $2 holds octal escapes
	patch() { printf "$2" | dd of="$cfg" bs=1 seek=$(($1)) conv=notrunc 2>/dev/null; }
	mk 256
	patch 0x06 '\020'          # status: capabilities list
	patch 0x34 '\100'          # first cap at 0x40
	patch 0x40 '\005\100\200'  # MSI, next = itself
	"$probe" --config-file "$cfg" >"$work/out" || fail "self loop"
	expect "$work/out" "<chain looped>"
	patch 0x41 '\374'          # next = 0xfc: body past 256 bytes
	patch 0xfc '\020\000\002\000' # Express cap at the very end
	"$probe" --config-file "$cfg" >"$work/out" || fail "cap at 0xfc"
	expect "$work/out" "<truncated"
	patch 0x34 '\020'          # pointer into the header
	"$probe" --config-file "$cfg" >"$work/out" || fail "cap in header"
	expect "$work/out" "<chain broken>"
	mk 4096
	patch 0x100 '\003\000\001\020' # DSN v1, next = 0x100: loop
	"$probe" --config-file "$cfg" >"$work/out" || fail "ext loop"
	expect "$work/out" "<chain looped>"
	patch 0x100 '\013\000\361\377' # VSEC, next = 0xffc
	patch 0xffc '\003\000\001\000' # DSN body past 4096 bytes
	"$probe" --config-file "$cfg" >"$work/out" || fail "ext at 0xffc"
	"$probe" --config-file "$cfg" --dump >"$work/out" || fail "dump"
	head -c 100 /dev/urandom >"$cfg"
	"$probe" --config-file "$cfg" >/dev/null || fail "random"
	head -c 10 /dev/urandom >"$cfg"
	"$probe" --config-file "$cfg" >"$work/out" || fail "short"
	expect "$work/out" "too short"
	;;
bench)
	"$bench" --spawn "$dma" --rounds 1 --seconds 0.2 >"$work/out" ||
		fail "bench exit $?"
	cat "$work/out"
	expect "$work/out" "(floor)" "REGION_READ 4 B" "REGION_WRITE 4 B" \
		"posted REGION_WRITE" "msg DMA fill 1M" "mmap DMA copy 8M" \
		"mmap DMA copy 64M"
	n=$(grep -c ' ratio [0-9.]*x ' "$work/out" || true)
	[ "$n" -ge 19 ] || fail "only $n ratio lines"
	if grep -q "skipped\|note:" "$work/out"; then fail "a test was skipped"; fi
	# against a server we didn't start, JSON
	start "$gpio"
	"$bench" "$work/sock" --rounds 1 --seconds 0.05 --json >"$work/json" ||
		fail "bench --json exit $?"
	expect "$work/json" '"name": "REGION_READ 4 B BAR2+0x4"' '"ratio": '
	if command -v python3 >/dev/null; then
		python3 -c 'import json,sys; json.load(open(sys.argv[1]))' \
			"$work/json" || fail "bad JSON"
	fi
	;;
*)
	fail "unknown case $case_"
	;;
esac
echo "PASS: $case_"
