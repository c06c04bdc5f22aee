# shellcheck shell=bash
# host-lib.sh: helpers shared by tests/vm/check.sh, tests/vm/demo.sh and
# kmod/tests/vm-kmod.sh (sourced; runs on the host).
#
#   vm_skip REASON       print the loud SKIPPED line; exit 0, or 1 when
#                        VM_REQUIRED=1 (CI), where a skip is a failure
#   vm_preflight         skip unless QEMU can run here (VM=0, no QEMU)
#   vm_build_probe BUILD compile tests/vm/vm_probe.c into BUILD/vm-probe
#   vm_fetch [--headers] BUILD SERIES  set VM_KDIR to the kernel directory
#                        (fetch-kernel.sh); skip when the kernel can neither
#                        be fetched (built, for 6.12-iommufd) nor found in
#                        the cache
#   vm_has_iommufd KDIR  true when that kernel has iommufd and the VFIO cdev
#   vm_build_iommufd_probe BUILD KDIR  compile tests/vm/iommufd_probe.c into
#                        BUILD/vm-iommufd-probe with KDIR's uapi headers
#   vm_fetch_qemu10 BUILD  fetch bookworm-backports' QEMU 10 (fetch-qemu10.sh)
#                        and tell the guest where it is, or why it is missing,
#                        in BUILD/vm/qemu10.guest

vm_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

vm_skip() {
	echo "************************************************************"
	echo "SKIPPED: VM tier: $*"
	echo "************************************************************"
	if [ "${VM_REQUIRED:-0}" = 1 ]; then
		echo "VM_REQUIRED=1: a skipped VM tier is a failure"
		exit 1
	fi
	exit 0
}

vm_preflight() {
	[ "${VM:-1}" != 0 ] || vm_skip "disabled with VM=0"
	command -v qemu-system-x86_64 >/dev/null ||
		vm_skip "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
	command -v python3 >/dev/null || vm_skip "python3 is not installed"
}

vm_build_probe() {
	local out=$1/vm-probe src=$vm_here/vm_probe.c
	if [ ! -x "$out" ] || [ "$src" -nt "$out" ]; then
		echo "vm: building $out"
		gcc -O2 -Wall -Wextra -o "$out" "$src"
	fi
}

# The default kernels of the VM and kmod tiers: Debian's two (the legacy
# group path only) and our own with iommufd (tests/vm/build-kernel.sh).
# shellcheck disable=SC2034 # read by check.sh and kmod/tests/vm-kmod.sh
VM_DEFAULT_KERNELS="6.12 6.1 6.12-iommufd"

vm_fetch() {
	local rc=0
	# shellcheck disable=SC2034 # the caller's result
	VM_KDIR=$(bash "$vm_here/fetch-kernel.sh" "$@") || rc=$?
	case $rc in
	0) ;;
	77)
		case ${*: -1} in
		*-iommufd) vm_skip "cannot build the ${*: -1} guest kernel: linux-source-6.12 is not installed and none is cached (scripts/deps.sh)" ;;
		*) vm_skip "cannot fetch the Debian ${*: -1} guest kernel (is apt's mirror reachable?)" ;;
		esac
		;;
	*) exit "$rc" ;;
	esac
}

vm_has_iommufd() {
	grep -qsx CONFIG_IOMMUFD=y "$1/config" && grep -qsx CONFIG_VFIO_DEVICE_CDEV=y "$1/config"
}

# Debian 12's <linux/vfio.h> is 6.1's and has no <linux/iommufd.h>: the
# probe takes the headers that the kernel's build installed.
vm_build_iommufd_probe() {
	local out=$1/vm-iommufd-probe src=$vm_here/iommufd_probe.c inc=$2/uapi/include
	if [ ! -x "$out" ] || [ "$src" -nt "$out" ] || [ "$inc" -nt "$out" ]; then
		echo "vm: building $out (uapi headers of $(cat "$2/kver"))"
		gcc -O2 -Wall -Wextra -I"$inc" -o "$out" "$src"
	fi
}

