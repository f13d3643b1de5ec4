#!/usr/bin/env bash
# Runs every test binary given, with cmocka's TAP output, and ends with one
# line "N passed, N failed" counting every test case. A binary that crashes or
# exits non-zero without reporting a failing case counts as one failure.
set -u
export CMOCKA_MESSAGE_OUTPUT=TAP
logdir=build/test-logs
mkdir -p "$logdir"
pass=0; fail=0; failed_bins=()
for bin in "$@"; do
  name=$(basename "$bin")
  log="$logdir/$name.log"
  start=$(date +%s%N)
  "$bin" >"$log" 2>&1
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  p=$(grep -c '^ok ' "$log")
  f=$(grep -c '^not ok ' "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  pass=$((pass + p)); fail=$((fail + f))
  if [ "$f" -gt 0 ]; then
    failed_bins+=("$name")
    printf '%-32s %4d ok %3d FAILED (exit %d, %d ms)\n' "$name" "$p" "$f" "$rc" "$ms"
    grep -v '^ok ' "$log" | tail -n 40 | sed 's/^/    /'
  else
    printf '%-32s %4d ok (%d ms)\n' "$name" "$p" "$ms"
  fi
done
if [ ${#failed_bins[@]} -gt 0 ]; then echo "failing: ${failed_bins[*]} (logs in $logdir)"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
