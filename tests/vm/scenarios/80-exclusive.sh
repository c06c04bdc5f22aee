# shellcheck shell=bash
# Scenario (f): one holder per group.
# vb-pins: while uid 2000 holds the e1000e's group, uid 2002 (also allowed) gets "vfioctl: busy" naming uid 2000, `vfioctl list --json` shows holder uid 2000, and root's own open of /dev/vfio/G fails with EBUSY
vb_strict
vb_need_broker

held=$VB_SHARE/f-held
release=$VB_SHARE/f-release
rm -f "$held" "$release"
# The holder runs in its own session, so that it can be killed as a whole.
setsid setpriv --reuid=2000 --regid=2000 --clear-groups -- \
	"$VB_BUILD/vfioctl" --socket "$VB_SOCK" lease "$G_NIC1" -- /bin/sh -c \
	"touch $held; while [ ! -e $release ]; do sleep 0.1; done" \
	</dev/null >"$VB_SHARE/f-holder.log" 2>&1 &
holder=$!
cleanup() {
	touch "$release"
	vb_wait 5 eval "! kill -0 $holder 2>/dev/null" || kill -KILL -- "-$holder" 2>/dev/null || true
}
trap cleanup EXIT
if ! vb_wait 20 test -e "$held"; then
	cat "$VB_SHARE/f-holder.log"
	vb_fail "uid 2000's lease of group $G_NIC1 did not start within 20 s"
fi
echo "uid 2000 holds group $G_NIC1 (vfioctl pid $holder)"

owner=$(vb_holder_of "$G_NIC1") || vb_fail "cannot read the holder from vfioctl list --json"
[ "$owner" = 2000 ] || vb_fail "vfioctl list --json shows holder '$owner', expected uid 2000"
echo "ok: list shows holder uid 2000"

vb_try vb_vfioctl_as 2002 lease "$G_NIC1" -- /bin/true
[ "$VB_RC" != 0 ] || vb_fail "uid 2002 was granted group $G_NIC1 while uid 2000 holds it"
msg=$(grep -m1 '^vfioctl: busy: ' <<<"$VB_ERR") || vb_fail "expected 'vfioctl: busy: ...', got: $VB_ERR"
grep -qw 2000 <<<"$msg" || vb_fail "the busy message does not name uid 2000: $msg"
echo "ok: $msg"

vb_try "$VB_BUILD/vm-probe" --open-direct "/dev/vfio/$G_NIC1"
grep -q 'errno=EBUSY' <<<"$VB_OUT" || vb_fail "root's direct open of /dev/vfio/$G_NIC1 should fail with EBUSY"
echo "ok: root cannot open /dev/vfio/$G_NIC1 behind the broker's back (EBUSY)"

touch "$release"
vb_wait 10 eval "! kill -0 $holder 2>/dev/null" || vb_fail "the holder did not finish"
wait "$holder" || vb_fail "the holder's lease ended with status $?: $(cat "$VB_SHARE/f-holder.log")"
