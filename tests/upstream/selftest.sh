#!/usr/bin/env bash
# Self-test of the upstream FHIR test server: installs it, starts it on a free
# port, checks the FHIR interactions and every fault with curl, and stops it by
# its PID. Ends with "selftest: N passed, N failed"; exits 0 only if all pass.
set -u
here=$(cd "$(dirname "$0")" && pwd)
"$here/install.sh" || exit 1

work=$(mktemp -d)
pid=
pid2=
cleanup() {
    for p in $pid $pid2; do
        if kill -0 "$p" 2>/dev/null; then kill -TERM "$p" 2>/dev/null; fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

# start NAME ARGS...: starts a server with ARGS, stdout in $work/NAME, stderr in
# $work/NAME.err; waits for its "listening" line; sets started (the PID)
start() {
    local out=$work/$1
    shift
    node "$here/server.mjs" --port 0 "$@" >"$out" 2>"$out.err" &
    started=$!
    for _ in $(seq 1 300); do
        grep -q '^listening ' "$out" 2>/dev/null && break
        kill -0 "$started" 2>/dev/null || break
        sleep 0.1
    done
}
start out
pid=$started
line=$(head -n 1 "$work/out")
case "$line" in
    "listening 127.0.0.1:"*) ;;
    *) echo "server did not start: '$line'"; cat "$work/out.err"; exit 1 ;;
esac
port=${line##*:}
B="http://127.0.0.1:$port/fhir/R4"
A="http://127.0.0.1:$port/_admin"

pass=0; fail=0
ok()   { pass=$((pass + 1)); echo "ok   $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL $1${2:+: $2}"; }
check() { # name expected actual
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "expected '$2', got '$3'"; fi
}
# json EXPR < file: evaluate a JS expression over the parsed body `r`
json() {
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);const v=eval(process.argv[1]);console.log(typeof v==="object"?JSON.stringify(v):String(v))})' "$1"
}
# req METHOD URL [BODY] [extra curl args...]: body in $work/body, headers in $work/hdr, prints status
req() {
    local m=$1 u=$2 d=${3-}
    shift 2; [ $# -gt 0 ] && shift
    if [ -n "$d" ]; then
        curl -s -o "$work/body" -D "$work/hdr" -w '%{http_code}' -X "$m" -H 'Content-Type: application/fhir+json' --data-binary "$d" "$@" "$u"
    else
        curl -s -o "$work/body" -D "$work/hdr" -w '%{http_code}' -X "$m" "$@" "$u"
    fi
}
hdr() { grep -i "^$1:" "$work/hdr" | head -n 1 | cut -d' ' -f2- | tr -d '\r'; }
count() { curl -s "$A/count?type=$1&$2" | json 'r.count'; }

# ---- FHIR interactions
check "metadata" 200 "$(req GET "$B/metadata")"
check "metadata is a CapabilityStatement" CapabilityStatement "$(json r.resourceType <"$work/body")"

pat='{"resourceType":"Patient","id":"client-chosen","identifier":[{"system":"urn:test","value":"p-1"}],"name":[{"family":"Doe"}]}'
check "create" 201 "$(req POST "$B/Patient" "$pat")"
pid1=$(json r.id <"$work/body")
vid1=$(json r.meta.versionId <"$work/body")
[ "$pid1" != client-chosen ] && ok "create ignores the client id" || bad "create ignores the client id"
check "create Location" "$B/Patient/$pid1/_history/$vid1" "$(hdr Location)"
check "create ETag" "W/\"$vid1\"" "$(hdr ETag)"
case "$(hdr Content-Type)" in application/fhir+json*) ok "content type";; *) bad "content type" "$(hdr Content-Type)";; esac

check "read" 200 "$(req GET "$B/Patient/$pid1")"
check "read body" "$pid1" "$(json r.id <"$work/body")"
check "vread" 200 "$(req GET "$B/Patient/$pid1/_history/$vid1")"
check "read unknown" 404 "$(req GET "$B/Patient/nope")"

