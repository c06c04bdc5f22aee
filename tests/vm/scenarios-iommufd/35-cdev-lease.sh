# shellcheck shell=bash
# Scenario (kernels with IOMMUFD and VFIO_DEVICE_CDEV only: 6.12-iommufd;
# tests/vm/check.sh adds this directory for them): the cdev path through the
# broker (issue 15). Runs after 30-broker-start, on its policy (uid 2000 may
# lease the first e1000e, memlock 64M) and one rule of its own for the second.
# vb-pins: the broker finds /dev/iommu at start-up and `vfioctl list --json` gives the first e1000e the paths group,cdev; uid 2000 runs vm-iommufd-probe under `vfioctl run --cdev --device NIC1` with --fds {iommufd}:{fd}: it binds the handed cdev to the handed iommufd, attaches an IOAS, maps DMA and reads 8086:10d3 from config space; a group held through the legacy path refuses the cdev path ("through the legacy group path") and a group held through cdev refuses the legacy path ("through the cdev path") while root's own open of /dev/vfio/G is EBUSY; the holder's death frees the group for the legacy path; remove --hard kills a cdev holder; with RLIMIT_MEMLOCK 24M, a second uid-2000 process maps 16M while the first holds 16M mapped (per-process accounting: per user it would be 32M, ENOMEM)
vb_strict
vb_need_broker
probe=$VB_BUILD/vm-iommufd-probe
[ -c /dev/iommu ] || vb_skip "this kernel has no /dev/iommu (CONFIG_IOMMUFD is off): no cdev path"
[ -x "$probe" ] || vb_fail_early "vm-iommufd-probe is not built ($probe)"

grep -q "Lease paths: group, and cdev" "$VB_BROKER_LOG" ||
	vb_fail "the broker did not detect the cdev path: $(grep 'Lease paths' "$VB_BROKER_LOG")"
