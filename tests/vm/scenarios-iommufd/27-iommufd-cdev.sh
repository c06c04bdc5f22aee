# shellcheck shell=bash
# Scenario (kernels with IOMMUFD and VFIO_DEVICE_CDEV only, that is
# 6.12-iommufd from tests/vm/build-kernel.sh; tests/vm/check.sh adds this
# directory for them): the modern VFIO path, as root, without the broker.
# It runs after 25-root-probe and before the broker starts, while every test
# device is on vfio-pci and no group file is open (an open group excludes
# the cdev path: VFIO_DEVICE_BIND_IOMMUFD would be EBUSY).
# vb-pins: /dev/iommu exists; every device on vfio-pci has /dev/vfio/devices/vfioN with the major:minor of its sysfs vfio-dev; as root, vm-iommufd-probe binds the second e1000e's cdev to an iommufd, attaches it to an IOAS, maps and unmaps a page of DMA and reads 8086:10d3 from its config space; afterwards its group opens through the legacy path again
vb_strict
vb_need_env
probe=$VB_BUILD/vm-iommufd-probe
[ -x "$probe" ] || vb_fail_early "vm-iommufd-probe is not built ($probe)"

[ -c /dev/iommu ] || vb_fail "/dev/iommu is missing on a kernel built with CONFIG_IOMMUFD"
echo "/dev/iommu: $(stat -c '%A %U' /dev/iommu)"

# cdev_of BDF: /dev/vfio/devices/vfioN of a device on vfio-pci, checked
# against the vfio-dev directory sysfs gives it.
cdev_of() {
	local sys=/sys/bus/pci/devices/$1/vfio-dev names node want got
	names=$(ls "$sys" 2>/dev/null) || vb_fail "$1 has no $sys"
	[ "$(wc -w <<<"$names")" = 1 ] || vb_fail "$sys has '$names', expected one vfioN"
	node=/dev/vfio/devices/$names
	vb_wait 5 test -c "$node" || vb_fail "$node ($1) is missing"
	want=$(cat "$sys/$names/dev")
	got=$(printf '%d:%d' "0x$(stat -c %t "$node")" "0x$(stat -c %T "$node")")
	[ "$got" = "$want" ] || vb_fail "$node is $got, sysfs says $want"
	echo "$node"
}

for d in "$NIC1" "$NIC2" "$BR_E1" "$BR_E2"; do
	[ "$(vb_driver_of "$d")" = vfio-pci ] ||
		vb_fail_early "$d is on $(vb_driver_of "$d"), not vfio-pci (20-vfio-bind)"
	node=$(cdev_of "$d")
	echo "$d: $node ($(stat -c '%A %U' "$node"))"
done

node=$(cdev_of "$NIC2")
vb_try "$probe" "$node"
[ "$VB_RC" = 0 ] || vb_fail "vm-iommufd-probe on $node ($NIC2) failed: $(tail -n 1 <<<"$VB_OUT")"
id=$(vb_pci_id "$NIC2")
grep -q "vendor=${id%:*} device_id=${id#*:} " <<<"$VB_OUT" ||
	vb_fail "config space through $node does not read $id, as sysfs says"
grep -qx "vm-iommufd-probe: dma map+unmap .* ok" <<<"$VB_OUT" || vb_fail "no DMA map through the IOAS"
grep -qx "vm-iommufd-probe: ok" <<<"$VB_OUT" || vb_fail "vm-iommufd-probe did not finish"

# The cdev is closed: the group path must work again (the two exclude each
# other only while one is in use).
if [ -x "$VB_BUILD/vm-probe" ]; then
	vb_try "$VB_BUILD/vm-probe" --open "$G_NIC2" --bdf "$NIC2"
	[ "$VB_RC" = 0 ] || vb_fail "group $G_NIC2 does not open after the cdev was closed"
	vb_check_probe "$VB_OUT" "$NIC2"
fi
