#!/usr/bin/env bash
# Install every build and test dependency of vfio-broker with apt.
# Idempotent and quiet when everything is already present.
set -euo pipefail

# Build: compiler, pkg-config and the -dev packages the code links against;
# clang-format-14 for `make format` and the format tier (its output differs
# between versions, so the version is pinned).
# Test: Check (unit/integration framework), python3 (VM driver, QMP),
# clang-14 + libclang-rt-14-dev (libFuzzer, sanitizers).
# Bench peers: dbus-daemon (the D-Bus broker shape), seatd + libseat-dev;
# valgrind for instruction counts.
# VM tier: qemu-system-x86 (TCG), busybox-static (guest initramfs),
# cpio/xz-utils/zstd (initramfs and kernel extraction), kmod (depmod),
# dpkg-dev (apt-get download), pahole (module BTF against 6.12 headers);
# the kernels and their headers are fetched into build/ by tests/vm.
# The VM tier's QEMU 10 (tests/vm/fetch-qemu10.sh) comes from bookworm-backports
# with `apt-get download`, next to the host's 7.2, never installed: the source is
# added below. Every library it links against is a dependency of bookworm's
# qemu-system-x86 too (checked with ldd), so nothing more is installed for it.
# Consumers: runc, crun and podman (a rootless container gets a leased group,
# docs/containers.md; the VM tier runs all three).
# Deb tier: debhelper, dh-dkms (bookworm's debhelper addon for DKMS, apart from
# dkms itself), dkms (builds the packaged module source), lintian, blhc (checks
# the build log for dpkg-buildflags' hardening flags).
# systemd tier: systemd (the guest's PID 1 is the host's; udev is fetched with
# apt-get download), libcap2-bin (capsh decodes /proc/PID/status in the guest).
PACKAGES=(
	build-essential pkg-config
	libsystemd-dev libjson-c-dev libseccomp-dev libcap-dev
	libnl-3-dev libnl-genl-3-dev
	clang-format-14
	check python3
	qemu-system-x86 busybox-static cpio xz-utils zstd kmod
	dpkg-dev
	clang-14 libclang-rt-14-dev
	pahole
	# VM tier's own 6.12 kernel with iommufd (tests/vm/build-kernel.sh):
	# the source, and what its build, headers_install and bc/openssl need
	linux-source-6.12 bison flex libelf-dev libssl-dev bc rsync
	dbus-daemon seatd libseat-dev valgrind
	runc crun podman
	debhelper dh-dkms dkms lintian blhc
	systemd libcap2-bin
	spin # the model tier: tests/model/run.sh checks the lease life cycle model
)

# Debian's bookworm-backports as a deb822 source, for fetch-qemu10.sh. Backports
# are NotAutomatic (apt pins the suite at 100): an install or upgrade keeps
# bookworm's versions unless a package is asked for from the suite by name.
BACKPORTS_SOURCE=/etc/apt/sources.list.d/bookworm-backports.sources
BACKPORTS_DEB822="Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"

# True when a source apt reads already names bookworm-backports.
have_backports() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		if grep -qE '^[[:space:]]*(deb[[:space:]].*[[:space:]]bookworm-backports([[:space:]]|$)|Suites:(.*[[:space:]])?bookworm-backports([[:space:]]|$))' "$f"; then
			return 0
		fi
	done
	return 1
}

lists_stale=0
if grep -qsx "VERSION_CODENAME=bookworm" /etc/os-release && ! have_backports; then
	if [ "$(id -u)" = 0 ]; then
		echo "deps.sh: adding $BACKPORTS_SOURCE (QEMU 10 for the VM tier)"
		printf '%s\n' "$BACKPORTS_DEB822" >"$BACKPORTS_SOURCE"
		lists_stale=1
	else
		echo "deps.sh: no bookworm-backports source; run as root to add $BACKPORTS_SOURCE" >&2
	fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	[ "$lists_stale" = 0 ] || apt-get update -qq >/dev/null
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: run as root (sudo scripts/deps.sh) to install them" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
