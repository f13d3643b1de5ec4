/* store_sqlite — the embedded store backend; the only file that includes
 * <sqlite3.h>.
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

#include <sqlite3.h>

#include "base/fjson.h"
#include "fhir/model.h"
#include "store/rcache.h"
#include "fhir/search_params.h"

/* 1: first; 2: number, quantity and uri parameters indexed, _id no longer
 * (a version 1 database is reindexed when opened) */
#define SCHEMA_VERSION 2
#define BUSY_TIMEOUT_MS 10000
#define DB_NAME "store.db"

static const char schema_sql[] =
	"CREATE TABLE schema_version(version INTEGER NOT NULL);"
	"CREATE TABLE resource(rid INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL,"
	" version INTEGER NOT NULL, deleted INTEGER NOT NULL, last_updated TEXT NOT NULL, UNIQUE(type, id));"
	"CREATE TABLE version(seq INTEGER PRIMARY KEY, rid INTEGER NOT NULL REFERENCES resource(rid),"
	" type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, op INTEGER NOT NULL,"
	" last_updated TEXT NOT NULL, body TEXT, UNIQUE(rid, version));"
	"CREATE INDEX version_type ON version(type, seq);"
	"CREATE TABLE idx(rid INTEGER NOT NULL REFERENCES resource(rid), param TEXT NOT NULL,"
	" sys TEXT, val TEXT, lo INTEGER, hi INTEGER);"
	"CREATE INDEX idx_val ON idx(param, val);"
	"CREATE INDEX idx_date ON idx(param, lo);"
	"CREATE INDEX idx_rid ON idx(rid, param);"
	"INSERT INTO schema_version(version) VALUES(2);";

/* Added without a schema version bump: created when missing. */
static const char outbox_sql[] =
	"CREATE TABLE IF NOT EXISTS outbox(oid INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL,"
	" version INTEGER NOT NULL, deleted INTEGER NOT NULL, state INTEGER NOT NULL DEFAULT 0,"
	" attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
	" created TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_at);"
	"CREATE INDEX IF NOT EXISTS outbox_res ON outbox(type, id, oid);";

enum stmt_id {
	S_BEGIN_WRITE,
	S_BEGIN_READ,
	S_COMMIT,
	S_ROLLBACK,
	S_SAVEPOINT,
	S_RELEASE,
	S_ROLLBACK_TO,
	S_GET_RES,
	S_INS_RES,
	S_UPD_RES,
	S_INS_VER,
	S_DEL_IDX,
	S_INS_IDX,
	S_READ,
	S_HIST_ID,
	S_HIST_ID_N,
	S_HIST_TYPE,
	S_HIST_TYPE_N,
	S_HIST_ALL,
	S_HIST_ALL_N,
	S_OB_ADD,
	S_OB_NEXT,
	S_OB_DELETE,
	S_OB_SETTLE,
	S_OB_LIST,
	S_OB_LIST_ALL,
	S_OB_COUNTS,
	S_COUNT
};

#define OB_COLS "SELECT oid, type, id, version, deleted, state, attempts, next_at, last_error, created FROM outbox "

#define HIST_COLS "SELECT type, id, version, op, last_updated, body FROM version "

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
	[S_INS_VER] = "INSERT INTO version(rid, type, id, version, op, last_updated, body)"
		      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[S_DEL_IDX] = "DELETE FROM idx WHERE rid = ?1",
	[S_INS_IDX] = "INSERT INTO idx(rid, param, sys, val, lo, hi) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	[S_READ] = "SELECT v.version, v.body, v.last_updated FROM resource r JOIN version v ON v.rid = r.rid"
		   " AND v.version = (CASE WHEN ?3 > 0 THEN ?3 ELSE r.version END)"
		   " WHERE r.type = ?1 AND r.id = ?2",
	/* ?5: lastUpdated lower bound ("" for all: fixed-width UTC text sorts as time) */
	[S_HIST_ID] = HIST_COLS "WHERE rid = (SELECT rid FROM resource WHERE type = ?1 AND id = ?2)"
				" AND last_updated >= ?5 ORDER BY version DESC LIMIT ?3 OFFSET ?4",
	[S_HIST_ID_N] = "SELECT count(*) FROM version WHERE rid = (SELECT rid FROM resource WHERE type = ?1 AND id = ?2)"
			" AND last_updated >= ?5",
	[S_HIST_TYPE] = HIST_COLS "WHERE type = ?1 AND last_updated >= ?5 ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
	[S_HIST_TYPE_N] = "SELECT count(*) FROM version WHERE type = ?1 AND last_updated >= ?5",
	[S_HIST_ALL] = HIST_COLS "WHERE last_updated >= ?5 ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
	[S_HIST_ALL_N] = "SELECT count(*) FROM version WHERE last_updated >= ?5",
	[S_OB_ADD] = "INSERT INTO outbox(type, id, version, deleted, created) VALUES(?1, ?2, ?3, ?4, ?5)",
	[S_OB_NEXT] = OB_COLS "o WHERE state = 0 AND next_at <= ?1 AND NOT EXISTS (SELECT 1 FROM outbox p"
			      " WHERE p.type = o.type AND p.id = o.id AND p.oid < o.oid AND p.state = 0)"
			      " ORDER BY oid LIMIT 1",
	[S_OB_DELETE] = "DELETE FROM outbox WHERE oid = ?1",
	[S_OB_SETTLE] = "UPDATE outbox SET state = ?2, attempts = ?3, next_at = ?4, last_error = ?5 WHERE oid = ?1",
	[S_OB_LIST] = OB_COLS "WHERE state = ?1 ORDER BY oid LIMIT ?2 OFFSET ?3",
	[S_OB_LIST_ALL] = OB_COLS "ORDER BY oid LIMIT ?2 OFFSET ?3",
	[S_OB_COUNTS] = "SELECT coalesce(sum(state = 0), 0), coalesce(sum(state = 2), 0) FROM outbox",
};

struct sqlite_store;

struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[S_COUNT];
	bool in_txn; /* a caller's store_begin is open */
	struct conn *next_all, *next_free;
	struct sqlite_store *owner;
};

struct write_req;

/* A single write waiting for the group commit (see do_write). */
struct gc_req {
	struct write_req *w;
	struct store_error *err;
	enum store_status st;
	bool done;
	struct gc_req *next;
};

struct sqlite_store {
	struct store base;
	char *path;
	int lock_fd;        /* holds data_dir/store.lock; -1 when shared */
	pthread_mutex_t mu; /* guards all and free_list */
	pthread_key_t key;  /* this thread's struct conn */
	struct conn *all, *free_list;
	/* group commit: single writes from many threads share one transaction
	 * and one fsync; the first waiting writer leads, the rest wait */
	pthread_mutex_t gc_mu;
	pthread_cond_t gc_cv;
	/* the connection every group runs on, used by one leader at a time: as
	 * the only connection writing outside callers' transactions, its page
	 * cache stays valid from one group to the next */
	struct conn *writer;
	struct gc_req *gc_head, *gc_tail;
	bool gc_leading;
};

static struct sqlite_store *ss_of(struct store *s)
{
	return (struct sqlite_store *)s;
}

/* --- errors ----------------------------------------------------------------- */

static enum store_status db_fail(struct conn *c, struct store_error *err, int rc, const char *what)
{
	enum store_status st = STORE_IO;
	int prim = rc & 0xff;
	if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
		st = STORE_BUSY;
	else if (prim == SQLITE_NOMEM)
		st = STORE_NO_MEMORY;
	else if (prim == SQLITE_CONSTRAINT)
		st = STORE_CONFLICT;
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

/* --- statements --------------------------------------------------------------- */

static sqlite3_stmt *stmt(struct conn *c, enum stmt_id id, struct store_error *err)
{
	if (!c->st[id]) {
		int rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL);
		if (rc != SQLITE_OK) {
			db_fail(c, err, rc, "preparing a statement");
			c->st[id] = NULL;
			return NULL;
		}
	}
	return c->st[id];
}

static void done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Runs a statement that returns no rows. */
static enum store_status run(struct conn *c, enum stmt_id id, struct store_error *err)
{
	sqlite3_stmt *s = stmt(c, id, err);
	if (!s)
		return err ? err->status : STORE_IO;
	int rc = sqlite3_step(s);
	done(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_fail(c, err, rc, stmt_sql[id]);
	return STORE_OK;
}

static int bind_text(sqlite3_stmt *s, int i, const char *v)
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
	    /* fewer, larger checkpoints under write load; a 16 MB page cache */
	    exec_pragma(c->db, "PRAGMA wal_autocheckpoint=8000", NULL, err, errlen) ||
	    exec_pragma(c->db, "PRAGMA cache_size=-16000", NULL, err, errlen) ||
	    /* savepoint (statement) journals in memory: each write of a group
	     * runs in a savepoint, and a file journal would copy every page it
	     * touches through the kernel first */
	    exec_pragma(c->db, "PRAGMA temp_store=MEMORY", NULL, err, errlen)) {
		conn_free(c);
		return NULL;
	}
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

static struct conn *get_conn(struct sqlite_store *ss, struct store_error *err)
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

#define GET_CONN(c, s, err)                                   \
	struct conn *c = get_conn(ss_of(s), err);             \
	if (!c)                                               \
		return err ? err->status : STORE_IO

/* --- open / close ------------------------------------------------------------------ */

