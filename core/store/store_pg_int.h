/* store_pg_int — what the files of the PostgreSQL backend share; internal
 * to them, never included elsewhere. The backend is one store_ops (see
 * store/store.h) split by concern the way the SQLite backend is:
 *
 *   store_pg.c          errors, connections (one per thread), open/close,
 *                       the schema and its migration, transactions, marks,
 *                       the replay cache of client assertions, the ops table
 *   store_pg_write.c    create, update, delete; queued writes
 *   store_pg_read.c     read, vread, history, search, bulk export scans
 *   store_pg_outbox.c   the shared outbox (leases across instances)
 *   store_pg_jobs.c     the shared bulk export jobs and their files
 *
 * The pg_* functions are the ops; pgs_* are shared internals. This header
 * is the one place <libpq-fe.h> is included from.
 *
 * Several gateways share one database: a read of a current version may be
 * answered from the process's read cache only after a barrier on the
 * connection listening to the database's change notifications
 * (store_pg_cache.c says why it never returns a version older than one
 * acknowledged by any instance); every other read asks the database;
 * store_begin takes a
 * transaction-scoped advisory lock so a caller's transaction (conditional
 * writes, FHIR transactions) is one atomic step across instances; a write
 * locks its resource row (SELECT … FOR UPDATE) before it compares versions.
 * Threads: as store.h; a struct pgconn belongs to one thread at a time. */
#ifndef CW_STORE_PG_INT_H
#define CW_STORE_PG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "store/store.h"
#include "store/store_queue.h"
#include "store/store_sql.h"
#include "store/store_version.h"

struct pg_store;
struct pgs_listen;

struct pgconn {
	PGconn *db;
	bool in_txn;       /* a caller's store_begin is open */
	uint32_t prepared; /* the enum pgs_stmt statements prepared on db (bit per statement) */
	struct pgconn *next_all, *next_free;
	struct pg_store *owner;
};

struct pg_store {
	struct store base;
	char *conninfo;
	int statement_timeout_ms;
	int64_t lease_ms;   /* how long an outbox record taken stays with its taker */
	int64_t instance;   /* this process's lease owner id (random) */
	pthread_mutex_t mu; /* guards all, free_list */
	pthread_key_t key;  /* this thread's struct pgconn */
	struct pgconn *all, *free_list;
	/* group commit (store_queue.h): single writes outside a caller's
	 * transaction are queued for PGS_COMMITTERS committer threads, each
	 * running a group in one transaction on its own connection */
	struct sq_queue gc;
	/* the read cache's listener (store_pg_cache.c); NULL: no cache */
	struct pgs_listen *listen;
	/* when this instance last purged expired assertion claims (Unix s) */
	_Atomic int64_t replay_purged;
};

/* Committers: while one group waits for its COMMIT's flush, another runs
 * its statements. */
#define PGS_COMMITTERS 2

/* A committer waits while the other runs a group until this many writes
 * are queued (sq_set_hold): groups grow to what arrives in one group's
 * round trip and flush. */
#define PGS_HOLD 8

/* The mark (table mark) holding the time of the last bulk export snapshot
 * in milliseconds: a version stamped before it is not written (it is
 * stamped again), so that every version committed after a snapshot has a
 * lastUpdated at or after its time (store.h's struct store_snapshot). */
#define PGS_MARK_SNAPSHOT "store.snapshot_ms"

/* The advisory lock keys (pg_advisory_*: one bigint). */
#define PGS_LOCK_SCHEMA 0x437277534348LL /* schema creation and migration */
#define PGS_LOCK_WRITE 0x437277575254LL  /* a caller's transaction */

#define PGS_GET_CONN(c, s, err)                          \
	struct pgconn *c = pgs_get_conn(pgs_of(s), err); \
	if (!c)                                          \
	return err ? err->status : STORE_IO

struct pg_store *pgs_of(struct store *s);
struct pgconn *pgs_get_conn(struct pg_store *ps, struct store_error *err);