check "search" 200 "$(req GET "$B/Patient?identifier=urn:test|p-1")"
check "search total" 1 "$(json r.total <"$work/body")"
check "search by name" 1 "$(req GET "$B/Patient?family=doe" >/dev/null; json r.total <"$work/body")"

check "conditional create, match" 200 "$(req POST "$B/Patient" "$pat" -H 'If-None-Exist: identifier=urn:test|p-1')"
check "conditional create returns the match" "$pid1" "$(json r.id <"$work/body")"
check "conditional create, no match" 201 "$(req POST "$B/Patient" '{"resourceType":"Patient","identifier":[{"system":"urn:test","value":"p-2"}]}' -H 'If-None-Exist: identifier=urn:test|p-2')"
check "exactly one p-1" 1 "$(count Patient 'identifier=urn:test|p-1')"

check "update-as-create" 201 "$(req PUT "$B/Patient/pc-1" '{"resourceType":"Patient","id":"pc-1"}')"
check "update" 200 "$(req PUT "$B/Patient/pc-1" '{"resourceType":"Patient","id":"pc-1","active":true}')"
vid2=$(json r.meta.versionId <"$work/body")
check "update with stale If-Match" 412 "$(req PUT "$B/Patient/pc-1" '{"resourceType":"Patient","id":"pc-1"}' -H 'If-Match: W/"stale"')"
check "update with current If-Match" 200 "$(req PUT "$B/Patient/pc-1" '{"resourceType":"Patient","id":"pc-1"}' -H "If-Match: W/\"$vid2\"")"
check "history" 200 "$(req GET "$B/Patient/pc-1/_history")"
check "history has 3 versions" 3 "$(json r.total <"$work/body")"
check "history newest first" true "$(json 'r.entry[0].resource.meta.lastUpdated >= r.entry[2].resource.meta.lastUpdated' <"$work/body")"
check "Prefer: return=minimal" "0" "$(req POST "$B/Patient" '{"resourceType":"Patient"}' -H 'Prefer: return=minimal' >/dev/null; wc -c <"$work/body" | tr -d ' ')"

tx='{"resourceType":"Bundle","type":"transaction","entry":[
 {"fullUrl":"urn:uuid:11111111-1111-4111-8111-111111111111","resource":{"resourceType":"Patient","identifier":[{"system":"urn:test","value":"tx-1"}]},"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=urn:test|tx-1"}},
 {"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:11111111-1111-4111-8111-111111111111"}},"request":{"method":"POST","url":"Observation"}}]}'
check "transaction" 200 "$(req POST "$B" "$tx")"
check "transaction-response" transaction-response "$(json r.type <"$work/body")"
check "transaction entry statuses" '["201","201"]' "$(json 'r.entry.map(e=>e.response.status)' <"$work/body")"
check "urn:uuid reference rewritten" true "$(json 'r.entry[1].resource.subject.reference===("Patient/"+r.entry[0].resource.id)' <"$work/body")"
check "transaction replay matches" '["200","201"]' "$(req POST "$B" "$tx" >/dev/null; json 'r.entry.map(e=>e.response.status)' <"$work/body")"
check "one tx-1 after replay" 1 "$(count Patient 'identifier=urn:test|tx-1')"

badtx='{"resourceType":"Bundle","type":"transaction","entry":[
 {"resource":{"resourceType":"Patient","identifier":[{"system":"urn:test","value":"rollback"}]},"request":{"method":"POST","url":"Patient"}},
 {"resource":{"resourceType":"Patient","id":"other"},"request":{"method":"PUT","url":"Patient/mismatch"}}]}'
check "failing transaction" 400 "$(req POST "$B" "$badtx")"
check "failing transaction rolled back" 0 "$(count Patient 'identifier=urn:test|rollback')"

