/* store — the local FHIR resource store: versioned resources, history,
 * search over an index extracted at write time, and transactions.
 *
 * A struct store is an ops table plus the backend's state, so a second
 * backend (PostgreSQL) can follow without changing callers; callers use the
 * store_* functions below, which check their arguments and dispatch. The
 * embedded backend is SQLite (store_open_sqlite, core/store/store_sqlite*.c;
 * store_sqlite_int.h is the only file that includes <sqlite3.h>).
 *
 * Resources are cJSON trees. They are stored as text written by fjson_print
 * and read back with fjson_parse, so decimal literals survive exactly (1.10
 * stays 1.10).
 *
 * Integrity: every stored version carries the SHA-256 of what was stored
 * (type, id, version, lastUpdated and the body text), computed when written
 * and verified by every read that returns stored content (read, vread,
 * read_text and its cache fill, history, search). A version that fails it
 * is never returned: the call answers STORE_CORRUPT naming the version
 * (store_note_corrupt counts and reports it); `crosswalk check` lists all.
 *
 * Versions: every create, update and delete adds one version to the
 * resource's history; versionId is "1", "2", … per resource; lastUpdated is
 * the server's UTC time with milliseconds ("2024-05-01T09:30:00.123Z").
 * A deletion is a version without a body: read then answers STORE_GONE.
 *
 * Search: which element a parameter points at comes from the table in
 * search_params.h (generated from the R4 SearchParameter definitions; see
 * there for the types and kinds covered). The index holds the current
 * version of every live resource and is rewritten in the same database
 * transaction as the write.
 *
 * Threads (SQLite backend): one database connection per thread. Each thread
 * that calls into a store gets its own connection the first time (kept in a
 * thread-specific slot, returned to the store's pool when the thread exits),
 * so reads run in parallel (WAL) and writes are serialised by SQLite's write
 * lock, waited for up to a busy timeout (then STORE_BUSY). A transaction
 * (store_begin … store_commit/store_rollback) belongs to the thread that began
 * it: the store_* writes that thread makes in between are part of it, other
 * threads' calls are not (they wait for the write lock).
 * store_close must not run while another thread uses the store.
 *
 * Conditional writes (If-None-Exist, PUT/batch by criteria): the REST layer
 * decides on a search, then writes inside one transaction that searches
 * again first and writes only when the criteria still match the same. The
 * transaction holds the writer lock from store_begin on, so the second
 * search and the write are one atomic step and parallel conditional writes
 * make one resource. A backend shared by several gateways (PostgreSQL) must
 * give store_begin the same meaning across processes: take a
 * transaction-scoped lock at BEGIN (pg_advisory_xact_lock on a fixed key, or
 * per resource type) so a search inside the transaction sees every write
 * committed before it and none can commit in between — or run the
 * transaction SERIALIZABLE with the search inside it and answer a
 * serialisation failure as STORE_BUSY (the caller retries). A uniqueness
 * constraint on the criteria alone would not do: criteria are arbitrary
 * searches.
 *
 * Ownership: arguments are borrowed, never kept. Resources returned through
 * `cJSON **out` belong to the caller (cJSON_Delete); a struct store_page is
 * released with store_page_release.
 *
 * Errors: every function returns an enum store_status and, when err is not
 * NULL, fills err->status and err->message (a human sentence without
 * resource contents). Nothing aborts; a failed write leaves no trace. */
#ifndef CW_STORE_H
#define CW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Status codes; numbers are never reused. The HTTP status is what the FHIR
 * REST layer answers for it (store_status_http). */
#define STORE_STATUSES(X)                                     \
	X(STORE_OK, 0, 200, "ok")                             \
	X(STORE_NOT_FOUND, 1, 404, "not found")               \
	X(STORE_GONE, 2, 410, "deleted")                      \
	X(STORE_CONFLICT, 3, 409, "conflict")                 \
	X(STORE_VERSION_MISMATCH, 4, 412, "version mismatch") \
	X(STORE_INVALID, 5, 400, "invalid request")           \
	X(STORE_IO, 6, 500, "storage failure")                \
	X(STORE_NO_MEMORY, 7, 500, "out of memory")           \
	X(STORE_BUSY, 8, 503, "store busy")                   \
	X(STORE_FULL, 9, 507, "storage full")                 \
	X(STORE_CORRUPT, 10, 500, "integrity check failed")

enum store_status {
#define STORE_ENUM(name, num, http, text) name = num,
	STORE_STATUSES(STORE_ENUM)
#undef STORE_ENUM
};

struct store_error {
	enum store_status status;
	char message[256];
};

#define STORE_TYPE_SIZE 65   /* resource type name + NUL */
#define STORE_ID_SIZE 65     /* FHIR id ([A-Za-z0-9\-.]{1,64}) + NUL */
#define STORE_TIME_SIZE 32   /* "YYYY-MM-DDThh:mm:ss.sssZ" + NUL */
#define STORE_MAX_COUNT 1000 /* largest page a history or search returns */

enum store_op { STORE_OP_CREATE, STORE_OP_UPDATE, STORE_OP_DELETE };