static void sqlite_close(struct store *s)
{
	struct sqlite_store *ss = ss_of(s);
	pthread_setspecific(ss->key, NULL);
	pthread_key_delete(ss->key);
	for (struct conn *c = ss->all, *next; c; c = next) {
		next = c->next_all;
		if (c->in_txn)
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		conn_free(c);
	}
	pthread_mutex_destroy(&ss->mu);
	pthread_mutex_destroy(&ss->gc_mu);
	pthread_cond_destroy(&ss->gc_cv);
	rcache_free(ss->base.cache);
	if (ss->lock_fd >= 0)
		close(ss->lock_fd); /* releases the directory */
	free(ss->path);
	free(ss);
}

struct index_ctx {
	struct conn *c;
	sqlite3_stmt *ins;
	int64_t rid;
	int rc;
};

static int index_row(void *p, const struct search_index_value *v);

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
	struct index_ctx x = {.c = c, .ins = rc == SQLITE_OK ? stmt(c, S_INS_IDX, &se) : NULL};
	while (rc == SQLITE_OK && x.ins && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *body = (const char *)sqlite3_column_text(q, 2);
		cJSON *res = body ? fjson_parse(body, (size_t)sqlite3_column_bytes(q, 2), NULL, NULL) : NULL;
		if (!res) {
			set_err(err, errlen, "reindexing: a stored resource cannot be read back");
			sqlite3_finalize(q);
			return -1;
		}
		x.rid = sqlite3_column_int64(q, 0);
		int r = search_params_extract((const char *)sqlite3_column_text(q, 1), res, index_row, &x);
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

static int setup_schema(struct conn *c, char *err, size_t errlen)
{
	int rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		set_err(err, errlen, "locking the database: %s", sqlite3_errmsg(c->db));
		return -1;
	}
	sqlite3_stmt *s = NULL;
	int have = -1;
	rc = sqlite3_prepare_v2(c->db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
				-1, &s, NULL);
	if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		have = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	if (have < 0) {
		set_err(err, errlen, "reading the schema: %s", sqlite3_errmsg(c->db));
		goto fail;
	}
	if (have == 0) {
		if (sqlite3_exec(c->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
			set_err(err, errlen, "creating the schema: %s", sqlite3_errmsg(c->db));
			goto fail;
		}
	} else {
		int version = -1;
		if (sqlite3_prepare_v2(c->db, "SELECT max(version) FROM schema_version", -1, &s, NULL) == SQLITE_OK &&
		    sqlite3_step(s) == SQLITE_ROW)
			version = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
		if (version == 1) {
			if (reindex_all(c, err, errlen) != 0)
				goto fail;
			if (sqlite3_exec(c->db, "UPDATE schema_version SET version = 2", NULL, NULL, NULL) != SQLITE_OK) {
				set_err(err, errlen, "upgrading the schema: %s", sqlite3_errmsg(c->db));
				goto fail;
			}
			version = 2;
		}
		if (version != SCHEMA_VERSION) {
			set_err(err, errlen, "the database has schema version %d; this build reads version %d", version,
				SCHEMA_VERSION);
			goto fail;
		}
	}
	if (sqlite3_exec(c->db, outbox_sql, NULL, NULL, NULL) != SQLITE_OK) {
		set_err(err, errlen, "creating the outbox: %s", sqlite3_errmsg(c->db));
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

/* The directory's only writer: an exclusive lock on data_dir/store.lock,
 * held by the returned descriptor (released when it closes, also when the
 * process dies). -1 with the reason when another process holds it. */
static int take_lock(const char *data_dir, char *err, size_t errlen)
{
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
		if (e == EWOULDBLOCK)
			set_err(err, errlen, "%s is in use by another process (it holds %s)", data_dir, path);
		else
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
	bool shared = flags & STORE_OPEN_SHARED;
	int lock_fd = shared ? -1 : take_lock(data_dir, err, errlen);
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
	pthread_mutex_init(&ss->gc_mu, NULL);
	pthread_cond_init(&ss->gc_cv, NULL);
	if (pthread_key_create(&ss->key, conn_release) != 0) {
		set_err(err, errlen, "cannot create a thread-specific key");
		goto fail_mutex;
	}
	struct conn *c = conn_open(ss, err, errlen);
	if (!c || setup_schema(c, err, errlen) != 0) {
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
	if (!shared)
		ss->base.cache = rcache_new(cache_bytes); /* none without memory: reads still work */
	*out = &ss->base;
	return 0;
fail_conns:
	conn_free(c);
	pthread_key_delete(ss->key);
fail_mutex:
	pthread_mutex_destroy(&ss->mu);
	pthread_mutex_destroy(&ss->gc_mu);
	pthread_cond_destroy(&ss->gc_cv);
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
static void sync_txn(struct conn *c)
{
	if (c->in_txn && sqlite3_get_autocommit(c->db))
		c->in_txn = false;
}

static enum store_status sqlite_begin(struct store *s, struct store_error *err)
{
	GET_CONN(c, s, err);
	if (c->in_txn)
		return store_fail(err, STORE_CONFLICT, "a transaction is already open on this thread");
	enum store_status st = run(c, S_BEGIN_WRITE, err);
	if (st == STORE_OK)
		c->in_txn = true;
	return st;
}

static enum store_status sqlite_commit(struct store *s, struct store_error *err)
{
	GET_CONN(c, s, err);
	sync_txn(c);
	if (!c->in_txn)
		return store_fail(err, STORE_INVALID, "no transaction is open on this thread");
	c->in_txn = false;
	enum store_status st = run(c, S_COMMIT, err);
	if (st != STORE_OK && !sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return st;
}

static enum store_status sqlite_rollback(struct store *s, struct store_error *err)
{
	GET_CONN(c, s, err);
	sync_txn(c);
	if (!c->in_txn)
		return store_fail(err, STORE_INVALID, "no transaction is open on this thread");
	c->in_txn = false;
	return run(c, S_ROLLBACK, err);
}

/* A write runs in its own transaction, or in a savepoint inside the caller's. */
static enum store_status write_begin(struct conn *c, struct store_error *err)
{
	sync_txn(c);
	return run(c, c->in_txn ? S_SAVEPOINT : S_BEGIN_WRITE, err);
}

static enum store_status write_end(struct conn *c, enum store_status st, struct store_error *err)
{
	if (c->in_txn) {
		sync_txn(c);
		if (!c->in_txn)
			return st != STORE_OK ? st
					      : store_fail(err, STORE_IO, "the database rolled the transaction back");
		if (st == STORE_OK)
			return run(c, S_RELEASE, err);
		run(c, S_ROLLBACK_TO, NULL);
		run(c, S_RELEASE, NULL);
		return st;
	}
	if (st == STORE_OK) {
		st = run(c, S_COMMIT, err);
		if (st == STORE_OK)
			return st;
	}
	if (!sqlite3_get_autocommit(c->db))
		run(c, S_ROLLBACK, NULL);
	return st;
}

/* Read-only work sees one snapshot (count and page agree). */
static enum store_status read_begin(struct conn *c, bool *opened, struct store_error *err)
{
	sync_txn(c);
	*opened = false;
	if (c->in_txn || !sqlite3_get_autocommit(c->db))
		return STORE_OK;
	enum store_status st = run(c, S_BEGIN_READ, err);
	*opened = st == STORE_OK;
	return st;
}

static void read_end(struct conn *c, bool opened)
{
	if (opened)
		run(c, S_ROLLBACK, NULL);
}

/* --- writes ---------------------------------------------------------------------------------- */

/* Moves every member of src to the end of dst, names kept. (cJSON's
 * InsertItemInArray refuses objects, so order is built by appending.) */
static void move_members(cJSON *dst, cJSON *src)
{
	while (src->child)
		cJSON_AddItemToArray(dst, cJSON_DetachItemViaPointer(src, src->child));
}

static bool add_member(cJSON *obj, const char *name, cJSON *item)
{
	if (!item)
		return false;
	if (!cJSON_AddItemToObject(obj, name, item)) {
		cJSON_Delete(item);
		return false;
	}
	return true;
}

/* A copy of resource with id and meta.versionId / meta.lastUpdated set, in
 * the order a reader expects: resourceType, id, meta, the rest. */
static enum store_status stamp(const cJSON *resource, const char *id, int64_t version, const char *when,
			       cJSON **out, struct store_error *err)
{
	char vtext[24];
	snprintf(vtext, sizeof vtext, "%lld", (long long)version);
	cJSON *copy = cJSON_Duplicate(resource, true);
	cJSON *res = cJSON_CreateObject(), *meta = cJSON_CreateObject();
	if (!copy || !res || !meta)
		goto oom;
	cJSON_DeleteItemFromObjectCaseSensitive(copy, "id");
	cJSON *rt = cJSON_DetachItemFromObjectCaseSensitive(copy, "resourceType");
	if (rt)
		cJSON_AddItemToArray(res, rt);
	if (!add_member(res, "id", cJSON_CreateString(id)) ||
	    !add_member(meta, "versionId", cJSON_CreateString(vtext)) ||
	    !add_member(meta, "lastUpdated", cJSON_CreateString(when)))
		goto oom;
	cJSON *old = cJSON_DetachItemFromObjectCaseSensitive(copy, "meta");
	if (old) {
		cJSON_DeleteItemFromObjectCaseSensitive(old, "versionId");
		cJSON_DeleteItemFromObjectCaseSensitive(old, "lastUpdated");
		move_members(meta, old);
		cJSON_Delete(old);
	}
	if (!add_member(res, "meta", meta)) {
		meta = NULL; /* freed by add_member */
		goto oom;
	}
	move_members(res, copy);
	cJSON_Delete(copy);
	*out = res;
	return STORE_OK;
oom:
	cJSON_Delete(copy);
	cJSON_Delete(res);
	cJSON_Delete(meta);
	return store_fail(err, STORE_NO_MEMORY, "out of memory");
}


/* _id is searched on the resource table itself (see criterion_sql): its
 * index row would only cost a random page per write. */
static bool is_id_param(const char *param)
{
	return param[0] == '_' && strcmp(param, "_id") == 0;
}

static int index_row(void *p, const struct search_index_value *v)
{
	struct index_ctx *x = p;
	if (is_id_param(v->param))
		return 0;
	sqlite3_stmt *s = x->ins;
	sqlite3_bind_int64(s, 1, x->rid);
	bind_text(s, 2, v->param);
	bind_text(s, 3, v->sys);
	bind_text(s, 4, v->val);
	if (v->kind == SEARCH_PARAM_DATE) {
		sqlite3_bind_int64(s, 5, v->lo);
		sqlite3_bind_int64(s, 6, v->hi);
	} else if (v->kind == SEARCH_PARAM_NUMBER || v->kind == SEARCH_PARAM_QUANTITY) {
		/* the same columns, holding reals (an open end as -/+Inf) */
		sqlite3_bind_double(s, 5, v->num_lo);
		sqlite3_bind_double(s, 6, v->num_hi);
	}
	int rc = sqlite3_step(s);
	done(s);
	if (rc != SQLITE_DONE) {
		x->rc = rc;
		return 1;
	}
	return 0;
}

enum write_kind { W_CREATE, W_UPDATE, W_DELETE };

/* An index row worked out before the write (see prepare_create). */
struct pre_row {
	const char *param; /* static: from the search parameter table */
	enum search_param_kind kind;
	char *sys, *val;
	int64_t lo, hi;
	double num_lo, num_hi;
};

struct write_req {
	enum write_kind kind;
	const char *type, *id;
	const cJSON *resource; /* NULL for W_DELETE */
	int64_t if_match;      /* 0 = none */
	enum store_op op;
	bool created;          /* out: a new resource */
	int64_t version;       /* out */
	cJSON *stored;         /* out */
	/* a create with a fresh id is version 1 whatever else happens, so the
	 * writer thread stamps, prints and indexes it before the group commit;
	 * the group's leader then only runs the statements */
	bool pre;
	char *pre_text;
	char pre_when[STORE_TIME_SIZE];
	struct pre_row *rows;
	size_t nrows, caprows;
	bool rows_oom;
};

static int collect_row(void *p, const struct search_index_value *v)
{
	struct write_req *w = p;
	if (is_id_param(v->param))
		return 0;
	if (w->nrows == w->caprows) {
		size_t cap = w->caprows ? w->caprows * 2 : 32;
		struct pre_row *r = realloc(w->rows, cap * sizeof *r);
		if (!r) {
			w->rows_oom = true;
			return 1;
		}
		w->rows = r;
		w->caprows = cap;
	}
	struct pre_row *r = &w->rows[w->nrows];
	r->param = v->param;
	r->kind = v->kind;
	r->sys = v->sys ? strdup(v->sys) : NULL;
	r->val = v->val ? strdup(v->val) : NULL;
	r->lo = v->lo;
	r->hi = v->hi;
	r->num_lo = v->num_lo;
	r->num_hi = v->num_hi;
	if ((v->sys && !r->sys) || (v->val && !r->val)) {
		free(r->sys);
		free(r->val);
		w->rows_oom = true;
		return 1;
	}
	w->nrows++;
	return 0;
}

static void release_pre(struct write_req *w)
{
	for (size_t i = 0; i < w->nrows; i++) {
		free(w->rows[i].sys);
		free(w->rows[i].val);
	}
	free(w->rows);
	free(w->pre_text);
	w->rows = NULL;
	w->pre_text = NULL;
	w->nrows = w->caprows = 0;
	w->pre = false;
}

static enum store_status stamp(const cJSON *resource, const char *id, int64_t version, const char *when,
			       cJSON **out, struct store_error *err);

/* Stamps, prints and indexes a fresh create as version 1 (see write_req). */
static void prepare_create(struct write_req *w)
{
	if (w->kind != W_CREATE || w->op != STORE_OP_CREATE || !w->resource)
		return;
	store_now(w->pre_when, NULL);
	if (stamp(w->resource, w->id, 1, w->pre_when, &w->stored, NULL) != STORE_OK)
		return;
	w->pre_text = fjson_print(w->stored, false, NULL);
	if (w->pre_text && search_params_extract(w->type, w->stored, collect_row, w) == 0 && !w->rows_oom) {
		w->pre = true;
		return;
	}
	release_pre(w);
	cJSON_Delete(w->stored);
	w->stored = NULL;
}

static enum store_status write_body(struct conn *c, struct write_req *w, struct store_error *err)
{
	sqlite3_stmt *s = stmt(c, S_GET_RES, err);
	if (!s)
		return err ? err->status : STORE_IO;
	bind_text(s, 1, w->type);
	bind_text(s, 2, w->id);
	int rc = sqlite3_step(s);
	bool exists = rc == SQLITE_ROW, deleted = false;
	int64_t rid = 0, cur = 0;
	if (exists) {
		rid = sqlite3_column_int64(s, 0);
		cur = sqlite3_column_int64(s, 1);
		deleted = sqlite3_column_int(s, 2) != 0;
	}
	done(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(c, err, rc, "looking up the resource");

	switch (w->kind) {
	case W_CREATE:
		if (exists && !deleted)
			return store_fail(err, STORE_CONFLICT, "%s/%s already exists", w->type, w->id);
		break;
	case W_UPDATE:
		if (w->if_match && !exists)
			return store_fail(err, STORE_VERSION_MISMATCH, "%s/%s: expected version %lld, but it does not exist",
					  w->type, w->id, (long long)w->if_match);
		if (w->if_match && cur != w->if_match)
			return store_fail(err, STORE_VERSION_MISMATCH,
					  "%s/%s: expected version %lld, the current version is %lld", w->type, w->id,
					  (long long)w->if_match, (long long)cur);
		break;
	case W_DELETE:
		if (!exists)
			return store_fail(err, STORE_NOT_FOUND, "no %s with that id", w->type);
		if (deleted) {
			w->version = cur;
			return STORE_OK;
		}
		break;
	}
	w->created = !exists || deleted;
	w->version = cur + 1;
	char when[STORE_TIME_SIZE];
	bool use_pre = w->pre && w->version == 1;
	if (use_pre) {
		memcpy(when, w->pre_when, sizeof when);
	} else {
		store_now(when, NULL);
		if (w->stored) { /* prepared for a version this is not */
			cJSON_Delete(w->stored);
			w->stored = NULL;
		}
	}

	char *text = NULL;
	enum store_status st = STORE_OK;
	if (use_pre) {
		text = w->pre_text;
		w->pre_text = NULL;
	} else if (w->resource) {
		st = stamp(w->resource, w->id, w->version, when, &w->stored, err);
		if (st != STORE_OK)
			return st;
		text = fjson_print(w->stored, false, NULL);
		if (!text)
			return store_fail(err, STORE_NO_MEMORY, "out of memory");
	}

	bool del = w->kind == W_DELETE;
	if (exists) {
		s = stmt(c, S_UPD_RES, err);
		if (!s)
			goto io;
		sqlite3_bind_int64(s, 1, rid);
		sqlite3_bind_int64(s, 2, w->version);
		sqlite3_bind_int(s, 3, del);
		bind_text(s, 4, when);
	} else {
		s = stmt(c, S_INS_RES, err);
		if (!s)
			goto io;
		bind_text(s, 1, w->type);
		bind_text(s, 2, w->id);
		sqlite3_bind_int64(s, 3, w->version);
		sqlite3_bind_int(s, 4, del);
		bind_text(s, 5, when);
	}
	rc = sqlite3_step(s);
	done(s);
	if (rc != SQLITE_DONE)
		goto fail;
	if (!exists)
		rid = sqlite3_last_insert_rowid(c->db);

	s = stmt(c, S_INS_VER, err);
	if (!s)
		goto io;
	sqlite3_bind_int64(s, 1, rid);
	bind_text(s, 2, w->type);
	bind_text(s, 3, w->id);
	sqlite3_bind_int64(s, 4, w->version);
	sqlite3_bind_int(s, 5, (int)w->op);
	bind_text(s, 6, when);
	bind_text(s, 7, text);
	rc = sqlite3_step(s);
	done(s);
	if (rc != SQLITE_DONE)
		goto fail;

	s = stmt(c, S_DEL_IDX, err);
	if (!s)
		goto io;
	sqlite3_bind_int64(s, 1, rid);
	rc = sqlite3_step(s);
	done(s);
	if (rc != SQLITE_DONE)
		goto fail;

	if (use_pre) {
		struct index_ctx x = {.c = c, .ins = stmt(c, S_INS_IDX, err), .rid = rid};
		if (!x.ins)
			goto io;
		for (size_t i = 0; i < w->nrows; i++) {
			const struct pre_row *pr = &w->rows[i];
			struct search_index_value v = {pr->param, pr->kind, pr->sys, pr->val,
						       pr->lo,    pr->hi,   pr->num_lo, pr->num_hi};
			if (index_row(&x, &v) != 0) {
				rc = x.rc;
				goto fail;
			}
		}
	} else if (w->stored) {
		struct index_ctx x = {.c = c, .ins = stmt(c, S_INS_IDX, err), .rid = rid};
		if (!x.ins)
			goto io;
		int r = search_params_extract(w->type, w->stored, index_row, &x);
		if (r != 0) {
			if (x.rc) {
				rc = x.rc;
				goto fail;
			}
			st = store_fail(err, STORE_NO_MEMORY, "out of memory while indexing");
			goto out;
		}
	}
	goto out;
fail:
	st = db_fail(c, err, rc, "writing the resource");
	goto out;
io:
	st = err ? err->status : STORE_IO;
out:
	free(text);
	return st;
}

/* Runs a batch of queued single writes on c in one transaction: each in its
 * own savepoint (a failing write fails alone), one COMMIT (one fsync) for all.
 * A failed COMMIT fails every write of the batch. */
static void run_batch(struct conn *c, struct gc_req *batch)
{
	struct store_error berr;
	enum store_status st = run(c, S_BEGIN_WRITE, &berr);
	for (struct gc_req *r = batch; r; r = r->next) {
		if (st != STORE_OK) {
			r->st = st;
			if (r->err)
				*r->err = berr;
			continue;
		}
		enum store_status ws = run(c, S_SAVEPOINT, r->err);
		if (ws == STORE_OK)
			ws = write_body(c, r->w, r->err);
		if (ws == STORE_OK) {
			ws = run(c, S_RELEASE, r->err);
		} else if (!sqlite3_get_autocommit(c->db)) {
			run(c, S_ROLLBACK_TO, NULL);
			run(c, S_RELEASE, NULL);
		}
		r->st = ws;
	}
	if (st != STORE_OK)
		return;
	if (sqlite3_get_autocommit(c->db)) {
		/* the database ended the transaction itself: nothing is durable */
		for (struct gc_req *r = batch; r; r = r->next)
			if (r->st == STORE_OK)
				r->st = store_fail(r->err, STORE_IO, "the database rolled the transaction back");
		return;
	}
	enum store_status cs = run(c, S_COMMIT, &berr);
	if (cs != STORE_OK) {
		if (!sqlite3_get_autocommit(c->db))
			run(c, S_ROLLBACK, NULL);
		for (struct gc_req *r = batch; r; r = r->next) {
			if (r->st == STORE_OK) {
				r->st = cs;
				if (r->err)
					*r->err = berr;
			}
		}
	}
}

static enum store_status do_write(struct store *s, struct write_req *w, struct store_error *err)
{
	GET_CONN(c, s, err);
	enum store_status st;
	sync_txn(c);
	if (c->in_txn) {
		/* inside the caller's transaction: a savepoint there */
		st = write_begin(c, err);
		if (st == STORE_OK)
			st = write_end(c, write_body(c, w, err), err);
	} else {
		struct sqlite_store *ss = ss_of(s);
		prepare_create(w);
		struct gc_req me = {.w = w, .err = err, .st = STORE_OK};
		pthread_mutex_lock(&ss->gc_mu);
		if (ss->gc_tail)
			ss->gc_tail->next = &me;
		else
			ss->gc_head = &me;
		ss->gc_tail = &me;
		while (!me.done) {
			if (!ss->gc_leading) {
				/* lead: take everything queued so far, including me */
				ss->gc_leading = true;
				struct gc_req *batch = ss->gc_head;
				ss->gc_head = ss->gc_tail = NULL;
				pthread_mutex_unlock(&ss->gc_mu);
				run_batch(ss->writer, batch);
				pthread_mutex_lock(&ss->gc_mu);
				for (struct gc_req *r = batch, *next; r; r = next) {
					next = r->next;
					r->done = true;
				}
				ss->gc_leading = false;
				pthread_cond_broadcast(&ss->gc_cv);
			} else {
				pthread_cond_wait(&ss->gc_cv, &ss->gc_mu);
			}
		}
		pthread_mutex_unlock(&ss->gc_mu);
		st = me.st;
		release_pre(w);
	}
	if (st != STORE_OK) {
		cJSON_Delete(w->stored);
		w->stored = NULL;
	}
	return st;
}

static enum store_status sqlite_create(struct store *s, const char *type, const cJSON *resource, const char *id,
				       cJSON **out, struct store_error *err)
{
	char fresh[STORE_ID_SIZE];
	if (!id) {
		if (store_new_id(fresh) != 0)
			return store_fail(err, STORE_IO, "no randomness for a new id");
		id = fresh;
	}
	struct write_req w = {
		.kind = W_CREATE, .type = type, .id = id, .resource = resource,
		.op = id == fresh ? STORE_OP_CREATE : STORE_OP_UPDATE,
	};
	enum store_status st = do_write(s, &w, err);
	if (out)
		*out = w.stored;
	else
		cJSON_Delete(w.stored);
	return st;
}

static enum store_status sqlite_update(struct store *s, const char *type, const char *id, const cJSON *resource,
				       int64_t if_match, bool *created, cJSON **out, struct store_error *err)
{
	struct write_req w = {
		.kind = W_UPDATE, .type = type, .id = id, .resource = resource, .if_match = if_match,
		.op = STORE_OP_UPDATE,
	};
	enum store_status st = do_write(s, &w, err);
	if (created)
		*created = st == STORE_OK && w.created;
	if (out)
		*out = w.stored;
	else
		cJSON_Delete(w.stored);
	return st;
}

static enum store_status sqlite_delete(struct store *s, const char *type, const char *id, int64_t *version,
				       struct store_error *err)
{
	struct write_req w = {.kind = W_DELETE, .type = type, .id = id, .op = STORE_OP_DELETE};
	enum store_status st = do_write(s, &w, err);
	if (version && st == STORE_OK)
		*version = w.version;
	return st;
}

/* --- reads --------------------------------------------------------------------------------------- */

static enum store_status parse_body(const char *text, int len, cJSON **out, struct store_error *err)
{
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	/* It was accepted once under the configured limits; only depth stays
	 * bounded, as cJSON frees recursively. */
	lim.max_members = lim.max_array_items = lim.memory_budget = SIZE_MAX;
	struct fjson_error fe;
	*out = fjson_parse(text, (size_t)len, &lim, &fe);
	if (!*out)
		return store_fail(err, fe.code == FJSON_NO_MEMORY ? STORE_NO_MEMORY : STORE_IO,
				  "a stored resource cannot be read back: %s", fjson_code_text(fe.code));
	return STORE_OK;
}

static void copy_text(char *dst, size_t size, const unsigned char *src);

static enum store_status sqlite_read_text(struct store *s, const char *type, const char *id, int64_t version,
					  struct store_text *out, struct store_error *err)
{
	GET_CONN(c, s, err);
	sqlite3_stmt *q = stmt(c, S_READ, err);
	if (!q)
		return err ? err->status : STORE_IO;
	bind_text(q, 1, type);
	bind_text(q, 2, id);
	sqlite3_bind_int64(q, 3, version);
	int rc = sqlite3_step(q);
	enum store_status st = STORE_OK;
	if (rc == SQLITE_ROW) {
		const char *body = (const char *)sqlite3_column_text(q, 1);
		int n = sqlite3_column_bytes(q, 1);
		if (!body) {
			st = store_fail(err, STORE_GONE, "%s/%s was deleted", type, id);
		} else if (!(out->text = malloc((size_t)n + 1))) {
			st = store_fail(err, STORE_NO_MEMORY, "out of memory");
		} else {
			memcpy(out->text, body, (size_t)n);
			out->text[n] = '\0';
			out->len = (size_t)n;
			out->version = sqlite3_column_int64(q, 0);
			copy_text(out->last_updated, sizeof out->last_updated, sqlite3_column_text(q, 2));
		}
	} else if (rc == SQLITE_DONE) {
		st = store_fail(err, STORE_NOT_FOUND, version ? "no such version of %s/%s" : "no %s with id %s",
				type, id);
	} else {
		st = db_fail(c, err, rc, "reading the resource");
	}
	done(q);
	return st;
}

static enum store_status sqlite_read(struct store *s, const char *type, const char *id, int64_t version,
				     cJSON **out, struct store_error *err)
{
	GET_CONN(c, s, err);
	sqlite3_stmt *q = stmt(c, S_READ, err);
	if (!q)
		return err ? err->status : STORE_IO;
	bind_text(q, 1, type);
	bind_text(q, 2, id);
	sqlite3_bind_int64(q, 3, version);
	int rc = sqlite3_step(q);
	enum store_status st;
	if (rc == SQLITE_ROW) {
		const char *body = (const char *)sqlite3_column_text(q, 1);
		if (!body)
			st = store_fail(err, STORE_GONE, "%s/%s was deleted", type, id);
		else
			st = parse_body(body, sqlite3_column_bytes(q, 1), out, err);
	} else if (rc == SQLITE_DONE) {
		st = store_fail(err, STORE_NOT_FOUND, version ? "no such version of %s/%s" : "no %s with id %s",
				type, id);
	} else {
		st = db_fail(c, err, rc, "reading the resource");
	}
	done(q);
	return st;
}

static enum store_status grow(struct store_page *p, size_t *cap, struct store_error *err)
{
	if (p->n < *cap)
		return STORE_OK;
	size_t ncap = *cap ? *cap * 2 : 16;
	struct store_entry *n = realloc(p->items, ncap * sizeof *n);
	if (!n)
		return store_fail(err, STORE_NO_MEMORY, "out of memory");
	p->items = n;
	*cap = ncap;
	return STORE_OK;
}

static void copy_text(char *dst, size_t size, const unsigned char *src)
{
	snprintf(dst, size, "%s", src ? (const char *)src : "");
}

/* STORE_OK when type/id has any version, else STORE_NOT_FOUND. */
static enum store_status exists(struct conn *c, const char *type, const char *id, struct store_error *err)
{
	sqlite3_stmt *q = stmt(c, S_GET_RES, err);
	if (!q)
		return err ? err->status : STORE_IO;
	bind_text(q, 1, type);
	bind_text(q, 2, id);
	int rc = sqlite3_step(q);
	done(q);
	if (rc == SQLITE_ROW)
		return STORE_OK;
	if (rc == SQLITE_DONE)
		return store_fail(err, STORE_NOT_FOUND, "no %s with id %s", type, id);
	return db_fail(c, err, rc, "looking up the resource");
}

static enum store_status sqlite_history(struct store *s, const char *type, const char *id, const char *since,
					size_t count, size_t offset, struct store_page *out, struct store_error *err)
{
	GET_CONN(c, s, err);
	enum stmt_id nq = id ? S_HIST_ID_N : type ? S_HIST_TYPE_N : S_HIST_ALL_N;
	enum stmt_id pq = id ? S_HIST_ID : type ? S_HIST_TYPE : S_HIST_ALL;
	bool opened;
	enum store_status st = read_begin(c, &opened, err);
	if (st != STORE_OK)
		return st;
	sqlite3_stmt *q = stmt(c, nq, err);
	if (!q) {
		st = err ? err->status : STORE_IO;
		goto out;
	}
	if (type)
		bind_text(q, 1, type);
	if (id)
		bind_text(q, 2, id);
	bind_text(q, 5, since);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		out->total = (size_t)sqlite3_column_int64(q, 0);
	done(q);
	if (rc != SQLITE_ROW) {
		st = db_fail(c, err, rc, "counting history");
		goto out;
	}
	if (id && out->total == 0 && (st = exists(c, type, id, err)) != STORE_OK)
		goto out;
	if (count == 0)
		goto out;
	q = stmt(c, pq, err);
	if (!q) {
		st = err ? err->status : STORE_IO;
		goto out;
	}
	if (type)
		bind_text(q, 1, type);
	if (id)
		bind_text(q, 2, id);
	sqlite3_bind_int64(q, 3, (int64_t)count);
	sqlite3_bind_int64(q, 4, offset > INT64_MAX ? INT64_MAX : (int64_t)offset);
	bind_text(q, 5, since);
	size_t cap = 0;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if ((st = grow(out, &cap, err)) != STORE_OK)
			break;
		struct store_entry *e = &out->items[out->n];
		memset(e, 0, sizeof *e);
		copy_text(e->type, sizeof e->type, sqlite3_column_text(q, 0));
		copy_text(e->id, sizeof e->id, sqlite3_column_text(q, 1));
		e->version = sqlite3_column_int64(q, 2);
		e->op = (enum store_op)sqlite3_column_int(q, 3);
		copy_text(e->last_updated, sizeof e->last_updated, sqlite3_column_text(q, 4));
		const char *body = (const char *)sqlite3_column_text(q, 5);
		e->deleted = body == NULL;
		out->n++;
		if (body && (st = parse_body(body, sqlite3_column_bytes(q, 5), &e->resource, err)) != STORE_OK)
			break;
	}
	if (st == STORE_OK && rc != SQLITE_DONE)
		st = db_fail(c, err, rc, "reading history");
	done(q);
out:
	read_end(c, opened);
	return st;
}

/* --- search --------------------------------------------------------------------------------------- */

struct sqlbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_add(struct sqlbuf *b, const char *s)
{
	size_t n = strlen(s);
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		while (b->len + n + 1 > ncap)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n + 1);
	b->len += n;
}

enum bind_kind { BIND_TEXT, BIND_INT, BIND_REAL };

struct bind {
	enum bind_kind kind;
	int64_t i;
	double d;
	char *s; /* owned */
};

struct binds {
	struct bind *v;
	size_t n, cap;
	bool oom;
};

/* Appends a copy of x (its text duplicated). */
static void bind_push(struct binds *b, const struct bind *x)
{
	if (b->oom)
		return;
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 16;
		struct bind *nv = realloc(b->v, ncap * sizeof *nv);
		if (!nv) {
			b->oom = true;
			return;
		}
		b->v = nv;
		b->cap = ncap;
	}
	struct bind *y = &b->v[b->n];
	*y = *x;
	if (x->kind == BIND_TEXT && !(y->s = strdup(x->s))) {
		b->oom = true;
		return;
	}
	b->n++;
}

static void bind_str(struct binds *b, const char *s)
{
	bind_push(b, &(struct bind){.kind = BIND_TEXT, .s = (char *)s});
}

static void bind_int(struct binds *b, int64_t i)
{
	bind_push(b, &(struct bind){.kind = BIND_INT, .i = i});
}

static void bind_real(struct binds *b, double d)
{
	bind_push(b, &(struct bind){.kind = BIND_REAL, .d = d});
}

static void binds_release(struct binds *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->v[i].s);
	free(b->v);
}

/* Copies s[0..len) into out (size len + 1) dropping the backslash of each
 * escape ("\," "\|" "\$" "\\"). */
static void unescape(const char *s, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len)
			i++;
		out[o++] = s[i];
	}
	out[o] = '\0';
}

/* Index of the first unescaped ch in s[0..len), or len. */
static size_t find_unescaped(const char *s, size_t len, char ch)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == ch)
			return i;
	}
	return len;
}

