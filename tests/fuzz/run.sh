#!/usr/bin/env bash
# Builds and runs the libFuzzer harnesses of tests/fuzz/.
#
#   tests/fuzz/run.sh [SECONDS] [HARNESS...]     (default: 60 s each; request reply policy)
#
# For each harness: build build/fuzz/fuzz_HARNESS with clang (-fsanitize=fuzzer,address,
# undefined), replay every tests/fuzz/regressions/HARNESS-* file through it, then fuzz for
# SECONDS on a working copy of the seed corpus in build/fuzz/corpus/HARNESS (new inputs go
# there, never into tests/fuzz/corpus/). A harness passes when its regressions replay
# cleanly and it fuzzed for the whole time without a crash, leak, timeout or OOM.
# Prints one line per harness and a final "N passed, M failed"; exits 1 on any failure.
#
# Environment: CLANG (default clang-14, else clang), BUILD (default build), FUZZ_CFLAGS
# (extra compiler flags, e.g. -DFUZZ_REQUEST_JSON_ALLOW=STRICT_JSON_ALLOW_NUMBER),
# FUZZ_FRESH=1 (start from the seed corpus only, dropping what earlier runs found),
# FUZZ_ARGS (extra libFuzzer flags, e.g. "-jobs=2 -workers=2").
#
# Needs clang and libFuzzer (Debian bookworm: clang-14 libclang-rt-14-dev) and json-c
# (libjson-c-dev, pkg-config).
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
SRC=tests/fuzz
BUILD=${BUILD:-build}
OUT=$BUILD/fuzz
SECONDS_EACH=60
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
	SECONDS_EACH=$1
	shift
