/* The PostgreSQL backend: errors, connections, open/close, the schema and
 * its migration, transactions, marks and the ops table (see
 * store_pg_int.h for the split and the several-instance design). */
#include "store/store_pg_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/crypto.h"
#include "store/store_schema.h"

/* The schema version this build writes, kept in cw_schema. A database
 * written by a newer schema is refused (the caller exits 2); an older one is
 * upgraded when opened (upgrade_schema). 1: first; 2: the resource a Bundle
 * embeds (composition, message) indexed under "composition.…"; 3: the
 * outbox's references (outbox_ref), for delivery in parallel; 4: what
 * several gateways share besides the resources: the replay cache of client
 * assertions (assertion_seen); 5: bulk export jobs and their files
 * (bulk_job, bulk_chunk: store_pg_jobs.c). */
#define PG_SCHEMA_VERSION 5

/* 3: what an outbox record waits for (store_refs.h): the resources its
 * version refers to, and the records of one resource found by it */
#define OUTBOX_REF_SQL                                                                                 \
	"CREATE TABLE IF NOT EXISTS outbox_ref(oid bigint NOT NULL, type text COLLATE \"C\" NOT NULL," \
	" id text COLLATE \"C\" NOT NULL, PRIMARY KEY(oid, type, id));"                                \
	"CREATE INDEX IF NOT EXISTS outbox_ref_res ON outbox_ref(type, id, oid);"                      \
	"CREATE INDEX IF NOT EXISTS outbox_res ON outbox(type, id, oid);"

/* 4: the client assertions taken (store_replay_claim), by issuer and jti,
 * each kept until its exp (Unix seconds) */
#define SHARED_SQL                                                                       \
	"CREATE TABLE IF NOT EXISTS assertion_seen(iss text COLLATE \"C\" NOT NULL,"     \
	" jti text COLLATE \"C\" NOT NULL, exp bigint NOT NULL, PRIMARY KEY(iss, jti));" \
	"CREATE INDEX IF NOT EXISTS assertion_seen_exp ON assertion_seen(exp);"

/* 5: bulk export jobs shared by the gateways (store_pg_jobs.c): the job
 * rows, with the lease of the gateway running one, and the output files in
 * chunks, removed with their job */
#define SHARED5_JOBS_SQL                                                                                 \
	"CREATE TABLE IF NOT EXISTS bulk_job(id text COLLATE \"C\" PRIMARY KEY, rec text NOT NULL,"      \
	" state text NOT NULL, progress text NOT NULL DEFAULT '', created bigint NOT NULL,"              \
	" finished bigint NOT NULL DEFAULT 0, owner bigint NOT NULL DEFAULT 0,"                          \
	" lease_until bigint NOT NULL DEFAULT 0);"                                                       \
	"CREATE TABLE IF NOT EXISTS bulk_chunk(job text COLLATE \"C\" NOT NULL REFERENCES bulk_job(id)"  \
	" ON DELETE CASCADE, name text COLLATE \"C\" NOT NULL, n integer NOT NULL, data bytea NOT NULL," \
	" PRIMARY KEY(job, name, n));"

/* The creates' shape of the schema (creates_schema): no foreign keys from
 * version.rid and idx.rid to resource (a version's rows are written in the
 * statement that writes or locks its resource row, and no resource row is
 * ever deleted: the write path keeps them whole, and checking each row at
 * its insert cost a tenth of the database's CPU per create), and idx_date
 * holds only the index rows with a range (dates, numbers, quantities): a
 * token, string or reference row writes two index entries, not three. The
 * range criteria (store_sql.c) compare lo or hi with strict operators, which
 * imply lo IS NOT NULL, so the partial index serves them. */
#define IDX_DATE_SQL "CREATE INDEX idx_date ON idx(param, lo) WHERE lo IS NOT NULL;"

/* Text columns compare byte-wise (COLLATE "C"), as SQLite's do: prefix
 * ranges of folded strings, _sort and ids order the same on both. */
