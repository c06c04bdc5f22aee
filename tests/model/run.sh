#!/usr/bin/env bash
# The model tier: checks the lease life cycle model (lease.pml) exhaustively
# with spin, one verifier run per property, and prints "N passed, M failed".
#   tests/model/run.sh [WORKDIR]     (default: a temporary directory)
# Without spin it says "SKIPPED: reason" and exits 0, or 1 under
# VM_REQUIRED=1 (CI), where a skip is a failure; scripts/deps.sh installs spin.
# MAXCRASH=N (default 1) lets the broker be killed N times in a run;
# MODEL_FLAGS="-D..." passes definitions to spin.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
model=$here/lease.pml

if ! command -v spin >/dev/null || ! command -v gcc >/dev/null; then
	echo "SKIPPED: spin or gcc is not installed (scripts/deps.sh installs them)"
	[ "${VM_REQUIRED:-0}" = 1 ] && { echo "VM_REQUIRED=1: a skipped model tier is a failure"; exit 1; }
	exit 0
fi

work=${1:-}
if [ -z "$work" ]; then
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
cd "$work" || exit 1
cp "$model" lease.pml

# Every property, and how pan checks it: safety ones as never claims,
# removal_ends (a liveness property) under weak fairness (-f): an event that
# stays pending is handled eventually, as sd-event does.
checks=(
	"no_double_grant|-a"
	"no_lost_lease|-a"
	"restart_loses_nothing|-a"
	"removal_ends|-a -f"
)

echo "model: $(spin -V | head -1); MAXCRASH=${MAXCRASH:-1} ${MODEL_FLAGS:-}"
# shellcheck disable=SC2086
if ! spin -DMAXCRASH="${MAXCRASH:-1}" ${MODEL_FLAGS:-} -a lease.pml >spin.log 2>&1; then
	cat spin.log
	echo "0 passed, 1 failed"
	exit 1
fi
# NFAIR: weak fairness over the model's 13 processes. -DVECTORSZ for the state vector.
if ! gcc -O2 -DNFAIR=4 -DVECTORSZ=2048 -o pan pan.c >gcc.log 2>&1; then
	cat gcc.log
	echo "0 passed, 1 failed"
	exit 1
fi

pass=0 fail=0
for c in "${checks[@]}"; do
	name=${c%%|*} flags=${c#*|}
	rm -f lease.pml.trail
	start=$(date +%s%N)
	# -m: the depth bound, far above the deepest path (about 25,000 steps).
	# shellcheck disable=SC2086
	./pan $flags -m1000000 -N "$name" >"$name.log" 2>&1
	ms=$((($(date +%s%N) - start) / 1000000))
	states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$name.log" | head -1)
	errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$name.log" | head -1)
	if [ "${errors:-x}" = 0 ] && ! grep -q "Search not completed\|max search depth too small" "$name.log"; then
		printf 'PASS %-24s %s states, %d ms\n' "$name" "${states:-?}" "$ms"
		pass=$((pass + 1))
	else
		printf 'FAIL %-24s %s states, %d ms\n' "$name" "${states:-?}" "$ms"
		grep -E "violated|acceptance cycle|error|Search not completed" "$name.log" | head -3 | sed 's/^/    /'
		if [ -f lease.pml.trail ]; then
			# The shortest story is not guaranteed; this is the first one found.
			echo "    counterexample (broker, client and admin steps; spin -t -p for all):"
			# shellcheck disable=SC2086
			spin -DMAXCRASH="${MAXCRASH:-1}" ${MODEL_FLAGS:-} -t -p -k lease.pml.trail lease.pml 2>/dev/null |
				grep -E '^ *[0-9]+:\s+proc' | grep -v 'valid end state' |
				grep -vE '\[\(?(g|gi|gj|pi|ci|si|ki|moved0) = |\[else\]|\[\(1\)\]|goto|\[break\]|<=\(|\[f[shc]\[si\]|(ls|lh|lc|pend)\[ci\]|\(1\)\]' |
				sed 's/lease.pml://' | tail -60 | sed 's/^/      /'
			cp lease.pml.trail "$name.trail"
		fi
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
