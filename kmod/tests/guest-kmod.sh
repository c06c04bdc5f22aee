#!/bin/bash
# shellcheck disable=SC2317 # the test functions are called indirectly
# guest-kmod.sh: the vfio_quarantine tests, run inside the test VM.
#
# usage (on the host):
#   python3 tests/vm/vmrun.py --kernel BUILD/vm/<kver> \
#       kmod/tests/guest-kmod.sh KO VQCTL [VM_PROBE [BUILD]]
# (kmod/tests/vm-kmod.sh does the builds and this.)
#
#   KO        vfio_quarantine.ko built for the guest's kernel
#   VQCTL     kmod/tests/vqctl built on the host (the guest runs the host's
#             user space over 9p)
#   VM_PROBE  optional: tests/vm's vm-probe, a VFIO client; when given, the
#             quarantined group is also checked to be viable and usable
#   BUILD     optional: the project's build directory (vfio-brokerd, vfioctl,
#             kmod/event-holder) for kmod-broker-relay; without it that test
#             is skipped
#
# Runs as root in the guest's root (tests/vm/guest-init.sh); reports each
# test with the VM driver's protocol (VB-PLAN, VB-BEGIN, VB-RESULT) through
# the helpers of tests/vm/guest-lib.sh.  The tests build on each other, in
# this order, on the group of the pcie-pci-bridge (the bridge and two e1000
# in slots 1 and 2; slots 3.. are empty for hot-plug).  Hot-plug uses slots
# 3, 4, 5 and 7; hot-removal (slot 3) is tested on 6.12 only, as Linux 6.1
# corrupts intel-iommu state when a device behind that bridge is removed
# (see tests/vm/README.md).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../tests/vm/guest-lib.sh
. "$here/../../tests/vm/guest-lib.sh"

KO=$(realpath -e "${1:?usage: guest-kmod.sh KO VQCTL [VM_PROBE]}") || exit 2
VQCTL=$(realpath -e "${2:?usage: guest-kmod.sh KO VQCTL [VM_PROBE]}") || exit 2
VM_PROBE=${3:-}
BUILD=${4:-}
PARAMS=/sys/module/vfio_quarantine/parameters
STATE=/run/vq
ENV=$STATE/env
MON_PID=
MON_LOG=

# ---- helpers -----------------------------------------------------------------

vq() {
	"$VQCTL" "$@"
}

# The override as sysfs shows it: "(null)" when none.  (Builtins where
# possible: every fork costs tens of milliseconds under TCG.)
override_of() {
	local o
	read -r o <"/sys/bus/pci/devices/$1/driver_override"
	echo "$o"
}

need_env() {
	[ -s "$ENV" ] || vb_fail_early "no topology: kmod-load did not complete"
	# shellcheck source=/dev/null
	. "$ENV"
}

need_module() {
	[ -d /sys/module/vfio_quarantine ] || vb_fail_early "vfio_quarantine is not loaded"
}

# reload_module [PARAM=VALUE...]: load the module again with these test hooks
# (read-only parameters, set at insmod; none: the defaults).  A quarantined
# group is released with --restore first and quarantined again after, so that
# its "old" drivers stay the host drivers that later tests restore.
reload_module() {
	local quarantined=
	[ -z "$(vq list)" ] || quarantined=1
	if [ -n "$quarantined" ]; then
		vq release "$G_BR" --restore || vb_fail "release --restore before the reload failed"
	fi
	rmmod vfio_quarantine || vb_fail "rmmod failed"
	insmod "$KO" "$@" || vb_fail "insmod $KO $* failed"
	echo "module loaded again${*:+ with $*}"
	if [ -n "$quarantined" ]; then
		vq quarantine "$G_BR" || vb_fail "quarantine after the reload failed"
	fi
}

# The e1000 endpoints behind the bridge now (hot-plugged ones included).
bridge_endpoints() {
	local d v
	for d in /sys/bus/pci/devices/"$BR_BUS":*; do
		read -r v <"$d/vendor"
		[ "$v" != 0x8086 ] || echo "${d##*/}"
	done
}

