# shellcheck shell=bash
# Scenario (g): leases end with their holder.
# vb-pins: when the holder's command exits, and when the holder's whole process group is SIGKILLed, the group shows no holder within 5 s and uid 2002 can lease it and read the device
vb_strict
vb_need_broker

holder_gone() {
	[ "$(vb_holder_of "$G_NIC1")" = none ]
}

lease_as_2002() {
	vb_try vb_vfioctl_as 2002 lease "$G_NIC1" -- "$VB_BUILD/vm-probe" --bdf "$NIC1"
	[ "$VB_RC" = 0 ] || vb_fail "uid 2002 could not lease group $G_NIC1 after $1: ${VB_ERR:-$(tail -n 1 <<<"$VB_OUT")}"
	vb_check_probe "$VB_OUT" "$NIC1"
}

# 1. The command exits normally.
vb_try vb_vfioctl_as 2000 lease "$G_NIC1" -- /bin/true
[ "$VB_RC" = 0 ] || vb_fail "uid 2000's lease failed: $VB_ERR"
vb_wait 5 holder_gone || vb_fail "group $G_NIC1 still has holder $(vb_holder_of "$G_NIC1") 5 s after the lease ended"
lease_as_2002 "uid 2000's command exited"

# 2. The holder is killed.
held=$VB_SHARE/g-held
rm -f "$held"
setsid setpriv --reuid=2000 --regid=2000 --clear-groups -- \
	"$VB_BUILD/vfioctl" --socket "$VB_SOCK" lease "$G_NIC1" -- /bin/sh -c \
	"touch $held; exec sleep 600" </dev/null >"$VB_SHARE/g-holder.log" 2>&1 &
holder=$!
trap 'kill -KILL -- "-$holder" 2>/dev/null || true' EXIT
vb_wait 20 test -e "$held" || vb_fail "uid 2000's second lease did not start: $(cat "$VB_SHARE/g-holder.log")"
[ "$(vb_holder_of "$G_NIC1")" = 2000 ] || vb_fail "the list does not show uid 2000 holding group $G_NIC1"
echo "uid 2000 holds group $G_NIC1; SIGKILL to its process group $holder"
kill -KILL -- "-$holder"
wait "$holder" 2>/dev/null || true
vb_wait 5 holder_gone || vb_fail "group $G_NIC1 still has holder $(vb_holder_of "$G_NIC1") 5 s after the holder was killed"
lease_as_2002 "uid 2000's holder was killed"
