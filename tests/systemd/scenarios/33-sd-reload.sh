# shellcheck shell=bash
# Scenario: `systemctl reload` reaches the daemon.
# vb-pins: `systemctl reload vfio-brokerd` succeeds, and the same main process then logs the policy reload (VB_EVENT=reload, "Policy reloaded (SIGHUP): 2 rules in 1 files") within 10 s; ExecReload= only sends SIGHUP, so the journal is polled
vb_strict
# shellcheck source-path=SCRIPTDIR source=../sd-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../sd-lib.sh"
sd_need_service

pid=$(sd_main_pid)
since=$(sd_now)
vb_try systemctl reload "$SD_UNIT"
[ "$VB_RC" = 0 ] || vb_fail "systemctl reload failed (status $VB_RC): $VB_ERR"
hit=$(sd_wait_event 10 "$since" VB_EVENT=reload) ||
	vb_fail "the broker logged no policy reload within 10 s of systemctl reload"
msg=$(sd_field "$hit" MESSAGE)
echo "journal: $msg (pid $(sd_field "$hit" _PID))"
[ "$(sd_field "$hit" _PID)" = "$pid" ] || vb_fail "the reload was logged by pid $(sd_field "$hit" _PID), not the main pid $pid"
[[ $msg == *SIGHUP*"2 rules in 1 files"* ]] || vb_fail "unexpected reload message: $msg"
[ "$(sd_main_pid)" = "$pid" ] || vb_fail "the main pid changed from $pid to $(sd_main_pid): a restart, not a reload"
