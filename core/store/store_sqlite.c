/* store_sqlite — the embedded store backend: connections, schema,
 * transactions and the ops table (the other concerns: store_sqlite_int.h).
 *
 * Tables: resource (one row per type/id: current version, deleted flag),
 * version (every version, body NULL for a deletion; seq orders all writes),
 * idx (search index of the current version of live resources),
 * schema_version. One connection per thread (see store.h). */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/crypto.h"
#include "base/fjson.h"
#include "fhir/model.h"
#include "store/rcache.h"
#include "store/store_schema.h"
#include "store/store_sqlite_int.h"

/* 1: first; 2: number, quantity and uri parameters indexed, _id no longer;
 * 3: absolute references indexed as written, not as a local Type/id;
 * 4: every version row carries its checksum (sum, see sver_sum; computed for
 * every row of an older database when opened); 5: every R4 resource type
 * indexed, strings folded beyond ASCII (case and accents); 6: the branches
 * of search parameters evaluated with FHIRPath indexed; 7: the resource a
 * Bundle embeds (composition, message) indexed under "composition.…". An older
 * database is upgraded when opened, step by step in version order
 * (upgrade_schema). */
#define SCHEMA_VERSION 7
#define BUSY_TIMEOUT_MS 10000
#define DB_NAME "store.db"

static const char schema_sql[] =
	"CREATE TABLE schema_version(version INTEGER NOT NULL);"
	"CREATE TABLE resource(rid INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL,"
	" version INTEGER NOT NULL, deleted INTEGER NOT NULL, last_updated TEXT NOT NULL, UNIQUE(type, id));"
	"CREATE TABLE version(seq INTEGER PRIMARY KEY, rid INTEGER NOT NULL REFERENCES resource(rid),"
	" type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, op INTEGER NOT NULL,"
	" last_updated TEXT NOT NULL, body TEXT, sum BLOB, UNIQUE(rid, version));"
	"CREATE INDEX version_type ON version(type, seq);"
	"CREATE TABLE idx(rid INTEGER NOT NULL REFERENCES resource(rid), param TEXT NOT NULL,"
	" sys TEXT, val TEXT, lo INTEGER, hi INTEGER);"
	"CREATE INDEX idx_val ON idx(param, val);"
	"CREATE INDEX idx_date ON idx(param, lo);"
	"CREATE INDEX idx_rid ON idx(rid, param);"
	"INSERT INTO schema_version(version) VALUES(7);";

/* Added without a schema version bump: created when missing. */
static const char outbox_sql[] =
	"CREATE TABLE IF NOT EXISTS outbox(oid INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL,"
	" version INTEGER NOT NULL, deleted INTEGER NOT NULL, state INTEGER NOT NULL DEFAULT 0,"
	" attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
	" created TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_at);"
	"CREATE INDEX IF NOT EXISTS outbox_res ON outbox(type, id, oid);"
	"CREATE INDEX IF NOT EXISTS outbox_order ON outbox(state, oid);"
	/* what a record waits for (store_refs.h): the resources its version refers to */
	"CREATE TABLE IF NOT EXISTS outbox_ref(oid INTEGER NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL,"
	" PRIMARY KEY(oid, type, id));"
	"CREATE INDEX IF NOT EXISTS outbox_ref_res ON outbox_ref(type, id, oid);";

/* Added without a schema version bump: created when missing. */
static const char mark_sql[] = "CREATE TABLE IF NOT EXISTS mark(name TEXT PRIMARY KEY, value INTEGER NOT NULL);";

#define OB_COLS "SELECT oid, type, id, version, deleted, state, attempts, next_at, last_error, created FROM outbox "