seconds_since() { # EPOCHREALTIME value -> seconds, one decimal
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

expect_driver() { # BDF DRIVER
	local got
	got=$(vb_driver_of "$1")
	[ "$got" = "$2" ] || vb_fail "$1 is on $got, expected $2"
}

expect_override() { # BDF VALUE
	local got
	got=$(override_of "$1")
	[ "$got" = "$2" ] || vb_fail "$1 has driver_override '$got', expected '$2'"
}

# A line in dmesg that later checks read from: dmesg_since NAME.
dmesg_mark() {
	echo "vq-test: mark $1" >/dev/kmsg
}
dmesg_since() {
	dmesg | sed -n "/vq-test: mark $1\$/,\$p"
}

# No kernel warning, oops or refcount complaint since the mark.
expect_clean_dmesg() {
	local bad
	bad=$(dmesg_since "$1" | grep -E 'WARNING:|BUG:|Oops|general protection|refcount_t|list_(add|del) corruption|use-after-free|kernel BUG' || true)
	[ -z "$bad" ] || vb_fail "kernel complained: $(head -n 3 <<<"$bad" | tr '\n' ' ')"
}

# start_monitor: vqctl monitor in the background, until stop_monitor.
start_monitor() {
	MON_LOG=$(mktemp "$STATE/monitor.XXXXXX")
	vq monitor >"$MON_LOG" 2>"$MON_LOG.err" &
	MON_PID=$!
	vb_wait 10 grep -q listening "$MON_LOG.err" ||
		vb_fail "vqctl monitor did not start: $(cat "$MON_LOG.err")"
}
stop_monitor() {
	if [ -n "$MON_PID" ]; then
		kill "$MON_PID" 2>/dev/null || true
		wait "$MON_PID" 2>/dev/null || true # 143: SIGTERM, as asked
		MON_PID=
		echo "events seen:"
		sed 's/^/  | /' "$MON_LOG"
	fi
}
# wait_event TEXT: a line of the monitor's output containing TEXT (5 s).
wait_event() {
	vb_wait 5 grep -qF -- "$1" "$MON_LOG" || vb_fail "no event '$1'"
	echo "ok: event '$1'"
}
no_event() {
	if grep -F -- "$1" "$MON_LOG"; then
		vb_fail "unexpected event '$1'"
	fi
	echo "ok: no event '$1'"
}

# probe_viable: when vm-probe is there, the group must be viable and every
# e1000 in it readable through VFIO.
probe_viable() {
	if [ -z "$VM_PROBE" ]; then
		echo "note: no vm-probe given; VFIO viability not checked"
		return 0
	fi
	vb_try "$VM_PROBE" --open "$G_BR"
	[ "$VB_RC" = 0 ] || vb_fail "vm-probe failed on group $G_BR"
	grep -q "group=$G_BR .*viable=1" <<<"$VB_OUT" || vb_fail "group $G_BR is not viable"
	echo "ok: group $G_BR is viable and its devices answer through VFIO"
}

# hotplug SLOT ID: device_add an e1000 into the bridge's slot, wait for it;
# sets NEW to its BDF.
hotplug() {
	NEW=$BR_BUS:0$1.0
	[ ! -e "/sys/bus/pci/devices/$NEW" ] || vb_fail "$NEW exists before the hot-plug"
	echo "asking the host: device_add e1000 id=$2 bus=br1 addr=0x$1"
	vb_hotplug add "id=$2" driver=e1000 bus=br1 "addr=0x$1" romfile= ||
		vb_fail "the host could not device_add"
	vb_wait 20 test -e "/sys/bus/pci/devices/$NEW" || vb_fail "$NEW did not appear within 20 s"
	# the probe runs right after the device appears: give it a moment
	vb_wait 10 test -e "/sys/bus/pci/devices/$NEW/driver" || true
	echo "$NEW appeared: group $(vb_group_of "$NEW"), driver $(vb_driver_of "$NEW"), driver_override $(override_of "$NEW")"
}

# No e1000 probe of BDF since the mark (the e1000 driver logs "e1000 BDF ...").
expect_no_e1000_probe() {
	if dmesg_since "$1" | grep -F "e1000 $2"; then
		vb_fail "e1000 probed $2"
	fi
	echo "ok: e1000 never probed $2"
}

# ---- the tests -----------------------------------------------------------------

test_load() {
	[ -x "$VQCTL" ] || vb_fail_early "vqctl is not built: $VQCTL"
	local br nics
	mapfile -t br < <(vb_find_pci 1b36 000e)
	mapfile -t nics < <(vb_find_pci 8086 100e)
	[ "${#br[@]}" = 1 ] || vb_fail "expected one pcie-pci-bridge, found ${#br[@]}"
	[ "${#nics[@]}" = 2 ] || vb_fail "expected two e1000, found ${#nics[@]}"
	local g
	g=$(vb_group_of "${br[0]}")
	[ "$(vb_group_members "$g")" = "$(printf '%s\n' "${br[0]}" "${nics[@]}" | sort)" ] ||
		vb_fail "group $g is not the bridge and both e1000"
	cat >"$ENV" <<-EOT
		BRIDGE=${br[0]}
		BR_E1=${nics[0]}
		BR_E2=${nics[1]}
		BR_BUS=${nics[0]%:*}
		G_BR=$g
	EOT
	sed 's/^/  /' "$ENV"
	# shellcheck source=/dev/null
	. "$ENV"
	expect_driver "$BR_E1" e1000
	expect_driver "$BR_E2" e1000
	expect_driver "$BRIDGE" none

	dmesg_mark load
	vb_try insmod "$KO"
	[ "$VB_RC" = 0 ] || vb_fail "insmod failed"
	[ -d /sys/module/vfio_quarantine ] || vb_fail "the module is not loaded"
	vb_try vq list
	[ "$VB_RC" = 0 ] || vb_fail "vqctl list failed"
	[ -z "$VB_OUT" ] || vb_fail "a fresh module lists groups"
	local p mode
	for p in fail_after test_add_notifier; do
		mode=$(stat -c %a "$PARAMS/$p") || vb_fail "no parameter $p"
		[ "$mode" = 444 ] || vb_fail "the test hook $p has mode $mode, expected 444 (set at load only)"
	done
	echo "ok: the test hooks are read-only parameters"
	expect_clean_dmesg load
}

test_nonadmin() {
	need_env
	need_module
	local dir
	# uid 2000 must reach vqctl (a build under /root would be 0700)
	dir=$(dirname "$VQCTL")
	while [ "$dir" != / ]; do
		chmod o+x "$dir"
		dir=$(dirname "$dir")
	done
	chmod o+rx "$VQCTL"
	vb_try vb_as 2000 "$VQCTL" quarantine "$G_BR"
	[ "$VB_RC" = 1 ] || vb_fail "uid 2000 got status $VB_RC, expected 1"
	[[ $VB_ERR == *"(EPERM)"* ]] || vb_fail "uid 2000 was not refused with EPERM"
	vb_try vb_as 2000 "$VQCTL" release "$G_BR" --restore
	[[ $VB_ERR == *"(EPERM)"* ]] || vb_fail "release by uid 2000 was not refused with EPERM"
	vb_try vb_as 2000 "$VQCTL" list
	[[ $VB_ERR == *"(EPERM)"* ]] || vb_fail "list by uid 2000 was not refused with EPERM"
	expect_driver "$BR_E1" e1000
	expect_driver "$BR_E2" e1000
	vb_try vq list
	[ -z "$VB_OUT" ] || vb_fail "a refused quarantine left a group behind"
}

test_rollback() {
	need_env
	need_module
	local failed other
	reload_module fail_after=1
	start_monitor
	vb_try vq quarantine "$G_BR"
	[ "$VB_RC" = 1 ] || vb_fail "the quarantine did not fail with fail_after=1 (status $VB_RC)"
	[[ $VB_ERR == *"(EIO)"* && $VB_ERR == *fail_after* ]] ||
		vb_fail "the error does not give the injected reason"
	failed=$(sed -nE "s/^vqctl: quarantine group $G_BR: ([0-9a-f]{4,}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]): .*/\\1/p" <<<"$VB_ERR")
	case $failed in
	"$BR_E1") other=$BR_E2 ;;
	"$BR_E2") other=$BR_E1 ;;
	*) vb_fail "the error does not name a member: '$VB_ERR'" ;;
	esac
	echo "ok: the kernel blames $failed; $other had been moved before"
	# the device moved before the failure went to vfio-pci and came back
	wait_event "event=bound group=$G_BR device=$other driver=vfio-pci"
	wait_event "event=bound group=$G_BR device=$other driver=e1000"
	wait_event "event=bound group=$G_BR device=$failed driver=e1000"
	for d in "$BR_E1" "$BR_E2"; do
		expect_driver "$d" e1000
		expect_override "$d" "(null)"
	done
	expect_driver "$BRIDGE" none
	expect_override "$BRIDGE" "(null)"
	vb_try vq list
	[ -z "$VB_OUT" ] || vb_fail "the failed quarantine left a group behind"
	no_event "event=quarantined"
	stop_monitor
	reload_module
}

