#!/usr/bin/env bash
# HTTP front door against the ceiling (a minimal libmicrohttpd server with a
# fixed body), with wrk on 127.0.0.1: requests/s and latency, and the ratio.
set -euo pipefail
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq wrk >/dev/null; else echo "wrk missing: apt-get install wrk"; exit 0; fi
fi
cc -std=c11 -D_GNU_SOURCE -O2 tools/bench/ceiling.c $(pkg-config --cflags --libs libmicrohttpd) -o "$BENCH_DIR/ceiling"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
"$BENCH_DIR/ceiling" 18931 & pids+=($!)
cat > "$BENCH_DIR/gw.json" <<JSON
{"listen":"127.0.0.1:18932","data_dir":"$BENCH_DIR/var","plugin_dir":"$CW_PLUGIN_DIR","log_level":"warn"}
JSON
"$CW_BIN" serve -c "$BENCH_DIR/gw.json" 2>"$BENCH_DIR/gw.log" & pids+=($!)
sleep 1
run() { # name url
  local out rps p50 p99
  out=$(wrk -t2 -c32 -d5s --latency "$2" 2>&1)
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  printf '%-34s %10s req/s   p50 %-8s p99 %s\n' "$1" "$rps" "$p50" "$p99" >&2
  echo "$rps"
}
c=$(run "ceiling (fixed body)" http://127.0.0.1:18931/)
h=$(run "gateway GET /healthz" http://127.0.0.1:18932/healthz)
m=$(run "gateway GET /fhir/metadata" http://127.0.0.1:18932/fhir/metadata)
awk -v c="$c" -v h="$h" -v m="$m" 'BEGIN { printf "ratio /healthz / ceiling: %.2f   ratio /fhir/metadata / ceiling: %.2f\n", h/c, m/c }'