# vm_fetch_qemu10 BUILD: the cdev/iommufd scenarios' QEMU 10, cached outside
# the clone by fetch-qemu10.sh.  Never skips the tier: BUILD/vm/qemu10.guest
# gives the guest (vb_need_qemu10 in guest-lib.sh) the entry's env file, or
# the reason there is none and whether VM_REQUIRED=1 makes that a failure.
vm_fetch_qemu10() {
	local guest=$1/vm/qemu10.guest err entry rc=0 why=
	err=$(mktemp)
	entry=$(bash "$vm_here/fetch-qemu10.sh" "$1" 2>"$err") || rc=$?
	cat "$err" >&2
	case $rc in
	0) ;;
	77) why="no QEMU 10: $(tail -n 1 "$err" | sed 's/^fetch-qemu10: //')" ;;
	*) why="tests/vm/fetch-qemu10.sh failed (status $rc): $(tail -n 1 "$err" | sed 's/^fetch-qemu10: //')" ;;
	esac
	rm -f "$err"
	[ -z "$why" ] || echo "vm: $why; the QEMU 10 scenarios will skip (fail with VM_REQUIRED=1)"
	{
		printf 'VB_QEMU10_ENV=%q\n' "${entry:+$entry/env}"
		printf 'VB_QEMU10_WHY=%q\n' "$why"
		printf 'VB_REQUIRED=%q\n' "${VM_REQUIRED:-0}"
	} >"$guest"
}

# Per-kernel results of one tier, added up by vm_tally and printed by vm_report.
vm_total_pass=0 vm_total_fail=0 vm_total_skip=0
vm_lines=()

# vm_tally SUMMARY KVER: adds one boot's summary file ("pass fail skip boot secs",
# written by vmrun.py --summary-file); a boot that wrote none counts as one failure.
vm_tally() {
	local pass fail skip boot secs line
	read -r pass fail skip boot secs <"$1" || {
		pass=0 fail=1 skip=0 boot=- secs=-
	}
	vm_total_pass=$((vm_total_pass + pass))
	vm_total_fail=$((vm_total_fail + fail))
	vm_total_skip=$((vm_total_skip + skip))
	line="$2: $pass passed, $fail failed"
	[ "$skip" = 0 ] || line+=", $skip skipped"
	vm_lines+=("$line (boot $boot s, VM $secs s)")
}

# vm_boots TITLE BOOT: for each kernel of the caller's kdirs array, BOOT I
# SUMMARY boots kdirs[I] (vmrun.py --summary-file SUMMARY). Each guest has
# one vCPU, so up to VM_JOBS boot at once (default: the host's cores; one
# with VM_VERBOSE=1, which streams); each boot has its own temporary, log
# and tmpfs directories and they share only the read-only host root. Prints
# "=== TITLE KVER" and the boot's output in kernel order, and tallies each.
vm_boots() {
	local vb_title=$1 vb_boot=$2 vb_tmp vb_jobs vb_running=0 vb_i
	vb_tmp=$(mktemp -d)
	vb_jobs=${VM_JOBS:-$(nproc)}
	[ "${VM_VERBOSE:-0}" != 1 ] || vb_jobs=1
	if [ "$vb_jobs" -le 1 ] || [ "${#kdirs[@]}" -le 1 ]; then
		for vb_i in "${!kdirs[@]}"; do
			echo
			echo "=== $vb_title $(cat "${kdirs[$vb_i]}/kver")"
			: >"$vb_tmp/$vb_i.sum"
			"$vb_boot" "$vb_i" "$vb_tmp/$vb_i.sum" || true
			vm_tally "$vb_tmp/$vb_i.sum" "$(cat "${kdirs[$vb_i]}/kver")"
		done
	else
		echo "vm: $vb_jobs guests at once (VM_JOBS); each kernel's output follows when its boot ends"
		for vb_i in "${!kdirs[@]}"; do
			if [ "$vb_running" -ge "$vb_jobs" ]; then
				wait -n || true
				vb_running=$((vb_running - 1))
			fi
			: >"$vb_tmp/$vb_i.sum"
			"$vb_boot" "$vb_i" "$vb_tmp/$vb_i.sum" >"$vb_tmp/$vb_i.log" 2>&1 &
			vb_running=$((vb_running + 1))
		done
		wait || true
		for vb_i in "${!kdirs[@]}"; do
			echo
			echo "=== $vb_title $(cat "${kdirs[$vb_i]}/kver")"
			cat "$vb_tmp/$vb_i.log"
			vm_tally "$vb_tmp/$vb_i.sum" "$(cat "${kdirs[$vb_i]}/kver")"
		done
	fi
	rm -rf "$vb_tmp"
}

# vm_report TITLE: the per-kernel lines and the closing "N passed, M failed[, K skipped]";
# returns non-zero when anything failed.
vm_report() {
	local total
	echo
	echo "=== $1"
	printf '%s\n' "${vm_lines[@]}"
	total="$vm_total_pass passed, $vm_total_fail failed"
	[ "$vm_total_skip" = 0 ] || total+=", $vm_total_skip skipped"
	echo "$total"
	[ "$vm_total_fail" = 0 ]
}