test_quarantine() {
	need_env
	need_module
	start_monitor
	vb_try vq quarantine "$G_BR"
	[ "$VB_RC" = 0 ] || vb_fail "quarantine of group $G_BR failed"
	for d in "$BR_E1" "$BR_E2"; do
		expect_driver "$d" vfio-pci
		expect_override "$d" vfio-pci
	done
	expect_driver "$BRIDGE" none
	expect_override "$BRIDGE" vfio-pci
	wait_event "event=unbound group=$G_BR device=$BR_E1 driver=e1000"
	wait_event "event=bound group=$G_BR device=$BR_E2 driver=vfio-pci"
	wait_event "event=quarantined group=$G_BR"
	vb_try vq list
	grep -qx "group=$G_BR device=$BR_E1 driver=vfio-pci" <<<"$VB_OUT" || vb_fail "list: $BR_E1"
	grep -qx "group=$G_BR device=$BR_E2 driver=vfio-pci" <<<"$VB_OUT" || vb_fail "list: $BR_E2"
	grep -qx "group=$G_BR device=$BRIDGE driver=none flags=bridge" <<<"$VB_OUT" ||
		vb_fail "list: the bridge"
	vb_try vq quarantine "$G_BR"
	[[ $VB_RC = 1 && $VB_ERR == *"(EALREADY)"* ]] || vb_fail "a second quarantine was not EALREADY"
	vb_try vq quarantine 4000
	[[ $VB_RC = 1 && $VB_ERR == *"(ENOENT)"* ]] || vb_fail "quarantine of a missing group was not ENOENT"
	probe_viable
	stop_monitor
}

test_hotplug() {
	need_env
	need_module
	dmesg_mark hotplug
	start_monitor
	hotplug 3 vq-hp1
	[ "$(vb_group_of "$NEW")" = "$G_BR" ] || vb_fail "$NEW is not in group $G_BR"
	vb_wait 10 test "$(vb_driver_of "$NEW")" = vfio-pci ||
		vb_fail "$NEW is on $(vb_driver_of "$NEW"), not vfio-pci"
	expect_override "$NEW" vfio-pci
	wait_event "event=device-added group=$G_BR device=$NEW"
	wait_event "event=bound group=$G_BR device=$NEW driver=vfio-pci"
	no_event "device=$NEW driver=e1000"
	expect_no_e1000_probe hotplug "$NEW"
	# the notifier ordering: the device had its IOMMU group at ADD_DEVICE
	echo "kernel log for $NEW (the IOMMU core's notifier, ours, then the probe):"
	dmesg_since hotplug | grep -F "$NEW" | sed 's/^/  /'
	dmesg_since hotplug | grep -qF "vfio_quarantine: $NEW: joined quarantined group $G_BR; driver_override=vfio-pci" ||
		vb_fail "the module did not claim $NEW at ADD_DEVICE with its own IOMMU group"
	vb_try vq list
	grep -qx "group=$G_BR device=$NEW driver=vfio-pci flags=hotplugged" <<<"$VB_OUT" ||
		vb_fail "list does not show $NEW as hot-plugged"
	probe_viable
	expect_clean_dmesg hotplug
	stop_monitor
}

test_bind_guard() {
	need_env
	need_module
	local d=$BR_E1
	dmesg_mark guard
	start_monitor
	echo "an admin clears $d's driver_override, unbinds vfio-pci and binds e1000 by hand"
	echo >"/sys/bus/pci/devices/$d/driver_override"
	expect_override "$d" "(null)"
	echo "$d" >/sys/bus/pci/drivers/vfio-pci/unbind
	expect_driver "$d" none
	wait_event "event=unbind-requested group=$G_BR device=$d driver=vfio-pci"
	wait_event "event=unbound group=$G_BR device=$d driver=vfio-pci"
	vb_try bash -c "echo $d >/sys/bus/pci/drivers/e1000/bind"
	[ "$VB_RC" != 0 ] || vb_fail "the bind to e1000 reported success"
	expect_driver "$d" none
	expect_override "$d" vfio-pci
	wait_event "event=bind-blocked group=$G_BR device=$d driver=e1000"
	no_event "event=bound group=$G_BR device=$d driver=e1000"
	expect_no_e1000_probe guard "$d"
	echo "$d" >/sys/bus/pci/drivers_probe
	expect_driver "$d" vfio-pci
	expect_clean_dmesg guard
	stop_monitor
}

test_hotplug_guard_only() {
	need_env
	need_module
	local drv
	reload_module test_add_notifier=2
	dmesg_mark guardonly
	start_monitor
	hotplug 4 vq-hp2
	drv=$(vb_driver_of "$NEW")
	case $drv in
	vfio-pci) echo "ok: e1000 was refused and the driver core went on to vfio-pci" ;;
	none) echo "ok: e1000 was refused; vfio-pci comes before e1000 in the driver list" ;;
	*) vb_fail "$NEW is on $drv" ;;
	esac
	expect_override "$NEW" vfio-pci
	wait_event "event=device-added group=$G_BR device=$NEW"
	wait_event "event=bind-blocked group=$G_BR device=$NEW driver=e1000"
	no_event "event=bound group=$G_BR device=$NEW driver=e1000"
	expect_no_e1000_probe guardonly "$NEW"
	expect_clean_dmesg guardonly
	stop_monitor
	reload_module
}

test_hotplug_predicted() {
	need_env
	need_module
	reload_module test_add_notifier=1
	dmesg_mark predicted
	start_monitor
	hotplug 5 vq-hp3
	expect_driver "$NEW" vfio-pci
	expect_override "$NEW" vfio-pci
	dmesg_since predicted | grep -F "vfio_quarantine: $NEW: joined quarantined group $G_BR (predicted)" ||
		vb_fail "the module did not predict $NEW's group"
	wait_event "event=device-added group=$G_BR device=$NEW"
	wait_event "event=bound group=$G_BR device=$NEW driver=vfio-pci"
	no_event "driver=e1000"
	expect_no_e1000_probe predicted "$NEW"
	expect_clean_dmesg predicted
	stop_monitor
	reload_module
}

# kmod-broker-relay: the broker in kmod mode passes a hot-plug on to the holder.
relay_cleanup() {
	if [ -n "${HOLDER_PID:-}" ]; then
		kill "$HOLDER_PID" 2>/dev/null || true
		wait "$HOLDER_PID" 2>/dev/null || true
	fi
	vb_stop_broker
	echo "--- broker log"
	sed 's/^/  | /' "$VB_BROKER_LOG" 2>/dev/null || true
}

