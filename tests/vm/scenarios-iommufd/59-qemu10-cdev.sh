# shellcheck shell=bash
# Scenario (kernels with IOMMUFD and VFIO_DEVICE_CDEV only): the modern path
# with a real VMM. Debian bookworm-backports' QEMU 10, unmodified, takes an
# iommufd and a device cdev as fds (`-object iommufd,fd=`, `-device
# vfio-pci,fd=`, since QEMU 9.0), so it needs no shim and no access to
# /dev/iommu or /dev/vfio of its own. QEMU 10 comes from the cache that
# tests/vm/fetch-qemu10.sh fills on the host; the outer machine is the host's
# own QEMU 7.2, which the legacy scenarios 55-57 run inside too.
# vb-pins: QEMU 10 from bookworm-backports, as uid 2000, alone fails to open the device cdev (-device vfio-pci,host=,iommufd=); run by `vfioctl run --cdev --device NIC1` with the broker's /dev/iommu and the first e1000e's /dev/vfio/devices/vfioN in `-object iommufd,id=iommufd0,fd={iommufd} -device vfio-pci,iommufd=iommufd0,fd={fd}` it starts, the broker names QEMU itself as the holder, QMP query-pci in the inner machine shows 8086:10d3 (as sysfs), QEMU holds the cdev and /dev/iommu and no group file, and it quits cleanly (exit 0), after which the lease ends and the group opens through the legacy path again
vb_qemu_scenario
vb_need_qemu10

echo "outer machine: $(cat /sys/class/dmi/id/product_version 2>/dev/null || echo unknown)," \
	"run by the host's $(qemu-system-x86_64 --version | head -n 1)"
echo "inner machine: $("$QEMU10" --version | head -n 1) ($QEMU10)"
major=$("$QEMU10" --version | sed -nE '1s/^QEMU emulator version ([0-9]+)\..*/\1/p')
[ "${major:-0}" -ge 9 ] || vb_fail "$QEMU10 is not QEMU 9.0 or later, so it cannot take fds"

# run_with_cdev_fds BDF CMD...: the fd source. As uid 2000, vfioctl leases
# BDF's group on the cdev path, replaces `{iommufd}` and `{fd}` in CMD's
# arguments with the fd numbers the broker handed over, and becomes CMD (the
# broker set per-process accounting on the iommufd and raised the memlock
# to what the rule grants). It execs: the pid of a background
# `run_with_cdev_fds ... &` is QEMU's. (docs/qemu.md shows root handing the
# same two files by hand.)
run_with_cdev_fds() {
	local bdf=$1
	shift
	exec setpriv --reuid=2000 --regid=2000 --clear-groups -- "$VB_BUILD/vfioctl" \
		--socket "$VB_SOCK" run --cdev --device "$bdf" --memlock "$VB_QEMU_MEMLOCK" -- "$@"
}

# The rule that lets uid 2000 lease the first e1000e with the inner RAM's memlock.
vb_qemu_policy "$VB_QEMU_MEMLOCK"
[ "$(vb_holder_of "$G_NIC1")" = none ] || vb_fail_early "group $G_NIC1 ($NIC1) is held by another scenario"
node=$(vb_cdev_of "$NIC1") || vb_fail "no device cdev for $NIC1"
echo "$NIC1: $node ($(stat -c '%A %U' "$node")), /dev/iommu ($(stat -c '%A %U' /dev/iommu))"

sock=$VB_SHARE/qemu10-59.sock
mapfile -t qemu < <(vb_qemu10_args "$sock")

# Without the fds (the same command naming the device by host= instead):
# QEMU 10 opens the device cdev (root's, 0600) and /dev/iommu (0660 root)
# itself, the cdev first, and uid 2000 may open neither.
alone=()
for arg in "${qemu[@]}"; do
	arg=${arg/,fd=\{iommufd\}/}
	alone+=("${arg/fd=\{fd\}/host=$NIC1}")
done
vb_try vb_as 2000 "${alone[@]}"
[ "$VB_RC" != 0 ] || vb_fail "uid 2000's QEMU 10 opened $node and /dev/iommu by itself"
grep -qE "Failed to open $node|/dev/iommu.*Permission denied" <<<"$VB_ERR" ||
	vb_fail "expected QEMU 10 to fail to open $node or /dev/iommu, got: $VB_ERR"
echo "ok: without the fds QEMU 10 cannot open $node"

rm -f "$sock"
log=$VB_SHARE/qemu10-59.log
t0=$SECONDS
run_with_cdev_fds "$NIC1" "${qemu[@]}" </dev/null >"$log" 2>&1 &
pid=$!
qemu_pid=$pid
echo "\$ run_with_cdev_fds $NIC1 ${qemu[*]}   (uid 2000, pid $pid)"
# QMP answers once vfio-pci has been realized (the inner RAM mapped).
if ! vb_qemu_wait_qmp "$pid" "$sock"; then
	cat "$log"
	vb_fail "QEMU 10 with the cdev fds did not answer on QMP (exited, or 60 s passed)"
fi
echo "QEMU 10 answers on QMP after $((SECONDS - t0)) s; its command line:"
tr '\0' ' ' <"/proc/$pid/cmdline" | sed 's/^/  /'
echo
[ "$(stat -c %u "/proc/$pid")" = 2000 ] || vb_fail "QEMU 10 runs as uid $(stat -c %u "/proc/$pid"), not 2000"
ids=$(vb_qmp_pci_ids "$sock" vf0) || vb_fail "query-pci failed"
[ "$ids" = "$(vb_pci_id "$NIC1")" ] || vb_fail "the inner machine shows $ids, sysfs says $(vb_pci_id "$NIC1")"
echo "ok: query-pci in the inner machine shows $ids for $NIC1"
[ "$(vb_lease_pid "$G_NIC1")" = "$pid" ] ||
	vb_fail "the broker names pid $(vb_lease_pid "$G_NIC1") as holder of group $G_NIC1, not QEMU's $pid"
echo "ok: the broker's holder of group $G_NIC1 is QEMU 10 itself (pid $pid)"

# The fds QEMU holds: the cdev and an iommufd, and no group file (no shim,
# no legacy path).
fds=$(readlink "/proc/$pid/fd/"*)
grep -qx "$node" <<<"$fds" || vb_fail "QEMU 10 does not hold $node: $(tr '\n' ' ' <<<"$fds")"
grep -qx /dev/iommu <<<"$fds" || vb_fail "QEMU 10 holds no /dev/iommu"
! grep -qE '^/dev/vfio/([0-9]+|vfio)$' <<<"$fds" || vb_fail "QEMU 10 holds a group or container file: $(tr '\n' ' ' <<<"$fds")"
echo "ok: QEMU 10 holds $node and /dev/iommu, no group file; $(grep VmPin "/proc/$pid/status" | tr -s '\t ' ' ')"

vb_qemu_quit "$sock" 30 "$log" "QEMU 10"
echo "ok: QEMU 10 quit cleanly"

# The cdev is closed with QEMU: the group path works again (they exclude
# each other only while one is in use). With the broker as the fd source,
# its lease ends first.
vb_wait 20 vb_lease_ended "$G_NIC1" || vb_fail "the lease of group $G_NIC1 outlived QEMU 10"
vb_try "$VB_BUILD/vm-probe" --open "$G_NIC1" --bdf "$NIC1"
[ "$VB_RC" = 0 ] || vb_fail "group $G_NIC1 does not open after QEMU 10 closed the cdev"
vb_check_probe "$VB_OUT" "$NIC1"
echo "scenario time: $SECONDS s"
