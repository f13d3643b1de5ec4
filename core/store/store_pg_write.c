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

struct idx_arrays {
	struct strbuf col[IDX_COLS];
	size_t n;
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

/* The index rows of resource (NULL: none) in out[] (malloc'd, the
 * caller's to release). STORE_NO_MEMORY otherwise. */
static enum store_status index_arrays(const char *type, const cJSON *resource, char *out[IDX_COLS],
				      struct store_error *err)
{
	struct idx_arrays a = {0};
	bool oom = resource && search_params_extract(type, resource, collect_idx, &a) != 0;
	for (int i = 0; i < IDX_COLS; i++) {
		if (a.n == 0)
			strbuf_addc(&a.col[i], '{');
		strbuf_addc(&a.col[i], '}');
		out[i] = strbuf_take(&a.col[i], NULL);
		oom = oom || !out[i];
	}
	if (oom) {
		arrays_release(out);
		return store_fail(err, STORE_NO_MEMORY, "out of memory while indexing");
	}
	return STORE_OK;
}

/* A new resource: $1 type, $2 id, $3 version, $4 deleted, $5 lastUpdated,
 * $6 op, $7 body, $8 sum, $9-$13 the index arrays. The statement's parts
 * see one snapshot; the foreign keys are checked at its end. */
#define NEW_RES_SQL                                                                                            \
	"WITH r AS (INSERT INTO resource(type, id, version, deleted, last_updated) VALUES($1, $2, $3, $4, $5)" \
	" RETURNING rid), v AS (INSERT INTO version(rid, type, id, version, op, last_updated, body, sum)"      \
	" SELECT rid, $1, $2, $3, $6, $5, $7, $8 FROM r)"                                                      \
	" INSERT INTO idx(rid, param, sys, val, lo, hi) SELECT r.rid, x.p, x.s, x.v, x.l, x.h FROM r,"         \
	" unnest($9::text[], $10::text[], $11::text[], $12::float8[], $13::float8[]) AS x(p, s, v, l, h)"
#define NEW_RES_PARAMS 13

/* The next version of a resource: $1 rid, $2 version, $3 deleted, $4
 * lastUpdated, $5 op, $6 body, $7 sum, $8-$12 the index arrays. Its old
 * index rows are deleted in the same statement (the delete does not see the
 * rows it inserts: one snapshot). */
#define NEXT_RES_SQL                                                                                                \
	"WITH r AS (UPDATE resource SET version = $2, deleted = $3, last_updated = $4 WHERE rid = $1"               \
	" RETURNING rid, type, id), v AS (INSERT INTO version(rid, type, id, version, op, last_updated, body, sum)" \
	" SELECT rid, type, id, $2, $5, $4, $6, $7 FROM r), d AS (DELETE FROM idx WHERE rid = $1)"                  \
	" INSERT INTO idx(rid, param, sys, val, lo, hi) SELECT r.rid, x.p, x.s, x.v, x.l, x.h FROM r,"              \
	" unnest($8::text[], $9::text[], $10::text[], $11::float8[], $12::float8[]) AS x(p, s, v, l, h)"
#define NEXT_RES_PARAMS 12

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
	store_now(a->when, NULL);
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
	const char *v[NEW_RES_PARAMS] = {w->v.type, w->v.id,   a->vnum,   a->del,    a->when,   a->opnum, a->text,
					 a->sumhex, a->arr[0], a->arr[1], a->arr[2], a->arr[3], a->arr[4]};
	memcpy(vals, v, sizeof v);
}

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
	struct row_args a = {0};
	if ((st = row_args_build(w, &a, err)) != STORE_OK)
		return st;
	if (exists) {
		const char *vals[] = {rid,      a.vnum,   a.del,    a.when,   a.opnum,  a.text,
				      a.sumhex, a.arr[0], a.arr[1], a.arr[2], a.arr[3], a.arr[4]};
		st = pgs_exec_prepared(c, PGS_ST_NEXT_RES, NEXT_RES_SQL, NEXT_RES_PARAMS, vals, NULL, err,
				       "writing the resource");
	} else {
		const char *vals[NEW_RES_PARAMS];
		new_res_vals(w, &a, vals);
		st = pgs_exec_prepared(c, PGS_ST_NEW_RES, NEW_RES_SQL, NEW_RES_PARAMS, vals, NULL, err,
				       "writing the resource");
	}
	row_args_release(&a);
	return st;
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

/* A group pipelined whole holds at most this many writes: libpq's and the
 * server's socket buffers take every statement and every answer of it
 * without either side waiting on the other. */