struct criterion {
	const char *name, *modifier;
	const struct search_param_def *def;
};

/* One alternative of one criterion: an SQL condition on idx row i. */
/* Search prefixes (FHIR R4 search, 3.1.1.4.6), in this order. */
enum { PFX_EQ, PFX_NE, PFX_LT, PFX_GT, PFX_LE, PFX_GE, PFX_SA, PFX_EB, PFX_AP };

/* The text after the prefix of val (eq when none), the prefix in *pfx; NULL
 * when val starts with letters that are no prefix. */
static const char *search_prefix(const char *val, size_t *pfx)
{
	static const char prefixes[][3] = {"eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap"};
	*pfx = PFX_EQ;
	if (!(val[0] >= 'a' && val[0] <= 'z'))
		return val;
	for (size_t j = 0; j < sizeof prefixes / sizeof prefixes[0]; j++) {
		if (strncmp(val, prefixes[j], 2) == 0) {
			*pfx = j;
			return val + 2;
		}
	}
	return NULL;
}

/* A search number: [-]digits[.digits][e[+-]digits]. *v is its value, *half
 * half a unit of its last digit (100 → 0.5, 1.50 → 0.005, 2e3 → 500): the
 * implicit range of "eq" is [v - half, v + half). */
static bool search_number(const char *text, double *v, double *half)
{
	const char *p = text;
	if (*p == '-')
		p++;
	size_t ints = strspn(p, "0123456789"), decimals = 0;
	p += ints;
	if (*p == '.') {
		decimals = strspn(p + 1, "0123456789");
		if (!decimals)
			return false;
		p += 1 + decimals;
	}
	long exp = 0;
	if (*p == 'e' || *p == 'E') {
		char *end;
		const char *e = p + 1;
		if (!((e[0] >= '0' && e[0] <= '9') || ((e[0] == '+' || e[0] == '-') && e[1] >= '0' && e[1] <= '9')))
			return false;
		exp = strtol(e, &end, 10);
		if (exp < -300 || exp > 300)
			return false;
		p = end;
	}
	if (!ints || *p)
		return false;
	*v = strtod(text, NULL);
	*half = pow(10.0, (double)(exp - (long)decimals)) / 2;
	return isfinite(*v);
}

