/* The PostgreSQL backend's writes: create, update and delete, in a
 * savepoint of the caller's transaction or, outside one, through the commit
 * queue (store_queue.h): the committers run each group of single writes in
 * one transaction, a savepoint per write, one COMMIT; a write is answered
 * after its group's COMMIT has returned. */
#include "store/store_pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "base/strbuf.h"

struct write_req {
	struct sver_write v;
	bool deliver; /* also an outbox record, in the same savepoint */
};

/* The index rows of one version as five array literals (param, sys, val,
 * lo, hi), parameters the statements below unnest: one statement writes a
 * version's rows, its resource row and all its index rows. */
#define IDX_COLS 5

/* Parallel array literals, one row at a time (n rows so far); a group's
 * index rows carry a sixth column, the ordinal (ord) of the create they
 * belong to. */
#define ARR_MAX_COLS 6

struct idx_arrays {
	struct strbuf col[ARR_MAX_COLS];
	size_t n;
	long ord; /* > 0: added as column IDX_COLS of each index row */
};

/* One element: NULL, or the text double-quoted with " and \ escaped. */
static void arr_add(struct idx_arrays *a, int col, const char *v)
{
	struct strbuf *b = &a->col[col];
	strbuf_addc(b, a->n ? ',' : '{');
	if (!v) {
		strbuf_adds(b, "NULL");
		return;
	}
	strbuf_addc(b, '"');
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			strbuf_addc(b, '\\');
		strbuf_addc(b, *p);
	}
	strbuf_addc(b, '"');
}

static void arr_num(struct idx_arrays *a, int col, double d)
{
	char buf[40];
	if (d != d)
		snprintf(buf, sizeof buf, "NaN");
	else if (d > 1e308 * 10)
		snprintf(buf, sizeof buf, "Infinity");
	else if (d < -1e308 * 10)
		snprintf(buf, sizeof buf, "-Infinity");
	else
		snprintf(buf, sizeof buf, "%.17g", d);
	arr_add(a, col, buf);
}

static int collect_idx(void *p, const struct search_index_value *v)
{
	struct idx_arrays *a = p;
	if (ssql_is_id_param(v->param))
		return 0;
	arr_add(a, 0, v->param);
	arr_add(a, 1, v->sys);
	arr_add(a, 2, v->val);
	if (v->kind == SEARCH_PARAM_DATE) {
		arr_num(a, 3, (double)v->lo);
		arr_num(a, 4, (double)v->hi);
	} else if (v->kind == SEARCH_PARAM_NUMBER || v->kind == SEARCH_PARAM_QUANTITY) {
		arr_num(a, 3, v->num_lo);
		arr_num(a, 4, v->num_hi);
	} else {
		arr_add(a, 3, NULL);
		arr_add(a, 4, NULL);
	}
	if (a->ord > 0)
		arr_num(a, IDX_COLS, (double)a->ord);
	a->n++;
	return 0;
}

static void arrays_release(char *out[IDX_COLS])
{
	for (int i = 0; i < IDX_COLS; i++) {
		free(out[i]);
		out[i] = NULL;
	}
}

/* Closes a's first ncols columns into out[] (malloc'd, the caller's);
 * false when out of memory (out[] then released, oom already true too). */
static bool arrays_finish(struct idx_arrays *a, int ncols, char **out, bool oom)
{
	for (int i = 0; i < ncols; i++) {
		if (a->n == 0)
			strbuf_addc(&a->col[i], '{');
		strbuf_addc(&a->col[i], '}');
		out[i] = strbuf_take(&a->col[i], NULL);
		oom = oom || !out[i];
	}
	for (int i = 0; i < ARR_MAX_COLS; i++)
		strbuf_release(&a->col[i]);
	if (oom)
		for (int i = 0; i < ncols; i++) {
			free(out[i]);
			out[i] = NULL;
		}
	return !oom;
}

/* The index rows of resource (NULL: none) in out[] (malloc'd, the
 * caller's to release). STORE_NO_MEMORY otherwise. */
static enum store_status index_arrays(const char *type, const cJSON *resource, char *out[IDX_COLS],
				      struct store_error *err)
{
	struct idx_arrays a = {0};
	bool oom = resource && search_params_extract(type, resource, collect_idx, &a) != 0;
	if (!arrays_finish(&a, IDX_COLS, out, oom))
		return store_fail(err, STORE_NO_MEMORY, "out of memory while indexing");
	return STORE_OK;
}