#define HIST_COLS "SELECT type, id, version, op, last_updated, body, seq, sum FROM version "

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[S_BEGIN_READ] = "BEGIN",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_SAVEPOINT] = "SAVEPOINT w",
	[S_RELEASE] = "RELEASE w",
	[S_ROLLBACK_TO] = "ROLLBACK TO w",
	[S_GET_RES] = "SELECT rid, version, deleted FROM resource WHERE type = ?1 AND id = ?2",
	[S_INS_RES] = "INSERT INTO resource(type, id, version, deleted, last_updated) VALUES(?1, ?2, ?3, ?4, ?5)",
	[S_UPD_RES] = "UPDATE resource SET version = ?2, deleted = ?3, last_updated = ?4 WHERE rid = ?1",
	[S_INS_VER] = "INSERT INTO version(rid, type, id, version, op, last_updated, body, sum)"
		      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[S_DEL_IDX] = "DELETE FROM idx WHERE rid = ?1",
	[S_INS_IDX] = "INSERT INTO idx(rid, param, sys, val, lo, hi) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	[S_READ] = "SELECT v.version, v.body, v.last_updated, v.sum FROM resource r JOIN version v ON v.rid = r.rid"
		   " AND v.version = (CASE WHEN ?3 > 0 THEN ?3 ELSE r.version END)"
		   " WHERE r.type = ?1 AND r.id = ?2",
	/* ?5: lastUpdated lower bound ("" for all: fixed-width UTC text sorts as time) */
	[S_HIST_ID] = HIST_COLS "WHERE rid = (SELECT rid FROM resource WHERE type = ?1 AND id = ?2)"
				" AND last_updated >= ?5 AND seq < ?6 ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
	[S_HIST_ID_N] =
		"SELECT count(*) FROM version WHERE rid = (SELECT rid FROM resource WHERE type = ?1 AND id = ?2)"
		" AND last_updated >= ?5",
	[S_HIST_TYPE] =
		HIST_COLS "WHERE type = ?1 AND last_updated >= ?5 AND seq < ?6 ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
	[S_HIST_TYPE_N] = "SELECT count(*) FROM version WHERE type = ?1 AND last_updated >= ?5",
	[S_HIST_ALL] = HIST_COLS "WHERE last_updated >= ?5 AND seq < ?6 ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
	[S_HIST_ALL_N] = "SELECT count(*) FROM version WHERE last_updated >= ?5",
	[S_OB_ADD] = "INSERT INTO outbox(type, id, version, deleted, created) VALUES(?1, ?2, ?3, ?4, ?5)",
	/* the oldest pending records, when due, that nothing holds back: no
	 * earlier pending record of the same resource, of one it refers to or
	 * of one that refers to it (store.h's outbox contract). The unary +
	 * keeps state and next_at from choosing the index: the candidates are
	 * walked in oid order (outbox_order) until LIMIT are found, and each
	 * earlier record of a resource is looked up by outbox_res, instead of
	 * every pending record being checked against every earlier one on
	 * each take (a backlog of N cost N² row visits per record) */
	[S_OB_NEXT] = "SELECT o.oid, o.type, o.id, o.version, o.deleted, o.state, o.attempts, o.next_at,"
		      " o.last_error, o.created FROM outbox o WHERE o.state = 0 AND +o.next_at <= ?1"
		      " AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.type = o.type AND e.id = o.id"
		      " AND e.oid < o.oid AND +e.state = 0)"
		      " AND NOT EXISTS (SELECT 1 FROM outbox_ref f JOIN outbox e ON e.type = f.type AND e.id = f.id"
		      " AND e.oid < o.oid AND +e.state = 0 WHERE f.oid = o.oid)"
		      " AND NOT EXISTS (SELECT 1 FROM outbox_ref f JOIN outbox e ON e.oid = f.oid AND e.state = 0"
		      " WHERE f.type = o.type AND f.id = o.id AND f.oid < o.oid)"
		      " ORDER BY o.oid LIMIT ?2",
	/* a candidate read from a snapshot taken before another worker settled it */
	[S_OB_STILL_DUE] = "SELECT 1 FROM outbox WHERE oid = ?1 AND state = 0 AND next_at <= ?2",
	[S_OB_DELETE] = "DELETE FROM outbox WHERE oid = ?1",
	[S_OB_SETTLE] = "UPDATE outbox SET state = ?2, attempts = ?3, next_at = ?4, last_error = ?5 WHERE oid = ?1",
	[S_OB_LIST] = OB_COLS "WHERE state = ?1 ORDER BY oid LIMIT ?2 OFFSET ?3",
	[S_OB_LIST_ALL] = OB_COLS "ORDER BY oid LIMIT ?2 OFFSET ?3",
	[S_OB_COUNTS] = "SELECT coalesce(sum(state = 0), 0), coalesce(sum(state = 2), 0) FROM outbox",
	[S_COMMIT_LOG] = "COMMIT",
	[S_LOG_ADD] = "INSERT INTO appended(type, id, last_updated, ms, body, sum) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	[S_OB_RETRY_DEAD] = "UPDATE outbox SET state = 0, attempts = 0, next_at = 0, last_error = NULL WHERE state = 2"
			    " AND (?1 IS NULL OR type = ?1) AND (?2 IS NULL OR instr(last_error, ?2) > 0)"
			    " AND (?3 IS NULL OR created >= ?3) AND (?4 IS NULL OR created < ?4)",
	[S_OB_BODY] = "SELECT v.body FROM resource r JOIN version v ON v.rid = r.rid AND v.version = ?3"
		      " WHERE r.type = ?1 AND r.id = ?2",
	[S_OB_REF_ADD] = "INSERT OR IGNORE INTO outbox_ref(oid, type, id) VALUES(?1, ?2, ?3)",
	[S_OB_REF_DELETE] = "DELETE FROM outbox_ref WHERE oid = ?1",
};

struct sqlite_store *ss_of(struct store *s)
{
	return (struct sqlite_store *)s;
}

/* --- errors ----------------------------------------------------------------- */