/* number and quantity: [prefix]number, and for quantities |system|code or
 * ||code (code or unit), on the real-valued lo/hi of the index rows. */
static enum store_status numeric_sql(const struct criterion *k, char *val, struct sqlbuf *sql, struct binds *b,
				     struct store_error *err)
{
	char *sys = NULL, *code = NULL;
	char *bar = strchr(val, '|');
	if (bar) {
		if (k->def->kind != SEARCH_PARAM_QUANTITY)
			return store_fail(err, STORE_INVALID, "%s: a number takes no unit", k->name);
		*bar = '\0';
		sys = bar + 1;
		char *bar2 = strchr(sys, '|');
		if (!bar2)
			return store_fail(err, STORE_INVALID, "%s: a unit is given as |system|code or ||code", k->name);
		*bar2 = '\0';
		code = bar2 + 1;
		if (!code[0])
			return store_fail(err, STORE_INVALID, "%s: the unit code is empty", k->name);
	}
	size_t pfx;
	double v, half;
	const char *text = search_prefix(val, &pfx);
	if (!text || !search_number(text, &v, &half))
		return store_fail(err, STORE_INVALID, "%s: '%.40s' is not a [prefix]number", k->name, val);
	sb_add(sql, "(");
	switch (pfx) {
	case PFX_EQ: /* the value's range lies within the search range */
	case PFX_NE:
		sb_add(sql, pfx == PFX_NE ? "NOT (i.lo >= ? AND i.hi < ?)" : "(i.lo >= ? AND i.hi < ?)");
		bind_real(b, v - half);
		bind_real(b, v + half);
		break;
	case PFX_LT:
	case PFX_EB:
		sb_add(sql, pfx == PFX_LT ? "i.lo < ?" : "i.hi < ?");
		bind_real(b, v);
		break;
	case PFX_GT:
	case PFX_SA:
		sb_add(sql, pfx == PFX_GT ? "i.hi > ?" : "i.lo > ?");
		bind_real(b, v);
		break;
	case PFX_LE:
		sb_add(sql, "i.lo <= ?");
		bind_real(b, v);
		break;
	case PFX_GE:
		sb_add(sql, "i.hi >= ?");
		bind_real(b, v);
		break;
	default: /* ap: overlaps the value give or take 10% */
		sb_add(sql, "i.lo <= ? AND i.hi >= ?");
		bind_real(b, v + fabs(v) * 0.1 + half);
		bind_real(b, v - fabs(v) * 0.1 - half);
		break;
	}
	if (code && sys[0]) {
		sb_add(sql, " AND i.sys = ? AND i.val = ?");
		bind_str(b, sys);
		bind_str(b, code);
	} else if (code) {
		sb_add(sql, " AND i.val = ?");
		bind_str(b, code);
	}
	sb_add(sql, ")");
	return STORE_OK;
}