/* A version is written only when its stamp (p, milliseconds) is not older
 * than the last bulk export snapshot's time (the mark PGS_MARK_SNAPSHOT,
 * pg_snapshot): a write stamped before a snapshot that commits after it
 * writes nothing and is stamped again (store.h's struct store_snapshot).
 * A statement that waited for the snapshot's table lock reads the mark
 * after that wait (READ COMMITTED: each statement's snapshot is taken once
 * its locks are held). */
#define STAMP_OK(p) p "::bigint >= coalesce((SELECT value FROM mark WHERE name = '" PGS_MARK_SNAPSHOT "'), 0)"

/* A new resource: $1 type, $2 id, $3 version, $4 deleted, $5 lastUpdated,
 * $6 op, $7 body, $8 sum, $9-$13 the index arrays, $14 the stamp's
 * milliseconds. The statement's parts see one snapshot; the foreign keys
 * are checked at its end. It answers the rows written (0: stamped before
 * a snapshot, nothing written). */
#define NEW_RES_SQL                                                                                                    \
	"WITH r AS (INSERT INTO resource(type, id, version, deleted, last_updated)"                                    \
	" SELECT $1, $2, $3::bigint, $4::integer, $5 WHERE " STAMP_OK(                                                 \
		"$14") " RETURNING rid),"                                                                              \
		       " v AS (INSERT INTO version(rid, type, id, version, op, last_updated, body, sum)"               \
		       " SELECT rid, $1, $2, $3::bigint, $6::integer, $5, $7, $8::bytea FROM r),"                      \
		       " x AS (INSERT INTO idx(rid, param, sys, val, lo, hi) SELECT r.rid, x.p, x.s, x.v, x.l, x.h "   \
		       "FROM r,"                                                                                       \
		       " unnest($9::text[], $10::text[], $11::text[], $12::float8[], $13::float8[]) AS x(p, s, v, l, " \
		       "h))"                                                                                           \
		       " SELECT count(*) FROM r"
#define NEW_RES_PARAMS 14

/* The next version of a resource: $1 rid, $2 version, $3 deleted, $4
 * lastUpdated, $5 op, $6 body, $7 sum, $8-$12 the index arrays, $13 the
 * stamp's milliseconds. Its old index rows are deleted in the same
 * statement (the delete does not see the rows it inserts: one snapshot).
 * It answers the rows written, as NEW_RES_SQL. */
#define NEXT_RES_SQL                                                                                                  \
	"WITH r AS (UPDATE resource SET version = $2, deleted = $3, last_updated = $4 WHERE rid = $1 AND " STAMP_OK(  \
		"$13") " RETURNING rid, type, id),"                                                                   \
		       " v AS (INSERT INTO version(rid, type, id, version, op, last_updated, body, sum)"              \
		       " SELECT rid, type, id, $2, $5, $4, $6, $7 FROM r), d AS (DELETE FROM idx WHERE rid IN "       \
		       "(SELECT rid FROM r)),"                                                                        \
		       " x AS (INSERT INTO idx(rid, param, sys, val, lo, hi) SELECT r.rid, x.p, x.s, x.v, x.l, x.h "  \
		       "FROM r,"                                                                                      \
		       " unnest($8::text[], $9::text[], $10::text[], $11::float8[], $12::float8[]) AS x(p, s, v, l, " \
		       "h))"                                                                                          \
		       " SELECT count(*) FROM r"
#define NEXT_RES_PARAMS 13

/* A group of creates of new ids (version 1 each) in one statement: the
 * creates as arrays $1 type, $2 id, $3 lastUpdated, $4 op, $5 body, $6
 * sum, their ordinals numbering them from 1; $7-$12 their index rows
 * (each row's param, sys, val, lo, hi and the ordinal of its create); $13 the oldest
 * stamp's milliseconds. The group is written whole or, stamped before a
 * snapshot, not at all; it answers the creates written. Versions take
 * their seq in the group's order. */
