# shellcheck shell=bash
# Scenario: hard removal reaches a child that keeps only a VFIO device fd (issue 13, item 2).
# vb-pins: with cgroup v2 on /sys/fs/cgroup the broker puts uid 2000's lease of the first e1000e in a cgroup of its own; vm-probe's forked child keeps only a device fd (no group fd, no container) and reads config space after its parent and the lease's holder have exited; `vfioctl remove --hard` kills it through cgroup.kill and answers ok, and uid 2002 can then lease the group and read the device. Before, the child kept reading, the removal failed after 10 s and the group stayed busy
vb_strict
vb_need_broker

# The guest's init mounts no cgroup file system; a systemd host has cgroup v2 here.
if ! grep -q '^[^ ]* /sys/fs/cgroup cgroup2 ' /proc/mounts; then
	echo "\$ mount -t cgroup2 none /sys/fs/cgroup"
	mount -t cgroup2 none /sys/fs/cgroup || vb_fail "cannot mount cgroup v2 on /sys/fs/cgroup"
fi
[ -e /sys/fs/cgroup/cgroup.procs ] || vb_fail "/sys/fs/cgroup is not cgroup v2"
# The broker chose its cgroup root at start-up: start it again, now that there is one.
vb_stop_broker
vb_start_broker || vb_fail "vfio-brokerd did not start again: $(tail -n 3 "$VB_BROKER_LOG" | tr '\n' ' ')"
vb_wait 5 grep -q "Lease cgroups under /sys/fs/cgroup/vfio-broker" "$VB_BROKER_LOG" ||
	vb_fail "the broker does not put leases in cgroups: $(grep -i cgroup "$VB_BROKER_LOG" | tail -n 2)"

holder_gone() {
	[ "$(vb_holder_of "$G_NIC1")" = none ] && vb_lease_ended "$G_NIC1"
}

pidfile=$VB_SHARE/keep-device.pid
log=$VB_SHARE/keep-device.log
rm -f "$pidfile" "$log"
echo "\$ vfioctl lease $G_NIC1 -- vm-probe --bdf $NIC1 --keep-device-fd $pidfile   (as uid 2000)"
vb_vfioctl_as 2000 lease "$G_NIC1" -- "$VB_BUILD/vm-probe" --bdf "$NIC1" \
	--keep-device-fd "$pidfile" </dev/null >"$log" 2>&1 ||
	vb_fail "the lease or the probe failed: $(tail -n 3 "$log" | tr '\n' ' ')"
vb_wait 10 test -s "$pidfile" || vb_fail "vm-probe's child did not start: $(tail -n 3 "$log")"
child=$(cat "$pidfile")
trap 'kill -KILL "$child" 2>/dev/null || true' EXIT
sleep 1.2 # a few more reads
! vb_gone "$child" || vb_fail "the child holding the device fd exited by itself: $(tail -n 3 "$log")"
grep -q "child pid=$child holds only device fd" "$log" || vb_fail "the child read nothing: $(tail -n 3 "$log")"
cg=$(sed -n 's/^0:://p' "/proc/$child/cgroup")
echo "child pid $child (uid $(awk '/^Uid:/ {print $3}' "/proc/$child/status")) reads $NIC1 through its device fd alone, in cgroup $cg"
case $cg in
/vfio-broker/lease-"$G_NIC1"-*) ;;
*) vb_fail "the child is in cgroup $cg, not in its lease's" ;;
esac
ls -l "/proc/$child/fd" | grep -q "/dev/vfio/$G_NIC1\$" &&
	vb_fail "the child still has the group file itself: the scenario would not show the escape"
! holder_gone || vb_fail "group $G_NIC1 shows no lease while the device fd is open"

vb_try vb_vfioctl remove --hard "$G_NIC1"
[ "$VB_RC" = 0 ] || vb_fail "remove --hard failed (status $VB_RC): $VB_ERR"
vb_wait 5 vb_gone "$child" || vb_fail "the child holding only a device fd survived remove --hard"
echo "ok: the child was killed by the hard removal"
vb_wait 5 holder_gone || vb_fail "group $G_NIC1 is still leased after remove --hard"

vb_try vb_vfioctl_as 2002 lease "$G_NIC1" -- "$VB_BUILD/vm-probe" --bdf "$NIC1"
[ "$VB_RC" = 0 ] || vb_fail "uid 2002 could not lease group $G_NIC1 after the removal: ${VB_ERR:-$(tail -n 1 <<<"$VB_OUT")}"
vb_check_probe "$VB_OUT" "$NIC1"