/* One version of one resource, as history and search return it. */
struct store_entry {
	char type[STORE_TYPE_SIZE];
	char id[STORE_ID_SIZE];
	int64_t version;
	enum store_op op;   /* what made this version; a create with a client id is STORE_OP_UPDATE */
	bool deleted;       /* a deletion: resource is NULL */
	char last_updated[STORE_TIME_SIZE];
	cJSON *resource;    /* owned by the page */
	int64_t seq;        /* history: the version's place in the store's order of writes
			     * (grows with every write; a cursor for paging) */
};

struct store_page {
	struct store_entry *items;
	size_t n;
	size_t total;       /* matches (search) or versions (history) in all pages */
	bool more;          /* history: older versions follow this page */
};

/* One search criterion, as in name:modifier=value. value may hold several
 * alternatives separated by commas (any matches); "\," is a literal comma.
 *   token      [system]|code, |code (no system), system|, code;
 *              modifiers :not, :missing
 *   reference  Type/id, id, absolute URL; modifiers :Type, :missing
 *   date       prefix eq (default) ne lt gt le ge sa eb + date/dateTime of any
 *              precision, compared as ranges (FHIR R4 search, 3.1.1.5.2);
 *              modifier :missing
 *   string     starts with, ignoring ASCII case; modifiers :exact, :contains,
 *              :missing
 * :missing takes "true" or "false". */
struct store_search_param {
	const char *name;
	const char *modifier; /* NULL or "" for none */
	const char *value;
};

struct store_search {
	const struct store_search_param *params;
	size_t n_params;
	size_t count;     /* page size, at most STORE_MAX_COUNT; 0 = only the total */
	size_t offset;    /* matches skipped before the page */
	const char *sort; /* NULL (order of creation), or comma-separated keys, each
			   * a parameter name with "-" for descending: "-_lastUpdated,_id" */
	bool no_total;    /* skip counting the matches: total is then STORE_NO_TOTAL */
};

#define STORE_NO_TOTAL SIZE_MAX

/* The outbox: records of writes still to be delivered upstream, committed in
 * the same transaction as the write (core/upstream/outbox.h delivers them).
 *
 * Order (docs/delivery.md): records are numbered in write order (oid), and
 * two records are related when they are about the same resource or when the
 * version of one refers to the resource of the other (its "reference"
 * members naming "Type/id", recorded with the record when it is added, at
 * most STORE_OUTBOX_MAX_REFS of them). store_outbox_next takes the oldest
 * due record that no earlier related record holds back — an earlier record
 * holds back while it is pending (also while it waits for a retry) or taken
 * and not yet settled — so related records are delivered one after the
 * other in write order, and unrelated ones by several takers at once. Not
 * promised: any order between unrelated records (two Observations of one
 * Patient may arrive in either order; the entries of one transaction are
 * not delivered as one unit), an order through a third record (A refers to
 * B, B to C: A waits for B only), or an order behind a dead letter (it no
 * longer holds anything back; a retried one is delivered after what went
 * while it was dead). A taken record is not given to another taker until it
 * is settled (SQLite: within the process; PostgreSQL: see its lease below). */
enum outbox_state { OUTBOX_PENDING = 0, OUTBOX_DEAD = 2 };

struct outbox_item {
	int64_t oid;                 /* order of enqueueing */
	char type[STORE_TYPE_SIZE];
	char id[STORE_ID_SIZE];
	int64_t version;             /* the version to deliver */
	bool deleted;                /* deliver a DELETE */
	int state;                   /* enum outbox_state */
	int attempts;
	int64_t next_at_ms;          /* not before (ms since the epoch) */
	char last_error[256];
	char created[STORE_TIME_SIZE];
};

struct outbox_counts {
	size_t pending, dead;
};

/* Which dead letters store_outbox_retry_dead puts back; a NULL member does
 * not filter. since/until compare with the record's created time (the write
 * it delivers), as text: a prefix such as "2026-01-02" or a full
 * "2026-01-02T03:04:05.678Z"; since inclusive, until exclusive. */
struct outbox_filter {
	const char *type;  /* resource type, exact */
	const char *error; /* text the last error contains (case-sensitive) */
	const char *since, *until;
};

/* A stored version as the JSON text the store keeps (meta stamped). */
struct store_text {
	char *text; /* malloc'd, NUL-terminated; caller frees */
	size_t len;
	int64_t version;
	char last_updated[STORE_TIME_SIZE];
};

struct store;
struct store_write;

/* Waiting for the read cache without a thread (store_fresh_wait). */
struct store_fresh {
	void (*done)(void *ctx); /* the wait ended (not called when decided at once) */
	void *ctx;
	bool fresh; /* the answer: reads may use the cache */
	/* the backend's */
	uint64_t after;
	struct store_fresh *next;
};

/* Bulk export (core/api/bulk.h) reads the store as it was at one moment: a
 * snapshot is the last committed write (seq) and the time it was taken.
 * Every version written later has a higher seq and a lastUpdated at or after
 * time (creates stamped before the snapshot but committed after it are
 * stamped again), so an export of the versions up to seq and a later one
 * with _since = time together miss nothing. */
struct store_snapshot {
	int64_t seq;
	char time[STORE_TIME_SIZE];
};