#define GROUP_SQL                                                                                                      \
	"WITH d AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::text[],"               \
	" $6::bytea[]) WITH ORDINALITY AS d(t, i, w, o, b, s, n) WHERE " STAMP_OK(                                     \
		"$13") "),"                                                                                            \
		       " r AS (INSERT INTO resource(type, id, version, deleted, last_updated) SELECT t, i, 1, 0, w "   \
		       "FROM d"                                                                                        \
		       " ORDER BY n RETURNING rid, type, id),"                                                         \
		       " v AS (INSERT INTO version(rid, type, id, version, op, last_updated, body, sum)"               \
		       " SELECT r.rid, d.t, d.i, 1, d.o, d.w, d.b, d.s FROM d JOIN r ON r.type = d.t AND r.id = d.i "  \
		       "ORDER BY d.n),"                                                                                \
		       " x AS (INSERT INTO idx(rid, param, sys, val, lo, hi) SELECT r.rid, x.p, x.s, x.v, x.l, x.h"    \
		       " FROM unnest($7::text[], $8::text[], $9::text[], $10::float8[], $11::float8[], $12::bigint[])" \
		       " AS x(p, s, v, l, h, n) JOIN d ON d.n = x.n JOIN r ON r.type = d.t AND r.id = d.i)"            \
		       " SELECT count(*) FROM r"
#define GROUP_PARAMS 13

#define INDEX_SQL                                                                                       \
	"INSERT INTO idx(rid, param, sys, val, lo, hi) SELECT $1::bigint, x.p, x.s, x.v, x.l, x.h FROM" \
	" unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[]) AS x(p, s, v, l, h)"

#define LOCK_RES_SQL "SELECT rid, version, deleted FROM resource WHERE type = $1 AND id = $2 FOR UPDATE"

enum store_status pgs_reindex(struct pgconn *c, struct store_error *err)
{
	PGresult *r = NULL;
	enum store_status st = pgs_exec(c,
					"SELECT r.rid, r.type, v.body FROM resource r JOIN version v"
					" ON v.rid = r.rid AND v.version = r.version WHERE r.deleted = 0",
					0, NULL, NULL, &r, err, "reindexing");
	if (st == STORE_OK)
		st = pgs_run(c, "DELETE FROM idx", err, "reindexing");
	for (int i = 0; st == STORE_OK && i < PQntuples(r); i++) {
		const char *body = pgs_val(r, i, 2);
		cJSON *res = body ? fjson_parse(body, strlen(body), NULL, NULL) : NULL;
		if (!res) {
			st = store_fail(err, STORE_CORRUPT, "reindexing: a stored resource cannot be read back");
			break;
		}
		char *arr[IDX_COLS] = {0};
		st = index_arrays(pgs_val(r, i, 1), res, arr, err);
		cJSON_Delete(res);
		if (st != STORE_OK)
			break;
		const char *vals[] = {pgs_val(r, i, 0), arr[0], arr[1], arr[2], arr[3], arr[4]};
		st = pgs_exec_prepared(c, PGS_ST_INDEX, INDEX_SQL, 6, vals, NULL, err, "reindexing");
		arrays_release(arr);
	}
	PQclear(r);
	return st;
}

/* What a version's statement takes: the stamp, the printed body, its sum
 * and its index rows, as parameter text. */
struct row_args {
	char when[STORE_TIME_SIZE];
	char ms[24]; /* the stamp in milliseconds (STAMP_OK) */
	int64_t ms_num;
	char *text;
	char sumhex[2 * SVER_SUM_LEN + 3];
	char vnum[24], del[2], opnum[8];
	char *arr[IDX_COLS];
};

static void row_args_release(struct row_args *a)
{
	free(a->text);
	a->text = NULL;
	arrays_release(a->arr);
}

/* Stamps, prints, sums and indexes w's version (w->v.version, from
 * sver_check) into a and w->v.stored. */
static enum store_status row_args_build(struct write_req *w, struct row_args *a, struct store_error *err)
{
	store_now(a->when, &a->ms_num);
	snprintf(a->ms, sizeof a->ms, "%lld", (long long)a->ms_num);
	uint8_t sum[SVER_SUM_LEN];
	enum store_status st = sver_content(w->v.type, w->v.id, w->v.resource, w->v.version, a->when, &w->v.stored,
					    &a->text, sum, err);
	if (st != STORE_OK)
		return st;
	pgs_sum_hex(sum, a->sumhex);
	snprintf(a->vnum, sizeof a->vnum, "%lld", (long long)w->v.version);
	a->del[0] = w->v.kind == SVER_DELETE ? '1' : '0';
	a->del[1] = '\0';
	snprintf(a->opnum, sizeof a->opnum, "%d", (int)w->v.op);
	if ((st = index_arrays(w->v.type, w->v.stored, a->arr, err)) != STORE_OK)
		row_args_release(a);
	return st;
}

