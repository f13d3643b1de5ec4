#!/usr/bin/env bash
# The container's configuration (docker/crosswalk.json: HTTPS and auth on
# 0.0.0.0:8443) and docker/README.md's client setup, run with a real gateway
# on loopback (no container needed): a self-signed certificate where the
# image expects one, `crosswalk client new` as the README runs it, the
# printed entry put into the shipped configuration's auth.clients, then the
# printed curl line (with the crosswalk token inside it) over HTTPS. Only the
# listen address (CROSSWALK_LISTEN, a free loopback port), the file paths
# and the data directory differ from what the image runs.
. "$(dirname "$0")/tap.sh"
tap_tmpdir
unset CROSSWALK_UPSTREAM
bin=$(realpath "${CW_BIN:-bin/crosswalk}")
plugdir=$(realpath "${CW_PLUGIN_DIR:-lib/crosswalk/plugins}")
T=$TAP_TMP
tap_plan 6
if ! command -v openssl >/dev/null; then
  for n in 1 2 3 4 5 6; do tap_skip "case $n" "the openssl command is not installed"; done
  tap_done
fi
mkdir -p "$T/etc/tls" "$T/keys" "$T/bin"
ln -s "$bin" "$T/bin/crosswalk"
export PATH="$T/bin:$PATH"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$T/etc/tls/key.pem" -out "$T/etc/tls/cert.pem" 2>/dev/null
chmod 0600 "$T/etc/tls/key.pem"

# 1. the client, as the README makes it
if crosswalk client new billing-app --dir "$T/keys" --purpose billing --url https://127.0.0.1:8443 \
     --ca "$T/etc/tls/cert.pem" >"$T/printed.txt" 2>&1; then
  tap_ok "crosswalk client new prints the entry and the commands"
else
  tap_fail "crosswalk client new prints the entry and the commands" "$(cat "$T/printed.txt")"
fi
entry=$(grep '^{"client_id"' "$T/printed.txt" || true)

# the shipped configuration with that entry, its paths moved under $T
cfg=$(sed -e "s|/etc/crosswalk/tls/|$T/etc/tls/|g" docker/crosswalk.json)
cfg=${cfg/'"clients": []'/"\"clients\": [$entry]"}
cfg=${cfg/'"plugins": {}'/"\"plugins\": {}, \"data_dir\": \"$T/var\", \"plugin_dir\": \"$plugdir\""}
printf '%s\n' "$cfg" >"$T/etc/crosswalk.json"
grep -q '"listen": "0.0.0.0:8443"' docker/crosswalk.json && grep -q '"cert_file"' docker/crosswalk.json &&
  tap_ok "the image's configuration listens on 0.0.0.0:8443 with TLS and auth" ||
  tap_fail "the image's configuration listens on 0.0.0.0:8443 with TLS and auth" "$(cat docker/crosswalk.json)"

# the shipped configuration as it is (no client yet) refuses to start, saying why
out=$(sed -e "s|/etc/crosswalk/tls/|$T/etc/tls/|g" -e "s|\"plugins\": {}|\"plugins\": {}, \"data_dir\": \"$T/var0\"|" \
  docker/crosswalk.json >"$T/bare.json"; crosswalk serve -c "$T/bare.json" 2>&1 >/dev/null; echo "exit $?")
grep -q "exit 2" <<<"$out" && grep -q "auth" <<<"$out" &&
  tap_ok "without a client the image's configuration exits 2 naming auth" ||
  tap_fail "without a client the image's configuration exits 2 naming auth" "$out"

if ! CROSSWALK_CONFIG="$T/etc/crosswalk.json" gw_serve "$T/gw.log" crosswalk serve; then
  tap_fail "the gateway serves HTTPS with the client" "$(tail -5 "$T/gw.log")"
  tap_done
fi
tap_ok "the gateway serves HTTPS with the client"
url=${GW_URL/http:/https:}

# 2. and 3.: the printed curl line (the token inside it), at this gateway's address
line=$(grep '^   curl ' "$T/printed.txt" | sed -e 's/^ *//' -e "s|https://127.0.0.1:8443|$url|g")
code=$(bash -c "$line -s -o /dev/null -w '%{http_code}'" 2>&1)
[ "$code" = 200 ] && tap_ok "the printed curl line gets 200 with its token" ||
  tap_fail "the printed curl line gets 200 with its token" "$line -> $code"

# without a token: 401; plain HTTP: no answer
c1=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/etc/tls/cert.pem" "$url/fhir/Patient" || true)
c2=$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/fhir/Patient" || true)
[ "$c1" = 401 ] && [ "$c2" != 200 ] && [ "$c2" != 401 ] &&
  tap_ok "no token: 401 over HTTPS; plain HTTP gets no FHIR answer" ||
  tap_fail "no token: 401 over HTTPS; plain HTTP gets no FHIR answer" "https $c1, http $c2"
gw_stop >/dev/null || true
tap_done