# more than 8 entries with conditional creates: beyond Medplum's own limit, run over a snapshot
bigtx() { # $1 = entry count, $2 = "bad" to make the last entry fail
    node -e 'const n=+process.argv[1], e=[];
for(let i=0;i<n;i++)e.push({fullUrl:"urn:uuid:00000000-0000-4000-8000-"+String(i).padStart(12,"0"),resource:{resourceType:"Patient",identifier:[{system:"urn:big",value:"v"+i}]},request:{method:"POST",url:"Patient",ifNoneExist:"identifier=urn:big|v"+i}});
if(process.argv[2]==="bad")e.push({resource:{resourceType:"Patient",id:"a"},request:{method:"PUT",url:"Patient/b"}});
console.log(JSON.stringify({resourceType:"Bundle",type:"transaction",entry:e}))' "$@"
}
check "12-entry conditional transaction" 200 "$(req POST "$B" "$(bigtx 12)")"
check "12-entry transaction-response" 'transaction-response 12' "$(json 'r.type+" "+r.entry.length' <"$work/body")"
check "12-entry replay matches all" '200' "$(req POST "$B" "$(bigtx 12)" >/dev/null; json '[...new Set(r.entry.map(e=>e.response.status))].join()' <"$work/body")"
check "12 resources once each" 12 "$(count Patient 'identifier=urn:big|')"
check "failing 16-entry transaction" 400 "$(req POST "$B" "$(bigtx 15 bad | sed 's/urn:big/urn:big2/g')")"
check "failing 16-entry transaction rolled back" 0 "$(count Patient 'identifier=urn:big2|')"
check "system history not supported" 404 "$(req GET "$B/_history")"

batch='{"resourceType":"Bundle","type":"batch","entry":[
 {"resource":{"resourceType":"Patient","identifier":[{"system":"urn:test","value":"b-1"}]},"request":{"method":"POST","url":"Patient"}},
 {"request":{"method":"GET","url":"Patient/nope"}}]}'
check "batch" 200 "$(req POST "$B" "$batch")"
check "batch entry statuses" '["201","404"]' "$(json 'r.entry.map(e=>e.response.status)' <"$work/body")"

check "delete" 200 "$(req DELETE "$B/Patient/pc-1")"
check "read deleted" 410 "$(req GET "$B/Patient/pc-1")"

# ---- faults
fault() { curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary "$1" "$A/faults"; }
check "add 503 x2" 200 "$(fault '{"fault":"status","status":503,"count":2}')"
check "503 #1" 503 "$(req GET "$B/Patient/$pid1")"
check "503 #2" 503 "$(req GET "$B/Patient/$pid1")"
check "after 503s" 200 "$(req GET "$B/Patient/$pid1")"

fault '{"fault":"status","status":500}' >/dev/null
check "500 before commit" 500 "$(req POST "$B/Patient" '{"resourceType":"Patient","identifier":[{"system":"urn:test","value":"f-500"}]}')"
check "500 before commit stored nothing" 0 "$(count Patient 'identifier=urn:test|f-500')"
fault '{"fault":"status","status":500,"afterCommit":true}' >/dev/null
check "500 after commit" 500 "$(req POST "$B/Patient" '{"resourceType":"Patient","identifier":[{"system":"urn:test","value":"f-500c"}]}')"
check "500 after commit stored it" 1 "$(count Patient 'identifier=urn:test|f-500c')"

fault '{"fault":"status","status":429,"retryAfter":3}' >/dev/null
check "429" 429 "$(req GET "$B/Patient/$pid1")"
check "Retry-After" 3 "$(hdr Retry-After)"

fault '{"fault":"status","status":503,"method":"POST","path":"Observation"}' >/dev/null
check "filtered fault spares GET" 200 "$(req GET "$B/Observation")"
check "filtered fault hits POST Observation" 503 "$(req POST "$B/Observation" '{"resourceType":"Observation","status":"final","code":{"text":"y"}}')"