/* The parameters of NEW_RES_SQL. */
static void new_res_vals(const struct write_req *w, const struct row_args *a, const char *vals[NEW_RES_PARAMS])
{
	const char *v[NEW_RES_PARAMS] = {w->v.type, w->v.id,   a->vnum,   a->del,    a->when,   a->opnum,  a->text,
					 a->sumhex, a->arr[0], a->arr[1], a->arr[2], a->arr[3], a->arr[4], a->ms};
	memcpy(vals, v, sizeof v);
}

/* The stamps a write or a group takes before it gives up (each refused
 * only by a snapshot taken between the stamp and the statement). */
#define STAMP_ATTEMPTS 4

static enum store_status write_body(struct pgconn *c, struct write_req *w, struct store_error *err)
{
	bool exists = false, deleted = false;
	char rid[24] = "";
	int64_t cur = 0;
	enum store_status st;
	if (!w->v.fresh) {
		/* the row lock makes the version compared the version replaced:
		 * a concurrent writer on any instance waits for this commit */
		PGresult *r;
		const char *vals[] = {w->v.type, w->v.id};
		st = pgs_exec_prepared(c, PGS_ST_LOCK_RES, LOCK_RES_SQL, 2, vals, &r, err, "looking up the resource");
		if (st != STORE_OK)
			return st;
		if ((exists = PQntuples(r) > 0)) {
			snprintf(rid, sizeof rid, "%s", PQgetvalue(r, 0, 0));
			cur = pgs_int(r, 0, 1);
			deleted = pgs_int(r, 0, 2) != 0;
		}
		PQclear(r);
	}
	bool skip;
	if ((st = sver_check(w->v.kind, w->v.type, w->v.id, w->v.if_match, exists, deleted, cur, &w->v.version,
			     &w->v.created, &skip, err)) != STORE_OK ||
	    skip)
		return st;
	/* stamped again while a snapshot taken meanwhile refuses the stamp */
	for (int attempt = 0; attempt < STAMP_ATTEMPTS; attempt++) {
		struct row_args a = {0};
		if ((st = row_args_build(w, &a, err)) != STORE_OK)
			return st;
		PGresult *r = NULL;
		if (exists) {
			const char *vals[] = {rid,      a.vnum,   a.del,    a.when,   a.opnum,  a.text, a.sumhex,
					      a.arr[0], a.arr[1], a.arr[2], a.arr[3], a.arr[4], a.ms};
			st = pgs_exec_prepared(c, PGS_ST_NEXT_RES, NEXT_RES_SQL, NEXT_RES_PARAMS, vals, &r, err,
					       "writing the resource");
		} else {
			const char *vals[NEW_RES_PARAMS];
			new_res_vals(w, &a, vals);
			st = pgs_exec_prepared(c, PGS_ST_NEW_RES, NEW_RES_SQL, NEW_RES_PARAMS, vals, &r, err,
					       "writing the resource");
		}
		row_args_release(&a);
		bool written = st == STORE_OK && PQntuples(r) == 1 && pgs_int(r, 0, 0) > 0;
		PQclear(r);
		if (st != STORE_OK || written)
			return st;
	}
	return store_fail(err, STORE_BUSY, "bulk export snapshots kept the write from its stamp: nothing was written");
}

/* One write in a savepoint of the open transaction (a caller's, or a
 * group's). Two writers creating one new id race on the resource row's
 * uniqueness: the loser, undone alone, tries once more and then sees the
 * winner's row; a write chosen as a deadlock's victim (two groups locking
 * the same resources in other orders) is undone alone and tried once more. */
