/* store_sqlite_int — what the files of the SQLite backend share; internal
 * to them, never included elsewhere. The backend is one store_ops (see
 * store/store.h) split by concern, the shape another backend copies:
 *
 *   store_sqlite.c         errors, prepared statements, connections (one per
 *                          thread), open/close, schema and its upgrades,
 *                          transactions, and the ops table
 *   store_sqlite_write.c   create, update, delete: stamping, indexing, the
 *                          group commit of single writes
 *   store_sqlite_read.c    read, vread and history
 *   store_sqlite_search.c  search: criteria to SQL, chains, _sort, paging
 *   store_sqlite_outbox.c  the outbox table
 *   store_sqlite_check.c   `crosswalk check`: the full check and the repair
 *   store_sqlite_ckpt.c    the checkpointer thread (WAL copied back off the
 *                          commit path)
 *
 * The sqlite_* functions are the ops; ss_* are shared internals.
 * This header is the one place <sqlite3.h> is included from.
 * Threads: as store.h; a struct conn belongs to one thread at a time. */
#ifndef CW_STORE_SQLITE_INT_H
#define CW_STORE_SQLITE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store/store.h"
#include "fhir/search_params.h"
#include "store/store_queue.h"
#include "store/store_sql.h"
#include "store/store_version.h"

struct sqlite_store;
struct write_req;

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
	S_OB_STILL_DUE,
	S_OB_DELETE,
	S_OB_SETTLE,
	S_OB_LIST,
	S_OB_LIST_ALL,
	S_OB_COUNTS,
	S_OB_RETRY_DEAD,
	S_OB_BODY,
	S_OB_REF_ADD,
	S_OB_REF_DELETE,
	S_LOG_ADD,
	S_COMMIT_LOG, /* COMMIT of appended records only: a success says nothing of room for data */
	S_COUNT
};
struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[S_COUNT];
	bool in_txn; /* a caller's store_begin is open */
	struct conn *next_all, *next_free;
	struct sqlite_store *owner;
};
/* A single write queued for the committer (see store_sqlite_write.c):
 * a thread waiting in do_write (async NULL), or a store_submit (async set). */
struct gc_req {
	struct sq_item item; /* first: the queue's items are gc_reqs */
	struct write_req *w;
	struct store_error *err;
	enum store_status st;
	struct store_write *async;
	bool settle; /* no write: index the appended records (store_sqlite_log.c) after the group */
};
/* records in delivery at once (upstream.delivery_workers is at most 64) */
#define SS_OB_TAKEN_MAX 64
/* a taken record not settled within this is given to another worker */
#define SS_OB_TAKEN_MS (10 * 60 * 1000)
struct sqlite_store {
	struct store base;
	char *path;
	int lock_fd;        /* holds data_dir/store.lock; -1 when shared */
	pthread_mutex_t mu; /* guards all and free_list */
	pthread_key_t key;  /* this thread's struct conn */
	struct conn *all, *free_list;
	/* group commit (store_queue.h): single writes from any thread are
	 * queued for one committer thread, which runs everything queued as one
	 * group (one transaction, one fsync) on writer while the next group
	 * gathers */
	struct sq_queue gc;
	/* the connection every group runs on, the committer's alone: as the
	 * only connection writing outside callers' transactions, its page cache
	 * stays valid from one group to the next */
	struct conn *writer;
	/* the time of the last bulk export snapshot (ms since the epoch): a
	 * create stamped before it is stamped again when it commits */
	_Atomic int64_t snapshot_ms;
	/* outbox records taken by a delivery worker and not yet settled (guarded
	 * by mu): not taken again, and still pending, so they hold back the
	 * records after them that they are related to (store_sqlite_outbox.c) */
	struct {
		int64_t oid, until_ms;
	} ob_taken[SS_OB_TAKEN_MAX];
	size_t ob_ntaken;
	/* appended records (store_sqlite_log.c): how many the log holds, not
	 * yet indexed, and their types (only added to while open; n published
	 * after the name is written; more than fit: every type counts) */
	_Atomic int64_t log_pending;
	char log_types[4][STORE_TYPE_SIZE];
	_Atomic int n_log_types;
	_Atomic bool log_any_type;
	_Atomic int64_t log_last_group; /* records the last group logged */
	/* the checkpointer (store_sqlite_ckpt.c): woken by the WAL hook of
	 * every connection (want, guarded by mu); its own connection */
	struct {
		pthread_mutex_t mu;
		pthread_cond_t cv, done; /* cv: work for it; done: a round ended */
		uint64_t begun, ended;   /* rounds */
		int woken_at;            /* frames in the log at the last wake-up */
		int last_frames;         /* frames after the last commit seen */
		int copied;              /* frames the last round left copied */
		pthread_t thread;
		sqlite3 *db;
		bool want, stop, started, inited;
		/* tail_due: a round ended, the next commit copies the rest;
		 * tailing: a committing writer does (the thread waits) */
		bool tail_due, tailing;
	} ckpt;
};
#define GET_CONN(c, s, err)                                   \
	struct conn *c = ss_get_conn(ss_of(s), err);          \
	if (!c)                                               \
		return err ? err->status : STORE_IO