enum store_status ss_db_fail(struct conn *c, struct store_error *err, int rc, const char *what)
{
	enum store_status st = STORE_IO;
	int prim = rc & 0xff;
	if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
		st = STORE_BUSY;
	else if (prim == SQLITE_NOMEM)
		st = STORE_NO_MEMORY;
	else if (prim == SQLITE_CONSTRAINT)
		st = STORE_CONFLICT;
	else if (prim == SQLITE_FULL) {
		/* The library's wording names its statement, not the cause the
		 * client and the operator can act on. */
		store_note_full(true);
		return store_fail(err, STORE_FULL,
				  "the gateway's storage is full: nothing was stored; retry once space is freed");
	}
	return store_fail(err, st, "%s: %s", what, c && c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
}

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

/* --- checksums --------------------------------------------------------------- */

int ss_schema_version(void) { return SCHEMA_VERSION; }

bool ss_sum_ok(sqlite3_stmt *q, int sum_col, const char *type, const char *id, int64_t version,
	       const char *last_updated, const char *body, size_t len)
{
	const void *stored = sqlite3_column_blob(q, sum_col);
	if (!stored || sqlite3_column_bytes(q, sum_col) != SVER_SUM_LEN)
		return false;
	uint8_t want[SVER_SUM_LEN];
	return sver_sum(type, id, version, last_updated, body, len, want) == 0 && memcmp(want, stored, SVER_SUM_LEN) == 0;
}

enum store_status ss_verify(sqlite3_stmt *q, int sum_col, const char *type, const char *id, int64_t version,
			    const char *last_updated, const char *body, size_t len, struct store_error *err)
{
	if (ss_sum_ok(q, sum_col, type, id, version, last_updated, body, len))
		return STORE_OK;
	return store_note_corrupt(err, type, id, version);
}

/* --- statements --------------------------------------------------------------- */

sqlite3_stmt *ss_stmt(struct conn *c, enum stmt_id id, struct store_error *err)
{
	if (!c->st[id]) {
		int rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL);
		if (rc != SQLITE_OK) {
			ss_db_fail(c, err, rc, "preparing a statement");
			c->st[id] = NULL;
			return NULL;
		}
	}
	return c->st[id];
}

void ss_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Runs a statement that returns no rows. */
enum store_status ss_run(struct conn *c, enum stmt_id id, struct store_error *err)
{
	sqlite3_stmt *s = ss_stmt(c, id, err);
	if (!s)
		return err ? err->status : STORE_IO;
	int rc = sqlite3_step(s);
	ss_done(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return ss_db_fail(c, err, rc, stmt_sql[id]);
	if (id == S_COMMIT)
		store_note_full(false);
	return STORE_OK;
}

int ss_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	return v ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
}

/* --- connections ---------------------------------------------------------------- */

static void conn_free(struct conn *c)
{
	if (!c)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	free(c);
}

