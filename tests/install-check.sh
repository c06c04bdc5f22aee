#!/usr/bin/env bash
# The install tier: a packager's `make PREFIX=/usr LIBDIR=/usr/lib/<multiarch>`
# then `make install DESTDIR=...` with the same paths puts every piece where
# the packager expects it, and a program builds against the installed header,
# library and pkg-config file alone. Prints "N passed, M failed".
set -uo pipefail

BUILD=${1:-build}
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
pass=0 fail=0
multiarch=$(${CC:-cc} -print-multiarch 2>/dev/null)
libdir=usr/lib${multiarch:+/$multiarch}
paths=(PREFIX=/usr "LIBDIR=/$libdir")

check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@" >/dev/null 2>&1; then
		echo "PASS install: $what"
		pass=$((pass + 1))
	else
		echo "FAIL install: $what"
		fail=$((fail + 1))
	fi
}

# Install builds nothing: without a build it stops and says to run make.
check "make install without a build refuses, says to run make first and compiles nothing" bash -c "
	! make --no-print-directory -s install BUILD='$dest/nobuild' DESTDIR='$dest/nothing' 2>'$dest/nobuild.err' &&
	grep -q \"run 'make' first\" '$dest/nobuild.err' && [ ! -e '$dest/nobuild' ] && [ ! -e '$dest/nothing' ]"
check "make install refuses paths the build was not made for" bash -c "
	! make --no-print-directory -s install BUILD='$BUILD' DESTDIR='$dest/elsewhere' PREFIX=/opt/elsewhere &&
	[ ! -e '$dest/elsewhere' ]"

# The packager's flags reach every compile and every link (a dry run of a full build).
# (Continued recipe lines are joined first.)
make --no-print-directory -n -B BUILD="$dest/flags" CPPFLAGS=-DVB_PACKAGER_CPPFLAGS \
	LDFLAGS=-Wl,--vb-packager-ldflags all tests 2>&1 | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' >"$dest/flags.log"
check "CPPFLAGS reach every compile" bash -c "
	grep -q -- ' -c -o ' '$dest/flags.log' &&
	! grep -- ' -c -o ' '$dest/flags.log' | grep -v -q -- -DVB_PACKAGER_CPPFLAGS"
check "LDFLAGS reach every program and library link" bash -c "
	grep -E -- ' -o $dest/flags/(vfio-brokerd|vfioctl|libvfiobroker\\.so\\.0|tests/[a-z_]+) ' '$dest/flags.log' >'$dest/links' &&
	[ \$(wc -l <'$dest/links') -ge 5 ] && ! grep -v -q -- -Wl,--vb-packager-ldflags '$dest/links'"

if ! make --no-print-directory -s BUILD="$BUILD" "${paths[@]}" all >"$dest.log" 2>&1 ||
	! make --no-print-directory -s install BUILD="$BUILD" DESTDIR="$dest" "${paths[@]}" >>"$dest.log" 2>&1; then
	cat "$dest.log"
	echo "FAIL install: make ${paths[*]} and make install itself"
	fail=$((fail + 1))
fi
rm -f "$dest.log"

for f in usr/sbin/vfio-brokerd usr/bin/vfioctl "$libdir/libvfiobroker.so.0" "$libdir/libvfiobroker.a" \
	usr/include/vfiobroker.h "$libdir/pkgconfig/vfiobroker.pc" \
	usr/lib/systemd/system/vfio-brokerd.service usr/lib/systemd/system/vfio-brokerd.socket \
	usr/share/man/man8/vfio-brokerd.8 usr/share/man/man1/vfioctl.1; do
	check "$f is installed" test -e "$dest/$f"
done
check "the preload shim is installed in the private lib/vfio-broker directory, and vfioctl knows that path" bash -c "
	[ -x '$dest/$libdir/vfio-broker/libvfiobroker-preload.so' ] && [ ! -e '$dest/$libdir/libvfiobroker-preload.so' ] &&
	grep -q '/$libdir/vfio-broker/libvfiobroker-preload.so' '$dest/usr/bin/vfioctl'"
check "policy examples are installed" compgen -G "$dest/usr/share/doc/vfio-broker/examples/*.json"
check "the service unit names the installed daemon" grep -q '^ExecStart=/usr/sbin/vfio-brokerd' \
	"$dest/usr/lib/systemd/system/vfio-brokerd.service"
check "the library exports only vfiobroker_* symbols" \
	bash -c "! nm -D --defined-only '$dest/$libdir/libvfiobroker.so.0' | awk '{print \$3}' | grep -v '^vfiobroker_' | grep -v '^VFIOBROKER_' | grep -q ."
check "the static library defines only vfiobroker_* globals" \
	bash -c "nm -g --defined-only '$dest/$libdir/libvfiobroker.a' | awk 'NF == 3 {print \$3}' >'$dest/static-syms' &&
	grep -q '^vfiobroker_connect\$' '$dest/static-syms' && ! grep -v -q '^vfiobroker_' '$dest/static-syms'"
check "the .pc file names the multiarch libdir /$libdir" \
	grep -qx "libdir=/$libdir" "$dest/$libdir/pkgconfig/vfiobroker.pc"

# The service unit's hardening, as systemd rates it (lower is better; README quotes it).
# 2.7: ProtectKernelTunables=yes (-0.2) against allowing pidfd_getfd (systemd files it
# under @debug, +0.1), which is what restoring leases after a restart costs: the broker
# takes its copy of each group file back from the holder at start-up. Its own seccomp
# filter, installed after start-up, still leaves pidfd_getfd out.
exposure=$(systemd-analyze security --offline=yes \
	"$dest/usr/lib/systemd/system/vfio-brokerd.service" 2>/dev/null |
	sed -n 's/.*Overall exposure level for vfio-brokerd.service: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security: exposure ${exposure:-unknown}"
check "the service unit's exposure is at most 2.7 (was ${exposure:-unknown})" \
	awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 2.7) }'

cat >"$dest/prog.c" <<'C'
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
check "a program builds with the installed pkg-config file and runs" bash -c "
	cc -o '$dest/prog' '$dest/prog.c' \$(PKG_CONFIG_SYSROOT_DIR='$dest' PKG_CONFIG_PATH='$dest/$libdir/pkgconfig' pkg-config --cflags --libs vfiobroker) &&
	LD_LIBRARY_PATH='$dest/$libdir' '$dest/prog'"
# A program with its own vb_* and list_* symbols, as the library's internals are named:
# they must not clash with the static library's.
cat >"$dest/prog-static.c" <<'C'
#include <vfiobroker.h>
#include <stdio.h>
int vb_request_decode(void);
int vb_request_decode(void) { return 0; }
int main(void)
{
	struct vfiobroker *b = NULL;
	int r = vfiobroker_connect("/nonexistent/socket", &b);
	printf("%s %d\n", vfiobroker_version(), r);
	return r < 0 && b == NULL ? vb_request_decode() : 1;
}
C
check "a program links the installed static library, with its own vb_* symbols, and runs" bash -c "
	cc -I'$dest/usr/include' -o '$dest/prog-static' '$dest/prog-static.c' '$dest/$libdir/libvfiobroker.a' \
		\$(pkg-config --libs json-c) && '$dest/prog-static'"
check "the man pages render without warnings" bash -c "
	! man --warnings -l '$dest/usr/share/man/man1/vfioctl.1' 2>&1 >/dev/null | grep -q . &&
	! man --warnings -l '$dest/usr/share/man/man8/vfio-brokerd.8' 2>&1 >/dev/null | grep -q ."

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
