#!/usr/bin/env bash
# Install the Debian 12 packages Crosswalk needs to build, run and test.
# As root: installs what is missing with apt-get, naming each package.
# Otherwise: prints the one apt-get command to run and stops (exit 1).
set -euo pipefail
# (openssl, the command: the upstream TLS tests make a throw-away PKI with it)
pkgs=(gcc make pkg-config libc6-dev binutils
      libmicrohttpd-dev libcjson-dev libcurl4-openssl-dev libxml2-dev libxml2-utils
      libsqlite3-dev libssl-dev libpq-dev libcmocka-dev
      clang clang-format python3 curl ca-certificates openssl)
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# The upstream tests run a Node FHIR server (tests/upstream); a machine that
# already has node and npm (any source) keeps them, else Debian's are added.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
# wrk measures the HTTP benchmarks (make bench)
if ! dpkg-query -W -f='${Status}' wrk 2>/dev/null | grep -q 'install ok installed'; then
  missing+=(wrk)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "crosswalk: missing Debian packages. Run as root:" >&2
  echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "crosswalk: installing missing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
