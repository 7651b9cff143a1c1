#!/bin/sh
# test-conform.sh CASE CONFORM GPIO-SERVER DMA-SERVER BROKEN-SERVER [ARGS]
# muser-conform against muser's own samples (everything PASS or SKIP) and
# against broken-server, which breaks one rule per mode (the check that
# guards the rule must FAIL, name it, and the tool must exit 1).
# Exit 0 pass, 1 fail (meson's convention). No assertion here depends on
# how long anything took: the tool bounds itself, meson bounds the test.
set -eu
case_=$1 conform=$2 gpio=$3 dma=$4 broken=$5
shift 5

work=$(mktemp -d /tmp/muser-conform-test.XXXXXX)
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

# wait_sock: the server at $spid has created $work/sock
wait_sock() {
	i=0
	while [ ! -S "$work/sock" ]; do
		i=$((i + 1))
		[ $i -le 200 ] || fail "server did not start"
		kill -0 "$spid" 2>/dev/null || fail "server exited early"
		sleep 0.05
	done
}

start_sample() {
	"$1" --socket-path="$work/sock" --quiet >"$work/server.log" 2>&1 &
	spid=$!
	wait_sock
}

start_broken() {
	"$broken" "$1" "$work/sock" >"$work/server.log" 2>&1 &
	spid=$!
	wait_sock
}

# json CODE: run python CODE with d = the JSON document on stdin (python3
# is there: meson runs on it)
json() {
	python3 -c "import json, sys
d = json.load(sys.stdin)
$1"
}

# run ARGS...: muser-conform on $work/sock; output in $work/out, status in $rc
run() {
	rc=0
	"$conform" "$@" "$work/sock" >"$work/out" 2>"$work/err" || rc=$?
	cat "$work/out"
	cat "$work/err" >&2
}

# all_pass: exit 0, no FAIL or WARN row, a summary line
all_pass() {
	[ "$rc" = 0 ] || fail "muser-conform exited $rc"
	if grep -Eq '^(FAIL|WARN) ' "$work/out"; then
		fail "FAIL or WARN against a muser sample"
	fi
	grep -Eq '^[0-9]+ checks: [0-9]+ pass, 0 fail, 0 warn' "$work/out" ||
		fail "no clean summary line"
}

# must_fail CHECK: exit 1, CHECK's row FAILs with evidence, the rule follows
must_fail() {
	[ "$rc" = 1 ] || fail "muser-conform exited $rc, not 1"
	row=$(grep -E "^FAIL +$1 " "$work/out") || fail "$1 did not FAIL"
	ev=$(echo "$row" | sed -E 's/^FAIL +[^ ]+ +.{22}  //')
	[ -n "$ev" ] || fail "$1 FAILed without evidence"
	rule=$("$conform" --list --json --only="$1" | json 'print(d[0]["rule"])')
	[ -n "$rule" ] || fail "no rule for $1 in --list"
	grep -A1 -E "^FAIL +$1 " "$work/out" | grep -qF "rule: $rule" ||
		fail "$1's FAIL does not name its rule"
}

case $case_ in
gpio)
	start_sample "$gpio"
	run
	all_pass
	# formats: TAP and JSON say the same
	run --tap
	[ "$rc" = 0 ] || fail "--tap exited $rc"
	head -1 "$work/out" | grep -qx 'TAP version 13' || fail "no TAP header"
	plan=$(sed -n 2p "$work/out" | sed -n 's/^1\.\.\([0-9]*\)$/\1/p')
	[ -n "$plan" ] || fail "no TAP plan"
	[ "$(grep -Ec '^(ok|not ok) ' "$work/out")" = "$plan" ] ||
		fail "TAP plan $plan does not match the test lines"
	grep -q '^not ok' "$work/out" && fail "TAP: a test is not ok"
	run --json --only=conn,region
	[ "$rc" = 0 ] || fail "--json exited $rc"
	json 'assert d["summary"]["fail"] == 0 and len(d["checks"]) > 5
for k in d["checks"]:
    assert k["id"] and k["spec"] and k["rule"] and k["evidence"]
    assert k["result"] in ("PASS", "SKIP")' <"$work/out" ||
		fail "JSON document wrong"
	;;
dma)
	start_sample "$dma"
	# BAR0 registers of muser-dma-test: copy 4 KiB within the window
	run --dma-kick=BAR0:0x08:4:0x10000000,BAR0:0x0c:4:0,BAR0:0x10:4:0x10001000,BAR0:0x14:4:0,BAR0:0x18:4:4096,BAR0:0x1c:4:1,BAR0:0x24:4:1
	all_pass
	grep -Eq '^PASS +dma.serve ' "$work/out" || fail "dma.serve did not PASS"
	;;
nvme)
	# muser-nvme ($1) on a sparse 16 MiB backing file
	truncate -s 16M "$work/disk"
	"$1" --socket-path="$work/sock" --backing="$work/disk" --quiet \
		>"$work/server.log" 2>&1 &
	spid=$!
	wait_sock
	run
	all_pass
	;;
usage)
	"$conform" --help >"$work/out" || fail "--help exited $?"
	grep -q -- '--only' "$work/out" || fail "--help lacks --only"
	n=$("$conform" --list | wc -l)
	[ "$n" -gt 50 ] || fail "--list shows only $n checks"
	"$conform" --list --json | json 'assert len(d) > 50
for k in d:
    assert k["id"] and k["spec"] and k["rule"]' || fail "--list --json"
	[ "$("$conform" --list --only=frame.reply-id | wc -l)" = 1 ] ||
		fail "--only did not select one check"
	for bad in "--only=nosuch" "--timeout=0" "--timeout=x" "--bogus" \
		"--dma-kick=BAR0:0:3:1" ""; do
		rc=0
		# shellcheck disable=SC2086
		"$conform" $bad >/dev/null 2>&1 || rc=$?
		[ "$rc" = 2 ] || fail "'$bad' exited $rc, not 2"
	done
	# nobody listening: exit 1, every check accounted for, no hang
	rc=0
	"$conform" --timeout=200 "$work/none.sock" >"$work/out" || rc=$?
	cat "$work/out"
	[ "$rc" = 1 ] || fail "no server: exit $rc"
	grep -Eq '^FAIL +conn.connect ' "$work/out" || fail "conn.connect"
	;;
broken)
	mode=$1 check=$2
	shift 2
	start_broken "$mode"
	run --timeout=300 "$@"
	must_fail "$check"
	# the tool is still standing: its summary was printed
	grep -Eq '^[0-9]+ checks: ' "$work/out" || fail "no summary line"
	;;
baseline)
	# broken-server in mode none passes what the other modes break
	start_broken none
	run --timeout=300 --only=frame.reply-id,frame.sync-after-error,frame.no-reply,fd.leak-rejected,region.read-past-end,region.write-past-end,region.read
	all_pass
	;;
*)
	fail "unknown case $case_"
	;;
esac
exit 0
