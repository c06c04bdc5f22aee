# shellcheck shell=bash
# Scenario: what `systemctl stop` of a VM's unit does to its lease (issue 14, item 4).
# vb-pins: uid 2000's VM as a unit of its own (vb-vm2.service) leases the first e1000e and leaves vm-probe's child keeping only a device fd; after `systemctl daemon-reexec` both are still in the lease's cgroup and the unit still active with the holder as MainPID; `systemctl stop vb-vm2` ends the unit's main process (the holder, vfioctl lease, on SIGTERM) and systemd reports the unit stopped, but the child, in the lease's cgroup outside the unit's, survives the stop: the group is not free (the lease shows releasing, uid 2002 is answered busy), systemd-cgls shows the child under /vfio-broker, and `vfioctl remove --hard` kills it and frees the group
vb_strict
# shellcheck source-path=SCRIPTDIR source=../sd-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../sd-lib.sh"
sd_need_service

vm=vb-vm2.service
pidfile=$VB_SHARE/stop-child.pid
log=$VB_SHARE/stop-probe.log
rm -f "$pidfile" "$log"
cleanup() {
	systemctl stop "$vm" 2>/dev/null || true
	systemctl reset-failed "$vm" 2>/dev/null || true
	[ ! -s "$pidfile" ] || kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
}
trap cleanup EXIT

# As in 42-sd-lease-cgroup: setpriv, since uid 2000 has no passwd entry for User=.
vb_try systemd-run --unit="$vm" --property=Type=exec -- \
	setpriv --reuid=2000 --regid=2000 --clear-groups -- vfioctl lease "$G_NIC1" -- /bin/sh -c \
	"$VB_BUILD/vm-probe --bdf $NIC1 --keep-device-fd $pidfile >$log 2>&1 && exec sleep 600"
[ "$VB_RC" = 0 ] ||
	vb_fail_early "systemd-run failed (status $VB_RC): $VB_ERR $(journalctl -q -u "$vm" | tail -n 3)"
vb_wait 30 test -s "$pidfile" || vb_fail_early "vm-probe's child did not start: $(tail -n 3 "$log" 2>/dev/null)"
child=$(cat "$pidfile")
holder=$(sd_prop MainPID "$vm")
lease_cg=$(sed -n 's/^0:://p' "/proc/$child/cgroup")
echo "holder $holder ($vm's MainPID); child $child keeps only a device fd, in $lease_cg"
[[ $lease_cg =~ ^/vfio-broker/lease-${G_NIC1}-[0-9]+$ ]] || vb_fail "the child is in $lease_cg, not in its lease's cgroup"

# systemd re-executed keeps both where they are and still knows the holder as the
# unit's main process (42-sd-lease-cgroup checks daemon-reload; this costs 20-60 s
# under TCG, so it is done once, here).
vb_try systemctl daemon-reexec
[ "$VB_RC" = 0 ] || vb_fail "systemctl daemon-reexec failed (status $VB_RC): $VB_ERR"
[ "$(sed -n 's/^0:://p' "/proc/$holder/cgroup")" = "$lease_cg" ] ||
	vb_fail "after daemon-reexec the holder is in $(sed -n 's/^0:://p' "/proc/$holder/cgroup")"
[ "$(sed -n 's/^0:://p' "/proc/$child/cgroup")" = "$lease_cg" ] ||
	vb_fail "after daemon-reexec the child is in $(sed -n 's/^0:://p' "/proc/$child/cgroup")"
[ "$(systemctl is-active "$vm")" = active ] && [ "$(sd_prop MainPID "$vm")" = "$holder" ] ||
	vb_fail "after daemon-reexec $vm is $(systemctl is-active "$vm") with MainPID $(sd_prop MainPID "$vm"), not active with $holder"
echo "ok: after daemon-reexec holder and child are still in $lease_cg, $vm active with MainPID $holder"

vb_try systemctl stop "$vm"
[ "$VB_RC" = 0 ] || vb_fail "systemctl stop $vm failed (status $VB_RC): $VB_ERR"
state=$(systemctl is-active "$vm" || true)
echo "$vm after the stop: $state, Result=$(sd_prop Result "$vm"), ExecMainStatus=$(sd_prop ExecMainStatus "$vm")"
[ "$state" != active ] || vb_fail "$vm is still active after systemctl stop"
vb_wait 10 vb_gone "$holder" || vb_fail "the holder $holder survived systemctl stop"
sleep 1 # what systemd would kill, it has killed by now
! vb_gone "$child" || vb_fail "the child in the lease's cgroup did not survive systemctl stop: systemd reaches the lease cgroup after all"
echo "ok: systemctl stop ended the holder; the child $child survives it in $lease_cg"
systemd-cgls --no-pager /vfio-broker | sed 's/^/  | /'
systemd-cgls --no-pager /vfio-broker | grep -q "[├└]─$child " || vb_fail "systemd-cgls /vfio-broker does not show the child $child"
state=$(vb_lease_field "$G_NIC1" state)
[ "$state" = releasing ] || vb_fail "the lease of group $G_NIC1 is '$state', expected releasing (its file is still open)"
vb_try vb_vfioctl_as 2002 lease "$G_NIC1" -- /bin/true
grep -q '^vfioctl: busy: ' <<<"$VB_ERR" || vb_fail "uid 2002: expected busy while the child holds the device, got: $VB_ERR"
echo "ok: the lease is releasing and the group busy while the child keeps its device fd"

vb_try vfioctl remove --hard "$G_NIC1"
[ "$VB_RC" = 0 ] || vb_fail "vfioctl remove --hard failed (status $VB_RC): $VB_ERR"
vb_wait 10 vb_gone "$child" || vb_fail "the child survived remove --hard"
vb_wait 10 vb_lease_ended "$G_NIC1" || vb_fail "group $G_NIC1 is still leased after remove --hard"
echo "ok: remove --hard killed the child and freed group $G_NIC1"
