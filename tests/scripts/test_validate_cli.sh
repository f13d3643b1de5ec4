#!/usr/bin/env bash
# `crosswalk validate FILE...` validates files as POST /fhir/$validate does:
# structure, then the profiles each resource claims (or --profile), with the
# profiles of the configuration's profiles_dir. A table or --format json;
# exit 0 when no file has an error, 1 when one has, 2 for an unknown profile.
. "$(dirname "$0")/tap.sh"
tap_tmpdir
tap_plan 5
cw=${CW_BIN:-bin/crosswalk}
strength=https://crosswalk.example.org/fhir/StructureDefinition/recovery-strength
printf '{"profiles_dir":"%s/profiles"}\n' "$PWD" >"$TAP_TMP/c.json"
echo '{"resourceType":"Patient","id":"p","active":true}' >"$TAP_TMP/ok.json"
"$cw" convert --to xml "$TAP_TMP/ok.json" >"$TAP_TMP/ok.xml"
printf '{"resourceType":"Observation","meta":{"profile":["%s"]},"status":"final","code":{"text":"s"},"valueInteger":3}\n' \
  "$strength" >"$TAP_TMP/claims.json"
echo '{"resourceType":"Patient","bogus":1}' >"$TAP_TMP/struct.json"

out=$("$cw" validate -c "$TAP_TMP/c.json" "$TAP_TMP/ok.json" "$TAP_TMP/ok.xml" 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q '2 files, 0 with errors' <<<"$out"; then
  tap_ok "valid JSON and XML files: exit 0, none with errors"
else
  tap_fail "valid JSON and XML files: exit 0, none with errors" "exit $rc: $out"
fi

out=$("$cw" validate -c "$TAP_TMP/c.json" "$TAP_TMP/ok.json" "$TAP_TMP/claims.json" "$TAP_TMP/struct.json" 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q '3 files, 2 with errors' <<<"$out" &&
   grep -q 'profile-type at Observation.valueInteger' <<<"$out" && grep -q 'unknown element "bogus"' <<<"$out"; then
  tap_ok "a claimed profile and the structure are checked: exit 1, each error listed"
else
  tap_fail "a claimed profile and the structure are checked: exit 1, each error listed" "exit $rc: $out"
fi

out=$("$cw" validate -c "$TAP_TMP/c.json" --format json "$TAP_TMP/ok.json" "$TAP_TMP/claims.json" 2>&1); rc=$?
if [ $rc -eq 1 ] && python3 -c '
import json, sys
r = json.loads(sys.argv[1])
f = r["files"]
assert r["errors"] == 1 and len(f) == 2 and f[0]["errors"] == 0 and f[1]["errors"] == 4, r
assert f[1]["outcome"]["resourceType"] == "OperationOutcome"
' "$out"; then
  tap_ok "--format json: one object with each file's counts and OperationOutcome"
else
  tap_fail "--format json: one object with each file's counts and OperationOutcome" "exit $rc: $out"
fi

out=$("$cw" validate -c "$TAP_TMP/c.json" --profile "$strength" "$TAP_TMP/ok.json" 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q 'profile-type-mismatch' <<<"$out"; then
  tap_ok "--profile checks a resource that claims nothing against that profile"
else
  tap_fail "--profile checks a resource that claims nothing against that profile" "exit $rc: $out"
fi

out=$("$cw" validate -c "$TAP_TMP/c.json" --profile urn:x:none "$TAP_TMP/ok.json" 2>&1); rc=$?
out2=$("$cw" validate -c "$TAP_TMP/c.json" "$TAP_TMP/missing.json" 2>&1); rc2=$?
if [ $rc -eq 2 ] && grep -q "not loaded" <<<"$out" && [ $rc2 -eq 1 ] && grep -q 'cannot open' <<<"$out2"; then
  tap_ok "an unknown profile is a usage error (2); a missing file an error (1)"
else
  tap_fail "an unknown profile is a usage error (2); a missing file an error (1)" "exit $rc: $out; exit $rc2: $out2"
fi
tap_done
