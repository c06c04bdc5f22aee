# shellcheck shell=bash
# Scenario: quarantine through the sandboxed service, without the module.
# vb-pins: with the second e1000e back on e1000e, root's `vfioctl quarantine G` makes the service (read-only root, /sys/bus/pci writable) move it to vfio-pci by sysfs and /dev/vfio/G appears; the broker logs VB_EVENT=quarantine; `vfioctl unquarantine --restore G` gives it back to e1000e
vb_strict
# shellcheck source-path=SCRIPTDIR source=../sd-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../sd-lib.sh"
sd_need_service

dev=/sys/bus/pci/devices/$NIC2
# Undo 20-vfio-bind for this device: the admin's starting point is a host driver.
echo >"$dev/driver_override"
[ ! -e "$dev/driver" ] || echo "$NIC2" >"$dev/driver/unbind"
echo "$NIC2" >/sys/bus/pci/drivers_probe
on() { [ "$(vb_driver_of "$NIC2")" = "$1" ]; }
vb_wait 5 on e1000e || vb_fail_early "$NIC2 is on $(vb_driver_of "$NIC2"), could not give it back to e1000e"
echo "$NIC2 (group $G_NIC2) is on e1000e"

since=$(sd_now)
vb_try vfioctl quarantine "$G_NIC2"
[ "$VB_RC" = 0 ] || vb_fail "vfioctl quarantine failed (status $VB_RC): $VB_ERR"
vb_wait 5 on vfio-pci || vb_fail "$NIC2 is on $(vb_driver_of "$NIC2") after the quarantine"
vb_wait 5 test -c "/dev/vfio/$G_NIC2" || vb_fail "/dev/vfio/$G_NIC2 did not appear"
echo "ok: $NIC2 is on vfio-pci"
hit=$(sd_wait_event 10 "$since" VB_EVENT=quarantine) || vb_fail "the broker logged no VB_EVENT=quarantine"
echo "journal: $(sd_field "$hit" MESSAGE)"

vb_try vfioctl unquarantine --restore "$G_NIC2"
[ "$VB_RC" = 0 ] || vb_fail "vfioctl unquarantine --restore failed (status $VB_RC): $VB_ERR"
vb_wait 10 on e1000e || vb_fail "$NIC2 is on $(vb_driver_of "$NIC2") after unquarantine --restore"
echo "ok: $NIC2 is back on e1000e"
