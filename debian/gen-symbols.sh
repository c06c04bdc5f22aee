#!/usr/bin/env bash
# Writes debian/libvfiobroker0.symbols from a built libvfiobroker.so.0:
#   debian/gen-symbols.sh BUILD/libvfiobroker.so.0
# Every exported symbol must carry a version node that client/libvfiobroker.sym
# declares. A symbol already in the symbols file keeps the version it was added
# in; a new one gets this package's upstream version (debian/changelog). The
# package build compares the library with the file (dpkg-gensymbols -c4) and fails
# on any difference, so run this after adding a function, and commit the result.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

lib=${1:?usage: debian/gen-symbols.sh BUILD/libvfiobroker.so.0}
out=debian/libvfiobroker0.symbols
upstream=$(dpkg-parsechangelog -S Version | sed 's/-[^-]*$//')
nodes=$(sed -n 's/^\([A-Za-z0-9_.]*\)[[:space:]]*{.*/\1/p' client/libvfiobroker.sym)

# name@NODE for each exported symbol, the nodes' own symbols included.
exported=$(nm -D --defined-only --with-symbol-versions "$lib" | awk '
	$2 == "A" { print $3 "@" $3; next }
	{ sub(/@@/, "@", $3); print $3 }' | sort)

bad=0
while read -r sym; do
	node=${sym#*@}
	if [ "$node" = "$sym" ] || ! grep -qx "$node" <<<"$nodes"; then
		echo "gen-symbols: $sym has no version node of client/libvfiobroker.sym" >&2
		bad=1
	fi
done <<<"$exported"
[ $bad -eq 0 ] || exit 1

{
	echo "libvfiobroker.so.0 libvfiobroker0 #MINVER#"
	echo "* Build-Depends-Package: libvfiobroker-dev"
	while read -r sym; do
		version=$(awk -v s="$sym" '$1 == s { print $2 }' "$out" 2>/dev/null || true)
		echo " $sym ${version:-$upstream}"
	done <<<"$exported"
} >"$out.new"
mv "$out.new" "$out"
echo "gen-symbols: $(grep -c '^ ' "$out") symbols in $out"
