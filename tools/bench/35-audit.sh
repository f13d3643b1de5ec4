#!/usr/bin/env bash
# The access record's cost (docs/audit.md): the same read with wrk at 64
# connections on three gateways in this one run — the record off, the
# default durable record (every answer waits for its AuditEvent's commit,
# AuditEvents of requests in flight at once sharing one fsync), and the
# batch record (audit.durability batch, written every flush_ms; the answer
# does not wait). Targets: durable audited reads at >= 0.25x the unaudited
# rate, p99 added <= 5 ms.
set -euo pipefail
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk"; exit 0; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
start() { # port name audit-json
  rm -rf "$BENCH_DIR/$2-var"
  cat > "$BENCH_DIR/$2.json" <<JSON
{"listen":"127.0.0.1:$1","data_dir":"$BENCH_DIR/$2-var","plugin_dir":"$CW_PLUGIN_DIR","log_level":"warn",
 "limits":{"max_connections_per_ip":256},"audit":$3}
JSON
  "$CW_BIN" serve -c "$BENCH_DIR/$2.json" 2>"$BENCH_DIR/$2.log" & pids+=($!)
}
start 18961 audit-off '{"enabled":false}'
start 18962 audit-durable '{"enabled":true}'
start 18963 audit-batch '{"enabled":true,"durability":"batch","flush_ms":50}'
for port in 18961 18962 18963; do
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/healthz >/dev/null && break; sleep 0.1; done
  curl -sf -XPUT -H 'Content-Type: application/fhir+json' http://127.0.0.1:$port/fhir/Patient/bench-1 \
    -d '{"resourceType":"Patient","id":"bench-1","name":[{"family":"Bench"}],"birthDate":"1980-01-01"}' >/dev/null
done
run() { # name url
  local out rps p50 p99
  out=$(wrk -t2 -c64 -d5s --latency "$2" 2>&1)
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  printf '%-40s %10s req/s   p50 %-8s p99 %s\n' "$1" "$rps" "$p50" "$p99" >&2
  echo "$rps $p99"
}
ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) print v/1000; else if (v ~ /ms$/) print v+0; else if (v ~ /s$/) print v*1000; else print v }'; }
read -r off offp <<<"$(run "read, record off (64 conn)" http://127.0.0.1:18961/fhir/Patient/bench-1)"
read -r dur durp <<<"$(run "read, durable record (64 conn)" http://127.0.0.1:18962/fhir/Patient/bench-1)"
read -r bat batp <<<"$(run "read, batch record (64 conn)" http://127.0.0.1:18963/fhir/Patient/bench-1)"
records=$(curl -sf "http://127.0.0.1:18962/fhir/AuditEvent?_summary=count" | sed -n 's/.*"total":\([0-9]*\).*/\1/p')
awk -v o="$off" -v d="$dur" -v b="$bat" -v op="$(ms "$offp")" -v dp="$(ms "$durp")" -v bp="$(ms "$batp")" -v n="$records" 'BEGIN {
  printf "audited reads (durable) / unaudited: %.2f (target >= 0.25), p99 added %.3f ms (target <= 5 ms); %s records written\n", d/o, dp-op, n;
  printf "audited reads (batch) / unaudited: %.2f, p99 added %.3f ms\n", b/o, bp-op }'