fault '{"fault":"stall","seconds":2}' >/dev/null
start=$(date +%s%N)
curl -s -o /dev/null -m 1 "$B/Patient/$pid1"; rc=$?
check "stall: client times out" 28 "$rc"
start=$(date +%s%N)
fault '{"fault":"stall","seconds":1}' >/dev/null
curl -s -o /dev/null -m 10 "$B/Patient/$pid1"; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "stall: connection closed without a response" 52 "$rc"
[ "$ms" -ge 900 ] && ok "stall lasted ${ms} ms" || bad "stall lasted ${ms} ms"

fault '{"fault":"reset"}' >/dev/null
curl -s -o /dev/null -m 5 "$B/Patient/$pid1"; rc=$?
[ "$rc" = 52 ] || [ "$rc" = 56 ] && ok "reset" || bad "reset" "curl exit $rc"

fault '{"fault":"oversize","mb":50}' >/dev/null
out=$(curl -s -o /dev/null -D "$work/hdr" -w '%{http_code} %{size_download}' -m 60 "$B/Patient")
check "oversize status" 200 "${out%% *}"
[ "${out##* }" -ge $((50 * 1024 * 1024)) ] && ok "oversize body ${out##* } bytes" || bad "oversize body" "${out##* } bytes"
check "oversize is chunked" chunked "$(hdr Transfer-Encoding)"
fault '{"fault":"oversize","mb":50}' >/dev/null
curl -s -m 60 "$B/Patient" | head -c 100000 >/dev/null; rc=${PIPESTATUS[0]}
[ "$rc" != 0 ] && ok "oversize aborted by client" || bad "oversize aborted by client" "curl exit $rc"
check "server alive after aborted oversize" 200 "$(req GET "$B/Patient/$pid1")"

fault '{"fault":"delay","ms":400}' >/dev/null
t=$(curl -s -o /dev/null -w '%{time_total}' "$B/Patient/$pid1")
node -e 'process.exit(Number(process.argv[1]) >= 0.38 ? 0 : 1)' "$t" && ok "delay ${t}s" || bad "delay" "${t}s"
check "delay persists until cleared" 1 "$(curl -s "$A/faults" | json 'r.faults.length')"
check "clear faults" 200 "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$A/faults")"
t=$(curl -s -o /dev/null -w '%{time_total}' "$B/Patient/$pid1")
node -e 'process.exit(Number(process.argv[1]) < 0.3 ? 0 : 1)' "$t" && ok "no delay after clear" || bad "no delay after clear" "${t}s"

check "bad fault rejected" 400 "$(fault '{"fault":"nonsense"}')"

# ---- redirect fault: the Location is outside the FHIR base and counted when requested
fault '{"fault":"redirect","status":307,"method":"GET"}' >/dev/null
check "redirect" 307 "$(req GET "$B/Patient/$pid1")"
loc=$(hdr Location)
check "redirect Location" "http://127.0.0.1:$port/_redirected/Patient/$pid1" "$loc"
check "redirect target not requested yet" 0 "$(curl -s "$A/stats" | json r.redirectTargets)"
check "redirect target answers" 200 "$(req GET "$loc")"
check "redirect target counted" 1 "$(curl -s "$A/stats" | json r.redirectTargets)"
check "redirect status must be 3xx" 400 "$(fault '{"fault":"redirect","status":200}')"
req GET "$B/Patient/$pid1" '' -H 'X-Probe: 1' >/dev/null
check "header names counted" 1 "$(curl -s "$A/stats" | json 'r.headers["x-probe"]')"
printf 'GET /fhir/R4/Patient HTTP/1.1\r\nHost: x\r\nA: 1\rX-Smuggled: 1\r\n\r\n' >"$work/badreq"
curl -s -o /dev/null --max-time 5 "telnet://127.0.0.1:$port" <"$work/badreq"
check "malformed request counted" 1 "$(curl -s "$A/stats" | json r.badRequests)"
check "its header names counted" 1 "$(curl -s "$A/stats" | json 'r.headers["x-smuggled"]')"

