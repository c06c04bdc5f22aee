#!/bin/bash
# demo-guest.sh: the story `make demo` tells, run inside the test VM.
#
# usage (in the guest, via tests/vm/demo.sh and vmrun.py): demo-guest.sh BUILD
#
# An admin hands devices to vfio-pci, writes a policy and starts
# vfio-brokerd; unprivileged users (uids without passwd entries) then ask
# the broker for IOMMU groups with vfioctl and drive the devices through
# the fds it hands over.  Every step prints the command, its output and
# what it shows.  Exit status 0 when every step went as the story says.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export VB_BUILD=${1:?usage: demo-guest.sh BUILD}
# shellcheck source-path=SCRIPTDIR source=guest-lib.sh
. "$here/guest-lib.sh"
export PATH=$VB_BUILD:$PATH
export VFIO_BROKER_SOCKET=$VB_SOCK
unexpected=0

say() { printf '%s\n' "$*"; }
chapter() { printf '\n== %s\n' "$*"; }
note() { printf '   -> %s\n' "$*"; }
oops() {
	printf '   !! unexpected: %s\n' "$*"
	unexpected=$((unexpected + 1))
}

# show WHO CMD...: print "WHO$ CMD" and run it as WHO (root, alice, bob,
# mallory), with its output indented; VB_RC/VB_OUT/VB_ERR as vb_try.
show() {
	local who=$1 uid out err
	shift
	case $who in
	alice) uid=2000 ;;
	mallory) uid=2001 ;;
	bob) uid=2002 ;;
	*) uid=0 ;;
	esac
	if [ "$uid" = 0 ]; then
		printf '   %s# %s\n' "$who" "$*"
	else
		printf '   %s$ %s\n' "$who" "$*"
	fi
	out=$(mktemp) err=$(mktemp)
	VB_RC=0
	if [ "$uid" = 0 ]; then
		"$@" >"$out" 2>"$err" </dev/null || VB_RC=$?
	else
		vb_as "$uid" "$@" >"$out" 2>"$err" </dev/null || VB_RC=$?
	fi
	VB_OUT=$(cat "$out")
	VB_ERR=$(cat "$err")
	rm -f "$out" "$err"
	[ -z "$VB_OUT" ] || printf '      %s\n' "${VB_OUT//$'\n'/$'\n'      }"
	[ -z "$VB_ERR" ] || printf '      %s\n' "${VB_ERR//$'\n'/$'\n'      }"
	[ "$VB_RC" = 0 ] || printf '      (exit status %s)\n' "$VB_RC"
}

install -d -m 0755 "$VB_STATE" "$VB_POLICY"
vb_open_build >/dev/null
install -d -m 1777 "$VB_SHARE"

chapter "1. The machine"
say "Linux $(uname -r) under QEMU: a q35 PC with an emulated Intel IOMMU."
say "The IOMMU groups the kernel made (sysfs), the units VFIO hands out:"
nic=$(vb_find_pci 8086 10d3 | head -n 1)
bridge=$(vb_find_pci 1b36 000e | head -n 1)
mapfile -t br < <(vb_find_pci 8086 100e)
for d in "$nic" "$bridge" "${br[@]}"; do
	g=$(vb_group_of "$d")
	say "   group $g: $d [$(vb_pci_id "$d")] driver $(vb_driver_of "$d")"
done
g_nic=$(vb_group_of "$nic")
g_br=$(vb_group_of "$bridge")
note "the e1000e NIC $nic is alone in group $g_nic; the PCI bridge and the two"
note "e1000 behind it share group $g_br: the IOMMU cannot tell them apart."

chapter "2. The admin hands the devices to vfio-pci"
for d in "$nic" "${br[@]}"; do
	from=$(vb_driver_of "$d")
	if vb_bind_vfio "$d"; then
		say "   root# echo vfio-pci > .../$d/driver_override; unbind from $from; drivers_probe"
	else
		oops "$d did not bind to vfio-pci"
	fi
done
show root ls -l /dev/vfio
note "/dev/vfio/$g_nic and /dev/vfio/$g_br are root's alone (0600); nobody chmods them."

chapter "3. The admin writes a policy"
vb_write_policy 10-demo >/dev/null <<EOT
{"rules": [
  {"name": "lab-nic", "users": [2000, 2002],
   "devices": [{"address": "$nic"}], "allow": ["lease"], "memlock": "64M"},
  {"name": "bridge-nic", "users": [2000],
   "devices": [{"address": "${br[0]}"}], "allow": ["lease"]}
]}
EOT
show root cat "$VB_POLICY/10-demo.json"
note "alice (uid 2000) and bob (uid 2002) may lease the NIC; alice may have"
note "${br[0]} behind the bridge; mallory (uid 2001) is in no rule."

chapter "4. The admin starts the broker"
say "   root# vfio-brokerd --socket $VB_SOCK --policy $VB_POLICY &"
if ! vb_start_broker >/dev/null; then
	oops "vfio-brokerd did not start (is it built? $VB_BUILD/vfio-brokerd)"
	[ -s "$VB_BROKER_LOG" ] && tail -n 5 "$VB_BROKER_LOG"
	say
	say "The rest of the story needs the broker. What the kernel offers without"
	say "it, as root, opening the group file directly:"
	show root vm-probe --open "$g_nic"
	say
	say "Demo incomplete: $unexpected unexpected result(s)."
	exit 1
