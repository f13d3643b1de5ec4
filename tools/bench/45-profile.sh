#!/usr/bin/env bash
# Validation against a profile, resources per second: Crosswalk (structural
# validation, then the profile) against @medplum/core validateResource with
# the same profile, on the same resources in one run: the Synthea body weight
# Observations against the core bodyweight profile, and 500 recovery-strength
# Observations against that project profile (bench_profile writes both sets,
# and medplum-validate.js reads them). @medplum/core comes from the upstream
# test server's packages (tests/upstream/install.sh).
set -euo pipefail
out="$BENCH_DIR/profile"
mkdir -p "$out"
bin="$BENCH_DIR/bench_profile"
make -s build/default/libcwcore.a >/dev/null
cc -std=c11 -D_GNU_SOURCE -O2 -Icore $(pkg-config --cflags libcjson) tools/bench/bench_profile.c \
  build/default/libcwcore.a $(pkg-config --libs libmicrohttpd gnutls libcjson libcurl libxml-2.0 sqlite3 openssl libpq) \
  -ldl -lpthread -lm -o "$bin"
files=("$BENCH_CORPUS"/fhir-r4/synthea/*.json)
examples=("$BENCH_CORPUS"/fhir-r4/examples-json-xml/json/*.json)
cw=$("$bin" "$out" "${files[@]}" -- "${examples[@]}")
echo "$cw" | grep -v '^RESULT'
if ! tests/upstream/install.sh >/dev/null 2>&1; then
  echo "@medplum/core: npm install failed; comparison skipped"; exit 0
fi
js=$(NODE_PATH=tests/upstream/node_modules node tools/bench/medplum-validate.js "$out" profiles \
  tests/fixtures/packages/r4-core-profiles/package)
echo "$js" | grep -v '^RESULT'
read -r _ a b _ _ f _ <<<"$(echo "$cw" | grep '^RESULT')"
read -r _ c d e g <<<"$(echo "$js" | grep '^RESULT')"
awk -v a="$a" -v b="$b" -v c="$c" -v d="$d" -v e="$e" -v f="$f" -v g="$g" 'BEGIN {
  printf "ratio core profile (bodyweight) resources/s crosswalk/medplum = %.1fx (target >= 20x)\n", a / c;
  printf "ratio project profile (recovery-strength) resources/s crosswalk/medplum = %.1fx (target >= 20x)\n", b / d;
  printf "(crosswalk with the bodyweight profile / medplum without any profile = %.1fx)\n", a / e;
  if (g > 0) printf "no profile, official examples: resources/s crosswalk/medplum = %.1fx\n", f / g }'
