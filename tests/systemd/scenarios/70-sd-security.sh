# shellcheck shell=bash
# Scenario: systemd's own rating of the live unit, and of the dedicated-user variant.
# vb-pins: `systemd-analyze security vfio-brokerd.service` on the loaded, running unit rates its exposure at most 2.7, the bound the install tier holds the unit file to (tests/install-check.sh); the variant that the unit's comment evaluates and does not adopt (User=vfio-broker with the capabilities as ambient ones plus the CAP_DAC_OVERRIDE it would need, RemoveIPC=yes), loaded beside it, rates 2.5, the figure the unit and vfio-brokerd(8) quote
vb_strict
# shellcheck source-path=SCRIPTDIR source=../sd-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../sd-lib.sh"
sd_need_service

# exposure_of UNIT: its overall exposure (vb_try's transcript goes to stderr).
exposure_of() {
	vb_try systemd-analyze security --no-pager "$1" >&2
	sed -n "s/.*Overall exposure level for $1: \([0-9.]*\).*/\1/p" <<<"$VB_OUT"
}
exposure=$(exposure_of "$SD_UNIT")
[ -n "$exposure" ] || vb_fail "systemd-analyze security printed no overall exposure for $SD_UNIT"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.7) }' ||
	vb_fail "the live unit's exposure is $exposure, above 2.7"
echo "ok: exposure $exposure (at most 2.7)"

# The variant, as the evaluation in the unit's comment describes it: loaded, never
# started (a start fails: see the comment), and unloaded again.
variant=vb-user-variant.service
unit=$(sd_prop FragmentPath)
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")
[ -n "$caps" ] || vb_fail_early "no CapabilityBoundingSet= in $unit"
sed -e "s/^CapabilityBoundingSet=.*/CapabilityBoundingSet=$caps CAP_DAC_OVERRIDE/" \
	-e "s/^AmbientCapabilities=.*/AmbientCapabilities=$caps CAP_DAC_OVERRIDE\nUser=vfio-broker\nGroup=vfio-broker\nRemoveIPC=yes/" \
	"$unit" >"/run/systemd/system/$variant"
trap 'rm -f "/run/systemd/system/$variant"; systemctl daemon-reload' EXIT
systemctl daemon-reload
grep -E '^(User|Group|RemoveIPC|AmbientCapabilities|CapabilityBoundingSet)=' "/run/systemd/system/$variant" | sed 's/^/  | /'
[ "$(sd_prop User "$variant")" = vfio-broker ] || vb_fail "the variant did not load (User=$(sd_prop User "$variant"))"
v=$(exposure_of "$variant")
[ -n "$v" ] || vb_fail "systemd-analyze security printed no overall exposure for the variant"
echo "the dedicated-user variant: exposure $v (the shipped unit: $exposure)"
[ "$v" = 2.5 ] || vb_fail "the dedicated-user variant rates $v, not the 2.5 the unit's evaluation quotes"
