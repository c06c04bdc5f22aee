#!/usr/bin/env bash
# fetch-kernel.sh: download and unpack a Debian guest kernel for the VM tier.
#
# usage: tests/vm/fetch-kernel.sh [--headers] BUILD SERIES
#
#   SERIES   6.12  the newest linux-image-6.12.*+deb12-amd64 apt knows of
#                  (bookworm-security; the -unsigned package if only that exists)
#            6.1   the newest linux-image-6.1.0-*-amd64
#            or an exact kernel release, e.g. 6.12.117+deb12-amd64
#   6.12-iommufd   not Debian's: our own 6.12 with IOMMUFD and the VFIO
#                  device cdev, built from linux-source-6.12 and cached by
#                  tests/vm/build-kernel.sh (its kernel directory always has
#                  kdir/, so --headers changes nothing)
#   --headers      also fetch linux-headers-<kver> with its -common and
#                  linux-kbuild packages, for building kernel modules:
#                  make -C BUILD/vm/<kver>/kdir M=$PWD/kmod modules
#                  (6.12 headers also need the host's `pahole` for that)
#
# The version is chosen from apt's package lists at run time, never hard-coded.
# Everything goes to BUILD/vm/<kver>/ (the kernel directory), which is printed
# on stdout:
#   vmlinux   uncompressed ELF with the PVH entry (booted with -kernel)
#   vmlinuz   the package's bzImage (fallback when there is no PVH note)
#   config    the kernel's .config
#   modroot/lib/modules/<kver>/  only the modules the VM needs, uncompressed,
#             with modules.dep made by depmod
#   kver      the kernel release string
#   headers/, kdir -> headers/usr/src/linux-headers-<kver>   (with --headers)
#
# A second run finds the cache and downloads nothing.  Nothing is installed:
# `apt-get download` into a temporary directory, `dpkg-deb` into the build
# directory, and the .deb files are deleted.  If apt cannot reach the mirror,
# the newest cached kernel of the series is used.
#
# Exit status: 0 ok; 77 the kernel cannot be fetched (apt unreachable or no
# such package) and none is cached; anything else is a real error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
want_headers=0
if [ "${1:-}" = --headers ]; then
	want_headers=1
	shift
fi
if [ $# -ne 2 ]; then
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
fi
build=$1
series=$2
case $series in
6.12-iommufd) exec bash "$here/build-kernel.sh" "$build" ;;
esac
mkdir -p "$build/vm"
vmdir=$(cd "$build/vm" && pwd)

log() { printf 'fetch-kernel: %s\n' "$*" >&2; }
unavailable() {
	log "$*"
	exit 77
}

# The module directories the guest loads from (see MODULES in vmrun.py).
# Directories that a kernel does not have (6.12 has no fs/fscache) are fine.
MODULE_DIRS=(
	drivers/vfio virt/lib
	drivers/net/ethernet/intel/e1000 drivers/net/ethernet/intel/e1000e
	drivers/virtio fs/9p net/9p fs/netfs fs/fscache fs/overlayfs
)

# Extended regular expression matching the kernel releases of a series.
series_regex() {
	case $1 in
	6.12) echo '6\.12\.[0-9]+\+deb12-amd64' ;;
	6.1) echo '6\.1\.0-[0-9]+-amd64' ;;
	*) printf '%s\n' "$1" | sed 's/[.+]/\\&/g' ;;
	esac
}

# True when apt has a downloadable version of package $1.
apt_has() {
	local policy
	policy=$(apt-cache policy "$1" 2>/dev/null) || return 1
	[[ $policy == *"Candidate: "[0-9]* ]]
}

# The image package apt can download for release $1 (empty when none):
# the plain name, or the -unsigned variant if only that one exists.
image_package() {
	local p
	for p in "linux-image-$1" "linux-image-$1-unsigned"; do
		if apt_has "$p"; then
			echo "$p"
			return
		fi
	done
}

# "KVER PACKAGE" of the newest release of the series that apt offers.
newest_from_apt() {
	local re k p
	re=$(series_regex "$series")
	apt-cache pkgnames linux-image- 2>/dev/null |
		sed -nE "s/^linux-image-($re)(-unsigned)?\$/\\1/p" | sort -uVr |
		while read -r k; do
			p=$(image_package "$k")
			if [ -n "$p" ]; then
				echo "$k $p"
				break
			fi
		done
}