/* Runs sql with n text parameters (vals[i] NULL for SQL NULL; types[i] an
 * OID or 0 to infer). *out (may be NULL: cleared) gets the result to
 * PQclear. A failure is mapped to a status: a serialisation failure,
 * deadlock, lock or statement timeout or a lost connection STORE_BUSY, a
 * unique violation STORE_CONFLICT, a full disk STORE_FULL, else STORE_IO;
 * what names the step in the message. */
enum store_status pgs_exec(struct pgconn *c, const char *sql, int n, const char *const *vals, const unsigned *types,
			   PGresult **out, struct store_error *err, const char *what);
/* The statements a connection prepares once (PQprepare, named) and runs
 * by name after: the ones every write and read runs, and the outbox's
 * (every delivered write, and each worker's poll). */
enum pgs_stmt {
	PGS_ST_READ,     /* store_pg_read.c: a version row by type, id, version */
	PGS_ST_LOCK_RES, /* store_pg_write.c: the resource row, locked */
	PGS_ST_NEW_RES,  /* a new resource: its row, version row and index rows */
	PGS_ST_NEXT_RES, /* a resource's next version: the same, replacing its index rows */
	PGS_ST_INDEX,    /* index rows of one resource (reindexing) */
	PGS_ST_GROUP,    /* a group of creates of new ids: their resource, version and index rows */
	PGS_ST_OB_ADD,   /* store_pg_outbox.c: a record, with its version's body */
	PGS_ST_OB_REFS,  /* the resources a record's version refers to */
	PGS_ST_OB_NEXT,  /* the next record due, leased */
	PGS_ST_OB_DONE,  /* a leased record delivered: deleted */
	PGS_ST_OB_SET,   /* a leased record's outcome recorded */
	PGS_ST_COUNT
};
/* pgs_exec of the statement st (sql its text, n parameters, types
 * inferred), prepared on c the first time it runs there (again after a
 * reconnection). */
enum store_status pgs_exec_prepared(struct pgconn *c, enum pgs_stmt st, const char *sql, int n, const char *const *vals,
				    PGresult **out, struct store_error *err, const char *what);
/* Prepares st on c unless it is already (outside pipeline mode). */
enum store_status pgs_prepare(struct pgconn *c, enum pgs_stmt st, const char *sql, int n, struct store_error *err);
/* The name st is prepared under. */
const char *pgs_stmt_name(enum pgs_stmt st);
/* What pgs_exec does with a result it got (r may be NULL: out of memory or
 * a lost connection): OK for a command or rows (*out, may be NULL, gets
 * them), else the mapped status through err, r cleared. */
enum store_status pgs_result(struct pgconn *c, PGresult *r, PGresult **out, struct store_error *err, const char *what);
/* pgs_exec without parameters or result. */
enum store_status pgs_run(struct pgconn *c, const char *sql, struct store_error *err, const char *what);
/* The SQLSTATE of the last failure on c ("" when none). */
const char *pgs_last_state(struct pgconn *c);

/* A write runs in its own transaction, or in a savepoint inside the caller's. */
enum store_status pgs_write_begin(struct pgconn *c, struct store_error *err);
enum store_status pgs_write_end(struct pgconn *c, enum store_status st, struct store_error *err);
/* Read-only work sees one snapshot (count and page agree). */
enum store_status pgs_read_begin(struct pgconn *c, bool *opened, struct store_error *err);
void pgs_read_end(struct pgconn *c, bool opened);

/* sum as the bytea input text "\x…" (out: 2 + 64 + 1 bytes). */
void pgs_sum_hex(const uint8_t sum[SVER_SUM_LEN], char out[2 * SVER_SUM_LEN + 3]);
/* Whether the bytea text hex ("\x…") is the sum of the content;
 * STORE_CORRUPT through store_note_corrupt otherwise. */
enum store_status pgs_verify(const char *hex, const char *type, const char *id, int64_t version,
			     const char *last_updated, const char *body, size_t len, struct store_error *err);
/* The column's value, NULL for SQL NULL. */
const char *pgs_val(const PGresult *r, int row, int col);
int64_t pgs_int(const PGresult *r, int row, int col);

/* Rebuilds the search index of every live resource from its current version
 * inside the caller's transaction (a schema upgrade that indexes more). */