static const char schema_sql[] =
	"CREATE TABLE cw_schema(version integer NOT NULL);"
	"CREATE TABLE resource(rid bigserial PRIMARY KEY, type text COLLATE \"C\" NOT NULL,"
	" id text COLLATE \"C\" NOT NULL, version bigint NOT NULL, deleted integer NOT NULL,"
	" last_updated text COLLATE \"C\" NOT NULL, UNIQUE(type, id));"
	"CREATE TABLE version(seq bigserial PRIMARY KEY, rid bigint NOT NULL,"
	" type text COLLATE \"C\" NOT NULL, id text COLLATE \"C\" NOT NULL, version bigint NOT NULL,"
	" op integer NOT NULL, last_updated text COLLATE \"C\" NOT NULL, body text, sum bytea,"
	" UNIQUE(rid, version));"
	"CREATE INDEX version_type ON version(type, seq);"
	"CREATE TABLE idx(rid bigint NOT NULL, param text COLLATE \"C\" NOT NULL,"
	" sys text COLLATE \"C\", val text COLLATE \"C\", lo double precision, hi double precision);"
	"CREATE INDEX idx_val ON idx(param, val);" IDX_DATE_SQL "CREATE INDEX idx_rid ON idx(rid, param);"
	"CREATE TABLE outbox(oid bigserial PRIMARY KEY, type text COLLATE \"C\" NOT NULL,"
	" id text COLLATE \"C\" NOT NULL, version bigint NOT NULL, deleted integer NOT NULL,"
	" state integer NOT NULL DEFAULT 0, attempts integer NOT NULL DEFAULT 0, next_at bigint NOT NULL DEFAULT 0,"
	" last_error text, created text COLLATE \"C\" NOT NULL, lease_until bigint NOT NULL DEFAULT 0,"
	" lease_owner bigint NOT NULL DEFAULT 0);"
	"CREATE INDEX outbox_order ON outbox(state, oid);" OUTBOX_REF_SQL
	"CREATE TABLE mark(name text COLLATE \"C\" PRIMARY KEY, value bigint NOT NULL);" SHARED_SQL SHARED5_JOBS_SQL
	"INSERT INTO cw_schema(version) VALUES(5);";

struct pg_store *pgs_of(struct store *s) { return (struct pg_store *)s; }

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* libpq's message without its trailing newline. */
static void conn_message(PGconn *db, char *out, size_t size)
{
	snprintf(out, size, "%s", db ? PQerrorMessage(db) : "no connection");
	size_t n = strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
}

static __thread char last_state[6];

const char *pgs_last_state(struct pgconn *c)
{
	(void)c;
	return last_state;
}

static enum store_status state_status(const char *state)
{
	if (!state)
		return STORE_IO;
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0 ||
	    strcmp(state, "57014") == 0 || strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0)
		return STORE_BUSY;
	if (strcmp(state, "23505") == 0)
		return STORE_CONFLICT;
	if (strcmp(state, "53100") == 0)
		return STORE_FULL;
	if (strcmp(state, "53200") == 0)
		return STORE_NO_MEMORY;
	return STORE_IO;
}

enum store_status pgs_result(struct pgconn *c, PGresult *r, PGresult **out, struct store_error *err, const char *what)
{
	if (out)
		*out = NULL;
	last_state[0] = '\0';
	ExecStatusType es = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK) {
		if (out)
			*out = r;
		else
			PQclear(r);
		return STORE_OK;
	}
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (PQstatus(c->db) != CONNECTION_OK)
		state = "08006";
	else if (es == PGRES_PIPELINE_ABORTED)
		state = "25P02"; /* not run: an earlier statement of its pipeline failed */
	snprintf(last_state, sizeof last_state, "%s", state ? state : "");
	enum store_status st = r ? state_status(state) : STORE_NO_MEMORY;
	char msg[160];
	if (r && PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY))
		snprintf(msg, sizeof msg, "%s", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
	else
		conn_message(c->db, msg, sizeof msg);
	PQclear(r);
	if (st == STORE_FULL)
		store_note_full(true);
	/* a transaction the server ended (a lost connection) is not ours any more */
	if (PQtransactionStatus(c->db) == PQTRANS_IDLE || PQtransactionStatus(c->db) == PQTRANS_UNKNOWN)
		c->in_txn = false;
	/* state pointed into r: the copy in last_state outlives it */
	return store_fail(err, st, "%s: database error %s: %s", what, last_state[0] ? last_state : "?", msg);
}

enum store_status pgs_exec(struct pgconn *c, const char *sql, int n, const char *const *vals, const unsigned *types,
			   PGresult **out, struct store_error *err, const char *what)
{
	return pgs_result(c, PQexecParams(c->db, sql, n, (const Oid *)types, vals, NULL, NULL, 0), out, err, what);
}

