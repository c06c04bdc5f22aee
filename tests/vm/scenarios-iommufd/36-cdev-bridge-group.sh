# shellcheck shell=bash
# Scenario (kernels with IOMMUFD and VFIO_DEVICE_CDEV only: 6.12-iommufd): a
# cdev lease of a group of two endpoints (the bridge group: two e1000 behind
# the pcie-pci-bridge) ends only when both of its cdevs are closed (issue 15,
# follow-up 1). Runs after 30-broker-start, with one rule of its own.
# vb-pins: uid 2000 leases the bridge group by `vfioctl run --cdev --group G_BR` and gets two cdevs (4 and 5), never the bridge; its holder exits leaving a child with only the second cdev open: the lease stays (passed to that child), the group is busy for the legacy path ("still open in pid"); once that child is gone too the group is free and a cdev lease of it works again
vb_strict
vb_need_broker
[ -c /dev/iommu ] || vb_skip "this kernel has no /dev/iommu (CONFIG_IOMMUFD is off): no cdev path"

bg=()
cleanup() {
	for p in "${bg[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	rm -f "$VB_POLICY/36-cdev-bridge.json"
	vb_vfioctl reload >/dev/null || true
}
trap cleanup EXIT
vb_write_policy 36-cdev-bridge <<EOT
{"rules": [{"name": "cdev-bridge", "users": [2000],
  "devices": [{"address": "$BR_E1"}, {"address": "$BR_E2"}], "allow": ["lease"]}]}
EOT
vb_vfioctl reload >/dev/null
free_again() { vb_wait 30 vb_lease_ended "$1" || vb_fail "group $1 is still leased: $(vb_vfioctl leases)"; }

# 1. The holder (sh) starts a child that keeps only the second cdev (descriptor 5; 4 is
# the first endpoint's, the lease's own file), and exits: the broker's copies go, the
# first cdev is closed everywhere, the second is not.
vb_try vb_vfioctl_as 2000 run --cdev --group "$G_BR" -- /bin/sh -c \
	'echo "map $VFIO_BROKER_CDEV_FDS"; sleep 600 3<&- 4<&- </dev/null >/dev/null 2>&1 & echo "child $!"'
[ "$VB_RC" = 0 ] || vb_fail "run --cdev of group $G_BR failed (status $VB_RC): $VB_ERR"
map=$(sed -n 's/^map //p' <<<"$VB_OUT")
[[ ",$map," == *",$BR_E1=4,"* || ",$map," == *",$BR_E1=5,"* ]] && [[ ",$map," == *",$BR_E2="[45]","* ]] ||
	vb_fail "expected the two e1000's cdevs as 4 and 5, and not the bridge: '$map'"
child=$(sed -n 's/^child //p' <<<"$VB_OUT")
[ -n "$child" ] || vb_fail "the holder did not start its child: $VB_OUT"
bg+=("$child")
echo "holder exited; pid $child keeps only the cdev of fd 5 ($map): $(readlink "/proc/$child/fd/5")"

# 2. One of two closed: still leased, now by the child, and busy for anyone else.
vb_wait 30 eval '[ "$(vb_lease_pid "$G_BR")" = "$child" ]' ||
	vb_fail "the lease did not pass to pid $child, which has a cdev of it open: $(vb_vfioctl leases); its files: $(ls -l "/proc/$child/fd" | tr '\n' ' '); nodes: $(ls -l /dev/vfio/devices | tr '\n' ' ')"
echo "ok: the lease of group $G_BR is held by pid $child after the holder exited"
vb_try vb_vfioctl_as 2000 lease "$G_BR" -- true
[ "$VB_RC" != 0 ] || vb_fail "group $G_BR was granted while a cdev of it is open"
grep -q "still open in pid $child" <<<"$VB_ERR" || vb_fail "the refusal does not name pid $child: $VB_ERR"
echo "ok: refused while the second cdev is open"

# 3. Both closed: the lease ends, and the cdev path takes the group again.
kill -KILL "$child"
free_again "$G_BR"
vb_try vb_vfioctl_as 2000 run --cdev --group "$G_BR" -- /bin/true
[ "$VB_RC" = 0 ] || vb_fail "the cdev path failed after both cdevs closed: $VB_ERR"
free_again "$G_BR"
echo "36-cdev-bridge-group: ${SECONDS} s"
