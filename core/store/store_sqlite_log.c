/* store_sqlite_log — appended records (store.h, "Appended records"): the
 * log table they are committed to, and indexing it later in bulk.
 *
 * A record the caller waits for costs one row at the end of the log: its
 * group's commit writes the record and little else (no resource, version
 * or search rows, no index pages spread over the database). The committer
 * indexes the log — each record becomes the resource, version 1 and search
 * rows a create would have written, and leaves the log in the same
 * transaction — in chunks:
 *   - when it has had nothing to commit for SS_LOG_IDLE_MS;
 *   - after a group, when the log holds more than SS_LOG_HIGH records (so
 *     the log, and a settle's wait, stay bounded under a load that never
 *     pauses);
 *   - before a read that could hold a logged record (sqlite_settle: the
 *     reader's request joins the commit queue and everything logged is
 *     indexed after its group).
 * A crash between a record's commit and its indexing loses nothing: the log
 * is counted when the store opens and indexed from there. */
#include "store/store_sqlite_int.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/metrics.h"

/* Rows indexed per transaction when the committer has nothing else to do
 * (a group arriving meanwhile waits for one such chunk at most). */
#define SS_LOG_CHUNK 256
/* Beyond this many waiting records, a chunk is indexed after every group:
 * four times as many records as that group logged (so the log shrinks under a
 * load that never pauses), at least SS_LOG_STEP_MIN (a chunk's commit writes
 * the index pages it touched: fewer, larger chunks write fewer pages per
 * record), at most SS_LOG_CHUNK. */
#define SS_LOG_HIGH 20000
#define SS_LOG_STEP_MIN 64

const char ss_log_sql[] =
	"CREATE TABLE IF NOT EXISTS appended(seq INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL,"
	" last_updated TEXT NOT NULL, ms INTEGER NOT NULL, body TEXT NOT NULL, sum BLOB NOT NULL);";

static void note_type(struct sqlite_store *ss, const char *type)
{
	int n = atomic_load(&ss->n_log_types);
	for (int i = 0; i < n; i++)
		if (!strcmp(ss->log_types[i], type))
			return;
	if (n == (int)(sizeof ss->log_types / sizeof ss->log_types[0])) {
		atomic_store(&ss->log_any_type, true);
		return;
	}
	snprintf(ss->log_types[n], sizeof ss->log_types[n], "%s", type);
	atomic_store(&ss->n_log_types, n + 1); /* published once the name is there */
}

int ss_log_open(struct sqlite_store *ss, struct conn *c, char *err, size_t errlen)
{
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(c->db, "SELECT type, count(*) FROM appended GROUP BY type", -1, &q, NULL);
	int64_t n = 0;
	while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		note_type(ss, (const char *)sqlite3_column_text(q, 0));
		n += sqlite3_column_int64(q, 1);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "reading the log of appended records: %s", sqlite3_errmsg(c->db));
		return -1;
	}
	atomic_store(&ss->log_pending, n);
	return 0;
}

void ss_log_added(struct sqlite_store *ss, const char *type, int64_t n)
{
	note_type(ss, type);
	atomic_fetch_add(&ss->log_pending, n);
}

/* Removes the log's rows up to seq last, which this transaction has just
 * indexed, without overwriting them: the log's pages are not zeroed as
 * SQLite's secure_delete (on in Debian's build) would, since each row's
 * text is now in the version table of the same transaction and zeroing the
 * copy hides nothing. Zeroing writes every page the chunk frees to the WAL
 * (and the checkpoint copies it back): about a quarter of the bytes the
 * durable gateway writes per record (docs/audit.md). The connection's
 * setting is put back. */
