#!/usr/bin/env bash
# FHIR JSON⇄XML conversion: Crosswalk against FHIR.js (npm `fhir`, installed
# here into build/bench/node) on the same Synthea bundles, in one run.
set -euo pipefail
out="$BENCH_DIR/convert"
mkdir -p "$out"
bin="$BENCH_DIR/bench_convert"
make -s build/default/libcwcore.a >/dev/null
cc -std=c11 -D_GNU_SOURCE -O2 -Icore $(pkg-config --cflags libcjson libxml-2.0) tests/bench/bench_convert.c \
  build/default/libcwcore.a $(pkg-config --libs libmicrohttpd libcjson libcurl libxml-2.0 sqlite3 openssl) \
  -ldl -lpthread -lm -o "$bin"
files=("$CW_SHARED"/fhir-r4/synthea/*.json)
cw=$("$bin" "$out" "${files[@]}")
echo "$cw" | grep -v '^RESULT'
node_dir="$BENCH_DIR/node"
if [ ! -d "$node_dir/node_modules/fhir" ]; then
  mkdir -p "$node_dir"
  (cd "$node_dir" && npm install --silent --no-audit --no-fund fhir@4.12.0 >/dev/null 2>&1) || {
    echo "FHIR.js: npm install failed; comparison skipped"; exit 0; }
fi
js=$(NODE_PATH="$node_dir/node_modules" node tools/bench/fhirjs-convert.js "$out" "${files[@]}")
echo "$js" | grep -v '^RESULT'
read -r _ cjx cxj crjx crxj <<<"$(echo "$cw" | grep '^RESULT')"
read -r _ jjx jxj jrjx jrxj <<<"$(echo "$js" | grep '^RESULT')"
awk -v a="$crjx" -v b="$jrjx" -v c="$crxj" -v d="$jrxj" 'BEGIN {
  printf "ratio json_to_xml resources/s crosswalk/FHIR.js = %.1fx (target >= 20x)\n", a / b;
  printf "ratio xml_to_json resources/s crosswalk/FHIR.js = %.1fx (target >= 20x)\n", c / d }'
