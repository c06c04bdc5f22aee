# shellcheck shell=bash
# Scenario (c): the main story: an unprivileged user gets a group fd from
# the broker and drives the device through it.
# vb-pins: uid 2000 (no passwd entry), allowed by policy, runs vm-probe under `vfioctl lease G`: the probe finds the group fd in VFIO_BROKER_FDS, builds a TYPE1v2 container, maps DMA and reads 8086:10d3 from the e1000e's config space, as sysfs says; uid 2000 cannot open /dev/vfio/G itself (EACCES)
vb_strict
vb_need_broker

vb_try vb_vfioctl_as 2000 lease "$G_NIC1" -- "$VB_BUILD/vm-probe" --bdf "$NIC1"
[ "$VB_RC" = 0 ] || vb_fail "the lease or the probe failed (status $VB_RC): ${VB_ERR:-$(tail -n 1 <<<"$VB_OUT")}"
grep -qE "^vm-probe: VFIO_BROKER_FDS=(.*,)?$G_NIC1=[0-9]+" <<<"$VB_OUT" ||
	vb_fail "the probe did not get group $G_NIC1 in VFIO_BROKER_FDS"
grep -q "^vm-probe: group=$G_NIC1 .*source=env viable=1" <<<"$VB_OUT" ||
	vb_fail "the handed fd is not a viable VFIO group $G_NIC1"
grep -q '^vm-probe: dma map+unmap .* ok' <<<"$VB_OUT" || vb_fail "no DMA map through the container"
vb_check_probe "$VB_OUT" "$NIC1"
[ "$(vb_pci_id "$NIC1")" = 8086:10d3 ] || vb_fail "$NIC1 is not an e1000e"

vb_try vb_as 2000 "$VB_BUILD/vm-probe" --open-direct "/dev/vfio/$G_NIC1"
grep -q "errno=EACCES" <<<"$VB_OUT" ||
	vb_fail "uid 2000 opening /dev/vfio/$G_NIC1 directly should get EACCES"
echo "ok: uid 2000 cannot open /dev/vfio/$G_NIC1 without the broker (EACCES)"