curl -s "$A/stats" >"$work/stats"
[ "$(json 'r.received.GET' <"$work/stats")" -gt 10 ] && ok "stats count GETs" || bad "stats count GETs" "$(cat "$work/stats")"
check "stats count injected 503s" 3 "$(json 'r.faultsInjected["503"]' <"$work/stats")"

check "reset" 200 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$A/reset")"
check "reset empties data" 0 "$(count Patient '')"
check "reset zeroes stats" 0 "$(curl -s "$A/stats" | json r.total)"

# ---- stop by PID
kill -TERM "$pid"
for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then bad "exits on SIGTERM"; else wait "$pid"; check "exits 0 on SIGTERM" 0 "$?"; fi
check "one line on stdout" 1 "$(wc -l <"$work/out" | tr -d ' ')"

# ---- HTTPS with a required client certificate and bearer token; basic credentials
# start2 ARGS...: a second server; sets pid2 and port2
start2() {
    start out2 "$@"
    pid2=$started
    port2=$(sed -n 's/^listening 127.0.0.1://p' "$work/out2")
}
stop2() { kill -TERM "$pid2"; wait "$pid2"; }
if "$here/pki.sh" "$work"; then ok "pki.sh"; else bad "pki.sh"; fi
P=$work
start2 --tls-cert "$P/server.pem" --tls-key "$P/server.key" --client-ca "$P/client-ca.pem" --require-bearer s3cret
check "https listening line" "listening 127.0.0.1:$port2" "$(head -n 1 "$work/out2")"
S="https://127.0.0.1:$port2"
tls=(--cacert "$P/ca.pem" --cert "$P/client.pem" --key "$P/client.key")
curl -s -o /dev/null --cacert "$P/other-ca.pem" "${tls[@]:2}" "$S/fhir/R4/metadata"; rc=$?
check "server certificate from another CA refused" 60 "$rc"
curl -s -o /dev/null --cacert "$P/ca.pem" "$S/fhir/R4/metadata"; rc=$?
[ "$rc" != 0 ] && ok "no client certificate: handshake fails (curl exit $rc)" || bad "no client certificate: handshake fails"
check "no token" 401 "$(req GET "$S/fhir/R4/metadata" '' "${tls[@]}")"
check "401 is an OperationOutcome" OperationOutcome "$(json r.resourceType <"$work/body")"
check "WWW-Authenticate" 'Bearer realm="fhir"' "$(hdr WWW-Authenticate)"
check "wrong token" 401 "$(req GET "$S/fhir/R4/metadata" '' "${tls[@]}" -H 'Authorization: Bearer nope')"
check "right token" 200 "$(req GET "$S/fhir/R4/metadata" '' "${tls[@]}" -H 'Authorization: Bearer s3cret')"
check "https URLs" "$S/fhir/R4" "$(json r.implementation.url <"$work/body")"
curl -s "${tls[@]}" "$S/_admin/stats" >"$work/stats2"
check "admin API open, 401s counted" 2 "$(json r.unauthorized <"$work/stats2")"
check "failed handshakes counted (wrong CA, no certificate)" 2 "$(json r.tlsClientErrors <"$work/stats2")"
stop2

start2 --require-basic 'user:pa55 word'
H="http://127.0.0.1:$port2/fhir/R4"
check "basic: no credentials" 401 "$(req GET "$H/metadata")"
check "basic: wrong password" 401 "$(req GET "$H/metadata" '' -u 'user:nope')"
check "basic: right password" 200 "$(req GET "$H/metadata" '' -u 'user:pa55 word')"
stop2
node "$here/server.mjs" --port 0 --tls-cert "$P/server.pem" >/dev/null 2>&1; rc=$?
check "--tls-cert without --tls-key is a usage error" 2 "$rc"

echo "selftest: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
