# shellcheck shell=bash
# Scenario: the broker's structured fields in the journal of the installed service.
# vb-pins: `journalctl -u vfio-brokerd -o json` has, from the service's own process (_SYSTEMD_UNIT=vfio-brokerd.service, SYSLOG_IDENTIFIER=vfio-brokerd), a grant (VB_UID 2000, VB_GROUP, VB_PID, VB_DEVICES, VB_RULE vm-nic), a denial (VB_UID 2001, VB_GROUP), a release (VB_UID, VB_GROUP) and a removal (VB_UID 2000, VB_GROUP) of the first e1000e's group, caused by the lease, deny and hard-removal scenarios before it
vb_strict
# shellcheck source-path=SCRIPTDIR source=../sd-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../sd-lib.sh"
vb_need_env

json=$VB_STATE/journal.json
journalctl -b -q -u "$SD_UNIT" -o json >"$json"
echo "journalctl -u $SD_UNIT -o json: $(wc -l <"$json") entries"
# Each event: the fields it must carry (FIELD=VALUE, or FIELD=* for any value).
check_event() {
	local event=$1
	shift
	python3 - "$json" "$event" "$SD_UNIT" "$@" <<'PY' || vb_fail "no VB_EVENT=$event entry with $*"
import json, sys
event, unit, want = sys.argv[2], sys.argv[3], [w.split("=", 1) for w in sys.argv[4:]]
want += [["_SYSTEMD_UNIT", unit], ["SYSLOG_IDENTIFIER", "vfio-brokerd"], ["MESSAGE", "*"]]
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("VB_EVENT") != event:
        continue
    if all(k in e and (v == "*" or e[k] == v) for k, v in want):
        print("ok: VB_EVENT=%s: %s" % (event, " ".join(
            "%s=%s" % (k, e[k]) for k in sorted(e) if k.startswith("VB_"))))
        print("    MESSAGE=%s" % e["MESSAGE"])
        sys.exit(0)
sys.exit(1)
PY
}
check_event grant VB_UID=2000 VB_GROUP="$G_NIC1" VB_PID='*' VB_DEVICES="$NIC1" VB_RULE=vm-nic
check_event deny VB_UID=2001 VB_GROUP="$G_NIC1"
check_event release VB_UID='*' VB_GROUP="$G_NIC1"
check_event remove VB_UID=2000 VB_GROUP="$G_NIC1"
