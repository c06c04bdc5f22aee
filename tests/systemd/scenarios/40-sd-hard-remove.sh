# shellcheck shell=bash
# Scenario: hard removal through the sandboxed service.
# vb-pins: while uid 2000 holds the e1000e's group (vm-probe read 8086:10d3 through the handed fd, then the lease is held), root's `vfioctl remove --hard G` succeeds, every process of the holder is killed within 10 s, the group shows no holder, the broker logs VB_EVENT=remove, and uid 2002 then leases the group and reads the device
vb_strict
# shellcheck source-path=SCRIPTDIR source=../sd-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../sd-lib.sh"
sd_need_service

sd_start_holder hr "$G_NIC1" "$VB_BUILD/vm-probe --bdf $NIC1 >$VB_SHARE/hr-probe.log 2>&1" ||
	vb_fail "uid 2000's lease of group $G_NIC1 did not start: $(cat "$VB_SHARE/hr-probe.log" 2>/dev/null)"
trap 'kill -KILL -- "-$SD_HOLDER" 2>/dev/null || true' EXIT
vb_check_probe "$(cat "$VB_SHARE/hr-probe.log")" "$NIC1"
[ "$(vb_holder_of "$G_NIC1")" = 2000 ] || vb_fail "vfioctl list does not show uid 2000 holding group $G_NIC1"
lpid=$(vb_lease_pid "$G_NIC1")
echo "uid 2000 holds group $G_NIC1 (lease pid $lpid, session $SD_HOLDER)"

since=$(sd_now)
vb_try vfioctl remove --hard "$G_NIC1"
[ "$VB_RC" = 0 ] || vb_fail "vfioctl remove --hard failed (status $VB_RC): $VB_ERR"
holder_killed() { ! pgrep -s "$SD_HOLDER" >/dev/null; }
vb_wait 10 holder_killed || vb_fail "processes of the holder survived the hard removal: $(pgrep -a -s "$SD_HOLDER" | tr '\n' ' ')"
wait "$SD_HOLDER" 2>/dev/null || true
holder_gone() { [ "$(vb_holder_of "$G_NIC1")" = none ]; }
vb_wait 5 holder_gone || vb_fail "group $G_NIC1 still has holder $(vb_holder_of "$G_NIC1")"
echo "ok: the holder was killed and group $G_NIC1 is free"
hit=$(sd_wait_event 10 "$since" VB_EVENT=remove) || vb_fail "the broker logged no VB_EVENT=remove"
echo "journal: $(sd_field "$hit" MESSAGE)"

vb_try vb_vfioctl_as 2002 lease "$G_NIC1" -- "$VB_BUILD/vm-probe" --bdf "$NIC1"
[ "$VB_RC" = 0 ] || vb_fail "uid 2002 could not lease group $G_NIC1 after the removal: $VB_ERR"
vb_check_probe "$VB_OUT" "$NIC1"
