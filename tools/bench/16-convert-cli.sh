#!/usr/bin/env bash
# Conversion on the path users run: `crosswalk convert FILE` text to text,
# JSON→XML then that XML→JSON, one process per file, against FHIR.js (npm
# `fhir`, as in 15-convert) doing JSON.parse → objToXml → xmlToObj →
# JSON.stringify on the same files, in the same run. Two sets: a Bundle of
# every official example (narrative-heavy, many types; those FHIR.js cannot
# take are left out for both and counted) and the Synthea Bundles.
# Times are CPU time (user + system) of the process, best of three: on a
# machine shared with other work, wall time measures the others too (it is
# printed alongside). Crosswalk's figures leave its start-up out (measured
# here first, on a one-line file, and subtracted per process), as the target
# asks: JSON to XML's on a one-line JSON file, XML to JSON's on a one-line
# XML file (which includes loading libxml2, loaded when XML is first read); the start-up is printed on its own, with an empty process's and the
# loading of the binary's shared libraries alone (an empty program linked
# with the same libraries) for scale. Targets: >= 30x FHIR.js's resources/s
# each way; start-up of a command under 5 ms, judged net of the measuring
# method (an empty program measured the same way is subtracted; perf stat's
# task clock of the process is printed too when perf can count).
# The same files go through POST /fhir/$convert of a running gateway too
# (one curl process posting them all on one connection): there the figure is
# the gateway's CPU time for those requests (from /proc), best of three. It
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
TIMEFORMAT='%3U %3S %3R'
# cpu_wall CMD...: "CPU WALL" seconds of one run (output discarded)
cpu_wall() { { time "$@" >/dev/null 2>&1; } 2>&1 | awk '{ printf "%.4f %.4f\n", $1 + $2, $3 }'; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b ? a : b) }'; }

# start-up: the mean of 40 runs on a one-line resource
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
mean40() {
  local c=0 w=0 i r
  for i in $(seq 40); do r=$(cpu_wall "$@"); c=$(awk -v a="$c" -v b="${r% *}" 'BEGIN{print a+b}'); w=$(awk -v a="$w" -v b="${r#* }" 'BEGIN{print a+b}'); done
  awk -v c="$c" -v w="$w" 'BEGIN { printf "%.2f %.2f\n", c / 40 * 1000, w / 40 * 1000 }'
}
# what loading each set of libraries costs: empty programs linked with them
cc -O2 "$out/empty.c" -o "$out/empty-no-curl" -Wl,--no-as-needed ${libs/-lcurl/}
cc -O2 "$out/empty.c" -o "$out/empty-json-xml" -Wl,--no-as-needed -lcjson -lxml2
cc -O2 "$out/empty.c" -o "$out/empty-json" -Wl,--no-as-needed -lcjson
startup() { # LABEL CMD...
  local label=$1 c w; shift
  read -r c w <<<"$(mean40 "$@")"
  printf '  %-62s %6.2f ms CPU %7.2f ms wall (%d objects)\n' "$label" "$c" "$w" "$(ldd "$1" | wc -l)"
}
read -r su_cpu su_wall <<<"$(mean40 "$CW_BIN" convert "$out/tiny.json" --to xml)"
"$CW_BIN" convert "$out/tiny.json" --to xml >"$out/tiny.xml"
read -r sux_cpu sux_wall <<<"$(mean40 "$CW_BIN" convert "$out/tiny.xml" --to json)"
# the measuring method (bash forking, `time`, exec of a dynamically linked
# program) costs an empty program several ms of its own: the program's own
# start-up is judged net of it, and by perf stat when it can count
read -r em_cpu em_wall <<<"$(mean40 "$out/empty")"
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
tck=$(getconf CLK_TCK)
gw_cpu() { awk -v t="$tck" '{ printf "%.4f\n", ($14 + $15) / t }' "/proc/${gw_pids[$1]}/stat"; }
# post N TYPE ACCEPT FILE...: every file to $convert of gateway N (0 audited,
# 1 not), one curl process; CPU seconds the gateway spent on them
post() {
  local n=$1 type=$2 accept=$3 f args=() before after; shift 3
  local gw_port=$((18937 + n))
  for f in "$@"; do
    args+=(-s -o /dev/null -X POST -H "Content-Type: $type" -H "Accept: $accept" --data-binary "@$f"
      "http://127.0.0.1:$gw_port/fhir/\$convert" --next)
  done
  unset 'args[${#args[@]}-1]'
  before=$(gw_cpu "$n")
  curl "${args[@]}"
  after=$(gw_cpu "$n")
  awk -v a="$before" -v b="$after" 'BEGIN { printf "%.4f\n", b - a }'
}

