#!/usr/bin/env bash
# A/B of durable creates on PostgreSQL between builds, in one sitting: one
# PostgreSQL (Debian's, initdb'd with its default settings) and, per tree,
# two gateways on it (audit off, as 45-scale). Each round runs every tree
# in turn (the order rotating): one gateway with wrk at 32 connections, then
# both with 16 connections each (two wrk at once). Per line: creates/s, and
# per create the gateways' CPU time and the PostgreSQL server processes' CPU
# time (/proc, user+system), WAL flushes per create (pg_stat_wal's
# wal_sync: one per group committed, fewer when commits share a flush) and
# WAL bytes per create (pg_current_wal_lsn); the load average.
# DURING, when set, is a shell command run beside each measured run (its
# $1 the number of gateways, $2 the gateways' PIDs and $3 the PostgreSQL
# server's, comma-separated: e.g. perf record -p "$3"; BENCH_PG the
# database's conninfo).
#   [ROUNDS=3] [SECS=5] [DURING=cmd] tools/bench/ab-pg-creates.sh TREE TREE...
# A tree is a built checkout (bin/crosswalk, lib/crosswalk/plugins). Not a
# section of make bench (it needs two builds).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: [ROUNDS=3] [SECS=5] $0 TREE..." >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 2; }
. "$(dirname "$0")/pg.sh"
bench_pg_find
[ -n "$pgbin" ] || { echo "PostgreSQL missing" >&2; exit 2; }
bench_ab_init /tmp/cw-abpg-XXXXXX "$@"
# PGOPTS: more server settings ("-c commit_delay=200 ...")
# shellcheck disable=SC2086
bench_pg_start "$dir" ${PGOPTS:-}
psql_() { "$pgbin/psql" -X -q -At -h 127.0.0.1 -p "$port" -U cw -d postgres -c "$1"; }
export BENCH_PG="$conninfo" # for DURING
# ports[tree*2 + g], gpids likewise
ports=()
gpids=()
for i in "${!trees[@]}"; do
  for g in 0 1; do
    p=$(free_port)
    ports+=("$p")
    cat >"$dir/gw$i-$g.json" <<JSON
{"listen":"127.0.0.1:$p","data_dir":"$dir/var$i-$g","plugin_dir":"${trees[$i]}/lib/crosswalk/plugins","log_level":"warn","audit":{"enabled":false},"store":{"backend":"postgresql","postgresql":{"conninfo":"$conninfo"}}}
JSON
    "${trees[$i]}/bin/crosswalk" serve -c "$dir/gw$i-$g.json" 2>"$dir/gw$i-$g.log" &
    pids+=($!)
    gpids+=($!)
    for _ in $(seq 1 200); do curl -sf -o /dev/null "http://127.0.0.1:$p/healthz" && break; sleep 0.1; done
  done
done
H='Content-Type: application/fhir+json'
curl -sf -XPUT -H "$H" "http://127.0.0.1:${ports[0]}/fhir/Patient/bench-1" \
  -d '{"resourceType":"Patient","id":"bench-1","name":[{"family":"Bench"}]}' >/dev/null
create_lua="$(cd "$(dirname "$0")" && pwd)/create-minimal.lua"
tick=$(getconf CLK_TCK)
pg_cpu() { bench_ticks $(bench_pg_pids "$dir"); }
syncs() { psql_ "SELECT wal_sync FROM pg_stat_wal"; }
wal() { psql_ "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"; }
rate() { awk '/Requests\/sec/ {print $2}' "$1"; }
printf '%-3s %-14s %-4s %10s %13s %13s %10s %10s  %s\n' rnd build gws creates/s "gw CPU us/op" "pg CPU us/op" syncs/op "WAL B/op" load
order=("${!trees[@]}")
for r in $(seq 1 "$rounds"); do
  for k in "${!order[@]}"; do
    i=${order[$(((k + r - 1) % ${#order[@]}))]}
    for n in 1 2; do
      a=${ports[$((i * 2))]} b=${ports[$((i * 2 + 1))]}
      gp=("${gpids[$((i * 2))]}" "${gpids[$((i * 2 + 1))]}")
      g0=$(bench_ticks "${gp[@]}") p0=$(pg_cpu) c0=$(syncs) w0=$(wal)
      dpid=
      if [ -n "${DURING:-}" ]; then bash -c "$DURING" during "$n" "$(IFS=,; echo "${gp[*]}")" \
        "$(bench_pg_pids "$dir" | paste -sd,)" >/dev/null 2>&1 & dpid=$!; fi
      if [ "$n" = 1 ]; then
        wrk -t2 -c32 -d"${secs}s" -s "$create_lua" "http://127.0.0.1:$a/fhir/Observation" >"$dir/w1" 2>&1
        echo "Requests/sec: 0" >"$dir/w2"
      else
        wrk -t1 -c16 -d"${secs}s" -s "$create_lua" "http://127.0.0.1:$a/fhir/Observation" >"$dir/w1" 2>&1 &
        w=$!
        wrk -t1 -c16 -d"${secs}s" -s "$create_lua" "http://127.0.0.1:$b/fhir/Observation" >"$dir/w2" 2>&1
        wait $w
      fi
      g1=$(bench_ticks "${gp[@]}") p1=$(pg_cpu) c1=$(syncs) w1=$(wal)
      [ -z "$dpid" ] || wait "$dpid" || true
      bad=$(cat "$dir/w1" "$dir/w2" | awk '/Non-2xx/ {s += $NF} END {print s + 0}')
      rps=$(awk -v a="$(rate "$dir/w1")" -v b="$(rate "$dir/w2")" 'BEGIN {printf "%.0f", a + b}')
      nops=$(awk -v r="$rps" -v s="$secs" 'BEGIN {n = r * s; print (n > 0 ? n : 1)}')
      printf '%-3s %-14s %-4s %10s %13.0f %13.0f %10.3f %10.0f  %s%s\n' "$r" "$(basename "${trees[$i]}")" "$n" "$rps" \
        "$(awk -v t=$((g1 - g0)) -v k="$tick" -v n="$nops" 'BEGIN {print t * 1e6 / k / n}')" \
        "$(awk -v t=$((p1 - p0)) -v k="$tick" -v n="$nops" 'BEGIN {print t * 1e6 / k / n}')" \
        "$(awk -v c=$((c1 - c0)) -v n="$nops" 'BEGIN {print c / n}')" \
        "$(awk -v c=$((w1 - w0)) -v n="$nops" 'BEGIN {print c / n}')" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" "$([ "$bad" = 0 ] || echo "  non-2xx $bad")"
    done
  done
done
