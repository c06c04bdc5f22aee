#!/usr/bin/env bash
# The install tier: `make install DESTDIR=... PREFIX=/usr` puts every piece
# where a packager expects it, and a program builds against the installed
# header, library and pkg-config file alone. Prints "N passed, M failed".
set -uo pipefail

BUILD=${1:-build}
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
pass=0 fail=0

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

if ! make --no-print-directory -s install BUILD="$BUILD" DESTDIR="$dest" PREFIX=/usr >"$dest.log" 2>&1; then
	cat "$dest.log"
	echo "FAIL install: make install itself"
	fail=$((fail + 1))
fi
rm -f "$dest.log"

for f in usr/sbin/vfio-brokerd usr/bin/vfioctl usr/lib/libvfiobroker.so.0 usr/lib/libvfiobroker.a \
	usr/include/vfiobroker.h usr/lib/pkgconfig/vfiobroker.pc \
	usr/lib/systemd/system/vfio-brokerd.service usr/lib/systemd/system/vfio-brokerd.socket \
	usr/share/man/man8/vfio-brokerd.8 usr/share/man/man1/vfioctl.1; do
	check "$f is installed" test -e "$dest/$f"
done
check "policy examples are installed" compgen -G "$dest/usr/share/doc/vfio-broker/examples/*.json"
check "the service unit names the installed daemon" grep -q '^ExecStart=/usr/sbin/vfio-brokerd' \
	"$dest/usr/lib/systemd/system/vfio-brokerd.service"
check "the library exports only vfiobroker_* symbols" \
	bash -c "! nm -D --defined-only '$dest/usr/lib/libvfiobroker.so.0' | awk '{print \$3}' | grep -v '^vfiobroker_' | grep -v '^VFIOBROKER_' | grep -q ."

# The service unit's hardening, as systemd rates it (lower is better; README quotes it).
exposure=$(systemd-analyze security --offline=yes \
	"$dest/usr/lib/systemd/system/vfio-brokerd.service" 2>/dev/null |
	sed -n 's/.*Overall exposure level for vfio-brokerd.service: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security: exposure ${exposure:-unknown}"
check "the service unit's exposure is at most 2.8 (was ${exposure:-unknown})" \
	awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 2.8) }'

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
	cc -o '$dest/prog' '$dest/prog.c' \$(PKG_CONFIG_SYSROOT_DIR='$dest' PKG_CONFIG_PATH='$dest/usr/lib/pkgconfig' pkg-config --cflags --libs vfiobroker) &&
	LD_LIBRARY_PATH='$dest/usr/lib' '$dest/prog'"
check "the man pages render without warnings" bash -c "
	! man --warnings -l '$dest/usr/share/man/man1/vfioctl.1' 2>&1 >/dev/null | grep -q . &&
	! man --warnings -l '$dest/usr/share/man/man8/vfio-brokerd.8' 2>&1 >/dev/null | grep -q ."

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
