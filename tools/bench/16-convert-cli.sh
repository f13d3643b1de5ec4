#!/usr/bin/env bash
# Conversion on the path users run: `crosswalk convert FILE` text to text,
# JSON→XML then that XML→JSON, one process per file, against FHIR.js (npm
# `fhir`, as in 15-convert) doing JSON.parse → objToXml → xmlToObj →
# JSON.stringify on the same files, in the same run. Two sets: a Bundle of
# every official example (narrative-heavy, many types; those FHIR.js cannot
# take are left out for both and counted) and the Synthea Bundles.
# Times are CPU time (user + system) of the process, in microseconds (wait4's
# rusage, through tools/bench/cputime.c; bash's `time` prints milliseconds):
# on a machine shared with other work, wall time measures the others too (it
# is printed alongside). Each figure is the median of five measures, each
# measure repeating the whole set of files until it spans at least 0.5 s of
# CPU, and the spread (lowest and highest of the five) is printed beside it.
# Crosswalk's figures leave its start-up out (measured
# here first, the mean of 100 runs on a one-line file, and subtracted per process), as the target
# asks: JSON to XML's on a one-line JSON file, XML to JSON's on a one-line
# XML file (which includes loading libxml2, loaded when XML is first read); the start-up is printed on its own, with an empty process's and the
# loading of the binary's shared libraries alone (an empty program linked
# with the same libraries) for scale. Targets: >= 30x FHIR.js's resources/s
# each way; start-up of a command under 5 ms, judged net of the measuring
# method (an empty program measured the same way is subtracted; perf stat's
# task clock of the process is printed too when perf can count).
# FHIR.js's figures are its process's CPU time (process.cpuUsage, microseconds)
# over each whole set, the median of three rounds.
# The same files go through POST /fhir/$convert of a running gateway too
# (one curl process posting them all on one connection, the set repeated to
# span at least 0.5 s): there the figure is the gateway's CPU time for those
# requests, read in nanoseconds from the process's CPU-time clock (every
# thread, including ended ones; /proc/PID/stat counts 10 ms ticks), the
# median of five measures. It
# is measured as configured by default (every answer audited: the
# AuditEvent names each resource of the answer and is on disk before the
# answer leaves) and, for the conversion's own share, with audit off.
set -euo pipefail
out="$BENCH_DIR/convert-cli"
mkdir -p "$out"
node_dir="$BENCH_DIR/node"
if [ ! -d "$node_dir/node_modules/fhir" ]; then
  mkdir -p "$node_dir"
  (cd "$node_dir" && npm install --silent --no-audit --no-fund fhir@4.12.0 >/dev/null 2>&1) || {
    echo "FHIR.js: npm install failed; section skipped"; exit 0; }
