#!/usr/bin/env bash
# Runs every test given (cmocka binaries, or scripts printing TAP the same
# way), and ends with one line "N passed, N failed, N skipped" counting every
# test case. A case marked "# SKIP" (cmocka's skip(); a script's "ok N # SKIP")
# counts as skipped, never as passed or failed, and its reason — the line
# "# skipped: REASON" the test printed — is shown. A test that crashes or exits
# non-zero without reporting a failing case counts as one failure.
set -u
export CMOCKA_MESSAGE_OUTPUT=TAP
logdir=build/test-logs
mkdir -p "$logdir"
pass=0; fail=0; skipped=0; failed_bins=()
for bin in "$@"; do
  name=$(basename "$bin")
  log="$logdir/$name.log"
  start=$(date +%s%N)
  "$bin" >"$log" 2>&1
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  s=$(grep -Ec '^(not )?ok .*# SKIP' "$log")
  p=$(grep -E '^ok ' "$log" | grep -vc '# SKIP')
  f=$(grep -E '^not ok ' "$log" | grep -vc '# SKIP')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  # Cases a plan ("1..N") announced but that never reported count as failed.
  planned=$(grep -E '^1\.\.[0-9]+' "$log" | sed 's/^1\.\.\([0-9]*\).*/\1/' | awk '{n += $1} END {print n + 0}')
  missing=$((planned - p - f - s))
  if [ "$missing" -gt 0 ]; then f=$((f + missing)); echo "# $missing planned cases never reported" >>"$log"; fi
  pass=$((pass + p)); fail=$((fail + f)); skipped=$((skipped + s))
  extra=""
  [ "$s" -gt 0 ] && extra=$(printf ' %3d skipped' "$s")
  if [ "$f" -gt 0 ]; then
    failed_bins+=("$name")
    printf '%-32s %4d ok%s %3d FAILED (exit %d, %d ms)\n' "$name" "$p" "$extra" "$f" "$rc" "$ms"
    grep -v '^ok ' "$log" | tail -n 40 | sed 's/^/    /'
  else
    printf '%-32s %4d ok%s (%d ms)\n' "$name" "$p" "$extra" "$ms"
  fi
  if [ "$s" -gt 0 ]; then
    grep '^# skipped: ' "$log" | sort | uniq -c | sed 's/^ *\([0-9]*\) # skipped: /    skipped (\1): /'
  fi
done
if [ ${#failed_bins[@]} -gt 0 ]; then echo "failing: ${failed_bins[*]} (logs in $logdir)"; fi
echo "$pass passed, $fail failed, $skipped skipped"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