/* One set of criteria of a _typeFilter (all must match). */
struct store_export_filter {
	const struct store_search_param *params;
	size_t n;
};

/* What store_export_scan reads: the resources of type live at the
 * snapshot upto_seq (their latest version with a seq up to it, not a
 * deletion), in the order they were written. */
struct store_export_query {
	const char *type;
	int64_t upto_seq;
	const char *since; /* NULL, or only versions with lastUpdated at or after it (store time text) */
	const struct store_export_filter *filters; /* any of them matches (OR); n_filters 0: no filter */
	size_t n_filters;
	/* The Patient compartment: NULL for none; "*" for any Patient; else a
	 * JSON array of Patient ids. A Patient matches by id, any other
	 * resource by a patient, subject or beneficiary reference to one
	 * (matched on the search index, which follows current versions). */
	const char *patients;
};

typedef int store_type_fn(void *ctx, const char *type);
/* One resource: its id and its stored JSON text (borrowed for the call).
 * Returning non-zero stops the scan (the scan then answers STORE_OK). */
typedef int store_export_fn(void *ctx, const char *id, const char *text, size_t len);

/* The backend's entry points, with the store_* wrappers' contract; arguments
 * are checked by the wrappers before a backend sees them. Differences: update
 * gets if_match as a number (0 = none); read serves both store_read
 * (version 0 = current) and store_vread; del is store_delete. */
struct store_ops {
	void (*close)(struct store *s);
	enum store_status (*begin)(struct store *s, struct store_error *err);
	enum store_status (*commit)(struct store *s, struct store_error *err);
	enum store_status (*rollback)(struct store *s, struct store_error *err);
	enum store_status (*create)(struct store *s, const char *type, const cJSON *resource, const char *id,
				    cJSON **out, struct store_error *err);
	enum store_status (*update)(struct store *s, const char *type, const char *id, const cJSON *resource,
				    int64_t if_match, bool *created, cJSON **out, struct store_error *err);
	enum store_status (*read)(struct store *s, const char *type, const char *id, int64_t version, cJSON **out,
				  struct store_error *err);
	enum store_status (*del)(struct store *s, const char *type, const char *id, int64_t *version,
				 struct store_error *err);
	/* since: lastUpdated lower bound as the store writes it ("" = all) */
	enum store_status (*history)(struct store *s, const char *type, const char *id, const char *since,
				     size_t count, size_t offset, int64_t before, struct store_page *out,
				     struct store_error *err);
	enum store_status (*search)(struct store *s, const char *type, const struct store_search *q,
				    struct store_page *out, struct store_error *err);
	enum store_status (*read_text)(struct store *s, const char *type, const char *id, int64_t version,
				       struct store_text *out, struct store_error *err);
	/* NULL when the cache is current whenever it is consulted (this process
	 * is the only writer); else store_fresh_wait after the wrapper's checks:
	 * whether a read arriving now may be answered from it (the backend has
	 * taken in every change committed before the call), decided at once
	 * (true, f->fresh set) or later (false: f->done runs once, from a
	 * thread of the backend, f->fresh set, within the backend's statement
	 * timeout and before the store closes) */
	bool (*cache_wait)(struct store *s, struct store_fresh *f);
	enum store_status (*outbox_add)(struct store *s, const char *type, const char *id, int64_t version,
					bool deleted, struct store_error *err);
	enum store_status (*outbox_next)(struct store *s, int64_t now_ms, struct outbox_item *out,
					 struct store_error *err);
	enum store_status (*outbox_settle)(struct store *s, int64_t oid, int state, int attempts, int64_t next_at_ms,
					   const char *error, struct store_error *err);
	enum store_status (*outbox_list)(struct store *s, int state, size_t count, size_t offset,
					 struct outbox_item *items, size_t *n, struct store_error *err);
	enum store_status (*outbox_counts)(struct store *s, struct outbox_counts *out, struct store_error *err);
	enum store_status (*outbox_retry_dead)(struct store *s, const struct outbox_filter *f, size_t *n,
					       struct store_error *err);
	enum store_status (*mark_get)(struct store *s, const char *name, int64_t *value, struct store_error *err);
	enum store_status (*mark_set)(struct store *s, const char *name, int64_t value, struct store_error *err);
	/* store_replay_claim; NULL when the backend keeps no shared replay
	 * cache (one gateway per store: the caller keeps its own) */
	enum store_status (*replay_claim)(struct store *s, const char *iss, const char *jti, int64_t exp, int64_t now,
					  struct store_error *err);
	/* store_submit after the wrapper's checks (if_match parsed into
	 * w->if_match_version); drain as store_drain */
	enum store_status (*submit)(struct store *s, struct store_write *w);
	void (*drain)(struct store *s);
	/* submit takes an appended record's text (store_write.text) as it is;
	 * false: store_submit parses it into resource first */
	bool append_text;
	/* store_settle for one type (NULL: any); NULL when the backend
	 * indexes appended records as it writes them */
	enum store_status (*settle)(struct store *s, const char *type, struct store_error *err);
	enum store_status (*snapshot)(struct store *s, struct store_snapshot *out, struct store_error *err);
	enum store_status (*export_types)(struct store *s, int64_t upto_seq, store_type_fn *fn, void *ctx,
					  struct store_error *err);
	enum store_status (*export_scan)(struct store *s, const struct store_export_query *q, store_export_fn *fn,
					 void *ctx, struct store_error *err);
	/* the shared bulk export jobs; NULL when the backend keeps none */
	const struct store_job_ops *jobs;
};

