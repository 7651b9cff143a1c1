#!/bin/sh
# run-fuzz.sh HARNESS CORPUS SECONDS: fuzz for SECONDS, starting from the
# kept corpus, writing new inputs to a scratch dir (not the repository).
set -eu
harness=$1 corpus=$2 secs=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$corpus"
"$harness" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$scratch/" "$scratch" "$corpus" 2>&1 | tail -n 20
status=$?
for f in "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-*; do
	[ -e "$f" ] || continue
	echo "run-fuzz: finding $f kept as ./fuzz-finding-$(basename "$f")"
	cp "$f" "./fuzz-finding-$(basename "$f")"
	exit 1
done
exit $status