paths=$(vb_vfioctl list --json | python3 -c '
import json, sys
for g in json.load(sys.stdin)["groups"]:
    for d in g["devices"]:
        if d["address"] == sys.argv[1]:
            print(d.get("paths", "none"))
' "$NIC1")
[ "$paths" = group,cdev ] || vb_fail "list says $NIC1 takes '$paths', not group,cdev"
echo "ok: $NIC1 takes the paths $paths"

# The second e1000e for uid 2000, without memlock: its RLIMIT_MEMLOCK stays what we set.
bg=()
cleanup() {
	for p in "${bg[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	rm -f "$VB_POLICY/35-cdev.json"
	vb_vfioctl reload >/dev/null || true
}
trap cleanup EXIT
vb_write_policy 35-cdev <<EOT
{"rules": [{"name": "cdev-nic2", "users": [2000], "devices": [{"address": "$NIC2"}], "allow": ["lease"]}]}
EOT
vb_vfioctl reload >/dev/null

# Background holders run without a shell in between, so that $! is vfioctl (then the probe).
as2000=(setpriv --reuid=2000 --regid=2000 --clear-groups --)
free_again() { vb_wait 30 vb_lease_ended "$1" || vb_fail "group $1 is still leased: $(vb_vfioctl leases)"; }
# bg_cdev LOG BDF PROBE-ARGS...: uid 2000 holds BDF through `vfioctl run --cdev` in the background.
bg_cdev() {
	local log=$1 bdf=$2
	shift 2
	"${as2000[@]}" "$VB_BUILD/vfioctl" --socket "$VB_SOCK" run --cdev --device "$bdf" -- \
		"$probe" --fds '{iommufd}:{fd}' "$@" </dev/null >"$log" 2>&1 &
	bg+=($!)
	vb_wait 60 grep -qs "holding" "$log" || vb_fail "the cdev holder did not start: $(tail -n 3 "$log")"
}

# 1. An unprivileged client drives the device through the fds it was handed.
vb_try vb_vfioctl_as 2000 run --cdev --device "$NIC1" -- "$probe" --fds '{iommufd}:{fd}'
[ "$VB_RC" = 0 ] || vb_fail "run --cdev failed (status $VB_RC): ${VB_ERR:-$(tail -n 1 <<<"$VB_OUT")}"
grep -qx "vm-iommufd-probe: fds iommufd=3 dev=4 uid=2000" <<<"$VB_OUT" || vb_fail "the placeholders did not give 3:4 to uid 2000"
id=$(vb_pci_id "$NIC1")
grep -q "vendor=${id%:*} device_id=${id#*:} " <<<"$VB_OUT" || vb_fail "config space does not read $id"
grep -qx "vm-iommufd-probe: dma map+unmap .* ok" <<<"$VB_OUT" || vb_fail "no DMA map through the IOAS"
grep -qx "vm-iommufd-probe: ok" <<<"$VB_OUT" || vb_fail "vm-iommufd-probe did not finish"
free_again "$G_NIC1"

# 2. Held through the legacy path: the cdev path is refused, with the path named.
"${as2000[@]}" "$VB_BUILD/vfioctl" --socket "$VB_SOCK" lease "$G_NIC1" -- sleep 600 </dev/null >/dev/null 2>&1 &
bg+=($!)
vb_wait 30 eval '[ "$(vb_holder_of "$G_NIC1")" = 2000 ]' || vb_fail "the legacy lease did not start"
vb_try vb_vfioctl_as 2000 run --cdev --device "$NIC1" -- "$probe" --fds '{iommufd}:{fd}'
[ "$VB_RC" != 0 ] || vb_fail "the cdev path was granted while the group path holds group $G_NIC1"
grep -q "through the legacy group path" <<<"$VB_ERR" || vb_fail "the refusal does not name the legacy path: $VB_ERR"
kill -TERM "${bg[-1]}"
free_again "$G_NIC1"

# 3. Held through cdev: the legacy path is refused by the broker, and by the kernel (EBUSY).
bg_cdev "$VB_SHARE/cdev-hold.log" "$NIC1" --hold
holder=${bg[-1]}
vb_try vb_vfioctl_as 2000 lease "$G_NIC1" -- true
[ "$VB_RC" != 0 ] || vb_fail "the group path was granted while the cdev path holds group $G_NIC1"
grep -q "through the cdev path" <<<"$VB_ERR" || vb_fail "the refusal does not name the cdev path: $VB_ERR"
vb_try "$VB_BUILD/vm-probe" --open-direct "/dev/vfio/$G_NIC1"
grep -q "errno=EBUSY" <<<"$VB_OUT" || vb_fail "root's open of /dev/vfio/$G_NIC1 is not EBUSY while a cdev is bound"

# 4. The holder dies: both paths are free (the legacy one works at once).
kill -KILL "$holder"
free_again "$G_NIC1"
vb_try vb_vfioctl_as 2000 lease "$G_NIC1" -- "$VB_BUILD/vm-probe" --bdf "$NIC1"
[ "$VB_RC" = 0 ] || vb_fail "the group path failed after the cdev holder died: ${VB_ERR:-$(tail -n 1 <<<"$VB_OUT")}"
vb_check_probe "$VB_OUT" "$NIC1"
free_again "$G_NIC1"

# 5. Hard removal kills a cdev holder.
bg_cdev "$VB_SHARE/cdev-hard.log" "$NIC1" --hold
holder=${bg[-1]}
vb_try vb_vfioctl remove --hard "$G_NIC1"
[ "$VB_RC" = 0 ] || vb_fail "remove --hard failed (status $VB_RC): $VB_ERR"
vb_wait 30 vb_gone "$holder" || vb_fail "the cdev holder survived remove --hard"
free_again "$G_NIC1"

# 6. Per-process accounting: two processes of uid 2000, each pins 16M under a 24M limit.
mb16=$((16 << 20)) lim=$((24 << 20))
prlimit --memlock=$lim:$lim -- "${as2000[@]}" \
	"$VB_BUILD/vfioctl" --socket "$VB_SOCK" run --cdev --device "$NIC1" -- \
	"$probe" --fds '{iommufd}:{fd}' --map $mb16 --hold </dev/null >"$VB_SHARE/pin-a.log" 2>&1 &
bg+=($!)
vb_wait 60 grep -qs "holding" "$VB_SHARE/pin-a.log" || vb_fail "the first process did not pin 16M: $(tail -n 3 "$VB_SHARE/pin-a.log")"
echo "first process: $(grep 'VmLck' "$VB_SHARE/pin-a.log")"
vb_try prlimit --memlock=$lim:$lim -- "${as2000[@]}" \
	"$VB_BUILD/vfioctl" --socket "$VB_SOCK" run --cdev --device "$NIC2" -- \
	"$probe" --fds '{iommufd}:{fd}' --map $mb16
[ "$VB_RC" = 0 ] || vb_fail "a second uid-2000 process could not pin 16M beside the first (per-user accounting?): $(tail -n 1 <<<"$VB_OUT")"
grep -q "dma map .* size=$mb16 ok" <<<"$VB_OUT" || vb_fail "the second process mapped nothing"
echo "ok: uid 2000 pins 32M in two processes under a 24M RLIMIT_MEMLOCK each; second: $(grep VmLck <<<"$VB_OUT")"
kill -KILL "${bg[-1]}"
free_again "$G_NIC1"

# The control: the same two processes on iommufds opened by root without the broker keep
# the kernel's default, per-user accounting, and the second is refused (32M > 24M).
cdev_of() { echo "/dev/vfio/devices/$(ls "/sys/bus/pci/devices/$1/vfio-dev")"; }
prlimit --memlock=$lim:$lim -- "${as2000[@]}" "$probe" --fds 3:4 --map $mb16 --hold \
	3<>/dev/iommu 4<>"$(cdev_of "$NIC1")" </dev/null >"$VB_SHARE/user-a.log" 2>&1 &
bg+=($!)
vb_wait 60 grep -qs "holding" "$VB_SHARE/user-a.log" || vb_fail "the control's first process did not pin 16M: $(tail -n 3 "$VB_SHARE/user-a.log")"
vb_try prlimit --memlock=$lim:$lim -- "${as2000[@]}" "$probe" --fds 3:4 --map $mb16 \
	3<>/dev/iommu 4<>"$(cdev_of "$NIC2")"
[ "$VB_RC" != 0 ] && grep -q "IOMMU_IOAS_MAP: ENOMEM" <<<"$VB_OUT" ||
	vb_fail "per-user accounting let uid 2000 pin 32M under 24M: the comparison shows nothing"
echo "ok: with per-user accounting (the kernel's default) the second process gets ENOMEM"
kill -KILL "${bg[-1]}"
echo "35-cdev-lease: ${SECONDS} s"
