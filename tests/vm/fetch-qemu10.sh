#!/usr/bin/env bash
# fetch-qemu10.sh: Debian bookworm-backports' QEMU 10, unpacked beside the
# host's own QEMU 7.2 and cached, for the VM tier's cdev/iommufd scenario.
#
# usage: tests/vm/fetch-qemu10.sh BUILD
#
# Debian 12's qemu-system-x86 (7.2) has no `-object iommufd,fd=` and no
# `-device vfio-pci,fd=`; bookworm-backports carries 10.0.x, which has both.
# The host's 7.2 must stay (it runs the VM tier's outer machine and the
# legacy QEMU scenarios), so nothing is installed: qemu-system-x86,
# qemu-system-common and qemu-system-data at the backports version, and
# seabios from bookworm-backports (QEMU 10 wants seabios >> 1.16.3-1~; a
# suite without one falls back to the default candidate), are fetched with
# `apt-get download` and `dpkg-deb -x`ed into the cache entry.  ipxe-qemu is
# not fetched: the host's (a dependency of its QEMU 7.2) is on QEMU 10's
# compiled-in firmware path, and a vfio-pci device takes its ROM from the
# device.  The libraries QEMU 10 links against are all dependencies of the
# host's QEMU 7.2 too; `ldd` is checked before the entry is kept.
#
# The entry is VM_QEMU_CACHE/qemu10-<version> (the qemu-system-x86 version
# without its epoch; VM_QEMU_CACHE defaults to /var/cache/vfio-broker, or
# ~/.cache/vfio-broker when that is not writable).  It is outside the clone
# on purpose, like tests/vm/build-kernel.sh's kernels: a fresh clone on the
# same machine downloads nothing.  BUILD/vm/qemu10 becomes a symlink to it,
# and its path is printed on stdout:
#   root/       the packages, unpacked (root/usr/bin/qemu-system-x86_64, ...)
#   env         shell assignments, for `. ENTRY/env`:
#               QEMU10          the binary
#               QEMU10_VERSION  the qemu-system-x86 version, e.g.
#                               1:10.0.2+ds-2+deb13u1~bpo12+1
#               QEMU10_DATADIRS "DIR DIR", one -L each: root/usr/share/qemu
#                               and root/usr/share/seabios, searched before
#                               the host's 7.2 files (QEMU 10 reads its
#                               compiled-in /usr/share/qemu otherwise)
#               QEMU10_MODULE_DIR  root/usr/lib/x86_64-linux-gnu/qemu, for
#                               QEMU_MODULE_DIR, so that QEMU 10 never tries
#                               the host's 7.2 modules
#   packages    "name version" of each package unpacked
#   fetch.log   what was fetched, with the download and unpack times and the
#               entry's size
#
# Needs apt's lists to know bookworm-backports (scripts/deps.sh adds the
# source) and dpkg-dev.  As root, lists that do not know the suite are
# refreshed once.  When apt cannot name or download a version, the newest
# cached entry is used.
#
# Exit status: 0 ok; 77 no QEMU 10 can be had (no backports source, or apt
# unreachable) and none is cached; anything else is a real error.
set -euo pipefail