fi
js() { NODE_PATH="$node_dir/node_modules" node tools/bench/fhirjs-cli.js "$@"; }
cputime="$out/cputime"
cc -std=c11 -O2 tools/bench/cputime.c -o "$cputime"
# cpu_wall CMD...: "CPU WALL" seconds of one run (output discarded)
cpu_wall() { "$cputime" run "$@"; }
# stats: "MEDIAN LOWEST HIGHEST" of the numbers on stdin (one a line)
stats() { sort -g | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'; }

# start-up: the mean of 100 runs on a one-line resource
echo '{"resourceType":"Patient","id":"p"}' >"$out/tiny.json"
printf 'int main(void) { return 0; }\n' >"$out/empty.c"
cc -O2 "$out/empty.c" -o "$out/empty"
# bin/crosswalk links what convert needs; the gateway binary beside it, which
# it executes for the other commands, links every library
gw_bin="$(dirname "$CW_BIN")/../lib/crosswalk/crosswalk-gateway"
needed() { readelf -d "$1" | sed -n 's/.*NEEDED.*\[lib\([^.]*\)\.so.*/-l\1/p' | tr '\n' ' '; }
libs=$(needed "$gw_bin")
cc -O2 "$out/empty.c" -o "$out/empty-libs" -Wl,--no-as-needed $libs
cc -O2 "$out/empty.c" -o "$out/empty-cw" -Wl,--no-as-needed $(needed "$CW_BIN")
mean_runs() { # "CPU WALL" in ms: the mean of 100 runs
  local i
  for i in $(seq 100); do cpu_wall "$@" || true; done | awk '{ c += $1; w += $2 } END { printf "%.3f %.3f\n", c / NR * 1000, w / NR * 1000 }'
}
# what loading each set of libraries costs: empty programs linked with them
cc -O2 "$out/empty.c" -o "$out/empty-no-curl" -Wl,--no-as-needed ${libs/-lcurl/}
cc -O2 "$out/empty.c" -o "$out/empty-json-xml" -Wl,--no-as-needed -lcjson -lxml2
cc -O2 "$out/empty.c" -o "$out/empty-json" -Wl,--no-as-needed -lcjson
startup() { # LABEL CMD...
  local label=$1 c w; shift
  read -r c w <<<"$(mean_runs "$@")"
  printf '  %-62s %6.2f ms CPU %7.2f ms wall (%d objects)\n' "$label" "$c" "$w" "$(ldd "$1" | wc -l)"
}
read -r su_cpu su_wall <<<"$(mean_runs "$CW_BIN" convert "$out/tiny.json" --to xml)"
"$CW_BIN" convert "$out/tiny.json" --to xml >"$out/tiny.xml"
read -r sux_cpu sux_wall <<<"$(mean_runs "$CW_BIN" convert "$out/tiny.xml" --to json)"
# the measuring method (bash forking, `time`, exec of a dynamically linked
# program) costs an empty program several ms of its own: the program's own
# start-up is judged net of it, and by perf stat when it can count
read -r em_cpu em_wall <<<"$(mean_runs "$out/empty")"
net=$(awk -v a="$su_cpu" -v b="$em_cpu" 'BEGIN { printf "%.2f", a - b }')
printf 'start-up of crosswalk convert (one-line JSON file) net of the measuring method: %.2f ms CPU (%.2f ms less %.2f ms for an empty program measured the same way), target < 5 ms: %s\n' \
  "$net" "$su_cpu" "$em_cpu" "$(awk -v n="$net" 'BEGIN { print (n < 5 ? "met" : "NOT met") }')"
# perf stat -r 100: the task clock of the process alone (no shell around it)
task_ms() { perf stat -x, -r 100 -e task-clock "$@" 2>&1 >/dev/null | awk -F, '$3 ~ /task-clock/ { printf "%.2f\n", $1 }'; }
if command -v perf >/dev/null 2>&1 && [ -n "$(task_ms "$out/empty")" ]; then
  p_cw=$(task_ms "$CW_BIN" convert "$out/tiny.json" --to xml); p_em=$(task_ms "$out/empty")
  printf '  perf stat -r 100, task clock: crosswalk convert %.2f ms, an empty program %.2f ms, net %.2f ms (target < 5 ms: %s)\n' \
    "$p_cw" "$p_em" "$(awk -v a="$p_cw" -v b="$p_em" 'BEGIN { printf "%.2f", a - b }')" \
    "$(awk -v a="$p_cw" 'BEGIN { print (a < 5 ? "met even gross" : "see net") }')"
else
  echo "  perf stat: not available (or cannot count here); the net figure above stands alone"
fi
printf 'raw: crosswalk convert (one-line file): %.2f ms CPU, %.2f ms wall; for scale:\n' "$su_cpu" "$su_wall"
printf '  %-62s %6.2f ms CPU %7.2f ms wall\n' "the same reading a one-line XML file (libxml2 loaded)" "$sux_cpu" "$sux_wall"
startup "an empty program" "$out/empty"
startup "the gateway binary converting it (every library linked)" "$gw_bin" convert "$out/tiny.json" --to xml
startup "an empty program linked with the gateway binary's libraries" "$out/empty-libs"
startup "an empty program linked with bin/crosswalk's libraries" "$out/empty-cw"
startup "... with all of them but libcurl" "$out/empty-no-curl"
startup "... with cJSON and libxml2 only" "$out/empty-json-xml"
startup "... with cJSON only" "$out/empty-json"

# the gateways for POST /fhir/$convert (audited as by default, and with audit
# off); their CPU time in seconds from /proc
gw_pids=()
trap 'for p in "${gw_pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
for audit in true false; do
  port=$((18937 + ${#gw_pids[@]}))
  cat >"$out/gw-$audit.json" <<JSON
{"listen":"127.0.0.1:$port","data_dir":"$out/var-$audit","plugin_dir":"$CW_PLUGIN_DIR","log_level":"warn",
 "audit":{"enabled":$audit}}
JSON
  "$CW_BIN" serve -c "$out/gw-$audit.json" 2>"$out/gw-$audit.log" &
  gw_pids+=($!)
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
done
# gw_cpu N: the CPU seconds gateway N has used so far (ns resolution)
gw_cpu() { "$cputime" pid "${gw_pids[$1]}"; }
# post N TYPE ACCEPT K FILE...: every file, the set K times over, to $convert
# of gateway N (0 audited, 1 not), one curl process; CPU seconds the gateway
# spent on them
post() {
  local n=$1 type=$2 accept=$3 k=$4 f i args=() before after; shift 4
  local gw_port=$((18937 + n))
  for i in $(seq "$k"); do
    for f in "$@"; do
      args+=(-s -o /dev/null -X POST -H "Content-Type: $type" -H "Accept: $accept" --data-binary "@$f"
        "http://127.0.0.1:$gw_port/fhir/\$convert" --next)
    done
  done
  unset 'args[${#args[@]}-1]'
  before=$(gw_cpu "$n")
  curl "${args[@]}"
  after=$(gw_cpu "$n")
  awk -v a="$before" -v b="$after" 'BEGIN { printf "%.6f\n", b - a }'
}
# cli_pass TO SU FILE...: one process per file converting it --to TO; "CPU
# WALL" seconds summed, CPU net of SU ms of start-up per process
cli_pass() {
  local to=$1 su=$2; shift 2
  local f
  for f in "$@"; do cpu_wall "$CW_BIN" convert "$f" --to "$to"; done |
    awk -v su="$su" '{ c += $1 - su / 1000; w += $2 } END { printf "%.6f %.6f\n", c, w }'
}
# reps SECONDS: how many times a set measured at SECONDS of CPU must be
# repeated so that one measure spans at least 0.5 s
reps() { awk -v s="$1" 'BEGIN { k = (s > 0 ? int(0.5 / s) + 1 : 50); if (k > 200) k = 200; print k }'; }
# cli TO SU K FILE...: one measure, the set K times over: "CPU WALL" seconds
# per set (net of start-up)
cli() {
  local to=$1 su=$2 k=$3 i; shift 3
  for i in $(seq "$k"); do cli_pass "$to" "$su" "$@"; done |
    awk -v k="$k" '{ c += $1; w += $2 } END { printf "%.6f %.6f\n", c / k, w / k }'
}

# set NAME FILE...: both sides on the files; one line each and the ratios
measure() {
  local name=$1; shift
  local n res f i kjx kxj khj khx cjx=() cxj=() wjx=() wxj=() hjx=() hxj=() njx=() nxj=() xmls=() r
  n=$#
  res=$(js count "$@")
  for f in "$@"; do "$CW_BIN" convert "$f" --to xml >"$out/$(basename "$f").xml"; xmls+=("$out/$(basename "$f").xml"); done
  # a trial pass of each kind sets how many times a measure repeats the set
  kjx=$(reps "$(cli_pass xml "$su_cpu" "$@" | cut -d' ' -f1)")
  kxj=$(reps "$(cli_pass json "$sux_cpu" "${xmls[@]}" | cut -d' ' -f1)")
  khj=$(reps "$(post 0 application/fhir+json application/fhir+xml 1 "$@")")
  khx=$(reps "$(post 0 application/fhir+xml application/fhir+json 1 "${xmls[@]}")")
  for i in 1 2 3 4 5; do
    r=$(cli xml "$su_cpu" "$kjx" "$@"); cjx+=("${r% *}"); wjx+=("${r#* }")
    r=$(cli json "$sux_cpu" "$kxj" "${xmls[@]}"); cxj+=("${r% *}"); wxj+=("${r#* }")
    hjx+=("$(awk -v c="$(post 0 application/fhir+json application/fhir+xml "$khj" "$@")" -v k="$khj" 'BEGIN { print c / k }')")
    hxj+=("$(awk -v c="$(post 0 application/fhir+xml application/fhir+json "$khx" "${xmls[@]}")" -v k="$khx" 'BEGIN { print c / k }')")
    njx+=("$(awk -v c="$(post 1 application/fhir+json application/fhir+xml "$khj" "$@")" -v k="$khj" 'BEGIN { print c / k }')")
    nxj+=("$(awk -v c="$(post 1 application/fhir+xml application/fhir+json "$khx" "${xmls[@]}")" -v k="$khx" 'BEGIN { print c / k }')")
  done
  sv() { printf '%s\n' "$@" | stats; }
  read -r _ fjx fxj fjxw fxjw <<<"$(js convert "$@" | grep '^RESULT')"
  awk -v name="$name" -v n="$n" -v res="$res" -v fjx="$fjx" -v fxj="$fxj" -v fjxw="$fjxw" -v fxjw="$fxjw" \
    -v cjx="$(sv "${cjx[@]}")" -v cxj="$(sv "${cxj[@]}")" -v wjx="$(sv "${wjx[@]}")" -v wxj="$(sv "${wxj[@]}")" \
    -v hjx="$(sv "${hjx[@]}")" -v hxj="$(sv "${hxj[@]}")" -v njx="$(sv "${njx[@]}")" -v nxj="$(sv "${nxj[@]}")" \
    -v reps="$kjx $kxj $khj $khx" 'function pos(x) { return x > 0 ? x : 1e-9 }
    # one figure: "R res/s (S s, lowest-highest ratio)"
    function fig(label, st, f,   v) { split(st, v); v[1] = pos(v[1]); v[2] = pos(v[2]); v[3] = pos(v[3])
      return sprintf("%s %8.0f res/s CPU (%.4f s), %.1fx [%.1fx-%.1fx]", label, res / v[1], v[1], f / v[1], f / v[3], f / v[2]) }
    function ratio(st, f,   v) { split(st, v); return f / pos(v[1]) }
    BEGIN {
    split(reps, k); split(wjx, a); split(wxj, b)
    printf "%s (%d files, %d resources; a measure repeats the set CLI %d / %d, $convert %d / %d times; median of 5 [spread])\n", name, n, res, k[1], k[2], k[3], k[4]
    printf "  crosswalk CLI       %s;  %s (wall %.3f s / %.3f s)\n", fig("json_to_xml", cjx, fjx), fig("xml_to_json", cxj, fxj), a[1], b[1]
    printf "  FHIR.js             json_to_xml %8.0f res/s CPU (%.3f s, %.3f s wall);  xml_to_json %8.0f res/s CPU (%.3f s, %.3f s wall), median of 3\n", res / fjx, fjx, fjxw, res / fxj, fxj, fxjw
    printf "  ratio CLI json_to_xml crosswalk/FHIR.js = %.1fx, xml_to_json = %.1fx (target >= 30x each way)\n", ratio(cjx, fjx), ratio(cxj, fxj)
    printf "  crosswalk POST $convert %s;  %s (gateway CPU)\n", fig("json_to_xml", hjx, fjx), fig("xml_to_json", hxj, fxj)
    printf "  ratio POST $convert json_to_xml crosswalk/FHIR.js = %.1fx, xml_to_json = %.1fx (target >= 30x each way)\n", ratio(hjx, fjx), ratio(hxj, fxj)
    printf "  ... with audit off:     %s;  %s\n", fig("json_to_xml", njx, fjx), fig("xml_to_json", nxj, fxj) }'
}
official=("$BENCH_CORPUS"/fhir-r4/examples-json-xml/json/*.json)
read -r kept left <<<"$(js bundle "$out/official-examples.json" "${official[@]}")"
measure "every official example in one Bundle ($kept of ${#official[@]}; $left FHIR.js cannot convert)" \
  "$out/official-examples.json"
measure "Synthea Bundles" "$BENCH_CORPUS"/fhir-r4/synthea/*.json
