#!/usr/bin/env bash
# A/B of cached reads on PostgreSQL between builds, in one sitting: one
# PostgreSQL (initdb'd into a temporary directory, default settings, as
# 45-scale's) and, per tree, a gateway on SQLite and two gateways on that
# database (the default configuration's threads, audit off). Each round
# runs, per tree, the builds alternating so all see the same machine: 5 s
# of wrk reading one Patient through the SQLite gateway (32 connections),
# through one PostgreSQL gateway (32), then through both at once (16
# each). Per line: reads/s, and per read the gateways' CPU time and the
# PostgreSQL server's (/proc: less sensitive to a busy machine than the
# rate), with the load average.
#   [ROUNDS=3] [SECS=5] tools/bench/ab-pgreads.sh TREE TREE...
# A tree is a built checkout (bin/crosswalk, lib/crosswalk/plugins). Not a
# section of make bench (it needs two builds); run it from any directory.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: [ROUNDS=3] [SECS=5] $0 TREE TREE..." >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 2; }
. "$(dirname "$0")/pg.sh"
bench_pg_find
[ -n "$pgbin" ] || { echo "PostgreSQL missing (tools/deps.sh test installs it)" >&2; exit 2; }
bench_ab_init /tmp/cw-abr-XXXXXX "$@"
bench_pg_start "$dir"
pgstore=",\"store\":{\"backend\":\"postgresql\",\"postgresql\":{\"conninfo\":\"$conninfo\"}}"
# per tree: gateways s (SQLite), a and b (PostgreSQL)
declare -A gport gpid
for i in "${!trees[@]}"; do
  for g in s a b; do
    p=$(free_port)
    extra=""
    [ "$g" = s ] || extra=$pgstore
    cat > "$dir/gw$i$g.json" <<JSON
{"listen":"127.0.0.1:$p","data_dir":"$dir/var$i$g","plugin_dir":"${trees[$i]}/lib/crosswalk/plugins","log_level":"warn","audit":{"enabled":false}$extra}
JSON
    "${trees[$i]}/bin/crosswalk" serve -c "$dir/gw$i$g.json" 2>"$dir/gw$i$g.log" & pids+=($!)
    gport[$i$g]=$p
    gpid[$i$g]=$!
  done
done
H='Content-Type: application/fhir+json'
for k in "${!gport[@]}"; do
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:${gport[$k]}/healthz" && break; sleep 0.1; done
done
curl -sf -XPUT -H "$H" "http://127.0.0.1:${gport[0a]}/fhir/Patient/bench-1" \
  -d '{"resourceType":"Patient","id":"bench-1","name":[{"family":"Bench"}],"birthDate":"1980-01-01"}' >/dev/null
for i in "${!trees[@]}"; do
  curl -sf -XPUT -H "$H" "http://127.0.0.1:${gport[${i}s]}/fhir/Patient/bench-1" \
    -d '{"resourceType":"Patient","id":"bench-1","name":[{"family":"Bench"}],"birthDate":"1980-01-01"}' >/dev/null
done
pg_ticks() { bench_ticks $(bench_pg_pids "$dir"); }
rate() { awk '/Requests\/sec/ {s += $2} END {print s + 0}' "$@"; }
tick=$(getconf CLK_TCK)
line() { # round tree what rps gw-ticks pg-ticks
  awk -v r="$1" -v t="$2" -v w="$3" -v rps="$4" -v g="$5" -v p="$6" -v k="$tick" -v s="$secs" -v l="$(cut -d' ' -f1-3 /proc/loadavg)" \
    'BEGIN { n = rps * s; if (n < 1) n = 1;
      printf "%-5s %-14s %-8s %10.0f %10.1f %10.1f  %s\n", r, t, w, rps, g * 1e6 / k / n, p * 1e6 / k / n, l }'
}
printf '%-5s %-14s %-8s %10s %10s %10s  %s\n' round build what reads/s "gw us/op" "pg us/op" load
order=("${!trees[@]}")
for r in $(seq 1 "$rounds"); do
  for k in "${!order[@]}"; do
    i=${order[$(((k + r - 1) % ${#order[@]}))]}
    name=$(basename "${trees[$i]}")
    url=/fhir/Patient/bench-1
    # SQLite, one gateway
    g0=$(bench_ticks "${gpid[${i}s]}")
    wrk -t2 -c32 -d"${secs}s" "http://127.0.0.1:${gport[${i}s]}$url" > "$dir/w0.out" 2>&1
    line "$r" "$name" sqlite "$(rate "$dir/w0.out")" $(($(bench_ticks "${gpid[${i}s]}") - g0)) 0
    # PostgreSQL, one gateway
    g0=$(bench_ticks "${gpid[${i}a]}")
    p0=$(pg_ticks)
    wrk -t2 -c32 -d"${secs}s" "http://127.0.0.1:${gport[${i}a]}$url" > "$dir/w1.out" 2>&1
    line "$r" "$name" pg-one "$(rate "$dir/w1.out")" $(($(bench_ticks "${gpid[${i}a]}") - g0)) $(($(pg_ticks) - p0))
    # PostgreSQL, two gateways at once
    g0=$(bench_ticks "${gpid[${i}a]}" "${gpid[${i}b]}")
    p0=$(pg_ticks)
    wrk -t1 -c16 -d"${secs}s" "http://127.0.0.1:${gport[${i}a]}$url" > "$dir/w1.out" 2>&1 &
    w=$!
    wrk -t1 -c16 -d"${secs}s" "http://127.0.0.1:${gport[${i}b]}$url" > "$dir/w2.out" 2>&1
    wait $w
    line "$r" "$name" pg-two "$(rate "$dir/w1.out" "$dir/w2.out")" \
      $(($(bench_ticks "${gpid[${i}a]}" "${gpid[${i}b]}") - g0)) $(($(pg_ticks) - p0))
  done
done
