# shellcheck shell=bash
# Scenario: a real OCI runtime, Debian's runc 1.1 (the host's, over 9p),
# rootless as uid 2000, puts the leased group into a container, and a program
# inside drives the device through it. 53-crun.sh runs these same steps with
# crun 1.8: it sets oci_runtime=crun and sources this file.
# vb-pins: as uid 2000, `vfioctl lease G -- runc --root DIR run --preserve-fds=1 --bundle B ID` (config.json from `runc spec --rootless`, edited: the host's /usr read-only, /dev/vfio/vfio and vm-probe bound in, no cgroup mount, VFIO_BROKER_FDS=G=3) runs vm-probe in a new user namespace (uid_map 0 2000 1): it builds a VFIO container from fd 3, maps DMA and reads 8086:10d3 from the e1000e, as sysfs says; fd 3 inside is /dev/vfio/G (same device and inode, seen inside and from outside); `vfioctl leases` names `vfioctl lease`, runc's parent, as the holder; the lease ends when the container exits
oci_runtime=${oci_runtime:-runc}
vb_strict
vb_need_broker
runtime=$(command -v "$oci_runtime") ||
	vb_skip "no $oci_runtime on the host (scripts/deps.sh installs it)"
vb_need_rootless_containers
# cgroup v2 for the runtime, uid 2000: see VB_AS_2000_CGROUP2 in guest-lib.sh.
as_2000=("${VB_AS_2000_CGROUP2[@]}")

id=vb-$oci_runtime
dir=$VB_SHARE/$oci_runtime
bundle=$dir/bundle
state=$dir/state # uid 2000's runtime state, as $XDG_RUNTIME_DIR/runc would be
io=$dir/io       # /io in the container: the container says "ready", we say "done"
log=$dir/run.log
rm -rf "$dir"
mkdir -p "$io"
vb_container_rootfs "$bundle/rootfs"
install -d -m 0700 "$state"
chown -R 2000:2000 "$dir"

# The bundle's config: what `RUNTIME spec --rootless` writes for uid 2000, edited.
vb_try "${as_2000[@]}" "$runtime" spec --rootless --bundle "$bundle"
[ "$VB_RC" = 0 ] || vb_fail "$oci_runtime spec --rootless failed: $VB_ERR"
inside=$(vb_container_inside)
python3 - "$bundle/config.json" "$G_NIC1" "$VB_BUILD/vm-probe" "$io" "$inside" <<'PY'
import json, sys
path, group, probe, io, script = sys.argv[1:]
with open(path) as f:
    c = json.load(f)
lx = c["linux"]
one = [{"containerID": 0, "hostID": 2000, "size": 1}]
if "uidMappings" not in lx and "gidMappings" not in lx:
    # crun 1.8 leaves them to `run`, which maps its own uid; runc writes them.
    lx["uidMappings"], lx["gidMappings"] = one, one
if lx["uidMappings"] != one or lx["gidMappings"] != one:
    sys.exit("spec --rootless did not map uid and gid 2000 alone: %s" % lx)
p = c["process"]
p["terminal"] = False
p["args"] = ["/bin/sh", "-c", script]
# The container's environment is the bundle's: tell the program which fd.
p["env"] = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "VFIO_BROKER_FDS=%s=3" % group]
c["hostname"] = "vb-oci"
c["mounts"] = [m for m in c["mounts"] if m["type"] != "cgroup"]
lx.pop("resources", None)
lx.pop("cgroupsPath", None)
c["mounts"] += [
    {"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]},
    {"destination": "/dev/vfio/vfio", "type": "bind", "source": "/dev/vfio/vfio",
     "options": ["bind"]},
    {"destination": "/vb/vm-probe", "type": "bind", "source": probe, "options": ["bind", "ro"]},
    {"destination": "/io", "type": "bind", "source": io, "options": ["bind"]},
]
with open(path, "w") as f:
    json.dump(c, f, indent=1)
PY

job=
cpid=
cleanup() {
	touch "$io/done"
	[ -z "$job" ] || vb_wait 10 vb_gone "$job" || kill -KILL "$job" 2>/dev/null || true
	[ -z "$cpid" ] || kill -KILL "$cpid" 2>/dev/null || true
}
trap cleanup EXIT

# The command docs/containers.md shows.
t0=$SECONDS
echo "\$ vfioctl lease $G_NIC1 -- $oci_runtime --root $state run --preserve-fds=1 --bundle $bundle $id   (uid 2000)"
"${as_2000[@]}" "$VB_BUILD/vfioctl" --socket "$VB_SOCK" lease "$G_NIC1" -- \
	"$runtime" --root "$state" run --preserve-fds=1 --bundle "$bundle" "$id" \
	</dev/null >"$log" 2>&1 &
job=$!
# runc's first fatal line is the cause, the last one only its echo.
vb_container_ready "$job" "$io" "$log" 'level=fatal'

# Who is who, seen from outside.
cpid=$(nsenter --mount="/proc/$job/ns/mnt" -- setpriv --reuid=2000 --regid=2000 --clear-groups -- \
	"$runtime" --root "$state" state "$id" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')
rt_pid=$(awk '{print $4}' "/proc/$cpid/stat")
echo "container process $cpid ($(cat "/proc/$cpid/comm")), its parent $rt_pid ($(cat "/proc/$rt_pid/comm")), the job $job ($(cat "/proc/$job/comm"))"
[ "$(readlink "/proc/$cpid/ns/user")" != "$(readlink /proc/self/ns/user)" ] ||
	vb_fail "the container process is in the initial user namespace"
read -r inner outer count <"/proc/$cpid/uid_map"
[ "$inner $outer $count" = "0 2000 1" ] ||
	vb_fail "the container's uid_map is '$inner $outer $count', not '0 2000 1'"
echo "ok: the container runs in its own user namespace, uid 0 inside = uid 2000"
node=$(stat -L -c %d:%i "/dev/vfio/$G_NIC1")
fd3=$(stat -L -c %d:%i "/proc/$cpid/fd/3")
[ "$fd3" = "$node" ] || vb_fail "fd 3 of the container process is $fd3, /dev/vfio/$G_NIC1 is $node"
echo "ok: fd 3 of the container process is /dev/vfio/$G_NIC1 ($node) from outside too"
holder=$(vb_lease_pid "$G_NIC1") || vb_fail "cannot read vfioctl leases --json"
[ "$holder" = "$job" ] || vb_fail "the lease of group $G_NIC1 names pid $holder, vfioctl lease is pid $job"
[ "$(awk '{print $4}' "/proc/$rt_pid/stat")" = "$job" ] ||
	vb_fail "$oci_runtime (pid $rt_pid) is not a child of vfioctl lease (pid $job)"
echo "ok: the holder is vfioctl lease (pid $job), the parent of $oci_runtime (pid $rt_pid), whose child is the container process ($cpid)"

vb_container_end job "$io" "$log" 30 "vfioctl lease -- $oci_runtime"
echo "ok: the container exited, $oci_runtime and vfioctl lease with it, and the lease ended ($((SECONDS - t0)) s in all)"