enum store_status pgs_reindex(struct pgconn *c, struct store_error *err);

/* Numbers "?" placeholders of ssql text as $1, $2, … (a new string). */
char *pgs_number_params(const char *sql);
/* Runs ssql text with its binds. */
enum store_status pgs_exec_binds(struct pgconn *c, const char *sql, const struct ssql_binds *b, PGresult **out,
				 struct store_error *err, const char *what);

/* store_pg_cache.c: adds the change trigger when missing (on c, under the
 * schema lock) and, when cache_bytes is not 0, starts the read cache and its
 * listener thread (ps->base.cache, ps->listen; no memory: no cache). -1 with
 * the reason in err when the trigger cannot be added or the thread not
 * started. pgs_cache_close stops the thread and frees the cache (NULL
 * listen: nothing). pg_cache_wait is the store_ops hook (store.h's
 * cache_wait): a read arriving now may be answered from the cache once a
 * barrier sent after it has been answered; f->done runs on the listener
 * thread (fresh false when the connection is lost, or the barrier not
 * answered within the statement timeout). */
int pgs_cache_open(struct pg_store *ps, struct pgconn *c, size_t cache_bytes, char *err, size_t errlen);
void pgs_cache_close(struct pg_store *ps);
bool pg_cache_wait(struct store *s, struct store_fresh *f);

/* The commit queue's group and a queued write's end (ctx: the pg_store). */
void pgs_gc_run(void *ctx, struct sq_item *group);
void pgs_gc_finish(void *ctx, struct sq_item *item);
/* An outbox record on c, in its open transaction. */
enum store_status pgs_outbox_insert(struct pgconn *c, const char *type, const char *id, int64_t version, bool deleted,
				    struct store_error *err);

enum store_status pg_create(struct store *s, const char *type, const cJSON *resource, const char *id, cJSON **out,
			    struct store_error *err);
enum store_status pg_update(struct store *s, const char *type, const char *id, const cJSON *resource, int64_t if_match,
			    bool *created, cJSON **out, struct store_error *err);
enum store_status pg_delete(struct store *s, const char *type, const char *id, int64_t *version,
			    struct store_error *err);
enum store_status pg_submit(struct store *s, struct store_write *w);
void pg_drain(struct store *s);

enum store_status pg_read(struct store *s, const char *type, const char *id, int64_t version, cJSON **out,
			  struct store_error *err);
enum store_status pg_read_text(struct store *s, const char *type, const char *id, int64_t version,
			       struct store_text *out, struct store_error *err);
enum store_status pg_history(struct store *s, const char *type, const char *id, const char *since, size_t count,
			     size_t offset, int64_t before, struct store_page *out, struct store_error *err);
enum store_status pg_search(struct store *s, const char *type, const struct store_search *q, struct store_page *out,
			    struct store_error *err);
enum store_status pg_snapshot(struct store *s, struct store_snapshot *out, struct store_error *err);
enum store_status pg_export_types(struct store *s, int64_t upto_seq, store_type_fn *fn, void *ctx,
				  struct store_error *err);
enum store_status pg_export_scan(struct store *s, const struct store_export_query *q, store_export_fn *fn, void *ctx,
				 struct store_error *err);

enum store_status pg_outbox_add(struct store *s, const char *type, const char *id, int64_t version, bool deleted,
				struct store_error *err);
enum store_status pg_outbox_next(struct store *s, int64_t now_ms, struct outbox_item *out, struct store_error *err);
enum store_status pg_outbox_settle(struct store *s, int64_t oid, int state, int attempts, int64_t next_at_ms,
				   const char *error, struct store_error *err);
enum store_status pg_outbox_list(struct store *s, int state, size_t count, size_t offset, struct outbox_item *items,
				 size_t *n, struct store_error *err);
enum store_status pg_outbox_counts(struct store *s, struct outbox_counts *out, struct store_error *err);
enum store_status pg_outbox_retry_dead(struct store *s, const struct outbox_filter *f, size_t *n,
				       struct store_error *err);

/* store_pg_jobs.c: the ops of the shared bulk export jobs. */
extern const struct store_job_ops pgs_job_ops;

#endif
