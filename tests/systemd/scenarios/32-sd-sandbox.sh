# shellcheck shell=bash
# Scenario: the unit's sandbox is in force in the running service.
# vb-pins: /proc/MAINPID/status of the running vfio-brokerd shows Seccomp 2 with at least two filters (systemd's and the broker's own), NoNewPrivs 1, CapBnd = exactly the unit's CapabilityBoundingSet (five capabilities), CapPrm = CapEff = those but cap_sys_ptrace and cap_dac_read_search (issue 13, item 9), and no inheritable or ambient ones; each of its three scanner processes has exactly those two, Seccomp 2 and NoNewPrivs 1; in its mount namespace /etc and the kernel tunables (/proc/sys/kernel/modprobe, /proc/sys/kernel/core_pattern, /sys/kernel) are read-only, /sys/bus/pci, a device's driver_override and /sys/fs/cgroup/vfio-broker writable and /tmp private; the journal records the same effective set
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
got=$(names "$(field CapBnd)")
[ "$got" = "$want" ] || vb_fail "CapBnd is '$got', expected the unit's bounding set '$want'"
# The broker gives the two that read other processes up after start-up: the scanners keep them.
scan='cap_dac_read_search cap_sys_ptrace '
want_eff=$(tr ' ' '\n' <<<"$want" | grep -v -x -e cap_sys_ptrace -e cap_dac_read_search | grep . | tr '\n' ' ')
for c in CapPrm CapEff; do
	got=$(names "$(field "$c")")
	[ "$got" = "$want_eff" ] || vb_fail "$c is '$got', expected '$want_eff'"
done
scanners=()
for f in /proc/[0-9]*/status; do
	ppid=$(awk '$1 == "PPid:" { print $2 }' "$f" 2>/dev/null || true)
	if [ "$ppid" = "$pid" ]; then scanners+=("$f"); fi
done
[ "${#scanners[@]}" = 3 ] || vb_fail "the broker has ${#scanners[@]} children, expected its 3 scanner processes"
for s in "${scanners[@]}"; do
	sfield() { awk -v k="$1:" '$1 == k { print $2 }' "$s"; }
	[ "$(names "$(sfield CapEff)")" = "$scan" ] || vb_fail "scanner $s: CapEff $(sfield CapEff), expected $scan"
	[ "$(sfield Seccomp)" = 2 ] || vb_fail "scanner $s: Seccomp $(sfield Seccomp), expected 2"
	[ "$(sfield NoNewPrivs)" = 1 ] || vb_fail "scanner $s: NoNewPrivs $(sfield NoNewPrivs), expected 1"
done
for c in CapInh CapAmb; do
	[ "$((16#$(field "$c")))" = 0 ] || vb_fail "$c is $(field "$c"), expected none"
done
echo "ok: bounding set the unit's ($want), permitted and effective $want_eff; the 3 scanners $scan"

# The broker logs through the journal, which records its effective set with each entry.
# journald keeps a process's metadata for a second: the entries of start-up may carry the
# set from before the broker dropped the scanners' two. A state dump (SIGUSR1) logged
# later carries the set it has now.
sleep 1.5
since=$(sd_now)
kill -USR1 "$pid"
entry=$(sd_wait_event 10 "$since" _PID="$pid" VB_EVENT=state) || vb_fail "the broker logged no VB_EVENT=state after SIGUSR1"
[ "$((16#$(sd_field "$entry" _CAP_EFFECTIVE)))" = "$((16#$(field CapEff)))" ] ||
	vb_fail "the journal says _CAP_EFFECTIVE=$(sd_field "$entry" _CAP_EFFECTIVE), /proc says $(field CapEff)"

ns() { nsenter -t "$pid" -m -- "$@"; }
! ns touch /etc/vb-sandbox-probe 2>/dev/null || vb_fail "/etc is writable in the service's mount namespace"
ns test -w /sys/bus/pci/drivers_probe || vb_fail "/sys/bus/pci/drivers_probe is not writable for the service (quarantine needs it)"
ns test -w "/sys/bus/pci/devices/$NIC2/driver_override" ||
	vb_fail "$NIC2's driver_override is not writable for the service (quarantine needs it)"
ns test -w /sys/fs/cgroup/vfio-broker/cgroup.procs ||
	vb_fail "/sys/fs/cgroup/vfio-broker is not writable for the service (lease cgroups need it)"
# uid 0 may write every sysctl file (they check the uid, not a capability):
# kernel.modprobe or kernel.core_pattern would run a program as full root.
for f in /proc/sys/kernel/modprobe /proc/sys/kernel/core_pattern /sys/kernel/mm/transparent_hugepage/enabled; do
	[ ! -e "$f" ] || ! ns test -w "$f" || vb_fail "$f is writable in the service's mount namespace (ProtectKernelTunables=)"
done
[ "$(ns stat -c %d:%i /tmp)" != "$(stat -c %d:%i /tmp)" ] || vb_fail "the service shares the host's /tmp"
echo "ok: in its mount namespace /etc and the kernel tunables are read-only, /sys/bus/pci, driver_override and the lease cgroups writable, /tmp its own"