static enum store_status alternative(const struct criterion *k, const char *raw, size_t rawlen,
				     struct sqlbuf *sql, struct binds *b, struct store_error *err)
{
	char *val = malloc(rawlen + 1);
	if (!val)
		return store_fail(err, STORE_NO_MEMORY, "out of memory");
	enum store_status st = STORE_OK;
	switch (k->def->kind) {
	case SEARCH_PARAM_TOKEN: {
		size_t bar = find_unescaped(raw, rawlen, '|');
		if (bar == rawlen) {
			unescape(raw, rawlen, val);
			if (!val[0]) {
				st = store_fail(err, STORE_INVALID, "%s: empty value", k->name);
				break;
			}
			sb_add(sql, "(i.val = ?)");
			bind_str(b, val);
			break;
		}
		char *code = malloc(rawlen - bar);
		if (!code) {
			st = store_fail(err, STORE_NO_MEMORY, "out of memory");
			break;
		}
		unescape(raw, bar, val);
		unescape(raw + bar + 1, rawlen - bar - 1, code);
		if (!val[0] && !code[0]) {
			st = store_fail(err, STORE_INVALID, "%s: '|' alone is no token", k->name);
		} else if (!val[0]) {
			sb_add(sql, "(i.sys IS NULL AND i.val = ?)");
			bind_str(b, code);
		} else if (!code[0]) {
			sb_add(sql, "(i.sys = ?)");
			bind_str(b, val);
		} else {
			sb_add(sql, "(i.sys = ? AND i.val = ?)");
			bind_str(b, val);
			bind_str(b, code);
		}
		free(code);
		break;
	}
	case SEARCH_PARAM_REFERENCE: {
		unescape(raw, rawlen, val);
		char rtype[STORE_TYPE_SIZE], rid[STORE_ID_SIZE];
		const char *want_type = k->modifier && k->modifier[0] ? k->modifier : NULL;
		if (search_params_split_reference(val, rtype, sizeof rtype, rid, sizeof rid)) {
			if (want_type && strcmp(want_type, rtype) != 0) {
				sb_add(sql, "(0)");
				break;
			}
			sb_add(sql, "(i.sys = ? AND i.val = ?)");
			bind_str(b, rtype);
			bind_str(b, rid);
		} else if (want_type) {
			sb_add(sql, "(i.sys = ? AND i.val = ?)");
			bind_str(b, want_type);
			bind_str(b, val);
		} else if (val[0]) {
			sb_add(sql, "(i.val = ?)");
			bind_str(b, val);
		} else {
			st = store_fail(err, STORE_INVALID, "%s: empty reference", k->name);
		}
		break;
	}
	case SEARCH_PARAM_NUMBER:
	case SEARCH_PARAM_QUANTITY:
		unescape(raw, rawlen, val);
		st = numeric_sql(k, val, sql, b, err);
		break;
	case SEARCH_PARAM_URI:
		unescape(raw, rawlen, val);
		if (!val[0]) {
			st = store_fail(err, STORE_INVALID, "%s: empty value", k->name);
		} else if (k->modifier && strcmp(k->modifier, "below") == 0) {
			/* the stored URI starts with the value */
			sb_add(sql, "(substr(i.val, 1, length(?)) = ?)");
			bind_str(b, val);
			bind_str(b, val);
		} else if (k->modifier && strcmp(k->modifier, "above") == 0) {
			/* the value starts with the stored URI */
			sb_add(sql, "(i.val <> '' AND substr(?, 1, length(i.val)) = i.val)");
			bind_str(b, val);
		} else {
			sb_add(sql, "(i.val = ?)");
			bind_str(b, val);
		}
		break;
	case SEARCH_PARAM_DATE: {
		unescape(raw, rawlen, val);
		size_t pfx;
		const char *text = search_prefix(val, &pfx);
		if (!text || pfx == PFX_AP) {
			st = store_fail(err, STORE_INVALID, "%s: unsupported date prefix in '%.40s'", k->name, val);
			break;
		}
		int64_t lo, hi;
		if (!search_params_date_range(text, &lo, &hi)) {
			st = store_fail(err, STORE_INVALID, "%s: '%.40s' is not a date", k->name, val);
			break;
		}
		static const char *const eq = "(i.lo >= ? AND i.hi <= ?)";
		switch (pfx) {
		case 0: /* eq: the value's range lies within the search range */
			sb_add(sql, eq);
			bind_int(b, lo);
			bind_int(b, hi);
			break;
		case 1: /* ne */
			sb_add(sql, "(NOT (i.lo >= ? AND i.hi <= ?))");
			bind_int(b, lo);
			bind_int(b, hi);
			break;
		case 2: /* lt: something of the value lies before the search range */
			sb_add(sql, "(i.lo < ?)");
			bind_int(b, lo);
			break;
		case 3: /* gt: something of the value lies after it */
			sb_add(sql, "(i.hi > ?)");
			bind_int(b, hi);
			break;
		case 4: /* le: lt or eq */
			sb_add(sql, "(i.lo < ? OR (i.lo >= ? AND i.hi <= ?))");
			bind_int(b, lo);
			bind_int(b, lo);
			bind_int(b, hi);
			break;
		case 5: /* ge: gt or eq */
			sb_add(sql, "(i.hi > ? OR (i.lo >= ? AND i.hi <= ?))");
			bind_int(b, hi);
			bind_int(b, lo);
			bind_int(b, hi);
			break;
		case 6: /* sa: the value starts after the search range */
			sb_add(sql, "(i.lo >= ?)");
			bind_int(b, hi);
			break;
		default: /* eb: the value ends before it */
			sb_add(sql, "(i.hi <= ?)");
			bind_int(b, lo);
			break;
		}
		break;
	}
	case SEARCH_PARAM_STRING: {
		unescape(raw, rawlen, val);
		if (!val[0]) {
			st = store_fail(err, STORE_INVALID, "%s: empty value", k->name);
			break;
		}
		if (k->modifier && strcmp(k->modifier, "exact") == 0) {
			sb_add(sql, "(i.sys = ?)");
			bind_str(b, val);
			break;
		}
		char *norm = search_params_normalize(val);
		if (!norm) {
			st = store_fail(err, STORE_NO_MEMORY, "out of memory");
			break;
		}
		if (k->modifier && strcmp(k->modifier, "contains") == 0) {
			sb_add(sql, "(instr(i.val, ?) > 0)");
			bind_str(b, norm);
		} else {
			/* starts with: norm <= val < norm + 0xFF (no UTF-8 byte is 0xFF) */
			size_t n = strlen(norm);
			sb_add(sql, "(i.val >= ? AND i.val < ?)");
			bind_str(b, norm);
			char *upper = malloc(n + 2);
			if (!upper) {
				free(norm);
				st = store_fail(err, STORE_NO_MEMORY, "out of memory");
				break;
			}
			memcpy(upper, norm, n);
			upper[n] = (char)0xFF;
			upper[n + 1] = '\0';
			bind_str(b, upper);
			free(upper);
		}
		free(norm);
		break;
	}
	}
	free(val);
	return st;
}