fi
HARNESSES=("$@")
[ ${#HARNESSES[@]} -eq 0 ] && HARNESSES=(request reply policy)

# Largest input worth trying: a request is at most VB_MAX_REQUEST_SIZE, a broker packet at most
# VB_MAX_PACKET_SIZE; policy files may be 1 MiB, but 64 KiB already holds hundreds of rules.
declare -A MAX_LEN=([request]=4096 [reply]=65536 [policy]=65536)
declare -A SOURCES=([request]="protocol/*.c common/*.c" [reply]="protocol/*.c common/*.c"
	[policy]="policy/*.c common/*.c")

if [ -z "${CLANG:-}" ]; then
	if command -v clang-14 >/dev/null; then CLANG=clang-14; else CLANG=clang; fi
fi
if ! command -v "$CLANG" >/dev/null; then
	echo "run.sh: $CLANG not found: apt-get install -y clang-14 libclang-rt-14-dev" >&2
	exit 1
fi
if ! JSON_FLAGS=$(pkg-config --cflags --libs json-c 2>/dev/null); then
	echo "run.sh: json-c not found: apt-get install -y libjson-c-dev pkg-config" >&2
	exit 1
fi

# shellcheck disable=SC2054 # the commas belong to -fsanitize=
CFLAGS=(-std=gnu11 -D_GNU_SOURCE -I. -g -O1 -fno-omit-frame-pointer
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
	-Wall -Wextra -Wno-unused-parameter)
# shellcheck disable=SC2206 # FUZZ_CFLAGS is a list of flags
CFLAGS+=(${FUZZ_CFLAGS:-})
# Abort on the first report of any sanitizer, so libFuzzer keeps the input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

mkdir -p "$OUT"
passed=0 failed=0

fail() {
	failed=$((failed + 1))
	echo "$1"
}

# Per-input limits: a hang or a 2 GiB allocation is a finding too.
LIBFUZZER_LIMITS=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024)

for h in "${HARNESSES[@]}"; do
	bin=$OUT/fuzz_$h
	log=$OUT/$h.log
	corpus=$OUT/corpus/$h
	artifacts=$OUT/artifacts/$h/
	if [ ! -f "$SRC/fuzz_$h.c" ]; then
		fail "fuzz_$h: FAILED: no such harness ($SRC/fuzz_$h.c)"
		continue
	fi

	# shellcheck disable=SC2086 # the source globs are meant to expand
	if ! "$CLANG" "${CFLAGS[@]}" -o "$bin" "$SRC/fuzz_$h.c" ${SOURCES[$h]} $JSON_FLAGS \
		>"$OUT/$h.build.log" 2>&1; then
		cat "$OUT/$h.build.log" >&2
		fail "fuzz_$h: FAILED: build failed (log: $OUT/$h.build.log; is libclang-rt-14-dev installed?)"
		continue
	fi

	# 1. Every committed regression input, each run once.
	regressions=()
	for f in tests/fuzz/regressions/"$h"-*; do
		[ -f "$f" ] && regressions+=("$f")
	done
	if [ ${#regressions[@]} -gt 0 ]; then
		bad=()
		: >"$OUT/$h.regressions.log"
		for f in "${regressions[@]}"; do
			if ! "$bin" "${LIBFUZZER_LIMITS[@]}" "$f" >"$OUT/$h.regression.log" 2>&1; then
				why=$(grep -m1 -E 'invariant broken|not strict JSON|ERROR: |runtime error' "$OUT/$h.regression.log")
				bad+=("$f: ${why:-crashed}")
			fi
			cat "$OUT/$h.regression.log" >>"$OUT/$h.regressions.log"
		done
		rm -f "$OUT/$h.regression.log"
		if [ ${#bad[@]} -gt 0 ]; then
			fail "fuzz_$h: FAILED: ${#bad[@]} of ${#regressions[@]} regression inputs still fail (log: $OUT/$h.regressions.log)"
			for b in "${bad[@]}"; do
				echo "    $b"
				echo "      reproduce: $bin ${b%%: *}"
			done
			continue
		fi
	fi

	# 2. Fuzz on a working copy of the seeds. Earlier runs' finds are kept unless FUZZ_FRESH=1.
	[ "${FUZZ_FRESH:-0}" = 1 ] && rm -rf "$corpus"
	mkdir -p "$corpus" "$artifacts"
	cp -p "$SRC/corpus/$h"/* "$corpus"/ 2>/dev/null
	dict=()
	[ -f "$SRC/$h.dict" ] && dict=(-dict="$SRC/$h.dict")
	# shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
	"$bin" "${LIBFUZZER_LIMITS[@]}" -max_total_time="$SECONDS_EACH" -max_len="${MAX_LEN[$h]:-65536}" \
		-print_final_stats=1 -artifact_prefix="$artifacts" "${dict[@]}" ${FUZZ_ARGS:-} \
		"$corpus" >"$log" 2>&1
	rc=$?

	done_line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1)
	cov=$(sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\).*/cov: \1 ft: \2/p' <<<"$done_line")
	corp=$(sed -n 's/.*corp: \([0-9]*\)\/.*/\1/p' <<<"$done_line")
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
	if [ $rc -eq 0 ] && grep -q '^Done [0-9]* runs in' "$log"; then
		passed=$((passed + 1))
		line="fuzz_$h: PASSED ${SECONDS_EACH}s, ${runs:-?} runs, ${eps:-?} exec/s, ${cov:-cov: ?}, corpus ${corp:-?}, peak rss ${rss:-?} MB"
		echo "$line"
	else
		artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		what=$(grep -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer): [^(]*|runtime error: .*|invariant broken: .*' "$log")
		fail "fuzz_$h: FAILED (exit $rc): ${what:-see log}; log: $log"
		if [ -n "$artifact" ]; then
			echo "    crash input: $artifact"
			echo "    reproduce:   $bin $artifact"
			echo "    minimise:    $bin -minimize_crash=1 -max_total_time=60 -exact_artifact_path=$OUT/$h-min $artifact"
		fi
		grep -E 'SUMMARY:|invariant broken' "$log" | head -n 3 | sed 's/^/    /'
	fi
done

echo
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
