#!/usr/bin/env bash
# make bench: runs every section in tools/bench/[0-9]*.sh in name order, each
# printing its own measurements and ratios, all in this one run so the ratios
# compare numbers taken on the same machine at the same time.
# Sections get: CW_BIN (the gateway), CW_PLUGIN_DIR, BENCH_CORPUS (the data
# measured on, laid out as fhir-r4/synthea, ...), BENCH_DIR (a scratch
# directory under build/bench).
# The corpus: the larger local copy SHARED names (default ../shared) when it is
# there, else the one the repository carries (build/corpus, unpacked from
# tests/fixtures/corpus by make); the first line says which.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CW_BIN=${CW_BIN:-bin/crosswalk}
export CW_PLUGIN_DIR=${CW_PLUGIN_DIR:-lib/crosswalk/plugins}
shared=${SHARED:-../shared}
if [ -d "$shared/fhir-r4/synthea" ]; then
  export BENCH_CORPUS=$shared
else
  [ -f build/corpus/.unpacked ] || make -s build/corpus/.unpacked >/dev/null
  export BENCH_CORPUS=build/corpus
fi
export BENCH_DIR=build/bench
mkdir -p "$BENCH_DIR"
echo "Crosswalk benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, corpus $BENCH_CORPUS"
shopt -s nullglob
sections=(tools/bench/[0-9]*.sh)
if [ ${#sections[@]} -eq 0 ]; then
  echo "no benchmark sections yet (tools/bench/[0-9]*.sh)"
  exit 0
fi
for s in "${sections[@]}"; do
  echo
  echo "== $(basename "$s" .sh)"
  bash "$s"
done
