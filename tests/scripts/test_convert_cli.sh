#!/usr/bin/env bash
# The program users run (CW_BIN, bin/crosswalk) converts without loading the
# server's libraries: `crosswalk convert` maps only what the converter uses
# (cJSON; libxml2 and theirs only once XML is read), as the dynamic loader
# reports it (LD_DEBUG=libs): JSON to XML and `version` map no libxml2 (a
# narrative in plain XHTML is checked without it; one outside that subset,
# such as a CDATA section, loads it for the check, which refuses what is not
# well-formed), reading XML loads it on first use. Every other command runs the gateway binary beside it
# (lib/crosswalk/crosswalk-gateway) in the same process; a copy of the
# program with no gateway binary beside it says so and exits 1, still
# converting. A file is mapped rather than read when its size is not a
# multiple of the page size: both kinds convert as the same bytes do on
# standard input.
. "$(dirname "$0")/tap.sh"
tap_tmpdir
tap_plan 9
cw=${CW_BIN:-bin/crosswalk}
heavy='libpq|libcurl|libmicrohttpd|libgnutls|libsqlite3|libssl|libcrypto'
echo '{"resourceType":"Patient","id":"p","active":true}' >"$TAP_TMP/p.json"

xml='libxml2|libicu|libstdc'
# a sanitizer build's runtime (libasan, libubsan) brings libstdc++ itself
[ -n "${CW_SANITIZE:-}" ] && xml='libxml2|libicu'
loaded=$(LD_DEBUG=libs "$cw" convert "$TAP_TMP/p.json" --to xml 2>&1 >"$TAP_TMP/p.xml" | grep 'calling init:')
if grep -q '<active value="true"/>' "$TAP_TMP/p.xml" && ! grep -qE "$heavy|$xml" <<<"$loaded"; then
  tap_ok "crosswalk convert writes XML without loading the server's libraries nor libxml2"
else
  tap_fail "crosswalk convert writes XML without loading the server's libraries nor libxml2" "$(cat "$TAP_TMP/p.xml"; grep -E "$heavy|$xml" <<<"$loaded")"
fi

loaded=$(LD_DEBUG=libs "$cw" convert "$TAP_TMP/p.xml" 2>&1 >"$TAP_TMP/back.json" | grep 'calling init:')
if grep -q '"active":true' "$TAP_TMP/back.json" && ! grep -qE "$heavy" <<<"$loaded" && grep -q 'libxml2' <<<"$loaded"; then
  tap_ok "crosswalk convert reads XML loading libxml2 on first use, not the server's libraries"
else
  tap_fail "crosswalk convert reads XML loading libxml2 on first use, not the server's libraries" "$(cat "$TAP_TMP/back.json"; echo "$loaded")"
fi

div='<div xmlns=\"http://www.w3.org/1999/xhtml\"><p class=\"x\">Ann &amp; <b>Bo</b><br/>&#233;t\u00e9</p><!-- c --></div>'
printf '{"resourceType":"Patient","id":"p","text":{"status":"generated","div":"%s"}}\n' "$div" >"$TAP_TMP/n.json"
loaded=$(LD_DEBUG=libs "$cw" convert "$TAP_TMP/n.json" --to xml 2>&1 >"$TAP_TMP/n.xml" | grep 'calling init:')
if grep -q '<b>Bo</b><br/>&#233;t' "$TAP_TMP/n.xml" && ! grep -qE "$heavy|$xml" <<<"$loaded"; then
  tap_ok "a narrative in plain XHTML is written as XML without loading libxml2"
else
  tap_fail "a narrative in plain XHTML is written as XML without loading libxml2" "$(cat "$TAP_TMP/n.xml"; grep -E "$heavy|$xml" <<<"$loaded")"
fi

printf '{"resourceType":"Patient","id":"p","text":{"status":"generated","div":"%s"}}\n' \
  '<div xmlns=\"http://www.w3.org/1999/xhtml\"><![CDATA[a<b]]></div>' >"$TAP_TMP/c.json"
printf '{"resourceType":"Patient","id":"p","text":{"status":"generated","div":"%s"}}\n' \
  '<div xmlns=\"http://www.w3.org/1999/xhtml\"><p a=\"1\" a=\"2\">x</p></div>' >"$TAP_TMP/d.json"
