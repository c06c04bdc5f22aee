#!/bin/sh
# /init of the systemd tier's initramfs: busybox sh, PID 1 until it execs systemd.
#
# tests/vm/vmrun.py --init puts it into the initramfs in place of
# tests/vm/guest-init.sh, with the same busybox, modules and /vb.conf (VB_SCRIPT,
# VB_ARGS, VB_CWD, VB_KVER). VB_SCRIPT is tests/systemd/guest-run.sh and the first
# of VB_ARGS is the (absolute) build directory. It
#   1. mounts proc, sysfs and devtmpfs, puts the control port (/dev/ttyS1) into raw
#      mode and insmods the modules, as tests/vm/guest-init.sh does;
#   2. mounts the host's / (9p, read-only) under an overlay with a tmpfs upper at
#      /host, as tests/vm/guest-init.sh does;
#   3. prepares the overlay for the host's own systemd (Debian's 252) as PID 1:
#      - copies in udev (BUILD/systemd/udev, made by tests/systemd/check.sh with
#        apt-get download: the host image has systemd but no udev) and the guest
#        kernel's modules (BUILD/vm/KVER/modroot), for udev's module lookups;
#      - removes /.dockerenv (with it, systemd believes it runs in a Docker container
#        and ignores the kernel command line) and /usr/sbin/policy-rc.d (Docker's
#        "exit 101", which would stop dpkg's postinst from starting the socket);
#      - disables Debian's tmp.conf (`D /tmp` would empty /tmp over 9p, 13 s, and hide
#        a checkout under /tmp);
#      - masks the units listed in tests/systemd/masks, installs vb-test.target as
#        default.target and vb-test.service, which runs tests/systemd/guest-service.sh;
#   4. moves /dev, /proc and /sys into /host and execs systemd there (switch_root).
# Any failure before the exec reports "VB-EXIT 255 init: <reason>" and powers off.

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

eval "set -- $VB_ARGS"
build=$1
here=$(dirname "$VB_SCRIPT")
[ -d "/lower$build/systemd/udev" ] || die "no udev tree in $build/systemd/udev"
cp -a "/lower$build/systemd/udev/." /host/ || die "copy the udev tree"
mods=/lower$build/vm/$VB_KVER/modroot/lib/modules/$VB_KVER
if [ -d "$mods" ]; then
	mkdir -p /host/usr/lib/modules
	cp -a "$mods" /host/usr/lib/modules/ || die "copy the modules"
fi
rm -f /host/.dockerenv /host/usr/sbin/policy-rc.d
mkdir -p /host/etc/tmpfiles.d /host/etc/systemd/system /host/usr/local/libexec
ln -sf /dev/null /host/etc/tmpfiles.d/tmp.conf
grep -v '^#' "/lower$here/masks" | tr ' ' '\n' | while read -r unit; do
	[ -z "$unit" ] || ln -sf /dev/null "/host/etc/systemd/system/$unit"
done
cp "/lower$here/units/vb-test.target" "/lower$here/units/vb-test.service" \
	/host/etc/systemd/system/ || die "install the test units"
ln -sf vb-test.target /host/etc/systemd/system/default.target
cp "/lower$here/guest-service.sh" /host/usr/local/libexec/vb-test-run || die "install the runner"
cp /vb.conf /host/etc/vb.conf

for d in dev proc sys; do
	mount --move "/$d" "/host/$d" || die "move /$d into the new root"
done
exec switch_root /host /lib/systemd/systemd
