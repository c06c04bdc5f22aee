# shellcheck shell=bash
# Scenario: hot-plug through QMP, requested by the guest (vmrun.py markers),
# into the empty PCIe root port.
# vb-pins: a device_add of an e1000e into the empty root port rp3 appears in the guest in a new IOMMU group of its own; device_del removes it and the group with it
vb_strict
vb_need_env

pci_devices() {
	local d
	for d in /sys/bus/pci/devices/*; do
		basename "$d"
	done
}
groups_before=$(find /sys/kernel/iommu_groups -mindepth 1 -maxdepth 1 -printf '%f ')
known=$(pci_devices)
echo "asking the host: device_add e1000e id=vb-hp-rp bus=rp3"
vb_hotplug add id=vb-hp-rp driver=e1000e bus=rp3 romfile= || vb_fail "the host could not device_add"
new_device() {
	new=$(pci_devices | grep -vxF "$known" | head -n 1)
	[ -n "$new" ] && [ -e "/sys/bus/pci/devices/$new/iommu_group" ]
}
vb_wait 20 new_device || vb_fail "no new PCI device within 20 s"
g=$(vb_group_of "$new")
echo "$new appeared: $(vb_pci_id "$new"), group $g, driver $(vb_driver_of "$new")"
[ "$(vb_pci_id "$new")" = 8086:10d3 ] || vb_fail "$new is $(vb_pci_id "$new"), not the e1000e"
[ "$(vb_group_members "$g")" = "$new" ] || vb_fail "$new is not alone in group $g"
[[ " $groups_before " != *" $g "* ]] || vb_fail "$new joined the existing group $g"

echo "asking the host: device_del vb-hp-rp"
vb_hotplug del id=vb-hp-rp || vb_fail "the host could not device_del"
vb_wait 20 test ! -e "/sys/bus/pci/devices/$new" || vb_fail "$new is still there 20 s after device_del"
vb_wait 5 test ! -e "/sys/kernel/iommu_groups/$g" || vb_fail "group $g outlived its only device"
echo "$new and group $g are gone"