loaded=$(LD_DEBUG=libs "$cw" convert "$TAP_TMP/c.json" --to xml 2>&1 >"$TAP_TMP/c.xml" | grep 'calling init:')
bad=$("$cw" convert "$TAP_TMP/d.json" --to xml 2>&1); rc=$?
if grep -q 'CDATA\[a<b\]\]' "$TAP_TMP/c.xml" && grep -q 'libxml2' <<<"$loaded" && [ $rc -ne 0 ] &&
   grep -q 'well-formed' <<<"$bad"; then
  tap_ok "a narrative outside plain XHTML is checked with libxml2: CDATA passes, a repeated attribute is refused"
else
  tap_fail "a narrative outside plain XHTML is checked with libxml2: CDATA passes, a repeated attribute is refused" "$(cat "$TAP_TMP/c.xml"; echo "$loaded"; echo "exit $rc: $bad")"
fi

out=$(LD_DEBUG=libs "$cw" version 2>&1)
if grep -q "^crosswalk [0-9]" <<<"$out" && ! grep 'calling init:' <<<"$out" | grep -qE "$heavy|$xml"; then
  tap_ok "crosswalk version loads neither the server's libraries nor libxml2"
else
  tap_fail "crosswalk version loads neither the server's libraries nor libxml2" "$(grep 'calling init:' <<<"$out")"
fi

printf '{"plugin_dir": "%s", "data_dir": "%s"}\n' "$PWD/${CW_PLUGIN_DIR:-lib/crosswalk/plugins}" "$TAP_TMP/var" >"$TAP_TMP/cw.json"
out=$("$cw" plugins -c "$TAP_TMP/cw.json" 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q '^billing ' <<<"$out"; then
  tap_ok "crosswalk plugins runs through the gateway binary"
else
  tap_fail "crosswalk plugins runs through the gateway binary" "exit $rc: $out"
fi

out=$("$cw" no-such-command 2>&1); rc=$?
if [ $rc -eq 2 ] && grep -q "unknown command 'no-such-command'" <<<"$out"; then
  tap_ok "an unknown command is a usage error (exit 2)"
else
  tap_fail "an unknown command is a usage error (exit 2)" "exit $rc: $out"
fi

mkdir -p "$TAP_TMP/alone/bin" && cp "$cw" "$TAP_TMP/alone/bin/crosswalk"
out=$("$TAP_TMP/alone/bin/crosswalk" plugins 2>&1); rc=$?
conv=$("$TAP_TMP/alone/bin/crosswalk" convert "$TAP_TMP/p.json" 2>&1)
if [ $rc -eq 1 ] && grep -q "cannot run $TAP_TMP/alone/bin/../lib/crosswalk/crosswalk-gateway" <<<"$out" &&
   grep -q '<active value="true"/>' <<<"$conv"; then
  tap_ok "without the gateway binary beside it, other commands say so (exit 1) and convert still works"
else
  tap_fail "without the gateway binary beside it, other commands say so (exit 1) and convert still works" "exit $rc: $out; $conv"
fi
# a Patient whose JSON text is exactly N bytes (padded in a name)
sized() {
  local n=$1 head='{"resourceType":"Patient","id":"p","name":[{"text":"' tail='"}]}'
  printf '%s%*s%s' "$head" $((n - ${#head} - ${#tail} - 1)) '' "$tail" | tr ' ' 'x'; echo
}
page=$(getconf PAGESIZE)
bad=""
for n in $page $((page + 1)) $((2 * page)) $((2 * page - 1)); do
  sized "$n" >"$TAP_TMP/s.json"
  [ "$(stat -c %s "$TAP_TMP/s.json")" -eq "$n" ] || bad="$bad size-$n"
  "$cw" convert "$TAP_TMP/s.json" >"$TAP_TMP/file.xml" 2>&1 || bad="$bad file-$n"
  "$cw" convert <"$TAP_TMP/s.json" >"$TAP_TMP/stdin.xml" 2>&1 || bad="$bad stdin-$n"
  cmp -s "$TAP_TMP/file.xml" "$TAP_TMP/stdin.xml" && grep -q 'xxxx"/></name>' "$TAP_TMP/file.xml" || bad="$bad differ-$n"
  "$cw" convert "$TAP_TMP/file.xml" >"$TAP_TMP/back.json" 2>&1 && cmp -s "$TAP_TMP/back.json" "$TAP_TMP/s.json" ||
    bad="$bad back-$n"
done
if [ -z "$bad" ]; then
  tap_ok "files of a page multiple and not convert as their bytes on standard input do, and back"
else
  tap_fail "files of a page multiple and not convert as their bytes on standard input do, and back" "$bad"
fi
tap_done
