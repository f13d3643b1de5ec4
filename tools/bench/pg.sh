# Sourced by the bench scripts that run a PostgreSQL server: Debian's
# (tools/deps.sh test), initdb'd into DIR/pg with its default settings
# (max_connections 200) on a free port of 127.0.0.1.
#   bench_pg_find           pgbin: the server's binaries ("" when none)
#   bench_pg_prepare DIR    DIR/pg made; as_user: how to run the server
#                           (as nobody when root: it refuses root)
#   bench_pg_start DIR [-c name=value...]
#                           initdb and start; port and conninfo set
#   bench_pg_stop DIR       stops it (immediate; nothing when not running)
#   bench_pg_pids DIR       the server's processes: the postmaster and its
#                           children (one that ends within a measure, such
#                           as an autovacuum worker, takes its time with it)
#   bench_ab_init TEMPLATE TREE...
#                           for an A/B script: trees (the built checkouts
#                           given, as absolute paths), rounds (ROUNDS, 3),
#                           secs (SECS, 5), dir (a new directory, mktemp -d
#                           TEMPLATE, ready for the server), pids (the
#                           processes to stop at the end) and a trap on EXIT
#                           that stops them and the server and removes dir
# free_port prints a free TCP port of 127.0.0.1; bench_ticks PID... the CPU
# time (user + system, in clock ticks) of those processes, summed (one that
# has ended counts 0).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# (|| true: with no PostgreSQL, ls fails and pipefail would end the script
# here without a word)
bench_pg_find() { pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true); }
bench_pg_prepare() {
  mkdir -p "$1/pg"
  as_user=()
  if [ "$(id -u)" = 0 ]; then chmod 0711 "$1" && chown nobody "$1/pg" && as_user=(runuser -u nobody --); fi
}
bench_pg_start() {
  local dir=$1
  shift
  port=$(free_port)
  "${as_user[@]}" "$pgbin/initdb" -D "$dir/pg/data" -U cw -A trust -E UTF8 --no-locale >/dev/null
  "${as_user[@]}" "$pgbin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/pg -c max_connections=200 $*" start >/dev/null
  conninfo="host=127.0.0.1 port=$port dbname=postgres user=cw"
}
bench_pg_stop() { "${as_user[@]}" "$pgbin/pg_ctl" -D "$1/pg/data" -m immediate stop >/dev/null 2>&1 || true; }
bench_pg_pids() {
  local m
  m=$(head -1 "$1/pg/data/postmaster.pid")
  echo "$m"
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v m="$m" '$4 == m {print $1}'
}
bench_ticks() {
  local t=0 p v
  for p in "$@"; do
    v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || v=0
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
bench_ab_init() {
  local template=$1 t
  shift
  trees=()
  for t in "$@"; do trees+=("$(cd "$t" && pwd)"); done
  rounds=${ROUNDS:-3}
  secs=${SECS:-5}
  dir=$(mktemp -d "$template")
  bench_pg_prepare "$dir"
  pids=()
  trap bench_ab_cleanup EXIT
}
bench_ab_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  bench_pg_stop "$dir"
  rm -rf "$dir"
}
