#!/usr/bin/env bash
# FHIR JSON⇄XML conversion: Crosswalk against FHIR.js (npm `fhir`, installed
# here into build/bench/node) on the same Synthea bundles, in one run.
set -euo pipefail
out="$BENCH_DIR/convert"
mkdir -p "$out"
bin="$BENCH_DIR/bench_convert"
make -s build/default/libcwcore.a >/dev/null
cc -std=c11 -D_GNU_SOURCE -O2 -Icore $(pkg-config --cflags libcjson libxml-2.0) tools/bench/bench_convert.c \
  build/default/libcwcore.a $(pkg-config --libs libmicrohttpd gnutls libcjson libcurl libxml-2.0 sqlite3 openssl) \
  -ldl -lpthread -lm -o "$bin"
files=("$BENCH_CORPUS"/fhir-r4/synthea/*.json)
node_dir="$BENCH_DIR/node"
if [ ! -d "$node_dir/node_modules/fhir" ]; then
  mkdir -p "$node_dir"
  (cd "$node_dir" && npm install --silent --no-audit --no-fund fhir@4.12.0 >/dev/null 2>&1) || {
    "$bin" "$out" "${files[@]}" | grep -v '^RESULT'
    echo "FHIR.js: npm install failed; comparison skipped"; exit 0; }
fi
# The two sides take turns, three times, and each keeps its best: on a shared
# machine whose speed drifts, both then see the same conditions.
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }
cjx=0; cxj=0; crjx=0; crxj=0; jjx=0; jxj=0; jrjx=0; jrxj=0
for round in 1 2 3; do
  cw=$("$bin" "$out" "${files[@]}")
  js=$(NODE_PATH="$node_dir/node_modules" node tools/bench/fhirjs-convert.js "$out" "${files[@]}")
  read -r _ a b c d <<<"$(echo "$cw" | grep '^RESULT')"
  cjx=$(best "$cjx" "$a"); cxj=$(best "$cxj" "$b"); crjx=$(best "$crjx" "$c"); crxj=$(best "$crxj" "$d")
  read -r _ a b c d <<<"$(echo "$js" | grep '^RESULT')"
  jjx=$(best "$jjx" "$a"); jxj=$(best "$jxj" "$b"); jrjx=$(best "$jrjx" "$c"); jrxj=$(best "$jrxj" "$d")
done
echo "$cw" | grep -v '^RESULT' | sed 's/^crosswalk json_to_xml.*(/files: (/'
awk -v a="$cjx" -v b="$crjx" -v c="$cxj" -v d="$crxj" 'BEGIN {
  printf "crosswalk  json_to_xml %6.1f MB/s %7.0f res/s;  xml_to_json %6.1f MB/s %7.0f res/s\n", a, b, c, d }'
awk -v a="$jjx" -v b="$jrjx" -v c="$jxj" -v d="$jrxj" 'BEGIN {
  printf "FHIR.js    json_to_xml %6.1f MB/s %7.0f res/s;  xml_to_json %6.1f MB/s %7.0f res/s\n", a, b, c, d }'
echo "$js" | grep '^node'
awk -v a="$crjx" -v b="$jrjx" -v c="$crxj" -v d="$jrxj" 'BEGIN {
  printf "ratio json_to_xml resources/s crosswalk/FHIR.js = %.1fx (target >= 20x)\n", a / b;
  printf "ratio xml_to_json resources/s crosswalk/FHIR.js = %.1fx (target >= 20x)\n", c / d }'