static enum store_status run_write(struct pgconn *c, struct write_req *w, struct store_error *err)
{
	enum store_status st = STORE_IO;
	for (int attempt = 0; attempt < 2; attempt++) {
		st = pgs_write_begin(c, err);
		if (st != STORE_OK)
			return st;
		enum store_status ws = write_body(c, w, err);
		if (ws == STORE_OK && w->deliver)
			ws = pgs_outbox_insert(c, w->v.type, w->v.id, w->v.version, w->v.kind == SVER_DELETE, err);
		const char *state = pgs_last_state(c);
		bool raced = (ws == STORE_CONFLICT && strcmp(state, "23505") == 0 && !w->v.fresh) ||
			     (ws == STORE_BUSY && strcmp(state, "40P01") == 0);
		st = pgs_write_end(c, ws, err);
		if (!raced)
			break;
	}
	if (st != STORE_OK) {
		cJSON_Delete(w->v.stored);
		w->v.stored = NULL;
	}
	return st;
}

/* A single write queued for the committers: a thread waiting in do_write
 * (async NULL), or a store_submit (async set, the request freed after). */
struct pg_qreq {
	struct sq_item item; /* first: the queue's items are pg_qreqs */
	struct write_req *w;
	struct store_error *err;
	enum store_status st;
	struct store_write *async;
};

struct pg_async {
	struct pg_qreq r;
	struct write_req w;
};

/* Whether a write's failure is its own (the group goes on without it)
 * rather than the transaction's or a race that a second try settles. */
static bool fails_alone(struct pgconn *c, const struct write_req *w, enum store_status st)
{
	switch (st) {
	case STORE_VERSION_MISMATCH:
	case STORE_NOT_FOUND:
	case STORE_INVALID:
		return true;
	case STORE_CONFLICT: /* another instance's create of the same new id: a race */
		return w->v.fresh || strcmp(pgs_last_state(c), "23505") != 0;
	default:
		return false;
	}
}

/* The attempts before a group falls back to a savepoint per write. */
#define GROUP_ATTEMPTS 4

/* A group sent whole holds at most this many creates (its statement's
 * parameters a few megabytes at most); a larger one runs write by write. */
#define PIPELINE_MAX 1024

/* Whether every pending write of the group is a create of a fresh id with
 * nothing to deliver: none needs an answer before the next is sent. */
static bool pipelinable(struct sq_item *group)
{
	size_t n = 0;
	for (struct pg_qreq *r = (struct pg_qreq *)group; r; r = (struct pg_qreq *)r->item.next) {
		if (r->st != STORE_OK)
			continue;
		if (!r->w->v.fresh || r->w->v.kind != SVER_CREATE || r->w->deliver || ++n > PIPELINE_MAX)
			return false;
	}
	return n > 0;
}

/* Leaves pipeline mode after a lost connection or a protocol failure:
 * whatever was pending is dropped with the session. */
static void pipeline_abandon(struct pgconn *c)
{
	PGresult *x;
	for (int i = 0; i < 16 && PQstatus(c->db) == CONNECTION_OK && (x = PQgetResult(c->db)); i++)
		PQclear(x);
	if (!PQexitPipelineMode(c->db)) {
		PQreset(c->db);
		c->prepared = 0;
	}
}

/* The group's pending creates (pipelinable) as GROUP_SQL's parameters:
 * each stamped, printed, summed and indexed (w->v.stored). A create that
 * cannot be is *bad (its status *bs). */
struct group_args {
	char *col[6];    /* type, id, lastUpdated, op, body, sum */
	char *idx[6];    /* param, sys, val, lo, hi, the create's ordinal */
	char oldest[24]; /* the oldest stamp's milliseconds */
	size_t n;        /* the creates */
};

static void group_args_release(struct group_args *g)
{
	for (int i = 0; i < 6; i++) {
		free(g->col[i]);
		free(g->idx[i]);
		g->col[i] = g->idx[i] = NULL;
	}
}

