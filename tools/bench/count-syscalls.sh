#!/bin/sh
# count-syscalls.sh - server-side cost of one synchronous 4-byte
# REGION_READ: system calls (strace -c -f) and user-space instructions
# (valgrind --tool=callgrind), each counted over two session lengths and
# differenced, so start-up, negotiation and shutdown cancel out.
#
#   count-syscalls.sh [--poll] [--keep DIR] SERVER BENCH [SHORT LONG]
#                     [-- BENCH-OPTIONS]
#
# SERVER is a device program that accepts --socket-path=PATH; the muser-*
# samples also get --quiet and --blocking, so what is counted is
# libmuser's blocking serve mode, mu_dev_run() (--poll: the samples' own
# poll loop with mu_dev_process() instead). BENCH is muser-bench, which
# does exactly N reads with --count-reads N. SHORT and LONG default to
# 10000 and 20000. --keep DIR keeps the strace and callgrind outputs there
# (callgrind_annotate DIR/out-callgrind-LONG shows where the instructions
# go). Prints syscalls/request and instructions/request; exit 1 on
# failure.
set -eu

usage() {
	echo "usage: $0 [--poll] [--keep DIR] SERVER BENCH [SHORT LONG]" \
		"[-- BENCH-OPTIONS]" >&2
	exit 2
}
mode=--blocking
keep=""
while [ $# -gt 0 ]; do
	case "$1" in
	--poll) mode="" ; shift ;;
	--keep) [ $# -ge 2 ] || usage; keep=$2; shift 2 ;;
	--) shift; break ;;
	-*) usage ;;
	*) break ;;
	esac
done
[ $# -ge 2 ] || usage
server=$1
bench=$2
shift 2
short=10000
long=20000
if [ $# -ge 2 ] && [ "$1" != "--" ]; then
	short=$1
	long=$2
	shift 2
fi
[ "${1:-}" = "--" ] && shift
extra="$*" # bench options: split on blanks
[ "$long" -gt "$short" ] || usage
for t in strace valgrind; do
	command -v $t >/dev/null || { echo "$0: $t not installed" >&2; exit 1; }
done

quiet=""
case "$(basename "$server")" in muser-*) quiet="--quiet $mode" ;; esac
work=$(mktemp -d /tmp/muser-count.XXXXXX)
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
	if [ -n "$keep" ] && [ -d "$work" ]; then
		mkdir -p "$keep"
		cp "$work"/out-* "$keep"/ 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

wait_socket() {
	i=0
	while [ ! -S "$1" ]; do
		i=$((i + 1))
		[ $i -le 600 ] || { echo "$0: server did not start" >&2; exit 1; }
		sleep 0.1
	done
}

# The server's own pid (a child of strace; valgrind runs in place).
server_pid() {
	if [ "$1" = strace ]; then
		i=0
		while :; do
			p=$(ps -o pid= --ppid "$pid" | head -n1 | tr -d ' ')
			[ -n "$p" ] && { echo "$p"; return; }
			i=$((i + 1))
			[ $i -le 100 ] || return 1
			sleep 0.1
		done
	else
		echo "$pid"
	fi
}

# run TOOL N -> prints the count for a session of N reads
run() {
	sock=$work/sock-$1-$2
	out=$work/out-$1-$2
	if [ "$1" = strace ]; then
		# shellcheck disable=SC2086
		strace -f -c -o "$out" "$server" --socket-path="$sock" $quiet \
			>/dev/null 2>"$work/err" &
	else
		# shellcheck disable=SC2086
		valgrind -q --tool=callgrind --callgrind-out-file="$out" \
			"$server" --socket-path="$sock" $quiet \
			>/dev/null 2>"$work/err" &
	fi
	pid=$!
	wait_socket "$sock"
	# shellcheck disable=SC2086
	"$bench" "$sock" --timeout 60000 --count-reads "$2" $extra >/dev/null
	kill -TERM "$(server_pid "$1")"
	wait "$pid" || true
	pid=""
	if [ "$1" = strace ]; then
		awk '$NF == "total" { print $4 }' "$out"
	else
		awk '/^(summary|totals):/ { print $2; exit }' "$out"
	fi
}

for tool in strace callgrind; do
	a=$(run $tool "$short")
	b=$(run $tool "$long")
	if [ -z "$a" ] || [ -z "$b" ]; then
		echo "$0: no $tool count" >&2
		cat "$work/err" >&2
		exit 1
	fi
	what=syscalls
	[ $tool = callgrind ] && what=instructions
	awk -v a="$a" -v b="$b" -v s="$short" -v l="$long" -v t="$tool" -v w="$what" 'BEGIN {
		printf "%-9s %d reads: %d, %d reads: %d -> %.2f %s/request\n",
		       t, s, a, l, b, (b - a) / (l - s), w }'
done
