# shellcheck shell=bash
# Scenario (d): deny by default.
# vb-pins: uid 2001, in no policy rule, asks to lease the e1000e's group: vfioctl exits non-zero with "vfioctl: denied: REASON" where the reason names the uid, the policy or the rule, and the command is never run
vb_strict
vb_need_broker

ran=$VB_SHARE/deny-ran
rm -f "$ran"
vb_try vb_vfioctl_as 2001 lease "$G_NIC1" -- /bin/touch "$ran"
[ "$VB_RC" != 0 ] || vb_fail "uid 2001 was granted group $G_NIC1"
[ ! -e "$ran" ] || vb_fail "the command ran although the lease was refused"
msg=$(grep -m1 '^vfioctl: denied: ' <<<"$VB_ERR") ||
	vb_fail "expected 'vfioctl: denied: ...' on stderr, got: $VB_ERR"
reason=${msg#vfioctl: denied: }
grep -qiE '2001|polic|rule|not allowed' <<<"$reason" ||
	vb_fail "the denial does not say why: '$reason'"
echo "ok: denied, reason: $reason"
