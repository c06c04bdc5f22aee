#!/usr/bin/env bash
# vm-kmod.sh: build vfio_quarantine.ko for each guest kernel, build vqctl,
# and run kmod/tests/guest-kmod.sh in the test VM (tests/vm/vmrun.py).
#
# usage: kmod/tests/vm-kmod.sh [BUILD]          (BUILD defaults to build)
#
# Environment (as tests/vm/check.sh):
#   VM_KERNELS      kernel series, default "6.12 6.1 6.12-iommufd" (or exact
#                   Debian releases); 6.12-iommufd is the tier's own kernel
#                   (tests/vm/build-kernel.sh), whose kbuild tree is cached
#                   with it
#   VM=0            skip (loudly); VM_REQUIRED=1 makes any skip a failure
#   VM_VERBOSE=1    stream the guest console and the tests' output
#
# Also builds the project into BUILD (the broker test runs vfio-brokerd) and
# kmod/tests/event-holder.c into BUILD/kmod/event-holder.
# Per kernel: the headers come from tests/vm/fetch-kernel.sh --headers (for
# 6.12-iommufd, the kbuild tree tests/vm/build-kernel.sh cached); the
# module is built with W=1 in BUILD/kmod/<kver>/ (a copy of the sources, so
# two kernels never share objects and the tree stays clean) and any compiler
# warning fails the build; logs go to BUILD/vm/logs/kmod-<kver>/.
# Ends with "N passed, M failed"; exit status 0 when nothing failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
vmdir=$root/tests/vm
# shellcheck source-path=SCRIPTDIR source=../../tests/vm/host-lib.sh
. "$vmdir/host-lib.sh"

build=${1:-build}
mkdir -p "$build"
build=$(cd "$build" && pwd)
t0=$SECONDS

vm_preflight
vm_build_probe "$build"

mkdir -p "$build/kmod"
vqctl=$build/kmod/vqctl
echo "kmod: building $vqctl"
# shellcheck disable=SC2046 # pkg-config prints several words
gcc -std=gnu11 -O2 -g -Wall -Wextra -Wshadow -Wmissing-prototypes \
	-Wstrict-prototypes -Wformat=2 -Wundef -Werror -I"$root/kmod/uapi" \
	-o "$vqctl" "$root/kmod/tests/vqctl.c" $(pkg-config --cflags --libs libnl-genl-3.0)
# kmod-broker-relay runs the broker and vfioctl of BUILD, and a holder on libvfiobroker
echo "kmod: building the broker into $build"
make -C "$root" -s BUILD="$build" all
holder=$build/kmod/event-holder
echo "kmod: building $holder"
# shellcheck disable=SC2046 # pkg-config prints several words
gcc -std=gnu11 -O2 -g -Wall -Wextra -Wshadow -Wmissing-prototypes \
	-Wstrict-prototypes -Wformat=2 -Wundef -Werror -I"$root/client" \
	-o "$holder" "$root/kmod/tests/event-holder.c" "$build/libvfiobroker.a" \
	$(pkg-config --cflags --libs json-c)

# build_module KERNEL_DIR: BUILD/kmod/<kver>/vfio_quarantine.ko, W=1, no warnings
build_module() {
	local kdir=$1 kver out
	kver=$(cat "$kdir/kver")
	out=$build/kmod/$kver
	rm -rf "$out"
	mkdir -p "$out"
	cp -r "$root/kmod/Kbuild" "$root/kmod/vfio_quarantine.c" "$root/kmod/uapi" "$out/"
	echo "kmod: building $out/vfio_quarantine.ko (W=1)"
	if ! make -C "$kdir/kdir" M="$out" W=1 modules >"$out/build.log" 2>&1; then
		cat "$out/build.log"
		echo "kmod: the module does not build against $kver"
		return 1
	fi
	if grep -n 'warning:' "$out/build.log"; then
		echo "kmod: the module builds with warnings against $kver"
		return 1
	fi
}

read -r -a series <<<"${VM_KERNELS:-$VM_DEFAULT_KERNELS}"
kdirs=()
for s in "${series[@]}"; do
	vm_fetch --headers "$build" "$s"
	build_module "$VM_KDIR"
	kdirs+=("$VM_KDIR")
done

opts=()
[ "${VM_VERBOSE:-0}" != 1 ] || opts+=(--verbose)
# boot I SUMMARY: the module's tests on kdirs[I] (vm_boots runs the kernels two at a time).
boot() {
	local kver
	kver=$(cat "${kdirs[$1]}/kver")
	(cd "$root" && python3 "$vmdir/vmrun.py" --kernel "${kdirs[$1]}" \
		--log-dir "$build/vm/logs/kmod-$kver" --summary-file "$2" "${opts[@]}" \
		"$here/guest-kmod.sh" "$build/kmod/$kver/vfio_quarantine.ko" "$vqctl" \
		"$build/vm-probe" "$build")
}
vm_boots "vfio_quarantine on Linux" boot

vm_report "vfio_quarantine summary ($((SECONDS - t0)) s in all; logs in $build/vm/logs/kmod-*/)"
