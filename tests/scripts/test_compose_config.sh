#!/usr/bin/env bash
# docker/compose.yaml (two gateways and a proxy on one PostgreSQL), checked
# without Docker: the file's services and what they mount; the database
# image's start script (docker/postgres-start.sh) run on Debian's
# PostgreSQL into a temporary directory on a free port, as its first start
# in the container would (the role, its password, the database); then two
# real gateways started from the gateways' configuration
# (docker/compose-crosswalk.json) against it, as the containers run them:
# only the listen address, file paths and the database's host and port
# differ. A token one gateway issues is taken by the other (the shared
# signing key), and what one writes the other reads. HAProxy's configuration
# is checked with `haproxy -c` where HAProxy is installed.
. "$(dirname "$0")/tap.sh"
tap_tmpdir
unset CROSSWALK_UPSTREAM
bin=$(realpath "${CW_BIN:-bin/crosswalk}")
plugdir=$(realpath "${CW_PLUGIN_DIR:-lib/crosswalk/plugins}")
T=$TAP_TMP
tap_plan 6

# 1. the compose file: its services, images and mounts
out=$(python3 - docker/compose.yaml <<'PY' 2>&1
import os, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
s = c["services"]
assert set(s) == {"db", "gateway-1", "gateway-2", "proxy"}, sorted(s)
for name in ("gateway-1", "gateway-2"):
    g = s[name]
    assert g["build"]["dockerfile"] == "docker/Dockerfile", g
    assert "./etc:/etc/crosswalk:ro" in g["volumes"], g["volumes"]
    assert g["depends_on"]["db"]["condition"] == "service_healthy"
    assert "PGPASSWORD" in g["environment"]
    assert g["command"] == ["serve", "-c", "/etc/crosswalk/crosswalk.json"]
data = [v for n in ("gateway-1", "gateway-2") for v in s[n]["volumes"] if v.endswith(":/var/lib/crosswalk")]
assert len(set(data)) == 2, data  # each gateway its own data directory
for name in ("db", "proxy"):
    assert os.path.exists(s[name]["build"]["dockerfile"]), name
assert s["proxy"]["ports"] == ["8443:8443"]
for v in [v for n in s for v in s[n].get("volumes", [])]:
    src = v.split(":")[0]
    assert src.startswith("./") or src in c["volumes"], v
cfg = open("docker/haproxy.cfg").read()
assert "server gateway-1 gateway-1:8443" in cfg and "server gateway-2 gateway-2:8443" in cfg
assert "docker/postgres-start.sh" in open("docker/postgres.Dockerfile").read()
PY
) && tap_ok "compose.yaml: a database, two gateways with their own data and one configuration, a proxy on 8443" ||
  tap_fail "compose.yaml: a database, two gateways with their own data and one configuration, a proxy on 8443" "$out"

# 2. the database's first start, as the container runs it
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$pgbin" ]; then
  for n in 2 3 4 5 6; do tap_skip "case $n" "PostgreSQL is not installed (tools/deps.sh test)"; done
  tap_done
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$T/pg"
as_user=()
if [ "$(id -u)" = 0 ]; then chmod 0711 "$T" && chown nobody "$T/pg" && as_user=(runuser -u nobody --); fi
pw="s3cret 'quoted'"
"${as_user[@]}" env PG_BIN="$pgbin" PGDATA="$T/pg/data" PGPORT="$port" PG_SOCKET_DIR="$T/pg" PG_LISTEN=127.0.0.1 \
  CROSSWALK_DB_PASSWORD="$pw" docker/postgres-start.sh >"$T/pg.log" 2>&1 &
pg_pid=$!
# the server's own PID (runuser does not pass signals on): a fast shutdown
pg_stop() {
  local p
  p=$(head -1 "$T/pg/data/postmaster.pid" 2>/dev/null)
  [ -n "$p" ] && kill -INT "$p" 2>/dev/null
  wait $pg_pid 2>/dev/null
}
trap 'gw_stop; pg_stop; [ -n "${CW_KEEP_TMP:-}" ] || rm -rf "$TAP_TMP"' EXIT
for i in $(seq 1 300); do
  "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
  kill -0 $pg_pid 2>/dev/null || break
  sleep 0.1
done
ok=$(PGPASSWORD="$pw" "$pgbin/psql" -X -tA -h 127.0.0.1 -p "$port" -U crosswalk -d crosswalk \
  -c "SELECT current_user || ' ' || (SELECT datdba::regrole FROM pg_database WHERE datname = 'crosswalk')" 2>&1)