struct rcache;

struct store {
	const struct store_ops *ops;
	/* Set by the backend at open. cache: current versions for
	 * store_read_text (rcache.h), only when this process is the database's
	 * only writer or the backend hears of every other writer's changes
	 * (ops->cache_wait); readonly: every write answers STORE_INVALID. */
	struct rcache *cache;
	bool readonly;
};

/* store_open_sqlite flags. */
#define STORE_OPEN_SHARED 1u /* read-only beside a running gateway: no lock, no cache */

#define STORE_CACHE_DEFAULT_BYTES (64u << 20)

/* Opens (creating when missing) the SQLite store in data_dir: the directory
 * is created with mode 0700 when missing, the database is data_dir/store.db
 * (mode 0600) in WAL mode with synchronous=FULL, a busy timeout of 10 s and a
 * schema version table; a database written by a newer schema is refused.
 * The opener becomes the directory's only writer: an exclusive lock on
 * data_dir/store.lock (held until store_close; a second opener is refused
 * with the reason), which lets reads of current versions be served from a
 * cache of cache_bytes (0: none; rcache.h). With STORE_OPEN_SHARED in flags
 * the store is opened read-only without the lock and without a cache (a
 * command reading beside a running gateway).
 * The opener checkpoints the write-ahead log on a thread of its own, off the
 * commit path: woken by a commit that leaves STORE_SQLITE_WAL_PAGES frames
 * in it (the next commit copies what was appended meanwhile, so the log
 * starts again under a steady stream of writes); past
 * STORE_SQLITE_WAL_BOUND_PAGES frames that a reader's old
 * snapshot kept from being copied, new writes wait (at most 5 s a time)
 * for that reader to move on, so the log's growth is bounded
 * (core/store/store_sqlite_ckpt.c; crosswalk_store_checkpoints_total).
 * Returns 0 and *out (close with store_close), or -1 with the reason in err
 * (errlen bytes, may be 0). */
#define STORE_SQLITE_WAL_PAGES 2000
#define STORE_SQLITE_WAL_BOUND_PAGES (4 * STORE_SQLITE_WAL_PAGES)
int store_open_sqlite(const char *data_dir, unsigned flags, size_t cache_bytes, struct store **out, char *err,
		      size_t errlen);

/* The PostgreSQL backend (core/store/store_pg*.c; store_pg_int.h is the
 * only file that includes <libpq-fe.h>): the store in the database that
 * conninfo (a libpq connection string; a password belongs in PGPASSWORD or
 * a passfile, never in a log) names. Several gateways may open the same
 * database at once: a read on any instance sees every write acknowledged by
 * any other (the read cache, of cache_bytes, 0: none, is invalidated by the
 * database's notifications of changed resources and consulted only after a
 * barrier that has taken in every change committed before the read:
 * store_pg_cache.c), store_begin takes a transaction-scoped
 * advisory lock (conditional writes and transactions are atomic across
 * instances), writes lock their resource's row before comparing versions,
 * and the outbox is shared: every instance takes records (FOR UPDATE SKIP
 * LOCKED, in the order above) and a record taken is leased to its taker for
 * lease_ms; after a crash another instance takes it once the lease ends,
 * and a settle from a taker whose lease has passed is ignored. The
 * schema is created by the first opener (under an advisory lock); a schema
 * newer than this build is refused. Each thread that calls into the store
 * holds one connection. Returns 0 and *out, or -1 with the reason in err. */
struct store_pg_options {
	int statement_timeout_ms; /* 0: 30 s; also the lock wait limit (then STORE_BUSY) */
	int64_t lease_ms;         /* 0: 120 s; must exceed the upstream's request timeout */
	size_t cache_bytes;       /* the read cache (rcache.h); 0: none */
};
int store_open_pg(const char *conninfo, const struct store_pg_options *opt, struct store **out, char *err,
		  size_t errlen);

/* Closes every connection and frees s (NULL is fine). No other thread may be
 * using s; a transaction still open is rolled back. */
void store_close(struct store *s);

/* Starts a transaction on the calling thread's connection, taking the write
 * lock at once (waiting up to the busy timeout: STORE_BUSY). Until commit or
 * rollback, this thread's writes join it; a write that fails inside it is
 * undone alone (the transaction stays open for the caller to decide).
 * STORE_CONFLICT when this thread already has one open. */
enum store_status store_begin(struct store *s, struct store_error *err);
/* Makes the transaction durable (fsync'd) before returning STORE_OK; on any
 * failure it is rolled back. STORE_INVALID when none is open. */
enum store_status store_commit(struct store *s, struct store_error *err);
/* Undoes every write since store_begin. STORE_INVALID when none is open. */
enum store_status store_rollback(struct store *s, struct store_error *err);

