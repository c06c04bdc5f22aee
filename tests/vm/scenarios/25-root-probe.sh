# shellcheck shell=bash
# Scenario: the kernel-only VFIO path, without the broker: root opens the
# group files itself and vm-probe does what a leased client will do.
# vb-pins: root opens each group directly: container, VFIO_SET_IOMMU(TYPE1v2), a DMA map, VFIO_GROUP_GET_DEVICE_FD; config space reads equal sysfs (8086:10d3 for the e1000e, 8086:100e for both bridge e1000 through one group fd)
vb_strict
vb_need_env
[ -x "$VB_BUILD/vm-probe" ] || vb_fail_early "vm-probe is not built ($VB_BUILD/vm-probe)"

for pair in "$G_NIC1:$NIC1" "$G_NIC2:$NIC2"; do
	vb_try "$VB_BUILD/vm-probe" --open "${pair%%:*}" --bdf "${pair#*:}"
	[ "$VB_RC" = 0 ] || vb_fail "vm-probe on group ${pair%%:*} failed: $(tail -n 1 <<<"$VB_OUT")"
	vb_check_probe "$VB_OUT" "${pair#*:}"
done
[ "$(vb_pci_id "$NIC1")" = 8086:10d3 ] || vb_fail "$NIC1 is $(vb_pci_id "$NIC1"), not an e1000e"

vb_try "$VB_BUILD/vm-probe" --open "$G_BR"
[ "$VB_RC" = 0 ] || vb_fail "vm-probe on the bridge group failed: $(tail -n 1 <<<"$VB_OUT")"
vb_check_probe "$VB_OUT" "$BR_E1" "$BR_E2"
