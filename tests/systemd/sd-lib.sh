# shellcheck shell=bash
# sd-lib.sh: helpers for the systemd tier's scenarios (sourced by each of them
# after tests/vm/guest-lib.sh). The broker here is the installed service that
# systemd starts; 31-sd-activation hands it over to guest-lib's helpers:
# VB_SOCK links to the unit's socket and VB_BROKER_PID holds its MainPID.

# shellcheck disable=SC2034 # used by the scenarios
SD_UNIT=vfio-brokerd.service
SD_SOCKET_UNIT=vfio-brokerd.socket
SD_SOCKET=/run/vfio-broker/socket
SD_POLICY_DIR=/etc/vfio-broker/policy.d

# sd_prop PROPERTY [UNIT]: one property of the unit (default the service), bare.
sd_prop() {
	systemctl show -P "$1" "${2:-$SD_UNIT}"
}

# sd_main_pid: the service's main pid, 0 when it does not run.
sd_main_pid() {
	sd_prop MainPID
}

sd_active() {
	[ "$(systemctl is-active "$SD_UNIT")" = active ]
}

# sd_now: the time, for sd_events_since (journalctl --since @SECONDS).
sd_now() {
	date +%s.%N
}

# sd_events_since TIME [MATCH...]: the broker's own journal entries (not the
# service manager's about it) since TIME (from sd_now), as JSON lines; MATCH as
# journalctl's FIELD=VALUE. Without a time: this boot's.
sd_events_since() {
	local since=$1
	shift
	if [ -n "$since" ]; then
		journalctl -q -o json --since "@$since" _SYSTEMD_UNIT="$SD_UNIT" "$@"
	else
		journalctl -q -o json -b _SYSTEMD_UNIT="$SD_UNIT" "$@"
	fi
}

# sd_wait_event SECONDS TIME MATCH...: poll the journal (every 0.3 s) until the
# broker logged an entry matching MATCH since TIME; print it. The journal is
# asynchronous: what the broker logged is not there yet when its answer arrives.
sd_wait_event() {
	local deadline=$((SECONDS + $1)) since=$2 hit
	shift 2
	while :; do
		hit=$(sd_events_since "$since" "$@" | head -n 1)
		[ -z "$hit" ] || { printf '%s\n' "$hit"; return 0; }
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "--- the broker's journal since $since (last 8 lines)" >&2
			journalctl -q --since "@$since" _SYSTEMD_UNIT="$SD_UNIT" | tail -n 8 >&2
			return 1
		fi
		sleep 0.3
	done
}

# sd_field JSON FIELD: one field of a journal entry (JSON as `journalctl -o json`).
sd_field() {
	python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2"
}

# sd_seqnum JSON: a journal entry's sequence number (the order journald received it
# in), from its cursor's i= (252 has no __SEQNUM field).
sd_seqnum() {
	python3 -c '
import json, sys
c = dict(kv.split("=", 1) for kv in json.loads(sys.argv[1])["__CURSOR"].split(";"))
print(int(c["i"], 16))' "$1"
}

# sd_handover: point guest-lib's broker helpers at the running service.
sd_handover() {
	local pid
	pid=$(sd_main_pid)
	[ "$pid" != 0 ] || return 1
	echo "$pid" >"$VB_BROKER_PID"
}

# sd_need_service: fail early unless the installed service runs (31-sd-activation).
sd_need_service() {
	vb_need_env
	sd_active || vb_fail_early "$SD_UNIT is not active (see 31-sd-activation)"
	sd_handover || vb_fail_early "$SD_UNIT has no main pid"
}

# sd_start_holder NAME GROUP [COMMAND]: uid 2000 leases GROUP with the installed
# vfioctl and runs COMMAND (sh, default: nothing) in the lease, then holds it
# (sleep) in its own session; waits up to 30 s. Sets SD_HOLDER (vfioctl's pid, the
# session) and SD_HOLDER_LOG.
sd_start_holder() {
	local name=$1 group=$2 cmd=${3:-:}
	local held=$VB_SHARE/$name-held
	SD_HOLDER_LOG=$VB_SHARE/$name-holder.log
	rm -f "$held"
	setsid setpriv --reuid=2000 --regid=2000 --clear-groups -- \
		vfioctl lease "$group" -- /bin/sh -c "$cmd && touch $held && exec sleep 600" \
		</dev/null >"$SD_HOLDER_LOG" 2>&1 &
	# shellcheck disable=SC2034 # the caller's
	SD_HOLDER=$!
	if ! vb_wait 30 test -e "$held"; then
		cat "$SD_HOLDER_LOG"
		return 1
	fi
}
