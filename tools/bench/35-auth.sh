#!/usr/bin/env bash
# Authentication's cost, all in this one run: the same read on a gateway
# without auth and on one with auth (a client made by `crosswalk client
# new`, one token got by `crosswalk token` and reused for every request, as
# a client does: it is verified once, then found in the verified-token
# cache), with wrk on 127.0.0.1; the ratio is the authenticated read over
# the unauthenticated one (target: at least 0.8). On a machine shared with
# other work the rates move with its load, so the CPU time each gateway
# spent per answered request (from /proc, over all three rounds) is given
# too, and its ratio: the rate ratio a machine busy with nothing else would
# show when the gateways are CPU-bound. Then token requests:
# `crosswalk token` end to end (process start, discovery, signing the
# assertion, the endpoint's checks, the durable jti record and the token's
# signature), two at a time, against a third gateway whose request log gives
# the endpoint's own time per request (median and the rate it allows).
set -euo pipefail
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk"; exit 0; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
rm -rf "$BENCH_DIR/open-var" "$BENCH_DIR/auth-var" "$BENCH_DIR/tok-var" "$BENCH_DIR/auth-keys"
mkdir -p "$BENCH_DIR/auth-keys"
"$CW_BIN" client new bench --dir "$BENCH_DIR/auth-keys" --scopes 'system/*.cruds' --url http://127.0.0.1:18952 \
  >"$BENCH_DIR/auth-keys/printed.txt"
entry=$(grep '^{"client_id"' "$BENCH_DIR/auth-keys/printed.txt")
cat > "$BENCH_DIR/open.json" <<JSON
{"listen":"127.0.0.1:18951","data_dir":"$BENCH_DIR/open-var","plugin_dir":"$CW_PLUGIN_DIR","log_level":"warn"}
JSON
cat > "$BENCH_DIR/auth.json" <<JSON
{"listen":"127.0.0.1:18952","data_dir":"$BENCH_DIR/auth-var","plugin_dir":"$CW_PLUGIN_DIR","log_level":"warn",
 "auth":{"token_lifetime_s":3600,"clients":[$entry]}}
JSON
cat > "$BENCH_DIR/tok.json" <<JSON
{"listen":"127.0.0.1:18953","data_dir":"$BENCH_DIR/tok-var","plugin_dir":"$CW_PLUGIN_DIR","log_level":"info",
 "auth":{"clients":[$entry]}}
JSON
"$CW_BIN" serve -c "$BENCH_DIR/open.json" 2>"$BENCH_DIR/open.log" & pids+=($!)
"$CW_BIN" serve -c "$BENCH_DIR/tok.json" 2>"$BENCH_DIR/tok.log" & pids+=($!)
"$CW_BIN" serve -c "$BENCH_DIR/auth.json" 2>"$BENCH_DIR/auth.log" & pids+=($!)
for port in 18951 18952 18953; do
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/healthz >/dev/null && break; sleep 0.1; done
done
tok=$("$CW_BIN" token --client bench --key "$BENCH_DIR/auth-keys/bench.pem" --url http://127.0.0.1:18952)
H='Content-Type: application/fhir+json'
P='{"resourceType":"Patient","id":"bench-1","identifier":[{"system":"urn:bench","value":"1"}],"name":[{"family":"Bench"}],"birthDate":"1980-01-01"}'
curl -sf -XPUT -H "$H" http://127.0.0.1:18951/fhir/Patient/bench-1 -d "$P" >/dev/null
curl -sf -XPUT -H "$H" -H "Authorization: Bearer $tok" http://127.0.0.1:18952/fhir/Patient/bench-1 -d "$P" >/dev/null
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # user + system time of a process
run() { # name pid url [header]: prints "rate requests cpu-ticks"
  local out rps p50 p99 n c0 c1
  c0=$(cpu_ticks "$2")
  if [ $# -gt 3 ]; then out=$(wrk -t2 -c32 -d5s --latency -H "$4" "$3" 2>&1); else out=$(wrk -t2 -c32 -d5s --latency "$3" 2>&1); fi
  c1=$(cpu_ticks "$2")
  grep -q 'Non-2xx' <<<"$out" && { echo "$1: some answers were not 2xx" >&2; }
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  printf '%-44s %10s req/s   p50 %-8s p99 %s\n' "$1" "$rps" "$p50" "$p99" >&2
  echo "$rps $n $((c1 - c0))"
}
# alternated three times, the best rate of each (the machine may be shared)
# and the CPU time over all of them
o=0 a=0 on=0 oc=0 an=0 ac=0
for _ in 1 2 3; do
  read -r x n c < <(run "read, no auth" "${pids[0]}" http://127.0.0.1:18951/fhir/Patient/bench-1)
  o=$(awk -v x="$x" -v o="$o" 'BEGIN { print (x > o ? x : o) }'); on=$((on + n)); oc=$((oc + c))
  read -r x n c < <(run "read, bearer token (reused)" "${pids[2]}" http://127.0.0.1:18952/fhir/Patient/bench-1 "Authorization: Bearer $tok")
  a=$(awk -v x="$x" -v a="$a" 'BEGIN { print (x > a ? x : a) }'); an=$((an + n)); ac=$((ac + c))
done
awk -v o="$o" -v a="$a" 'BEGIN { printf "best of 3: no auth %.0f req/s, bearer %.0f req/s; ratio authenticated / unauthenticated: %.2f (target >= 0.80)\n", o, a, a/o }'
awk -v on="$on" -v oc="$oc" -v an="$an" -v ac="$ac" -v hz="$(getconf CLK_TCK)" 'BEGIN {
  po = oc * 1000 / hz / on; pa = ac * 1000 / hz / an
  printf "gateway CPU per read: no auth %.3f ms, bearer %.3f ms; ratio unauthenticated / authenticated: %.2f (the rate ratio when CPU-bound)\n", po, pa, po / pa }'
n=200
start=$(date +%s.%N)
seq "$n" | xargs -P2 -I{} "$CW_BIN" token --client bench --key "$BENCH_DIR/auth-keys/bench.pem" \
  --url http://127.0.0.1:18953 >/dev/null
end=$(date +%s.%N)
awk -v n="$n" -v s="$start" -v e="$end" 'BEGIN { printf "token requests (crosswalk token end to end, 2 at a time): %d in %.2f s, %.0f/s\n", n, e-s, n/(e-s) }'
grep '"route":"/auth/token"' "$BENCH_DIR/tok.log" | grep -o '"duration_ms":"[0-9.]*"' | grep -o '[0-9.]*' | sort -n |
  awk '{ d[NR] = $1 } END { m = d[int((NR + 1) / 2)]; printf "token endpoint, its own time: median %.2f ms over %d requests (%.0f/s per worker thread)\n", m, NR, 1000 / m }'
