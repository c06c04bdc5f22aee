# shellcheck shell=bash
# guest-lib.sh: helpers for the scripts that run inside the test VM.
#
# Sourced by tests/vm/guest-run.sh, by every scenario under
# tests/vm/scenarios/ and by tests/vm/demo-guest.sh.  They run as root in
# the guest's root (see guest-init.sh); their stdout is the control port
# that tests/vm/vmrun.py reads, VB_CTL names that port, VB_BUILD the
# project's build directory (same absolute path as on the host).
#
# Guest state lives in /run/vb (tmpfs, gone with the VM):
#   env         the devices and groups found by 10-topology (shell variables)
#   policy/     the broker's policy directory (root-owned, 0755)
#   share/      scratch space the test users may write (1777)
#   broker.*    the broker's socket, pid and log

# shellcheck disable=SC2034 # used by the scenarios
VB_STATE=/run/vb
VB_ENV=$VB_STATE/env
VB_POLICY=$VB_STATE/policy
VB_SHARE=$VB_STATE/share
VB_SOCK=$VB_STATE/broker.sock
VB_BROKER_PID=$VB_STATE/broker.pid
VB_BROKER_LOG=$VB_STATE/broker.log
VB_CTL=${VB_CTL:-/dev/ttyS1}

# ---- talking to the host driver -------------------------------------------

# vb_marker WORDS...: one protocol line to the host ("VB-" is prepended).
vb_marker() {
	printf 'VB-%s\n' "$*" >"$VB_CTL"
}

# vb_console TEXT: a line on the kernel console, to correlate console.log.
vb_console() {
	printf 'vb: %s\n' "$*" >/dev/console 2>/dev/null || true
}

# vb_request REQUEST: send a request, print the host's answer; status 1 if
# the host answered with an error or not at all (60 s).
vb_request() {
	local reply
	vb_marker "$1"
	while IFS= read -r -t 60 reply <"$VB_CTL"; do
		case $reply in
		"VB-ACK ok"*)
			reply=${reply#VB-ACK ok}
			printf '%s\n' "${reply# }"
			return 0
			;;
		"VB-ACK error"*)
			echo "host: ${reply#VB-ACK error }" >&2
			return 1
			;;
		esac
	done
	echo "no answer from the host to: $1" >&2
	return 1
}

# vb_hotplug add id=ID driver=DRIVER bus=BUS [PROP=VALUE]...
# vb_hotplug del id=ID      (returns once QEMU reports DEVICE_DELETED)
vb_hotplug() {
	vb_request "HOTPLUG $*" >/dev/null
}

# ---- test results ----------------------------------------------------------

# vb_fail REASON: end the current scenario as failed.
vb_fail() {
	[ -s "${VB_REASON:-/dev/null}" ] || printf '%s\n' "$*" >"${VB_REASON:-/dev/null}"
	echo "FAIL: $*"
	exit 1
}

# vb_fail_early REASON: fail because a prerequisite is missing (another
# scenario failed, a binary is not built); the runner then shows no
# diagnostics, as they would be about something else.
vb_fail_early() {
	: >"${VB_REASON:-/dev/null}.early"
	vb_fail "$@"
}

# vb_skip REASON: end the current scenario as skipped.
vb_skip() {
	printf '%s\n' "$*" >"${VB_REASON:-/dev/null}"
	echo "SKIP: $*"
	exit 77
}

# Strict mode for a scenario: an unexpected failing command fails it and
# names the command.
vb_strict() {
	set -eEuo pipefail
	trap 'vb_fail "line $LINENO: command failed (status $?): $BASH_COMMAND"' ERR
}

# vb_try CMD...: run CMD, show it with its output; afterwards VB_RC, VB_OUT
# and VB_ERR hold its exit status, stdout and stderr.  Never fails.
vb_try() {
	local out err
	out=$(mktemp) err=$(mktemp)
	echo "\$ $*"
	VB_RC=0
	"$@" >"$out" 2>"$err" </dev/null || VB_RC=$?
	VB_OUT=$(cat "$out")
	VB_ERR=$(cat "$err")
	rm -f "$out" "$err"
	[ -z "$VB_OUT" ] || printf '  > %s\n' "${VB_OUT//$'\n'/$'\n'  > }"
	[ -z "$VB_ERR" ] || printf '  2> %s\n' "${VB_ERR//$'\n'/$'\n'  2> }"
	echo "  (exit status $VB_RC)"
}

