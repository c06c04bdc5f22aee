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

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: run as root (sudo scripts/deps.sh) to install them" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
