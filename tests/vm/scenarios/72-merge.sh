# shellcheck shell=bash
# Scenario: merge on the real kernel (issue 12, item 5; PROTOCOL.md "Gibson's merge questions").
# vb-pins: uid 2000 leases both e1000e groups with `vfioctl lease --merge`: vm-probe gets the broker's container in VFIO_BROKER_CONTAINER_FD, sets TYPE1v2 on it, maps DMA through it and opens and reads both devices through it (the kernel gives no device fd of a group whose container has no IOMMU); `leases` shows one container id for both; root's open of a merged group's node is EBUSY (a group file is open once); with the bridge group merged in as well, unmerge of the second e1000e's group while a device fd of it is open is refused as busy and says to close them, changes nothing, and after that fd is closed it detaches exactly that group: the other two keep their shared container; releasing the bridge group detaches it alone and the first e1000e keeps the container
vb_strict
vb_need_broker

vb_write_policy 72-merge <<EOT
{"rules": [
  {"name": "merge-all", "users": [2000],
   "devices": [{"address": "$NIC1"}, {"address": "$NIC2"},
               {"address": "$BR_E1"}, {"address": "$BR_E2"}],
   "allow": ["lease", "merge"], "memlock": "64M"}
]}
EOT
cleanup() {
	rm -f "$VB_POLICY/72-merge.json"
	vb_vfioctl reload >/dev/null || true
	[ -z "${child:-}" ] || kill -KILL "$child" 2>/dev/null || true
}
trap cleanup EXIT
vb_try vb_vfioctl reload
[ "$VB_RC" = 0 ] || vb_fail "vfioctl reload failed: $VB_ERR"

# 1. Two groups, one container, DMA and both devices through it.
vb_try vb_vfioctl_as 2000 lease "$G_NIC1" "$G_NIC2" --merge -- \
	"$VB_BUILD/vm-probe" --bdf "$NIC1" --bdf "$NIC2"
[ "$VB_RC" = 0 ] || vb_fail "the merged lease or the probe failed: ${VB_ERR:-$(tail -n 1 <<<"$VB_OUT")}"
grep -q '^vm-probe: container source=env ' <<<"$VB_OUT" ||
	vb_fail "vm-probe did not get the broker's container in VFIO_BROKER_CONTAINER_FD"
for g in "$G_NIC1" "$G_NIC2"; do
	grep -q "^vm-probe: group=$g already has a container" <<<"$VB_OUT" ||
		vb_fail "group $g was not in a container when the probe got it: the broker did not attach it"
done
grep -q '^vm-probe: dma map+unmap .* ok' <<<"$VB_OUT" || vb_fail "no DMA map through the merged container"
vb_check_probe "$VB_OUT" "$NIC1" "$NIC2"
echo "ok: one container, DMA through it, both devices read through it"
vb_wait 10 vb_lease_ended "$G_NIC1" || vb_fail "group $G_NIC1 is still leased after the probe exited"
vb_wait 10 vb_lease_ended "$G_NIC2" || vb_fail "group $G_NIC2 is still leased after the probe exited"

# 2. Three groups merged; inside the lease, as its holder, the rest of the questions.
# The inner script runs as uid 2000 and writes what it saw to $out/.
out=$VB_SHARE/merge
rm -rf "$out"
install -d -m 0777 "$out"
cat >"$out/inner.sh" <<'EOS'
set -u
cd "$OUT"
leases() { "$VB_BUILD/vfioctl" --socket "$VB_SOCK" leases --json >"$1" 2>"$1.err"; }
leases leases-merged.json
"$VB_BUILD/vm-probe" --bdf "$NIC2" --keep-device-fd "$OUT/child.pid" >probe.log 2>&1 ||
	echo "probe failed: $?" >>errors
for _ in $(seq 100); do [ -s child.pid ] && break; sleep 0.1; done
echo ready >ready
# Wait for root's re-open attempt (the scenario, outside).
for _ in $(seq 300); do [ -e reopened ] && break; sleep 0.1; done
"$VB_BUILD/vfioctl" --socket "$VB_SOCK" unmerge "$G_NIC2" >unmerge-busy.out 2>unmerge-busy.err
echo $? >unmerge-busy.rc
leases leases-after-busy.json
kill -KILL "$(cat child.pid)"
for _ in $(seq 100); do kill -0 "$(cat child.pid)" 2>/dev/null || break; sleep 0.1; done
"$VB_BUILD/vfioctl" --socket "$VB_SOCK" unmerge "$G_NIC2" >unmerge.out 2>unmerge.err
echo $? >unmerge.rc
leases leases-unmerged.json
# Release of one member: the broker takes it out of the container at once;
# the lease ends when every copy closes (vfioctl, the parent, keeps one).
"$VB_BUILD/vfioctl" --socket "$VB_SOCK" release "$G_BR" >release.out 2>release.err
echo $? >release.rc
leases leases-released.json
echo done >done
EOS
chmod 0755 "$out/inner.sh"
echo "\$ vfioctl lease $G_NIC1 $G_NIC2 $G_BR --merge -- bash inner.sh   (as uid 2000)"
OUT=$out VB_BUILD=$VB_BUILD VB_SOCK=$VB_SOCK NIC2=$NIC2 G_NIC2=$G_NIC2 G_BR=$G_BR \
	vb_vfioctl_as 2000 lease "$G_NIC1" "$G_NIC2" "$G_BR" --merge -- bash "$out/inner.sh" \
	</dev/null >"$out/lease.log" 2>&1 &
