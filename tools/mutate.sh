#!/usr/bin/env bash
# Mutation testing: puts one realistic bug at a time into the modules whose
# failures lose or leak data, rebuilds, runs the tests that cover the module,
# and reports whether the tests noticed (killed) or not (survived).
#
#   tools/mutate.sh [FILTER...]      (make mutate [MUTATE="FILTER..."])
#
# The mutations are listed in tests/mutations.txt (format there). FILTER
# selects mutations whose id starts with it ("store/", "http/cl-te"); none
# selects all. Everything happens in a scratch copy of the working tree under
# /tmp (removed at exit): the tree itself is never modified. The copy starts
# from the tree's build/default outputs when present, so only what a mutation
# touches is rebuilt.
#
# Each mutation: its pattern must occur exactly once in its file (else the
# list is stale: reported, counted as an error). The mutant is built with
# `make all` plus the listed test binaries (a mutant that does not compile is
# an error in the list), then the binaries run through tests/run.sh with a
# time limit (MUTANT_TIMEOUT seconds, default 600; running out counts as
# killed). A mutation marked "equivalent: reason" is expected to survive.
#
# Exit status 0 when every mutant was killed or is a documented equivalent.
set -u
export LC_ALL=C
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${JOBS:-2}
timeout_s=${MUTANT_TIMEOUT:-600}

