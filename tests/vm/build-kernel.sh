#!/usr/bin/env bash
# build-kernel.sh: the VM tier's own 6.12 kernel with IOMMUFD and the VFIO
# device cdev, built from Debian's linux-source-6.12 and cached.
#
# usage: tests/vm/build-kernel.sh BUILD
#
# Debian's 6.1 and 6.12 kernels have CONFIG_IOMMUFD off and no
# VFIO_DEVICE_CDEV, so the modern VFIO path (/dev/iommu and
# /dev/vfio/devices/vfioN) needs a kernel of our own: `make x86_64_defconfig`
# of /usr/src/linux-source-6.12.tar.xz plus tests/vm/kernel-iommufd.config,
# every line of which is checked in the final .config before anything is
# compiled.
#
# The result is cached in VM_KERNEL_CACHE/<key>, where <key> is the
# linux-source-6.12 package version and a hash of the fragment's settings
# (comments aside) and of the cache layout: a second run, or a fresh clone on
# the same machine, builds nothing.  BUILD/vm/<kver> becomes a symlink to the
# cache entry, a kernel directory as tests/vm/fetch-kernel.sh makes them, and
# is printed on stdout:
#   vmlinux   the uncompressed kernel (PVH entry), booted with -kernel
#   config    its .config
#   kver      the kernel release, e.g. 6.12.118-iommufd
#   modroot/lib/modules/<kver>/  modules.dep and modules.builtin (everything
#             the tier needs is built in)
#   kdir/     a kbuild tree for out-of-tree modules (install-extmod-build):
#             make -C BUILD/vm/<kver>/kdir M=$PWD/kmod modules
#   uapi/include/  the kernel's uapi headers (headers_install): Debian 12's
#             linux-libc-dev is 6.1 and has no linux/iommufd.h
#   build.log the build's output, with its timings
#
# Environment:
#   VM_KERNEL_CACHE  cache directory, default /var/cache/vfio-broker/kernels
#                    (or ~/.cache/vfio-broker/kernels when that is not
#                    writable)
#   VM_KERNEL_JOBS   make -j, default the number of CPUs; the compiler runs
#                    under nice -n 10
#
# A cold build takes about 10 minutes on 2 cores and 2 GB of disk in the
# cache directory while it runs; the entry left behind is about 120 MB.
# Needs linux-source-6.12 bison flex libelf-dev libssl-dev bc rsync cpio kmod
# (scripts/deps.sh).  When linux-source-6.12 is not installed, the newest
# cached build of the same fragment is used.
#
# Exit status: 0 ok; 77 no source package and nothing cached; anything else
# is a real error (the tail of the build log is printed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -ne 1 ]; then
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
fi
mkdir -p "$1/vm"
vmdir=$(cd "$1/vm" && pwd)
fragment=$here/kernel-iommufd.config
source_pkg=linux-source-6.12
source_tar=/usr/src/linux-source-6.12.tar.xz
# Bump when the entry's layout changes, so old entries are not reused.
layout=1

log() { printf 'build-kernel: %s\n' "$*" >&2; }
unavailable() {
	log "$*"
	exit 77
}

default_cache() {
	local d=/var/cache/vfio-broker/kernels
	if mkdir -p "$d" 2>/dev/null && [ -w "$d" ]; then
		echo "$d"
	else
		echo "${XDG_CACHE_HOME:-$HOME/.cache}/vfio-broker/kernels"
	fi
}

cache=${VM_KERNEL_CACHE:-$(default_cache)}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
jobs=${VM_KERNEL_JOBS:-$(nproc)}
# The fragment's settings, not its comments, make the key.
config_hash=$({
	echo "layout $layout"
	grep -E '^(CONFIG_|# CONFIG_.* is not set$)' "$fragment"
} | sha256sum | cut -c1-12)
pkg_version=$(dpkg-query -W -f='${Version}' "$source_pkg" 2>/dev/null || true)

