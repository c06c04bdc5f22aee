# shellcheck shell=bash
# Scenario: a broker killed while a lease is held is restarted by systemd and knows the lease.
# vb-pins: with uid 2000 holding the first e1000e's group, SIGKILL to the service's main process makes systemd restart it (Restart=on-failure: a new main pid, NRestarts up by one) on the same socket; the new broker logs VB_EVENT=restore for the group, `vfioctl leases --json` shows the lease with the same holder pid, uid 2002 is answered busy naming uid 2000, and the holder's exit frees the group
vb_strict
# shellcheck source-path=SCRIPTDIR source=../sd-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../sd-lib.sh"
sd_need_service

sd_start_holder rs "$G_NIC1" || vb_fail "uid 2000's lease of group $G_NIC1 did not start"
trap 'kill -KILL -- "-$SD_HOLDER" 2>/dev/null || true' EXIT
lpid=$(vb_lease_pid "$G_NIC1")
[ "$lpid" != none ] || vb_fail "no lease of group $G_NIC1 is listed"
old=$(sd_main_pid)
restarts=$(sd_prop NRestarts)
echo "uid 2000 holds group $G_NIC1 (lease pid $lpid); SIGKILL to the broker, pid $old"

since=$(sd_now)
kill -KILL "$old"
restarted() { local p; p=$(sd_main_pid); [ "$p" != 0 ] && [ "$p" != "$old" ] && sd_active; }
vb_wait 20 restarted || vb_fail "$SD_UNIT was not restarted within 20 s ($(systemctl is-active "$SD_UNIT" || true), main pid $(sd_main_pid))"
[ "$(sd_prop NRestarts)" = $((restarts + 1)) ] ||
	vb_fail "NRestarts is $(sd_prop NRestarts), expected $((restarts + 1))"
sd_handover
echo "ok: systemd restarted the broker: pid $(sd_main_pid), NRestarts $(sd_prop NRestarts)"

hit=$(sd_wait_event 10 "$since" VB_EVENT=restore VB_GROUP="$G_NIC1") ||
	vb_fail "the restarted broker logged no VB_EVENT=restore of group $G_NIC1"
echo "journal: $(sd_field "$hit" MESSAGE)"
vb_try vfioctl leases --json
got=$(vb_lease_pid "$G_NIC1")
[ "$got" = "$lpid" ] || vb_fail "after the restart the lease of group $G_NIC1 has pid '$got', expected $lpid"
echo "ok: vfioctl leases knows the lease of group $G_NIC1 (pid $lpid)"
vb_try vb_vfioctl_as 2002 lease "$G_NIC1" -- /bin/true
msg=$(grep -m1 '^vfioctl: busy: ' <<<"$VB_ERR") || vb_fail "uid 2002: expected 'vfioctl: busy: ...', got: $VB_ERR"
grep -qw 2000 <<<"$msg" || vb_fail "the busy message does not name uid 2000: $msg"

kill -KILL -- "-$SD_HOLDER"
wait "$SD_HOLDER" 2>/dev/null || true
ended() { vb_lease_ended "$G_NIC1"; }
vb_wait 5 ended || vb_fail "the restored lease did not end within 5 s of its holder's death"
echo "ok: the holder's death ended the restored lease"
