# shellcheck shell=bash
# Scenario: merge on the real kernel (issue 12, item 5; PROTOCOL.md "Gibson's merge questions").
# vb-pins: uid 2000 leases both e1000e groups with `vfioctl lease --merge`: vm-probe gets the broker's container in VFIO_BROKER_CONTAINER_FD, sets TYPE1v2 on it, maps DMA through it and opens and reads both devices through it (the kernel gives no device fd of a group whose container has no IOMMU); `leases` shows one container id for both; root's open of a merged group's node is EBUSY (a group file is open once); with the bridge group merged in as well, unmerge of the second e1000e's group while a device fd of it is open is refused as busy and says to close them, changes nothing, and after that fd is closed it detaches exactly that group: the other two keep their shared container; releasing the bridge group detaches it alone and the first e1000e keeps the container; with an e1000e hot-plugged into the empty root port as a fourth group, two merged sets of two are merged into one by naming one group of each, all four then in the first set's container
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
	[ -z "${plugged:-}" ] || vb_hotplug del id=vb-merge-rp >/dev/null 2>&1 || true
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

# 3. Two merged sets merged: a fourth group is hot-plugged into the empty
# root port (its own group, as 15-hotplug-rootport shows), so that two sets
# of two can be made. Naming one group of each merges their union into the
# container of the first named group's set.
pci_devices() { ls /sys/bus/pci/devices; }
known=$(pci_devices)
echo "asking the host: device_add e1000e id=vb-merge-rp bus=rp3"
vb_hotplug add id=vb-merge-rp driver=e1000e bus=rp3 romfile= || vb_fail "the host could not device_add"
plugged=1
new_device() {
	NEW=$(pci_devices | grep -vxF "$known" | head -n 1)
	[ -n "$NEW" ] && [ -e "/sys/bus/pci/devices/$NEW/iommu_group" ]
}
vb_wait 30 new_device || vb_fail "no new PCI device within 30 s"
G4=$(vb_group_of "$NEW")
vb_bind_vfio "$NEW" || vb_fail "$NEW did not bind to vfio-pci"
vb_wait 10 test -e "/dev/vfio/$G4" || vb_fail "no /dev/vfio/$G4 for $NEW"
echo "$NEW: group $G4, on vfio-pci"
vb_write_policy 72-merge <<EOT
{"rules": [
  {"name": "merge-all", "users": [2000],
   "devices": [{"address": "$NIC1"}, {"address": "$NIC2"},
               {"address": "$BR_E1"}, {"address": "$BR_E2"}, {"address": "$NEW"}],
   "allow": ["lease", "merge"], "memlock": "64M"}
]}
EOT
vb_vfioctl reload >/dev/null
rm -f "$out"/sets-*.json "$out/sets.err"
cat >"$out/sets.sh" <<'EOS'
set -u
cd "$OUT"
v() { "$VB_BUILD/vfioctl" --socket "$VB_SOCK" "$@"; }
{ v merge "$G_NIC1" "$G_NIC2" && v merge "$G_BR" "$G4"; } >/dev/null 2>>sets.err || exit 1
v leases --json >sets-two.json
v merge "$G_NIC1" "$G_BR" >/dev/null 2>>sets.err || exit 2
v leases --json >sets-union.json
EOS
vb_try env OUT="$out" VB_BUILD="$VB_BUILD" VB_SOCK="$VB_SOCK" G_NIC1="$G_NIC1" G_NIC2="$G_NIC2" \
	G_BR="$G_BR" G4="$G4" setpriv --reuid=2000 --regid=2000 --clear-groups -- \
	"$VB_BUILD/vfioctl" --socket "$VB_SOCK" lease "$G_NIC1" "$G_NIC2" "$G_BR" "$G4" -- \
	bash "$out/sets.sh"
[ "$VB_RC" = 0 ] || vb_fail "merging the sets failed (status $VB_RC): $(cat "$out/sets.err" 2>/dev/null) $VB_ERR"
sets() {
	python3 -c '
import json, sys
want = [int(g) for g in sys.argv[2:]]
c = {l["group"]: l["container"] for l in json.load(open(sys.argv[1]))["leases"]}
print(" ".join("%d=%d" % (g, c.get(g, -1)) for g in want))
' "$1" "$G_NIC1" "$G_NIC2" "$G_BR" "$G4"
}
two=$(sets "$out/sets-two.json")
union=$(sets "$out/sets-union.json")
echo "two sets: $two; after merge $G_NIC1 $G_BR: $union"
a=$(id_of "$two" "$G_NIC1") b=$(id_of "$two" "$G_BR")
[ "$a" != 0 ] && [ "$b" != 0 ] && [ "$a" != "$b" ] || vb_fail "not two merged sets: $two"
[ "$(id_of "$two" "$G_NIC2")" = "$a" ] && [ "$(id_of "$two" "$G4")" = "$b" ] || vb_fail "not two merged sets: $two"
for g in "$G_NIC1" "$G_NIC2" "$G_BR" "$G4"; do
	[ "$(id_of "$union" "$g")" = "$a" ] || vb_fail "group $g is not in $G_NIC1's container $a after the union: $union"
done
echo "ok: naming one group of each set merged all four into the first set's container $a"
for g in "$G_NIC1" "$G_NIC2" "$G_BR" "$G4"; do
	vb_wait 10 vb_lease_ended "$g" || vb_fail "group $g is still leased after the command exited"
done
echo "asking the host: device_del vb-merge-rp"
vb_hotplug del id=vb-merge-rp || vb_fail "the host could not device_del"
plugged=
vb_wait 20 test ! -e "/sys/bus/pci/devices/$NEW" || vb_fail "$NEW is still there 20 s after device_del"