bad=$(PGPASSWORD=wrong "$pgbin/psql" -X -tA -h 127.0.0.1 -p "$port" -U crosswalk -d crosswalk -c "SELECT 1" 2>&1)
[ "$ok" = "crosswalk crosswalk" ] && grep -q "password authentication failed" <<<"$bad" &&
  tap_ok "postgres-start.sh: role and database crosswalk, reached over TCP with its password only" ||
  tap_fail "postgres-start.sh: role and database crosswalk, reached over TCP with its password only" \
    "$ok / $bad / $(tail -5 "$T/pg.log")"

# 3. the gateways' configuration, two gateways on that database
mkdir -p "$T/etc/tls" "$T/keys" "$T/bin"
ln -s "$bin" "$T/bin/crosswalk"
export PATH="$T/bin:$PATH"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$T/etc/tls/key.pem" -out "$T/etc/tls/cert.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/etc/signing-key.pem" 2>/dev/null
chmod 0600 "$T/etc/tls/key.pem" "$T/etc/signing-key.pem"
crosswalk client new pair-app --dir "$T/keys" --scopes 'system/*.cruds' --url https://127.0.0.1:8443 \
  --ca "$T/etc/tls/cert.pem" >"$T/printed.txt" 2>&1
entry=$(grep '^{"client_id"' "$T/printed.txt" || true)
for n in 1 2; do
  cfg=$(sed -e "s|/etc/crosswalk/|$T/etc/|g" -e "s|host=db port=5432|host=127.0.0.1 port=$port|" \
    docker/compose-crosswalk.json)
  cfg=${cfg/'"clients": []'/"\"clients\": [$entry]"}
  cfg=${cfg/'"plugins": {}'/"\"plugins\": {}, \"data_dir\": \"$T/var$n\", \"plugin_dir\": \"$plugdir\""}
  printf '%s\n' "$cfg" >"$T/gw$n.json"
done
urls=()
pids=()
for n in 1 2; do
  if PGPASSWORD="$pw" gw_serve "$T/gw$n.log" crosswalk serve -c "$T/gw$n.json"; then
    urls+=("${GW_URL/http:/https:}")
    pids+=("$GW_PID")
  fi
done
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; pg_stop; [ -n "${CW_KEEP_TMP:-}" ] || rm -rf "$TAP_TMP"' EXIT
GW_PID=""
if [ ${#urls[@]} -ne 2 ]; then
  tap_fail "both gateways start on the database with the compose configuration" "$(tail -n 3 "$T"/gw*.log)"
  tap_done
fi
tap_ok "both gateways start on the database with the compose configuration"

# 4. a token from one gateway is taken by the other
tok=$(crosswalk token --client pair-app --key "$T/keys/pair-app.pem" --url "${urls[0]}" --ca "$T/etc/tls/cert.pem" 2>&1)
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/etc/tls/cert.pem" -H "Authorization: Bearer $tok" \
  "${urls[1]}/fhir/Patient?_count=1")
[ "$code" = 200 ] && tap_ok "a token issued by gateway 1 is accepted by gateway 2 (one signing key)" ||
  tap_fail "a token issued by gateway 1 is accepted by gateway 2 (one signing key)" "$code: $tok"

# 5. what one gateway writes, the other reads
c1=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/etc/tls/cert.pem" -H "Authorization: Bearer $tok" \
  -H 'Content-Type: application/fhir+json' -X PUT "${urls[0]}/fhir/Patient/compose-1" \
  -d '{"resourceType":"Patient","id":"compose-1","name":[{"family":"Shared"}]}')
got=$(curl -s --cacert "$T/etc/tls/cert.pem" -H "Authorization: Bearer $tok" "${urls[1]}/fhir/Patient/compose-1")
[ "$c1" = 201 ] && grep -q '"Shared"' <<<"$got" &&
  tap_ok "a Patient written through gateway 1 is read through gateway 2" ||
  tap_fail "a Patient written through gateway 1 is read through gateway 2" "PUT $c1, GET $got"

# 6. the proxy's configuration
if command -v haproxy >/dev/null; then
  out=$(sed -e 's/gateway-[12]:8443/127.0.0.1:8443/' docker/haproxy.cfg >"$T/haproxy.cfg"; haproxy -c -f "$T/haproxy.cfg" 2>&1) &&
    tap_ok "haproxy -c accepts haproxy.cfg" || tap_fail "haproxy -c accepts haproxy.cfg" "$out"
else
  tap_skip "haproxy -c accepts haproxy.cfg" "HAProxy is not installed"
fi
tap_done