test_broker_relay() {
	need_env
	need_module
	[ -n "$BUILD" ] || vb_skip "no BUILD directory given: no broker to test"
	local holder=$BUILD/kmod/event-holder out=$STATE/holder.out json f
	HOLDER_PID=
	export VB_BUILD=$BUILD
	for f in "$VB_BUILD/vfio-brokerd" "$VB_BUILD/vfioctl" "$holder"; do
		[ -x "$f" ] || vb_fail_early "$f is not built"
	done
	vb_open_build
	chmod o+rx "$BUILD/kmod" "$holder"
	trap 'stop_monitor; relay_cleanup' EXIT
	install -d -m 0755 "$VB_STATE" "$VB_POLICY"
	rm -f "$VB_POLICY"/*.json "$VB_BROKER_LOG"
	# the e1000 by id; the bridge of the group needs no rule
	vb_write_policy 10-kmod <<-EOT
		{"rules": [
		  {"name": "kmod-bridge", "users": [2000],
		   "devices": [{"vendor": "8086", "device": "100e"}], "allow": ["lease"]}
		]}
	EOT
	vb_start_broker || vb_fail "vfio-brokerd did not start: $(tail -n 3 "$VB_BROKER_LOG" | tr '\n' ' ')"
	vb_wait 5 grep -qF "quarantine: kernel module vfio_quarantine [EVENT=kmod]" "$VB_BROKER_LOG" ||
		vb_fail "the broker does not log the module mode"
	echo "ok: the broker logs: $(grep -F 'EVENT=kmod]' "$VB_BROKER_LOG")"
	json=$(vb_vfioctl list --json) || vb_fail "vfioctl list --json failed"
	python3 -c 'import json, sys; sys.exit(json.loads(sys.argv[1]).get("quarantine") != "kmod")' \
		"$json" || vb_fail "vfioctl list --json does not say \"quarantine\": \"kmod\""
	vb_vfioctl list | grep -qx "quarantine: kernel module vfio_quarantine" ||
		vb_fail "vfioctl list does not say 'quarantine: kernel module vfio_quarantine'"
	echo "ok: vfioctl list shows the kmod mode, in text and JSON"

	vb_as 2000 "$holder" "$VB_SOCK" "$G_BR" >"$out" 2>"$out.err" &
	HOLDER_PID=$!
	vb_wait 10 grep -qx LEASED "$out" ||
		vb_fail "uid 2000 could not lease group $G_BR: $(cat "$out.err")"
	echo "ok: uid 2000 holds group $G_BR and waits for events"
	hotplug 6 vq-hp5
	vb_wait 10 grep -qF "[EVENT=kmod-device-added GROUP=$G_BR DEVICES=$NEW]" "$VB_BROKER_LOG" ||
		vb_fail "the broker did not log EVENT=kmod-device-added for $NEW"
	echo "ok: $(grep -F "EVENT=kmod-device-added GROUP=$G_BR DEVICES=$NEW" "$VB_BROKER_LOG")"
	wait "$HOLDER_PID" || vb_fail "the holder saw no device-added: $(cat "$out.err")"
	HOLDER_PID=
	echo "holder output:"
	sed 's/^/  | /' "$out"
	grep -qx "EVENT device-added $G_BR $NEW" "$out" ||
		vb_fail "the holder did not get device-added for $NEW"
	echo "ok: the holder got device-added group $G_BR device $NEW"
}

# kmod-broker-quarantine: vfioctl quarantine/unquarantine through the broker use the module.
test_broker_quarantine() {
	need_env
	need_module
	[ -n "$BUILD" ] || vb_skip "no BUILD directory given: no broker to test"
	local d eps json
	export VB_BUILD=$BUILD
	[ -x "$VB_BUILD/vfioctl" ] || vb_fail_early "$VB_BUILD/vfioctl is not built"
	HOLDER_PID=
	trap 'stop_monitor; relay_cleanup' EXIT
	# from the earlier tests the group is quarantined: give the devices back first
	vb_try vq release "$G_BR" --restore
	[[ $VB_RC = 0 || $VB_ERR == *"(ENOENT)"* ]] || vb_fail "release --restore failed: $VB_ERR"
	mapfile -t eps < <(bridge_endpoints)
	for d in "${eps[@]}"; do
		expect_driver "$d" e1000
	done
	rm -f "$VB_BROKER_LOG"
	vb_start_broker || vb_fail "vfio-brokerd did not start: $(tail -n 3 "$VB_BROKER_LOG" | tr '\n' ' ')"
	vb_wait 5 grep -qF "quarantine: kernel module vfio_quarantine [EVENT=kmod]" "$VB_BROKER_LOG" ||
		vb_fail "the broker is not in kmod mode"
	json=$(vb_vfioctl quarantine "$G_BR" --json) || vb_fail "vfioctl quarantine $G_BR failed"
	echo "vfioctl quarantine: $json"
	python3 -c 'import json, sys; sys.exit(json.loads(sys.argv[1]).get("mode") != "kmod")' \
		"$json" || vb_fail "the reply does not say mode kmod"
	for d in "${eps[@]}"; do
		expect_driver "$d" vfio-pci
		expect_override "$d" vfio-pci
		grep -qF "$d" <<<"$json" || vb_fail "the reply does not list $d"
	done
	expect_driver "$BRIDGE" none
	grep -qF "mode=kmod" "$VB_BROKER_LOG" || vb_fail "the broker did not log mode=kmod"
	echo "ok: ${eps[*]} are on vfio-pci, by the module"
	vb_vfioctl unquarantine "$G_BR" --restore || vb_fail "vfioctl unquarantine --restore failed"
	for d in "${eps[@]}"; do
		expect_driver "$d" e1000
		expect_override "$d" "(null)"
	done
	echo "ok: ${eps[*]} are back on e1000"
	# the tests after this one expect the group quarantined
	vq quarantine "$G_BR" || vb_fail "quarantine failed"
}

# ---- device requests (issue 12.2): REQUEST_DEVICE and vfioctl remove --soft ----

# request_broker: the broker of BUILD, started with the rule that lets uid 2000
# lease the bridge group (with memlock for an inner QEMU); stopped on exit.
request_broker() {
	[ -n "$BUILD" ] || vb_skip "no BUILD directory given: no broker to test"
	export VB_BUILD=$BUILD
	local f
	for f in "$VB_BUILD/vfio-brokerd" "$VB_BUILD/vfioctl" "$VM_PROBE"; do
		[ -x "$f" ] || vb_fail_early "$f is not built"
	done
	vb_open_build
	chmod o+rx "$VM_PROBE"
	HOLDER_PID=
	trap 'stop_monitor; relay_cleanup' EXIT
	install -d -m 0755 "$VB_STATE" "$VB_POLICY"
	rm -f "$VB_POLICY"/*.json "$VB_BROKER_LOG"
	vb_write_policy 10-kmod <<-EOT
		{"rules": [
		  {"name": "kmod-bridge", "users": [2000],
		   "devices": [{"vendor": "8086", "device": "100e"}], "allow": ["lease"],
		   "memlock": "65M"}
		]}
	EOT
	vb_start_broker || vb_fail "vfio-brokerd did not start: $(tail -n 3 "$VB_BROKER_LOG" | tr '\n' ' ')"
}

# request_holder MODE [ON-REMOVE]: uid 2000 leases the bridge group with
# `vfioctl lease --on-remove=ON-REMOVE` (default ignore: vfioctl does not act on
# remove-requested), its command vm-probe --on-request MODE (exit or ignore),
# which registers a request eventfd on every e1000 of the group.  Sets
# HOLDER_PID; output in HOLDER_OUT.
request_holder() {
	HOLDER_OUT=$STATE/holder-$1.out
	vb_as 2000 "$VB_BUILD/vfioctl" --socket "$VB_SOCK" lease "$G_BR" \
		--on-remove="${2:-ignore}" -- "$VM_PROBE" --on-request "$1" >"$HOLDER_OUT" 2>&1 &
	HOLDER_PID=$!
	vb_wait 30 grep -qF "request eventfd registered device=$BR_E1" "$HOLDER_OUT" ||
		vb_fail "vm-probe did not register a request eventfd: $(tail -n 5 "$HOLDER_OUT" | tr '\n' ' ')"
	echo "ok: uid 2000 holds group $G_BR; vm-probe --on-request $1 registered:"
	grep -F "request eventfd registered" "$HOLDER_OUT" | sed 's/^/  | /'
}

# lease_state GROUP: the state `vfioctl leases --json` shows, or "none".
lease_state() {
	vb_lease_field "$1" state
}

lease_gone() {
	[ "$(lease_state "$G_BR")" = none ]
}

test_request_module() {
	need_env
	need_module
	expect_driver "$BR_E1" vfio-pci
	vb_try vq request "$BR_E1"
	[ "$VB_RC" = 0 ] || vb_fail "REQUEST_DEVICE of $BR_E1 failed"
	[ "$VB_OUT" = "device=$BR_E1 eventfd=0" ] ||
		vb_fail "expected 'device=$BR_E1 eventfd=0' (no VFIO user), got '$VB_OUT'"
	echo "ok: on vfio-pci with no VFIO user, the module reports no request eventfd"
	vb_try vb_as 2000 "$VQCTL" request "$BR_E1"
	[[ $VB_RC = 1 && $VB_ERR == *"(EPERM)"* ]] || vb_fail "uid 2000 was not refused with EPERM"
	vb_try vq request "$BRIDGE"
	[[ $VB_RC = 1 && $VB_ERR == *"(ENXIO)"* ]] ||
		vb_fail "the driverless bridge was not refused with ENXIO"
	vb_try vq request 0000:ff:1f.7
	[[ $VB_RC = 1 && $VB_ERR == *"(ENODEV)"* ]] || vb_fail "a missing device was not ENODEV"
	expect_driver "$BR_E1" vfio-pci
	expect_driver "$BRIDGE" none
}

test_request_cooperative() {
	need_env
	need_module
	local t0
	request_broker
	request_holder exit
	t0=$EPOCHREALTIME
	vb_try vb_vfioctl remove --soft "$G_BR" --timeout 60
	[ "$VB_RC" = 0 ] || vb_fail "the soft removal failed"
	[[ $VB_OUT == *"given back by its holder"* ]] || vb_fail "the reply does not say the holder gave it back"
	echo "ok: soft removal done in $(seconds_since "$t0") s"
	grep -qE "device request device=$BR_BUS:[0-9a-f.:]+ count=[0-9]+ action=exit" "$HOLDER_OUT" ||
		vb_fail "vm-probe did not see the device request"
	grep -qF "released: every VFIO fd closed" "$HOLDER_OUT" || vb_fail "vm-probe did not let go"
	wait "$HOLDER_PID" || vb_fail "the holder (vfioctl lease) exited with status $?"
	HOLDER_PID=
	grep -F "device request relayed to $BR_E1: a request eventfd is registered and was signalled" \
		"$VB_BROKER_LOG" || vb_fail "the broker did not log the relay to $BR_E1"
	grep -F "Group $G_BR removed (soft)" "$VB_BROKER_LOG" || vb_fail "the broker did not log the removal"
	vb_wait 10 lease_gone || vb_fail "the lease outlived the holder"
	expect_driver "$BR_E1" vfio-pci
	echo "ok: the holder answered the VFIO device request; the devices stay on vfio-pci"
}

test_request_stubborn() {
	need_env
	need_module
	local t0 pid
	request_broker
	request_holder ignore
	vb_try vq request "$BR_E1"
	[ "$VB_OUT" = "device=$BR_E1 eventfd=1" ] ||
		vb_fail "expected 'device=$BR_E1 eventfd=1' (vm-probe registered one), got '$VB_OUT'"
	vb_wait 10 grep -qF "device request device=$BR_E1 count=1 action=ignore" "$HOLDER_OUT" ||
		vb_fail "vm-probe did not get the request vqctl relayed"
	echo "ok: the module reports the request eventfd, and vm-probe got the request"
	t0=$EPOCHREALTIME
	vb_try vb_vfioctl remove --soft "$G_BR" --timeout 7
	[ "$VB_RC" = 1 ] || vb_fail "the soft removal did not fail (status $VB_RC)"
	for f in "did not release group $G_BR within 7 s" "the lease is unchanged" \
		"the VFIO device request was relayed" "which has a request eventfd registered" \
		"vfioctl remove --hard $G_BR"; do
		[[ $VB_ERR == *"$f"* ]] || vb_fail "the answer does not say '$f'"
	done
	echo "ok: timed out after $(seconds_since "$t0") s, saying what was relayed; nothing changed:"
	[ "$(grep -c "action=ignore" "$HOLDER_OUT")" -ge 3 ] ||
		vb_fail "vm-probe saw fewer than 3 requests (one from vqctl, the broker's every 3 s)"
	grep -c "action=ignore" "$HOLDER_OUT"
	kill -0 "$HOLDER_PID" || vb_fail "the holder is gone"
	[ "$(lease_state "$G_BR")" = held ] || vb_fail "the lease is $(lease_state "$G_BR"), not held"
	expect_driver "$BR_E1" vfio-pci
	expect_driver "$BR_E2" vfio-pci
	echo "ok: holder running, lease held, devices on vfio-pci"
	pid=$HOLDER_PID
	vb_try vb_vfioctl remove --hard "$G_BR"
	[ "$VB_RC" = 0 ] || vb_fail "the hard removal failed"
	wait "$pid" 2>/dev/null || true
	HOLDER_PID=
	vb_wait 10 lease_gone || vb_fail "the lease outlived the hard removal"
}

# With Debian's QEMU as the holder: it registers the request eventfd, and a
# relayed request it cannot act on (vfio-pci on the root bus of its q35
# cannot be unplugged) leaves it running.
test_request_qemu() {
	need_env
	need_module
	command -v qemu-system-x86_64 >/dev/null || vb_skip "no qemu-system-x86_64 on the host"
	local dir=$STATE/qemu-2000 sock log t0 qemu
	request_broker
	# QEMU runs as uid 2000 and binds its QMP socket there
	install -d -o 2000 -g 2000 -m 0700 "$dir"
	sock=$dir/qmp.sock
	log=$STATE/qemu-req.log
	mapfile -t qemu < <(vb_qemu_args "$sock" "$BR_E1")
	rm -f "$sock"
	setpriv --reuid=2000 --regid=2000 --clear-groups -- "$VB_BUILD/vfioctl" --socket "$VB_SOCK" \
		run --device "$BR_E1" --memlock "$VB_QEMU_MEMLOCK" -- "${qemu[@]}" </dev/null >"$log" 2>&1 &
	HOLDER_PID=$!
	t0=$SECONDS
	vb_qemu_wait_qmp "$HOLDER_PID" "$sock" || { cat "$log"; vb_fail "QEMU did not answer on QMP"; }
	echo "QEMU (pid $HOLDER_PID) answers on QMP after $((SECONDS - t0)) s"
	vb_try vq request "$BR_E1"
	[ "$VB_OUT" = "device=$BR_E1 eventfd=1" ] ||
		vb_fail "QEMU registered no request eventfd on $BR_E1 ('$VB_OUT')"
	echo "ok: QEMU registered the request eventfd on $BR_E1"
	vb_try vb_vfioctl remove --soft "$G_BR" --timeout 7
	[ "$VB_RC" = 1 ] || vb_fail "the soft removal did not time out (status $VB_RC)"
	[[ $VB_ERR == *"which has a request eventfd registered"* ]] ||
		vb_fail "the answer does not say a request eventfd is registered"
	vb_qmp "$sock" query-status >/dev/null || { cat "$log"; vb_fail "QEMU stopped answering"; }
	[ "$(vb_lease_pid "$G_BR")" = "$HOLDER_PID" ] || vb_fail "the lease is no longer QEMU's"
	expect_driver "$BR_E1" vfio-pci
	echo "ok: QEMU is running and still holds the group; its log:"
	sed 's/^/  | /' "$log"
	vb_qmp "$sock" quit >/dev/null || true
	vb_wait 20 vb_gone "$HOLDER_PID" || vb_fail "QEMU did not quit"
	wait "$HOLDER_PID" 2>/dev/null || true
	HOLDER_PID=
	vb_wait 10 lease_gone || vb_fail "the lease outlived QEMU"
}

# Without the module: only the event packet; the answer says no device
# request could be relayed, and vm-probe never sees one.
test_request_without_module() {
	need_env
	[ ! -d /sys/module/vfio_quarantine ] || rmmod vfio_quarantine
	expect_driver "$BR_E1" vfio-pci
	request_broker
	vb_wait 5 grep -qF "quarantine: none (module not loaded)" "$VB_BROKER_LOG" ||
		vb_fail "the broker is not in mode none"
	request_holder ignore
	vb_try vb_vfioctl remove --soft "$G_BR" --timeout 3
	[ "$VB_RC" = 1 ] || vb_fail "the soft removal did not time out (status $VB_RC)"
	[[ $VB_ERR == *"no VFIO device request could be relayed (the vfio_quarantine module is not loaded)"* ]] ||
		vb_fail "the answer does not say no device request could be relayed"
	! grep -F "device request device=" "$HOLDER_OUT" || vb_fail "vm-probe got a device request"
	echo "ok: no device request reached vm-probe"
	vb_try vb_vfioctl remove --hard "$G_BR"
	[ "$VB_RC" = 0 ] || vb_fail "the hard removal failed"
	wait "$HOLDER_PID" 2>/dev/null || true
	HOLDER_PID=
}

# Item 3 of issue 12: an admin unbinds a leased device from vfio-pci behind
# the broker's back.  The kernel blocks the writer until the holder lets go;
# the module's unbind-requested event lets the broker say who holds it and
# ask the holder (remove-requested, which vfioctl lease turns into SIGTERM).
test_unbind_in_use() {
	need_env
	need_module
	local unbind_pid json
	request_broker
	request_holder ignore term
	dmesg_mark unbind
	echo "\$ echo $BR_E2 >/sys/bus/pci/drivers/vfio-pci/unbind   (blocks while the group is in use)"
	bash -c "echo $BR_E2 >/sys/bus/pci/drivers/vfio-pci/unbind" &
	unbind_pid=$!
	vb_wait 20 grep -qF "An unbind of $BR_E2 from vfio-pci waits for the holder of group $G_BR: pid" \
		"$VB_BROKER_LOG" || vb_fail "the broker did not report the unbind waiting for the holder"
	grep -F "An unbind of $BR_E2" "$VB_BROKER_LOG"
	vb_wait 20 grep -qF "group $G_BR: an administrator asks for it back; sending SIGTERM" "$HOLDER_OUT" ||
		vb_fail "the holder was not asked: $(tail -n 3 "$HOLDER_OUT" | tr '\n' ' ')"
	echo "ok: the holder was told; it lets go"
	vb_wait 30 vb_gone "$unbind_pid" || vb_fail "the unbind still waits 30 s after the holder was told"
	wait "$unbind_pid" || vb_fail "the unbind failed (status $?)"
	wait "$HOLDER_PID" 2>/dev/null || true
	HOLDER_PID=
	echo "ok: the unbind completed"
	expect_driver "$BR_E2" none
	vb_wait 10 lease_gone || vb_fail "the lease outlived the holder"
	json=$(vb_vfioctl list --json) || vb_fail "vfioctl list --json failed"
	python3 - "$json" "$G_BR" "$BR_E2" <<-'PY' || vb_fail "vfioctl list is not coherent with sysfs"
		import json, sys
		for g in json.loads(sys.argv[1])["groups"]:
		    if g["group"] == int(sys.argv[2]):
		        assert g["holder"] is None, "the group still has a holder"
		        d = [d for d in g["devices"] if d["address"] == sys.argv[3]]
		        assert d and d[0]["driver"] is None, "the device is not shown driverless"
		        sys.exit(0)
		sys.exit("group not listed")
	PY
	echo "ok: vfioctl list shows $BR_E2 driverless and group $G_BR free"
	echo "$BR_E2" >/sys/bus/pci/drivers_probe
	expect_driver "$BR_E2" vfio-pci
	expect_clean_dmesg unbind
}

test_hotunplug() {
	need_env
	need_module
	case $(uname -r) in
	6.1.*) vb_skip "Linux $(uname -r) corrupts intel-iommu state when a device behind the PCIe-to-PCI bridge is hot-removed (tests/vm/README.md)" ;;
	esac
	local gone=$BR_BUS:03.0
	dmesg_mark unplug
	start_monitor
	echo "asking the host: device_del vq-hp1"
	vb_hotplug del id=vq-hp1 || vb_fail "the host could not device_del"
	vb_wait 20 test ! -e "/sys/bus/pci/devices/$gone" || vb_fail "$gone is still there"
	wait_event "event=unbound group=$G_BR device=$gone driver=vfio-pci"
	wait_event "event=device-removed group=$G_BR device=$gone"
	vb_try vq list
	! grep -q "device=$gone" <<<"$VB_OUT" || vb_fail "list still shows $gone"
	probe_viable
	expect_clean_dmesg unplug
	stop_monitor
}

test_release_restore() {
	need_env
	need_module
	local d eps
	start_monitor
	mapfile -t eps < <(bridge_endpoints)
	vb_try vq release "$G_BR" --restore
	[ "$VB_RC" = 0 ] || vb_fail "release failed"
	[ -z "$VB_ERR" ] || vb_fail "release warned: $VB_ERR"
	for d in "${eps[@]}"; do
		expect_driver "$d" e1000
		expect_override "$d" "(null)"
	done
	echo "ok: ${eps[*]} are back on e1000 with no driver_override"
	expect_driver "$BRIDGE" none
	expect_override "$BRIDGE" "(null)"
	wait_event "event=released group=$G_BR"
	vb_try vq list
	[ -z "$VB_OUT" ] || vb_fail "the group is still listed"
	vb_try vq release "$G_BR"
	[[ $VB_RC = 1 && $VB_ERR == *"(ENOENT)"* ]] || vb_fail "a second release was not ENOENT"
	stop_monitor
}

test_release_keep() {
	need_env
	need_module
	vq quarantine "$G_BR" || vb_fail "quarantine failed"
	start_monitor
	vb_try vq release "$G_BR"
	[ "$VB_RC" = 0 ] || vb_fail "release failed"
	expect_all_quarantined
	echo "ok: the devices stayed on vfio-pci with driver_override"
	wait_event "event=released group=$G_BR"
	no_event "event=unbound"
	[ -z "$(vq list)" ] || vb_fail "the group is still listed"
	stop_monitor
}

# list_mode: the "quarantine" field of `vfioctl list --json`.
list_mode() {
	local json
	json=$(vb_vfioctl list --json) || return 1
	python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get("quarantine"))' "$json"
}

# kmod-broker-reload: the broker follows an rmmod and a new insmod.
test_broker_reload() {
	need_env
	need_module
	[ -n "$BUILD" ] || vb_skip "no BUILD directory given: no broker to test"
	export VB_BUILD=$BUILD
	[ -x "$VB_BUILD/vfio-brokerd" ] || vb_fail_early "$VB_BUILD/vfio-brokerd is not built"
	HOLDER_PID=
	trap 'stop_monitor; relay_cleanup' EXIT
	rm -f "$VB_BROKER_LOG"
	vb_start_broker || vb_fail "vfio-brokerd did not start: $(tail -n 3 "$VB_BROKER_LOG" | tr '\n' ' ')"
	[ "$(list_mode)" = kmod ] || vb_fail "the broker does not start in kmod mode"
	rmmod vfio_quarantine || vb_fail "rmmod failed"
	vb_wait 5 grep -qF "quarantine: none (module unloaded); retrying every 2 s [EVENT=kmod]" \
		"$VB_BROKER_LOG" || vb_fail "the broker did not notice the rmmod"
	[ "$(list_mode)" = none ] || vb_fail "vfioctl list does not say none after the rmmod"
	echo "ok: after rmmod the broker is in mode none"
	insmod "$KO" || vb_fail "insmod failed"
	vb_wait 5 grep -qF "quarantine: kernel module vfio_quarantine (reconnected) [EVENT=kmod]" \
		"$VB_BROKER_LOG" || vb_fail "the broker did not find the module again within 5 s"
	[ "$(list_mode)" = kmod ] || vb_fail "vfioctl list does not say kmod after the insmod"
	echo "ok: after insmod the broker is back in mode kmod"
	vb_broker_running || vb_fail "the broker died"
}

# every endpoint behind the bridge is on vfio-pci with driver_override set
expect_all_quarantined() {
	local d v o drv
	for d in /sys/bus/pci/devices/"$BR_BUS":*; do
		read -r v <"$d/vendor"
		[ "$v" = 0x8086 ] || continue
		read -r o <"$d/driver_override"
		drv=none
		[ ! -e "$d/driver" ] || drv=$(readlink "$d/driver")
		[ "${drv##*/}" = vfio-pci ] || vb_fail "${d##*/} is on ${drv##*/}, expected vfio-pci"
		[ "$o" = vfio-pci ] || vb_fail "${d##*/} has driver_override '$o', expected 'vfio-pci'"
	done
}