/* Stores a new resource of type type (resource.resourceType must equal it;
 * resource is not modified). The id is id when given (update-as-create: a
 * client-assigned id; STORE_CONFLICT when a live resource already has it, a
 * deleted one gets a new version), else a new random UUID; any id in the
 * body is ignored. Sets meta.versionId and meta.lastUpdated, keeps the rest
 * of meta. *out (may be NULL) receives the stored resource. */
enum store_status store_create(struct store *s, const char *type, const cJSON *resource, const char *id,
			       cJSON **out, struct store_error *err);

/* Writes a new version of type/id (the body's id, when present, must be id:
 * else STORE_INVALID). if_match: NULL, or the expected current versionId as
 * "3" or an ETag W/"3"; a different current version, or no resource at all,
 * is STORE_VERSION_MISMATCH. Creates the resource when absent (version 1)
 * and writes over a deleted one; *created (may be NULL) tells which.
 * *out (may be NULL) receives the stored resource. */
enum store_status store_update(struct store *s, const char *type, const char *id, const cJSON *resource,
			       const char *if_match, bool *created, cJSON **out, struct store_error *err);

/* The current version of type/id into *out. STORE_NOT_FOUND when it never
 * existed, STORE_GONE when its current version is a deletion. */
enum store_status store_read(struct store *s, const char *type, const char *id, cJSON **out,
			     struct store_error *err);

/* Queued single writes (the commit queue). A create, update or delete
 * outside any transaction may be handed to the store instead of waited for:
 * the caller fills a struct store_write, submits it and its thread is free
 * at once; the backend commits queued writes in groups — one transaction,
 * each write in its own savepoint (a failing write fails alone), one durable
 * commit for the group — and then calls w->done(w->ctx) once for the write,
 * from a thread of its own, when the write's commit is durable (status
 * STORE_OK) or has failed (every write of a failed commit gets its status,
 * e.g. STORE_FULL, and none of them is stored). The synchronous
 * store_create/update/delete outside a transaction join the same groups.
 * Semantics are those of store_create (kind CREATE, id "" for a new id, a
 * client id otherwise), store_update (if_match as there) and store_delete;
 * a transaction of the caller's thread is never joined (STORE_INVALID when
 * one is open): transactions and conditional writes stay synchronous.
 *
 * Ownership: w belongs to the caller (allocate it anywhere) and must stay
 * valid until done has run; the store takes w->resource (freed by
 * store_write_release) and sets the outputs. done must not block (wake the
 * waiting request and return); it may run before store_submit returns.
 * store_submit returns STORE_OK when the write is queued (done will run), or
 * the refusal (argument checks, a read-only store, a stopping store:
 * STORE_BUSY) with w->status and w->err set — done then never runs.
 *
 * Appended records (append set: a CREATE with a new id, never delivered, of
 * a record nobody changes afterwards, such as an AuditEvent): committed in
 * the group as durably as any write (done runs once the commit is on disk,
 * with id, version 1 and created set; resource is taken at submission and
 * stored is left NULL: nobody reads an appended record back from its
 * write), but the SQLite
 * backend writes them to an append-only log table only: one row each, no
 * resource, version or search rows while the caller waits. They are indexed
 * later, in bulk, on the committer: when it has been idle a moment, when the
 * log grows long, and before any read that could hold one (store_settle).
 * Other backends store them as creates. */
enum store_write_kind { STORE_WRITE_CREATE, STORE_WRITE_UPDATE, STORE_WRITE_DELETE };

struct store_write {
	/* in */
	enum store_write_kind kind;
	char type[STORE_TYPE_SIZE];
	char id[STORE_ID_SIZE]; /* "" = a create with a new id; set to it on success */
	cJSON *resource;        /* owned by w; NULL for a delete */
	bool deliver;           /* also record it for delivery upstream (the outbox), in the same savepoint */
	bool append;            /* an appended record (above): kind CREATE, id "", deliver false */
	/* A create with a new id given as its compact JSON text instead of a
	 * tree (resource NULL): an object that begins {"resourceType":"<type>"
	 * followed by ',' or '}', without id and meta, which the store stamps
	 * in after resourceType as it would into a tree. Owned by w (freed by
	 * store_write_release). An appended record's text is written as it is
	 * (store_ops.append_text: no tree is built); any other is parsed into
	 * resource by store_submit. */
	char *text;
	void (*done)(void *ctx);
	void *ctx;
	/* out, once done ran */
	enum store_status status;
	struct store_error err;
	cJSON *stored;   /* the stored resource (create, update); owned by w */
	bool created;    /* a new resource (or one written over its deletion) */
	int64_t version; /* the version written (delete: the deletion's) */
	/* for the store */
	int64_t if_match_version; /* 0 = none */
	void *impl;
};

enum store_status store_submit(struct store *s, struct store_write *w, const char *if_match);
/* Indexes the appended records of type (NULL: of every type) that the store
 * holds but has not indexed yet, so that a read made after it sees every
 * appended record whose done has run. The read wrappers (store_read,
 * store_vread, store_read_text, store_history, store_search — for its type,
 * and for every type when a criterion chains — and store_snapshot) call it
 * themselves; it costs an atomic load when nothing is waiting. It runs on
 * the committer, so the caller waits for one group; a caller inside its own
 * transaction, or on a store open read-only (beside a running gateway),
 * reads what is indexed so far. Errors as a write's. */
