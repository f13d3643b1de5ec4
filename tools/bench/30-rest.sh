#!/usr/bin/env bash
# FHIR REST over the embedded store, and pass-through, with wrk on 127.0.0.1,
# beside the ceiling (a minimal libmicrohttpd server with a fixed body) and the
# upstream read directly — all in this one run. The upstream is a second
# Crosswalk on loopback serving from its own store (the Medplum upstream of the
# e2e tests is a Node process, far slower than either and so a poor yardstick
# for the gateway's added latency). Reads, searches and pass-through run on a
# gateway with the default configuration (one worker thread per core), whose
# reads of a current version come from its read cache after the first; the
# same read on a gateway with the cache off (limits.read_cache_bytes 0) shows
# what a read costs when it goes to SQLite. Durable creates run on the default
# gateway (one worker thread per core) and on one with 32 worker threads:
# writes are committed in groups by the store's committer (one fsync for all
# writes queued) while their requests wait without a worker thread, so a group
# can be as large as the number of requests in flight with either.
# These gateways run without the access record (audit.enabled false), so
# that they measure the gateway alone; 35-audit measures the record's cost.
set -euo pipefail
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk"; exit 0; }
cc -std=c11 -D_GNU_SOURCE -O2 tools/bench/ceiling.c $(pkg-config --cflags --libs libmicrohttpd) -o "$BENCH_DIR/ceiling"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
rm -rf "$BENCH_DIR/rest-var" "$BENCH_DIR/up-var" "$BENCH_DIR/write-var" "$BENCH_DIR/nocache-var" "$BENCH_DIR/write1-var"
"$BENCH_DIR/ceiling" 18941 & pids+=($!)
cat > "$BENCH_DIR/up.json" <<JSON
{"listen":"127.0.0.1:18943","data_dir":"$BENCH_DIR/up-var","plugin_dir":"$CW_PLUGIN_DIR","log_level":"warn"}
JSON
cat > "$BENCH_DIR/rest.json" <<JSON
{"listen":"127.0.0.1:18942","data_dir":"$BENCH_DIR/rest-var","plugin_dir":"$CW_PLUGIN_DIR","log_level":"warn","audit":{"enabled":false},
 "upstream":{"base_url":"http://127.0.0.1:18943/fhir","routes":{"Practitioner":"pass-through"}}}
JSON
"$CW_BIN" serve -c "$BENCH_DIR/up.json" 2>"$BENCH_DIR/up.log" & pids+=($!)
cat > "$BENCH_DIR/write.json" <<JSON
{"listen":"127.0.0.1:18944","data_dir":"$BENCH_DIR/write-var","plugin_dir":"$CW_PLUGIN_DIR","log_level":"warn","threads":32,"audit":{"enabled":false}}
JSON
cat > "$BENCH_DIR/write1.json" <<JSON
{"listen":"127.0.0.1:18946","data_dir":"$BENCH_DIR/write1-var","plugin_dir":"$CW_PLUGIN_DIR","log_level":"warn","audit":{"enabled":false}}
JSON
cat > "$BENCH_DIR/nocache.json" <<JSON
{"listen":"127.0.0.1:18945","data_dir":"$BENCH_DIR/nocache-var","plugin_dir":"$CW_PLUGIN_DIR","log_level":"warn",
 "limits":{"read_cache_bytes":0},"audit":{"enabled":false}}
JSON
"$CW_BIN" serve -c "$BENCH_DIR/rest.json" 2>"$BENCH_DIR/rest.log" & pids+=($!)
"$CW_BIN" serve -c "$BENCH_DIR/nocache.json" 2>"$BENCH_DIR/nocache.log" & pids+=($!)
"$CW_BIN" serve -c "$BENCH_DIR/write.json" 2>"$BENCH_DIR/write.log" & pids+=($!)
"$CW_BIN" serve -c "$BENCH_DIR/write1.json" 2>"$BENCH_DIR/write1.log" & pids+=($!)
# every gateway answering (a loaded machine starts them in more than a second)
for port in 18942 18943 18944 18945 18946; do
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/fhir/metadata" && break
    sleep 0.1
  done
done
H='Content-Type: application/fhir+json'
for port in 18942 18945; do
  curl -sf -XPUT -H "$H" http://127.0.0.1:$port/fhir/Patient/bench-1 \
    -d '{"resourceType":"Patient","id":"bench-1","identifier":[{"system":"urn:bench","value":"1"}],"name":[{"family":"Bench"}],"birthDate":"1980-01-01"}' >/dev/null
done
for i in $(seq 1 200); do
  curl -sf -XPOST -H "$H" http://127.0.0.1:18942/fhir/Observation \
    -d "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"b$i\"},\"subject\":{\"reference\":\"Patient/bench-1\"},\"valueInteger\":$i}" >/dev/null