const char *pgs_stmt_name(enum pgs_stmt st)
{
	static const char *const names[PGS_ST_COUNT] = {"cw_read",    "cw_lock_res", "cw_new_res",  "cw_next_res",
							"cw_index",   "cw_group",    "cw_ob_add",   "cw_ob_refs",
							"cw_ob_next", "cw_ob_done",  "cw_ob_settle"};
	return names[st];
}

enum store_status pgs_prepare(struct pgconn *c, enum pgs_stmt st, const char *sql, int n, struct store_error *err)
{
	if (c->prepared & (1u << st))
		return STORE_OK;
	enum store_status s =
		pgs_result(c, PQprepare(c->db, pgs_stmt_name(st), sql, n, NULL), NULL, err, "preparing a statement");
	if (s == STORE_OK)
		c->prepared |= 1u << st;
	return s;
}

enum store_status pgs_exec_prepared(struct pgconn *c, enum pgs_stmt st, const char *sql, int n, const char *const *vals,
				    PGresult **out, struct store_error *err, const char *what)
{
	if (out)
		*out = NULL;
	enum store_status s = pgs_prepare(c, st, sql, n, err);
	if (s != STORE_OK)
		return s;
	return pgs_result(c, PQexecPrepared(c->db, pgs_stmt_name(st), n, vals, NULL, NULL, 0), out, err, what);
}

enum store_status pgs_run(struct pgconn *c, const char *sql, struct store_error *err, const char *what)
{
	return pgs_exec(c, sql, 0, NULL, NULL, NULL, err, what);
}

