#!/usr/bin/env bash
# Builds the benchmark (tests/bench/*.c, linked against the project's archives from
# `make all tests`) into BUILD/bench/bench and runs it. `make bench` calls this.
#   tests/bench/run.sh [BUILD]
# Environment: BENCH_SMOKE=1, CALLGRIND=1, BENCH_REPS, BENCH_SCALE, BENCH_CPU,
# BENCH_CLIENT_UID, BENCH_ONLY (see tests/bench/README.md); CC, CFLAGS, WERROR=1.
set -euo pipefail

BUILD=${1:-build}
CC=${CC:-cc}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
CFLAGS=${CFLAGS:--O2 -g}
OUT=$BUILD/bench
cd "$(dirname "$0")/../.."

for a in libvfiobroker.a libvbpolicy.a libvbtest.a libvbprotocol.a libvbcommon.a; do
	if [ ! -f "$BUILD/$a" ]; then
		echo "bench: $BUILD/$a missing: run 'make all tests' first" >&2
		exit 1
	fi
done

pkgs="libsystemd json-c"
seat=0
if $PKG_CONFIG --exists libseat 2>/dev/null; then
	pkgs="$pkgs libseat"
	seat=1
else
	echo "bench: libseat not found (apt-get install libseat-dev): the seatd row will say so" >&2
fi

warnings="-Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wvla -Wformat=2
	-Wpointer-arith -Wundef -Wno-unused-parameter -Wno-missing-field-initializers"
[ "${WERROR:-0}" = 1 ] && warnings="$warnings -Werror"

mkdir -p "$OUT"
# shellcheck disable=SC2086
$CC -std=gnu11 -D_GNU_SOURCE $warnings $CFLAGS -I. -DHAVE_LIBSEAT=$seat \
	$($PKG_CONFIG --cflags $pkgs) \
	-o "$OUT/bench" tests/bench/*.c \
	"$BUILD/libvfiobroker.a" "$BUILD/libvbpolicy.a" "$BUILD/libvbtest.a" \
	"$BUILD/libvbprotocol.a" "$BUILD/libvbcommon.a" \
	$($PKG_CONFIG --libs $pkgs) -lm

exec "$OUT/bench" "$BUILD"
