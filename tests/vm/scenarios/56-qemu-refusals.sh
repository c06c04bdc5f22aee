# shellcheck shell=bash
# Scenario: the ways an unprivileged QEMU is refused, and hard removal.
# vb-pins: with policy memlock 32M, `vfioctl run --memlock 65M -- qemu ...` exits 1 with the broker's message naming 32M and 65M before QEMU starts; with 65M, while uid 2000's QEMU holds the group a second VMM (uid 2002 or uid 2000) gets busy naming uid 2000; `vfioctl remove --hard G` kills that QEMU (SIGKILL) and the group is free again for uid 2002
vb_qemu_scenario

sock=$VB_SHARE/qemu-56.sock
mapfile -t qemu < <(vb_qemu_args "$sock" "$NIC1")

# Policy below the inner machine's RAM: refused before QEMU starts.
vb_qemu_policy 32M
rm -f "$sock"
vb_try vb_vfioctl_as 2000 run --device "$NIC1" --memlock "$VB_QEMU_MEMLOCK" -- "${qemu[@]}"
[ "$VB_RC" = 1 ] || vb_fail "expected exit status 1, got $VB_RC"
grep -q "^vfioctl: denied: rule vm-nic gives 32M of locked memory (memlock), but $VB_QEMU_MEMLOCK was asked for" <<<"$VB_ERR" ||
	vb_fail "the refusal does not give both sizes: $VB_ERR"
[ ! -e "$sock" ] || vb_fail "QEMU started although the lease was refused"
[ "$(vb_holder_of "$G_NIC1")" = none ] || vb_fail "the refused lease left a holder"
echo "ok: refused before QEMU started, with both sizes"
vb_qemu_policy "$VB_QEMU_MEMLOCK"

# One QEMU holds the group.
log=$VB_SHARE/qemu-56.log
setpriv --reuid=2000 --regid=2000 --clear-groups -- "$VB_BUILD/vfioctl" --socket "$VB_SOCK" \
	run --device "$NIC1" --memlock "$VB_QEMU_MEMLOCK" -- "${qemu[@]}" </dev/null >"$log" 2>&1 &
pid=$!
qemu_pid=$pid
vb_qemu_wait_qmp "$pid" "$sock" || { cat "$log"; vb_fail "the first QEMU did not start"; }
echo "uid 2000's QEMU (pid $pid) holds group $G_NIC1"

# A second VMM for the same group, another user and the same one: busy.
mapfile -t qemu2 < <(vb_qemu_args "$VB_SHARE/qemu-56b.sock" "$NIC1")
for uid in 2002 2000; do
	vb_try vb_vfioctl_as "$uid" run --device "$NIC1" -- "${qemu2[@]}"
	[ "$VB_RC" = 1 ] || vb_fail "uid $uid's second VMM: expected exit status 1, got $VB_RC"
	msg=$(grep -m1 '^vfioctl: busy: ' <<<"$VB_ERR") || vb_fail "expected 'vfioctl: busy: ...', got: $VB_ERR"
	grep -qw 2000 <<<"$msg" || vb_fail "the busy message does not name uid 2000: $msg"
	echo "ok: uid $uid: $msg"
done

# Hard removal kills QEMU, the holder, and frees the group.
vb_try vb_vfioctl remove --hard "$G_NIC1"
[ "$VB_RC" = 0 ] || vb_fail "vfioctl remove --hard failed: $VB_ERR"
vb_wait 10 vb_gone "$pid" || vb_fail "QEMU (pid $pid) survived the hard removal"
rc=0
wait "$pid" || rc=$?
qemu_pid=
[ "$rc" = 137 ] || vb_fail "QEMU exited with status $rc, expected 137 (SIGKILL)"
echo "ok: QEMU was killed (status $rc)"
[ "$(vb_holder_of "$G_NIC1")" = none ] || vb_fail "group $G_NIC1 still has a holder"
vb_try vb_vfioctl_as 2002 lease "$G_NIC1" -- /bin/true
[ "$VB_RC" = 0 ] || vb_fail "uid 2002 cannot lease group $G_NIC1 after the removal: $VB_ERR"
echo "ok: group $G_NIC1 is free again"
