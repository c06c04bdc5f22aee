# shellcheck shell=bash
# Scenario: a lease's cgroup under the real systemd (issue 14, item 4).
# vb-pins: uid 2000's VM, run as a unit of its own (systemd-run: vb-vm.service), leases the first e1000e; its holder and every process forked after the grant (vm-probe's child keeping only a VFIO device fd) are in /vfio-broker/lease-G-SINCE, a top-level cgroup beside systemd's slices, not in vb-vm.service's cgroup nor in the broker's; systemd-cgls shows the admin that path with the holder's pid; systemctl status vb-vm marks the holder as a main pid outside the unit's cgroup (‣); systemd leaves it there (same cgroup, same pids, vb-vm.service still active with the same MainPID) across daemon-reload and the restart of an unrelated unit with resource limits (daemon-reexec: 43-sd-unit-stop); `vfioctl remove --hard` through the sandboxed service kills the holder and the child holding only a device fd, systemd records vb-vm.service's main process as killed by SIGKILL, and uid 2002 then leases the group and reads the device
vb_strict
# shellcheck source-path=SCRIPTDIR source=../sd-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../sd-lib.sh"
sd_need_service

vm=vb-vm.service
other=vb-unrelated.service
pidfile=$VB_SHARE/cg-child.pid
log=$VB_SHARE/cg-probe.log
held=$VB_SHARE/cg-held
rm -f "$pidfile" "$log" "$held"
cleanup() {
	systemctl stop "$vm" "$other" 2>/dev/null || true
	systemctl reset-failed "$vm" "$other" 2>/dev/null || true
	[ ! -s "$pidfile" ] || kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
}
trap cleanup EXIT

# A VM as an admin runs one: a service of its own, as the VM's user (setpriv: uid
# 2000 has no passwd entry, which User= needs). The command leases the group
# (vfioctl lease, the main process, is the holder), probes the device and leaves a
# child that keeps only a device fd, then sleeps.
vb_try systemd-run --unit="$vm" --property=Type=exec -- \
	setpriv --reuid=2000 --regid=2000 --clear-groups -- vfioctl lease "$G_NIC1" -- /bin/sh -c \
	"$VB_BUILD/vm-probe --bdf $NIC1 --keep-device-fd $pidfile >$log 2>&1 && touch $held && exec sleep 600"
[ "$VB_RC" = 0 ] ||
	vb_fail_early "systemd-run failed (status $VB_RC): $VB_ERR $(journalctl -q -u "$vm" | tail -n 3)"
vb_wait 30 test -e "$held" ||
	vb_fail_early "the VM did not start: $(tail -n 3 "$log" 2>/dev/null | tr '\n' ' '); $(systemctl status --no-pager "$vm" 2>&1 | tail -n 5)"
vb_wait 10 test -s "$pidfile" || vb_fail_early "vm-probe's child did not start: $(tail -n 3 "$log")"
child=$(cat "$pidfile")
holder=$(sd_prop MainPID "$vm")
lpid=$(vb_lease_pid "$G_NIC1")
[ "$lpid" = "$holder" ] || vb_fail "the lease's pid is $lpid, expected $vm's main pid $holder (vfioctl lease)"
grep -q "child pid=$child holds only device fd" "$log" || vb_fail "the child read nothing: $(tail -n 3 "$log")"

cg_of() { sed -n 's/^0:://p' "/proc/$1/cgroup"; }
lease_cg=$(cg_of "$holder")
echo "holder: pid $holder ($vm's MainPID), cgroup $lease_cg"
echo "child keeping only a device fd: pid $child, cgroup $(cg_of "$child")"
echo "$vm's own cgroup: $(sd_prop ControlGroup "$vm"); the broker's: $(sd_prop ControlGroup)"
[[ $lease_cg =~ ^/vfio-broker/lease-${G_NIC1}-[0-9]+$ ]] ||
	vb_fail "the holder is in cgroup '$lease_cg', not in /vfio-broker/lease-$G_NIC1-SINCE"
