#!/usr/bin/env bash
# Strict JSON parse+print against plain cJSON on the Synthea bundles.
set -euo pipefail
bin="$BENCH_DIR/bench_json"
cc -std=c11 -D_GNU_SOURCE -O2 -Icore $(pkg-config --cflags libcjson) tools/bench/bench_json.c core/base/fjson.c core/base/file.c \
  $(pkg-config --libs libcjson) -lm -o "$bin"
"$bin" "$BENCH_CORPUS"/fhir-r4/synthea/*.json
