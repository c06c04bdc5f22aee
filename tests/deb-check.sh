#!/usr/bin/env bash
# The deb tier: the Debian packages of debian/, built as an admin builds them,
# from a copy of the tree in a temporary directory (the source tree stays clean).
#   tests/deb-check.sh BUILD
# Checks the build (dpkg-buildflags honoured, by blhc), lintian, each package's
# contents and control files, builds and runs a program against the packaged
# library, and (as root) unpacks the packages with dpkg into a throwaway root.
# dpkg cannot configure packages in a root without running their maintainer
# scripts (enable the socket, build the module with DKMS) on the host, so
# configuring is left to the VM's systemd tier; DKMS builds the module here, into
# a tree of its own, when a kernel's headers are in BUILD/vm (the vm and kmod
# tiers fetch them). The packages and logs are kept in
# BUILD/deb. Prints "N passed, M failed", or "SKIPPED: reason".
set -uo pipefail

BUILD=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$BUILD/deb"
out=$(cd "$BUILD/deb" && pwd)
vm_dir=$(cd "$BUILD" && pwd)/vm

for tool in dpkg-buildpackage dh dh_dkms lintian blhc; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIPPED: $tool not found (scripts/deps.sh installs debhelper, dh-dkms, lintian, blhc)"
		exit 0
	fi
done