lease_pid=$!
vb_wait 60 test -e "$out/ready" ||
	vb_fail "the merged lease of three groups did not start: $(tail -n 3 "$out/lease.log" "$out/probe.log" 2>/dev/null | tr '\n' ' ')"
child=$(cat "$out/child.pid" 2>/dev/null || true)
[ -n "$child" ] || vb_fail "vm-probe's child did not start: $(tail -n 3 "$out/probe.log" | tr '\n' ' ')"

# Re-opening a merged group: the kernel keeps a group file open once.
vb_try "$VB_BUILD/vm-probe" --open-direct "/dev/vfio/$G_NIC1"
grep -q "errno=EBUSY" <<<"$VB_OUT" || vb_fail "root's open of merged group $G_NIC1 was not EBUSY: $VB_OUT"
touch "$out/reopened"
vb_wait 60 test -e "$out/done" || vb_fail "the inner script did not finish: $(tail -n 3 "$out/lease.log" | tr '\n' ' ')"
wait "$lease_pid" || vb_fail "the merged lease's command failed: $(tail -n 3 "$out/lease.log" | tr '\n' ' ')"
child=
[ ! -e "$out/errors" ] || vb_fail "inside the lease: $(cat "$out/errors")"

# containers FILE: "G=ID" per lease of the three groups, in group order.
containers() {
	python3 -c '
import json, sys
want = set(int(g) for g in sys.argv[2:])
ls = sorted((l["group"], l["container"]) for l in json.load(open(sys.argv[1]))["leases"] if l["group"] in want)
print(" ".join("%d=%d" % l for l in ls))
' "$1" "$G_NIC1" "$G_NIC2" "$G_BR"
}
id_of() { sed -nE "s/.*(^| )$2=([0-9]+).*/\\2/p" <<<"$1"; }

merged=$(containers "$out/leases-merged.json")
echo "merged: $merged"
c=$(id_of "$merged" "$G_NIC1")
[ -n "$c" ] && [ "$c" != 0 ] || vb_fail "group $G_NIC1 has no container in leases: $merged"
for g in "$G_NIC2" "$G_BR"; do
	[ "$(id_of "$merged" "$g")" = "$c" ] || vb_fail "group $g is not in group $G_NIC1's container $c: $merged"
done

rc=$(cat "$out/unmerge-busy.rc")
err=$(cat "$out/unmerge-busy.err")
echo "unmerge with a device fd open: status $rc: $err"
[ "$rc" != 0 ] || vb_fail "unmerge of group $G_NIC2 succeeded while its device fd was open"
grep -q "busy" <<<"$err" || vb_fail "the refusal is not 'busy': $err"
grep -qi "close" <<<"$err" || vb_fail "the refusal does not say to close the device fds: $err"
[ "$(containers "$out/leases-after-busy.json")" = "$merged" ] ||
	vb_fail "a refused unmerge changed the containers: $(containers "$out/leases-after-busy.json")"

rc=$(cat "$out/unmerge.rc")
[ "$rc" = 0 ] || vb_fail "unmerge of group $G_NIC2 failed after its device fd closed: $(cat "$out/unmerge.err")"
after=$(containers "$out/leases-unmerged.json")
echo "after unmerge of $G_NIC2: $after"
[ "$(id_of "$after" "$G_NIC2")" = 0 ] || vb_fail "group $G_NIC2 is still in a container: $after"
[ "$(id_of "$after" "$G_NIC1")" = "$c" ] && [ "$(id_of "$after" "$G_BR")" = "$c" ] ||
	vb_fail "unmerge of $G_NIC2 also moved the other groups: $after (was $merged)"
echo "ok: unmerge is busy while a device fd is open, then detaches exactly group $G_NIC2"

rc=$(cat "$out/release.rc")
[ "$rc" = 0 ] || vb_fail "release of group $G_BR failed: $(cat "$out/release.err")"
released=$(containers "$out/leases-released.json")
echo "after release of $G_BR: $released"
[ "$(id_of "$released" "$G_BR")" = 0 ] || [ -z "$(id_of "$released" "$G_BR")" ] ||
	vb_fail "group $G_BR is still in a container after its release: $released"
[ "$(id_of "$released" "$G_NIC1")" = "$c" ] ||
	vb_fail "releasing group $G_BR took group $G_NIC1 out of container $c: $released"
echo "ok: releasing one member detaches it alone; group $G_NIC1 keeps container $c"
for g in "$G_NIC1" "$G_NIC2" "$G_BR"; do
	vb_wait 10 vb_lease_ended "$g" || vb_fail "group $g is still leased after the command exited"
done