# vb_wait SECONDS CMD...: poll CMD every 0.1 s until it succeeds; status 1
# on timeout.
vb_wait() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# vb_as UID CMD...: run CMD as UID (gid UID, no supplementary groups).  The
# uid needs no passwd entry.
vb_as() {
	local uid=$1
	shift
	setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$@"
}

# vb_open_build: let the test uids reach and run the binaries in VB_BUILD.
# A checkout under /root (0700) or a umask of 077 would otherwise make every
# unprivileged step fail with EACCES.  The guest's / is an overlay, so this
# changes nothing on the host.
vb_open_build() {
	local d=$VB_BUILD f
	while [ "$d" != / ]; do
		if [ "$(($(stat -c '0%a' "$d") & 1))" = 0 ]; then
			chmod o+x "$d"
			echo "note: made $d searchable for the test users (in the guest only)"
		fi
		d=$(dirname "$d")
	done
	for f in "$VB_BUILD"/vfioctl "$VB_BUILD"/vm-probe "$VB_BUILD"/*.so*; do
		if [ -f "$f" ] && [ "$(($(stat -c '0%a' "$f") & 5))" != 5 ]; then
			chmod o+rx "$f"
			echo "note: made $f readable and executable for the test users (in the guest only)"
		fi
	done
}

# ---- PCI and IOMMU groups from sysfs ---------------------------------------

vb_pci_attr() { # BDF ATTR -> value without 0x: vendor 8086
	local v
	v=$(cat "/sys/bus/pci/devices/$1/$2")
	echo "${v#0x}"
}

vb_pci_id() { # BDF -> 8086:10d3
	echo "$(vb_pci_attr "$1" vendor):$(vb_pci_attr "$1" device)"
}

vb_group_of() { # BDF -> IOMMU group number
	basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")"
}

vb_driver_of() { # BDF -> driver name, or "none"
	local link=/sys/bus/pci/devices/$1/driver
	if [ -e "$link" ]; then
		basename "$(readlink "$link")"
	else
		echo none
	fi
}

vb_group_members() { # GROUP -> its devices, one per line, sorted
	find "/sys/kernel/iommu_groups/$1/devices/" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort
}

vb_find_pci() { # VENDOR DEVICE (e.g. 8086 10d3) -> matching BDFs, sorted
	local d
	for d in /sys/bus/pci/devices/*; do
		if [ "$(cat "$d/vendor")" = "0x$1" ] && [ "$(cat "$d/device")" = "0x$2" ]; then
			basename "$d"
		fi
	done | sort
}

# vb_bind_vfio BDF: hand a device to vfio-pci the way an admin does:
# driver_override, unbind from its driver, drivers_probe.
vb_bind_vfio() {
	local dev=/sys/bus/pci/devices/$1
	echo vfio-pci >"$dev/driver_override"
	if [ -e "$dev/driver" ]; then
		echo "$1" >"$dev/driver/unbind"
	fi
	echo "$1" >/sys/bus/pci/drivers_probe
	[ "$(vb_driver_of "$1")" = vfio-pci ]
}

# ---- rootless containers (52-runc, 53-crun, 54-podman) ----------------------

# vb_need_rootless_containers: skip unless unprivileged user namespaces work
# (our own 6.12-iommufd is built without CONFIG_USER_NS).
vb_need_rootless_containers() {
	[ -e /proc/self/ns/user ] || vb_skip "this kernel has no user namespaces (CONFIG_USER_NS is not set)"
	[ "$(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null || echo 1)" != 0 ] ||
		vb_skip "kernel.unprivileged_userns_clone is 0: no rootless containers"
}

# The guest's init mounts no cgroup file system, and runc 1.1 refuses to run
# without one ("no cgroup mount found in mountinfo"), crun 1.8 even to write
# a spec ("invalid file system type on '/sys/fs/cgroup'"). A systemd host has
# cgroup v2 on /sys/fs/cgroup: so does the runtime here, in a mount namespace
# of its own (the rest of the tier keeps its guest without cgroups). Nothing
# there is delegated to uid 2000: with no cgroupsPath and no linux.resources
# in the config, a rootless runtime then runs the container without a cgroup.
# "${VB_AS_2000_CGROUP2[@]}" CMD... runs CMD there as uid 2000: unshare, sh,
# setpriv and CMD exec each other, so CMD keeps the pid of the job that
# started it.
# shellcheck disable=SC2016 # $@ belongs to the inner sh
VB_AS_2000_CGROUP2=(unshare --mount --propagation private -- /bin/sh -c
	'mount -t cgroup2 none /sys/fs/cgroup && exec "$@"' with-cgroup2
	setpriv --reuid=2000 --regid=2000 --clear-groups --)

# vb_container_rootfs DIR: an empty root for a container that binds the
# host's /usr read-only (bin, lib, lib64 and sbin link into it), with mount
# points for /proc, /dev, /sys, /io and /vb/vm-probe.
vb_container_rootfs() {
	local d
	for d in usr proc dev sys io vb; do
		mkdir -p "$1/$d"
	done
	for d in bin lib lib64 sbin; do
		ln -s "usr/$d" "$1/$d"
	done
	: >"$1/vb/vm-probe"
}

# vb_container_inside: the shell script a container of these scenarios runs:
# vm-probe on NIC1 through the group that fd 3 is, then what fd 3 is
# ("inside-fd3=DEV:INO"), then "ready" in /io and a wait (up to 60 s) for
# /io/done while the scenario looks at it from outside.
vb_container_inside() {
	cat <<EOT
/vb/vm-probe --bdf $NIC1 || exit 1
stat -L -c inside-fd3=%d:%i - <&3
touch /io/ready
i=0
while [ ! -e /io/done ] && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i + 1)); done
EOT
}

# vb_container_ready JOB IO LOG FATAL_ERE: wait up to 60 s for the container
# that JOB (vfioctl lease -- a container runtime, output in LOG) runs with
# vb_container_inside to say ready in IO; if JOB exits first, fail with the
# runtime's first line matching FATAL_ERE (its cause). Then show LOG and check
# it: vm-probe read NIC1 as sysfs says, through fd 3 as group G_NIC1, and fd 3
# was /dev/vfio/G_NIC1 inside.
vb_container_ready() {
	local job=$1 io=$2 log=$3 fatal=$4 t0=$SECONDS node
	if ! vb_wait 60 test -e "$io/ready"; then
		cat "$log"
		vb_gone "$job" && vb_fail "the container exited before it was ready: $(grep -m 1 -E "$fatal" "$log" || tail -n 1 "$log")"
		vb_fail "the container was not ready after 60 s"
	fi
	echo "the container is ready after $((SECONDS - t0)) s"
	cat "$log"
	vb_check_probe "$(cat "$log")" "$NIC1"
	grep -q "^vm-probe: group=$G_NIC1 fd=3 source=env viable=1" "$log" ||
		vb_fail "vm-probe in the container did not use fd 3 as group $G_NIC1"
	node=$(stat -L -c %d:%i "/dev/vfio/$G_NIC1")
	grep -qx "inside-fd3=$node" "$log" ||
		vb_fail "inside, fd 3 is $(sed -n 's/^inside-fd3=//p' "$log"), /dev/vfio/$G_NIC1 is $node"
	echo "ok: fd 3 in the container is /dev/vfio/$G_NIC1 ($node)"
}

# vb_container_end JOBVAR IO LOG SECONDS WHAT: tell the container to end (IO/done);
# then WHAT, the job whose pid the caller's variable JOBVAR holds, must exit 0
# within SECONDS (else LOG is shown and the scenario fails), and the lease of
# G_NIC1 end with it. JOBVAR is cleared once the job is reaped, so that the
# caller's cleanup never signals a pid that may be another process's by then.
vb_container_end() {
	local -n vb_end_job=$1
	local io=$2 log=$3 secs=$4 what=$5 rc=0
	touch "$io/done"
	vb_wait "$secs" vb_gone "$vb_end_job" || vb_fail "$what did not exit within $secs s of the container's end"
	wait "$vb_end_job" || rc=$?
	vb_end_job=
	[ "$rc" = 0 ] || {
		cat "$log"
		vb_fail "$what exited with status $rc"
	}
	vb_wait 10 vb_lease_ended "$G_NIC1" || vb_fail "the lease outlived $what"
	[ "$(vb_holder_of "$G_NIC1")" = none ] || vb_fail "group $G_NIC1 still has a holder"
}

# ---- the broker --------------------------------------------------------------

# Load the topology that 10-topology found; fail if it did not run.
vb_need_env() {
	[ -s "$VB_ENV" ] || vb_fail_early "no topology: 10-topology did not complete"
	# shellcheck source=/dev/null
	. "$VB_ENV"
}

vb_broker_running() {
	[ -s "$VB_BROKER_PID" ] && kill -0 "$(cat "$VB_BROKER_PID")" 2>/dev/null &&
		[ -S "$VB_SOCK" ]
}

# Fail unless vfioctl is built and the broker runs (30-broker-start).
vb_need_broker() {
	vb_need_env
	[ -x "$VB_BUILD/vfioctl" ] || vb_fail_early "vfioctl is not built ($VB_BUILD/vfioctl)"
	[ -x "$VB_BUILD/vm-probe" ] || vb_fail_early "vm-probe is not built ($VB_BUILD/vm-probe)"
	vb_broker_running || vb_fail_early "the broker is not running (see 30-broker-start)"
}

# vfioctl CMD... / vb_vfioctl_as UID CMD...: the CLI on the test socket.
vb_vfioctl() {
	"$VB_BUILD/vfioctl" --socket "$VB_SOCK" "$@"
}
vb_vfioctl_as() {
	local uid=$1
	shift
	vb_as "$uid" "$VB_BUILD/vfioctl" --socket "$VB_SOCK" "$@"
}

# vb_start_broker: start vfio-brokerd in its own session (so a scenario's
# timeout does not take it down), wait up to 10 s for its socket.
vb_start_broker() {
	local pid
	[ -x "$VB_BUILD/vfio-brokerd" ] ||
		{ echo "vfio-brokerd is not built ($VB_BUILD/vfio-brokerd)"; return 1; }
	rm -f "$VB_SOCK"
	echo "\$ vfio-brokerd --socket $VB_SOCK --policy $VB_POLICY --log-target stderr &"
	setsid "$VB_BUILD/vfio-brokerd" --socket "$VB_SOCK" --policy "$VB_POLICY" \
		--sysfs-root /sys --dev-root /dev --log-target stderr \
		</dev/null >>"$VB_BROKER_LOG" 2>&1 &
	pid=$!
	echo "$pid" >"$VB_BROKER_PID"
	if ! vb_wait 10 test -S "$VB_SOCK"; then
		if kill -0 "$pid" 2>/dev/null; then
			echo "no socket $VB_SOCK after 10 s"
		else
			wait "$pid" && echo "the broker exited" ||
				echo "the broker exited with status $?"
		fi
		return 1
	fi
}

# vb_stop_broker: SIGTERM, wait up to 5 s, then SIGKILL.
vb_stop_broker() {
	local pid
	[ -s "$VB_BROKER_PID" ] || return 0
	pid=$(cat "$VB_BROKER_PID")
	rm -f "$VB_BROKER_PID"
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid"
	if ! vb_wait 5 eval "! kill -0 $pid 2>/dev/null"; then
		echo "the broker ignored SIGTERM for 5 s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
}

# vb_write_policy NAME: write stdin to $VB_POLICY/NAME.json atomically, as
# the broker requires: root-owned, mode 0644.
vb_write_policy() {
	local tmp
	tmp=$(mktemp "$VB_POLICY/.tmp.XXXXXX")
	cat >"$tmp"
	chmod 0644 "$tmp"
	mv -f "$tmp" "$VB_POLICY/$1.json"
	echo "policy $VB_POLICY/$1.json:"
	sed 's/^/  | /' "$VB_POLICY/$1.json"
}

# vb_holder_of GROUP: the holder's uid as `vfioctl list --json` shows it,
# "none" when there is none; status 1 if the list cannot be read.
vb_holder_of() {
	local json
	json=$(vb_vfioctl list --json) || return 1
	python3 -c '
import json, sys
for g in json.loads(sys.argv[1])["groups"]:
    if g["group"] == int(sys.argv[2]):
        h = g.get("holder")
        print(h["uid"] if h else "none")
        break
else:
    sys.exit("group %s not listed" % sys.argv[2])
' "$json" "$1"
}

# vb_probe_ids OUTPUT BDF: "vendor:device" that vm-probe printed for BDF.
vb_probe_ids() {
	sed -nE "s/^vm-probe: device=$2 .*vendor=([0-9a-f]+) device_id=([0-9a-f]+).*/\\1:\\2/p" <<<"$1"
}