struct index_ctx {
	struct conn *c;
	sqlite3_stmt *ins;
	int64_t rid;
	int rc;
};

struct sqlite_store *ss_of(struct store *s);

enum store_status ss_db_fail(struct conn *c, struct store_error *err, int rc, const char *what);

sqlite3_stmt *ss_stmt(struct conn *c, enum stmt_id id, struct store_error *err);

void ss_done(sqlite3_stmt *s);

/* Runs a statement that returns no rows. */
enum store_status ss_run(struct conn *c, enum stmt_id id, struct store_error *err);

int ss_bind_text(sqlite3_stmt *s, int i, const char *v);

struct conn *ss_get_conn(struct sqlite_store *ss, struct store_error *err);

/* If the database rolled the caller's transaction back by itself (it does on
 * some I/O and memory errors), forget it. */
void ss_sync_txn(struct conn *c);

/* A write runs in its own transaction, or in a savepoint inside the caller's. */
enum store_status ss_write_begin(struct conn *c, struct store_error *err);

enum store_status ss_write_end(struct conn *c, enum store_status st, struct store_error *err);

/* Read-only work sees one snapshot (count and page agree). */
enum store_status ss_read_begin(struct conn *c, bool *opened, struct store_error *err);

void ss_read_end(struct conn *c, bool opened);

int ss_index_row(void *p, const struct search_index_value *v);

/* Whether a row's stored sum (column sum_col of q) matches its content; a
 * missing or mis-sized sum does not. */
bool ss_sum_ok(sqlite3_stmt *q, int sum_col, const char *type, const char *id, int64_t version,
	       const char *last_updated, const char *body, size_t len);

/* ss_sum_ok, else STORE_CORRUPT through store_note_corrupt. */
enum store_status ss_verify(sqlite3_stmt *q, int sum_col, const char *type, const char *id, int64_t version,
			    const char *last_updated, const char *body, size_t len, struct store_error *err);

/* The directory's only writer: an exclusive lock on data_dir/store.lock,
 * held by the returned descriptor (released when it closes, also when the
 * process dies). -1 with the reason when another process holds it (*busy
 * set then, when busy is not NULL). */
int ss_take_lock(const char *data_dir, bool *busy, char *err, size_t errlen);

/* The schema version this build writes (see store_sqlite.c). */
int ss_schema_version(void);

/* Creates this build's tables and indexes in an empty database (db's main
 * schema, schema_version set); an SQLite result code. */
int ss_schema_create(sqlite3 *db);

enum store_status sqlite_create(struct store *s, const char *type, const cJSON *resource, const char *id,
				       cJSON **out, struct store_error *err);