static bool modifier_ok(const struct criterion *k)
{
	const char *m = k->modifier;
	if (!m || !m[0] || strcmp(m, "missing") == 0)
		return true;
	switch (k->def->kind) {
	case SEARCH_PARAM_TOKEN:
		return strcmp(m, "not") == 0;
	case SEARCH_PARAM_REFERENCE:
		return strlen(m) < STORE_TYPE_SIZE && m[0] >= 'A' && m[0] <= 'Z';
	case SEARCH_PARAM_STRING:
		return strcmp(m, "exact") == 0 || strcmp(m, "contains") == 0;
	case SEARCH_PARAM_URI:
		return strcmp(m, "below") == 0 || strcmp(m, "above") == 0;
	case SEARCH_PARAM_DATE:
	case SEARCH_PARAM_NUMBER:
	case SEARCH_PARAM_QUANTITY:
		return false;
	}
	return false;
}

/* _id=a,b (a token: "|a" and "sys|a" name a too) on the resource table. */
static enum store_status id_sql(const char *v, bool negate, struct sqlbuf *sql, struct binds *b,
			       struct store_error *err)
{
	sb_add(sql, negate ? " AND r.id NOT IN (" : " AND r.id IN (");
	size_t len = strlen(v), start = 0;
	for (bool first = true;; first = false) {
		size_t comma = start + find_unescaped(v + start, len - start, ',');
		const char *alt = v + start;
		size_t alen = comma - start, bar = find_unescaped(alt, alen, '|');
		if (bar < alen) {
			alt += bar + 1;
			alen -= bar + 1;
		}
		char *one = malloc(alen + 1);
		if (!one)
			return store_fail(err, STORE_NO_MEMORY, "out of memory");
		unescape(alt, alen, one);
		sb_add(sql, first ? "?" : ", ?");
		bind_str(b, one);
		free(one);
		if (comma >= len)
			break;
		start = comma + 1;
	}
	sb_add(sql, ")");
	return STORE_OK;
}