test_rmmod_cycles() {
	need_env
	need_module
	local i t0 t_rmmod t_insmod t_quar
	dmesg_mark cycles
	vb_try vq quarantine "$G_BR"
	[ "$VB_RC" = 0 ] || vb_fail "quarantine failed"
	for i in 1 2 3 4 5; do
		t0=$EPOCHREALTIME
		rmmod vfio_quarantine || vb_fail "rmmod $i failed"
		t_rmmod=$(seconds_since "$t0")
		[ ! -d /sys/module/vfio_quarantine ] || vb_fail "still loaded after rmmod $i"
		expect_all_quarantined
		t0=$EPOCHREALTIME
		insmod "$KO" || vb_fail "insmod $i failed"
		t_insmod=$(seconds_since "$t0")
		expect_all_quarantined
		[ -z "$(vq list)" ] || vb_fail "a fresh module lists groups"
		t0=$EPOCHREALTIME
		vq quarantine "$G_BR" || vb_fail "quarantine after insmod $i failed"
		t_quar=$(seconds_since "$t0")
		expect_all_quarantined
		echo "cycle $i: rmmod $t_rmmod s, insmod $t_insmod s, quarantine $t_quar s; the devices stayed on vfio-pci with driver_override"
	done
	expect_clean_dmesg cycles
	rmmod vfio_quarantine || vb_fail "the last rmmod failed"
	expect_all_quarantined
	dmesg_since cycles | grep -F "stay on vfio-pci" | head -n 2
	expect_clean_dmesg cycles
}

