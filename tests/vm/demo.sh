#!/usr/bin/env bash
# demo.sh: one command that shows vfio-broker working on a real kernel
# (`make demo`, the README's first command).
#
# usage: tests/vm/demo.sh [BUILD]        (BUILD defaults to build)
#
# Fetches the newest Debian 6.12 kernel into BUILD/vm/ if it is not cached,
# boots it under QEMU with an emulated IOMMU and a few PCI devices, and runs
# tests/vm/demo-guest.sh inside: an admin binds devices to vfio-pci, writes
# a policy and starts vfio-brokerd; unprivileged users lease IOMMU groups
# with vfioctl and read their devices through the fds the broker hands
# over, or are told why not.  Exits 0 when every step went as narrated.
# VM=0 and VM_REQUIRED=1 work as for tests/vm/check.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=host-lib.sh
. "$here/host-lib.sh"

build=${1:-build}
mkdir -p "$build"
build=$(cd "$build" && pwd)

vm_preflight
vm_build_probe "$build"
vm_fetch "$build" 6.12
echo "vfio-broker demo: booting Linux $(cat "$VM_KDIR/kver") under QEMU (about 10 s),"
echo "then the story runs inside the VM."
python3 "$here/vmrun.py" --kernel "$VM_KDIR" --show-output --log-dir "$build/vm/logs/demo" \
	"$here/demo-guest.sh" "$build"
