#!/bin/sh
# /init of the VM tier's initramfs: busybox sh, PID 1 of the guest.
#
# tests/vm/vmrun.py puts it into the initramfs next to a static busybox, the
# kernel modules named in /lib/modules/load-order and /vb.conf (VB_SCRIPT,
# VB_ARGS, VB_CWD, VB_KVER).  It
#   1. mounts proc, sysfs and devtmpfs and puts the control port
#      (/dev/ttyS1, the host driver's end) into raw mode;
#   2. insmods the modules in order (there is no modprobe or depmod here);
#   3. mounts the host's / (virtio-9p, read-only, cache=loose) as the lower
#      layer of an overlay with a tmpfs upper at /host, and proc, sysfs,
#      devtmpfs, devpts and tmpfs /dev/shm and /run inside it, so the whole
#      host tree is visible and writable (writes stay in guest RAM);
#   4. switches root as initramfs tools do (busybox switch_root, by hand):
#      moves /host onto / and runs VB_SCRIPT there (`chroot .` after the
#      move) with the host's bash, as root, in VB_CWD (the host driver's
#      working directory), with a clean environment, stdin from /dev/null
#      and its output going to the control port (the host driver logs it and
#      finds the markers in it).  The script's root is thus the mount
#      namespace's root, as on a booted system; after a plain `chroot /host`
#      it was not, and the kernel refuses unshare(CLONE_NEWUSER) to such a
#      chrooted process (current_chrooted()): no rootless container could
#      start (scenarios/52-runc.sh).  This shell itself stays on the
#      initramfs, hidden under the new / (it needs busybox, its /dev/ttyS1
#      and poweroff, so the initramfs is not emptied as switch_root would);
#   5. reports "VB-EXIT <status>" on the control port and powers off.
# Any failure reports "VB-EXIT 255 init: <reason>" and powers off: PID 1
# must never exit, that would panic the kernel.

PATH=/bin
export PATH
CTL=/dev/ttyS1

say() {
	echo "vb-init: $*"
}

die() {
	say "FAILED: $*"
	echo "VB-EXIT 255 init: $*" >"$CTL"
	poweroff -f
	sleep 60
}

mount -t proc proc /proc || die "mount /proc"
mount -t sysfs sysfs /sys || die "mount /sys"
mount -t devtmpfs devtmpfs /dev || die "mount /dev"
stty -F "$CTL" raw -echo || die "stty $CTL"
# shellcheck source=/dev/null # written by vmrun.py
. /vb.conf || die "no /vb.conf"

while read -r m; do
	insmod "/lib/modules/$m.ko" || die "insmod $m"
done </lib/modules/load-order

mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose hostroot /lower ||
	die "mount the host root over 9p"
mount -t tmpfs -o size=50%,mode=0755 tmpfs /ovl || die "mount tmpfs /ovl"
mkdir -p /ovl/upper /ovl/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/ovl/upper,workdir=/ovl/work /host ||
	die "mount the overlay"
mount -t proc proc /host/proc || die "mount /host/proc"
mount -t sysfs sysfs /host/sys || die "mount /host/sys"
mount -t devtmpfs devtmpfs /host/dev || die "mount /host/dev"
# What udev would add to a bare devtmpfs (bash needs /dev/fd for <(...)).
ln -s /proc/self/fd /host/dev/fd
ln -s /proc/self/fd/0 /host/dev/stdin
ln -s /proc/self/fd/1 /host/dev/stdout
ln -s /proc/self/fd/2 /host/dev/stderr
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /host/dev/pts || die "mount devpts"
mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm || die "mount /dev/shm"
mount -t tmpfs -o mode=0755 tmpfs /host/run || die "mount /run"

# pivot_root cannot leave rootfs: move the new root over it instead, and
# chroot(".") makes the moved mount the root of what runs below.
cd /host || die "cd /host"
mount --move . / || die "move the new root onto /"

echo "VB-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)" >"$CTL"
eval "set -- $VB_ARGS"
# shellcheck disable=SC2016 # expanded by the inner bash
chroot . /usr/bin/env -i \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root TERM=dumb LANG=C.UTF-8 VB_CTL="$CTL" VB_KVER="$VB_KVER" \
	/bin/bash -c 'cd -- "$0" && exec /bin/bash "$@"' "$VB_CWD" "$VB_SCRIPT" "$@" \
	</dev/null >"$CTL" 2>&1
status=$?
echo "VB-EXIT $status" >"$CTL"
poweroff -f
sleep 60
