#!/usr/bin/env bash
# Outbox delivery: store-and-forward records delivered per second to a real
# FHIR server by one gateway on SQLite, one gateway on PostgreSQL and two
# gateways on that one PostgreSQL database, all in this one run, with the
# default upstream.delivery_workers (4 per gateway).
#
# The upstream is the e2e tests' FHIR server (tests/upstream: Medplum's
# FhirRouter over its in-memory repository, behind a small node:http layer):
# the real FHIR server the delivery tests run against, whose ledger
# (/_admin/stats, /_admin/count) shows what arrived. It runs one FHIR request
# at a time, so its own rate, measured alone in this run with wrk at the
# gateways' number of connections, is the ceiling of any delivery figure.
# A second round adds an answer time to every PUT (the server's delay fault,
# waited before its one-at-a-time queue), standing for an upstream across a
# network: there delivery waits on the answer and the workers of one or two
# gateways overlap those waits.
#
# Each measure: a gateway whose upstream is unreachable writes the backlog
# (transaction Bundles of 100 Observations, unrelated to each other, so no
# ordering rule holds any back) and stops; the upstream is emptied and
# refuses every PUT (503, retried) while the gateways measured start against
# it; once all of them answer it takes PUTs again, and the rate is the
# records pending then over the time until none is. Then the exactly-once
# check: every PUT the upstream took created its Observation (201), one per
# record written, and it holds that many; no dead letter. A failed check
# stops the section (exit 1).
# PostgreSQL is Debian's (tools/deps.sh test), initdb'd into the bench
# directory on a free port with its default settings. Without node, npm's
# packages, PostgreSQL or wrk the section says so and is skipped (exit 0).
# docs/scaling.md and docs/delivery.md read these figures.
set -euo pipefail
command -v node >/dev/null || { echo "node missing: delivery section skipped (tools/deps.sh test)"; exit 0; }
command -v wrk >/dev/null || { echo "wrk missing: delivery section skipped (apt-get install wrk)"; exit 0; }
. "$(dirname "$0")/pg.sh"
bench_pg_find
[ -n "$pgbin" ] || { echo "PostgreSQL missing: delivery section skipped (tools/deps.sh test)"; exit 0; }
tests/upstream/install.sh >/dev/null 2>&1 || { echo "upstream test server: npm install failed; delivery section skipped"; exit 0; }
N=${DELIVERY_RECORDS:-1000}
LAT=${DELIVERY_LATENCY_MS:-20}
NL=${DELIVERY_RECORDS_LATENT:-500}
D=$(realpath "$BENCH_DIR")/delivery
rm -rf "$D"
bench_pg_prepare "$D"
cleanup() {
  # every process started, also in the measures' subshells, is in $D/pids
  [ -f "$D/pids" ] && while read -r p; do kill "$p" 2>/dev/null || true; done <"$D/pids"
  bench_pg_stop "$D"
}
trap cleanup EXIT
bench_pg_start "$D"
pgstore=",\"store\":{\"backend\":\"postgresql\",\"postgresql\":{\"conninfo\":\"$conninfo\"}}"

