# Debian's PostgreSQL 15 for docker/compose.yaml: one database "crosswalk"
# owned by the user "crosswalk", whose password is CROSSWALK_DB_PASSWORD
# (scram-sha-256 over the network; set once, when the volume is empty).
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/*
COPY docker/postgres-start.sh /usr/local/bin/postgres-start
ENV PGDATA=/var/lib/postgresql/data PGPORT=5432
RUN install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data
VOLUME ["/var/lib/postgresql/data"]
USER postgres
EXPOSE 5432
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=5 \
  CMD /usr/lib/postgresql/15/bin/pg_isready -h 127.0.0.1 -p "$PGPORT" -d crosswalk -U crosswalk || exit 1
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/postgres-start"]
