#!/bin/bash
# What vb-test.service runs in the systemd tier's guest (installed as
# /usr/local/libexec/vb-test-run by tests/systemd/guest-init.sh): the part of
# tests/vm/guest-init.sh that follows the boot, under systemd. Its stdout is the
# control port. It reports VB-BOOTED, runs VB_SCRIPT with VB_ARGS in VB_CWD (from
# /etc/vb.conf, written by vmrun.py) with a clean environment, prints the boot's
# warnings from the journal, reports "VB-EXIT <status>" and powers off at once
# (--force: nothing is worth a clean shutdown in a throwaway guest, 3-6 s saved).

# shellcheck source=/dev/null # written by vmrun.py
. /etc/vb.conf
echo "VB-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime) $(systemctl is-system-running)"
eval "set -- $VB_ARGS"
status=0
cd -- "$VB_CWD" || status=255
if [ "$status" = 0 ]; then
	env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root TERM=dumb LANG=C.UTF-8 VB_CTL=/dev/ttyS1 VB_KVER="$VB_KVER" \
		/bin/bash "$VB_SCRIPT" "$@" </dev/null 2>&1 || status=$?
fi
echo "--- this boot's journal: warnings and worse (last 30 lines)"
journalctl -b -p warning -q --no-pager | tail -n 30
echo "VB-EXIT $status"
systemctl poweroff --force --no-block
