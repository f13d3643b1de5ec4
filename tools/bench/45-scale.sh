#!/usr/bin/env bash
# Scale-out: durable creates and reads per second through one gateway on the
# embedded SQLite store, through one gateway on PostgreSQL, and through two
# gateways on that one PostgreSQL database (two wrk runs at once, 16
# connections each, their rates added) — all in this one run, printed as
# ratios to SQLite's. PostgreSQL is Debian's (tools/deps.sh test), initdb'd
# into the bench directory on a free port with its default settings
# (synchronous_commit on: every acknowledged write is flushed). The gateways
# run without the access record (audit.enabled false). docs/scaling.md reads
# these figures.
set -euo pipefail
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk"; exit 0; }
. "$(dirname "$0")/pg.sh"
bench_pg_find
[ -n "$pgbin" ] || { echo "PostgreSQL missing (no /usr/lib/postgresql/*/bin): every line of this section is skipped; tools/deps.sh test installs it"; exit 0; }
D=$(realpath "$BENCH_DIR")/scale
rm -rf "$D"
bench_pg_prepare "$D"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bench_pg_stop "$D"
}
trap cleanup EXIT
bench_pg_start "$D"
# the gateways' ports are free ones too: other runs may share the machine
ps=$(free_port) p1=$(free_port) p2=$(free_port)
gw() { # name port extra
  cat >"$D/$1.json" <<JSON
{"listen":"127.0.0.1:$2","data_dir":"$D/$1-var","plugin_dir":"$CW_PLUGIN_DIR","log_level":"warn","audit":{"enabled":false}$3}
JSON
  "$CW_BIN" serve -c "$D/$1.json" 2>"$D/$1.log" &
  pids+=($!)
}
pgstore=",\"store\":{\"backend\":\"postgresql\",\"postgresql\":{\"conninfo\":\"$conninfo\"}}"
gw sqlite "$ps" ""
gw pg1 "$p1" "$pgstore"
gw pg2 "$p2" "$pgstore"
for p in "$ps" "$p1" "$p2"; do
  for i in $(seq 1 200); do curl -sf -o /dev/null http://127.0.0.1:$p/healthz && break; sleep 0.1; done
done
H='Content-Type: application/fhir+json'
for p in "$ps" "$p1"; do
  curl -sf -XPUT -H "$H" http://127.0.0.1:$p/fhir/Patient/bench-1 \
    -d '{"resourceType":"Patient","id":"bench-1","name":[{"family":"Bench"}],"birthDate":"1980-01-01"}' >/dev/null
done
create_lua="$(cd "$(dirname "$0")" && pwd)/create-minimal.lua"
rate() { awk '/Requests\/sec/ {print $2}'; }
one() { # name url [script]
  local r
  r=$(wrk -t2 -c32 -d5s ${3:+-s "$3"} "$2" 2>&1 | rate)
  printf '%-52s %10s req/s\n' "$1" "$r" >&2
  echo "$r"
}
two() { # name path [script]: two wrk at once, one per PostgreSQL gateway
  local a b
  wrk -t1 -c16 -d5s ${3:+-s "$3"} "http://127.0.0.1:$p1$2" >"$D/w1.out" 2>&1 &
  local w1=$!
  wrk -t1 -c16 -d5s ${3:+-s "$3"} "http://127.0.0.1:$p2$2" >"$D/w2.out" 2>&1
  wait $w1
  a=$(rate <"$D/w1.out")
  b=$(rate <"$D/w2.out")
  local r
  r=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a + b }')
  printf '%-52s %10s req/s  (%s + %s)\n' "$1" "$r" "$a" "$b" >&2
  echo "$r"
}
sc=$(one "create Observation, SQLite, one gateway" http://127.0.0.1:$ps/fhir/Observation "$create_lua")
pc1=$(one "create Observation, PostgreSQL, one gateway" http://127.0.0.1:$p1/fhir/Observation "$create_lua")
pc2=$(two "create Observation, PostgreSQL, two gateways" /fhir/Observation "$create_lua")
sr=$(one "read Patient/bench-1, SQLite, one gateway" http://127.0.0.1:$ps/fhir/Patient/bench-1)
pr1=$(one "read Patient/bench-1, PostgreSQL, one gateway" http://127.0.0.1:$p1/fhir/Patient/bench-1)
pr2=$(two "read Patient/bench-1, PostgreSQL, two gateways" /fhir/Patient/bench-1)
awk -v sc="$sc" -v pc1="$pc1" -v pc2="$pc2" -v sr="$sr" -v pr1="$pr1" -v pr2="$pr2" 'BEGIN {
  printf "creates / SQLite creates: PostgreSQL one gateway %.2f, two gateways %.2f (target for two >= 1.00)\n", pc1/sc, pc2/sc;
  printf "reads / SQLite reads: PostgreSQL one gateway %.2f, two gateways %.2f, per gateway %.2f (target per gateway >= 0.50)\n", pr1/sr, pr2/sr, pr2/sr/2;
  printf "two gateways / one on PostgreSQL: creates %.2f, reads %.2f\n", pc2/pc1, pr2/pr1 }'
