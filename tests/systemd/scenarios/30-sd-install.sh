# shellcheck shell=bash
# Scenario: the project installed the way the README says, from its Debian packages.
# vb-pins: dpkg -i installs vfio-brokerd, libvfiobroker0 and libvfiobroker-dev (built from this tree by tests/deb-check.sh) under the running systemd; the postinst enables and starts vfio-brokerd.socket, which listens on /run/vfio-broker/socket (0666, root) while the service stays inactive (nothing has connected yet)
vb_strict
# shellcheck source-path=SCRIPTDIR source=../sd-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../sd-lib.sh"
vb_need_env

shopt -s nullglob
debs=("$VB_BUILD"/deb/vfio-brokerd_*.deb "$VB_BUILD"/deb/libvfiobroker0_*.deb
	"$VB_BUILD"/deb/libvfiobroker-dev_*.deb)
[ "${#debs[@]}" = 3 ] || vb_fail_early "expected 3 packages in $VB_BUILD/deb, found ${#debs[@]}"
# vfio-quarantine-dkms is not installed: DKMS would need the guest kernel's headers
# in the guest; tests/deb-check.sh builds the module from the package instead, and
# the quarantine scenario uses the broker's own sysfs path.
# man-db's trigger would re-index every manual page of the host image over 9p
# (over 100 s under TCG, measured); its documented switch (debconf man-db/auto-update)
# turns it off, as on a build machine. The dpkg database of the host's ~1,000 packages
# is still read: about 20 s of the install.
rm -f /var/lib/man-db/auto-update
start=$(date +%s.%N)
vb_try dpkg -i "${debs[@]}"
[ "$VB_RC" = 0 ] || vb_fail "dpkg -i failed (status $VB_RC): $(tail -n 3 <<<"$VB_ERR$VB_OUT")"
echo "dpkg -i took $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
for p in vfio-brokerd libvfiobroker0 libvfiobroker-dev; do
	st=$(dpkg-query -W -f='${Status}' "$p")
	[ "$st" = "install ok installed" ] || vb_fail "$p: dpkg says '$st'"
done

enabled=$(systemctl is-enabled "$SD_SOCKET_UNIT" || true)
[ "$enabled" = enabled ] || vb_fail "$SD_SOCKET_UNIT is $enabled, expected enabled by the postinst"
active=$(systemctl is-active "$SD_SOCKET_UNIT" || true)
[ "$active" = active ] || vb_fail "$SD_SOCKET_UNIT is $active, expected started by the postinst"
state=$(systemctl is-active "$SD_UNIT" || true)
[ "$state" = inactive ] || vb_fail "$SD_UNIT is $state before any client connected"
[ -S "$SD_SOCKET" ] || vb_fail "$SD_SOCKET is not a socket"
perm=$(stat -c '%a %U' "$SD_SOCKET")
[ "$perm" = "666 root" ] || vb_fail "$SD_SOCKET is '$perm', expected '666 root'"
echo "ok: $SD_SOCKET_UNIT enabled and listening on $SD_SOCKET ($perm); $SD_UNIT inactive"

# The policy of the VM tier's scenarios (tests/vm/scenarios/30-broker-start.sh), as an
# admin writes it: in /etc/vfio-broker/policy.d, which the installed unit reads.
# guest-lib's VB_POLICY and VB_SOCK lead there.
ln -sfn "$SD_POLICY_DIR" "$VB_POLICY"
ln -sfn "$SD_SOCKET" "$VB_SOCK"
install -d -m 1777 "$VB_SHARE"
vb_write_policy 10-vm-tier <<EOT
{"rules": [
  {"name": "vm-nic", "users": [2000, 2002],
   "devices": [{"address": "$NIC1"}], "allow": ["lease"], "memlock": "64M"},
  {"name": "bridge-half", "users": [2000],
   "devices": [{"address": "$BR_E1"}], "allow": ["lease"]}
]}
EOT