# set NAME FILE...: both sides on the files; one line each and the ratios
measure() {
  local name=$1; shift
  local n res jx=9 xj=9 jxw=9 xjw=9 round f r cjx cxj wjx wxj
  n=$#
  res=$(js count "$@")
  for f in "$@"; do "$CW_BIN" convert "$f" --to xml >"$out/$(basename "$f").xml"; done
  for round in 1 2 3; do
    cjx=0; cxj=0; wjx=0; wxj=0
    for f in "$@"; do
      r=$(cpu_wall "$CW_BIN" convert "$f" --to xml)
      cjx=$(awk -v a="$cjx" -v b="${r% *}" 'BEGIN{print a+b}'); wjx=$(awk -v a="$wjx" -v b="${r#* }" 'BEGIN{print a+b}')
      r=$(cpu_wall "$CW_BIN" convert "$out/$(basename "$f").xml" --to json)
      cxj=$(awk -v a="$cxj" -v b="${r% *}" 'BEGIN{print a+b}'); wxj=$(awk -v a="$wxj" -v b="${r#* }" 'BEGIN{print a+b}')
    done
    jx=$(min "$jx" "$cjx"); xj=$(min "$xj" "$cxj"); jxw=$(min "$jxw" "$wjx"); xjw=$(min "$xjw" "$wxj")
  done
  local hjx=9 hxj=9 njx=9 nxj=9 xmls=()
  for f in "$@"; do xmls+=("$out/$(basename "$f").xml"); done
  for round in 1 2 3; do
    hjx=$(min "$hjx" "$(post 0 application/fhir+json application/fhir+xml "$@")")
    hxj=$(min "$hxj" "$(post 0 application/fhir+xml application/fhir+json "${xmls[@]}")")
    njx=$(min "$njx" "$(post 1 application/fhir+json application/fhir+xml "$@")")
    nxj=$(min "$nxj" "$(post 1 application/fhir+xml application/fhir+json "${xmls[@]}")")
  done
  read -r _ fjx fxj fjxw fxjw <<<"$(js convert "$@" | grep '^RESULT')"
  awk -v name="$name" -v n="$n" -v res="$res" -v su="$su_cpu" -v sux="$sux_cpu" -v jx="$jx" -v xj="$xj" \
    -v jxw="$jxw" -v xjw="$xjw" -v fjx="$fjx" -v fxj="$fxj" -v fjxw="$fjxw" -v fxjw="$fxjw" \
    -v hjx="$hjx" -v hxj="$hxj" -v njx="$njx" -v nxj="$nxj" 'BEGIN {
    cjx = jx - n * su / 1000; cxj = xj - n * sux / 1000; if (cjx <= 0) cjx = 1e-6; if (cxj <= 0) cxj = 1e-6
    printf "%s (%d files, %d resources)\n", name, n, res
    printf "  crosswalk CLI json_to_xml %8.0f res/s CPU (%.3f s, %.3f s wall);  xml_to_json %8.0f res/s CPU (%.3f s, %.3f s wall)\n", res / cjx, cjx, jxw, res / cxj, cxj, xjw
    printf "  FHIR.js       json_to_xml %8.0f res/s CPU (%.3f s, %.3f s wall);  xml_to_json %8.0f res/s CPU (%.3f s, %.3f s wall)\n", res / fjx, fjx, fjxw, res / fxj, fxj, fxjw
    printf "  ratio CLI json_to_xml crosswalk/FHIR.js = %.1fx, xml_to_json = %.1fx (target >= 30x each way)\n", fjx / cjx, fxj / cxj
    if (hjx <= 0) hjx = 1e-6; if (hxj <= 0) hxj = 1e-6; if (njx <= 0) njx = 1e-6; if (nxj <= 0) nxj = 1e-6
    printf "  crosswalk POST $convert json_to_xml %8.0f res/s gateway CPU (%.3f s);  xml_to_json %8.0f res/s (%.3f s)\n", res / hjx, hjx, res / hxj, hxj
    printf "  ratio POST $convert json_to_xml crosswalk/FHIR.js = %.1fx, xml_to_json = %.1fx (target >= 30x each way)\n", fjx / hjx, fxj / hxj
    printf "  ... with audit off: json_to_xml %8.0f res/s (%.3f s), %.1fx;  xml_to_json %8.0f res/s (%.3f s), %.1fx\n", res / njx, njx, fjx / njx, res / nxj, nxj, fxj / nxj }'
}
official=("$BENCH_CORPUS"/fhir-r4/examples-json-xml/json/*.json)
read -r kept left <<<"$(js bundle "$out/official-examples.json" "${official[@]}")"
measure "every official example in one Bundle ($kept of ${#official[@]}; $left FHIR.js cannot convert)" \
  "$out/official-examples.json"
measure "Synthea Bundles" "$BENCH_CORPUS"/fhir-r4/synthea/*.json
