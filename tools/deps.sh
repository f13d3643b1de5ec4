#!/usr/bin/env bash
# Installs the Debian 12 packages one use of Crosswalk needs, and nothing more:
#
#   tools/deps.sh run     build and run the gateway            (make, make run)
#   tools/deps.sh test    run + what the test suite needs      (make test)
#   tools/deps.sh bench   run + what the benchmarks need       (make bench)
#   tools/deps.sh fuzz    run + clang for the libFuzzer builds (make fuzz)
#   tools/deps.sh gen     run + python3 for the generators     (make model, make codes)
#   tools/deps.sh check   run + clang-format for the layout check (make check-format)
#
# Several groups may be named. Each group has required packages and optional
# ones (tools whose tests or sections skip, saying why, when they are absent).
# As root: installs whatever is missing with apt-get, naming each package.
# Otherwise: when a required package is missing, prints the one apt-get
# command to run and stops (exit 1); missing optional ones are only named.
set -euo pipefail

declare -A required optional
required[run]="gcc make pkg-config libc6-dev binutils libmicrohttpd-dev libgnutls28-dev libcjson-dev libcurl4-openssl-dev
  libxml2-dev libsqlite3-dev libssl-dev libpq-dev ca-certificates"
optional[run]=""
# cmocka builds the tests; xz-utils unpacks the test corpora
# (tests/fixtures/corpus); curl drives the script tests (tests/scripts);
# postgresql is the real server the PostgreSQL backend's tests start
# (tests/pgserver.h: initdb and pg_ctl into a temporary directory).
required[test]="libcmocka-dev xz-utils curl postgresql"
# xmllint checks written XML against the official schema; the openssl command
# makes the throw-away PKI of the upstream TLS tests; node and npm run the
# upstream test server (tests/upstream); chromium is the browser the console's
# tests drive (tests/console, through playwright-core: no browser download);
# haproxy checks the compose file's proxy configuration (haproxy -c).
optional[test]="libxml2-utils openssl node chromium haproxy"
# wrk measures the HTTP benchmarks; node and npm run the comparison tools.
required[bench]="wrk xz-utils"
optional[bench]="node"
required[fuzz]="clang"
optional[fuzz]=""
required[gen]="python3"
optional[gen]=""
required[check]="clang-format"
optional[check]=""

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(run)
want_req=(${required[run]}); want_opt=()
for g in "${groups[@]}"; do
  if [ -z "${required[$g]+set}" ]; then
    echo "tools/deps.sh: unknown group '$g' (run, test, bench, fuzz, gen, check)" >&2
    exit 2
  fi
  want_req+=(${required[$g]}); want_opt+=(${optional[$g]})
done

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
# "node" stands for node and npm from any source (a machine that already has
# them keeps them); otherwise Debian's nodejs and npm.
missing_of() {
  local p
  for p in "$@"; do
    if [ "$p" = node ]; then
      if ! command -v node >/dev/null || ! command -v npm >/dev/null; then echo nodejs npm; fi
    elif ! installed "$p"; then
      echo "$p"
    fi
  done | tr ' ' '\n' | awk 'NF && !seen[$0]++'
}
mapfile -t miss_req < <(missing_of "${want_req[@]}")
mapfile -t miss_opt < <(missing_of "${want_opt[@]+"${want_opt[@]}"}")
[ ${#miss_req[@]} -eq 0 ] && [ ${#miss_opt[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  if [ ${#miss_opt[@]} -gt 0 ]; then
    echo "crosswalk: optional packages missing (their tests skip, saying why): ${miss_opt[*]}" >&2
  fi
  if [ ${#miss_req[@]} -gt 0 ]; then
    echo "crosswalk: missing Debian packages. Run as root:" >&2
    echo "  apt-get update && apt-get install -y ${miss_req[*]} ${miss_opt[*]+${miss_opt[*]}}" >&2
    exit 1
  fi
  exit 0
fi
all=("${miss_req[@]+"${miss_req[@]}"}" "${miss_opt[@]+"${miss_opt[@]}"}")
echo "crosswalk: installing missing Debian packages: ${all[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ ${#miss_req[@]} -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${miss_req[@]}"
fi
# an optional package that cannot be installed here (not in the archive this
# machine reaches) is named and left out: its tests skip, saying why
for p in "${miss_opt[@]+"${miss_opt[@]}"}"; do
  apt-get install -y -qq --no-install-recommends "$p" ||
    echo "crosswalk: optional package $p could not be installed; its tests skip" >&2
done