#define PIPELINE_MAX 256

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
	for (int i = 0; i < 2 * PIPELINE_MAX + 8 && PQstatus(c->db) == CONNECTION_OK && (x = PQgetResult(c->db)); i++)
		PQclear(x);
	if (!PQexitPipelineMode(c->db)) {
		PQreset(c->db);
		c->prepared = 0;
	}
}

/* The group's pending writes (pipelinable) as one pipeline: BEGIN, one
 * statement per write, COMMIT and a sync sent together, their answers read
 * after: one round trip for the group. The first write that fails is
 * *bad (its status *bs; nothing after it ran, the transaction is left
 * failed for the caller to roll back); otherwise the status is BEGIN's or
 * COMMIT's (berr). */
static enum store_status run_pipeline(struct pgconn *c, struct sq_item *group, struct store_error *berr,
				      struct pg_qreq **bad, enum store_status *bs)
{
	*bad = NULL;
	enum store_status st = pgs_prepare(c, PGS_ST_NEW_RES, NEW_RES_SQL, NEW_RES_PARAMS, berr);
	if (st != STORE_OK)
		return st;
	size_t n = 0;
	for (struct pg_qreq *r = (struct pg_qreq *)group; r; r = (struct pg_qreq *)r->item.next)
		n += r->st == STORE_OK;
	struct row_args *args = calloc(n, sizeof *args);
	struct pg_qreq **reqs = calloc(n, sizeof *reqs);
	if (!args || !reqs) {
		free(args);
		free(reqs);
		return store_fail(berr, STORE_NO_MEMORY, "out of memory");
	}
	size_t k = 0;
	for (struct pg_qreq *r = (struct pg_qreq *)group; r && !*bad; r = (struct pg_qreq *)r->item.next) {
		if (r->st != STORE_OK)
			continue;
		bool skip;
		enum store_status ws = sver_check(r->w->v.kind, r->w->v.type, r->w->v.id, 0, false, false, 0,
						  &r->w->v.version, &r->w->v.created, &skip, r->err);
		if (ws == STORE_OK)
			ws = row_args_build(r->w, &args[k], r->err);
		if (ws != STORE_OK) {
			*bad = r;
			*bs = ws;
			break;
		}
		reqs[k++] = r;
	}
	if (*bad)
		goto out;
	if (!PQenterPipelineMode(c->db)) {
		st = store_fail(berr, STORE_IO, "cannot send the group to the database");
		goto out;
	}
	bool sent = PQsendQueryParams(c->db, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
	for (size_t i = 0; sent && i < n; i++) {
		const char *vals[NEW_RES_PARAMS];
		new_res_vals(reqs[i]->w, &args[i], vals);
		sent = PQsendQueryPrepared(c->db, pgs_stmt_name(PGS_ST_NEW_RES), NEW_RES_PARAMS, vals, NULL, NULL, 0);
	}
	sent = sent && PQsendQueryParams(c->db, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) && PQpipelineSync(c->db);
	if (!sent) {
		st = pgs_result(c, NULL, NULL, berr, "sending the group");
		pipeline_abandon(c);
		goto out;
	}
	/* the answers in order: BEGIN, each write, COMMIT; then the sync */
	bool lost = false;
	for (size_t q = 0; q < n + 2 && !lost; q++) {
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
		if (q == 0 || q == n + 1) {
			enum store_status s = pgs_result(c, res, NULL, berr, q ? "committing" : "beginning a write");
			if (s != STORE_OK && st == STORE_OK)
				st = s;
		} else {
			struct pg_qreq *r = reqs[q - 1];
			enum store_status s = pgs_result(c, res, NULL, r->err, "writing the resource");
			if (s != STORE_OK && !*bad) {
				*bad = r;
				*bs = s;
			}
		}
	}
	PGresult *sync = lost ? NULL : PQgetResult(c->db);
	if (!sync || PQresultStatus(sync) != PGRES_PIPELINE_SYNC)
		lost = true;
	PQclear(sync);
	if (lost || !PQexitPipelineMode(c->db)) {
		if (st == STORE_OK && !*bad)
			st = store_fail(berr, STORE_BUSY, "the database connection was lost: nothing was acknowledged");
		pipeline_abandon(c);
	}
out:
	for (size_t i = 0; i < n; i++)
		row_args_release(&args[i]);
	free(args);
	free(reqs);
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
			st = run_pipeline(c, group, &berr, &bad, &bs);
			if (!bad)
				break;
			if (fails_alone(c, bad->w, bs))
				bad->st = bs;
			else
				savepoints = true;
			if (PQtransactionStatus(c->db) != PQTRANS_IDLE)
				pgs_run(c, "ROLLBACK", NULL, "rolling back");
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