enum store_status store_settle(struct store *s, const char *type, struct store_error *err);
/* Frees what w owns (resource, stored) — not w itself. */
void store_write_release(struct store_write *w);
/* Stops taking queued writes (store_submit then answers STORE_BUSY) and
 * returns once every write queued before has been committed and its done
 * has run. Any thread; before the server that waits for the answers stops. */
void store_drain(struct store *s);
/* For backends: ends a queued write (w->status and outputs set): keeps the
 * read cache coherent, then runs w->done. */
void store_write_finished(struct store *s, struct store_write *w);

/* Version vid ("1", "2", …) of type/id. STORE_NOT_FOUND for an unknown
 * resource or version (or a vid that is not a version number), STORE_GONE
 * when that version is the deletion. */
enum store_status store_vread(struct store *s, const char *type, const char *id, const char *vid, cJSON **out,
			      struct store_error *err);

/* Deletes type/id by adding a deletion version; *version (may be NULL) gets
 * its number. Deleting an already deleted resource changes nothing and
 * answers STORE_OK with the existing deletion's version; STORE_NOT_FOUND when
 * it never existed. */
enum store_status store_delete(struct store *s, const char *type, const char *id, int64_t *version,
			       struct store_error *err);

/* History newest first (by seq): of type/id when id is given, else of every
 * resource of type, else (type NULL) of the whole store; only versions
 * written at or after since_ms (ms since the epoch; STORE_ALL_TIME for all).
 * count (1..STORE_MAX_COUNT; 0 = total only) is the page size; before (> 0)
 * keeps only versions with a seq below it: the next page starts before the
 * last entry's seq, a stable cursor that writes made meanwhile (higher seqs)
 * do not shift, so paging reaches every version once; offset skips entries
 * (after before). out->total counts all versions since since_ms, out->more
 * says whether older ones follow the page. An unknown id is STORE_NOT_FOUND
 * (a known one with nothing since is an empty page). The page is filled
 * even when empty; release it with store_page_release whatever the
 * status. */
#define STORE_ALL_TIME INT64_MIN
enum store_status store_history(struct store *s, const char *type, const char *id, int64_t since_ms, size_t count,
				size_t offset, int64_t before, struct store_page *out, struct store_error *err);

/* Live resources of type matching every criterion of q (AND across
 * criteria, OR across a criterion's comma-separated values), sorted, one
 * page of them in out (entries with resource set) and out->total counting all
 * matches. An unknown parameter, modifier or malformed value is
 * STORE_INVALID naming it. Release out with store_page_release whatever the
 * status. */
enum store_status store_search(struct store *s, const char *type, const struct store_search *q,
			       struct store_page *out, struct store_error *err);

/* Frees the entries and their resources; the page may be reused. */
void store_page_release(struct store_page *page);

/* Outbox. outbox_add records that (type, id, version) is to be delivered; call
 * it inside the transaction of the write so both commit together.
 * outbox_next gives the oldest pending record when it is due at now_ms, and
 * NOT_FOUND when there is none or the oldest is not due yet: records are
 * delivered in the order they were written, so a Patient written before its
 * Encounter (in one push or an earlier one) reaches the upstream first, also
 * after an outage; a record waiting for a retry holds back the ones written
 * after it, a dead letter does not. outbox_settle ends an attempt: state PENDING with a later
 * next_at_ms to retry, DEAD with the error to give up, or -1 to delete the
 * record (delivered). outbox_list pages through records of a state (-1: all),
 * oldest first, into items (room for count); outbox_counts counts them. */
/* read without parsing: the stored JSON text of the current version (vid
 * NULL) or of version vid, for answering reads verbatim. Same statuses as
 * store_read/store_vread. */
enum store_status store_read_text(struct store *s, const char *type, const char *id, const char *vid,
				  struct store_text *out, struct store_error *err);
/* A read of a current version that must not hold its thread while the
 * backend makes sure its read cache has taken in every change another
 * gateway committed before the read arrived (PostgreSQL: one barrier round
 * trip, shared by every read waiting, store_pg_cache.c).
 * store_cache_waits: whether store_read_text of a current version may wait
 * for that (false: it never does; no need for store_fresh_wait).
 * store_fresh_wait: call it when the read arrives, with f->done and f->ctx
 * set. true: decided at once, f->fresh set, done not called. false: f must
 * stay valid until f->done(f->ctx) runs, once, from another thread, with
 * f->fresh set (within the backend's statement timeout, and before the
 * store closes). Then store_read_text_after reads the current version of
 * type/id as store_read_text does, from the cache only when f->fresh. */
bool store_cache_waits(const struct store *s);
bool store_fresh_wait(struct store *s, struct store_fresh *f);
enum store_status store_read_text_after(struct store *s, const struct store_fresh *f, const char *type, const char *id,
					struct store_text *out, struct store_error *err);

enum store_status store_outbox_add(struct store *s, const char *type, const char *id, int64_t version, bool deleted,
				   struct store_error *err);