if [ $# -ne 1 ]; then
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
fi
mkdir -p "$1/vm"
vmdir=$(cd "$1/vm" && pwd)
suite=bookworm-backports
qemu_pkg="qemu-system-x86"
# Fetched at exactly qemu_pkg's version (they depend on each other with =).
same_version_pkgs=(qemu-system-common qemu-system-data)
# Fetched from the suite when it has them, else at the default candidate.
firmware_pkgs=(seabios)

log() { printf 'fetch-qemu10: %s\n' "$*" >&2; }
unavailable() {
	log "$*"
	exit 77
}

default_cache() {
	local d=/var/cache/vfio-broker
	if mkdir -p "$d" 2>/dev/null && [ -w "$d" ]; then
		echo "$d"
	else
		echo "${XDG_CACHE_HOME:-$HOME/.cache}/vfio-broker"
	fi
}

cache=${VM_QEMU_CACHE:-$(default_cache)}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# suite_version PKG: PKG's version in $suite from apt's lists (empty when
# the lists do not have it).
suite_version() {
	apt-cache madison "$1" 2>/dev/null |
		awk -F ' [|] ' -v s=" $suite/" 'index($3, s) { gsub(/ /, "", $2); print $2; exit }'
}

# The newest complete entry (empty when none).
newest_cached() {
	local d
	for d in "$cache"/qemu10-*/.complete; do
		[ -e "$d" ] || continue
		basename "$(dirname "$d")"
	done | sort -Vr | head -n 1 || true
}

refresh_lists() {
	[ "$(id -u)" = 0 ] || return 1
	log "apt's lists have no $qemu_pkg in $suite; refreshing them"
	apt-get -q -o Acquire::Retries=1 -o Acquire::http::Timeout=30 update >&2
}

apt_download() { # PKG[=VERSION|/SUITE]... into the current directory
	local opts=(-q -o Acquire::Retries=1 -o Acquire::http::Timeout=30)
	# As root, apt would drop to the _apt user, who cannot write here.
	[ "$(id -u)" != 0 ] || opts+=(-o APT::Sandbox::User=root)
	apt-get "${opts[@]}" download "$@" >&2
}

# check_entry DIR: QEMU 10 in DIR runs on this host and takes the fds:
# every library resolves, and vfio-pci and iommufd have an fd property.
check_entry() {
	local qemu=$1/root/usr/bin/qemu-system-x86_64 missing help
	missing=$(ldd "$qemu" | awk '/not found/ { print $1 }')
	if [ -n "$missing" ]; then
		log "$qemu needs libraries this host lacks: $(echo "$missing" | tr '\n' ' ')"
		log "install the packages that ship them with apt (scripts/deps.sh)"
		return 1
	fi
	help=$("$qemu" -device vfio-pci,help 2>&1)
	grep -qE '^ +fd=' <<<"$help" || { log "$qemu has no -device vfio-pci,fd="; return 1; }
	help=$("$qemu" -object iommufd,help 2>&1)
	grep -qE '^ +fd=' <<<"$help" || { log "$qemu has no -object iommufd,fd="; return 1; }
}

since() { # EPOCHREALTIME-START -> seconds since, one decimal
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

# download VERSION WORK: the packages into WORK; status 1 when apt cannot.
download() {
	local p v specs=("$qemu_pkg=$1")
	for p in "${same_version_pkgs[@]}"; do
		specs+=("$p=$1")
	done
	for p in "${firmware_pkgs[@]}"; do
		v=$(suite_version "$p")
		specs+=("$p${v:+=$v}")
	done
	log "downloading ${specs[*]}"
	(cd "$2" && apt_download "${specs[@]}")
}

# unpack VERSION WORK ENTRY: unpack WORK's packages, check them, and move
# the result to ENTRY (download_s: how long the download took).
unpack() {
	local version=$1 work=$2 entry=$3 out=$2/entry deb t0=$EPOCHREALTIME unpack_s
	mkdir "$out"
	for deb in "$work"/*.deb; do
		dpkg-deb -x "$deb" "$out/root"
		# shellcheck disable=SC2016 # dpkg-deb's format, not the shell's
		dpkg-deb --show --showformat='${Package} ${Version}\n' "$deb" >>"$out/packages"
	done
	unpack_s=$(since "$t0")
	check_entry "$out"
	{
		printf 'QEMU10=%q\n' "$entry/root/usr/bin/qemu-system-x86_64"
		printf 'QEMU10_VERSION=%q\n' "$version"
		printf 'QEMU10_DATADIRS=%q\n' "$entry/root/usr/share/qemu $entry/root/usr/share/seabios"
		printf 'QEMU10_MODULE_DIR=%q\n' "$entry/root/usr/lib/x86_64-linux-gnu/qemu"
	} >"$out/env"
	{
		echo "suite: $suite"
		sed 's/^/package: /' "$out/packages"
		echo "downloaded: $(du -cb "$work"/*.deb | tail -n 1 | cut -f1) bytes in $download_s s"
		echo "unpacked: $(du -sb "$out/root" | cut -f1) bytes in $unpack_s s"
		echo "qemu: $("$out/root/usr/bin/qemu-system-x86_64" --version | head -n 1)"
	} >"$out/fetch.log"
	touch "$out/.complete"
	rm -rf "$entry"
	mv "$out" "$entry"
	sed 's/^/  /' "$entry/fetch.log" >&2
}

# Serialise concurrent runs on the same cache; with the lock held, a
# .fetch-qemu10.* directory is what a killed run left behind.
exec {lockfd}>"$cache/.qemu10.lock"
flock "$lockfd"
rm -rf "$cache"/.fetch-qemu10.*

version=$(suite_version "$qemu_pkg")
if [ -z "$version" ] && refresh_lists; then
	version=$(suite_version "$qemu_pkg")
fi
key=
if [ -n "$version" ]; then
	key=qemu10-${version#*:}
	if [ ! -e "$cache/$key/.complete" ]; then
		work=$(mktemp -d "$cache/.fetch-qemu10.XXXXXX")
		# shellcheck disable=SC2064 # $work is fixed now
		trap "rm -rf '$work'" EXIT
		t0=$EPOCHREALTIME
		if download "$version" "$work"; then
			download_s=$(since "$t0")
			unpack "$version" "$work" "$cache/$key"
		else
			log "cannot download $qemu_pkg $version from $suite"
			key=
		fi
		rm -rf "$work"
		trap - EXIT
	fi
fi
if [ -z "$key" ]; then
	key=$(newest_cached)
	[ -n "$key" ] ||
		unavailable "apt has no $qemu_pkg in $suite (scripts/deps.sh adds the source) and $cache has no qemu10-* entry"
	log "using the cached $key"
fi
entry=$cache/$key
[ -L "$vmdir/qemu10" ] || rm -rf "${vmdir:?}/qemu10"
ln -sfn "$entry" "$vmdir/qemu10"
echo "$entry"