# The newest complete entry built from this fragment (empty when none).
newest_cached() {
	local d
	for d in "$cache"/*-"$config_hash"/.complete; do
		[ -e "$d" ] || continue
		basename "$(dirname "$d")"
	done | sort -Vr | head -n 1 || true
}

# check_config FRAGMENT CONFIG: every "CONFIG_X=v" line of the fragment is in
# the .config, and every "# CONFIG_X is not set" option is not =y or =m.
check_config() {
	local line opt bad=0
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*)
			grep -qxF -- "$line" "$2" && continue
			opt=${line%%=*}
			;;
		"# CONFIG_"*" is not set")
			opt=${line#\# }
			opt=${opt%% *}
			grep -qE "^$opt=" "$2" || continue
			;;
		*) continue ;;
		esac
		log "the fragment asks for '$line'; the .config has '$(grep -E "^(# )?${opt}[= ]" "$2" || echo nothing)'"
		bad=1
	done <"$1"
	return "$bad"
}

# step NAME COMMAND...: run a build step with its output in the log, and
# record its wall time there.
step() {
	local name=$1 t0=$SECONDS
	shift
	echo "=== $name: $*" >>"$buildlog"
	if ! "$@" >>"$buildlog" 2>&1; then
		echo "=== $name: FAILED after $((SECONDS - t0)) s" >>"$buildlog"
		log "$name failed; the end of $buildlog:"
		tail -n 30 "$buildlog" >&2
		return 1
	fi
	echo "=== $name: $((SECONDS - t0)) s" >>"$buildlog"
	log "$name: $((SECONDS - t0)) s"
}

# build_entry ENTRY: unpack, configure, check, build and collect into ENTRY.
build_entry() {
	local entry=$1 work src out kver t0=$SECONDS
	work=$(mktemp -d "$cache/.build.XXXXXX")
	# shellcheck disable=SC2064 # $work is fixed now
	trap "rm -rf '$work'" EXIT
	# Outside $work, so that a failed build leaves its log behind.
	buildlog=$entry.log
	src=$work/linux-source-6.12
	out=$work/entry
	mkdir -p "$out"
	log "building the $source_pkg $pkg_version kernel with $(basename "$fragment") into $entry"
	log "(about 10 minutes on 2 cores; log: $buildlog)"
	{
		echo "source: $source_pkg $pkg_version ($source_tar)"
		echo "fragment: $fragment (sha256/12 with layout $layout: $config_hash)"
		echo "host: $(uname -r), $(nproc) CPUs, gcc $(gcc -dumpfullversion), make -j$jobs"
	} >"$buildlog"
	step unpack tar -xf "$source_tar" -C "$work"
	[ -f "$src/Makefile" ] || {
		log "$source_tar has no linux-source-6.12/Makefile"
		return 1
	}
	step defconfig make -C "$src" -s x86_64_defconfig
	cat "$fragment" >>"$src/.config"
	step olddefconfig make -C "$src" -s olddefconfig
	if ! check_config "$fragment" "$src/.config"; then
		log "$(basename "$fragment") does not hold in the final .config; fix the fragment"
		return 1
	fi
	step "make vmlinux modules" nice -n 10 make -C "$src" -j"$jobs" vmlinux modules
	kver=$(make -C "$src" -s --no-print-directory kernelrelease)
	step modules_install make -C "$src" -s INSTALL_MOD_PATH="$out/modroot" \
		DEPMOD="$(PATH=$PATH:/usr/sbin:/sbin command -v depmod)" modules_install
	step headers_install make -C "$src" -s INSTALL_HDR_PATH="$out/uapi" headers_install
	step install-extmod-build env -C "$src" srctree=. SRCARCH=x86 CC=gcc HOSTCC=gcc \
		MAKE=make sh scripts/package/install-extmod-build "$out/kdir"
	cp "$src/.config" "$out/kdir/.config"
	cp "$src/.config" "$out/config"
	cp "$src/vmlinux" "$out/vmlinux"
	echo "$kver" >"$out/kver"
	printf '%s\n' "$source_pkg $pkg_version" "fragment $config_hash" >"$out/source"
	echo "=== total: $((SECONDS - t0)) s" >>"$buildlog"
	log "built $kver in $((SECONDS - t0)) s"
	mv "$buildlog" "$out/build.log"
	touch "$out/.complete"
	rm -rf "$entry"
	mv "$out" "$entry"
	rm -rf "$work"
	trap - EXIT
}

# Serialise concurrent runs on the same cache.  With the lock held, a
# .build.* directory is what a killed build left behind (2 GB each).
exec {lockfd}>"$cache/.lock"
flock "$lockfd"
rm -rf "$cache"/.build.*

key=
if [ -n "$pkg_version" ] && [ -f "$source_tar" ]; then
	key=$pkg_version-$config_hash
	if [ ! -e "$cache/$key/.complete" ]; then
		build_entry "$cache/$key"
	fi
else
	key=$(newest_cached)
	[ -n "$key" ] ||
		unavailable "$source_pkg is not installed (scripts/deps.sh) and $cache has no build of $(basename "$fragment")"
	log "$source_pkg is not installed; using the cached $key"
fi
entry=$cache/$key
kver=$(cat "$entry/kver")
[ -L "$vmdir/$kver" ] || rm -rf "${vmdir:?}/$kver"
ln -sfn "$entry" "$vmdir/$kver"
echo "$vmdir/$kver"