const char *pgs_val(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

int64_t pgs_int(const PGresult *r, int row, int col)
{
	const char *v = pgs_val(r, row, col);
	return v ? strtoll(v, NULL, 10) : 0;
}

void pgs_sum_hex(const uint8_t sum[SVER_SUM_LEN], char out[2 * SVER_SUM_LEN + 3])
{
	static const char hex[] = "0123456789abcdef";
	out[0] = '\\';
	out[1] = 'x';
	for (size_t i = 0; i < SVER_SUM_LEN; i++) {
		out[2 + 2 * i] = hex[sum[i] >> 4];
		out[3 + 2 * i] = hex[sum[i] & 15];
	}
	out[2 + 2 * SVER_SUM_LEN] = '\0';
}

enum store_status pgs_verify(const char *hex, const char *type, const char *id, int64_t version,
			     const char *last_updated, const char *body, size_t len, struct store_error *err)
{
	uint8_t want[SVER_SUM_LEN];
	char want_hex[2 * SVER_SUM_LEN + 3];
	if (hex && sver_sum(type, id, version, last_updated, body, len, want) == 0) {
		pgs_sum_hex(want, want_hex);
		if (strcmp(hex, want_hex) == 0)
			return STORE_OK;
	}
	return store_note_corrupt(err, type, id, version);
}

char *pgs_number_params(const char *sql)
{
	size_t n = 0;
	for (const char *p = sql; *p; p++)
		n += *p == '?';
	char *out = malloc(strlen(sql) + n * 7 + 1);
	if (!out)
		return NULL;
	char *o = out;
	unsigned k = 0;
	for (const char *p = sql; *p; p++) {
		if (*p == '?')
			o += sprintf(o, "$%u", ++k);
		else
			*o++ = *p;
	}
	*o = '\0';
	return out;
}

enum store_status pgs_exec_binds(struct pgconn *c, const char *sql, const struct ssql_binds *b, PGresult **out,
				 struct store_error *err, const char *what)
{
	char *text = pgs_number_params(sql);
	const char **vals = calloc(b->n ? b->n : 1, sizeof *vals);
	unsigned *types = calloc(b->n ? b->n : 1, sizeof *types);
	char(*nums)[32] = calloc(b->n ? b->n : 1, sizeof *nums);
	enum store_status st;
	if (!text || !vals || !types || !nums) {
		st = store_fail(err, STORE_NO_MEMORY, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->n; i++) {
		const struct ssql_bind *x = &b->v[i];
		switch (x->kind) {
		case SSQL_BIND_TEXT:
			vals[i] = x->s;
			types[i] = 25; /* text */
			break;
		case SSQL_BIND_INT:
			snprintf(nums[i], sizeof nums[i], "%lld", (long long)x->i);
			vals[i] = nums[i];
			types[i] = 20; /* int8 */
			break;
		case SSQL_BIND_REAL:
			if (x->d != x->d)
				snprintf(nums[i], sizeof nums[i], "NaN");
			else if (x->d > 1e308 * 10)
				snprintf(nums[i], sizeof nums[i], "Infinity");
			else if (x->d < -1e308 * 10)
				snprintf(nums[i], sizeof nums[i], "-Infinity");
			else
				snprintf(nums[i], sizeof nums[i], "%.17g", x->d);
			vals[i] = nums[i];
			types[i] = 701; /* float8 */
			break;
		}
	}
	st = pgs_exec(c, text, (int)b->n, vals, types, out, err, what);
out:
	free(text);
	free(vals);
	free(types);
	free(nums);
	return st;
}

/* --- connections ---------------------------------------------------------------------------- */

static void conn_free(struct pgconn *c)
{
	if (!c)
		return;
	PQfinish(c->db);
	free(c);
}

static struct pgconn *conn_open(struct pg_store *ps, char *err, size_t errlen)
{
	struct pgconn *c = calloc(1, sizeof *c);
	if (!c) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	c->owner = ps;
	c->db = PQconnectdb(ps->conninfo);
	if (!c->db || PQstatus(c->db) != CONNECTION_OK) {
		char msg[200];
		conn_message(c->db, msg, sizeof msg);
		set_err(err, errlen, "cannot connect to PostgreSQL: %s", msg);
		conn_free(c);
		return NULL;
	}
	char sql[128];
	snprintf(sql, sizeof sql, "SET statement_timeout = %d; SET lock_timeout = %d; SET TIME ZONE 'UTC'",
		 ps->statement_timeout_ms, ps->statement_timeout_ms);
	PGresult *r = PQexec(c->db, sql);
	bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok) {
		char msg[200];
		conn_message(c->db, msg, sizeof msg);
		set_err(err, errlen, "cannot set up a PostgreSQL session: %s", msg);
		conn_free(c);
		return NULL;
	}
	return c;
}

static void conn_release(void *p)
{
	struct pgconn *c = p;
	if (!c)
		return;
	struct pg_store *ps = c->owner;
	if (c->in_txn) {
		PQclear(PQexec(c->db, "ROLLBACK"));
		c->in_txn = false;
	}
	pthread_mutex_lock(&ps->mu);
	c->next_free = ps->free_list;
	ps->free_list = c;
	pthread_mutex_unlock(&ps->mu);
}

struct pgconn *pgs_get_conn(struct pg_store *ps, struct store_error *err)
{
	struct pgconn *c = pthread_getspecific(ps->key);
	if (!c) {
		pthread_mutex_lock(&ps->mu);
		c = ps->free_list;
		if (c)
			ps->free_list = c->next_free;
		pthread_mutex_unlock(&ps->mu);
		if (!c) {
			char msg[256];
			if (!(c = conn_open(ps, msg, sizeof msg))) {
				store_fail(err, STORE_BUSY, "%s", msg);
				return NULL;
			}
			pthread_mutex_lock(&ps->mu);
			c->next_all = ps->all;
			ps->all = c;
			pthread_mutex_unlock(&ps->mu);
		}
		pthread_setspecific(ps->key, c);
	}
	/* the server restarted or the link broke: reconnect between transactions */
	if (PQstatus(c->db) != CONNECTION_OK && !c->in_txn) {
		PQreset(c->db);
		c->prepared = 0; /* a new session: its statements are to prepare again */
		if (PQstatus(c->db) != CONNECTION_OK) {
			char msg[200];
			conn_message(c->db, msg, sizeof msg);
			store_fail(err, STORE_BUSY, "the database is unreachable: %s", msg);
			return NULL;
		}
		char sql[128];
		snprintf(sql, sizeof sql, "SET statement_timeout = %d; SET lock_timeout = %d; SET TIME ZONE 'UTC'",
			 ps->statement_timeout_ms, ps->statement_timeout_ms);
		PQclear(PQexec(c->db, sql));
	}
	return c;
}

/* --- schema ----------------------------------------------------------------------------------- */

/* 5: the shared bulk export jobs (one implicit transaction inside the
 * caller's). */
static enum store_status upgrade_shared_jobs(struct pgconn *c, struct store_error *e)
{
	PGresult *x = PQexec(c->db, SHARED5_JOBS_SQL);
	enum store_status st = STORE_OK;
	if (PQresultStatus(x) != PGRES_COMMAND_OK)
		st = store_fail(e, STORE_IO, "adding the export job tables: %s", PQresultErrorMessage(x));
	PQclear(x);
	return st;
}

/* Brings a database of an older schema version to PG_SCHEMA_VERSION in one
 * transaction (under the schema lock: the first instance to start does it,
 * the others wait and find it done). */
static int upgrade_schema(struct pgconn *c, int64_t from, char *err, size_t errlen)
{
	struct store_error e;
	enum store_status st = pgs_run(c, "BEGIN", &e, "upgrading the schema");
	if (st == STORE_OK && from < 2) /* 2: embedded resources */
		st = pgs_reindex(c, &e);
	if (st == STORE_OK && from < 3) { /* 3: several statements, one implicit transaction inside ours */
		PGresult *x = PQexec(c->db, OUTBOX_REF_SQL);
		if (PQresultStatus(x) != PGRES_COMMAND_OK)
			st = store_fail(&e, STORE_IO, "adding the outbox's references: %s", PQresultErrorMessage(x));
		PQclear(x);
	}
	if (st == STORE_OK && from < 4) { /* 4: what several gateways share */
		PGresult *x = PQexec(c->db, SHARED_SQL);
		if (PQresultStatus(x) != PGRES_COMMAND_OK)
			st = store_fail(&e, STORE_IO, "adding the shared tables: %s", PQresultErrorMessage(x));
		PQclear(x);
	}
	if (st == STORE_OK && from < 5)
		st = upgrade_shared_jobs(c, &e);
	char sql[64];
	snprintf(sql, sizeof sql, "UPDATE cw_schema SET version = %d", PG_SCHEMA_VERSION);
	if (st == STORE_OK)
		st = pgs_run(c, sql, &e, "upgrading the schema");
	if (st == STORE_OK)
		st = pgs_run(c, "COMMIT", &e, "upgrading the schema");
	if (st != STORE_OK) {
		pgs_run(c, "ROLLBACK", NULL, "upgrading the schema");
		set_err(err, errlen, "upgrading the schema: %s", e.message);
		return -1;
	}
	return 0;
}

/* Gives a database created before the creates' shape of the schema (the
 * foreign keys, a full idx_date: IDX_DATE_SQL) that shape, in one
 * transaction under the schema lock; a database that has it is left alone
 * (one catalog query). No version change: a build that creates the older
 * shape works on this one, and this one on the older. 0, or -1. */
static int creates_schema(struct pgconn *c, char *err, size_t errlen)
{
	struct store_error e;
	PGresult *r = NULL;
	if (pgs_exec(
		    c,
		    "SELECT (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid IN"
		    " (to_regclass('version'), to_regclass('idx')))"
		    " + (SELECT count(*) FROM pg_index WHERE indexrelid = to_regclass('idx_date') AND indpred IS NULL)",
		    0, NULL, NULL, &r, &e, "reading the schema") != STORE_OK) {
		set_err(err, errlen, "%s", e.message);
		return -1;
	}
	int64_t todo = pgs_int(r, 0, 0);
	PQclear(r);
	if (todo == 0)
		return 0;
	enum store_status st = pgs_run(c, "BEGIN", &e, "reshaping the schema for creates");
	if (st == STORE_OK) { /* several statements: one implicit transaction inside ours */
		PGresult *x = PQexec(c->db, "ALTER TABLE version DROP CONSTRAINT IF EXISTS version_rid_fkey;"
					    "ALTER TABLE idx DROP CONSTRAINT IF EXISTS idx_rid_fkey;"
					    "DROP INDEX IF EXISTS idx_date;" IDX_DATE_SQL);
		if (PQresultStatus(x) != PGRES_COMMAND_OK)
			st = store_fail(&e, STORE_IO, "%s", PQresultErrorMessage(x));
		PQclear(x);
	}
	if (st == STORE_OK)
		st = pgs_run(c, "COMMIT", &e, "reshaping the schema for creates");
	if (st != STORE_OK) {
		pgs_run(c, "ROLLBACK", NULL, "reshaping the schema for creates");
		set_err(err, errlen, "reshaping the schema for creates: %s", e.message);
		return -1;
	}
	return 0;
}

/* The steps sschema_setup takes on a PostgreSQL connection. */
static int schema_exists(void *conn, char *err, size_t errlen)
{
	struct store_error e;
	PGresult *r = NULL;
	if (pgs_exec(conn, "SELECT to_regclass('cw_schema') IS NOT NULL", 0, NULL, NULL, &r, &e,
		     "reading the schema") != STORE_OK) {
		set_err(err, errlen, "%s", e.message);
		return -1;
	}
	int have = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return have;
}

static int schema_create(void *conn, char *err, size_t errlen)
{
	struct pgconn *c = conn;
	PGresult *x = PQexec(c->db, schema_sql); /* several statements: one implicit transaction */
	bool ok = x && PQresultStatus(x) == PGRES_COMMAND_OK;
	if (!ok) {
		char msg[200];
		conn_message(c->db, msg, sizeof msg);
		set_err(err, errlen, "cannot create the schema: %s", msg);
	}
	PQclear(x);
	return ok ? 0 : -1;
}

static int64_t schema_version(void *conn, char *err, size_t errlen)
{
	struct store_error e;
	PGresult *r = NULL;
	if (pgs_exec(conn, "SELECT coalesce(max(version), 0) FROM cw_schema", 0, NULL, NULL, &r, &e,
		     "reading the schema") != STORE_OK) {
		set_err(err, errlen, "%s", e.message);
		return -1;
	}
	int64_t v = pgs_int(r, 0, 0);
	PQclear(r);
	return v;
}

static int schema_upgrade(void *conn, int64_t from, char *err, size_t errlen)
{
	return upgrade_schema(conn, from, err, errlen);
}

static const struct sschema_ops pg_schema = {schema_exists, schema_create, schema_version, schema_upgrade};

/* Creates, upgrades or refuses the schema (store_schema.h) under an
 * advisory lock, so that instances starting together decide once. */
static int setup_schema(struct pgconn *c, char *err, size_t errlen)
{
	struct store_error e;
	char sql[96];
	snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", PGS_LOCK_SCHEMA);
	if (pgs_run(c, sql, &e, "locking the schema") != STORE_OK) {
		set_err(err, errlen, "%s", e.message);
		return -1;
	}
	int rc = sschema_setup(&pg_schema, c, PG_SCHEMA_VERSION, err, errlen);
	if (rc == 0)
		rc = creates_schema(c, err, errlen);
	snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%lld)", PGS_LOCK_SCHEMA);
	pgs_run(c, sql, NULL, "unlocking the schema");
	return rc;
}