# the upstream: prints "listening 127.0.0.1:PORT" once ready
node tests/upstream/server.mjs --port 0 >"$D/upstream.out" 2>"$D/upstream.log" &
up_pid=$!
echo "$up_pid" >>"$D/pids"
for i in $(seq 1 300); do grep -q '^listening' "$D/upstream.out" && break; sleep 0.1; done
up=http://$(sed -n 's/^listening //p' "$D/upstream.out")
[ "$up" != http:// ] || { echo "upstream test server did not start: see $D/upstream.log"; exit 1; }
admin() { curl -sf -X "$1" -H 'Content-Type: application/json' ${3:+-d "$3"} "$up/_admin/$2"; }
latency() { [ "$1" = 0 ] || admin POST faults "{\"fault\":\"delay\",\"ms\":$1,\"count\":-1,\"method\":\"PUT\"}" >/dev/null; }
dead_port=$(free_port) # nothing listens there

# the upstream alone: PUTs of new Observations, as the gateways send them
cat >"$D/put.lua" <<'LUA'
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
local n = 0
function request()
  n = n + 1
  local id = "alone-" .. tid .. "-" .. n
  return wrk.format("PUT", "/fhir/R4/Observation/" .. id, {["Content-Type"] = "application/fhir+json"},
    '{"resourceType":"Observation","id":"' .. id .. '","status":"final","code":{"text":"delivered"},"valueInteger":1}')
end
LUA
alone() { # label connections latency-ms: the rate in R
  admin POST reset >/dev/null
  latency "$3"
  local r
  r=$(wrk -t2 -c"$2" -d3s -s "$D/put.lua" "$up/" 2>&1 | awk '/Requests\/sec/ {printf "%.0f", $2}')
  printf '%-36s %6s PUTs/s\n' "$1" "$r"
  R=$r
}

gw() { # name upstream-url store-json: starts a gateway (gw_port, gw_pid)
  gw_port=$(free_port)
  cat >"$D/$1.json" <<JSON
{"listen":"127.0.0.1:$gw_port","data_dir":"$D/$1-var","plugin_dir":"$CW_PLUGIN_DIR","log_level":"error",
 "audit":{"enabled":false},
 "upstream":{"base_url":"$2","routes":{"Observation":"store-and-forward"},"timeout_ms":120000,
  "retry_base_ms":20,"retry_max_ms":100,"connect_timeout_ms":200,"max_attempts":1000}$3}
JSON
  "$CW_BIN" serve -c "$D/$1.json" 2>>"$D/$1.log" &
  gw_pid=$!
  echo "$gw_pid" >>"$D/pids"
  for i in $(seq 1 600); do curl -sf -o /dev/null "http://127.0.0.1:$gw_port/healthz" && break; sleep 0.1; done
}
stop() { # pid: a gateway, stopped and no longer in $D/pids
  kill "$1"
  wait "$1" 2>/dev/null || true
  sed -i "/^$1\$/d" "$D/pids"
}
ticks() { # pids: their CPU time (user + system), in clock ticks
  local p t=0
  for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
  echo "$t"
}
pg_pids() { # the PostgreSQL server's processes (the postmaster and its children)
  local m
  m=$(head -1 "$D/pg/data/postmaster.pid")
  echo "$m" $(pgrep -P "$m")
}
outbox() { # port state: the number of records in that state
  curl -sf "http://127.0.0.1:$1/outbox?_count=1" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"
}
backlog() { # data-dir-name store-json records: written with the upstream unreachable
  gw "$1" "http://127.0.0.1:$dead_port/fhir/R4" "$2"
  python3 - "$gw_port" "$3" <<'PY'
import json, sys, urllib.request
port, n = int(sys.argv[1]), int(sys.argv[2])
obs = {"resourceType": "Observation", "status": "final", "code": {"text": "delivered"}, "valueInteger": 1}
for start in range(0, n, 100):
    entries = [{"resource": obs, "request": {"method": "POST", "url": "Observation"}} for _ in range(min(100, n - start))]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/fhir", method="POST",
                                 data=json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}).encode(),
                                 headers={"Content-Type": "application/fhir+json"})
    urllib.request.urlopen(req).read()