static enum store_status forget_indexed(struct conn *c, int64_t last, struct store_error *err)
{
	int secure = -1; /* unknown: left as it is */
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(c->db, "PRAGMA secure_delete", -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		secure = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	if (secure > 0)
		sqlite3_exec(c->db, "PRAGMA secure_delete=OFF", NULL, NULL, NULL);
	sqlite3_stmt *d = NULL;
	int rc = sqlite3_prepare_v2(c->db, "DELETE FROM appended WHERE seq <= ?1", -1, &d, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(d, 1, last);
		rc = sqlite3_step(d);
	}
	sqlite3_finalize(d);
	if (secure > 0)
		sqlite3_exec(c->db, secure == 2 ? "PRAGMA secure_delete=FAST" : "PRAGMA secure_delete=ON", NULL, NULL,
			     NULL);
	if (rc != SQLITE_DONE)
		return ss_db_fail(c, err, rc, "emptying the log of appended records");
	return STORE_OK;
}

static enum store_status log_index(struct sqlite_store *ss, int64_t max, int64_t *left, struct store_error *err);

enum store_status ss_log_index(struct sqlite_store *ss, int64_t max, int64_t *left, struct store_error *err)
{
	int64_t t0 = ss_mono_us(), tail0 = ss_tail_us;
	enum store_status st = log_index(ss, max, left, err);
	int64_t tail = ss_tail_us - tail0;
	metrics_counter_add(METRICS_STORE_COMMITTER_TAIL_US, (unsigned long)tail);
	metrics_counter_add(METRICS_STORE_COMMITTER_INDEX_US, (unsigned long)(ss_mono_us() - t0 - tail));
	return st;
}

static enum store_status log_index(struct sqlite_store *ss, int64_t max, int64_t *left, struct store_error *err)
{
	struct conn *c = ss->writer;
	*left = atomic_load(&ss->log_pending);
	if (*left <= 0)
		return STORE_OK;
	enum store_status st = ss_run(c, S_BEGIN_WRITE, err);
	if (st != STORE_OK)
		return st;
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(
		c->db, "SELECT seq, type, id, last_updated, ms, body, sum FROM appended ORDER BY seq LIMIT ?1", -1, &q,
		NULL);
	int64_t last = 0, n = 0;
	if (rc == SQLITE_OK)
		sqlite3_bind_int64(q, 1, max);
	while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *type = (const char *)sqlite3_column_text(q, 1);
		const char *id = (const char *)sqlite3_column_text(q, 2);
		const char *when = (const char *)sqlite3_column_text(q, 3);
		const char *body = (const char *)sqlite3_column_text(q, 5);
		size_t len = (size_t)sqlite3_column_bytes(q, 5);
		st = ss_verify(q, 6, type ? type : "?", id ? id : "?", 1, when, body, len, err);
		if (st == STORE_OK)
			st = ss_log_index_one(c, type, id, body, len, when, sqlite3_column_int64(q, 4),
					      sqlite3_column_blob(q, 6), err);
		if (st != STORE_OK)
			break;
		last = sqlite3_column_int64(q, 0);
		n++;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(q);
	if (st == STORE_OK && rc != SQLITE_DONE)
		st = ss_db_fail(c, err, rc, "reading the log of appended records");
	if (st == STORE_OK && n)
		st = forget_indexed(c, last, err);
	if (st == STORE_OK) {
		/* no fsync of its own: the next group's commit syncs the log with
		 * it; until then a crash (of the machine: a killed process loses
		 * nothing written) at worst undoes the chunk, and its records are
		 * still in the log */
		sqlite3_exec(c->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
		st = ss_run(c, S_COMMIT_LOG, err);
		ss_sync_full(c);
	}
	if (st != STORE_OK) {
		if (!sqlite3_get_autocommit(c->db))
			ss_run(c, S_ROLLBACK, NULL);
		return st;
	}
	*left = atomic_fetch_sub(&ss->log_pending, n) - n;
	if (n == 0 && *left > 0) /* counted but not there: trust the table */
		atomic_store(&ss->log_pending, *left = 0);
	return STORE_OK;
}

bool ss_gc_idle(void *ctx, bool busy)
{
	struct sqlite_store *ss = ctx;
	int64_t left = atomic_load(&ss->log_pending);
	if (left <= 0 || (busy && left <= SS_LOG_HIGH))
		return left > 0;
	int64_t chunk = SS_LOG_CHUNK;
	if (busy) {
		chunk = 4 * atomic_load(&ss->log_last_group);
		chunk = chunk < SS_LOG_STEP_MIN ? SS_LOG_STEP_MIN : chunk > SS_LOG_CHUNK ? SS_LOG_CHUNK : chunk;
	}
	struct store_error err = {0};
	if (ss_log_index(ss, chunk, &left, &err) != STORE_OK) {
		/* tried again at the next pause; a reader's settle reports it */
		log_event(LOG_ERROR, "store_log_index", "appended records could not be indexed", "reason", err.message,
			  (const char *)NULL);
		return false;
	}
	return left > 0;
}

/* Whether appended records of type may be waiting (NULL: of any type). */
static bool logged_type(struct sqlite_store *ss, const char *type)
{
	if (!type || atomic_load(&ss->log_any_type))
		return true;
	int n = atomic_load(&ss->n_log_types);
	for (int i = 0; i < n; i++)
		if (!strcmp(ss->log_types[i], type))
			return true;
	return false;
}

enum store_status sqlite_settle(struct store *s, const char *type, struct store_error *err)
{
	struct sqlite_store *ss = ss_of(s);
	if (atomic_load(&ss->log_pending) <= 0 || !logged_type(ss, type))
		return STORE_OK;
	struct gc_req me = {.settle = true, .err = err, .st = STORE_OK};
	if (!sq_enqueue(&ss->gc, &me.item, false))
		return STORE_OK; /* closing: what is indexed is read */
	sq_wait(&ss->gc, &me.item);
	return me.st;
}