test_without_module() {
	need_env
	[ ! -d /sys/module/vfio_quarantine ] || rmmod vfio_quarantine
	dmesg_mark without
	echo "the group's other members are on vfio-pci; nothing protects the empty slot"
	hotplug 7 vq-hp4
	vb_wait 10 test "$(vb_driver_of "$NEW")" = e1000 ||
		vb_fail "$NEW is on $(vb_driver_of "$NEW"), expected e1000 without the module"
	expect_override "$NEW" "(null)"
	dmesg_since without | grep -F "e1000 $NEW" | head -n 2
	echo "expected outcome: e1000 took $NEW at once, so group $G_BR is no longer viable"
	if [ -n "$VM_PROBE" ]; then
		vb_try "$VM_PROBE" --open "$G_BR"
		grep -q "group=$G_BR .*viable=0" <<<"$VB_OUT" ||
			vb_fail "group $G_BR should not be viable with $NEW on e1000"
		echo "ok: VFIO says group $G_BR is not viable"
	fi
	expect_clean_dmesg without
}

# ---- the runner --------------------------------------------------------------------

TESTS=(
	"kmod-load|test_load|vfio_quarantine loads, its generic netlink family answers LIST with no groups, and its test hooks are read-only parameters"
	"kmod-nonadmin-refused|test_nonadmin|uid 2000 without CAP_NET_ADMIN is refused QUARANTINE, RELEASE and LIST with EPERM by the kernel; nothing changes"
	"kmod-rollback|test_rollback|a QUARANTINE that fails at the second e1000 (loaded with fail_after=1) names that device and why, and rolls back: both e1000 on e1000 again, no driver_override, no group listed"
	"kmod-quarantine|test_quarantine|QUARANTINE of the bridge group puts both e1000 on vfio-pci with driver_override, leaves the bridge driverless, lists the members, multicasts events; again is EALREADY; a missing group is ENOENT"
	"kmod-hotplug|test_hotplug|an e1000 hot-plugged (QMP device_add) into the quarantined group's slot 3 lands on vfio-pci, e1000 never binds it, a device-added event is multicast; the IOMMU group was known at BUS_NOTIFY_ADD_DEVICE"
	"kmod-bind-guard|test_bind_guard|with driver_override cleared by hand, binding e1000 to a quarantined member is refused at BUS_NOTIFY_BIND_DRIVER (the override is put back and the PCI core's re-match fails the probe)"
	"kmod-hotplug-guard-only|test_hotplug_guard_only|with the ADD_DEVICE claim disabled (loaded with test_add_notifier=2), the BIND_DRIVER guard alone keeps e1000 off a hot-plugged device"
	"kmod-hotplug-predicted|test_hotplug_predicted|with the device's own group ignored at ADD_DEVICE (loaded with test_add_notifier=1), the group predicted from the PCIe-to-PCI bridge alias claims the hot-plugged device"
	"kmod-broker-relay|test_broker_relay|vfio-brokerd finds the module (its log and vfioctl list say kmod); an e1000 hot-plugged into slot 6 of the group uid 2000 leased is logged as EVENT=kmod-device-added and reaches the holder as the protocol event device-added"
	"kmod-broker-quarantine|test_broker_quarantine|vfioctl quarantine of the bridge group through vfio-brokerd puts every e1000 on vfio-pci with mode kmod (the reply and the log say so); vfioctl unquarantine --restore gives them back to e1000"
	"kmod-request-refusals|test_request_module|REQUEST_DEVICE of an e1000 on vfio-pci without a VFIO user says eventfd=0 and changes nothing; uid 2000 is refused with EPERM, the driverless bridge with ENXIO, a missing device with ENODEV"
	"kmod-request-cooperative|test_request_cooperative|vfioctl remove --soft of the group uid 2000 leased (vfioctl lease --on-remove=ignore) completes because vm-probe, told by the VFIO device request the broker relayed through the module, closes its fds; the broker logs the relay and the devices stay on vfio-pci"
	"kmod-request-stubborn|test_request_stubborn|with vm-probe ignoring device requests, the module reports its request eventfd (eventfd=1), the broker relays every 3 s, and vfioctl remove --soft --timeout 7 fails saying so: holder running, lease held, devices on vfio-pci; --hard then takes it"
	"kmod-request-qemu|test_request_qemu|Debian's QEMU under vfioctl run registers the request eventfd of its vfio-pci device (the module reports eventfd=1), and a soft removal whose relayed requests it cannot act on times out with QEMU still running and holding the lease"
	"kmod-unbind-in-use|test_unbind_in_use|an unbind of a leased e1000 from vfio-pci by hand blocks; the broker logs that it waits for the holder (pid, uid, rule) and sends remove-requested, vfioctl lease ends its command, the unbind completes, and vfioctl list shows the device driverless and the group free"
	"kmod-hotunplug|test_hotunplug|hot-removing a quarantined member (6.12 only) sends unbound and device-removed events and drops it from the list"
	"kmod-release-restore|test_release_restore|RELEASE --restore gives every e1000 (hot-plugged ones too) back to e1000 with no driver_override; a second release is ENOENT"
	"kmod-release-keep|test_release_keep|RELEASE without --restore ends the quarantine but leaves every e1000 on vfio-pci with driver_override (nothing is unbound)"
	"kmod-broker-reload|test_broker_reload|with vfio-brokerd running, rmmod puts it in mode none (logged, and vfioctl list says none) and a new insmod is found again within 5 s (mode kmod)"
	"kmod-rmmod-cycles|test_rmmod_cycles|five rmmod/insmod cycles with the group quarantined: devices stay on vfio-pci with driver_override throughout; no kernel warning"
	"kmod-request-without-module|test_request_without_module|without the module a soft removal sends only the event packet: vm-probe sees no device request, and the timeout's answer says no VFIO device request could be relayed (the module is not loaded)"
	"kmod-without-module|test_without_module|without vfio_quarantine, a hot-plugged device goes to its host driver (e1000 binds it at once: the race the module closes)"
)

