# shellcheck shell=bash
# Scenario: socket activation and readiness of the installed units.
# vb-pins: the first connection (uid 2000's `vfioctl list` on the default socket) starts vfio-brokerd.service through the socket and is answered; the unit is Type=notify and becomes active only after the broker's start-up (its start-up log line precedes systemd's "Started"); its StatusText is the broker's STATUS= ("N connections, N leases; policy: 2 rules in 1 files")
vb_strict
# shellcheck source-path=SCRIPTDIR source=../sd-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../sd-lib.sh"
vb_need_env

state=$(systemctl is-active "$SD_UNIT" || true)
[ "$state" = inactive ] || vb_fail_early "$SD_UNIT is $state before the first connection"
[ "$(sd_prop Type)" = notify ] || vb_fail "$SD_UNIT is Type=$(sd_prop Type), expected notify"
start=$(date +%s.%N)
vb_try vb_as 2000 vfioctl list
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
[ "$VB_RC" = 0 ] || vb_fail "the first connection was not answered (status $VB_RC): $VB_ERR"
grep -q "$NIC1" <<<"$VB_OUT" || vb_fail "vfioctl list does not show $NIC1"
echo "ok: the first connection was answered after $secs s (socket activation and start-up)"
vb_wait 5 sd_active ||
	vb_fail "$SD_UNIT is $(systemctl is-active "$SD_UNIT" || true) after answering"
[ "$(sd_prop TriggeredBy)" = "$SD_SOCKET_UNIT" ] ||
	vb_fail "$SD_UNIT is triggered by '$(sd_prop TriggeredBy)'"
sd_handover
pid=$(sd_main_pid)
echo "ok: $SD_UNIT active, main pid $pid, triggered by $SD_SOCKET_UNIT"

# Readiness: with Type=notify systemd logs "Started" when READY=1 arrives; the broker
# logs which quarantine path it has (VB_EVENT=kmod) during start-up, before READY=1.
# Under Type=simple "Started" would come first, at the fork.
started=$(journalctl -b -q -o json MESSAGE_ID=39f53479d3a045ac8e11786248231fbf \
	UNIT="$SD_UNIT" _PID=1 | tail -n 1)
kmod=$(sd_events_since "" VB_EVENT=kmod _PID="$pid" | head -n 1)
[ -n "$started" ] || vb_fail "systemd logged no 'Started' for $SD_UNIT"
[ -n "$kmod" ] || vb_fail "the broker (pid $pid) logged no start-up line (VB_EVENT=kmod)"
s_seq=$(sd_seqnum "$started") k_seq=$(sd_seqnum "$kmod")
echo "journal: broker start-up line #$k_seq '$(sd_field "$kmod" MESSAGE)', systemd's #$s_seq '$(sd_field "$started" MESSAGE)'"
[ "$k_seq" -lt "$s_seq" ] ||
	vb_fail "systemd reported the service started (#$s_seq) before the broker's start-up line (#$k_seq): readiness is not waited for"
echo "ok: the unit became active after the broker's start-up (READY=1)"

status_ok() {
	[[ $(sd_prop StatusText) =~ ^[0-9]+\ connections,\ [0-9]+\ leases\;\ policy:\ 2\ rules\ in\ 1\ files$ ]]
}
vb_wait 5 status_ok || vb_fail "StatusText is '$(sd_prop StatusText)', not the broker's STATUS= with the 2 rules of 1 file"
echo "ok: StatusText=$(sd_prop StatusText)"

# From here on the VM tier's scenarios and guest-run.sh's failure reports see the
# service: its journal is followed into the broker log that guest-run.sh shows.
setsid journalctl -q -f -o short-monotonic -u "$SD_UNIT" </dev/null >>"$VB_BROKER_LOG" 2>&1 &