# vb_check_probe OUTPUT BDF...: fail unless vm-probe read each device's
# vendor:device and it matches sysfs.
vb_check_probe() {
	local out=$1 bdf got want
	shift
	for bdf in "$@"; do
		got=$(vb_probe_ids "$out" "$bdf")
		want=$(vb_pci_id "$bdf")
		[ -n "$got" ] || vb_fail "vm-probe did not read $bdf"
		[ "$got" = "$want" ] ||
			vb_fail "vm-probe read $got from $bdf, sysfs says $want"
		echo "ok: $bdf reads $got through VFIO, as sysfs says"
	done
}

# ---- an unmodified QEMU inside the guest (the host's, over 9p) --------------

# The inner machine: paused (-S), 64 MiB, no devices but the ones passed in,
# QMP on socket $1. VB_QEMU_RAM is what VFIO pins; the lease asks for
# VB_QEMU_MEMLOCK = RAM + 1 MiB (6.12 also pins the 256 KiB BIOS; docs/qemu.md).
VB_QEMU_RAM=64M
VB_QEMU_MEMLOCK=65M
vb_qemu_args() { # QMP-SOCKET BDF... -> the qemu-system-x86_64 command line, one word a line
	local sock=$1 i=0 bdf
	shift
	printf '%s\n' qemu-system-x86_64 -machine q35,accel=kvm:tcg -m "$VB_QEMU_RAM" -nodefaults \
		-display none -S -qmp "unix:$sock,server=on,wait=off"
	for bdf in "$@"; do
		printf '%s\n' -device "vfio-pci,host=$bdf,id=vf$i"
		i=$((i + 1))
	done
}

