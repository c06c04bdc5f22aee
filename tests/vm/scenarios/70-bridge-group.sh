# shellcheck shell=bash
# Scenario (e): a group is leased whole, so policy must cover every device.
# vb-pins: the bridge group (bridge + 2 e1000) is refused while policy allows only one e1000, naming the other device; after the policy allows both and `vfioctl reload`, one lease hands one group fd through which vm-probe opens both devices and reads 8086:100e from each
vb_strict
vb_need_broker

vb_try vb_vfioctl_as 2000 lease "$G_BR" -- "$VB_BUILD/vm-probe"
[ "$VB_RC" != 0 ] || vb_fail "group $G_BR was granted although policy allows only $BR_E1"
grep -q '^vfioctl: denied: ' <<<"$VB_ERR" || vb_fail "expected 'vfioctl: denied: ...', got: $VB_ERR"
grep -q "$BR_E2" <<<"$VB_ERR" || vb_fail "the denial does not name $BR_E2: $VB_ERR"
echo "ok: refused, naming $BR_E2"

vb_write_policy 10-vm-tier <<EOT
{"rules": [
  {"name": "vm-nic", "users": [2000, 2002],
   "devices": [{"address": "$NIC1"}], "allow": ["lease"], "memlock": "64M"},
  {"name": "bridge-both", "users": [2000],
   "devices": [{"address": "$BR_E1"}, {"address": "$BR_E2"}], "allow": ["lease"]}
]}
EOT
vb_try vb_vfioctl reload
[ "$VB_RC" = 0 ] || vb_fail "vfioctl reload failed: $VB_ERR"

vb_try vb_vfioctl_as 2000 lease "$G_BR" -- "$VB_BUILD/vm-probe" --bdf "$BR_E1" --bdf "$BR_E2"
[ "$VB_RC" = 0 ] || vb_fail "the bridge group lease failed after the reload: ${VB_ERR:-$(tail -n 1 <<<"$VB_OUT")}"
fds=$(sed -n 's/^vm-probe: VFIO_BROKER_FDS=//p' <<<"$VB_OUT")
[[ $fds =~ ^$G_BR=[0-9]+$ ]] || vb_fail "expected exactly one fd, for group $G_BR: '$fds'"
vb_check_probe "$VB_OUT" "$BR_E1" "$BR_E2"