/* What the criteria offer the query plan (see sqlite_search). */
enum { DRIVE_IDX = 1, DRIVE_ID = 2 };

static enum store_status criterion_sql(const char *type, const struct store_search_param *p, struct sqlbuf *sql,
				       struct binds *b, unsigned *drive, struct store_error *err);

/* A chained parameter: subject:Patient.name=x (or patient.name=x
 * when the reference parameter has one target type): the resources whose
 * reference points at a live resource of that type matching name=x. The
 * inner criterion is the ordinary one, written inside a subquery that
 * names its own "r" (SQL resolves r to the nearest scope). */
static enum store_status chain_sql(const char *type, const struct store_search_param *p, struct sqlbuf *sql,
				   struct binds *b, unsigned *drive, struct store_error *err)
{
	char ref[65], target[65] = "", inner[130];
	const char *dot_mod = p->modifier ? strchr(p->modifier, '.') : NULL;
	const char *rest;
	if (dot_mod) {
		snprintf(ref, sizeof ref, "%s", p->name);
		snprintf(target, sizeof target, "%.*s", (int)(dot_mod - p->modifier), p->modifier);
		rest = dot_mod + 1;
		snprintf(inner, sizeof inner, "%s", rest);
	} else {
		const char *dot = strchr(p->name, '.');
		snprintf(ref, sizeof ref, "%.*s", (int)(dot - p->name), p->name);
		rest = dot + 1;
		/* the modifier belongs to the chained parameter */
		snprintf(inner, sizeof inner, "%s%s%s", rest, p->modifier ? ":" : "", p->modifier ? p->modifier : "");
	}
	const struct search_param_def *def = search_params_find(type, ref, NULL);
	if (!def || def->kind != SEARCH_PARAM_REFERENCE)
		return store_fail(err, STORE_INVALID, "'%.64s' is no reference parameter of %s to chain from", ref, type);
	if (!target[0] && def->target)
		snprintf(target, sizeof target, "%s", def->target);
	if (!target[0])
		return store_fail(err, STORE_INVALID, "chain from '%s' with a type: %s:Type.%.64s", ref, ref, rest);
	if (!model_resource(target) || (def->target && strcmp(def->target, target) != 0))
		return store_fail(err, STORE_INVALID, "'%s' does not point at %.64s", ref, target);
	/* the rest may chain again (organization.name): criterion_sql recurses,
	 * bounded by the length of the name */
	char *colon = strchr(inner, ':');
	if (colon && !strchr(inner, '.'))
		*colon++ = '\0';
	else if (colon && colon < strchr(inner, '.'))
		*colon++ = '\0';
	else
		colon = NULL;
	struct store_search_param in = {.name = inner, .modifier = colon, .value = p->value};
	*drive |= DRIVE_IDX;
	sb_add(sql, " AND r.rid IN (SELECT i.rid FROM idx i WHERE i.param = ? AND i.sys = ? AND i.val IN"
		    " (SELECT r.id FROM resource r WHERE r.type = ? AND r.deleted = 0");
	bind_str(b, def->code);
	bind_str(b, target);
	bind_str(b, target);
	unsigned inner_drive = 0;
	enum store_status st = criterion_sql(target, &in, sql, b, &inner_drive, err);
	sb_add(sql, "))");
	return st;
}

static enum store_status criterion_sql(const char *type, const struct store_search_param *p, struct sqlbuf *sql,
				       struct binds *b, unsigned *drive, struct store_error *err)
{
	if (strchr(p->name, '.') || (p->modifier && strchr(p->modifier, '.')))
		return chain_sql(type, p, sql, b, drive, err);
	struct criterion k = {.name = p->name, .modifier = p->modifier};
	k.def = search_params_find(type, p->name, NULL);
	if (!k.def)
		return store_fail(err, STORE_INVALID, "unknown search parameter '%.64s' for %s", p->name, type);
	if (!modifier_ok(&k))
		return store_fail(err, STORE_INVALID, "modifier ':%.32s' is not supported on '%.64s'", p->modifier,
				  p->name);
	if (k.modifier && strcmp(k.modifier, "missing") == 0) {
		bool missing;
		if (strcmp(p->value, "true") == 0)
			missing = true;
		else if (strcmp(p->value, "false") == 0)
			missing = false;
		else
			return store_fail(err, STORE_INVALID, "%.64s:missing takes true or false", p->name);
		if (is_id_param(k.def->code)) { /* every resource has one */
			if (missing)
				sb_add(sql, " AND 0");
			return STORE_OK;
		}
		/* "rid IN (…)" lets SQLite drive the search from the idx indexes */
		sb_add(sql, missing ? " AND r.rid NOT IN" : " AND r.rid IN");
		sb_add(sql, " (SELECT i.rid FROM idx i WHERE i.param = ?)");
		bind_str(b, k.def->code);
		return STORE_OK;
	}
	bool negate = k.modifier && strcmp(k.modifier, "not") == 0;
	if (is_id_param(k.def->code)) {
		if (!negate)
			*drive |= DRIVE_ID;
		return id_sql(p->value, negate, sql, b, err);
	}
	if (!negate)
		*drive |= DRIVE_IDX;
	sb_add(sql, negate ? " AND r.rid NOT IN" : " AND r.rid IN");
	sb_add(sql, " (SELECT i.rid FROM idx i WHERE i.param = ? AND (");
	bind_str(b, k.def->code);
	const char *v = p->value;
	size_t len = strlen(v), start = 0;
	for (bool first = true;; first = false) {
		size_t comma = start + find_unescaped(v + start, len - start, ',');
		if (!first)
			sb_add(sql, " OR ");
		enum store_status st = alternative(&k, v + start, comma - start, sql, b, err);
		if (st != STORE_OK)
			return st;
		if (comma >= len)
			break;
		start = comma + 1;
	}
	sb_add(sql, "))");
	return STORE_OK;
}

static enum store_status sort_sql(const char *type, const char *sort, struct sqlbuf *sql, struct binds *b,
				  struct store_error *err)
{
	sb_add(sql, " ORDER BY ");
	const char *p = sort ? sort : "";
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		bool desc = n > 0 && p[0] == '-';
		char name[65];
		size_t nl = n - desc;
		if (nl == 0 || nl >= sizeof name)
			return store_fail(err, STORE_INVALID, "malformed _sort");
		memcpy(name, p + desc, nl);
		name[nl] = '\0';
		if (strcmp(name, "_id") == 0) {
			sb_add(sql, "r.id");
		} else if (strcmp(name, "_lastUpdated") == 0) {
			sb_add(sql, "r.last_updated"); /* fixed-width UTC text sorts as time */
		} else {
			const struct search_param_def *d = search_params_find(type, name, NULL);
			if (!d)
				return store_fail(err, STORE_INVALID, "unknown _sort parameter '%s' for %s", name, type);
			if (d->kind == SEARCH_PARAM_DATE || d->kind == SEARCH_PARAM_NUMBER ||
			    d->kind == SEARCH_PARAM_QUANTITY)
				sb_add(sql, desc ? "(SELECT max(hi) FROM idx i WHERE i.rid = r.rid AND i.param = ?)"
						 : "(SELECT min(lo) FROM idx i WHERE i.rid = r.rid AND i.param = ?)");
			else
				sb_add(sql, desc ? "(SELECT max(val) FROM idx i WHERE i.rid = r.rid AND i.param = ?)"
						 : "(SELECT min(val) FROM idx i WHERE i.rid = r.rid AND i.param = ?)");
			bind_str(b, d->code);
		}
		sb_add(sql, desc ? " DESC, " : " ASC, ");
		p += n;
		if (*p == ',')
			p++;
	}
	sb_add(sql, "r.rid ASC");
	return STORE_OK;
}

static enum store_status prepare_bound(struct conn *c, const struct sqlbuf *sql, const struct binds *b,
				       sqlite3_stmt **out, struct store_error *err)
{
	int rc = sqlite3_prepare_v2(c->db, sql->p, (int)sql->len, out, NULL);
	if (rc != SQLITE_OK)
		return db_fail(c, err, rc, "preparing the search");
	for (size_t i = 0; i < b->n; i++) {
		int idx = (int)i + 1;
		const struct bind *x = &b->v[i];
		rc = x->kind == BIND_INT    ? sqlite3_bind_int64(*out, idx, x->i)
		     : x->kind == BIND_REAL ? sqlite3_bind_double(*out, idx, x->d)
					    : sqlite3_bind_text(*out, idx, x->s, -1, SQLITE_STATIC);
		if (rc != SQLITE_OK) {
			sqlite3_finalize(*out);
			*out = NULL;
			return db_fail(c, err, rc, "binding the search");
		}
	}
	return STORE_OK;
}