# vb_qmp SOCKET COMMAND [ARGUMENTS-JSON]: run one QMP command (after the
# capabilities handshake), print its "return" as JSON; status 1 on an error
# or no answer within 30 s.
vb_qmp() {
	python3 - "$@" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(30)
s.connect(sys.argv[1])
f = s.makefile("rw")
def call(cmd, args=None):
    msg = {"execute": cmd}
    if args:
        msg["arguments"] = args
    f.write(json.dumps(msg) + "\n")
    f.flush()
    while True:
        line = f.readline()
        if not line:
            sys.exit("QMP: connection closed during %s" % cmd)
        r = json.loads(line)
        if "return" in r:
            return r["return"]
        if "error" in r:
            sys.exit("QMP %s: %s" % (cmd, r["error"].get("desc")))
json.loads(f.readline())  # the greeting
call("qmp_capabilities")
print(json.dumps(call(sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else None)))
PY
}

# vb_qmp_pci_ids SOCKET QDEV-ID: "vendor:device" of that device in the inner
# machine, from query-pci.
vb_qmp_pci_ids() {
	local json
	json=$(vb_qmp "$1" query-pci) || return 1
	python3 -c '
import json, sys
for bus in json.loads(sys.argv[1]):
    for d in bus["devices"]:
        if d.get("qdev_id") == sys.argv[2]:
            print("%04x:%04x" % (d["id"]["vendor"], d["id"]["device"]))
            sys.exit(0)
sys.exit("no device %s in query-pci" % sys.argv[2])
' "$json" "$2"
}