static int exec_pragma(sqlite3 *db, const char *sql, const char *want, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW && want) {
			const char *got = (const char *)sqlite3_column_text(s, 0);
			if (!got || strcmp(got, want) != 0) {
				set_err(err, errlen, "%s: answered '%s'", sql, got ? got : "");
				sqlite3_finalize(s);
				return -1;
			}
		}
		if (rc == SQLITE_ROW || rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_OK) {
		set_err(err, errlen, "%s: %s", sql, sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

static struct conn *conn_open(struct sqlite_store *ss, char *err, size_t errlen)
{
	struct conn *c = calloc(1, sizeof *c);
	if (!c) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	c->owner = ss;
	int rc = sqlite3_open_v2(ss->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		set_err(err, errlen, "%s: %s", ss->path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		conn_free(c);
		return NULL;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
	if (exec_pragma(c->db, "PRAGMA journal_mode=WAL", "wal", err, errlen) ||
	    exec_pragma(c->db, "PRAGMA synchronous=FULL", NULL, err, errlen) ||
	    exec_pragma(c->db, "PRAGMA foreign_keys=ON", NULL, err, errlen) ||
	    /* a writing store checkpoints on its own thread (store_sqlite_ckpt.c),
	     * and cuts the log's file back when the log starts again; one open
	     * beside a gateway leaves checkpoints to it. A 16 MB page cache. */
	    exec_pragma(c->db, ss->ckpt.inited ? "PRAGMA wal_autocheckpoint=0" : "PRAGMA wal_autocheckpoint=8000", NULL,
			err, errlen) ||
	    exec_pragma(c->db, "PRAGMA journal_size_limit=" SS_CKPT_FILE_LIMIT, NULL, err, errlen) ||
	    exec_pragma(c->db, "PRAGMA cache_size=-16000", NULL, err, errlen) ||
	    /* savepoint (statement) journals in memory: each write of a group
	     * runs in a savepoint, and a file journal would copy every page it
	     * touches through the kernel first */
	    exec_pragma(c->db, "PRAGMA temp_store=MEMORY", NULL, err, errlen)) {
		conn_free(c);
		return NULL;
	}
	if (ss->ckpt.inited)
		ss_ckpt_attach(ss, c->db);
	return c;
}

/* Thread exit: the connection goes back to the pool. */
static void conn_release(void *p)
{
	struct conn *c = p;
	if (c->in_txn) {
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		c->in_txn = false;
	}
	struct sqlite_store *ss = c->owner;
	pthread_mutex_lock(&ss->mu);
	c->next_free = ss->free_list;
	ss->free_list = c;
	pthread_mutex_unlock(&ss->mu);
}

struct conn *ss_get_conn(struct sqlite_store *ss, struct store_error *err)
{
	struct conn *c = pthread_getspecific(ss->key);
	if (c)
		return c;
	pthread_mutex_lock(&ss->mu);
	c = ss->free_list;
	if (c)
		ss->free_list = c->next_free;
	pthread_mutex_unlock(&ss->mu);
	if (!c) {
		char msg[256];
		c = conn_open(ss, msg, sizeof msg);
		if (!c) {
			store_fail(err, STORE_IO, "opening a database connection: %s", msg);
			return NULL;
		}
		pthread_mutex_lock(&ss->mu);
		c->next_all = ss->all;
		ss->all = c;
		pthread_mutex_unlock(&ss->mu);
	}
	c->next_free = NULL;
	if (pthread_setspecific(ss->key, c) != 0) {
		conn_release(c);
		store_fail(err, STORE_NO_MEMORY, "no thread-specific slot for a connection");
		return NULL;
	}
	return c;
}

/* --- open / close ------------------------------------------------------------------ */

static void sqlite_close(struct store *s)
{
	struct sqlite_store *ss = ss_of(s);
	/* the committer empties the queue (every write answered), then ends */
	sq_destroy(&ss->gc);
	ss_ckpt_stop(ss);
	pthread_setspecific(ss->key, NULL);
	pthread_key_delete(ss->key);
	for (struct conn *c = ss->all, *next; c; c = next) {
		next = c->next_all;
		if (c->in_txn)
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		conn_free(c);
	}
	pthread_mutex_destroy(&ss->mu);
	rcache_free(ss->base.cache);
	if (ss->lock_fd >= 0)
		close(ss->lock_fd); /* releases the directory */
	free(ss->path);
	free(ss);
}

/* Rebuilds the search index of every live resource from its current
 * version (a schema upgrade that indexes more parameters), inside the
 * caller's transaction. */
static int reindex_all(struct conn *c, char *err, size_t errlen)
{
	struct store_error se = {0};
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_exec(c->db, "DELETE FROM idx", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(c->db,
					"SELECT r.rid, r.type, v.body FROM resource r JOIN version v"
					" ON v.rid = r.rid AND v.version = r.version WHERE r.deleted = 0",
					-1, &q, NULL);
	struct index_ctx x = {.c = c, .ins = rc == SQLITE_OK ? ss_stmt(c, S_INS_IDX, &se) : NULL};
	while (rc == SQLITE_OK && x.ins && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *body = (const char *)sqlite3_column_text(q, 2);
		cJSON *res = body ? fjson_parse(body, (size_t)sqlite3_column_bytes(q, 2), NULL, NULL) : NULL;
		if (!res) {
			set_err(err, errlen, "reindexing: a stored resource cannot be read back");
			sqlite3_finalize(q);
			return -1;
		}
		x.rid = sqlite3_column_int64(q, 0);
		int r = search_params_extract((const char *)sqlite3_column_text(q, 1), res, ss_index_row, &x);
		cJSON_Delete(res);
		if (r != 0) {
			set_err(err, errlen, "reindexing: %s", x.rc ? sqlite3_errmsg(c->db) : "out of memory");
			sqlite3_finalize(q);
			return -1;
		}
		rc = SQLITE_OK;
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE || !x.ins) {
		set_err(err, errlen, "reindexing: %s", x.ins ? sqlite3_errmsg(c->db) : se.message);
		return -1;
	}
	return 0;
}

/* Schema 3 to 4: the sum column, computed for every version row as it
 * stands (what an older build stored is taken as written), inside the
 * caller's transaction. */
static int add_sums(struct conn *c, char *err, size_t errlen)
{
	sqlite3_stmt *q = NULL, *u = NULL;
	int rc = sqlite3_prepare_v2(c->db, "SELECT count(*) FROM pragma_table_info('version') WHERE name = 'sum'", -1,
				    &q, NULL);
	bool have = rc == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) > 0;
	sqlite3_finalize(q);
	q = NULL;
	if (rc == SQLITE_OK && !have)
		rc = sqlite3_exec(c->db, "ALTER TABLE version ADD COLUMN sum BLOB", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(c->db, "SELECT seq, type, id, version, last_updated, body FROM version", -1, &q,
					NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(c->db, "UPDATE version SET sum = ?2 WHERE seq = ?1", -1, &u, NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		uint8_t sum[SVER_SUM_LEN];
		const char *body = (const char *)sqlite3_column_text(q, 5);
		if (sver_sum((const char *)sqlite3_column_text(q, 1), (const char *)sqlite3_column_text(q, 2),
			   sqlite3_column_int64(q, 3), (const char *)sqlite3_column_text(q, 4), body,
			   (size_t)sqlite3_column_bytes(q, 5), sum) != 0) {
			set_err(err, errlen, "adding checksums: the digest failed");
			sqlite3_finalize(q);
			sqlite3_finalize(u);
			return -1;
		}
		sqlite3_bind_int64(u, 1, sqlite3_column_int64(q, 0));
		sqlite3_bind_blob(u, 2, sum, sizeof sum, SQLITE_TRANSIENT);
		rc = sqlite3_step(u);
		sqlite3_reset(u);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		set_err(err, errlen, "adding checksums: %s", sqlite3_errmsg(c->db));
	sqlite3_finalize(q);
	sqlite3_finalize(u);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Start-up checks, so a damaged file is refused before anything is
 * written to it. PRAGMA quick_check (no index-content cross-check) reads
 * every page: about 1 s of CPU per 400 MB (200,000 resources). Up to
 * QUICK_CHECK_MAX_BYTES it runs over the whole file; above, over the small
 * tables only (schema_version, resource, outbox, mark and their indexes).
 * Either way the newest SAMPLE_VERSIONS versions are then read back and
 * verified against their checksums (check_sample, once the schema is set
 * up). The full check is `crosswalk check`. */
#define QUICK_CHECK_MAX_BYTES (512LL << 20)
#define SAMPLE_VERSIONS 1000

static void damaged_at_start(const char *path, const char *what, char *err, size_t errlen)
{
	set_err(err, errlen,
		"%s is damaged (%s); the gateway will not use it. Restore the data directory from a "
		"backup (a copy taken while the gateway was stopped, with its -wal file if present), or "
		"run `crosswalk check` to see what is damaged and `crosswalk check --repair` to rebuild "
		"what can be rebuilt (the search index and SQLite's own indexes; stored resources "
		"cannot be rebuilt)",
		path, what);
}

static int check_quick(struct conn *c, const char *path, char *err, size_t errlen)
{
	static const char *const small[] = {"PRAGMA quick_check(schema_version)", "PRAGMA quick_check(resource)",
					    "PRAGMA quick_check(outbox)", "PRAGMA quick_check(mark)"};
	static const char *const whole[] = {"PRAGMA quick_check(1)"};
	struct stat sb;
	bool bounded = stat(path, &sb) == 0 && sb.st_size > QUICK_CHECK_MAX_BYTES;
	const char *const *sql = bounded ? small : whole;
	size_t n = bounded ? sizeof small / sizeof *small : 1;
	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *q = NULL;
		int rc = sqlite3_prepare_v2(c->db, sql[i], -1, &q, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(q);
		const char *first = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0) : NULL;
		if (!first || strcmp(first, "ok") != 0) {
			damaged_at_start(path, first ? first : sqlite3_errmsg(c->db), err, errlen);
			sqlite3_finalize(q);
			return -1;
		}
		sqlite3_finalize(q);
	}
	return 0;
}

/* The newest SAMPLE_VERSIONS versions read back (pages that cannot be
 * read refuse the store) and verified against their checksums (a mismatch
 * is reported through store_note_corrupt: /healthz is degraded from the
 * start; see check_quick). */
static int check_sample(struct conn *c, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(
		c->db, "SELECT type, id, version, last_updated, body, sum FROM version ORDER BY seq DESC LIMIT ?1", -1,
		&q, NULL);
	if (rc == SQLITE_OK)
		sqlite3_bind_int(q, 1, SAMPLE_VERSIONS);
	while ((rc == SQLITE_OK || rc == SQLITE_ROW) && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *type = (const char *)sqlite3_column_text(q, 0),
			   *id = (const char *)sqlite3_column_text(q, 1);
		/* content damage is not the file's: the rest is served, the damaged
		 * version is refused when read, and it is reported now */
		if (!ss_sum_ok(q, 5, type ? type : "?", id ? id : "?", sqlite3_column_int64(q, 2),
			       (const char *)sqlite3_column_text(q, 3), (const char *)sqlite3_column_text(q, 4),
			       (size_t)sqlite3_column_bytes(q, 4)))
			store_note_corrupt(NULL, type ? type : "?", id ? id : "?", sqlite3_column_int64(q, 2));
	}
	if (rc != SQLITE_DONE)
		damaged_at_start(path, sqlite3_errmsg(c->db), err, errlen);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : -1;
}

int ss_schema_create(sqlite3 *db)
{
	int rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, outbox_sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, mark_sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, ss_log_sql, NULL, NULL, NULL);
	return rc;
}

/* Brings a database of version from (1 .. SCHEMA_VERSION - 1) to
 * SCHEMA_VERSION inside the caller's transaction: the steps in version
 * order, then the new version recorded. Steps that only need the search
 * index rebuilt share one rebuild at the end. */
static int upgrade_schema(struct conn *c, int from, char *err, size_t errlen)
{
	bool reindex = false;
	if (from < 3) /* absolute references indexed as written */
		reindex = true;
	if (from < 4 && add_sums(c, err, errlen) != 0) /* checksums */
		return -1;
	if (from < 7) /* 5: every resource type, strings folded; 6: FHIRPath branches; 7: embedded resources */
		reindex = true;
	if (reindex && reindex_all(c, err, errlen) != 0)
		return -1;
	char sql[64];
	snprintf(sql, sizeof sql, "UPDATE schema_version SET version = %d", SCHEMA_VERSION);
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		set_err(err, errlen, "upgrading the schema: %s", sqlite3_errmsg(c->db));
		return -1;
	}
	return 0;
}

/* The steps sschema_setup takes on a SQLite connection. */
static int schema_exists(void *conn, char *err, size_t errlen)
{
	struct conn *c = conn;
	sqlite3_stmt *s = NULL;
	int have = -1;
	if (sqlite3_prepare_v2(c->db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
			       -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		have = sqlite3_column_int(s, 0) > 0;
	sqlite3_finalize(s);
	if (have < 0)
		set_err(err, errlen, "reading the schema: %s", sqlite3_errmsg(c->db));
	return have;
}

static int schema_create(void *conn, char *err, size_t errlen)
{
	struct conn *c = conn;
	if (sqlite3_exec(c->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
		set_err(err, errlen, "creating the schema: %s", sqlite3_errmsg(c->db));
		return -1;
	}
	return 0;
}

static int64_t schema_version(void *conn, char *err, size_t errlen)
{
	struct conn *c = conn;
	sqlite3_stmt *s = NULL;
	int64_t version = -1;
	if (sqlite3_prepare_v2(c->db, "SELECT coalesce(max(version), 0) FROM schema_version", -1, &s, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		version = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (version < 0)
		set_err(err, errlen, "reading the schema version: %s", sqlite3_errmsg(c->db));
	return version;
}

static int schema_upgrade(void *conn, int64_t from, char *err, size_t errlen)
{
	return upgrade_schema(conn, (int)from, err, errlen);
}

static const struct sschema_ops sqlite_schema = {schema_exists, schema_create, schema_version, schema_upgrade};

/* Creates, upgrades or refuses the schema (store_schema.h) in one write
 * transaction, then adds the tables every version gets when missing. */
static int setup_schema(struct conn *c, char *err, size_t errlen)
{
	int rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		set_err(err, errlen, "locking the database: %s", sqlite3_errmsg(c->db));
		return -1;
	}
	if (sschema_setup(&sqlite_schema, c, SCHEMA_VERSION, err, errlen) != 0)
		goto fail;
	if (sqlite3_exec(c->db, outbox_sql, NULL, NULL, NULL) != SQLITE_OK) {
		set_err(err, errlen, "creating the outbox: %s", sqlite3_errmsg(c->db));
		goto fail;
	}
	if (sqlite3_exec(c->db, mark_sql, NULL, NULL, NULL) != SQLITE_OK) {
		set_err(err, errlen, "creating the marks: %s", sqlite3_errmsg(c->db));
		goto fail;
	}
	if (sqlite3_exec(c->db, ss_log_sql, NULL, NULL, NULL) != SQLITE_OK) {
		set_err(err, errlen, "creating the log of appended records: %s", sqlite3_errmsg(c->db));
		goto fail;
	}
	if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		set_err(err, errlen, "committing the schema: %s", sqlite3_errmsg(c->db));
		goto fail;
	}
	return 0;
fail:
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static const struct store_ops sqlite_ops;

int ss_take_lock(const char *data_dir, bool *busy, char *err, size_t errlen)
{
	if (busy)
		*busy = false;
	char path[4200];
	snprintf(path, sizeof path, "%s/store.lock", data_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK) {
			if (busy)
				*busy = true;
			set_err(err, errlen, "%s is in use by another process (it holds %s)", data_dir, path);
		} else
			set_err(err, errlen, "%s: cannot lock: %s", path, strerror(e));
		return -1;
	}
	return fd;
}

int store_open_sqlite(const char *data_dir, unsigned flags, size_t cache_bytes, struct store **out, char *err,
		      size_t errlen)
{
	*out = NULL;
	if (!sqlite3_threadsafe()) {
		set_err(err, errlen, "the SQLite library was built without thread support");
		return -1;
	}
	/* checksums are computed on the committer thread: the crypto library is
	 * set up before the caller can register an exit handler that closes
	 * the store (see crypto_init) */
	if (crypto_init() != 0) {
		set_err(err, errlen, "the crypto library could not be initialised");
		return -1;
	}
	if (!data_dir || !data_dir[0]) {
		set_err(err, errlen, "no data directory given");
		return -1;
	}
	if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
		set_err(err, errlen, "%s: cannot create: %s", data_dir, strerror(errno));
		return -1;
	}
	struct stat sb;
	if (stat(data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		set_err(err, errlen, "%s: not a directory", data_dir);
		return -1;
	}
	if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
		/* Anyone who may write there may swap the database or its journal. */
		set_err(err, errlen,
			"%s: data directory is writable by group or others (mode %04o); make it private to the "
			"gateway's user, e.g. chmod 0700 %s",
			data_dir, (unsigned)(sb.st_mode & 07777), data_dir);
		return -1;
	}
	bool shared = flags & STORE_OPEN_SHARED;
	int lock_fd = shared ? -1 : ss_take_lock(data_dir, NULL, err, errlen);
	if (!shared && lock_fd < 0)
		return -1;
	struct sqlite_store *ss = calloc(1, sizeof *ss);
	size_t plen = strlen(data_dir) + sizeof "/" DB_NAME;
	if (!ss || !(ss->path = malloc(plen))) {
		if (lock_fd >= 0)
			close(lock_fd);
		free(ss);
		set_err(err, errlen, "out of memory");
		return -1;
	}
	ss->lock_fd = lock_fd;
	snprintf(ss->path, plen, "%s/%s", data_dir, DB_NAME);
	ss->base.ops = &sqlite_ops;
	ss->base.readonly = shared;
	/* Created here so it gets 0600 whatever the umask; SQLite gives the WAL
	 * and shared-memory files the same mode. */
	int fd = open(ss->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		set_err(err, errlen, "%s: %s", ss->path, strerror(errno));
		goto fail;
	}
	close(fd);
	if (pthread_mutex_init(&ss->mu, NULL) != 0) {
		set_err(err, errlen, "cannot create a mutex");
		goto fail;
	}
	if (sq_init(&ss->gc, ss_gc_run, ss_gc_finish, ss) != 0) {
		pthread_mutex_destroy(&ss->mu);
		set_err(err, errlen, "cannot create a mutex");
		goto fail;
	}
	if (!shared && ss_ckpt_init(ss) != 0) {
		pthread_mutex_destroy(&ss->mu);
		sq_destroy(&ss->gc);
		set_err(err, errlen, "cannot create a mutex");
		goto fail;
	}
	if (pthread_key_create(&ss->key, conn_release) != 0) {
		set_err(err, errlen, "cannot create a thread-specific key");
		goto fail_mutex;
	}
	struct conn *c = conn_open(ss, err, errlen);
	if (!c || check_quick(c, ss->path, err, errlen) != 0 || setup_schema(c, err, errlen) != 0 ||
	    check_sample(c, ss->path, err, errlen) != 0 || ss_log_open(ss, c, err, errlen) != 0) {
		conn_free(c);
		pthread_key_delete(ss->key);
		goto fail_mutex;
	}
	c->next_all = ss->all;
	ss->all = c;
	c->next_free = ss->free_list;
	ss->free_list = c;
	if (!(ss->writer = conn_open(ss, err, errlen)))
		goto fail_conns;
	ss->writer->next_all = ss->all;
	ss->all = ss->writer;
	if (!shared) {
		sq_set_idle(&ss->gc, ss_gc_idle, SS_LOG_IDLE_MS);
		if (ss_ckpt_start(ss, err, errlen) != 0)
			goto fail_conns;
		if (sq_start(&ss->gc, 1) != 0) {
			set_err(err, errlen, "cannot start the store's committer thread");
			goto fail_conns;
		}
		ss->base.cache = rcache_new(cache_bytes); /* none without memory: reads still work */
	}
	*out = &ss->base;
	return 0;
fail_conns:
	conn_free(ss->writer);
	conn_free(c);
	pthread_key_delete(ss->key);
fail_mutex:
	pthread_mutex_destroy(&ss->mu);
	sq_destroy(&ss->gc);
	ss_ckpt_stop(ss);
fail:
	if (ss->lock_fd >= 0)
		close(ss->lock_fd);
	free(ss->path);
	free(ss);
	return -1;
}

/* --- transactions ----------------------------------------------------------------------- */

/* If the database rolled the caller's transaction back by itself (it does on
 * some I/O and memory errors), forget it. */
void ss_sync_txn(struct conn *c)
{
	if (c->in_txn && sqlite3_get_autocommit(c->db))
		c->in_txn = false;
}

static enum store_status sqlite_begin(struct store *s, struct store_error *err)
{
	GET_CONN(c, s, err);
	if (c->in_txn)
		return store_fail(err, STORE_CONFLICT, "a transaction is already open on this thread");
	enum store_status st = ss_run(c, S_BEGIN_WRITE, err);
	if (st == STORE_OK)
		c->in_txn = true;
	return st;
}

static enum store_status sqlite_commit(struct store *s, struct store_error *err)
{
	GET_CONN(c, s, err);
	ss_sync_txn(c);
	if (!c->in_txn)
		return store_fail(err, STORE_INVALID, "no transaction is open on this thread");
	c->in_txn = false;
	enum store_status st = ss_run(c, S_COMMIT, err);
	if (st != STORE_OK && !sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return st;
}

static enum store_status sqlite_rollback(struct store *s, struct store_error *err)
{
	GET_CONN(c, s, err);
	ss_sync_txn(c);
	if (!c->in_txn)
		return store_fail(err, STORE_INVALID, "no transaction is open on this thread");
	c->in_txn = false;
	return ss_run(c, S_ROLLBACK, err);
}

/* A write runs in its own transaction, or in a savepoint inside the caller's. */
enum store_status ss_write_begin(struct conn *c, struct store_error *err)
{
	ss_sync_txn(c);
	return ss_run(c, c->in_txn ? S_SAVEPOINT : S_BEGIN_WRITE, err);
}

enum store_status ss_write_end(struct conn *c, enum store_status st, struct store_error *err)
{
	if (c->in_txn) {
		ss_sync_txn(c);
		if (!c->in_txn)
			return st != STORE_OK ? st
					      : store_fail(err, STORE_IO, "the database rolled the transaction back");
		if (st == STORE_OK)
			return ss_run(c, S_RELEASE, err);
		ss_run(c, S_ROLLBACK_TO, NULL);
		ss_run(c, S_RELEASE, NULL);
		return st;
	}
	if (st == STORE_OK) {
		st = ss_run(c, S_COMMIT, err);
		if (st == STORE_OK)
			return st;
	}
	if (!sqlite3_get_autocommit(c->db))
		ss_run(c, S_ROLLBACK, NULL);
	return st;
}

/* Read-only work sees one snapshot (count and page agree). */
enum store_status ss_read_begin(struct conn *c, bool *opened, struct store_error *err)
{
	ss_sync_txn(c);
	*opened = false;
	if (c->in_txn || !sqlite3_get_autocommit(c->db))
		return STORE_OK;
	enum store_status st = ss_run(c, S_BEGIN_READ, err);
	*opened = st == STORE_OK;
	return st;
}

void ss_read_end(struct conn *c, bool opened)
{
	if (opened)
		ss_run(c, S_ROLLBACK, NULL);
}

static enum store_status sqlite_mark_get(struct store *s, const char *name, int64_t *value, struct store_error *err)
{
	GET_CONN(c, s, err);
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(c->db, "SELECT value FROM mark WHERE name = ?1", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		ss_bind_text(st, 1, name);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			*value = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return store_fail(err, STORE_NOT_FOUND, "no mark %s", name);
	return rc == SQLITE_ROW ? STORE_OK : ss_db_fail(c, err, rc, "reading a mark");
}

static enum store_status sqlite_mark_set(struct store *s, const char *name, int64_t value, struct store_error *err)
{
	if (s->readonly)
		return store_fail(err, STORE_INVALID, "the store is open read-only");
	GET_CONN(c, s, err);
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(c->db, "INSERT OR REPLACE INTO mark(name, value) VALUES(?1, ?2)", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		ss_bind_text(st, 1, name);
		sqlite3_bind_int64(st, 2, value);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? STORE_OK : ss_db_fail(c, err, rc, "writing a mark");
}

static const struct store_ops sqlite_ops = {
	.close = sqlite_close,
	.begin = sqlite_begin,
	.commit = sqlite_commit,
	.rollback = sqlite_rollback,
	.create = sqlite_create,
	.update = sqlite_update,
	.read = sqlite_read,
	.del = sqlite_delete,
	.history = sqlite_history,
	.search = sqlite_search,
	.read_text = sqlite_read_text,
	.outbox_add = sqlite_outbox_add,
	.outbox_next = sqlite_outbox_next,
	.outbox_settle = sqlite_outbox_settle,
	.outbox_list = sqlite_outbox_list,
	.outbox_counts = sqlite_outbox_counts,
	.outbox_retry_dead = sqlite_outbox_retry_dead,
	.mark_get = sqlite_mark_get,
	.mark_set = sqlite_mark_set,
	.submit = sqlite_submit,
	.append_text = true,
	.drain = sqlite_drain,
	.settle = sqlite_settle,
	.snapshot = sqlite_snapshot,
	.export_types = sqlite_export_types,
	.export_scan = sqlite_export_scan,
};