static const struct store_ops pg_ops;
static void pg_close(struct store *s);

int store_open_pg(const char *conninfo, const struct store_pg_options *opt, struct store **out, char *err,
		  size_t errlen)
{
	*out = NULL;
	if (!PQisthreadsafe()) {
		set_err(err, errlen, "the PostgreSQL client library was built without thread support");
		return -1;
	}
	if (crypto_init() != 0) {
		set_err(err, errlen, "the crypto library could not be initialised");
		return -1;
	}
	if (!conninfo || !conninfo[0]) {
		set_err(err, errlen, "no PostgreSQL connection string given (store.postgresql.conninfo)");
		return -1;
	}
	struct pg_store *ps = calloc(1, sizeof *ps);
	if (!ps || !(ps->conninfo = strdup(conninfo))) {
		free(ps);
		set_err(err, errlen, "out of memory");
		return -1;
	}
	ps->base.ops = &pg_ops;
	ps->statement_timeout_ms = opt && opt->statement_timeout_ms > 0 ? opt->statement_timeout_ms : 30000;
	ps->lease_ms = opt && opt->lease_ms > 0 ? opt->lease_ms : 120000;
	uint8_t rnd[8];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		set_err(err, errlen, "no randomness for the instance id");
		goto fail;
	}
	uint64_t id = 0;
	for (size_t i = 0; i < sizeof rnd; i++)
		id = (id << 8) | rnd[i];
	ps->instance = (int64_t)(id >> 1); /* positive: a bigint column */
	if (ps->instance == 0)
		ps->instance = 1;
	if (pthread_mutex_init(&ps->mu, NULL) != 0) {
		set_err(err, errlen, "cannot create a mutex");
		goto fail;
	}
	if (sq_init(&ps->gc, pgs_gc_run, pgs_gc_finish, ps) != 0) {
		pthread_mutex_destroy(&ps->mu);
		set_err(err, errlen, "cannot create a mutex");
		goto fail;
	}
	if (pthread_key_create(&ps->key, conn_release) != 0) {
		set_err(err, errlen, "cannot create a thread-specific key");
		goto fail_mutex;
	}
	struct pgconn *c = conn_open(ps, err, errlen);
	if (!c || setup_schema(c, err, errlen) != 0 ||
	    pgs_cache_open(ps, c, opt ? opt->cache_bytes : 0, err, errlen) != 0) {
		conn_free(c);
		pthread_key_delete(ps->key);
		goto fail_mutex;
	}
	c->next_all = ps->all;
	ps->all = c;
	c->next_free = ps->free_list;
	ps->free_list = c;
	sq_set_hold(&ps->gc, PGS_HOLD);
	if (sq_start(&ps->gc, PGS_COMMITTERS) != 0) {
		set_err(err, errlen, "cannot start the store's committer threads");
		pg_close(&ps->base);
		return -1;
	}
	*out = &ps->base;
	return 0;
