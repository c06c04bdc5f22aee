#!/bin/bash
# guest-run.sh: the systemd tier's scenarios, in the guest under systemd (run by
# vb-test.service, see guest-service.sh).
#
# usage: guest-run.sh BUILD [--only REGEX]
#
# Runs, through the VM tier's unchanged runner (tests/vm/guest-run.sh), the VM
# tier's topology and vfio-pci scenarios, then this directory's scenarios with a
# few of the VM tier's broker scenarios between them, against the broker that the
# installed units start. The order matters: 30-sd-install installs the packages,
# 31-sd-activation hands the socket-activated broker over to the VM tier's helpers,
# 50-sd-journal reads the events the lease, denial and removal scenarios caused.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vm=$here/../vm/scenarios
sd=$here/scenarios
exec bash "$here/../vm/guest-run.sh" "$@" \
	"$sd/05-sd-boot.sh" \
	"$vm/10-topology.sh" "$vm/20-vfio-bind.sh" \
	"$sd/30-sd-install.sh" "$sd/31-sd-activation.sh" "$sd/32-sd-sandbox.sh" \
	"$sd/33-sd-reload.sh" \
	"$vm/50-lease-probe.sh" "$vm/60-deny-unlisted.sh" \
	"$sd/40-sd-hard-remove.sh" "$sd/41-sd-quarantine.sh" "$sd/42-sd-lease-cgroup.sh" \
	"$sd/43-sd-unit-stop.sh" \
	"$sd/50-sd-journal.sh" "$sd/60-sd-restart.sh" "$sd/70-sd-security.sh"
