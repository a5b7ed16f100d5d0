#!/bin/sh
# Every man page renders without a warning (groff warnings go to stderr).
set -u
cd "$(dirname "$0")/.."
rc=0
command -v man >/dev/null 2>&1 || { echo "check-man: man not installed (man-db); skipped"; exit 0; }
for f in man/*.[1-8]; do
	out=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$f" 2>&1 >/dev/null)
	if [ -n "$out" ]; then
		echo "check-man: $f:"; echo "$out" | sed 's/^/    /'; rc=1
	fi
done
[ $rc -eq 0 ] && echo "check-man: $(ls man/*.[1-8] | wc -l) pages render without warnings"
exit $rc
