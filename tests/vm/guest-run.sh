#!/bin/bash
# guest-run.sh: run the VM tier's scenarios inside the guest, one by one.
#
# usage (in the guest, via tests/vm/vmrun.py):
#   guest-run.sh BUILD [--only REGEX] SCENARIO|DIR...
#
# Each scenario is a bash file (a directory means its [0-9]*.sh files, in
# order) whose line "# vb-pins: TEXT" says what it pins.  The runner sources
# tests/vm/guest-lib.sh into each one and runs it in its own bash process
# under timeout(1), so a failing or hanging scenario fails alone, saying it
# timed out, and the next one still runs.  The limit is the scenario's line
# "# vb-timeout: SECONDS" if it has one (for a step known to be slow under
# TCG), else 300 s.  Exit status 0 is PASS, 77 SKIP, anything else FAIL with
# the reason the scenario gave (vb_fail).
# It announces the plan and every result to the host driver, BEGIN with the
# scenario's limit, so that the driver's own watchdog waits longer:
#   VB-PLAN name...   VB-BEGIN name seconds   VB-RESULT PASS|FAIL|SKIP name: pins [-- reason]
# After a failure it shows the tail of the broker's log and the kernel's
# recent warnings (not when the scenario failed for want of a prerequisite).  At the
# end it stops the broker, if a scenario started one.  Exit status: 0 when
# nothing failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export VB_BUILD=${1:?usage: guest-run.sh BUILD [--only REGEX] SCENARIO|DIR...}
shift
only=
if [ "${1:-}" = --only ]; then
	only=$2
	shift 2
fi
# shellcheck source-path=SCRIPTDIR source=guest-lib.sh
. "$here/guest-lib.sh"
# Generous: scenarios run under TCG on a shared host; a hang costs at most this.
default_timeout_s=300

files=()
for arg in "$@"; do
	if [ -d "$arg" ]; then
		for f in "$arg"/[0-9]*.sh; do
			files+=("$f")
		done
	else
		files+=("$arg")
	fi
done
selected=()
names=()
for f in "${files[@]}"; do
	name=$(basename "$f" .sh)
	if [ -z "$only" ] || [[ $name =~ $only ]]; then
		selected+=("$f")
		names+=("$name")
	fi
done

install -d -m 0755 "$VB_STATE"
echo "guest: $(uname -r), build $VB_BUILD"
vb_open_build
vb_marker "PLAN ${names[*]}"

failed=0
for f in "${selected[@]}"; do
	name=$(basename "$f" .sh)
	pins=$(sed -n 's/^# vb-pins: //p' "$f" | head -n 1)
	limit=$(sed -n 's/^# vb-timeout: *//p' "$f" | head -n 1)
	limit=${limit:-$default_timeout_s}
	export VB_REASON=$VB_STATE/reason.$name
	rm -f "$VB_REASON" "$VB_REASON.early"
	vb_console "BEGIN $name"
	echo "=== $name: $pins"
	if ! [[ $limit =~ ^[1-9][0-9]{0,4}$ ]]; then
		# Not run: a limit that timeout(1) cannot take would let it run unbounded.
		vb_marker "BEGIN $name"
		echo "bad '# vb-timeout: $limit' line: not a number of seconds" >"$VB_REASON"
		touch "$VB_REASON.early"
		rc=1
	else
		vb_marker "BEGIN $name $limit"
		# shellcheck disable=SC2016 # $1 and $2 belong to the inner bash
		timeout -k 5 "$limit" bash -c '. "$1/guest-lib.sh" && . "$2"' \
			vb-scenario "$here" "$f"
		rc=$?
	fi
	reason=
	if [ -e "$VB_REASON" ]; then
		reason=$(tr '\n' ' ' <"$VB_REASON")
		reason=${reason% }
	fi
	case $rc in
	0) status=PASS ;;
	77) status=SKIP ;;
	124 | 137)
		status=FAIL
		reason="timed out: still running after its limit of $limit s (# vb-timeout, default $default_timeout_s)${reason:+ ($reason)}"
		;;
	*)
		status=FAIL
		reason=${reason:-exit status $rc}
		;;
	esac
	if [ "$status" = FAIL ]; then
		failed=$((failed + 1))
	fi
	if [ "$status" = FAIL ] && [ ! -e "$VB_REASON.early" ]; then
		if [ -s "$VB_BROKER_LOG" ]; then
			echo "--- broker log (last 15 lines)"
			tail -n 15 "$VB_BROKER_LOG"
		fi
		echo "--- kernel warnings and errors (last 8)"
		dmesg --level=emerg,alert,crit,err,warn | tail -n 8
	fi
	vb_marker "RESULT $status $name: $pins${reason:+ -- $reason}"
done

vb_stop_broker
[ "$failed" = 0 ]
