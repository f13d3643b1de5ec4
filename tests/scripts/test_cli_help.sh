#!/usr/bin/env bash
# Every command of `crosswalk --help` treats -h and --help as its help,
# wherever they stand (usage on standard output, exit 0, nothing done: never
# a value or a name, so `client new --help` writes no ./--help.pem), and
# refuses an option it does not know (exit 2). `client new` refuses a NAME
# starting with '-'.
. "$(dirname "$0")/tap.sh"
tap_tmpdir
cw=$(realpath "${CW_BIN:-bin/crosswalk}")
commands=$("$cw" --help | sed -n '/^commands:/,/^$/p' | grep -o '^  [a-z]\+' | tr -d ' ')
n=$(wc -w <<<"$commands")
tap_plan $((n * 3 + 5))

help_is_usage() { # NAME WHAT ARGS...: exit 0, stdout the command's usage, stderr empty, no file made
  local name=$1 what=$2 rc; shift 2
  (cd "$TAP_TMP/run" && "$cw" "$@" >"$TAP_TMP/out" 2>"$TAP_TMP/err" </dev/null); rc=$?
  if [ $rc -eq 0 ] && head -1 "$TAP_TMP/out" | grep -q "^usage: crosswalk $name" && [ ! -s "$TAP_TMP/err" ] &&
     [ -z "$(ls -A "$TAP_TMP/run")" ]; then
    tap_ok "$what"
  else
    tap_fail "$what" "exit $rc; stdout: $(head -3 "$TAP_TMP/out"); stderr: $(head -3 "$TAP_TMP/err"); files: $(ls -A "$TAP_TMP/run")"
  fi
  rm -rf "$TAP_TMP/run"; mkdir -p "$TAP_TMP/run"
}
mkdir -p "$TAP_TMP/run"

for c in $commands; do
  help_is_usage "$c" "$c --help: its usage, exit 0" "$c" --help
  help_is_usage "$c" "$c -h: its usage, exit 0" "$c" -h
  (cd "$TAP_TMP/run" && "$cw" "$c" --no-such-option >/dev/null 2>&1 </dev/null); rc=$?
  if [ $rc -eq 2 ]; then tap_ok "$c --no-such-option: exit 2"; else tap_fail "$c --no-such-option: exit 2" "exit $rc"; fi
  rm -rf "$TAP_TMP/run"; mkdir -p "$TAP_TMP/run"
done

help_is_usage client "client new --help is the help, not a client named --help" client new --help
help_is_usage client "client new NAME -h is the help" client new alice --scopes -h
help_is_usage billing "billing --from --help is the help, not a date" billing --from --help --to 2025-01-31
help_is_usage "" "crosswalk --help" --help

(cd "$TAP_TMP/run" && "$cw" client new -alice >"$TAP_TMP/out" 2>&1 </dev/null); rc=$?
if [ $rc -eq 2 ] && grep -q "not starting with '.' or '-'" "$TAP_TMP/out" && [ -z "$(ls -A "$TAP_TMP/run")" ]; then
  tap_ok "client new -alice: a NAME starting with '-' is refused, exit 2, no key written"
else
  tap_fail "client new -alice: a NAME starting with '-' is refused, exit 2, no key written" \
    "exit $rc: $(cat "$TAP_TMP/out"); files: $(ls -A "$TAP_TMP/run")"
fi
tap_done
