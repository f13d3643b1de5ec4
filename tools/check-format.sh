#!/usr/bin/env bash
# Format check: no C file may drift further from .clang-format than it is.
#
#   tools/check-format.sh           check every C file against tools/format-baseline
#   tools/check-format.sh --update  record today's counts (after formatting, or
#                                   when a merge is accepted as it is)
#   tools/check-format.sh FILE...   show what clang-format would change in FILEs
#
# The baseline holds, per file, how many of its lines clang-format would
# change; the check fails when a file has more, or a file not listed has any.
# New code therefore goes in formatted (clang-format -i, or clang-format-diff
# on your change: `git diff -U0 | clang-format-diff -p1 -i`), while the few
# lines that clang-format 14 lays out differently stay as they are.
# Generated tables (core/fhir/gen/) are left out.
set -euo pipefail
cd "$(dirname "$0")/.."
baseline=tools/format-baseline
command -v clang-format >/dev/null || { echo "check-format: clang-format is not installed" >&2; exit 1; }

count() { clang-format "$1" | diff "$1" - | grep -c '^<' || true; }
files() { git ls-files '*.c' '*.h' | grep -v '^core/fhir/gen/'; }

if [ $# -gt 0 ] && [ "$1" != --update ]; then
	for f in "$@"; do clang-format "$f" | diff -u "$f" - || true; done
	exit 0
fi
if [ "${1:-}" = --update ]; then
	for f in $(files); do n=$(count "$f"); [ "$n" = 0 ] || echo "$f $n"; done > "$baseline"
	echo "check-format: $(wc -l < "$baseline") files recorded in $baseline"
	exit 0
fi
bad=0
for f in $(files); do
	n=$(count "$f")
	[ "$n" = 0 ] && continue
	was=$(awk -v f="$f" '$1 == f {print $2}' "$baseline")
	if [ "$n" -gt "${was:-0}" ]; then
		echo "check-format: $f: $n lines differ from .clang-format (was ${was:-0}); see tools/check-format.sh $f" >&2
		bad=1
	fi
done
[ $bad = 0 ] && echo "check-format: ok"
exit $bad