fi
note "it listens on $VB_SOCK (mode $(stat -c %a "$VB_SOCK")): anyone may ask, policy decides."

chapter "5. Anyone can look"
show alice vfioctl list
[ "$VB_RC" = 0 ] || oops "vfioctl list failed"

chapter "6. alice asks for the NIC and runs her program with it"
say "alice is uid 2000: no root, no passwd entry, no chmod anywhere."
show alice vfioctl lease "$g_nic" -- vm-probe
ids=$(vb_probe_ids "$VB_OUT" "$nic")
if [ "$VB_RC" = 0 ] && [ "$ids" = "$(vb_pci_id "$nic")" ]; then
	note "the broker checked the policy and passed alice's program the open group"
	note "fd (VFIO_BROKER_FDS); through it the program built a VFIO container,"
	note "mapped DMA and read vendor:device $ids (an Intel 82574L) from the"
	note "NIC's own config space: the same ids sysfs shows."
else
	oops "alice's lease or her program failed"
fi
show alice vm-probe --open-direct "/dev/vfio/$g_nic"
if grep -q EACCES <<<"$VB_OUT"; then
	note "without the broker, alice cannot open the group file herself."
else
	oops "alice should not be able to open /dev/vfio/$g_nic"
fi

chapter "7. mallory asks for the same NIC"
show mallory vfioctl lease "$g_nic" -- vm-probe
if [ "$VB_RC" != 0 ] && grep -q '^vfioctl: denied:' <<<"$VB_ERR"; then
	note "denied, and vfioctl says why; mallory's program never ran."
else
	oops "mallory should have been denied"
fi

chapter "8. One holder at a time"
held=$VB_SHARE/demo-held
release=$VB_SHARE/demo-release
rm -f "$held" "$release"
say "alice starts a long-running job on the NIC:"
say "   alice$ vfioctl lease $g_nic -- sh -c '...until released...' &"
setsid setpriv --reuid=2000 --regid=2000 --clear-groups -- \
	vfioctl lease "$g_nic" -- /bin/sh -c "touch $held; while [ ! -e $release ]; do sleep 0.1; done" \
	</dev/null >/dev/null 2>&1 &
holder=$!
trap 'touch "$release"; kill -KILL -- "-$holder" 2>/dev/null || true' EXIT
vb_wait 20 test -e "$held" || oops "alice's job did not start"
show root vfioctl leases
show bob vfioctl lease "$g_nic" -- vm-probe
if [ "$VB_RC" != 0 ] && grep -q '^vfioctl: busy:.*2000' <<<"$VB_ERR"; then
	note "bob is allowed too, but the group is alice's while she holds it."
else
	oops "bob should have been told the NIC is busy, held by uid 2000"
fi
show root vm-probe --open-direct "/dev/vfio/$g_nic"
if grep -q EBUSY <<<"$VB_OUT"; then
	note "not even root can open the group behind the broker's back."
else
	oops "root's direct open should fail with EBUSY"
fi
say "alice's job ends:"
touch "$release"
vb_wait 10 eval "! kill -0 $holder 2>/dev/null" || oops "alice's job did not end"
show bob vfioctl lease "$g_nic" -- vm-probe
if [ "$VB_RC" = 0 ]; then
	note "the lease ended with alice's job, so bob gets the NIC now."
else
	oops "bob should get the NIC once alice's job ended"
fi

chapter "9. Groups are leased whole"
show alice vfioctl lease "$g_br" -- vm-probe
if [ "$VB_RC" != 0 ] && grep -q "${br[1]}" <<<"$VB_ERR"; then
	note "group $g_br also holds ${br[1]}, which the policy does not give alice:"
	note "whoever holds the group could reach both devices, so it is refused."
else
	oops "the bridge group should be refused, naming ${br[1]}"
fi
say "The admin adds ${br[1]} to alice's rule and reloads:"
vb_write_policy 10-demo >/dev/null <<EOT
{"rules": [
  {"name": "lab-nic", "users": [2000, 2002],
   "devices": [{"address": "$nic"}], "allow": ["lease"], "memlock": "64M"},
  {"name": "bridge-nics", "users": [2000],
   "devices": [{"address": "${br[0]}"}, {"address": "${br[1]}"}], "allow": ["lease"]}
]}
EOT
show root vfioctl reload
[ "$VB_RC" = 0 ] || oops "vfioctl reload failed"
show alice vfioctl lease "$g_br" -- vm-probe
if [ "$VB_RC" = 0 ] && [ -n "$(vb_probe_ids "$VB_OUT" "${br[1]}")" ]; then
	note "one group fd, two devices: alice's program opened both e1000."
else
	oops "alice should now get the whole bridge group"
fi

chapter "The end"
vb_stop_broker
if [ "$unexpected" = 0 ]; then
	say "Every step went as the policy says. Nobody ran as root but the admin."
	exit 0
fi
say "Demo finished with $unexpected unexpected result(s)."
exit 1