/* Takes the oldest record due at now_ms that no earlier related record holds
 * back (above); STORE_NOT_FOUND when there is none. Any thread; each taken
 * record must be settled (store_outbox_settle: state -1 deletes it as
 * delivered). */
enum store_status store_outbox_next(struct store *s, int64_t now_ms, struct outbox_item *out, struct store_error *err);
enum store_status store_outbox_settle(struct store *s, int64_t oid, int state, int attempts, int64_t next_at_ms,
				      const char *error, struct store_error *err);
enum store_status store_outbox_list(struct store *s, int state, size_t count, size_t offset,
				    struct outbox_item *items, size_t *n, struct store_error *err);
enum store_status store_outbox_counts(struct store *s, struct outbox_counts *out, struct store_error *err);
/* Puts every dead letter matching f back to pending (attempts 0, due now, its
 * error cleared) in one statement; *n is how many. */
enum store_status store_outbox_retry_dead(struct store *s, const struct outbox_filter *f, size_t *n,
					  struct store_error *err);

/* Marks: named numbers the gateway keeps about the data itself (e.g. the
 * rule a plugin's ids were last upgraded to, migrate.h). mark_get gives
 * STORE_NOT_FOUND for a name never set; mark_set (inside the caller's
 * transaction when one is open) creates or replaces. name is at most 200
 * bytes. */
enum store_status store_mark_get(struct store *s, const char *name, int64_t *value, struct store_error *err);
enum store_status store_mark_set(struct store *s, const char *name, int64_t value, struct store_error *err);

/* The replay cache of client assertions shared by every gateway on one
 * backend (PostgreSQL): store_replay_claim records (iss, jti) as used until
 * exp (Unix seconds) in one statement, so of several gateways claiming one
 * assertion at once exactly one gets STORE_OK; STORE_CONFLICT when a claim
 * live at now holds it already (an expired one is replaced). Claims expired
 * at now are purged by the backend (at most once a minute per gateway).
 * iss and jti are 1 to 512 bytes. store_replay_shared tells whether the
 * backend keeps one (false on SQLite, where one gateway owns the store and
 * keeps its own, auth/replay.h); store_replay_claim then answers
 * STORE_INVALID. Any thread, outside a transaction of the caller's. */
bool store_replay_shared(const struct store *s);
enum store_status store_replay_claim(struct store *s, const char *iss, const char *jti, int64_t exp, int64_t now,
				     struct store_error *err);

/* Bulk export. store_snapshot takes the write lock for an instant and
 * fills out (see struct store_snapshot). store_export_types calls fn for
 * every resource type with a version up to upto_seq (fn non-zero stops).
 * store_export_scan streams q's resources to fn one at a time without
 * holding more than one in memory; a criterion the search does not know is
 * STORE_INVALID naming it. Reads only; any thread. */
enum store_status store_snapshot(struct store *s, struct store_snapshot *out, struct store_error *err);
enum store_status store_export_types(struct store *s, int64_t upto_seq, store_type_fn *fn, void *ctx,
				     struct store_error *err);
enum store_status store_export_scan(struct store *s, const struct store_export_query *q, store_export_fn *fn, void *ctx,
				    struct store_error *err);

/* Bulk export jobs shared by every gateway on one backend (PostgreSQL;
 * store_jobs_shared false on SQLite, where the gateway keeps its jobs in
 * data_dir and these answer STORE_INVALID). A job is a row: its record
 * (JSON text, api/bulk.h), its state ("queued", "running", "complete",
 * "failed"), a progress line, the time it finished (ms) and, while it
 * runs, the gateway whose worker holds it with a lease
 * (store.postgresql.lease_ms). Its output files are kept in the database
 * beside it, in chunks, written in the one transaction that finishes it.
 *
 * - store_job_add records a queued job, STORE_CONFLICT when max_jobs are
 *   kept already.
 * - store_job_get fills out (out->rec malloc'd: store_job_release), or
 *   STORE_NOT_FOUND.
 * - store_job_claim gives this gateway the oldest queued job, or a running
 *   one whose lease expired at now_ms (its gateway stopped renewing it: it
 *   runs again from the start), with the lease; STORE_NOT_FOUND when none.
 *   One statement: two gateways never take the same job.
 * - store_job_renew extends this gateway's lease and sets the progress
 *   line; STORE_NOT_FOUND when the job is no longer this gateway's (it was
 *   cancelled, or the lease expired and another gateway took it): stop.
 * - store_job_finish sets the final state and record and stores the
 *   files (each read from its fd from the start) in one transaction, only
 *   while the job is this gateway's (else STORE_NOT_FOUND and nothing is
 *   kept): a job is complete with all its files or not at all.
 * - store_job_unclaim puts this gateway's running job back in the queue
 *   (the gateway stops).
 * - store_job_remove deletes a job and its files (STORE_NOT_FOUND: none).
 * - store_job_expire deletes the finished jobs (and files) that finished
 *   before before_ms.
 * - store_job_file calls fn with a finished job's file, chunk by chunk in
 *   order (fn non-zero stops); STORE_NOT_FOUND when there is no such file.
 * Any thread, outside a transaction of the caller's. */