# vb_lease_field GROUP FIELD: FIELD (pid, uid, state, ...) of GROUP's lease as
# `vfioctl leases --json` shows it, or "none" when GROUP has no lease.
vb_lease_field() {
	local json
	json=$(vb_vfioctl leases --json) || return 1
	python3 -c '
import json, sys
for l in json.loads(sys.argv[1])["leases"]:
    if l["group"] == int(sys.argv[2]):
        print(l[sys.argv[3]])
        break
else:
    print("none")
' "$json" "$1" "$2"
}

# vb_lease_pid GROUP: the holder's pid as `vfioctl leases --json` shows it, or "none".
vb_lease_pid() {
	vb_lease_field "$1" pid
}

# vb_gone PID: whether the process has exited (a zombie counts as gone).
vb_gone() {
	! kill -0 "$1" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# vb_qemu_wait_qmp PID SOCKET: wait up to 60 s for QEMU's QMP to answer;
# status 1 at once when PID exits first.
vb_qemu_wait_qmp() {
	local deadline=$((SECONDS + 60))
	until vb_qmp "$2" query-status >/dev/null 2>&1; do
		! vb_gone "$1" || return 1
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

# vb_lease_ended GROUP: whether `vfioctl leases` shows no lease of GROUP.
vb_lease_ended() {
	[ "$(vb_lease_pid "$1")" = none ]
}

# vb_qemu_policy MEMLOCK: the rules of the QEMU scenarios (uid 2000 and 2002
# may lease the first e1000e, uid 2000 the whole bridge group, both with
# MEMLOCK), in place of 10-vm-tier.json, which is kept for vb_policy_restore.
vb_qemu_policy() {
	[ -e "$VB_STATE/policy.saved" ] || cp "$VB_POLICY/10-vm-tier.json" "$VB_STATE/policy.saved"
	vb_write_policy 10-vm-tier <<EOT
{"rules": [
  {"name": "vm-nic", "users": [2000, 2002],
   "devices": [{"address": "$NIC1"}], "allow": ["lease"], "memlock": "$1"},
  {"name": "bridge-both", "users": [2000],
   "devices": [{"address": "$BR_E1"}, {"address": "$BR_E2"}], "allow": ["lease"],
   "memlock": "$VB_QEMU_MEMLOCK"}
]}
EOT
	vb_vfioctl reload >/dev/null
}

# vb_policy_restore: put back what vb_qemu_policy replaced, so that later
# scenarios find the policy 30-broker-start wrote.
vb_policy_restore() {
	[ -e "$VB_STATE/policy.saved" ] || return 0
	vb_write_policy 10-vm-tier <"$VB_STATE/policy.saved" >/dev/null
	rm -f "$VB_STATE/policy.saved"
	vb_vfioctl reload >/dev/null
}

# vb_qemu_scenario: the start of a scenario that runs the host's QEMU in the
# guest: strict mode, a running broker, qemu-system-x86_64 or a skip, and on
# exit the QEMU whose pid the scenario keeps in qemu_pid killed and the policy
# vb_qemu_policy replaced restored.
vb_qemu_scenario() {
	vb_strict
	vb_need_broker
	command -v qemu-system-x86_64 >/dev/null || vb_skip "no qemu-system-x86_64 on the host"
	qemu_pid=
	trap vb_qemu_cleanup EXIT
}

vb_qemu_cleanup() {
	[ -z "${qemu_pid:-}" ] || kill -KILL "$qemu_pid" 2>/dev/null || true
	vb_policy_restore
}

# vb_qemu_quit SOCKET SECONDS LOG [NAME]: QMP quit to the QEMU in qemu_pid (a
# child of this shell), which must be gone within SECONDS and exit 0 (else LOG
# is shown and the scenario fails, naming NAME, default "QEMU"). qemu_pid is
# cleared: vb_qemu_cleanup has nothing left to kill.
vb_qemu_quit() {
	local name=${4:-QEMU} rc=0
	vb_qmp "$1" quit >/dev/null || true
	vb_wait "$2" vb_gone "$qemu_pid" || vb_fail "$name did not quit within $2 s"
	wait "$qemu_pid" || rc=$?
	qemu_pid=
	[ "$rc" = 0 ] || { cat "$3"; vb_fail "$name exited with status $rc"; }
}

# vb_crash_broker: kill -9 the broker, as a crash would, and wait up to 5 s
# for it to be gone; its socket file and lease table stay behind.
# vb_start_broker then starts it again on the same socket and state.
vb_crash_broker() {
	local pid
	[ -s "$VB_BROKER_PID" ] || return 1
	pid=$(cat "$VB_BROKER_PID")
	echo "\$ kill -KILL $pid   # vfio-brokerd"
	kill -KILL "$pid"
	vb_wait 5 vb_gone "$pid"
}

# ---- QEMU 10 on the device cdev path (kernels with iommufd) -----------------

# vb_cdev_of BDF: /dev/vfio/devices/vfioN of a device on vfio-pci, the node
# its sysfs vfio-dev names (waiting up to 10 s for devtmpfs); status 1 with
# the reason on stderr when there is none.
vb_cdev_of() {
	local sys=/sys/bus/pci/devices/$1/vfio-dev names node
	names=$(ls "$sys" 2>/dev/null) || { echo "$1 has no $sys (not on vfio-pci, or no VFIO_DEVICE_CDEV)" >&2; return 1; }
	[ "$(wc -w <<<"$names")" = 1 ] || { echo "$sys has '$names', expected one vfioN" >&2; return 1; }
	node=/dev/vfio/devices/$names
	vb_wait 10 test -c "$node" || { echo "$node ($1) is missing" >&2; return 1; }
	echo "$node"
}

# vb_need_qemu10: load the QEMU 10 that tests/vm/check.sh fetched from
# bookworm-backports (its note BUILD/vm/qemu10.guest names the cache entry's
# env file, see tests/vm/fetch-qemu10.sh): QEMU10 (the binary),
# QEMU10_VERSION, QEMU10_DATADIRS (its -L directories) and QEMU_MODULE_DIR
# (exported, so that it never loads the host's 7.2 modules).  Skips with the
# reason when there is none; fails instead when the host ran with
# VM_REQUIRED=1.
vb_need_qemu10() {
	local note=$VB_BUILD/vm/qemu10.guest d
	local VB_QEMU10_ENV='' VB_QEMU10_WHY='' VB_REQUIRED=0
	if [ -s "$note" ]; then
		# shellcheck source=/dev/null # written by vm_fetch_qemu10 (host-lib.sh)
		. "$note"
	else
		VB_QEMU10_WHY="no $note: tests/vm/check.sh fetches QEMU 10 (tests/vm/fetch-qemu10.sh) before it boots"
	fi
	if [ -z "$VB_QEMU10_WHY" ] && [ ! -s "$VB_QEMU10_ENV" ]; then
		VB_QEMU10_WHY="the QEMU 10 cache entry is gone: no $VB_QEMU10_ENV"
	fi
	if [ -n "$VB_QEMU10_WHY" ]; then
		[ "$VB_REQUIRED" != 1 ] || vb_fail_early "$VB_QEMU10_WHY (a failure with VM_REQUIRED=1)"
		vb_skip "$VB_QEMU10_WHY"
	fi
	# shellcheck source=/dev/null # written by fetch-qemu10.sh
	. "$VB_QEMU10_ENV"
	[ -x "$QEMU10" ] || vb_fail_early "$QEMU10 (from $VB_QEMU10_ENV) is not executable"
	# shellcheck disable=SC2153 # set by the env file
	export QEMU_MODULE_DIR=$QEMU10_MODULE_DIR
	# The test users must reach it, also in a cache under a 0700 home.
	d=$QEMU10
	while d=$(dirname "$d") && [ "$d" != / ]; do
		[ "$(($(stat -c '0%a' "$d") & 1))" = 1 ] || chmod o+x "$d"
	done
}

# vb_qemu10_args QMP-SOCKET: the inner machine of vb_qemu_args run by QEMU 10
# with the first device passed as fds, one word a line: `{iommufd}` and
# `{fd}` stand for the /dev/iommu and device cdev fd numbers, the
# placeholders of `vfioctl run --cdev`.
vb_qemu10_args() {
	local d
	printf '%s\n' "$QEMU10"
	for d in $QEMU10_DATADIRS; do
		printf '%s\n' -L "$d"
	done
	printf '%s\n' -machine q35,accel=kvm:tcg -m "$VB_QEMU_RAM" -nodefaults -display none -S \
		-qmp "unix:$1,server=on,wait=off" \
		-object 'iommufd,id=iommufd0,fd={iommufd}' \
		-device 'vfio-pci,iommufd=iommufd0,fd={fd},id=vf0'
}
