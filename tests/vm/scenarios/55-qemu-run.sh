# shellcheck shell=bash
# Scenario: the project's first user, an unprivileged VM, with Debian's own
# unmodified QEMU (the host's qemu-system-x86_64 7.2, over 9p).
# vb-pins: as uid 2000, qemu-system-x86_64 -device vfio-pci,host=NIC alone fails with "Permission denied" on /dev/vfio/G; under `vfioctl run --device NIC --memlock 65M` the same QEMU starts, its QMP query-pci shows 8086:10d3 (as sysfs), the lease's pid is QEMU's own, and after QMP quit (exit 0) the lease has ended
vb_qemu_scenario

# The rules the QEMU scenarios run under: the inner machine's RAM + 1 MiB.
vb_qemu_policy "$VB_QEMU_MEMLOCK"

sock=$VB_SHARE/qemu-55.sock
mapfile -t qemu < <(vb_qemu_args "$sock" "$NIC1")

# Without the broker: what a new user sees today.
vb_try vb_as 2000 "${qemu[@]}"
[ "$VB_RC" != 0 ] || vb_fail "uid 2000's QEMU opened /dev/vfio/$G_NIC1 without the broker"
grep -q "failed to open /dev/vfio/$G_NIC1: Permission denied" <<<"$VB_ERR" ||
	vb_fail "expected QEMU's 'failed to open /dev/vfio/$G_NIC1: Permission denied', got: $VB_ERR"
echo "ok: without the broker QEMU gets EACCES on /dev/vfio/$G_NIC1"

# Through the broker: the command the README shows. The background job is
# setpriv, then vfioctl, then QEMU: one pid throughout.
rm -f "$sock"
log=$VB_SHARE/qemu-55.log
t0=$SECONDS
setpriv --reuid=2000 --regid=2000 --clear-groups -- "$VB_BUILD/vfioctl" --socket "$VB_SOCK" \
	run --device "$NIC1" --memlock "$VB_QEMU_MEMLOCK" -- "${qemu[@]}" </dev/null >"$log" 2>&1 &
pid=$!
qemu_pid=$pid
echo "\$ vfioctl run --device $NIC1 --memlock $VB_QEMU_MEMLOCK -- ${qemu[*]}   (uid 2000, pid $pid)"
# QMP answers once vfio-pci has been realized (the inner RAM pinned).
if ! vb_qemu_wait_qmp "$pid" "$sock"; then
	cat "$log"
	vb_fail "QEMU under vfioctl run did not answer on QMP (exited, or 60 s passed)"
fi
echo "QEMU answers on QMP after $((SECONDS - t0)) s"
ids=$(vb_qmp_pci_ids "$sock" vf0) || vb_fail "query-pci failed"
[ "$ids" = "$(vb_pci_id "$NIC1")" ] || vb_fail "the inner machine shows $ids, sysfs says $(vb_pci_id "$NIC1")"
echo "ok: query-pci in the inner machine shows $ids for $NIC1"
[ "$(grep VmLck "/proc/$pid/status" | awk '{print $2}')" -gt 0 ] || vb_fail "QEMU pinned no memory"
holder=$(vb_lease_pid "$G_NIC1") || vb_fail "cannot read vfioctl leases --json"
[ "$holder" = "$pid" ] || vb_fail "the lease of group $G_NIC1 names pid $holder, QEMU is pid $pid"
echo "ok: the lease's holder is QEMU itself (pid $pid), $(grep 'Max locked memory' "/proc/$pid/limits")"

vb_qemu_quit "$sock" 20 "$log"
echo "ok: QEMU quit cleanly"
vb_wait 10 vb_lease_ended "$G_NIC1" || vb_fail "the lease outlived QEMU"
[ "$(vb_holder_of "$G_NIC1")" = none ] || vb_fail "group $G_NIC1 still has a holder"
echo "ok: the lease ended with QEMU"
if grep -q vfio-broker-preload "$log"; then
	cat "$log"
	vb_fail "the shim complained"
fi