static enum store_status group_args_build(struct sq_item *group, struct group_args *g, struct store_error *berr,
					  struct pg_qreq **bad, enum store_status *bs)
{
	struct idx_arrays d = {0}, x = {0};
	bool oom = false;
	int64_t oldest = INT64_MAX;
	*g = (struct group_args){0};
	for (struct pg_qreq *r = (struct pg_qreq *)group; r; r = (struct pg_qreq *)r->item.next) {
		if (r->st != STORE_OK)
			continue;
		struct write_req *w = r->w;
		bool skip;
		struct row_args ra = {0};
		char when[STORE_TIME_SIZE] = "";
		int64_t ms = 0;
		uint8_t sum[SVER_SUM_LEN];
		enum store_status ws = sver_check(w->v.kind, w->v.type, w->v.id, 0, false, false, 0, &w->v.version,
						  &w->v.created, &skip, r->err);
		if (ws == STORE_OK) {
			store_now(when, &ms);
			ws = sver_content(w->v.type, w->v.id, w->v.resource, w->v.version, when, &w->v.stored, &ra.text,
					  sum, r->err);
		}
		if (ws != STORE_OK) {
			*bad = r;
			*bs = ws;
			break;
		}
		oldest = ms < oldest ? ms : oldest;
		pgs_sum_hex(sum, ra.sumhex);
		snprintf(ra.opnum, sizeof ra.opnum, "%d", (int)w->v.op);
		const char *vals[6] = {w->v.type, w->v.id, when, ra.opnum, ra.text, ra.sumhex};
		for (int i = 0; i < 6; i++)
			arr_add(&d, i, vals[i]);
		d.n++;
		free(ra.text);
		x.ord = (long)d.n;
		oom = oom || search_params_extract(w->v.type, w->v.stored, collect_idx, &x) != 0;
	}
	g->n = d.n;
	snprintf(g->oldest, sizeof g->oldest, "%lld", (long long)oldest);
	oom = !arrays_finish(&d, 6, g->col, oom);
	oom = !arrays_finish(&x, 6, g->idx, oom);
	if (oom) {
		group_args_release(g);
		return store_fail(berr, STORE_NO_MEMORY, "out of memory while indexing");
	}
	return STORE_OK;
}

/* What became of a group sent whole. */
enum group_outcome {
	GROUP_WRITTEN,  /* committed (or BEGIN's or COMMIT's failure: the status) */
	GROUP_STALE,    /* stamped before a snapshot: nothing written, to be stamped again */
	GROUP_FAILED,   /* the statement failed: nothing written, each write to be run alone */
	GROUP_BAD_WRITE /* one create could not be prepared (*bad): nothing sent */
};

/* The group's pending writes (pipelinable) as one pipeline: BEGIN, one
 * statement for all of them (GROUP_SQL), COMMIT and a sync sent together,
 * their answers read after: one round trip and one statement for the
 * group. The status is BEGIN's or COMMIT's (berr). */
static enum store_status run_pipeline(struct pgconn *c, struct sq_item *group, struct store_error *berr,
				      enum group_outcome *out, struct pg_qreq **bad, enum store_status *bs)
{
	*bad = NULL;
	*out = GROUP_WRITTEN;
	enum store_status st = pgs_prepare(c, PGS_ST_GROUP, GROUP_SQL, GROUP_PARAMS, berr);
	if (st != STORE_OK)
		return st;
	struct group_args g;
	if ((st = group_args_build(group, &g, berr, bad, bs)) != STORE_OK)
		return st;
	if (*bad) {
		*out = GROUP_BAD_WRITE;
		goto out;
	}
	if (!PQenterPipelineMode(c->db)) {
		st = store_fail(berr, STORE_IO, "cannot send the group to the database");
		goto out;
	}
	const char *vals[GROUP_PARAMS] = {g.col[0], g.col[1], g.col[2], g.col[3], g.col[4], g.col[5], g.idx[0],
					  g.idx[1], g.idx[2], g.idx[3], g.idx[4], g.idx[5], g.oldest};
	bool sent = PQsendQueryParams(c->db, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) &&
		    PQsendQueryPrepared(c->db, pgs_stmt_name(PGS_ST_GROUP), GROUP_PARAMS, vals, NULL, NULL, 0) &&
		    PQsendQueryParams(c->db, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) && PQpipelineSync(c->db);
	if (!sent) {
		st = pgs_result(c, NULL, NULL, berr, "sending the group");
		pipeline_abandon(c);
		goto out;
	}
	/* the answers in order: BEGIN, the group, COMMIT; then the sync */
	bool lost = false;
	for (int q = 0; q < 3 && !lost; q++) {
		PGresult *res = PQgetResult(c->db);
		if (!res) {
			lost = true;
			break;
		}
		PGresult *end;
		while ((end = PQgetResult(c->db)) != NULL) /* one result per statement, then NULL */
			PQclear(end);
		if (PQresultStatus(res) == PGRES_PIPELINE_ABORTED) {
			PQclear(res); /* not run: an earlier one failed */
			continue;
		}
		if (q != 1) {
			enum store_status s = pgs_result(c, res, NULL, berr, q ? "committing" : "beginning a write");
			if (s != STORE_OK && st == STORE_OK)
				st = s;
			continue;
		}
		PGresult *rows = NULL;
		struct store_error gerr;
		if (pgs_result(c, res, &rows, &gerr, "writing the group") != STORE_OK) {
			*out = GROUP_FAILED;
		} else {
			int64_t written = PQntuples(rows) == 1 ? pgs_int(rows, 0, 0) : -1;
			if (written == 0)
				*out = GROUP_STALE;
			else if (written != (int64_t)g.n) /* all or none by construction */
				st = store_fail(berr, STORE_IO, "the group was not written whole");
		}
		PQclear(rows);
	}
	PGresult *sync = lost ? NULL : PQgetResult(c->db);
	if (!sync || PQresultStatus(sync) != PGRES_PIPELINE_SYNC)
		lost = true;
	PQclear(sync);
	if (lost || !PQexitPipelineMode(c->db)) {
		if (st == STORE_OK)
			st = store_fail(berr, STORE_BUSY, "the database connection was lost: nothing was acknowledged");
		pipeline_abandon(c);
	}
out:
	group_args_release(&g);
	return st;
}