pass=0 fail=0
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@" >"$work/check.out" 2>&1; then
		echo "PASS deb: $what"
		pass=$((pass + 1))
	else
		echo "FAIL deb: $what"
		cut -c1-240 "$work/check.out" | sed 's/^/    /' | head -12
		fail=$((fail + 1))
	fi
}
finish() {
	echo "$pass passed, $fail failed"
	[ $fail -eq 0 ]
	exit
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
upstream=${version%-*}
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
src=$work/vfio-broker-$upstream

# The tree as git sees it (tracked and new files, nothing ignored: no build/);
# outside a git checkout, everything but build/ and .git.
mkdir "$src"
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$top" && git ls-files -z --cached --others --exclude-standard) |
		while IFS= read -r -d '' f; do [ -e "$top/$f" ] && printf '%s\0' "$f"; done |
		(cd "$top" && xargs -0 cp -a --parents -t "$src")
else
	tar -C "$top" --exclude=./build --exclude=./.git -cf - . | tar -C "$src" -xf -
fi
# Source and binaries: lintian then checks the source package too. The binary half
# is what `dpkg-buildpackage -us -uc -b` builds.
tar -C "$work" --exclude="vfio-broker-$upstream/debian" \
	-cJf "$work/vfio-broker_$upstream.orig.tar.xz" "vfio-broker-$upstream"

rm -f "$out"/*.deb "$out"/*.log
start=$(date +%s)
if ! (cd "$src" && dpkg-buildpackage -us -uc -J2) >"$out/build.log" 2>&1; then
	tail -30 "$out/build.log"
	echo "FAIL deb: dpkg-buildpackage -us -uc builds the packages (log: $out/build.log)"
	fail=$((fail + 1))
	finish
fi
echo "PASS deb: dpkg-buildpackage -us -uc builds the packages ($(($(date +%s) - start)) s)"
pass=$((pass + 1))
cp "$work"/*.deb "$out/"

# A relocatable link (cc -r, the static library's one object) makes no binary:
# relro and bindnow apply at the final link, so blhc's LDFLAGS check does not.
check "every compile and link gets dpkg-buildflags' CPPFLAGS, CFLAGS and LDFLAGS (blhc)" \
	blhc --bindnow --ignore-line '.* -r -nostdlib .*' "$out/build.log"

# Info tags are shown and fail too; pedantic ones are shown only.
lintian --display-info --pedantic --fail-on error,warning,info --tag-display-limit 0 \
	"$work"/*.changes \
	>"$out/lintian.log" 2>&1
lintian_rc=$?
grep -v '^running with root privileges' "$out/lintian.log" | sed 's/^/    /'
check "lintian: no error, warning or info tag that debian/*lintian-overrides does not explain" \
	test "$lintian_rc" -eq 0

deb() { echo "$work/${1}_${version}_${2:-$arch}.deb"; }
has() { # has PACKAGE PATH [ARCH]: PATH is in PACKAGE (a directory if it ends in /)
	dpkg-deb -c "$(deb "$1" "${3:-}")" | awk '{print $6}' | grep -qxF "./$2"
}
mkdir -p "$work/x" "$work/ctrl"
for p in vfio-brokerd libvfiobroker0 libvfiobroker-dev; do
	dpkg-deb -x "$(deb $p)" "$work/x"
	dpkg-deb -e "$(deb $p)" "$work/ctrl/$p"
done
dpkg-deb -x "$(deb vfio-quarantine-dkms all)" "$work/x"
dpkg-deb -e "$(deb vfio-quarantine-dkms all)" "$work/ctrl/vfio-quarantine-dkms"

for f in usr/sbin/vfio-brokerd usr/bin/vfioctl lib/systemd/system/vfio-brokerd.service \
	lib/systemd/system/vfio-brokerd.socket usr/share/man/man8/vfio-brokerd.8.gz \
	usr/share/man/man1/vfioctl.1.gz etc/vfio-broker/policy.d/; do
	check "vfio-brokerd ships /$f" has vfio-brokerd "$f"
done
check "vfio-brokerd ships the example policies in /usr/share/doc/vfio-broker/examples" \
	compgen -G "$work/x/usr/share/doc/vfio-broker/examples/*.json"
check "the packaged service runs /usr/sbin/vfio-brokerd" \
	grep -qx 'ExecStart=/usr/sbin/vfio-brokerd' "$work/x/lib/systemd/system/vfio-brokerd.service"
# dh_installsystemd's first-install block is the one that enables unconditionally.
check "installing vfio-brokerd enables and starts the socket" bash -c "
	grep -A4 'was-enabled defaults to true' '$work/ctrl/vfio-brokerd/postinst' |
		grep -q \"enable 'vfio-brokerd.socket'\" &&
	grep -q \"deb-systemd-invoke \\\$_dh_action 'vfio-brokerd.socket'\" '$work/ctrl/vfio-brokerd/postinst'"
check "installing vfio-brokerd neither enables nor starts the service (the socket starts it)" bash -c "
	! grep -A4 'was-enabled defaults to true' '$work/ctrl/vfio-brokerd/postinst' |
		grep -q 'vfio-brokerd.service' &&
	! grep -q \"deb-systemd-invoke.*'vfio-brokerd.service'\" '$work/ctrl/vfio-brokerd/postinst'"

lib=usr/lib/$multiarch/libvfiobroker.so.0
check "libvfiobroker0 ships /$lib" has libvfiobroker0 "$lib"
check "libvfiobroker0 has a symbols and a shlibs control file" \
	test -s "$work/ctrl/libvfiobroker0/symbols" -a -s "$work/ctrl/libvfiobroker0/shlibs"
check "the symbols file lists exactly the symbols the library exports, with their version" bash -c "
	diff <(nm -D --defined-only --with-symbol-versions '$work/x/$lib' |
		awk '\$2 == \"A\" { print \$3 \"@\" \$3; next } { sub(/@@/, \"@\", \$3); print \$3 }' | LC_ALL=C sort) \
	     <(sed -n 's/^ \([^ ]*\) .*/\1/p' '$work/ctrl/libvfiobroker0/symbols' | LC_ALL=C sort)"

for f in usr/include/vfiobroker.h usr/lib/$multiarch/libvfiobroker.a \
	usr/lib/$multiarch/libvfiobroker.so usr/lib/$multiarch/pkgconfig/vfiobroker.pc; do
	check "libvfiobroker-dev ships /$f" has libvfiobroker-dev "$f"
done
check "libvfiobroker-dev's libvfiobroker.so links to libvfiobroker.so.0" \
	test "$(readlink "$work/x/usr/lib/$multiarch/libvfiobroker.so")" = libvfiobroker.so.0
check "the .pc file names the multiarch libdir" \
	grep -qx "libdir=/usr/lib/$multiarch" "$work/x/usr/lib/$multiarch/pkgconfig/vfiobroker.pc"
check "libvfiobroker-dev depends on this very libvfiobroker0" bash -c "
	dpkg-deb -f '$(deb libvfiobroker-dev)' Depends | grep -qF 'libvfiobroker0 (= $version)'"

dkms_src=usr/src/vfio-quarantine-$upstream
for f in dkms.conf Kbuild vfio_quarantine.c uapi/linux/vfio_quarantine.h; do
	check "vfio-quarantine-dkms ships /$dkms_src/$f" has vfio-quarantine-dkms "$dkms_src/$f" all
done
check "dkms.conf names the package version $upstream" \
	grep -qx "PACKAGE_VERSION=\"$upstream\"" "$work/x/$dkms_src/dkms.conf"
check "vfio-quarantine-dkms depends on dkms" bash -c "
	dpkg-deb -f '$(deb vfio-quarantine-dkms all)' Depends | grep -q '^dkms\\b\\|, dkms\\b'"

# DKMS builds the module from the packaged source, into trees of its own, for the
# first kernel whose headers the vm/kmod tiers fetched.
kdir=$(compgen -G "$vm_dir/*/kdir" | head -1)
if [ -n "$kdir" ] && command -v dkms >/dev/null; then
	kver=$(basename "$(dirname "$kdir")")
	check "dkms builds vfio_quarantine.ko from the packaged source for $kver" bash -c "
		mkdir -p '$work/dkms' &&
		dkms build -m vfio-quarantine -v '$upstream' -k '$kver' --kernelsourcedir '$kdir' \
			--sourcetree '$work/x/usr/src' --dkmstree '$work/dkms' >'$out/dkms.log' 2>&1 &&
		test -e '$work/dkms/vfio-quarantine/$upstream/$kver/$(uname -m)/module/vfio_quarantine.ko'"
else
	echo "NOTE deb: no kernel headers in $vm_dir (the vm and kmod tiers fetch them) or no dkms:" \
		"the DKMS build is not tried here"
fi

# dpkg --unpack into an empty root: the packages unpack side by side (no file
# shared by two of them) and dpkg knows their files. dpkg runs the preinst chrooted
# into that root, so the root gets a shell (busybox's), and nothing runs on this
# host. dh_installsystemd's preinst acts only on an upgrade, with systemd running.
if [ "$(id -u)" = 0 ]; then
	root=$work/root
	mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/bin"
	touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
	cp "$(command -v busybox || echo /bin/busybox)" "$root/bin/sh"
	debs=("$(deb vfio-brokerd)" "$(deb libvfiobroker0)" "$(deb libvfiobroker-dev)"
		"$(deb vfio-quarantine-dkms all)")
	check "dpkg unpacks the four packages side by side into a throwaway root" \
		dpkg --root="$root" --log="$work/dpkg.log" --force-depends --unpack "${debs[@]}"
	check "dpkg lists the unpacked daemon, library, header and module source as installed files" \
		bash -c "for f in /usr/sbin/vfio-brokerd /$lib /usr/include/vfiobroker.h /$dkms_src/Kbuild; do
			dpkg --root='$root' -S \"\$f\" || exit 1; done"
else
	echo "NOTE deb: not root: dpkg cannot unpack into a throwaway root (chroot, file owners)"
fi
cat >"$work/prog.c" <<'C'
#include <vfiobroker.h>
#include <stdio.h>
int main(void)
{
	struct vfiobroker *b = NULL;
	/* No broker at this path: the call must fail cleanly, not crash. */
	int r = vfiobroker_connect("/nonexistent/socket", &b);
	printf("%s %d\n", vfiobroker_version(), r);
	return r < 0 && b == NULL ? 0 : 1;
}
C
check "a program builds with the packaged pkg-config file and runs on the packaged library (version $upstream)" bash -c "
	cc -o '$work/prog' '$work/prog.c' \$(PKG_CONFIG_SYSROOT_DIR='$work/x' \
		PKG_CONFIG_PATH='$work/x/usr/lib/$multiarch/pkgconfig' pkg-config --cflags --libs vfiobroker) &&
	LD_LIBRARY_PATH='$work/x/usr/lib/$multiarch' '$work/prog' | grep -qx '$upstream -[0-9]*'"
echo "NOTE deb: configuring the packages (socket enabled and started, the service socket-activated," \
	"DKMS on install) is the VM's systemd tier's to test"
finish
