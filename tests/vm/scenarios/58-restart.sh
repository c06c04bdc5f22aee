# shellcheck shell=bash
# Scenario: restart without loss (issue 12, item 1) on the real kernel.
# vb-pins: uid 2000's `vfioctl lease G -- CMD` (vm-probe read the device through the fd, then CMD holds the group file) survives kill -9 of vfio-brokerd and its restart: `vfioctl leases` lists the lease with the same pid and uid 2000, uid 2002 gets busy naming uid 2000 from the broker, the holder reconnects by itself and hears a soft removal (which times out, nothing changed), and `vfioctl remove --hard G` kills the holder and frees the group for uid 2002
vb_strict
vb_need_broker

held=$VB_SHARE/58-held
log=$VB_SHARE/58-holder.log
rm -f "$held"
# The holder runs in its own session, so that it can be killed as a whole.
setsid setpriv --reuid=2000 --regid=2000 --clear-groups -- \
	"$VB_BUILD/vfioctl" --socket "$VB_SOCK" lease "$G_NIC1" --on-remove=ignore -- /bin/sh -c \
	"'$VB_BUILD/vm-probe' --bdf '$NIC1' && touch '$held' && exec sleep 600" \
	</dev/null >"$log" 2>&1 &
holder=$!
cleanup() {
	kill -KILL -- "-$holder" 2>/dev/null || true
	vb_broker_running || vb_start_broker >/dev/null || true
}
trap cleanup EXIT
if ! vb_wait 30 test -e "$held"; then
	cat "$log"
	vb_fail "uid 2000's lease of group $G_NIC1 did not start (or vm-probe failed) within 30 s"
fi
vb_check_probe "$(cat "$log")" "$NIC1"
pid=$(vb_lease_pid "$G_NIC1")
[ "$pid" = "$holder" ] || vb_fail "the lease of group $G_NIC1 is pid '$pid''s, expected vfioctl's ($holder)"
echo "uid 2000 holds group $G_NIC1 (vfioctl pid $holder)"

vb_crash_broker || vb_fail "vfio-brokerd survived kill -9"
vb_start_broker || vb_fail "vfio-brokerd did not start again: $(tail -n 3 "$VB_BROKER_LOG" | tr '\n' ' ')"
grep -q "EVENT=restore" "$VB_BROKER_LOG" || echo "note: no restore log line found in $VB_BROKER_LOG"

# The lease is known again: same holder, same uid.
vb_try vb_vfioctl leases --json
[ "$VB_RC" = 0 ] || vb_fail "vfioctl leases failed after the restart: $VB_ERR"
python3 -c '
import json, sys
for l in json.loads(sys.argv[1])["leases"]:
    if l["group"] == int(sys.argv[2]):
        if l["pid"] != int(sys.argv[3]) or l["uid"] != 2000 or l["state"] != "held":
            sys.exit("restored lease is %s, expected pid %s uid 2000 held" % (l, sys.argv[3]))
        break
else:
    sys.exit("group %s is not leased after the restart" % sys.argv[2])
' "$VB_OUT" "$G_NIC1" "$holder" || vb_fail "the lease was not restored as it was"
echo "ok: vfioctl leases lists group $G_NIC1, pid $holder, uid 2000, after kill -9 and restart"

# Another uid is refused by the broker (not only by the kernel's EBUSY).
vb_try vb_vfioctl_as 2002 lease "$G_NIC1" -- /bin/true
[ "$VB_RC" != 0 ] || vb_fail "uid 2002 was granted group $G_NIC1 after the restart"
msg=$(grep -m1 '^vfioctl: busy: ' <<<"$VB_ERR") || vb_fail "expected 'vfioctl: busy: ...', got: $VB_ERR"
grep -q 'held by uid 2000' <<<"$msg" || vb_fail "the broker did not name uid 2000: $msg"
echo "ok: $msg"

# The holder reconnected by itself, and hears the broker again.
vb_wait 15 grep -q 'the connection is back' "$log" ||
	{ cat "$log"; vb_fail "the holder did not reconnect within 15 s"; }
grep -m1 'the connection is back' "$log"
vb_try vb_vfioctl remove --soft "$G_NIC1" --timeout 2
if [ "$VB_RC" != 1 ] || ! grep -q '^vfioctl: timeout: ' <<<"$VB_ERR"; then
	vb_fail "the soft removal should time out (--on-remove=ignore), got status $VB_RC: $VB_ERR"
fi
grep -q 'an administrator asks for it back' "$log" ||
	{ cat "$log"; vb_fail "the soft removal's request did not reach the reconnected holder"; }
[ "$(vb_lease_pid "$G_NIC1")" = "$holder" ] || vb_fail "the timed-out soft removal changed the lease"
echo "ok: the reconnected holder heard the soft removal; it timed out with the lease unchanged"

# Hard removal still kills the holder and frees the group.
vb_try vb_vfioctl remove --hard "$G_NIC1"
[ "$VB_RC" = 0 ] || vb_fail "vfioctl remove --hard failed after the restart: $VB_ERR"
vb_wait 10 vb_gone "$holder" || vb_fail "the holder (pid $holder) survived the hard removal"
rc=0
wait "$holder" || rc=$?
[ "$rc" = 137 ] || vb_fail "the holder exited with status $rc, expected 137 (SIGKILL)"
echo "ok: the holder was killed (status $rc)"
[ "$(vb_holder_of "$G_NIC1")" = none ] || vb_fail "group $G_NIC1 still has a holder"
vb_try vb_vfioctl_as 2002 lease "$G_NIC1" -- "$VB_BUILD/vm-probe" --bdf "$NIC1"
[ "$VB_RC" = 0 ] || vb_fail "uid 2002 cannot lease group $G_NIC1 after the hard removal: $VB_ERR"
vb_check_probe "$VB_OUT" "$NIC1"
echo "ok: group $G_NIC1 is free again and usable by uid 2002"
