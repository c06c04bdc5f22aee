# shellcheck shell=bash
# Scenario: the guest runs under Debian's own systemd.
# vb-pins: PID 1 is systemd (the host's Debian 252 package, not the initramfs's busybox), udev runs and has processed the PCI devices, and no unit has failed by the time the test service starts
vb_strict
# shellcheck source-path=SCRIPTDIR source=../sd-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../sd-lib.sh"

comm=$(cat /proc/1/comm)
[ "$comm" = systemd ] || vb_fail "PID 1 is '$comm', not systemd"
echo "PID 1: $(readlink /proc/1/exe), $(systemctl --version | head -n 1)"
[ "$(systemctl is-active systemd-udevd.service)" = active ] || vb_fail "systemd-udevd is not active"
vb_wait 30 udevadm settle -t 1 || vb_fail "udev did not settle within 30 s"
n=$(find /run/udev/data -name '+pci:*' | wc -l)
[ "$n" -ge 6 ] || vb_fail "udev has records of $n PCI devices, expected every one (6 or more)"
echo "ok: udev has records of $n PCI devices"
failed=$(systemctl list-units --state=failed --no-legend --plain)
[ -z "$failed" ] || vb_fail "failed units: $failed"
echo "ok: no failed unit; system state: $(systemctl is-system-running || true)"
