#!/usr/bin/env bash
# The README's first steps run as written: every ```sh block of its
# "## First steps" section, in order, against a gateway of this test's own
# (started from the repository root as make run starts it, with a temporary
# data directory; CROSSWALK_CONFIG names its configuration, so the commands
# that read one use it). 127.0.0.1:8080 becomes the gateway's address and
# bin/crosswalk the program under test. A block passes when every command in
# it succeeds — curl runs with --fail-with-body, so an HTTP error fails it —
# and prints something. One case per block, named by its heading.
. "$(dirname "$0")/tap.sh"
tap_tmpdir
unset CROSSWALK_LISTEN CROSSWALK_UPSTREAM
bin=${CW_BIN:-bin/crosswalk}
plugdir=${CW_PLUGIN_DIR:-lib/crosswalk/plugins}

# Blocks as files $TAP_TMP/block-N.sh, with their headings in names[].
names=()
awk -v dir="$TAP_TMP" '
  /^## / { inside = ($0 == "## First steps"); next }
  !inside { next }
  /^### / { heading = substr($0, 5); next }
  /^```sh$/ { n++; file = dir "/block-" n ".sh"; print heading > (dir "/name-" n); code = 1; next }
  /^```/ && code { code = 0; close(file); next }
  code { print > file }
' README.md
n=$(ls "$TAP_TMP"/block-*.sh 2>/dev/null | wc -l)
tap_plan $((n + 1))
[ "$n" -ge 4 ] && tap_ok "the README has its first steps ($n blocks)" || tap_fail "the README has its first steps ($n blocks)"

sed -e 's/"listen": *"[^"]*"/"listen": "127.0.0.1:0"/' \
    -e "s|\"data_dir\": *\"[^\"]*\"|\"data_dir\": \"$TAP_TMP/var\"|" \
    -e "s|\"plugin_dir\": *\"[^\"]*\"|\"plugin_dir\": \"$plugdir\"|" conf/crosswalk.json >"$TAP_TMP/crosswalk.json"
export CROSSWALK_CONFIG=$TAP_TMP/crosswalk.json
if ! gw_serve "$TAP_TMP/gw.log" "$bin" serve; then
  for i in $(seq 1 "$n"); do tap_fail "$(cat "$TAP_TMP/name-$i")" "the gateway did not start: $(tail -3 "$TAP_TMP/gw.log")"; done
  tap_done
fi
for i in $(seq 1 "$n"); do
  name=$(cat "$TAP_TMP/name-$i")
  {
    echo 'set -euo pipefail'
    echo 'curl() { command curl --fail-with-body "$@"; }'
    sed -e "s|http://127.0.0.1:8080|$GW_URL|g" -e "s|bin/crosswalk|$bin|g" "$TAP_TMP/block-$i.sh"
  } >"$TAP_TMP/run-$i.sh"
  if out=$(bash "$TAP_TMP/run-$i.sh" 2>&1) && [ -n "$out" ]; then
    tap_ok "$name"
  else
    tap_fail "$name" "$(tail -c 1500 <<<"$out")"
  fi
done
gw_stop || tap_fail "the gateway stops cleanly" "$(tail -3 "$TAP_TMP/gw.log")"
tap_done
