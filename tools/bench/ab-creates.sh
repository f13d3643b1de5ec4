#!/usr/bin/env bash
# A/B of durable creates between builds, in one sitting: each tree's
# gateway (the default configuration's threads, its own store, audit off, as
# 30-rest's "default threads" line) gets wrk rounds of small Observations
# posted with Prefer: return=minimal, the builds alternating, so all see the
# same machine. Per round: creates/s, the largest write-ahead log seen (the
# file, sampled every 0.1 s) and the checkpointer's rounds (the gateway's
# /metrics, 0 for a build without it), and per create the gateway's CPU time
# and the bytes it had the disk write (/proc: less sensitive to a busy machine
# than the rate). The load average is printed per round.
#   [ROUNDS=3] [CONNS=32] tools/bench/ab-creates.sh TREE TREE...
# A tree is a built checkout (bin/crosswalk, lib/crosswalk/plugins). Not a
# section of make bench (it needs two builds); run it from any directory.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: [ROUNDS=3] [CONNS=32] $0 TREE TREE..." >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 2; }
trees=()
for t in "$@"; do trees+=("$(cd "$t" && pwd)"); done
rounds=${ROUNDS:-3}
conns=${CONNS:-32}
dir=$(mktemp -d /tmp/cw-ab-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ports=()
for i in "${!trees[@]}"; do
  port=$(free_port)
  ports+=("$port")
  cat > "$dir/gw$i.json" <<JSON
{"listen":"127.0.0.1:$port","data_dir":"$dir/var$i","plugin_dir":"${trees[$i]}/lib/crosswalk/plugins","log_level":"warn","audit":{"enabled":false}}
JSON
  "${trees[$i]}/bin/crosswalk" serve -c "$dir/gw$i.json" 2>"$dir/gw$i.log" & pids+=($!)
done
H='Content-Type: application/fhir+json'
for i in "${!trees[@]}"; do
  for _ in $(seq 1 50); do
    curl -sf -o /dev/null "http://127.0.0.1:${ports[$i]}/fhir/metadata" && break
    sleep 0.1
  done
  curl -sf -XPUT -H "$H" "http://127.0.0.1:${ports[$i]}/fhir/Patient/bench-1" \
    -d '{"resourceType":"Patient","id":"bench-1","name":[{"family":"Bench"}]}' >/dev/null
done
create_lua="$(cd "$(dirname "$0")" && pwd)/create-minimal.lua"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
disk_bytes() { awk '$1=="write_bytes:" {print $2}' "/proc/$1/io"; }
ckpts() {
  curl -sf "http://127.0.0.1:$1/metrics" | awk '$1=="crosswalk_store_checkpoints_total" {n=$2} END {print n+0}'
}
tick=$(getconf CLK_TCK)
printf '%-5s %-12s %10s %9s %11s %12s %12s  %s\n' round build creates/s "log MB" checkpoints "CPU us/op" "disk B/op" load
# each round starts with the next build, so none always runs first
order=("${!trees[@]}")
for r in $(seq 1 "$rounds"); do
  for k in "${!order[@]}"; do
    i=${order[$(((k + r - 1) % ${#order[@]}))]}
    wal="$dir/var$i/store.db-wal"
    c0=$(ckpts "${ports[$i]}")
    t0=$(cpu_ticks "${pids[$i]}")
    b0=$(disk_bytes "${pids[$i]}")
    echo 0 > "$dir/max$i"
    (max=0; while :; do s=$(stat -c %s "$wal" 2>/dev/null || echo 0); [ "$s" -gt "$max" ] && max=$s && echo "$max" > "$dir/max$i"; sleep 0.1; done) &
    sampler=$!
    out=$(wrk -t2 -c"$conns" -d5s -s "$create_lua" "http://127.0.0.1:${ports[$i]}/fhir/Observation" 2>&1)
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    c1=$(ckpts "${ports[$i]}")
    t1=$(cpu_ticks "${pids[$i]}")
    b1=$(disk_bytes "${pids[$i]}")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    n=$(awk -v r="$rps" 'BEGIN {n = r * 5; print (n > 0 ? n : 1)}')
    printf '%-5s %-12s %10s %9.1f %11s %12.0f %12.0f  %s%s\n' "$r" "$(basename "${trees[$i]}")" "$rps" \
      "$(awk -v b="$(cat "$dir/max$i")" 'BEGIN {print b/1048576}')" "$((c1 - c0))" \
      "$(awk -v t="$((t1 - t0))" -v k="$tick" -v n="$n" 'BEGIN {print t * 1e6 / k / n}')" \
      "$(awk -v b="$((b1 - b0))" -v n="$n" 'BEGIN {print b / n}')" \
      "$(cut -d' ' -f1-3 /proc/loadavg)" "${bad:+  non-2xx $bad}"
  done
done
