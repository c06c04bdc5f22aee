#!/usr/bin/env bash
# Prints the include graph of the modules in a directory (default broker/) and
# its cycles. A module is a .c and its .h; "a -> b" means a.c or a.h includes
# "DIR/b.h". Then every strongly connected set of more than one module (each
# reaches every other through includes), one per line after "cycles:".
#   scripts/include-graph.sh [DIR]
# Exit status: 0 when there is no cycle, 1 when there is one.
set -euo pipefail

dir=${1:-broker}
dir=${dir%/}

for f in "$dir"/*.c "$dir"/*.h; do
	[ -e "$f" ] || continue
	from=$(basename "${f%.*}")
	sed -n "s|^#include \"$dir/\([A-Za-z0-9_]*\)\.h\".*|\1|p" "$f" |
		while read -r to; do
			if [ "$to" != "$from" ]; then echo "$from -> $to"; fi
		done
done | sort -u | awk '
	{ print; edge[$1, $3] = 1; node[$1] = 1; node[$3] = 1 }
	END {
		n = 0
		for (v in node) names[n++] = v
		# Reachability (Warshall); a few dozen modules, so cubic is nothing.
		for (i = 0; i < n; i++)
			for (j = 0; j < n; j++)
				reach[i, j] = ((names[i], names[j]) in edge)
		for (k = 0; k < n; k++)
			for (i = 0; i < n; i++)
				if (reach[i, k])
					for (j = 0; j < n; j++)
						if (reach[k, j])
							reach[i, j] = 1
		print "cycles:"
		found = 0
		for (i = 0; i < n; i++) {
			if (done[i])
				continue
			set = ""
			count = 0
			for (j = 0; j < n; j++)
				if (i == j || (reach[i, j] && reach[j, i])) {
					members[count++] = names[j]
					done[j] = 1
				}
			if (count < 2)
				continue
			# Sorted, so that the output is the same from run to run.
			for (a = 0; a < count; a++)
				for (b = a + 1; b < count; b++)
					if (members[b] < members[a]) {
						t = members[a]; members[a] = members[b]; members[b] = t
					}
			for (a = 0; a < count; a++)
				set = set (a ? " " : "") members[a]
			lines[found++] = set
		}
		for (a = 0; a < found; a++)
			for (b = a + 1; b < found; b++)
				if (lines[b] < lines[a]) {
					t = lines[a]; lines[a] = lines[b]; lines[b] = t
				}
		for (a = 0; a < found; a++)
			print "  " lines[a]
		if (found == 0)
			print "  (none)"
		exit found > 0
	}'