/* A group of single writes in one transaction: one COMMIT for all. The
 * writes run back to back without savepoints (two round trips fewer each);
 * when one fails on its own (a version mismatch, say) the transaction is
 * rolled back and the group runs again without it. After GROUP_ATTEMPTS, or
 * on a race or a deadlock, the group runs with a savepoint per write (each
 * undone alone, a race tried once more). A failed BEGIN or COMMIT fails
 * every write of the group that had not failed alone; none is stored. */
void pgs_gc_run(void *ctx, struct sq_item *group)
{
	struct pg_store *ps = ctx;
	struct store_error berr;
	struct pgconn *c = pgs_get_conn(ps, &berr);
	enum store_status st = c ? STORE_OK : berr.status;
	bool savepoints = false;
	for (struct pg_qreq *r = (struct pg_qreq *)group; r; r = (struct pg_qreq *)r->item.next)
		r->st = STORE_OK; /* pending */
	for (int attempt = 0; st == STORE_OK; attempt++) {
		savepoints = savepoints || attempt >= GROUP_ATTEMPTS;
		if (!savepoints && pipelinable(group)) {
			struct pg_qreq *bad = NULL;
			enum store_status bs = STORE_OK;
			enum group_outcome out;
			st = run_pipeline(c, group, &berr, &out, &bad, &bs);
			if (out == GROUP_BAD_WRITE) {
				if (fails_alone(c, bad->w, bs))
					bad->st = bs;
				else
					savepoints = true;
			} else if (out == GROUP_FAILED) {
				savepoints = true; /* which write failed: each runs alone */
			} else if (out == GROUP_STALE && st == STORE_OK) {
				continue; /* nothing written: stamped again */
			} else {
				break; /* written, or BEGIN's or COMMIT's failure */
			}
			if (PQtransactionStatus(c->db) != PQTRANS_IDLE)
				pgs_run(c, "ROLLBACK", NULL, "rolling back");
			if (st != STORE_OK)
				break;
			continue;
		}
		if ((st = pgs_run(c, "BEGIN", &berr, "beginning a write")) != STORE_OK)
			break;
		c->in_txn = savepoints; /* run_write: each in its savepoint */
		struct pg_qreq *bad = NULL;
		enum store_status bs = STORE_OK;
		for (struct pg_qreq *r = (struct pg_qreq *)group; r && !bad; r = (struct pg_qreq *)r->item.next) {
			if (r->st != STORE_OK)
				continue; /* failed alone before */
			if (savepoints) {
				r->st = run_write(c, r->w, r->err);
				continue;
			}
			bs = write_body(c, r->w, r->err);
			if (bs == STORE_OK && r->w->deliver)
				bs = pgs_outbox_insert(c, r->w->v.type, r->w->v.id, r->w->v.version,
						       r->w->v.kind == SVER_DELETE, r->err);
			if (bs != STORE_OK)
				bad = r;
		}
		c->in_txn = false;
		if (bad) {
			if (fails_alone(c, bad->w, bs))
				bad->st = bs;
			else
				savepoints = true;
			pgs_run(c, "ROLLBACK", NULL, "rolling back");
			continue;
		}
		if (PQtransactionStatus(c->db) != PQTRANS_INTRANS)
			st = store_fail(&berr, STORE_IO, "the database ended the transaction: nothing was written");
		else
			st = pgs_run(c, "COMMIT", &berr, "committing");
		/* a COMMIT of a failed transaction answers ROLLBACK: idle, not committed */
		if (st == STORE_OK && PQtransactionStatus(c->db) != PQTRANS_IDLE)
			st = store_fail(&berr, STORE_IO, "the transaction was rolled back");
		break;
	}
	if (c && PQtransactionStatus(c->db) != PQTRANS_IDLE)
		pgs_run(c, "ROLLBACK", NULL, "rolling back");
	for (struct pg_qreq *r = (struct pg_qreq *)group; r; r = (struct pg_qreq *)r->item.next) {
		if (r->st == STORE_OK && st != STORE_OK) {
			r->st = st;
			if (r->err)
				*r->err = berr;
		}
		if (r->st != STORE_OK) {
			cJSON_Delete(r->w->v.stored);
			r->w->v.stored = NULL;
		}
	}
}

