# shellcheck shell=bash
# Scenario: Debian's podman 4.3 (the host's, over 9p) with runc, rootless as
# uid 2000, puts the leased group into a container; a program inside drives
# the device through it. podman starts the runtime through conmon, which
# detaches: this pins who holds the group file, and that none is left behind.
# vb-pins: as uid 2000 (no passwd or subuid entry: one uid mapped), `vfioctl lease G -- podman --cgroup-manager=cgroupfs --events-backend=file --storage-driver=vfs run --rm --runtime=runc --network=none --preserve-fds=1 -e VFIO_BROKER_FDS=G=3 -v /usr:/usr:ro --device /dev/vfio/vfio --rootfs DIR ...` runs vm-probe in the container: it builds a VFIO container from fd 3 and reads 8086:10d3, as sysfs says; fd 3 inside is /dev/vfio/G; the holder `vfioctl leases` names is vfioctl lease; while it runs, the group file is open in vfioctl lease, podman, conmon and the container's process (not in podman's pause process); when the container exits, podman and the lease end and no process has the file open
vb_strict
vb_need_broker
podman=$(command -v podman) || vb_skip "no podman on the host (scripts/deps.sh installs it)"
command -v runc >/dev/null || vb_skip "no runc on the host (scripts/deps.sh installs it)"
vb_need_rootless_containers
# As in 52-runc: cgroup v2 for the runtime, uid 2000 (guest-lib.sh); vfioctl
# keeps the job's pid.
as_2000=("${VB_AS_2000_CGROUP2[@]}")

dir=$VB_SHARE/podman
rootfs=$dir/rootfs
io=$dir/io # /io in the container: the container says "ready", we say "done"
log=$dir/run.log
rm -rf "$dir"
mkdir -p "$io" "$dir/home" "$dir/xdg"
vb_container_rootfs "$rootfs"
chown -R 2000:2000 "$dir"
chmod 0700 "$dir/xdg"

inside=$(vb_container_inside)

# open_in: "PID COMM PPID" of every process with /dev/vfio/G open, sorted
# (one find: a readlink per descriptor takes seconds under TCG).
open_in() {
	local p
	find /proc/[0-9]*/fd -maxdepth 1 -lname "/dev/vfio/$G_NIC1" 2>/dev/null |
		cut -d/ -f3 | sort -un | while read -r p; do
		echo "$p $(cat "/proc/$p/comm") $(awk '/^PPid:/ {print $2}' "/proc/$p/status")"
	done 2>/dev/null
}

none_open() {
	[ -z "$(open_in)" ]
}

job=
cleanup() {
	local pause=$dir/xdg/libpod/tmp/pause.pid
	touch "$io/done"
	[ -z "$job" ] || vb_wait 30 vb_gone "$job" || kill -KILL "$job" 2>/dev/null || true
	# podman leaves its pause process behind for the next podman: end it.
	[ ! -s "$pause" ] || kill -KILL "$(cat "$pause")" 2>/dev/null || true
}
trap cleanup EXIT

# The command docs/containers.md shows.
t0=$SECONDS
echo "\$ vfioctl lease $G_NIC1 -- podman ... run --rm --runtime=runc --network=none --preserve-fds=1 ... --rootfs $rootfs /bin/sh -c ...   (uid 2000)"
"${as_2000[@]}" env HOME="$dir/home" XDG_RUNTIME_DIR="$dir/xdg" \
	"$VB_BUILD/vfioctl" --socket "$VB_SOCK" lease "$G_NIC1" -- \
	"$podman" --cgroup-manager=cgroupfs --events-backend=file --storage-driver=vfs \
	run --rm --runtime=runc --network=none --preserve-fds=1 -e "VFIO_BROKER_FDS=$G_NIC1=3" \
	-v /usr:/usr:ro -v "$VB_BUILD/vm-probe:/vb/vm-probe:ro" -v "$io:/io" \
	--device /dev/vfio/vfio --rootfs "$rootfs" /bin/sh -c "$inside" \
	</dev/null >"$log" 2>&1 &
job=$!
vb_container_ready "$job" "$io" "$log" '^Error|level=(fatal|error)'

holder=$(vb_lease_pid "$G_NIC1") || vb_fail "cannot read vfioctl leases --json"
[ "$holder" = "$job" ] || vb_fail "the lease of group $G_NIC1 names pid $holder, vfioctl lease is pid $job"
echo "ok: the holder is vfioctl lease (pid $job)"
open=$(open_in | grep -v ' vfio-brokerd ') || true
echo "/dev/vfio/$G_NIC1 is open in (pid comm ppid), besides the broker:"
while read -r line; do echo "  $line"; done <<<"$open"
# podman's pause process keeps the rootless user namespace alive after
# podman exits: it must not have the group.
! grep -q ' podman pause ' <<<"$open" || vb_fail "podman's pause process has /dev/vfio/$G_NIC1 open"
for comm in vfioctl podman conmon sh; do
	grep -q "^[0-9]* $comm " <<<"$open" || vb_fail "$comm does not have /dev/vfio/$G_NIC1 open"
done
[ "$(awk '$2 == "podman" {print $3}' <<<"$open")" = "$job" ] ||
	vb_fail "the podman with the file open is not vfioctl lease's child"
echo "ok: conmon (parent $(awk '$2 == "conmon" {print $3}' <<<"$open"), it detaches) and the container's sh have it too; podman's pause process does not"

vb_container_end job "$io" "$log" 60 "vfioctl lease -- podman"
vb_wait 10 none_open ||
	vb_fail "/dev/vfio/$G_NIC1 is still open after the lease: $(open_in | tr '\n' ' ')"
echo "ok: the container exited, podman and vfioctl lease with it; the lease ended and no process has /dev/vfio/$G_NIC1 open ($((SECONDS - t0)) s in all)"
