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

# A gateway for a script test: gw_serve LOG CMD... starts CMD (a 'crosswalk
# serve' command line; CROSSWALK_LISTEN=127.0.0.1:0 is set, so it takes a free
# port) in the background with its standard error in LOG, waits up to 20 s for
# the "listening" line and sets GW_PID and GW_URL (http://127.0.0.1:PORT).
# Returns 1 when it exits or does not listen in time. gw_stop stops it by its
# PID (SIGTERM, then SIGKILL after 15 s) and returns its exit status.
gw_serve() {
  local log=$1 i port; shift
  CROSSWALK_LISTEN=127.0.0.1:0 "$@" 2>"$log" >/dev/null &
  GW_PID=$!; GW_URL=""
  for i in $(seq 1 200); do
    port=$(grep -o '"event":"listening".*"port":"[0-9]*"' "$log" 2>/dev/null | grep -o '"port":"[0-9]*"' | grep -o '[0-9]\+')
    if [ -n "$port" ]; then GW_URL="http://127.0.0.1:$port"; return 0; fi
    kill -0 "$GW_PID" 2>/dev/null || { wait "$GW_PID"; GW_PID=""; return 1; }
    sleep 0.1
  done
  gw_stop; return 1
}
gw_stop() {
  local i rc
  [ -n "${GW_PID:-}" ] || return 0
  kill -TERM "$GW_PID" 2>/dev/null
  for i in $(seq 1 150); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$GW_PID" 2>/dev/null && kill -KILL "$GW_PID"
  wait "$GW_PID"; rc=$?
  GW_PID=""
  return $rc
}
# A temporary directory removed when the script ends (CW_KEEP_TMP=1 keeps it),
# and any gateway still running stopped.
tap_tmpdir() {
  TAP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/cw-script-XXXXXX")
  trap 'gw_stop; [ -n "${CW_KEEP_TMP:-}" ] || rm -rf "$TAP_TMP"' EXIT
}
