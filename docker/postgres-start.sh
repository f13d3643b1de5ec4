#!/bin/sh
# Starts PostgreSQL 15 in the foreground on PGDATA and PGPORT. An empty
# PGDATA is first initialised: the role "crosswalk" with the password
# CROSSWALK_DB_PASSWORD and the database "crosswalk" it owns, reachable over
# the network with scram-sha-256 only. Crosswalk creates its own tables at
# its first start. Run as the postgres user (the image's), or any
# unprivileged user owning PGDATA.
set -eu
bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
: "${PGDATA:?PGDATA must name the data directory}"
port=${PGPORT:-5432}
sock=${PG_SOCKET_DIR:-/tmp}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${CROSSWALK_DB_PASSWORD:?CROSSWALK_DB_PASSWORD must be set for the first start}"
  "$bin/initdb" -D "$PGDATA" -U postgres -E UTF8 --no-locale --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses='' -p $port -k $sock" -w start >/dev/null
  # the password goes through a psql variable, quoted by psql (:'pw')
  "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d postgres -v pw="$CROSSWALK_DB_PASSWORD" <<'SQL'
SET password_encryption = 'scram-sha-256';
CREATE ROLE crosswalk LOGIN PASSWORD :'pw';
CREATE DATABASE crosswalk OWNER crosswalk;
SQL
  "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
  # network clients: password (scram) only; the local socket stays trust
  # for the postgres user inside the container
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "host all all ::/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
fi
exec "$bin/postgres" -D "$PGDATA" -p "$port" -c listen_addresses="${PG_LISTEN:-*}" -k "$sock"
