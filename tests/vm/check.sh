#!/usr/bin/env bash
# check.sh: the VM test tier (`make check-vm`).
#
# usage: tests/vm/check.sh [BUILD]        (BUILD defaults to build)
#
# Boots each guest kernel once under QEMU (tests/vm/vmrun.py) and runs every
# scenario of tests/vm/scenarios/ in that one boot: the kernel-only ones
# (topology, hot-plug, vfio-pci binding, the VFIO path as root) and the
# broker ones (vfio-brokerd, vfioctl and the unprivileged vm-probe client).
# Kernels: the newest Debian 6.12 (bookworm-security), then the newest 6.1,
# fetched into BUILD/vm/ by tests/vm/fetch-kernel.sh on the first run, then
# 6.12-iommufd, our own 6.12 with IOMMUFD and the VFIO device cdev, built
# from linux-source-6.12 by tests/vm/build-kernel.sh (about 10 minutes on 2
# cores the first time, then cached in /var/cache/vfio-broker/kernels).  On
# a kernel with iommufd the scenarios of tests/vm/scenarios-iommufd/ run
# too, in order among the others (they fail there, never skip, when the
# modern path is missing); for them, Debian bookworm-backports' QEMU 10 is
# fetched first (tests/vm/fetch-qemu10.sh, cached in
# /var/cache/vfio-broker/qemu10-<version>; without it the QEMU 10 scenario
# skips, or fails with VM_REQUIRED=1).  The outer machine is always the
# host's own QEMU 7.2.
#
# Prints PASS/FAIL per scenario, a summary per kernel, and ends with the
# line "N passed, M failed"; exits non-zero if anything failed.  Logs are in
# BUILD/vm/logs/<kernel>/.
#
# Environment:
#   VM=0            skip the tier (loudly)
#   VM_REQUIRED=1   a skip (no QEMU, kernel not fetchable, VM=0) is a failure (CI)
#   VM_KERNELS      kernel series to run, default "6.12 6.1 6.12-iommufd"
#                   (or exact Debian releases)
#   VM_KERNEL_CACHE where build-kernel.sh caches 6.12-iommufd
#   VM_QEMU_CACHE   where fetch-qemu10.sh caches QEMU 10 (default
#                   /var/cache/vfio-broker)
#   VM_ONLY         regex: run only the matching scenarios, e.g. '^(10|25)-'
#   VM_VERBOSE=1    stream the guest console and every scenario's output (one guest at a time)
#   VM_JOBS         guests at once (default: the host's cores)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=host-lib.sh
. "$here/host-lib.sh"

build=${1:-build}
mkdir -p "$build"
build=$(cd "$build" && pwd)
t0=$SECONDS

vm_preflight
vm_build_probe "$build"
read -r -a series <<<"${VM_KERNELS:-$VM_DEFAULT_KERNELS}"
kdirs=()
qemu10=0
for s in "${series[@]}"; do
	vm_fetch "$build" "$s"
	kdirs+=("$VM_KDIR")
	if vm_has_iommufd "$VM_KDIR"; then
		vm_build_iommufd_probe "$build" "$VM_KDIR"
		qemu10=1
	fi
done
[ "$qemu10" = 0 ] || vm_fetch_qemu10 "$build"

# scenarios KDIR: the scenario files for that kernel, ordered by name.
scenarios() {
	local dirs=("$here/scenarios") d f
	! vm_has_iommufd "$1" || dirs+=("$here/scenarios-iommufd")
	for d in "${dirs[@]}"; do
		for f in "$d"/[0-9]*.sh; do
			if [ -e "$f" ]; then
				printf '%s\t%s\n' "${f##*/}" "$f"
			fi
		done
	done | sort | cut -f2
}

opts=()
[ "${VM_VERBOSE:-0}" != 1 ] || opts+=(--verbose)
runner_opts=()
[ -z "${VM_ONLY:-}" ] || runner_opts+=(--only "$VM_ONLY")

# boot I SUMMARY: kdirs[I] runs its scenarios (vm_boots runs the kernels two at a time).
boot() {
	local files
	mapfile -t files < <(scenarios "${kdirs[$1]}")
	python3 "$here/vmrun.py" --kernel "${kdirs[$1]}" --summary-file "$2" "${opts[@]}" \
		"$here/guest-run.sh" "$build" "${runner_opts[@]}" "${files[@]}"
}
vm_boots "VM tier on Linux" boot

vm_report "VM tier summary ($((SECONDS - t0)) s in all; logs in $build/vm/logs/)"