enum store_status sqlite_update(struct store *s, const char *type, const char *id, const cJSON *resource,
				       int64_t if_match, bool *created, cJSON **out, struct store_error *err);

enum store_status sqlite_delete(struct store *s, const char *type, const char *id, int64_t *version,
				       struct store_error *err);

enum store_status sqlite_submit(struct store *s, struct store_write *w);

/* --- the checkpointer (store_sqlite_ckpt.c) --- */
/* One rule sets every mark of the write-ahead log, from the wake mark W
 * (SS_CKPT_PAGES, STORE_SQLITE_WAL_PAGES): a commit leaving W frames wakes
 * the checkpointer, whose round copies the W or more frames it finds; the
 * writers' frames appended meanwhile (the tail) are copied by the next commit
 * when they are at most W/2, half of what woke the round (so no commit
 * copies more than half a round, and the log starts again at 1.5 W frames
 * at most), else the thread runs another round; from 2 W frames the tail
 * is copied whatever its size (a starved thread would chase the log); 4 W
 * frames is the bound past which writers wait for a reader's old snapshot;
 * the file is cut back to 32 MiB, just over the bound's 4 W pages of 4 KiB,
 * when the log starts again. Changing W moves them all (docs/store.md, "Checkpoints"). */
#define SS_CKPT_PAGES STORE_SQLITE_WAL_PAGES
/* The log's bound: past it, a checkpoint a reader stopped short is run
 * again holding writers off until the readers move on (at most
 * SS_CKPT_WAIT_MS, less than a writer's busy timeout). */
#define SS_CKPT_HARD_PAGES STORE_SQLITE_WAL_BOUND_PAGES
#define SS_CKPT_WAIT_MS 5000
/* What a committing writer copies itself after a round (the frames appended
 * while the round ran), at most; more wakes the thread again. */
#define SS_CKPT_TAIL_PAGES (SS_CKPT_PAGES / 2)
/* The log's file is cut back to this when it starts again (at least the
 * bound's pages: a file that is not cut back is written in place, not
 * extended). */
#define SS_CKPT_FILE_LIMIT "33554432" /* 32 MB */
_Static_assert(SS_CKPT_HARD_PAGES == 4 * SS_CKPT_PAGES, "the bound is four wake marks");
_Static_assert(33554432 >= (long long)SS_CKPT_HARD_PAGES * 4096, "SS_CKPT_FILE_LIMIT holds the bound's pages");
/* Microseconds this thread spent copying checkpoint tails inside its
 * commits (copy_tail), for the committer's accounting of its time
 * (crosswalk_store_committer_seconds_total). */
extern _Thread_local int64_t ss_tail_us;
/* A monotonic clock in microseconds. */
int64_t ss_mono_us(void);
/* Mutex and condition (before any connection is attached): 0, or -1. */
int ss_ckpt_init(struct sqlite_store *ss);
/* Puts c back to synchronous=FULL (every commit fsync'd) after a commit that
 * needed none; a failure is logged and retried until it holds. */
void ss_sync_full(struct conn *c);
/* Turns db's automatic checkpoint into a wake-up of the checkpointer. */
void ss_ckpt_attach(struct sqlite_store *ss, sqlite3 *db);
/* Opens the checkpointer's connection and starts its thread: 0, or -1
 * with err filled. */
int ss_ckpt_start(struct sqlite_store *ss, char *err, size_t errlen);
/* Stops the thread (a checkpoint in progress finishes) and frees what
 * ss_ckpt_init and ss_ckpt_start made; safe when they did not run. */
void ss_ckpt_stop(struct sqlite_store *ss);

/* --- appended records (store_sqlite_log.c) --- */
/* How long the committer waits without work before it indexes the log. */
#define SS_LOG_IDLE_MS 200
/* The log table (created when missing, as the outbox). */
extern const char ss_log_sql[];
/* Writes an appended record (prepared on the submitting thread) to the log
 * inside the committer's transaction on c (store_sqlite_write.c). */