scratch=$(mktemp -d /tmp/cw-mutate-XXXXXX) || exit 1
tpid=
# Tests run in their own process group (timeout makes one); whatever they
# leave running (a gateway a failing test did not stop) goes with it.
reap() { [ -n "$tpid" ] && kill -KILL -- "-$tpid" 2>/dev/null; tpid=; }
# run_tests LOG SPEC...: each SPEC is a test binary as named under
# build/default/tests/, optionally with ":pattern" (CW_TEST_FILTER, cmocka's
# '*' and '?': only those test cases); stops at the first failing one.
run_tests() {
  local log=$1 spec rc=0; shift
  : >"$log"
  for spec in "$@"; do
    local bin=${spec%%:*} filter=
    [ "$bin" != "$spec" ] && filter=${spec#*:}
    CW_TEST_FILTER="$filter" timeout -k 10 "$timeout_s" tests/run.sh "build/default/tests/$bin" >>"$log" 2>&1 &
    tpid=$!
    wait "$tpid"; rc=$?
    reap
    [ $rc -eq 0 ] || break
  done
  return $rc
}
cleanup() { reap; rm -rf "$scratch"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "mutate: copying the tree to $scratch"
(cd "$root" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -C "$scratch" -xf - || exit 1
if [ -d "$root/build/default" ]; then
  mkdir -p "$scratch/build"
  cp -a "$root/build/default" "$scratch/build/"
  for d in bin lib; do [ -d "$root/$d" ] && cp -a "$root/$d" "$scratch/"; done
fi
# the corpora the tests read (unpacked from tests/fixtures/corpus by make)
[ -d "$root/build/corpus" ] && mkdir -p "$scratch/build" && ln -s "$root/build/corpus" "$scratch/build/corpus"
[ -d "$root/tests/upstream/node_modules" ] && ln -s "$root/tests/upstream/node_modules" "$scratch/tests/upstream/node_modules"
cd "$scratch" || exit 1
list=tests/mutations.txt # the copy's, so the list and the code agree
export CW_BIN=bin/crosswalk CW_PLUGIN_DIR=lib/crosswalk/plugins CW_TEST_PLUGIN_DIR=build/default/test-plugins \
  CW_TEST_SHIM_DIR=build/default/test-shims CW_CORPUS=build/corpus CW_SANITIZE=

# Fields are separated by " | "; {NL} and {TAB} in a pattern or replacement
# stand for a newline and a tab.
declare -a ids files pats reps tests notes
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in ''|'#'*) continue ;; esac
  mapfile -t f < <(python3 -c 'import sys; [print(x.strip()) for x in sys.argv[1].split(" | ")]' "$line")
  if [ "${#f[@]}" -lt 5 ]; then echo "mutate: malformed line: $line" >&2; exit 2; fi
  sel=0
  if [ $# -eq 0 ]; then sel=1; else for p in "$@"; do case "${f[0]}" in "$p"*) sel=1 ;; esac; done; fi
  [ $sel -eq 1 ] || continue
  ids+=("${f[0]}"); files+=("${f[1]}"); pats+=("${f[2]}"); reps+=("${f[3]}"); tests+=("${f[4]}"); notes+=("${f[5]:-}")
done < "$list"
n=${#ids[@]}
if [ "$n" -eq 0 ]; then echo "mutate: no mutation selected" >&2; exit 2; fi

bins_of() { local b out=(); for b in $1; do out+=("build/default/tests/${b%%:*}"); done; echo "${out[@]}"; }

# Baseline: the unmutated tree builds and every test binary used passes.
all_bins=$(for i in "${!ids[@]}"; do echo "${tests[$i]}"; done | tr ' ' '\n' | sort -u | tr '\n' ' ')
echo "mutate: baseline build and tests ($all_bins)"
if ! make -j"$jobs" SHARED="$shared" tests-build >build-baseline.log 2>&1; then
  tail -20 build-baseline.log; echo "mutate: the unmutated tree does not build" >&2; exit 2
fi
if ! run_tests tests-baseline.log $all_bins; then
  tail -20 tests-baseline.log; echo "mutate: the unmutated tree fails its tests" >&2; exit 2
fi

killed=0; survived=0; equivalent=0; errors=0; start_all=$(date +%s)
declare -a survivors
for i in "${!ids[@]}"; do
  id=${ids[$i]} file=${files[$i]} note=${notes[$i]}
  t0=$(date +%s)
  cp -p "$file" mutate.orig 2>/dev/null || { echo "ERROR     $id: no file $file"; errors=$((errors + 1)); continue; }
  if ! python3 - "$file" "${pats[$i]}" "${reps[$i]}" <<'PY'
import sys
path, pat, rep = sys.argv[1], sys.argv[2], sys.argv[3]
unesc = lambda s: s.replace("{NL}", "\n").replace("{TAB}", "\t")
pat, rep = unesc(pat), unesc(rep)
text = open(path).read()
k = text.count(pat)
if k != 1:
    sys.stderr.write("pattern found %d times in %s\n" % (k, path))
    sys.exit(3)
open(path, "w").write(text.replace(pat, rep, 1))
PY
  then
    echo "ERROR     $id: the pattern is not exactly once in $file (stale list?)"
    errors=$((errors + 1)); continue
  fi
  bins=$(bins_of "${tests[$i]}")
  if ! make -j"$jobs" SHARED="$shared" all $bins >build-mutant.log 2>&1; then
    echo "ERROR     $id: the mutant does not build: $(grep -m1 'error:' build-mutant.log)"
    errors=$((errors + 1))
  else
    run_tests tests-mutant.log ${tests[$i]}
    rc=$?
    secs=$(( $(date +%s) - t0 ))
    if [ $rc -ne 0 ]; then
      how=$(grep -m1 -E '^    not ok' tests-mutant.log | sed 's/^ *//')
      [ $rc -eq 124 ] && how="timed out after ${timeout_s} s"
      printf 'KILLED    %-34s %4d s  %s\n' "$id" "$secs" "$how"
      killed=$((killed + 1))
      case "$note" in equivalent:*) echo "          (listed as equivalent, but a test noticed it: update the list)" ;; esac
    else
      case "$note" in
        equivalent:*) printf 'EQUIVALENT %-33s %4d s  %s\n' "$id" "$secs" "${note#equivalent: }"; equivalent=$((equivalent + 1)) ;;
        *) printf 'SURVIVED  %-34s %4d s  %s: %s -> %s (%s)\n' "$id" "$secs" "$file" "${pats[$i]}" "${reps[$i]}" "${tests[$i]}"
           survived=$((survived + 1)); survivors+=("$id") ;;
      esac
    fi
  fi
  cp -p mutate.orig "$file" && touch "$file"
done
total=$(( $(date +%s) - start_all ))
echo "mutate: $n mutants: $killed killed, $survived survived, $equivalent equivalent (documented), $errors errors; ${total} s"
[ $survived -eq 0 ] || echo "mutate: survivors: ${survivors[*]}"
[ $survived -eq 0 ] && [ $errors -eq 0 ]
