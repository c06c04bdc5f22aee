#!/usr/bin/env bash
# check.sh: the systemd tier (tests/check.sh's `systemd`).
#
# usage: tests/systemd/check.sh [BUILD]        (BUILD defaults to build)
#
# Boots each guest kernel of the VM tier once more, with Debian's systemd (the
# host's, 252) as PID 1 (tests/systemd/guest-init.sh), installs the project as the
# README says, with dpkg from the Debian packages that tests/deb-check.sh builds,
# and checks the installed units under the real service manager: socket
# activation, readiness and STATUS=, reload, the journal's fields, the sandbox of
# the running service, leases, hard removal and quarantine through it on real
# devices, restart after SIGKILL with a lease held, and `systemd-analyze security`
# on the live unit (scenarios: tests/systemd/guest-run.sh).
#
# Host side, nothing installed: udev (the host image has systemd but no udev) is
# fetched with `apt-get download` at the host's systemd version and unpacked into
# BUILD/systemd/udev; the packages are built with tests/deb-check.sh when
# BUILD/deb has none or they are older than the tree; kernels come from
# tests/vm/fetch-kernel.sh. Logs: BUILD/systemd/logs/<kernel>/.
#
# Ends with "N passed, M failed"; a tier that cannot run prints "SKIPPED: reason"
# and exits 0, or 1 when VM_REQUIRED=1 (CI).
# Environment: VM=0, VM_REQUIRED, VM_KERNELS (default "6.12 6.1"), VM_ONLY and
# VM_VERBOSE, as for tests/vm/check.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../vm/host-lib.sh
. "$here/../vm/host-lib.sh"

# host-lib's skips, under this tier's name.
vm_skip() {
	echo "************************************************************"
	echo "SKIPPED: systemd tier: $*"
	echo "************************************************************"
	if [ "${VM_REQUIRED:-0}" = 1 ]; then
		echo "VM_REQUIRED=1: a skipped systemd tier is a failure"
		exit 1
	fi
	exit 0
}

build=${1:-build}
mkdir -p "$build"
# Absolute: the guest finds the build, the udev tree and the packages at the
# host's paths (and tests/vm/guest-lib.sh loops on a relative one).
build=$(cd "$build" && pwd)
out=$build/systemd
mkdir -p "$out"
t0=$SECONDS

vm_preflight
[ -x /lib/systemd/systemd ] || vm_skip "the host has no systemd to boot the guest with (apt-get install systemd)"
sd_version=$(dpkg-query -W -f='${Version}' systemd 2>/dev/null) ||
	vm_skip "systemd is not a Debian package here"

# udev at the very version of the host's systemd, unpacked for the merged /usr.
make_udev_tree() {
	local tmp tree=$out/udev
	if [ -x /lib/systemd/systemd-udevd ]; then
		rm -rf "$tree" && mkdir -p "$tree" # the host's own udev is in the guest already
		return
	fi
	[ "$(cat "$tree.version" 2>/dev/null)" != "$sd_version" ] || return 0
	tmp=$(mktemp -d)
	if ! (cd "$tmp" && apt-get download -q "udev=$sd_version") >"$out/udev-download.log" 2>&1; then
		rm -rf "$tmp"
		vm_skip "cannot fetch udev $sd_version with apt-get download (is apt's mirror reachable?)"
	fi
	rm -rf "$tree" && mkdir -p "$tree/usr"
	dpkg-deb -x "$tmp"/udev_*.deb "$tmp/x"
	for d in lib bin sbin; do
		if [ -d "$tmp/x/$d" ]; then
			mkdir -p "$tree/usr/$d"
			cp -a "$tmp/x/$d/." "$tree/usr/$d/"
		fi
	done
	cp -a "$tmp/x/usr/." "$tree/usr/"
	[ ! -d "$tmp/x/etc/udev" ] || { mkdir -p "$tree/etc" && cp -a "$tmp/x/etc/udev" "$tree/etc/"; }
	# Not needed in the guest: the hardware database (10 MB), documentation, SysV script.
	rm -rf "$tree/usr/lib/udev/hwdb.d" "$tree/usr/share/doc" "$tree/usr/share/man"
	rm -rf "$tmp"
	echo "$sd_version" >"$tree.version"
	echo "systemd tier: udev $sd_version unpacked into $tree ($(du -sh "$tree" | cut -f1))"
}

# The packages the README installs, fresh from this tree.
deb_stale() {
	local deb
	deb=$(compgen -G "$build/deb/vfio-brokerd_*.deb" | head -1) || return 0
	[ -n "$deb" ] || return 0
	[ -n "$(find "$top" \( -path "$top/.git" -o -path "$top/build" -o -path "$top/tests" \
		-o -path "$build" \) -prune -o -type f -newer "$deb" -print -quit)" ]
}
make_packages() {
	deb_stale || return 0
	echo "systemd tier: building the Debian packages (tests/deb-check.sh; log: $out/deb-check.log)"
	bash "$top/tests/deb-check.sh" "$build" >"$out/deb-check.log" 2>&1 || true
	if grep -q '^SKIPPED: ' "$out/deb-check.log"; then
		vm_skip "cannot build the Debian packages: $(sed -n 's/^SKIPPED: //p' "$out/deb-check.log" | head -1)"
	fi
	if deb_stale; then
		tail -n 20 "$out/deb-check.log"
		echo "systemd tier: tests/deb-check.sh made no packages"
		echo "0 passed, 1 failed"
		exit 1
	fi
}

make_udev_tree
vm_build_probe "$build"
read -r -a series <<<"${VM_KERNELS:-6.12 6.1}"
kdirs=()
for s in "${series[@]}"; do
	vm_fetch "$build" "$s"
	kdirs+=("$VM_KDIR")
done
make_packages

opts=()
[ "${VM_VERBOSE:-0}" != 1 ] || opts+=(--verbose)
runner_opts=()
[ -z "${VM_ONLY:-}" ] || runner_opts+=(--only "$VM_ONLY")

# boot I SUMMARY: systemd as PID 1 on kdirs[I] (vm_boots runs the kernels two at a time).
boot() {
	local kver
	kver=$(cat "${kdirs[$1]}/kver")
	python3 "$here/../vm/vmrun.py" --init "$here/guest-init.sh" --kernel "${kdirs[$1]}" \
		--log-dir "$out/logs/$kver" --summary-file "$2" "${opts[@]}" \
		"$here/guest-run.sh" "$build" "${runner_opts[@]}"
}
vm_boots "systemd tier on Linux" boot

vm_report "systemd tier summary ($((SECONDS - t0)) s in all; logs in $out/logs/)"