enum store_status ss_log_write(struct conn *c, struct write_req *w, struct store_error *err);
/* Indexes one logged record on c, inside its transaction, as the create
 * it stands for (store_sqlite_write.c): resource, version and search rows
 * with its text, time and sum as logged (stamped again when a bulk export's
 * snapshot came after that time). */
enum store_status ss_log_index_one(struct conn *c, const char *type, const char *id, const char *text, size_t len,
				   const char *when, int64_t ms, const uint8_t sum[SVER_SUM_LEN],
				   struct store_error *err);
/* At open: counts what the log holds and learns its types. */
int ss_log_open(struct sqlite_store *ss, struct conn *c, char *err, size_t errlen);
/* After a group committed n appended records of type (committer). */
void ss_log_added(struct sqlite_store *ss, const char *type, int64_t n);
/* Indexes up to max logged records, oldest first, in one transaction on
 * the writer (committer only); *left gets how many remain. */
enum store_status ss_log_index(struct sqlite_store *ss, int64_t max, int64_t *left, struct store_error *err);
/* The committer's idle work (store_queue.h). */
bool ss_gc_idle(void *ctx, bool busy);
enum store_status sqlite_settle(struct store *s, const char *type, struct store_error *err);

void sqlite_drain(struct store *s);

/* The commit queue's group (one transaction on ss->writer) and a queued
 * write's end (store_queue.h; ctx is the struct sqlite_store). */
void ss_gc_run(void *ctx, struct sq_item *group);
void ss_gc_finish(void *ctx, struct sq_item *item);

enum store_status sqlite_read_text(struct store *s, const char *type, const char *id, int64_t version,
					  struct store_text *out, struct store_error *err);

enum store_status sqlite_read(struct store *s, const char *type, const char *id, int64_t version,
				     cJSON **out, struct store_error *err);

void ss_copy_text(char *dst, size_t size, const unsigned char *src);

/* STORE_OK when type/id has any version, else STORE_NOT_FOUND. */
enum store_status sqlite_history(struct store *s, const char *type, const char *id, const char *since,
					size_t count, size_t offset, int64_t before, struct store_page *out,
					struct store_error *err);

enum store_status sqlite_search(struct store *s, const char *type, const struct store_search *q,
				       struct store_page *out, struct store_error *err);

enum store_status sqlite_snapshot(struct store *s, struct store_snapshot *out, struct store_error *err);
enum store_status sqlite_export_types(struct store *s, int64_t upto_seq, store_type_fn *fn, void *ctx,
				      struct store_error *err);
enum store_status sqlite_export_scan(struct store *s, const struct store_export_query *q, store_export_fn *fn,
				     void *ctx, struct store_error *err);

enum store_status sqlite_outbox_add(struct store *s, const char *type, const char *id, int64_t version,
					   bool deleted, struct store_error *err);
/* The outbox row of a write, on c (inside the caller's transaction). */
enum store_status ss_outbox_insert(struct conn *c, const char *type, const char *id, int64_t version, bool deleted,
				   struct store_error *err);

enum store_status sqlite_outbox_next(struct store *s, int64_t now_ms, struct outbox_item *out,
					    struct store_error *err);

enum store_status sqlite_outbox_settle(struct store *s, int64_t oid, int state, int attempts,
					      int64_t next_at_ms, const char *error, struct store_error *err);

enum store_status sqlite_outbox_list(struct store *s, int state, size_t count, size_t offset,
					    struct outbox_item *items, size_t *n, struct store_error *err);

enum store_status sqlite_outbox_retry_dead(struct store *s, const struct outbox_filter *f, size_t *n,
					   struct store_error *err);
enum store_status sqlite_outbox_counts(struct store *s, struct outbox_counts *out, struct store_error *err);

#endif
