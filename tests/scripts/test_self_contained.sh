#!/usr/bin/env bash
# The suite needs nothing beside the clone: no test, test helper, Makefile test
# rule or CI step reads ../shared (or the CW_SHARED variable that pointed
# there); the corpora come from tests/fixtures/corpus, unpacked into CW_CORPUS.
. "$(dirname "$0")/tap.sh"
tap_plan 3

hits=$(grep -rnE '\.\./shared|CW_SHARED' tests .ci tools/deps.sh \
  --include='*.c' --include='*.h' --include='*.sh' --include='*.mjs' --include='*.js' --include=run \
  --exclude-dir=node_modules --exclude=test_self_contained.sh 2>&1 |
  grep -vE '^[^:]+:[0-9]+:[[:space:]]*(#|/?\*|unset )')  # comments, and CI unsetting them
if [ -z "$hits" ]; then tap_ok "no test reads ../shared"; else tap_fail "no test reads ../shared" "$hits"; fi

rule=$(make -pRrq -f Makefile : 2>/dev/null | awk '/^test: /{p=1} p&&/^$/{exit} p' | grep -nE 'shared|SHARED')
if [ -z "$rule" ]; then tap_ok "the Makefile's test rule passes no shared folder"
else tap_fail "the Makefile's test rule passes no shared folder" "$rule"; fi

missing=""
for d in fhir-r4/examples-json-xml/json fhir-r4/examples-json-xml/xml fhir-r4/synthea fhir-r4/xsd codes; do
  [ -d "${CW_CORPUS:-build/corpus}/$d" ] || missing="$missing $d"
done
if [ -z "$missing" ]; then tap_ok "the vendored corpus is unpacked in CW_CORPUS"
else tap_fail "the vendored corpus is unpacked in CW_CORPUS" "missing:$missing"; fi
tap_done