struct store_job {
	char *rec; /* JSON text */
	char state[16];
	char progress[160];
	int64_t finished_ms;
};
struct store_job_file {
	const char *name;
	int fd;
};
typedef int store_chunk_fn(void *ctx, const void *data, size_t len);
struct store_job_ops {
	enum store_status (*add)(struct store *s, const char *id, const char *rec, int64_t created_ms,
				 uint64_t max_jobs, struct store_error *err);
	enum store_status (*get)(struct store *s, const char *id, struct store_job *out, struct store_error *err);
	enum store_status (*claim)(struct store *s, int64_t now_ms, char id[STORE_ID_SIZE], struct store_job *out,
				   struct store_error *err);
	enum store_status (*renew)(struct store *s, const char *id, int64_t now_ms, const char *progress,
				   struct store_error *err);
	enum store_status (*finish)(struct store *s, const char *id, const char *state, const char *rec,
				    int64_t finished_ms, const struct store_job_file *files, size_t n,
				    struct store_error *err);
	enum store_status (*unclaim)(struct store *s, const char *id, struct store_error *err);
	enum store_status (*remove)(struct store *s, const char *id, struct store_error *err);
	enum store_status (*expire)(struct store *s, int64_t before_ms, struct store_error *err);
	enum store_status (*file)(struct store *s, const char *id, const char *name, store_chunk_fn *fn, void *ctx,
				  struct store_error *err);
};
bool store_jobs_shared(const struct store *s);
/* The shared job table's operations (NULL when !store_jobs_shared). */
const struct store_job_ops *store_jobs(const struct store *s);
void store_job_release(struct store_job *j);

const char *store_status_text(enum store_status st);
int store_status_http(enum store_status st);
/* Whether the last write failed because the disk (or the store's size
 * limit) was full: set by a backend on such a failure, cleared by the next
 * committed write. Process-wide; any thread. */
bool store_full(void);
void store_note_full(bool full);
/* Whether a read found stored content failing its integrity check since the
 * process started (it stays set: damage does not heal). store_note_corrupt
 * is the backends' report of one such version: it counts it (metrics), logs
 * the first one, sets the flag, and returns STORE_CORRUPT with the error
 * the caller answers. Process-wide; any thread. */
bool store_corrupt(void);
enum store_status store_note_corrupt(struct store_error *err, const char *type, const char *id, int64_t version);

/* crosswalk check: a full check of the SQLite store in data_dir, with the
 * directory's lock taken (refused, -1, when a running gateway holds it):
 * PRAGMA integrity_check, every version's checksum, the resource rows
 * against their versions, and the search index against what the stored
 * resources index. With STORE_CHECK_REPAIR it then rebuilds what is derived
 * from the stored versions (SQLite's indexes, the search index, the current
 * version of each resource) and names what cannot be rebuilt (damaged
 * versions, damaged tables). Every finding is one line passed to say(ctx,
 * line). Returns 0 when the store is clean (after the repair, with
 * STORE_CHECK_REPAIR), 1 when problems remain, -1 when the check could not
 * run (why in err). */
#define STORE_CHECK_REPAIR 1u
int store_check_sqlite(const char *data_dir, unsigned flags, void (*say)(void *ctx, const char *line), void *ctx,
		       char *err, size_t errlen);

/* crosswalk check on a PostgreSQL store (conninfo as store_open_pg), in one
 * read-only snapshot (gateways may keep running): every version against
 * its checksum, version rows without their resource row, index rows of no
 * resource, resources without their current version, and the chain of
 * access records (each link's hash, no position missing, every stored
 * AuditEvent on it; core/store/store_pg_audit.c). The last lines give the
 * chain's head (position and hash, to note elsewhere) and the count of
 * problems. STORE_CHECK_REPAIR removes the orphan index rows (derived) and
 * checks again; the rest can only be restored from a backup. Returns as
 * store_check_sqlite; -1 also when the database holds no store or one of
 * another schema version. */
int store_check_pg(const char *conninfo, unsigned flags, void (*say)(void *ctx, const char *line), void *ctx, char *err,
		   size_t errlen);

/* For the backends' checks: where the findings go (say may be NULL:
 * nowhere). store_sayf prints one line (cut past 1,199 bytes) to it. */
struct store_say {
	void (*say)(void *ctx, const char *line);
	void *ctx;
};
void store_sayf(const struct store_say *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* For backends: sets err (may be NULL) and returns st. */
enum store_status store_fail(struct store_error *err, enum store_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* For backends: a new random id (UUID text, version 4); -1 when the system
 * has no randomness to give. */
int store_new_id(char out[STORE_ID_SIZE]);
/* For backends: a new time-ordered id (UUID text, version 7: the time in ms,
 * then random bits) for an appended record: ids made later sort after, so
 * the index of ids grows at its end (docs/audit.md). -1 as store_new_id. */
int store_new_ordered_id(char out[STORE_ID_SIZE]);
/* For backends: the current UTC time as a FHIR instant with milliseconds,
 * and the same instant in ms since the epoch. */
void store_now(char out[STORE_TIME_SIZE], int64_t *ms);
/* ms since the epoch as the store writes times ("…T…:…:….sssZ", UTC). */
void store_time_text(int64_t ms, char out[STORE_TIME_SIZE]);

#endif