# The newest cached release of the series (empty when none).
newest_cached() {
	local re d
	re=$(series_regex "$series")
	for d in "$vmdir"/*/.complete; do
		[ -e "$d" ] || continue
		basename "$(dirname "$d")"
	done | grep -xE "$re" | sort -Vr | head -n 1 || true
}

apt_download() { # PKG... into the current directory
	local opts=(-q -o Acquire::Retries=1 -o Acquire::http::Timeout=30)
	# As root, apt would drop to the _apt user, who cannot write here.
	[ "$(id -u)" != 0 ] || opts+=(-o APT::Sandbox::User=root)
	apt-get "${opts[@]}" download "$@" >&2
}

tmp=
cleanup() {
	[ -z "$tmp" ] || rm -rf "$tmp"
	tmp=
}
trap cleanup EXIT

# Download packages into a fresh temporary directory $tmp.
try_download() {
	cleanup
	tmp=$(mktemp -d "$vmdir/.fetch.XXXXXX")
	log "downloading $*"
	(cd "$tmp" && apt_download "$@")
}

# True when release $1 is known but not cached yet.
needs_fetch() {
	[ -n "$1" ] && [ ! -e "$vmdir/$1/.complete" ]
}

# Unpack what the VM needs from the downloaded image package of release $1
# into $vmdir/$1.
unpack_image() {
	local k=$1 deb m dir prefixes
	deb=$(echo "$tmp"/*.deb)
	prefixes=("./boot/vmlinuz-$k" "./boot/config-$k"
		"./lib/modules/$k/modules.order" "./lib/modules/$k/modules.builtin"
		"./lib/modules/$k/modules.builtin.modinfo")
	for m in "${MODULE_DIRS[@]}"; do
		prefixes+=("./lib/modules/$k/kernel/$m")
	done
	log "unpacking $(basename "$deb")"
	dpkg-deb --fsys-tarfile "$deb" |
		python3 "$here/kimage.py" extract "$tmp/x" "${prefixes[@]}" 2>/dev/null
	rm -f "$deb"
	if [ ! -f "$tmp/x/boot/vmlinuz-$k" ]; then
		log "$(basename "$deb") has no /boot/vmlinuz-$k"
		exit 1
	fi
	dir=$tmp/kernel
	mkdir -p "$dir/modroot/lib"
	mv "$tmp/x/boot/vmlinuz-$k" "$dir/vmlinuz"
	mv "$tmp/x/boot/config-$k" "$dir/config"
	mv "$tmp/x/lib/modules" "$dir/modroot/lib/modules"
	# The package has no modules.dep (its postinst runs depmod); make one
	# for the extracted subset.  6.12 has no modules.builtin.modinfo.
	touch "$dir/modroot/lib/modules/$k/modules.builtin.modinfo"
	PATH=$PATH:/usr/sbin:/sbin depmod -b "$dir/modroot" "$k"
	if ! python3 "$here/kimage.py" vmlinux "$dir/vmlinuz" "$dir/vmlinux"; then
		log "no bootable vmlinux; the VM will boot vmlinuz"
		rm -f "$dir/vmlinux"
	fi
	echo "$k" >"$dir/kver"
	touch "$dir/.complete"
	rm -rf "${vmdir:?}/$k"
	mv "$dir" "$vmdir/$k"
	cleanup
	log "cached in $vmdir/$k"
}

# Unpack the downloaded linux-headers-$1, -common and linux-kbuild packages
# into $vmdir/$1/headers; $vmdir/$1/kdir is then a usable KDIR.
unpack_headers() {
	local k=$1 dir=$vmdir/$1 deb arch
	for deb in "$tmp"/*.deb; do
		dpkg-deb -x "$deb" "$tmp/headers"
		rm -f "$deb"
	done
	arch=$tmp/headers/usr/src/linux-headers-$k
	if [ ! -f "$arch/Makefile" ]; then
		log "linux-headers-$k has no usr/src/linux-headers-$k/Makefile"
		exit 1
	fi
	# The arch Makefile includes the -common tree by an absolute /usr/src
	# path; point it at the sibling directory instead, so that the tree
	# works wherever it is unpacked.
	# shellcheck disable=SC2016 # $(...) here is make syntax
	sed -i -E 's|^include /usr/src/([^/]+)/Makefile$|include $(dir $(lastword $(MAKEFILE_LIST)))../\1/Makefile|' \
		"$arch/Makefile"
	if grep -q '/usr/src/' "$arch/Makefile"; then
		log "unexpected /usr/src reference left in $arch/Makefile"
		exit 1
	fi
	touch "$tmp/headers/.complete"
	rm -rf "${dir:?}/headers"
	mv "$tmp/headers" "$dir/headers"
	ln -sfn "headers/usr/src/linux-headers-$k" "$dir/kdir"
	cleanup
	log "headers cached; KDIR=$dir/kdir"
}

# The header packages of release $1: linux-headers-$1 and the -common and
# linux-kbuild packages it depends on.
header_packages() {
	echo "linux-headers-$1"
	apt-cache depends "linux-headers-$1" 2>/dev/null |
		sed -nE 's/^ *\|?Depends: (linux-(headers|kbuild)-[^ <>]+)$/\1/p'
}

refresh_lists() {
	[ "$(id -u)" = 0 ] || return 1
	log "refreshing apt's package lists"
	apt-get -q -o Acquire::Retries=1 -o Acquire::http::Timeout=30 update >&2
}

# Serialise concurrent runs on the same build directory.
exec {lockfd}>"$vmdir/.fetch.lock"
flock "$lockfd"

kver=
pkg=
read -r kver pkg < <(newest_from_apt) || true
if needs_fetch "$kver"; then
	if try_download "$pkg"; then
		unpack_image "$kver"
	elif refresh_lists; then
		# Stale package lists may name a version the mirror dropped.
		read -r kver pkg < <(newest_from_apt) || true
		if needs_fetch "$kver" && try_download "$pkg"; then
			unpack_image "$kver"
		fi
	fi
fi
if [ -z "$kver" ] || [ ! -e "$vmdir/$kver/.complete" ]; then
	fallback=$(newest_cached)
	if [ -z "$fallback" ]; then
		unavailable "cannot fetch a $series kernel (apt offers: ${kver:-none}) and none is cached"
	fi
	[ -z "$kver" ] || log "cannot fetch $kver; using the cached $fallback"
	kver=$fallback
fi
if [ "$want_headers" = 1 ] && [ ! -e "$vmdir/$kver/headers/.complete" ]; then
	mapfile -t hpkgs < <(header_packages "$kver")
	apt_has "linux-headers-$kver" || unavailable "apt has no linux-headers-$kver"
	try_download "${hpkgs[@]}" || unavailable "cannot download ${hpkgs[*]}"
	unpack_headers "$kver"
fi
echo "$vmdir/$kver"
