# shellcheck shell=bash
# Scenario: the broker caches what it read of sysfs, and the kernel's uevents
# keep that cache true.
# vb-pins: with the running broker's cache filled by a list, moving the second e1000e off vfio-pci shows in the very next `vfioctl list --json` (its driver as sysfs has it, viable only on vfio-pci or no driver); moving it back shows vfio-pci and viable; a device hot-plugged into the empty root port is listed as a new group within 5 s, and the group leaves the list within 5 s of device_del
vb_strict
vb_need_broker

# listed GROUP BDF -> "DRIVER VIABLE" from the broker (driver "none" for null).
listed() {
	vb_vfioctl list --json | python3 -c '
import json, sys
group, bdf = int(sys.argv[1]), sys.argv[2]
for g in json.load(sys.stdin)["groups"]:
    if g["group"] == group:
        for d in g["devices"]:
            if d["address"] == bdf:
                print(d.get("driver") or "none", "true" if g["viable"] else "false")
                sys.exit(0)
print("absent absent")' "$1" "$2"
}
# expect GROUP BDF: the broker's answer must equal sysfs right now.
expect() {
	local driver viable got
	driver=$(vb_driver_of "$2")
	case $driver in
	vfio-pci | none) viable=true ;;
	*) viable=false ;;
	esac
	got=$(listed "$1" "$2")
	[ "$got" = "$driver $viable" ] ||
		vb_fail "after $3 the broker lists $2 as '$got'; sysfs says '$driver $viable'"
	echo "ok: after $3 the broker lists $2 as '$got'"
}

expect "$G_NIC2" "$NIC2" "filling the cache"
# The unbind and bind uevents are sent before these writes return, so the
# next request must see them: no waiting here.
dev=/sys/bus/pci/devices/$NIC2
echo e1000e >"$dev/driver_override"
echo "$NIC2" >"$dev/driver/unbind"
echo "$NIC2" >/sys/bus/pci/drivers_probe || true # no e1000e driver: stays driverless
[ "$(vb_driver_of "$NIC2")" != vfio-pci ] || vb_fail "$NIC2 is still on vfio-pci"
expect "$G_NIC2" "$NIC2" "moving it to $(vb_driver_of "$NIC2")"
vb_bind_vfio "$NIC2" || vb_fail "$NIC2 did not go back to vfio-pci"
expect "$G_NIC2" "$NIC2" "moving it back to vfio-pci"

# Hot-plug: the add uevent follows the sysfs links by a little, so allow 5 s.
known=$(ls /sys/bus/pci/devices)
vb_hotplug add id=vb-cache-hp driver=e1000e bus=rp3 romfile= || vb_fail "the host could not device_add"
new_device() {
	new=$(ls /sys/bus/pci/devices | grep -vxF "$known" | head -n 1)
	[ -n "$new" ] && [ -e "/sys/bus/pci/devices/$new/iommu_group" ]
}
vb_wait 20 new_device || vb_fail "no new PCI device within 20 s of device_add"
g=$(vb_group_of "$new")
in_list() { [ "$(listed "$g" "$new")" != "absent absent" ]; }
vb_wait 5 in_list || vb_fail "hot-plugged $new (group $g) is not in the broker's list after 5 s"
echo "ok: hot-plugged $new is listed in group $g"
vb_hotplug del id=vb-cache-hp || vb_fail "the host could not device_del"
vb_wait 20 test ! -e "/sys/bus/pci/devices/$new" || vb_fail "$new is still there 20 s after device_del"
gone() { ! in_list; }
vb_wait 5 gone || vb_fail "group $g is still in the broker's list 5 s after $new went away"
echo "ok: group $g left the list with $new"
