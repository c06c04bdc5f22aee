# shellcheck shell=bash
# Scenario: hot-plug through QMP into the PCI bridge's empty slot: the new
# device joins the bridge's IOMMU group (the case vfio_quarantine is about).
# vb-pins: a device_add of an e1000 into the bridge's empty slot 3 appears in the guest and joins the bridge's IOMMU group; device_del removes it and the group is back to its three members
vb_strict
vb_need_env

# Linux 6.1 (seen on 6.1.0-56, Debian 6.1.192-2): hot-removing any device
# behind the pcie-pci-bridge leaves a freed entry on an intel-iommu domain
# list; the next VFIO_GROUP_SET_CONTAINER of any group then hits "list_del
# corruption" in device_block_translation() and, with oops=panic, the guest
# dies.  Root-port hot-plug (15-hotplug-rootport) and hot-add alone are fine.
# 6.12 is not affected.
case $(uname -r) in
6.1.*) vb_skip "Linux $(uname -r) corrupts intel-iommu state when a device behind a PCIe-to-PCI bridge is hot-removed (list_del corruption at the next VFIO attach)" ;;
esac

new=$BR_BUS:03.0
before=$(vb_group_members "$G_BR")
[ ! -e "/sys/bus/pci/devices/$new" ] || vb_fail "$new exists before the hot-plug"

echo "asking the host: device_add e1000 id=vb-hp1 bus=br1 addr=0x3"
vb_hotplug add id=vb-hp1 driver=e1000 bus=br1 addr=0x3 romfile= ||
	vb_fail "the host could not device_add"
vb_wait 20 test -e "/sys/bus/pci/devices/$new" || vb_fail "$new did not appear within 20 s"
vb_wait 10 test -e "/sys/bus/pci/devices/$new/iommu_group" ||
	vb_fail "$new has no IOMMU group"
echo "$new appeared: $(vb_pci_id "$new"), group $(vb_group_of "$new"), driver $(vb_driver_of "$new")"
[ "$(vb_group_of "$new")" = "$G_BR" ] ||
	vb_fail "$new is in group $(vb_group_of "$new"), not the bridge's group $G_BR"

echo "asking the host: device_del vb-hp1"
vb_hotplug del id=vb-hp1 || vb_fail "the host could not device_del"
vb_wait 20 test ! -e "/sys/bus/pci/devices/$new" || vb_fail "$new is still there 20 s after device_del"
[ "$(vb_group_members "$G_BR")" = "$before" ] ||
	vb_fail "group $G_BR is $(vb_group_members "$G_BR" | tr '\n' ' ') after the removal"
echo "$new is gone; group $G_BR: $(vb_group_members "$G_BR" | tr '\n' ' ')"
