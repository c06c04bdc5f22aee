# shellcheck shell=bash
# Scenario (a): the broker starts on the real kernel's sysfs and /dev.
# vb-pins: vfio-brokerd starts as root with --policy DIR on the real /sys and /dev (devices bound to vfio-pci by 20-vfio-bind), creates its socket with mode 0666 within 10 s and keeps running
vb_strict
vb_need_env
[ -x "$VB_BUILD/vfio-brokerd" ] || vb_fail_early "vfio-brokerd is not built ($VB_BUILD/vfio-brokerd)"

install -d -m 0755 "$VB_POLICY"
install -d -m 1777 "$VB_SHARE"
# The policy the following scenarios start from: uid 2000 and 2002 may
# lease the first e1000e; uid 2000 may have only one of the two e1000
# behind the bridge (70-bridge-group widens that); uid 2001 is nowhere.
vb_write_policy 10-vm-tier <<EOT
{"rules": [
  {"name": "vm-nic", "users": [2000, 2002],
   "devices": [{"address": "$NIC1"}], "allow": ["lease"], "memlock": "64M"},
  {"name": "bridge-half", "users": [2000],
   "devices": [{"address": "$BR_E1"}], "allow": ["lease"]}
]}
EOT
vb_start_broker || vb_fail "vfio-brokerd did not start: $(tail -n 3 "$VB_BROKER_LOG" 2>/dev/null | tr '\n' ' ')"
mode=$(stat -c %a "$VB_SOCK")
[ "$mode" = 666 ] || vb_fail "socket $VB_SOCK has mode $mode, expected 666"
sleep 0.5
vb_broker_running || vb_fail "vfio-brokerd exited after creating its socket"
echo "vfio-brokerd runs as pid $(cat "$VB_BROKER_PID"), socket $VB_SOCK (0666)"
echo "--- broker log so far"
cat "$VB_BROKER_LOG"
