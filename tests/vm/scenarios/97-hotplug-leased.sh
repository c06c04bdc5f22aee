# shellcheck shell=bash
# Scenario: hot-plug into a leased group without vfio_quarantine (issue 12, item 4).
# Upstream (5.19 and later) refuses host drivers to a new device only while
# its group is claimed for user DMA (attached to a container); a leased group
# whose holder has not set a container yet is not protected. The kmod tier
# shows the module closing that gap (kmod/tests/guest-kmod.sh, test_hotplug).
# It runs last: on 6.1 the devices it adds stay (see 16-hotplug-bridge: a
# hot-removal behind the bridge corrupts intel-iommu state there).
# vb-pins: without the module, an e1000 hot-plugged into the bridge group while uid 2000's lease of it is claimed (a device fd open, so the group is in a container with an IOMMU) joins the group and is not taken by e1000 (no driver), and the broker's list shows it in the group; one hot-plugged while the lease is held but unclaimed (the group fd open, no container) is taken by e1000 and the group is no longer viable
vb_strict
vb_need_broker

NEW1=$BR_BUS:03.0
NEW2=$BR_BUS:04.0
vb_write_policy 97-hotplug <<EOT
{"rules": [
  {"name": "bridge-and-hotplug", "users": [2000],
   "devices": [{"address": "$BR_E1"}, {"address": "$BR_E2"},
               {"address": "$NEW1"}, {"address": "$NEW2"}],
   "allow": ["lease"], "memlock": "64M"}
]}
EOT
child= holder=
cleanup() {
	[ -z "$child" ] || kill -KILL "$child" 2>/dev/null || true
	[ -z "$holder" ] || kill -KILL "$holder" 2>/dev/null || true
	rm -f "$VB_POLICY/97-hotplug.json"
	vb_vfioctl reload >/dev/null || true
}
trap cleanup EXIT
vb_try vb_vfioctl reload
[ "$VB_RC" = 0 ] || vb_fail "vfioctl reload failed: $VB_ERR"

# listed BDF: "GROUP DRIVER" as the broker lists BDF, or "absent".
listed() {
	vb_vfioctl list --json | python3 -c '
import json, sys
for g in json.load(sys.stdin)["groups"]:
    for d in g["devices"]:
        if d["address"] == sys.argv[1]:
            print(g["group"], d.get("driver") or "none")
            sys.exit(0)
print("absent")' "$1"
}
# plug SLOT ID BDF: device_add an e1000 into the bridge's SLOT; wait until
# BDF is in the bridge's group and the kernel has had time to probe it.
plug() {
	[ ! -e "/sys/bus/pci/devices/$3" ] || vb_fail "$3 exists before the hot-plug"
	echo "asking the host: device_add e1000 id=$2 bus=br1 addr=0x$1"
	vb_hotplug add "id=$2" driver=e1000 bus=br1 "addr=0x$1" romfile= ||
		vb_fail "the host could not device_add"
	vb_wait 30 test -e "/sys/bus/pci/devices/$3/iommu_group" || vb_fail "$3 did not appear within 30 s"
	[ "$(vb_group_of "$3")" = "$G_BR" ] || vb_fail "$3 is in group $(vb_group_of "$3"), not $G_BR"
	# A probe runs synchronously in the add uevent's path; give a host driver
	# that would take it ample time anyway.
	vb_wait 10 test -e "/sys/bus/pci/devices/$3/driver" || true
	echo "$3 appeared in group $G_BR, driver $(vb_driver_of "$3")"
}

# 1. Claimed: a child of vm-probe keeps a device fd, so the group stays in
# the container with TYPE1v2 set (the kernel's DMA owner claim).
pidfile=$VB_SHARE/hotplug-claimed.pid
rm -f "$pidfile"
vb_try vb_vfioctl_as 2000 lease "$G_BR" -- "$VB_BUILD/vm-probe" --bdf "$BR_E1" --keep-device-fd "$pidfile"
[ "$VB_RC" = 0 ] || vb_fail "the lease of group $G_BR failed: ${VB_ERR:-$(tail -n 1 <<<"$VB_OUT")}"
vb_wait 10 test -s "$pidfile" || vb_fail "vm-probe's child did not start"
child=$(cat "$pidfile")
plug 3 vb-hp-claimed "$NEW1"
[ "$(vb_driver_of "$NEW1")" = none ] ||
	vb_fail "$NEW1 was taken by $(vb_driver_of "$NEW1") although its group is claimed by a lease"
vb_wait 10 eval '[ "$(listed "$NEW1")" = "$G_BR none" ]' ||
	vb_fail "the broker lists $NEW1 as '$(listed "$NEW1")', not in group $G_BR without a driver"
echo "ok: claimed group: $NEW1 joined group $G_BR with no driver, and the broker lists it"
kill -KILL "$child"
vb_wait 10 vb_gone "$child" || vb_fail "vm-probe's child did not exit"
child=
vb_wait 20 vb_lease_ended "$G_BR" || vb_fail "group $G_BR is still leased after its holder died"

# 2. Unclaimed: the group file is open, but no container is set.
rm -f "$VB_SHARE/hotplug-unclaimed.ready"
vb_vfioctl_as 2000 lease "$G_BR" -- sh -c "touch $VB_SHARE/hotplug-unclaimed.ready; exec sleep 120" \
	</dev/null >"$VB_SHARE/hotplug-unclaimed.log" 2>&1 &
holder=$!
vb_wait 30 test -e "$VB_SHARE/hotplug-unclaimed.ready" ||
	vb_fail "the unclaimed lease did not start: $(tail -n 2 "$VB_SHARE/hotplug-unclaimed.log")"
[ "$(vb_holder_of "$G_BR")" = 2000 ] || vb_fail "group $G_BR is not held by uid 2000"
plug 4 vb-hp-unclaimed "$NEW2"
vb_wait 20 test -e "/sys/bus/pci/devices/$NEW2/driver" ||
	vb_fail "$NEW2 got no driver: the kernel protected an unclaimed group (the gap this scenario shows is closed?)"
drv=$(vb_driver_of "$NEW2")
[ "$drv" = e1000 ] || vb_fail "$NEW2 was taken by $drv, expected e1000"
json=$(vb_vfioctl list --json)
viable=$(python3 -c '
import json, sys
for g in json.loads(sys.argv[1])["groups"]:
    if g["group"] == int(sys.argv[2]):
        print("true" if g["viable"] else "false")' "$json" "$G_BR")
[ "$viable" = false ] || vb_fail "group $G_BR is listed viable with $NEW2 on e1000"
echo "ok: unclaimed group: e1000 took $NEW2 while group $G_BR was leased; the group is no longer viable"
kill -KILL "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
holder=
echo "$NEW2" >"/sys/bus/pci/devices/$NEW2/driver/unbind"

case $(uname -r) in
6.1.*) echo "Linux $(uname -r): the hot-plugged devices stay (no hot-removal behind the bridge here)" ;;
*)
	vb_hotplug del id=vb-hp-unclaimed || vb_fail "the host could not device_del vb-hp-unclaimed"
	vb_hotplug del id=vb-hp-claimed || vb_fail "the host could not device_del vb-hp-claimed"
	vb_wait 20 eval '[ ! -e "/sys/bus/pci/devices/$NEW1" ] && [ ! -e "/sys/bus/pci/devices/$NEW2" ]' ||
		vb_fail "the hot-plugged devices are still there 20 s after device_del"
	;;
esac