done
# 20,000 more Observations over 100 other patients, so searches run on a
# store where the type has many resources (in transactions of 1,000)
for b in $(seq 0 19); do
  {
    printf '{"resourceType":"Bundle","type":"transaction","entry":['
    for i in $(seq 0 999); do
      n=$((b * 1000 + i))
      [ "$i" -gt 0 ] && printf ','
      printf '{"request":{"method":"POST","url":"Observation"},"resource":{"resourceType":"Observation","status":"final","code":{"text":"m%d"},"subject":{"reference":"Patient/many-%d"},"valueInteger":%d}}' "$n" $((n % 100)) "$n"
    done
    printf ']}'
  } > "$BENCH_DIR/tx.json"
  curl -sf -XPOST -H "$H" http://127.0.0.1:18942/fhir --data-binary @"$BENCH_DIR/tx.json" >/dev/null
done
curl -sf -XPUT -H "$H" http://127.0.0.1:18943/fhir/Practitioner/bench-p \
  -d '{"resourceType":"Practitioner","id":"bench-p","name":[{"family":"Up"}]}' >/dev/null
cat > "$BENCH_DIR/create.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/fhir+json"
wrk.body = '{"resourceType":"Observation","status":"final","code":{"text":"created"},"subject":{"reference":"Patient/bench-1"},"valueInteger":1}'
LUA
run() { # name url [script]
  local out rps p50 p99
  out=$(wrk -t2 -c32 -d5s --latency ${3:+-s "$3"} "$2" 2>&1)
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  printf '%-40s %10s req/s   p50 %-8s p99 %s\n' "$1" "$rps" "$p50" "$p99" >&2
  echo "$rps $p99"
}
ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) print v/1000; else if (v ~ /ms$/) print v+0; else if (v ~ /s$/) print v*1000; else print v }'; }
read -r c _ <<<"$(run "ceiling (fixed body)" http://127.0.0.1:18941/)"
read -r r _ <<<"$(run "read Patient/bench-1" http://127.0.0.1:18942/fhir/Patient/bench-1)"
read -r rn _ <<<"$(run "read Patient/bench-1 (read cache off)" http://127.0.0.1:18945/fhir/Patient/bench-1)"
read -r s _ <<<"$(run "search subject= (200 of 20,200), 10/page" "http://127.0.0.1:18942/fhir/Observation?subject=Patient/bench-1&_count=10")"
read -r w1 _ <<<"$(run "create Observation (durable, default threads)" http://127.0.0.1:18946/fhir/Observation "$BENCH_DIR/create.lua")"
read -r w _ <<<"$(run "create Observation (durable, 32 threads)" http://127.0.0.1:18944/fhir/Observation "$BENCH_DIR/create.lua")"
read -r u up99 <<<"$(run "upstream read (direct)" http://127.0.0.1:18943/fhir/Practitioner/bench-p)"
read -r p pp99 <<<"$(run "pass-through read via gateway" http://127.0.0.1:18942/fhir/Practitioner/bench-p)"
# Added latency is read at one request at a time: under 32 connections on two
# cores the gateway and the upstream also compete for the CPU, which measures
# the machine rather than the gateway.
run1() { # name url
  local out p50 p99
  out=$(wrk -t1 -c1 -d4s --latency "$2" 2>&1)
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  printf '%-40s %10s          p50 %-8s p99 %s\n' "$1 (1 conn)" "" "$p50" "$p99" >&2
  echo "$p99"
}
u1=$(run1 "upstream read (direct)" http://127.0.0.1:18943/fhir/Practitioner/bench-p)
p1=$(run1 "pass-through read via gateway" http://127.0.0.1:18942/fhir/Practitioner/bench-p)
awk -v c="$c" -v r="$r" -v rn="$rn" -v s="$s" -v w="$w" -v w1="$w1" -v u="$u" -v p="$p" -v a="$(ms "$up99")" -v b="$(ms "$pp99")" \
    -v a1="$(ms "$u1")" -v b1="$(ms "$p1")" 'BEGIN {
  printf "ratio read / ceiling: %.2f (target >= 0.50)   with the read cache off: %.2f   search / ceiling: %.2f\n", r/c, rn/c, s/c;
  printf "create: %.0f resources/s durable with the default threads (target >= 8000), %.0f with 32 threads\n", w1, w;
  printf "pass-through p99 added over the direct upstream read, one request at a time: %.3f ms (target < 1 ms)\n", b1-a1;
  printf "pass-through under 32 connections: p99 added %.3f ms, throughput ratio %.2f\n", b-a, p/u }'
