#!/usr/bin/env bash
# FHIRPath evaluations per second: Crosswalk against fhirpath.js (npm
# `fhirpath`, installed here into build/bench/node) on the same expressions
# (tools/bench/fhirpath-exprs.txt) and the same Synthea resources, in one run.
set -euo pipefail
bin="$BENCH_DIR/bench_fhirpath"
make -s build/default/libcwcore.a >/dev/null
cc -std=c11 -D_GNU_SOURCE -O2 -Icore $(pkg-config --cflags libcjson) tools/bench/bench_fhirpath.c \
  build/default/libcwcore.a $(pkg-config --libs libmicrohttpd libcjson libcurl libxml-2.0 sqlite3 openssl) \
  -ldl -lpthread -lm -o "$bin"
files=("$BENCH_CORPUS"/fhir-r4/synthea/*.json)
exprs=tools/bench/fhirpath-exprs.txt
node_dir="$BENCH_DIR/node"
if [ ! -d "$node_dir/node_modules/fhirpath" ]; then
  mkdir -p "$node_dir"
  (cd "$node_dir" && npm install --silent --no-audit --no-fund fhirpath@5.2.2 >/dev/null 2>&1) || {
    "$bin" "$exprs" "${files[@]}" | grep -v '^RESULT'
    echo "fhirpath.js: npm install failed; comparison skipped"; exit 0; }
fi
# The two sides take turns, twice, and each keeps its best.
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }
cw_best=0; js_best=0
for round in 1 2; do
  cw=$("$bin" "$exprs" "${files[@]}")
  js=$(NODE_PATH="$node_dir/node_modules" node tools/bench/fhirpathjs.js "$exprs" "${files[@]}")
  read -r _ a _ <<<"$(echo "$cw" | grep '^RESULT')"; cw_best=$(best "$cw_best" "$a")
  read -r _ b _ <<<"$(echo "$js" | grep '^RESULT')"; js_best=$(best "$js_best" "$b")
done
echo "$cw" | grep -v '^RESULT'
echo "$js" | grep -v '^RESULT'
awk -v a="$cw_best" -v b="$js_best" 'BEGIN {
  printf "best: crosswalk %.0f, fhirpath.js %.0f evaluations/s\n", a, b;
  printf "ratio evaluations/s crosswalk/fhirpath.js = %.1fx (target >= 10x)\n", a / b }'
