# shellcheck shell=bash
# Scenario: an admin binds the test devices to vfio-pci (the setup of the
# broker scenarios), and the kernel's viability rule for a shared group.
# vb-pins: driver_override + unbind + drivers_probe moves both e1000e and both bridge e1000 to vfio-pci; each group gets /dev/vfio/N (root, 0600); the bridge group is not viable with one e1000 on vfio-pci and viable with both; the bridge stays driverless
vb_strict
vb_need_env

for d in "$NIC1" "$NIC2" "$BR_E1"; do
	from=$(vb_driver_of "$d")
	vb_bind_vfio "$d" || vb_fail "$d did not bind to vfio-pci (driver: $(vb_driver_of "$d"))"
	echo "$d: $from -> vfio-pci"
done
if [ -x "$VB_BUILD/vm-probe" ]; then
	vb_try "$VB_BUILD/vm-probe" --open "$G_BR"
	grep -q "group=$G_BR .*viable=0" <<<"$VB_OUT" ||
		vb_fail "group $G_BR should not be viable while $BR_E2 is on $(vb_driver_of "$BR_E2")"
	echo "ok: group $G_BR is not viable while $BR_E2 is on a host driver"
else
	echo "note: $VB_BUILD/vm-probe is not built; viability not checked"
fi
from=$(vb_driver_of "$BR_E2")
vb_bind_vfio "$BR_E2" || vb_fail "$BR_E2 did not bind to vfio-pci"
echo "$BR_E2: $from -> vfio-pci"

[ "$(vb_driver_of "$BRIDGE")" = none ] || vb_fail "the bridge got driver $(vb_driver_of "$BRIDGE")"
for g in "$G_NIC1" "$G_NIC2" "$G_BR"; do
	vb_wait 5 test -c "/dev/vfio/$g" || vb_fail "/dev/vfio/$g did not appear"
	perm=$(stat -c '%a %U' "/dev/vfio/$g")
	[ "$perm" = "600 root" ] || vb_fail "/dev/vfio/$g is '$perm', expected '600 root'"
done
ls -l /dev/vfio