PY
  stop "$gw_pid"
}
measure() { # label data-dir-name gateways store-json records latency-ms: the rate in R
  backlog "$2" "$4" "$5"
  # the upstream refuses every PUT (503, retried) until all the gateways
  # measured answer, so that they start delivering together
  admin POST reset >/dev/null
  admin POST faults '{"fault":"status","status":503,"count":-1,"method":"PUT"}' >/dev/null
  local ports=() gpids=() k
  for k in $(seq 1 "$3"); do
    gw "$2" "$up/fhir/R4" "$4"
    ports+=("$gw_port")
    gpids+=("$gw_pid")
  done
  # timed from then: what is pending, until none is
  local t0 p0 r c0 c1
  p0=$(outbox "${ports[0]}" pending)
  admin DELETE faults >/dev/null
  latency "$6"
  c0="$(ticks "${gpids[@]}") $(ticks "$up_pid") $(ticks $(pg_pids))"
  t0=$(date +%s.%N)
  while [ "$(outbox "${ports[0]}" pending)" != 0 ]; do sleep 0.05; done
  r=$(awk -v n="$p0" -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.0f", n / (t1 - t0) }')
  c1="$(ticks "${gpids[@]}") $(ticks "$up_pid") $(ticks $(pg_pids))"
  # CPU per record: the gateways, the upstream, PostgreSQL (when used)
  local cpu
  cpu=$(awk -v a="$c0" -v b="$c1" -v n="$p0" -v hz="$(getconf CLK_TCK)" -v pg="$4" 'BEGIN {
    split(a, x); split(b, y); f = 1000 / hz / n
    printf "CPU ms/record: gateway %.2f, upstream %.2f", (y[1] - x[1]) * f, (y[2] - x[2]) * f
    if (pg != "") printf ", PostgreSQL %.2f", (y[3] - x[3]) * f }')
  local dead stats
  dead=$(outbox "${ports[0]}" dead)
  stats=$(admin GET stats)
  stats+=$'\n'$(admin GET "count?type=Observation")
  for pid in "${gpids[@]}"; do stop "$pid"; done
  # every PUT but the refused ones created its Observation, one per record
  local check
  check=$(python3 -c '
import json, sys
n, dead = int(sys.argv[1]), int(sys.argv[2])
stats, count = (json.loads(line) for line in sys.stdin.read().splitlines())
answers = stats["responses"]
puts, created, refused = stats["received"].get("PUT", 0), answers.get("201", 0), answers.get("503", 0)
held = count["count"]
ok = (created == n and held == n and dead == 0 and puts == created + refused and stats["total"] == puts
      and set(answers) <= {"201", "503"})
print(("exactly once" if ok else "FAILED") + f": {created} PUTs created, {held} held, {dead} dead, of {n}"
      + f" ({refused} refused before the start)")
' "$5" "$dead" <<<"$stats")
  printf '%-36s %6s records/s (%s pending at the start; %s; %s)\n' "$1" "$r" "$p0" "$cpu" "$check"
  case $check in exactly*) ;; *) exit 1 ;; esac
  R=$r
}

echo "upstream: tests/upstream (Medplum FhirRouter, in memory, one request at a time)"
echo "backlog of $N Observations each; the gateways' 4 delivery workers each"
alone "upstream alone, warming up" 4 0 >/dev/null
alone "upstream alone, 4 connections" 4 0
u4=$R
alone "upstream alone, 8 connections" 8 0
u8=$R
measure "SQLite, one gateway" sqlite 1 "" "$N" 0
s1=$R
measure "PostgreSQL, one gateway" pg 1 "$pgstore" "$N" 0
p1=$R
measure "PostgreSQL, two gateways" pg 2 "$pgstore" "$N" 0
p2=$R
echo "with a ${LAT} ms answer time for every PUT, backlog of $NL"
alone "upstream alone, 4 connections" 4 "$LAT"
l4=$R
alone "upstream alone, 8 connections" 8 "$LAT"
l8=$R
measure "SQLite, one gateway" sqlite 1 "" "$NL" "$LAT"
ls1=$R
measure "PostgreSQL, one gateway" pg 1 "$pgstore" "$NL" "$LAT"
lp1=$R
measure "PostgreSQL, two gateways" pg 2 "$pgstore" "$NL" "$LAT"
lp2=$R
awk -v u4="$u4" -v u8="$u8" -v s1="$s1" -v p1="$p1" -v p2="$p2" \
  -v l4="$l4" -v l8="$l8" -v ls1="$ls1" -v lp1="$lp1" -v lp2="$lp2" 'BEGIN {
  printf "delivered / upstream alone: SQLite %.2f, PostgreSQL one gateway %.2f (of 4 connections), two gateways %.2f (of 8)\n", s1/u4, p1/u4, p2/u8;
  printf "two gateways / one on PostgreSQL: %.2f; PostgreSQL one gateway / SQLite: %.2f\n", p2/p1, p1/s1;
  printf "with the answer time: delivered / upstream alone: SQLite %.2f, PostgreSQL one %.2f, two %.2f; two / one %.2f\n", ls1/l4, lp1/l4, lp2/l8, lp2/lp1 }'