install -d -m 0755 "$STATE"
echo "guest: $(uname -r); module $KO"
names=()
for t in "${TESTS[@]}"; do
	names+=("${t%%|*}")
done
vb_marker "PLAN ${names[*]}"

failed=0
for t in "${TESTS[@]}"; do
	name=${t%%|*}
	rest=${t#*|}
	fn=${rest%%|*}
	pins=${rest#*|}
	export VB_REASON=$STATE/reason.$name
	rm -f "$VB_REASON" "$VB_REASON.early"
	vb_console "BEGIN $name"
	vb_marker "BEGIN $name"
	echo "=== $name: $pins"
	t0=$EPOCHREALTIME
	(
		vb_strict
		trap 'stop_monitor' EXIT
		"$fn"
	)
	rc=$?
	secs=$(seconds_since "$t0")
	reason=
	[ ! -e "$VB_REASON" ] || reason=$(tr '\n' ' ' <"$VB_REASON")
	reason=${reason% }
	case $rc in
	0) status=PASS ;;
	77) status=SKIP ;;
	*)
		status=FAIL
		reason=${reason:-exit status $rc}
		failed=$((failed + 1))
		echo "--- kernel log (last 12 lines)"
		dmesg | tail -n 12
		;;
	esac
	echo "($name: $status in $secs s)"
	vb_marker "RESULT $status $name: $pins${reason:+ -- $reason}"
done
[ "$failed" = 0 ]
