#!/usr/bin/env bash
# make install into a temporary prefix, then every command from / (nowhere
# near the repository): the installed program finds its configuration,
# plugins and profiles from its prefix; the data directory is created 0700;
# the demonstration plugin echo is left out unless WITH_ECHO=1, and then
# installed where the default configuration does not load it; every example
# configuration (conf/examples) starts and answers /healthz. The container's
# docker/crosswalk.json needs a certificate and a client first: it starts,
# with both, in test_docker_config.sh.
. "$(dirname "$0")/tap.sh"
tap_tmpdir
examples=(conf/examples/*.json)
tap_plan $((9 + ${#examples[@]}))
unset MAKEFLAGS MFLAGS MAKELEVEL CROSSWALK_CONFIG CROSSWALK_LISTEN CROSSWALK_UPSTREAM
repo=$PWD
prefix=$TAP_TMP/prefix state=$TAP_TMP/state/crosswalk
cw=$prefix/bin/crosswalk

if out=$(make --no-print-directory install SANITIZE="${CW_SANITIZE:-}" PREFIX="$prefix" STATEDIR="$state" 2>&1) &&
   [ -x "$cw" ] && [ -f "$prefix/etc/crosswalk/crosswalk.json" ] && [ -d "$prefix/share/crosswalk/profiles/codes" ]; then
  tap_ok "make install PREFIX=… puts the program, plugins, profiles and configuration under the prefix"
else
  tap_fail "make install PREFIX=… puts the program, plugins, profiles and configuration under the prefix" "$out"
fi

v=$(cd / && "$cw" version 2>&1)
if grep -qx "default configuration: $prefix/etc/crosswalk/crosswalk.json" <<<"$v" &&
   grep -qx "default plugin_dir: $prefix/lib/crosswalk/plugins" <<<"$v" &&
   grep -qx "default data_dir: $state" <<<"$v"; then
  tap_ok "crosswalk version from / names the prefix's configuration and directories"
else
  tap_fail "crosswalk version from / names the prefix's configuration and directories" "$v"
fi

p=$(cd / && "$cw" plugins 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q "^billing .*($prefix/lib/crosswalk/plugins/billing.so)" <<<"$p" && ! grep -q '^echo ' <<<"$p"; then
  tap_ok "crosswalk plugins from / loads the installed plugins, echo not among them"
else
  tap_fail "crosswalk plugins from / loads the installed plugins, echo not among them" "exit $rc: $p"
fi

if [ ! -e "$prefix/lib/crosswalk/plugins/echo.so" ] && [ ! -e "$prefix/lib/crosswalk/demo-plugins" ]; then
  tap_ok "echo is not installed by default"
else
  tap_fail "echo is not installed by default" "$(ls -R "$prefix/lib/crosswalk")"
fi

cd / && gw_serve "$TAP_TMP/serve.log" "$cw" serve; started=$?; cd "$repo"
meta=$(curl -sf "$GW_URL/fhir/metadata" 2>&1); health=$(curl -sf "$GW_URL/healthz" 2>&1)
mode=$(stat -c %a "$state" 2>&1); parent=$(stat -c %a "$(dirname "$state")" 2>&1)
gw_stop; stopped=$?
if [ $started -eq 0 ] && [ $stopped -eq 0 ] && grep -q '"status":"ok"' <<<"$health" &&
   grep -q '"CapabilityStatement"' <<<"$meta"; then
  tap_ok "crosswalk serve from / serves with the installed configuration and stops cleanly"
else
  tap_fail "crosswalk serve from / serves with the installed configuration and stops cleanly" \
    "started $started, stopped $stopped, healthz: $health; $(tail -5 "$TAP_TMP/serve.log")"
fi
if ! grep -q 'echo' <<<"$meta" && grep -q 'billing' <<<"$meta"; then
  tap_ok "the installed gateway's CapabilityStatement has no echo"
else
  tap_fail "the installed gateway's CapabilityStatement has no echo" "$(head -c 600 <<<"$meta")"
fi
if [ "$mode" = 700 ] && [ "$parent" = 700 ] && [ -f "$state/store.db" ]; then
  tap_ok "the data directory (and the parents it creates) is created 0700"
else
  tap_fail "the data directory (and the parents it creates) is created 0700" "$state: $mode, parent: $parent"
fi

b=$(cd / && "$cw" billing --from 2026-01-01 --to 2026-01-31 2>&1); brc=$?
m=$(cd / && "$cw" map --from strengths "$repo/docs/formats/examples/strengths-one-person.json" 2>&1); mrc=$?
if [ $brc -eq 0 ] && grep -q '"lines"' <<<"$b" && [ $mrc -eq 0 ] && grep -q '"transaction"' <<<"$m"; then
  tap_ok "crosswalk billing and map from / use the installed store, plugins and profiles"
else
  tap_fail "crosswalk billing and map from / use the installed store, plugins and profiles" "billing $brc: $b; map $mrc: ${m:0:400}"
fi

for ex in "${examples[@]}"; do
  name="example $ex starts from / with the installed gateway and answers /healthz"
  if ! (cd / && CROSSWALK_UPSTREAM_TOKEN=example-token gw_serve "$TAP_TMP/ex.log" "$cw" serve -c "$repo/$ex"; \
        h=$(curl -sf "$GW_URL/healthz"); gw_stop && grep -q '"status":"ok"' <<<"$h"); then
    tap_fail "$name" "$(tail -5 "$TAP_TMP/ex.log")"
  else
    tap_ok "$name"
  fi
done

if out=$(make --no-print-directory install SANITIZE="${CW_SANITIZE:-}" PREFIX="$prefix" STATEDIR="$state" WITH_ECHO=1 2>&1) &&
   [ -x "$prefix/lib/crosswalk/demo-plugins/echo.so" ] && [ ! -e "$prefix/lib/crosswalk/plugins/echo.so" ] &&
   p=$(cd / && "$cw" plugins 2>&1) && ! grep -q '^echo ' <<<"$p" &&
   p=$(cd / && "$cw" plugins --plugins "$prefix/lib/crosswalk/demo-plugins" 2>&1) && grep -q '^echo ' <<<"$p"; then
  tap_ok "WITH_ECHO=1 installs echo apart: loaded only with --plugins …/demo-plugins"
else
  tap_fail "WITH_ECHO=1 installs echo apart: loaded only with --plugins …/demo-plugins" "$out $p"
fi
tap_done