fail_mutex:
	pthread_mutex_destroy(&ps->mu);
	sq_destroy(&ps->gc);
fail:
	free(ps->conninfo);
	free(ps);
	return -1;
}

static void pg_close(struct store *s)
{
	struct pg_store *ps = pgs_of(s);
	/* the committers empty the queue (every write answered), then end;
	 * their connections go back to the pool as their threads exit */
	sq_destroy(&ps->gc);
	pgs_cache_close(ps);
	struct pgconn *mine = pthread_getspecific(ps->key);
	if (mine)
		pthread_setspecific(ps->key, NULL);
	pthread_key_delete(ps->key);
	for (struct pgconn *c = ps->all, *next; c; c = next) {
		next = c->next_all;
		conn_free(c);
	}
	pthread_mutex_destroy(&ps->mu);
	free(ps->conninfo);
	free(ps);
}

/* --- transactions ----------------------------------------------------------------------------- */

static enum store_status pg_begin(struct store *s, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	if (c->in_txn)
		return store_fail(err, STORE_CONFLICT, "a transaction is already open on this thread");
	char sql[96];
	snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(%lld)", PGS_LOCK_WRITE);
	PGresult *r = PQexec(c->db, sql);
	bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	if (!ok) {
		if (PQtransactionStatus(c->db) != PQTRANS_IDLE)
			PQclear(PQexec(c->db, "ROLLBACK"));
		char msg[200];
		conn_message(c->db, msg, sizeof msg);
		return store_fail(err, STORE_BUSY, "cannot begin a transaction: %s", msg);
	}
	c->in_txn = true;
	return STORE_OK;
}