[ "$(cg_of "$child")" = "$lease_cg" ] || vb_fail "the child is in $(cg_of "$child"), not in its lease's $lease_cg"
# What the admin sees: systemctl status names the main pid outside the unit's cgroup
# (‣), systemd-cgls the lease's cgroup beside the slices, with the holder's pid.
echo "--- systemctl status $vm"
systemctl status --no-pager "$vm" 2>&1 | sed -n '1,10p' | sed 's/^/  | /'
cgls=$(systemd-cgls --no-pager 2>&1)
echo "--- systemd-cgls (the root's children and the lease's lines)"
grep -E "^(├|└)─|lease-|[├└]─($holder|$child) " <<<"$cgls" | sed 's/^/  | /'
grep -qE "^[├└]─vfio-broker( \(#[0-9]+\))?$" <<<"$cgls" || vb_fail "systemd-cgls shows no top-level vfio-broker"
grep -qE "^[│ ] [├└]─${lease_cg##*/}( \(#[0-9]+\))?$" <<<"$cgls" || vb_fail "systemd-cgls shows no ${lease_cg##*/} under vfio-broker"
grep -qE "^[│ ] [│ ] [├└]─$holder vfioctl lease $G_NIC1 " <<<"$cgls" || vb_fail "systemd-cgls does not show the holder $holder in ${lease_cg##*/}"
echo "ok: systemd-cgls shows vfio-broker/${lease_cg##*/} with the holder $holder"
systemctl status --no-pager "$vm" 2>&1 | grep -q "‣ $holder vfioctl" ||
	vb_fail "systemctl status $vm does not mark the holder as outside its cgroup (‣)"

same_place() {
	local what=$1
	[ -d "/sys/fs/cgroup$lease_cg" ] || vb_fail "after $what the lease cgroup $lease_cg is gone"
	[ "$(cg_of "$holder")" = "$lease_cg" ] || vb_fail "after $what the holder is in $(cg_of "$holder")"
	[ "$(cg_of "$child")" = "$lease_cg" ] || vb_fail "after $what the child is in $(cg_of "$child")"
	[ "$(systemctl is-active "$vm")" = active ] || vb_fail "after $what $vm is $(systemctl is-active "$vm")"
	[ "$(sd_prop MainPID "$vm")" = "$holder" ] || vb_fail "after $what $vm's MainPID is $(sd_prop MainPID "$vm")"
	echo "ok: after $what holder and child are still in $lease_cg, $vm active with MainPID $holder; procs: $(tr '\n' ' ' <"/sys/fs/cgroup$lease_cg/cgroup.procs")"
}
t=$SECONDS
vb_try systemctl daemon-reload
same_place "systemctl daemon-reload"
vb_try systemd-run --unit="$other" --property=MemoryMax=64M --property=TasksMax=4 -- sleep 600
vb_try systemctl restart "$other"
same_place "systemctl restart $other (MemoryMax=, TasksMax=)"
echo "systemd's actions took $((SECONDS - t)) s"
systemctl stop "$other"

since=$(sd_now)
vb_try vfioctl remove --hard "$G_NIC1"
[ "$VB_RC" = 0 ] || vb_fail "vfioctl remove --hard failed (status $VB_RC): $VB_ERR"
vb_wait 10 vb_gone "$child" || vb_fail "the child holding only a device fd survived remove --hard"
vb_wait 10 vb_gone "$holder" || vb_fail "the holder survived remove --hard"
echo "ok: the hard removal killed the holder and the child holding only a device fd"
vb_wait 10 vb_lease_ended "$G_NIC1" || vb_fail "group $G_NIC1 is still leased after remove --hard"
gone_unit() { [ "$(systemctl is-active "$vm")" != active ]; }
vb_wait 10 gone_unit || vb_fail "$vm is still active"
echo "$vm: ActiveState=$(sd_prop ActiveState "$vm") Result=$(sd_prop Result "$vm") ExecMainStatus=$(sd_prop ExecMainStatus "$vm") ExecMainCode=$(sd_prop ExecMainCode "$vm")"
[ "$(sd_prop Result "$vm")" = signal ] || vb_fail "systemd records $vm's result as '$(sd_prop Result "$vm")', expected signal (killed)"
[ "$(sd_prop ExecMainStatus "$vm")" = 9 ] || vb_fail "systemd records $vm's main status as $(sd_prop ExecMainStatus "$vm"), expected 9 (SIGKILL)"
hit=$(sd_wait_event 10 "$since" VB_EVENT=remove) || vb_fail "the broker logged no VB_EVENT=remove"
echo "journal: $(sd_field "$hit" MESSAGE)"

vb_try vb_vfioctl_as 2002 lease "$G_NIC1" -- "$VB_BUILD/vm-probe" --bdf "$NIC1"
[ "$VB_RC" = 0 ] || vb_fail "uid 2002 could not lease group $G_NIC1 after the removal: $VB_ERR"
vb_check_probe "$VB_OUT" "$NIC1"
