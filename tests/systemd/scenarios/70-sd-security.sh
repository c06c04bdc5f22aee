# shellcheck shell=bash
# Scenario: systemd's own rating of the live unit.
# vb-pins: `systemd-analyze security vfio-brokerd.service` on the loaded, running unit rates its exposure at most 2.7, the bound the install tier holds the unit file to (tests/install-check.sh)
vb_strict
# shellcheck source-path=SCRIPTDIR source=../sd-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../sd-lib.sh"
sd_need_service

vb_try systemd-analyze security --no-pager "$SD_UNIT"
exposure=$(sed -n "s/.*Overall exposure level for $SD_UNIT: \([0-9.]*\).*/\1/p" <<<"$VB_OUT")
[ -n "$exposure" ] || vb_fail "systemd-analyze security printed no overall exposure (status $VB_RC)"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.7) }' ||
	vb_fail "the live unit's exposure is $exposure, above 2.7"
echo "ok: exposure $exposure (at most 2.7)"