static enum store_status pg_commit(struct store *s, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	if (!c->in_txn)
		return store_fail(err, STORE_INVALID, "no transaction is open on this thread");
	c->in_txn = false;
	enum store_status st = pgs_run(c, "COMMIT", err, "committing");
	if (st == STORE_OK && PQtransactionStatus(c->db) != PQTRANS_IDLE)
		st = store_fail(err, STORE_IO, "the transaction was rolled back");
	if (PQtransactionStatus(c->db) == PQTRANS_INTRANS || PQtransactionStatus(c->db) == PQTRANS_INERROR)
		pgs_run(c, "ROLLBACK", NULL, "rolling back");
	return st;
}

static enum store_status pg_rollback(struct store *s, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	if (!c->in_txn)
		return store_fail(err, STORE_INVALID, "no transaction is open on this thread");
	c->in_txn = false;
	return pgs_run(c, "ROLLBACK", err, "rolling back");
}

enum store_status pgs_write_begin(struct pgconn *c, struct store_error *err)
{
	return pgs_run(c, c->in_txn ? "SAVEPOINT w" : "BEGIN", err, "beginning a write");
}

enum store_status pgs_write_end(struct pgconn *c, enum store_status st, struct store_error *err)
{
	if (c->in_txn) {
		if (st == STORE_OK)
			return pgs_run(c, "RELEASE w", err, "writing");
		pgs_run(c, "ROLLBACK TO w", NULL, "undoing a write");
		pgs_run(c, "RELEASE w", NULL, "undoing a write");
		return st;
	}
	if (st == STORE_OK) {
		st = pgs_run(c, "COMMIT", err, "committing");
		if (st == STORE_OK && PQtransactionStatus(c->db) == PQTRANS_IDLE)
			return st;
		if (st == STORE_OK)
			st = store_fail(err, STORE_IO, "the transaction was rolled back");
	}
	if (PQtransactionStatus(c->db) != PQTRANS_IDLE)
		pgs_run(c, "ROLLBACK", NULL, "rolling back");
	return st;
}