void pgs_gc_finish(void *ctx, struct sq_item *item)
{
	struct pg_store *ps = ctx;
	struct pg_async *a = (struct pg_async *)item;
	struct store_write *sw = a->r.async;
	enum store_status st = a->r.st;
	struct sver_write v = a->w.v;
	free(a);
	sver_queued_done(&ps->base, sw, st, &v);
}

static enum store_status do_write(struct store *s, struct write_req *w, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	if (c->in_txn)
		return run_write(c, w, err);
	struct pg_store *ps = pgs_of(s);
	struct pg_qreq me = {.w = w, .err = err, .st = STORE_OK};
	if (!sq_enqueue(&ps->gc, &me.item, false))
		return store_fail(err, STORE_BUSY, "the store is closing");
	sq_wait(&ps->gc, &me.item);
	return me.st;
}

static enum store_status run_single(struct store *s, struct sver_write *v, struct store_error *err)
{
	struct write_req w = {.v = *v};
	enum store_status st = do_write(s, &w, err);
	*v = w.v;
	return st;
}

enum store_status pg_create(struct store *s, const char *type, const cJSON *resource, const char *id, cJSON **out,
			    struct store_error *err)
{
	return sver_create(s, run_single, type, resource, id, out, err);
}

enum store_status pg_update(struct store *s, const char *type, const char *id, const cJSON *resource, int64_t if_match,
			    bool *created, cJSON **out, struct store_error *err)
{
	return sver_update(s, run_single, type, id, resource, if_match, created, out, err);
}

enum store_status pg_delete(struct store *s, const char *type, const char *id, int64_t *version,
			    struct store_error *err)
{
	return sver_delete(s, run_single, type, id, version, err);
}

enum store_status pg_submit(struct store *s, struct store_write *sw)
{
	struct pg_store *ps = pgs_of(s);
	struct pgconn *mine = pthread_getspecific(ps->key);
	if (mine && mine->in_txn)
		return sw->status = store_fail(&sw->err, STORE_INVALID, "a transaction is open on this thread");
	struct pg_async *a = calloc(1, sizeof *a);
	if (!a)
		return sw->status = store_fail(&sw->err, STORE_NO_MEMORY, "out of memory");
	if (sver_queued(sw, &a->w.v) != STORE_OK) {
		free(a);
		return sw->status = sw->err.status;
	}
	a->w.deliver = sw->deliver;
	bool fresh = a->w.v.fresh;
	a->r = (struct pg_qreq){.item.async = true, .w = &a->w, .err = &sw->err, .st = STORE_OK, .async = sw};
	if (!sq_enqueue(&ps->gc, &a->r.item, true)) {
		free(a);
		if (fresh)
			sw->id[0] = '\0';
		return sw->status = store_fail(&sw->err, STORE_BUSY, "the store is stopping: nothing was written");
	}
	return STORE_OK;
}

void pg_drain(struct store *s) { sq_drain(&pgs_of(s)->gc); }