static enum store_status sqlite_search(struct store *s, const char *type, const struct store_search *q,
				       struct store_page *out, struct store_error *err)
{
	GET_CONN(c, s, err);
	struct sqlbuf where = {0}, count_sql = {0}, page_sql = {0};
	struct binds wb = {0}, sb = {0};
	sqlite3_stmt *st_count = NULL, *st_page = NULL;
	bool opened = false;
	enum store_status st = STORE_OK;

	bind_str(&wb, type);
	unsigned drive = 0;
	for (size_t i = 0; i < q->n_params && st == STORE_OK; i++)
		st = criterion_sql(type, &q->params[i], &where, &wb, &drive, err);
	/* Which index finds the rows: with a positive criterion on the search
	 * index, its rid list (looked up by primary key); "+r.type" keeps the
	 * planner from scanning every resource of the type instead, which it
	 * would otherwise pick, having no statistics. With an _id criterion or
	 * none, the (type, id) index. */
	const char *type_test = drive == DRIVE_IDX ? "+r.type = ?" : "r.type = ?";
	if (st == STORE_OK && q->count > 0)
		st = sort_sql(type, q->sort, &page_sql, &sb, err); /* ORDER BY, appended below */
	if (st != STORE_OK)
		goto out;
	sb_add(&where, ""); /* an empty WHERE tail is still a string */
	sb_add(&count_sql, "SELECT count(*) FROM resource r WHERE ");
	sb_add(&count_sql, type_test);
	sb_add(&count_sql, " AND r.deleted = 0");
	sb_add(&count_sql, where.p ? where.p : "");
	if (where.oom || count_sql.oom || page_sql.oom || wb.oom || sb.oom) {
		st = store_fail(err, STORE_NO_MEMORY, "out of memory");
		goto out;
	}
	if ((st = read_begin(c, &opened, err)) != STORE_OK)
		goto out;
	int rc;
	if (q->no_total && q->count > 0) {
		out->total = STORE_NO_TOTAL;
	} else {
		if ((st = prepare_bound(c, &count_sql, &wb, &st_count, err)) != STORE_OK)
			goto out;
		rc = sqlite3_step(st_count);
		if (rc != SQLITE_ROW) {
			st = db_fail(c, err, rc, "counting matches");
			goto out;
		}
		out->total = (size_t)sqlite3_column_int64(st_count, 0);
		if (q->count == 0 || q->offset >= out->total)
			goto out;
	}

	struct sqlbuf full = {0};
	sb_add(&full, "SELECT r.id, r.version, r.last_updated, v.body, v.op FROM resource r JOIN version v"
		      " ON v.rid = r.rid AND v.version = r.version WHERE ");
	sb_add(&full, type_test);
	sb_add(&full, " AND r.deleted = 0");
	sb_add(&full, where.p);
	sb_add(&full, page_sql.p);
	sb_add(&full, " LIMIT ? OFFSET ?");
	/* all binds in order: where, sort, limit, offset */
	for (size_t i = 0; i < sb.n; i++)
		bind_push(&wb, &sb.v[i]);
	bind_int(&wb, (int64_t)q->count);
	bind_int(&wb, (int64_t)q->offset);
	if (full.oom || wb.oom) {
		free(full.p);
		st = store_fail(err, STORE_NO_MEMORY, "out of memory");
		goto out;
	}
	st = prepare_bound(c, &full, &wb, &st_page, err);
	free(full.p);
	if (st != STORE_OK)
		goto out;
	size_t cap = 0;
	while ((rc = sqlite3_step(st_page)) == SQLITE_ROW) {
		if ((st = grow(out, &cap, err)) != STORE_OK)
			break;
		struct store_entry *e = &out->items[out->n];
		memset(e, 0, sizeof *e);
		snprintf(e->type, sizeof e->type, "%s", type);
		copy_text(e->id, sizeof e->id, sqlite3_column_text(st_page, 0));
		e->version = sqlite3_column_int64(st_page, 1);
		copy_text(e->last_updated, sizeof e->last_updated, sqlite3_column_text(st_page, 2));
		e->op = (enum store_op)sqlite3_column_int(st_page, 4);
		out->n++;
		const char *body = (const char *)sqlite3_column_text(st_page, 3);
		if (!body) {
			st = store_fail(err, STORE_IO, "a live resource has no body");
			break;
		}
		if ((st = parse_body(body, sqlite3_column_bytes(st_page, 3), &e->resource, err)) != STORE_OK)
			break;
	}
	if (st == STORE_OK && rc != SQLITE_DONE)
		st = db_fail(c, err, rc, "searching");
out:
	sqlite3_finalize(st_count);
	sqlite3_finalize(st_page);
	read_end(c, opened);
	free(where.p);
	free(count_sql.p);
	free(page_sql.p);
	binds_release(&wb);
	binds_release(&sb);
	return st;
}

/* --- outbox ------------------------------------------------------------------------- */

static enum store_status sqlite_outbox_add(struct store *s, const char *type, const char *id, int64_t version,
					   bool deleted, struct store_error *err)
{
	GET_CONN(c, s, err);
	sqlite3_stmt *st = stmt(c, S_OB_ADD, err);
	if (!st)
		return err ? err->status : STORE_IO;
	char now[STORE_TIME_SIZE];
	store_now(now, NULL);
	bind_text(st, 1, type);
	bind_text(st, 2, id);
	sqlite3_bind_int64(st, 3, version);
	sqlite3_bind_int(st, 4, deleted ? 1 : 0);
	bind_text(st, 5, now);
	int rc = sqlite3_step(st);
	done(st);
	return rc == SQLITE_DONE ? STORE_OK : db_fail(c, err, rc, "recording the outbox");
}

static void outbox_row(sqlite3_stmt *st, struct outbox_item *it)
{
	memset(it, 0, sizeof *it);
	it->oid = sqlite3_column_int64(st, 0);
	copy_text(it->type, sizeof it->type, sqlite3_column_text(st, 1));
	copy_text(it->id, sizeof it->id, sqlite3_column_text(st, 2));
	it->version = sqlite3_column_int64(st, 3);
	it->deleted = sqlite3_column_int(st, 4) != 0;
	it->state = sqlite3_column_int(st, 5);
	it->attempts = sqlite3_column_int(st, 6);
	it->next_at_ms = sqlite3_column_int64(st, 7);
	copy_text(it->last_error, sizeof it->last_error, sqlite3_column_text(st, 8));
	copy_text(it->created, sizeof it->created, sqlite3_column_text(st, 9));
}

static enum store_status sqlite_outbox_next(struct store *s, int64_t now_ms, struct outbox_item *out,
					    struct store_error *err)
{
	GET_CONN(c, s, err);
	sqlite3_stmt *st = stmt(c, S_OB_NEXT, err);
	if (!st)
		return err ? err->status : STORE_IO;
	sqlite3_bind_int64(st, 1, now_ms);
	int rc = sqlite3_step(st);
	enum store_status res = STORE_OK;
	if (rc == SQLITE_ROW)
		outbox_row(st, out);
	else if (rc == SQLITE_DONE)
		res = store_fail(err, STORE_NOT_FOUND, "nothing due");
	else
		res = db_fail(c, err, rc, "reading the outbox");
	done(st);
	return res;
}

static enum store_status sqlite_outbox_settle(struct store *s, int64_t oid, int state, int attempts,
					      int64_t next_at_ms, const char *error, struct store_error *err)
{
	GET_CONN(c, s, err);
	sqlite3_stmt *st = stmt(c, state < 0 ? S_OB_DELETE : S_OB_SETTLE, err);
	if (!st)
		return err ? err->status : STORE_IO;
	sqlite3_bind_int64(st, 1, oid);
	if (state >= 0) {
		sqlite3_bind_int(st, 2, state);
		sqlite3_bind_int(st, 3, attempts);
		sqlite3_bind_int64(st, 4, next_at_ms);
		if (error)
			bind_text(st, 5, error);
		else
			sqlite3_bind_null(st, 5);
	}
	int rc = sqlite3_step(st);
	done(st);
	if (rc != SQLITE_DONE)
		return db_fail(c, err, rc, "updating the outbox");
	return sqlite3_changes(c->db) ? STORE_OK
				      : store_fail(err, STORE_NOT_FOUND, "no outbox record %lld", (long long)oid);
}

static enum store_status sqlite_outbox_list(struct store *s, int state, size_t count, size_t offset,
					    struct outbox_item *items, size_t *n, struct store_error *err)
{
	GET_CONN(c, s, err);
	sqlite3_stmt *st = stmt(c, state < 0 ? S_OB_LIST_ALL : S_OB_LIST, err);
	if (!st)
		return err ? err->status : STORE_IO;
	if (state >= 0)
		sqlite3_bind_int(st, 1, state);
	sqlite3_bind_int64(st, 2, (int64_t)count);
	sqlite3_bind_int64(st, 3, (int64_t)offset);
	while (*n < count && sqlite3_step(st) == SQLITE_ROW)
		outbox_row(st, &items[(*n)++]);
	done(st);
	return STORE_OK;
}

static enum store_status sqlite_outbox_counts(struct store *s, struct outbox_counts *out, struct store_error *err)
{
	GET_CONN(c, s, err);
	sqlite3_stmt *st = stmt(c, S_OB_COUNTS, err);
	if (!st)
		return err ? err->status : STORE_IO;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->pending = (size_t)sqlite3_column_int64(st, 0);
		out->dead = (size_t)sqlite3_column_int64(st, 1);
	}
	done(st);
	return rc == SQLITE_ROW ? STORE_OK : db_fail(c, err, rc, "counting the outbox");
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
};
