#!/usr/bin/env bash
# Runs every test tier this machine can run and prints one summary.
#   tests/check.sh BUILD [TIER...]   (default: every tier, format first)
# Each tier's own output is shown as it runs; a tier that cannot run here
# says SKIPPED and why (a skipped tier is never counted as passed).
set -uo pipefail

BUILD=${1:-build}
shift || true
TIERS=("$@")
[ ${#TIERS[@]} -eq 0 ] && TIERS=(format unit install integration model sanitize valgrind fuzz bench vm kmod deb systemd)
export VB_BUILD=$BUILD

total_pass=0 total_fail=0 total_skip=0
summary=()

# Adds the counts of a Check runner's output ("NN%: Checks: N, Failures: F, Errors: E").
count_check_output() {
	local log=$1 tier=$2 checks fails errs
	checks=0 fails=0 errs=0
	while read -r c f e; do
		checks=$((checks + c)) fails=$((fails + f)) errs=$((errs + e))
	done < <(sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' "$log")
	tier_pass=$((checks - fails - errs))
	tier_fail=$((fails + errs))
}

# make check-format: fails naming the files clang-format would change.
run_format() {
	echo "== format: clang-format over the tree's C files (kmod/ excluded)"
	if make --no-print-directory -s check-format; then
		tier_pass=1
	else
		tier_fail=1
	fi
}

run_unit() {
	local log rc=0
	log=$(mktemp)
	for t in "$BUILD"/tests/test_*; do
		[ -x "$t" ] || continue
		echo "== unit: $(basename "$t")"
		"$t" 2>&1 | tee -a "$log" || rc=1
	done
	count_check_output "$log" unit
	rm -f "$log"
	[ "$rc" -ne 0 ] && [ "$tier_fail" -eq 0 ] && tier_fail=1
}

run_install() {
	local log rc=0
	log=$(mktemp)
	echo "== install: make install DESTDIR, and a program built against the result"
	bash tests/install-check.sh "$BUILD" 2>&1 | tee "$log" || rc=1
	read -r tier_pass tier_fail < <(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' "$log" | tail -1)
	tier_pass=${tier_pass:-0} tier_fail=${tier_fail:-0}
	rm -f "$log"
	[ "$rc" -ne 0 ] && [ "$tier_fail" -eq 0 ] && tier_fail=1
}

run_fuzz() {
	local log rc=0
	log=$(mktemp)
	echo "== fuzz: libFuzzer on the request decoder, reply decoder and policy parser (${FUZZ_SECONDS:-20} s each)"
	bash tests/fuzz/run.sh "${FUZZ_SECONDS:-20}" 2>&1 | tee "$log" || rc=1
	read -r tier_pass tier_fail < <(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' "$log" | tail -1)
	tier_pass=${tier_pass:-0} tier_fail=${tier_fail:-0}
	rm -f "$log"
	[ "$rc" -ne 0 ] && [ "$tier_fail" -eq 0 ] && tier_fail=1
}

# Unit and integration tests again, built with ASan + UBSan (LeakSanitizer
# included: a leak makes the broker exit non-zero, which the harness fails on).
run_sanitize() {
	local log rc=0 sbuild="$BUILD/asan"
	if [ "$(id -u)" != 0 ]; then
		tier_skip="needs root (the integration half)"
		return
	fi
	log=$(mktemp)
	echo "== sanitize: unit + integration built with -fsanitize=address,undefined"
	if ! make --no-print-directory -s BUILD="$sbuild" SANITIZE=1 all tests >"$log" 2>&1; then
		cat "$log"
		tier_fail=1
		rm -f "$log"
		return
	fi
	: >"$log"
	for t in "$sbuild"/tests/test_*; do
		UBSAN_OPTIONS=halt_on_error=1 "$t" 2>&1 | tee -a "$log" || rc=1
	done
	UBSAN_OPTIONS=halt_on_error=1 VB_BUILD="$sbuild" "$sbuild"/tests/integration 2>&1 | tee -a "$log" || rc=1
	count_check_output "$log" sanitize
	rm -f "$log"
	[ "$rc" -ne 0 ] && [ "$tier_fail" -eq 0 ] && tier_fail=1
}

# The integration suite with the broker under valgrind memcheck: every test
# ends with a clean shutdown, where an error or a definite leak makes the
# broker exit 99 and the test fail.
run_valgrind() {
	local log rc=0
	if [ "$(id -u)" != 0 ]; then
		tier_skip="needs root (starts vfio-brokerd, setuid test clients)"
		return
	fi
	log=$(mktemp)
	echo "== valgrind: the integration suite with vfio-brokerd under memcheck"
	VB_VALGRIND=1 "$BUILD"/tests/integration 2>&1 | tee "$log" || rc=1
	count_check_output "$log" valgrind
	rm -f "$log"
	[ "$rc" -ne 0 ] && [ "$tier_fail" -eq 0 ] && tier_fail=1
}

# The benchmark's smoke mode: every scenario with tiny counts, so it cannot
# rot. Its figures are printed, never judged here; only errors fail it.
run_bench() {
	if [ "$(id -u)" != 0 ]; then
		tier_skip="needs root (private mount namespace, setuid clients)"
		return
	fi
	echo "== bench (smoke): every scenario runs; timings are not judged here"
	if BENCH_SMOKE=1 bash tests/bench/run.sh "$BUILD"; then
		tier_pass=1
	else
		tier_fail=1
	fi
}

run_integration() {
	local log rc=0
	if [ "$(id -u)" != 0 ]; then
		tier_skip="needs root (starts vfio-brokerd, setuid test clients)"
		return
	fi
	log=$(mktemp)
	echo "== integration: real broker on a simulated tree, unprivileged clients"
	"$BUILD"/tests/integration 2>&1 | tee "$log" || rc=1
	count_check_output "$log" integration
	rm -f "$log"
	[ "$rc" -ne 0 ] && [ "$tier_fail" -eq 0 ] && tier_fail=1
}

# The lease life cycle model (tests/model/lease.pml) checked with spin: one
# verifier run per property. Without spin it is SKIPPED, and a failure in CI
# (VM_REQUIRED=1, where run.sh exits 1 on a skip).
run_model() {
	echo "== model: spin on the lease/merge/removal/restart model"
	run_counted_tier skip-only-if-ok bash tests/model/run.sh "$BUILD/model"
}

# Runs "$@", whose output ends with "N passed, M failed[, K skipped]" or says
# "SKIPPED: reason", and sets tier_pass, tier_fail, tier_skip and tier_note
# from it; a non-zero exit with no failure counted is one failure. With the first
# argument skip-only-if-ok a SKIPPED run counts as skipped only if it exits 0 (the model
# tier exits 1 on a skip in CI); with any-skip it always does.
run_counted_tier() {
	local skip_rule=$1 log rc=0
	shift
	log=$(mktemp)
	"$@" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
	if grep -q '^SKIPPED: ' "$log" && { [ "$skip_rule" = any-skip ] || [ "$rc" -eq 0 ]; }; then
		tier_skip=$(sed -n 's/^SKIPPED: //p' "$log" | head -1)
	else
		read -r tier_pass tier_fail < <(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' "$log" | tail -1)
		tier_pass=${tier_pass:-0} tier_fail=${tier_fail:-0}
		tier_note=$(sed -n 's/^[0-9]* passed, [0-9]* failed, \([0-9]* skipped\).*/\1/p' "$log" | tail -1)
		[ "$rc" -ne 0 ] && [ "$tier_fail" -eq 0 ] && tier_fail=1
	fi
	rm -f "$log"
}

# A QEMU tier: runs SCRIPT BUILD, which ends with "N passed, M failed[, K skipped]"
# or says "SKIPPED: reason".
run_qemu_tier() {
	run_counted_tier any-skip bash "$1" "$BUILD"
}

# The broker, vfioctl and an unprivileged VFIO client against real VFIO groups.
run_vm() {
	run_qemu_tier tests/vm/check.sh
}

# vfio_quarantine built against each guest kernel's headers, in its own boot.
run_kmod() {
	run_qemu_tier kmod/tests/vm-kmod.sh
}

# The Debian packages: built from a copy of the tree, lintian, their contents, an
# unpack into a throwaway root (tests/deb-check.sh). Last, so that DKMS can build
# the module against the kernel headers the vm and kmod tiers fetched.
run_deb() {
	echo "== deb: dpkg-buildpackage, lintian, the packages' contents, dpkg --unpack into a throwaway root"
	run_counted_tier any-skip bash tests/deb-check.sh "$BUILD"
}

# The installed units under the real service manager: Debian's systemd as PID 1 in the
# VM, the deb tier's packages installed with dpkg, socket activation, the sandbox, the
# journal, restart (tests/systemd/check.sh). After deb, whose packages it installs.
run_systemd() {
	run_qemu_tier tests/systemd/check.sh
}

for tier in "${TIERS[@]}"; do
	tier_pass=0 tier_fail=0 tier_skip='' tier_note=''
	start=$(date +%s)
	"run_$tier"
	secs=$(( $(date +%s) - start ))
	if [ -n "$tier_skip" ]; then
		summary+=("$tier: SKIPPED ($tier_skip)")
		total_skip=$((total_skip + 1))
	else
		summary+=("$tier: $tier_pass passed, $tier_fail failed${tier_note:+, $tier_note (see above)} (${secs}s)")
	fi
	total_pass=$((total_pass + tier_pass)) total_fail=$((total_fail + tier_fail))
done

echo
echo "== summary"
printf '  %s\n' "${summary[@]}"
if [ $total_skip -gt 0 ]; then
	echo "check: $total_pass passed, $total_fail failed, $total_skip skipped"
else
	echo "check: $total_pass passed, $total_fail failed"
fi
[ $total_fail -eq 0 ]
