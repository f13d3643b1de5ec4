#!/usr/bin/env bash
# Fails unless every plugin given exports exactly one dynamic symbol:
# cw_plugin_entry.
set -u
bad=0
for so in "$@"; do
  syms=$(nm -D --defined-only "$so" | awk '$2 != "A" {print $3}' | sed 's/@.*//' | sort -u)
  if [ "$syms" != "cw_plugin_entry" ]; then
    echo "check-abi: $so exports more than cw_plugin_entry:" >&2
    echo "$syms" | sed 's/^/    /' >&2
    bad=1
  fi
done
[ "$bad" -eq 0 ] && echo "check-abi: $# plugins export only cw_plugin_entry"
exit $bad
