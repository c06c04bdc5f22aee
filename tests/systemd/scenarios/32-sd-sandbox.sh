# shellcheck shell=bash
# Scenario: the unit's sandbox is in force in the running service.
# vb-pins: /proc/MAINPID/status of the running vfio-brokerd shows Seccomp 2 with at least two filters (systemd's and the broker's own), NoNewPrivs 1, CapBnd = CapPrm = CapEff = exactly the unit's CapabilityBoundingSet (five capabilities) and no inheritable or ambient ones; in its mount namespace /etc is read-only, /sys/bus/pci writable and /tmp private; the journal records the same effective set
vb_strict
# shellcheck source-path=SCRIPTDIR source=../sd-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../sd-lib.sh"
sd_need_service

pid=$(sd_main_pid)
st=/proc/$pid/status
grep -E '^(Seccomp|Seccomp_filters|NoNewPrivs|Cap[A-Za-z]+):' "$st" | sed 's/^/  /'
field() { awk -v k="$1:" '$1 == k { print $2 }' "$st"; }
[ "$(field Seccomp)" = 2 ] || vb_fail "Seccomp: $(field Seccomp), expected 2 (filter mode)"
[ "$(field Seccomp_filters)" -ge 2 ] ||
	vb_fail "Seccomp_filters: $(field Seccomp_filters), expected systemd's and the broker's (2 or more)"
[ "$(field NoNewPrivs)" = 1 ] || vb_fail "NoNewPrivs: $(field NoNewPrivs), expected 1"

want=$(sd_prop CapabilityBoundingSet | tr ' ' '\n' | sort | tr '\n' ' ')
[ "$(wc -w <<<"$want")" = 5 ] || vb_fail "the unit's bounding set is '$want', expected five capabilities"
names() { capsh --decode="$1" | sed 's/^0x[0-9a-f]*=//' | tr ',' '\n' | grep . | sort | tr '\n' ' '; }
for c in CapBnd CapPrm CapEff; do
	got=$(names "$(field "$c")")
	[ "$got" = "$want" ] || vb_fail "$c is '$got', expected the unit's bounding set '$want'"
done
for c in CapInh CapAmb; do
	[ "$((16#$(field "$c")))" = 0 ] || vb_fail "$c is $(field "$c"), expected none"
done
echo "ok: bounding, permitted and effective sets are the unit's: $want"

# The broker logs through the journal, which records its effective set with each entry.
entry=$(sd_events_since "" _PID="$pid" | tail -n 1)
[ "$((16#$(sd_field "$entry" _CAP_EFFECTIVE)))" = "$((16#$(field CapEff)))" ] ||
	vb_fail "the journal says _CAP_EFFECTIVE=$(sd_field "$entry" _CAP_EFFECTIVE), /proc says $(field CapEff)"

ns() { nsenter -t "$pid" -m -- "$@"; }
! ns touch /etc/vb-sandbox-probe 2>/dev/null || vb_fail "/etc is writable in the service's mount namespace"
ns test -w /sys/bus/pci/drivers_probe || vb_fail "/sys/bus/pci/drivers_probe is not writable for the service (quarantine needs it)"
[ "$(ns stat -c %d:%i /tmp)" != "$(stat -c %d:%i /tmp)" ] || vb_fail "the service shares the host's /tmp"
echo "ok: in its mount namespace /etc is read-only, /sys/bus/pci writable, /tmp its own"
