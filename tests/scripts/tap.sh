# TAP helpers for the script tests (tests/scripts/test_*.sh), sourced; the
# output is what tests/run.sh counts, like a cmocka binary's:
#   tap_plan N            "1..N"
#   tap_ok NAME           "ok I - NAME"
#   tap_fail NAME [WHY]   "not ok I - NAME" and "# WHY"
#   tap_check NAME CMD... runs CMD, ok when it succeeds, else its output is shown
#   tap_skip NAME REASON  "# skipped: REASON" and "ok I # SKIP NAME"
#   tap_done              exits 1 when any case failed
# Cases run from the repository root; CW_BIN, CW_PLUGIN_DIR, CW_TEST_PLUGIN_DIR
# and CW_CORPUS are those of the Makefile's test target.
tap_i=0
tap_failed=0
tap_plan() { echo "1..$1"; }
tap_ok() { tap_i=$((tap_i + 1)); echo "ok $tap_i - $1"; }
tap_fail() {
  tap_i=$((tap_i + 1)); tap_failed=$((tap_failed + 1))
  echo "not ok $tap_i - $1"
  [ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/# /'
  return 0
}
tap_check() {
  local name=$1 out; shift
  if out=$("$@" 2>&1); then tap_ok "$name"; else tap_fail "$name" "$out"; fi
}
tap_skip() { tap_i=$((tap_i + 1)); echo "# skipped: $2"; echo "ok $tap_i # SKIP $1"; }
tap_done() { [ "$tap_failed" -eq 0 ]; exit $?; }
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
