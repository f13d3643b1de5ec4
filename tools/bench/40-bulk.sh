#!/usr/bin/env bash
# Bulk export ($export): resources per second from kick-off to the finished
# manifest, on a store of 200,000 resources (Patients and Observations, loaded
# in transactions of 1,000), and the gateway's peak resident memory during an
# export — measured on a freshly started gateway, once with a tenth of the
# store and once with all of it, so the two peaks show whether memory follows
# the store's size. Target: >= 50,000 resources/s; memory flat.
set -euo pipefail
N=${BULK_N:-200000}
D="$BENCH_DIR/bulk-var"
rm -rf "$D"
cat > "$BENCH_DIR/bulk.json" <<JSON
{"listen":"127.0.0.1:18951","data_dir":"$D","plugin_dir":"$CW_PLUGIN_DIR","log_level":"info"}
JSON
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; }
trap cleanup EXIT
B=http://127.0.0.1:18951/fhir
start() {
  "$CW_BIN" serve -c "$BENCH_DIR/bulk.json" 2>"$BENCH_DIR/bulk.log" & pid=$!
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18951/healthz >/dev/null && return; sleep 0.05; done
  echo "the gateway did not start"; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
load() { # from to: resources numbered from..to-1, every tenth a Patient
  local b n
  for ((b = $1; b < $2; b += 1000)); do
    {
      printf '{"resourceType":"Bundle","type":"transaction","entry":['
      for ((n = b; n < b + 1000; n++)); do
        [ "$n" -gt "$b" ] && printf ','
        if ((n % 10 == 0)); then
          printf '{"request":{"method":"PUT","url":"Patient/p%d"},"resource":{"resourceType":"Patient","id":"p%d","name":[{"family":"Bulk%d","given":["Ann"]}],"gender":"female","birthDate":"1970-01-01"}}' "$n" "$n" "$n"
        else
          printf '{"request":{"method":"POST","url":"Observation"},"resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}],"text":"Body weight"},"subject":{"reference":"Patient/p%d"},"effectiveDateTime":"2026-01-01T10:00:00Z","valueQuantity":{"value":%d.5,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}}}' $((n / 10 * 10)) $((n % 90 + 10))
        fi
      done
      printf ']}'
    } > "$BENCH_DIR/bulk-tx.json"
    curl -sf -XPOST -H 'Content-Type: application/fhir+json' "$B" --data-binary @"$BENCH_DIR/bulk-tx.json" >/dev/null
  done
}
export_once() { # label count
  local loc t0 t1 code
  t0=$(date +%s.%N)
  loc=$(curl -sf -D - -o /dev/null -H 'Prefer: respond-async' "$B/\$export" | tr -d '\r' | awk 'tolower($1)=="content-location:" {print $2}')
  while :; do
    code=$(curl -s -o "$BENCH_DIR/bulk-manifest.json" -w '%{http_code}' "$loc")
    [ "$code" = 200 ] && break
    [ "$code" = 202 ] || { echo "status $code"; cat "$BENCH_DIR/bulk-manifest.json"; exit 1; }
    sleep 0.02
  done
  t1=$(date +%s.%N)
  local got hwm
  # the loaded Patients and Observations must all be there; the store also
  # holds one Provenance and one AuditEvent per loading transaction, which
  # are exported too and counted in the rate
  local loaded all
  read -r loaded all < <(python3 -c 'import json,sys
o = json.load(open(sys.argv[1]))["output"]
print(sum(x["count"] for x in o if x["type"] in ("Patient", "Observation")), sum(x["count"] for x in o))' \
    "$BENCH_DIR/bulk-manifest.json")
  [ "$loaded" = "$2" ] || { echo "exported $loaded of the $2 loaded"; exit 1; }
  hwm=$(awk '/VmHWM/ {print $2}' /proc/"$pid"/status)
  curl -sf -XDELETE "$loc" >/dev/null
  awk -v l="$1" -v n="$all" -v a="$t0" -v b="$t1" -v h="$hwm" \
    'BEGIN { printf "%-34s %8d resources  %7.2f s  %9.0f resources/s  peak RSS %6.1f MB\n", l, n, b - a, n / (b - a), h / 1024 }'
}
start
load 0 $((N / 10))
stop; start
export_once "export, store of $((N / 10))" $((N / 10))
load $((N / 10)) "$N"
stop; start
export_once "export, store of $N" "$N"
stop
echo "target: >= 50000 resources/s, peak RSS the same for both stores"
