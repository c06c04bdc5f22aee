# shellcheck shell=bash
# Scenario: 52-runc.sh with Debian's crun 1.8 (the host's, over 9p) in place
# of runc: the same bundle (from `crun spec --rootless`, which leaves the
# uid and gid mappings to `run`), the same command and the same checks.
# vb-pins: as uid 2000, `vfioctl lease G -- crun --root DIR run --preserve-fds=1 --bundle B ID` (config.json from `crun spec --rootless`, edited as in 52-runc) runs vm-probe in a new user namespace (uid_map 0 2000 1): it builds a VFIO container from fd 3, maps DMA and reads 8086:10d3 from the e1000e, as sysfs says; fd 3 inside is /dev/vfio/G (same device and inode, seen inside and from outside); `vfioctl leases` names `vfioctl lease`, crun's parent, as the holder; the lease ends when the container exits
oci_runtime=crun
# shellcheck source-path=SCRIPTDIR source=52-runc.sh
. "$(dirname "${BASH_SOURCE[0]}")/52-runc.sh"
