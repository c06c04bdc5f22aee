# shellcheck shell=bash
# Scenario: a group of two devices handed whole to one unmodified QEMU.
# vb-pins: `vfioctl run --device BR_E1 --device BR_E2 --memlock 65M -- qemu ... -device vfio-pci,host=BR_E1 -device vfio-pci,host=BR_E2` as uid 2000 leases the bridge group once (VFIO_BROKER_FDS has one entry), QMP query-pci shows both functions as 8086:100e, and QEMU quits cleanly, ending the lease
vb_qemu_scenario
vb_qemu_policy "$VB_QEMU_MEMLOCK"

sock=$VB_SHARE/qemu-57.sock
log=$VB_SHARE/qemu-57.log
rm -f "$sock"
mapfile -t qemu < <(vb_qemu_args "$sock" "$BR_E1" "$BR_E2")
echo "\$ vfioctl run --device $BR_E1 --device $BR_E2 --memlock $VB_QEMU_MEMLOCK -- ${qemu[*]}"
# /proc/PID/environ shows what vfioctl handed over.
setpriv --reuid=2000 --regid=2000 --clear-groups -- "$VB_BUILD/vfioctl" --socket "$VB_SOCK" \
	run --device "$BR_E1" --device "$BR_E2" --memlock "$VB_QEMU_MEMLOCK" -- "${qemu[@]}" \
	</dev/null >"$log" 2>&1 &
pid=$!
qemu_pid=$pid
vb_qemu_wait_qmp "$pid" "$sock" || { cat "$log"; vb_fail "QEMU did not start with the bridge group"; }
fds=$(tr '\0' '\n' <"/proc/$pid/environ" | sed -n 's/^VFIO_BROKER_FDS=//p')
[ "$fds" = "$G_BR=3" ] || vb_fail "expected VFIO_BROKER_FDS=$G_BR=3, got '$fds'"
for i in 0 1; do
	bdf=$BR_E1
	[ "$i" = 0 ] || bdf=$BR_E2
	ids=$(vb_qmp_pci_ids "$sock" "vf$i") || vb_fail "query-pci failed"
	[ "$ids" = "$(vb_pci_id "$bdf")" ] || vb_fail "vf$i shows $ids, sysfs says $(vb_pci_id "$bdf") for $bdf"
	echo "ok: vf$i ($bdf) shows $ids in the inner machine"
done
[ "$(vb_lease_pid "$G_BR")" = "$pid" ] || vb_fail "the lease of group $G_BR is not QEMU's"
vb_qemu_quit "$sock" 20 "$log"
vb_wait 10 vb_lease_ended "$G_BR" || vb_fail "the lease outlived QEMU"
echo "ok: QEMU quit cleanly and the lease ended"