enum store_status pgs_read_begin(struct pgconn *c, bool *opened, struct store_error *err)
{
	*opened = false;
	if (c->in_txn)
		return STORE_OK;
	enum store_status st = pgs_run(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, "reading");
	*opened = st == STORE_OK;
	return st;
}

void pgs_read_end(struct pgconn *c, bool opened)
{
	if (opened)
		pgs_run(c, "ROLLBACK", NULL, "ending a read");
}

/* --- marks ------------------------------------------------------------------------------------ */

static enum store_status pg_mark_get(struct store *s, const char *name, int64_t *value, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	PGresult *r;
	const char *vals[] = {name};
	enum store_status st =
		pgs_exec(c, "SELECT value FROM mark WHERE name = $1", 1, vals, NULL, &r, err, "reading a mark");
	if (st != STORE_OK)
		return st;
	if (PQntuples(r) == 0)
		st = store_fail(err, STORE_NOT_FOUND, "no mark %s", name);
	else
		*value = pgs_int(r, 0, 0);
	PQclear(r);
	return st;
}

static enum store_status pg_mark_set(struct store *s, const char *name, int64_t value, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	char num[24];
	snprintf(num, sizeof num, "%lld", (long long)value);
	const char *vals[] = {name, num};
	return pgs_exec(c,
			"INSERT INTO mark(name, value) VALUES($1, $2) ON CONFLICT (name) DO UPDATE SET value ="
			" excluded.value",
			2, vals, NULL, NULL, err, "writing a mark");
}

/* --- the replay cache of client assertions ---------------------------------------------------- */

#define REPLAY_PURGE_S 60 /* how often one gateway purges expired claims */

static enum store_status pg_replay_claim(struct store *s, const char *iss, const char *jti, int64_t exp, int64_t now,
					 struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	struct pg_store *ps = pgs_of(s);
	char e[24], n[24];
	snprintf(e, sizeof e, "%lld", (long long)exp);
	snprintf(n, sizeof n, "%lld", (long long)now);
	int64_t last = atomic_load(&ps->replay_purged);
	if (now - last >= REPLAY_PURGE_S && atomic_compare_exchange_strong(&ps->replay_purged, &last, now)) {
		const char *pv[] = {n};
		pgs_exec(c, "DELETE FROM assertion_seen WHERE exp < $1", 1, pv, NULL, NULL, NULL,
			 "purging expired assertions");
	}
	/* one statement: a row comes back when the claim is new or replaced
	 * an expired one; a concurrent claim of the same key waits for this
	 * one's commit and then finds it live */
	const char *vals[] = {iss, jti, e, n};
	PGresult *r;
	enum store_status st = pgs_exec(c,
					"INSERT INTO assertion_seen(iss, jti, exp) VALUES($1, $2, $3)"
					" ON CONFLICT (iss, jti) DO UPDATE SET exp = excluded.exp"
					" WHERE assertion_seen.exp < $4 RETURNING 1",
					4, vals, NULL, &r, err, "recording a client assertion");
	if (st != STORE_OK)
		return st;
	if (PQntuples(r) == 0)
		st = store_fail(err, STORE_CONFLICT, "the assertion was taken before");
	PQclear(r);
	return st;
}

static const struct store_ops pg_ops = {
	.close = pg_close,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.create = pg_create,
	.update = pg_update,
	.read = pg_read,
	.del = pg_delete,
	.history = pg_history,
	.search = pg_search,
	.read_text = pg_read_text,
	.cache_wait = pg_cache_wait,
	.outbox_add = pg_outbox_add,
	.outbox_next = pg_outbox_next,
	.outbox_settle = pg_outbox_settle,
	.outbox_list = pg_outbox_list,
	.outbox_counts = pg_outbox_counts,
	.outbox_retry_dead = pg_outbox_retry_dead,
	.mark_get = pg_mark_get,
	.mark_set = pg_mark_set,
	.replay_claim = pg_replay_claim,
	.submit = pg_submit,
	.drain = pg_drain,
	.snapshot = pg_snapshot,
	.export_types = pg_export_types,
	.export_scan = pg_export_scan,
	.jobs = &pgs_job_ops,
};
