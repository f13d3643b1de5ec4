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

struct write_req {
	enum sver_kind kind;
	const char *type, *id;
	const cJSON *resource; /* NULL for SVER_DELETE */
	int64_t if_match;      /* 0 = none */
	enum store_op op;
	bool fresh;      /* a new random id: no row can exist */
	bool deliver;    /* also an outbox record, in the same savepoint */
	bool created;    /* out */
	int64_t version; /* out */
	cJSON *stored;   /* out */
};

/* Index rows are inserted a batch at a time: one statement per batch. */
#define IDX_BATCH 64

struct idx_batch {
	struct pgconn *c;
	const char *rid;
	size_t n;
	char *vals[IDX_BATCH * 6];
	enum store_status st;
	struct store_error *err;
};

static void batch_clear(struct idx_batch *b)
{
	for (size_t i = 0; i < b->n * 6; i++) {
		free(b->vals[i]);
		b->vals[i] = NULL;
	}
	b->n = 0;
}

static void batch_flush(struct idx_batch *b)
{
	if (b->n == 0 || b->st != STORE_OK) {
		batch_clear(b);
		return;
	}
	char sql[IDX_BATCH * 48 + 64];
	size_t o = (size_t)snprintf(sql, sizeof sql, "INSERT INTO idx(rid, param, sys, val, lo, hi) VALUES");
	for (size_t i = 0; i < b->n; i++) {
		unsigned k = (unsigned)i * 6;
		o += (size_t)snprintf(sql + o, sizeof sql - o,
				      "%s($%u::bigint, $%u, $%u, $%u, $%u::float8, $%u::float8)", i ? ", " : "", k + 1,
				      k + 2, k + 3, k + 4, k + 5, k + 6);
	}
	b->st = pgs_exec(b->c, sql, (int)(b->n * 6), (const char *const *)b->vals, NULL, NULL, b->err,
			 "writing the search index");
	batch_clear(b);
}

static char *num_text(double d)
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
	return strdup(buf);
}

static int index_row(void *p, const struct search_index_value *v)
{
	struct idx_batch *b = p;
	if (ssql_is_id_param(v->param))
		return 0;
	char **row = &b->vals[b->n * 6];
	row[0] = strdup(b->rid);
	row[1] = strdup(v->param);
	row[2] = v->sys ? strdup(v->sys) : NULL;
	row[3] = v->val ? strdup(v->val) : NULL;
	if (v->kind == SEARCH_PARAM_DATE) {
		row[4] = num_text((double)v->lo);
		row[5] = num_text((double)v->hi);
	} else if (v->kind == SEARCH_PARAM_NUMBER || v->kind == SEARCH_PARAM_QUANTITY) {
		row[4] = num_text(v->num_lo);
		row[5] = num_text(v->num_hi);
	}
	b->n++;
	if (!row[0] || !row[1] || (v->sys && !row[2]) || (v->val && !row[3])) {
		b->st = store_fail(b->err, STORE_NO_MEMORY, "out of memory while indexing");
		return 1;
	}
	if (b->n == IDX_BATCH)
		batch_flush(b);
	return b->st != STORE_OK;
}

static enum store_status write_index(struct pgconn *c, struct write_req *w, const char *rid, bool existed,
				     struct store_error *err)
{
	if (existed) {
		const char *vals[] = {rid};
		enum store_status st = pgs_exec(c, "DELETE FROM idx WHERE rid = $1", 1, vals, NULL, NULL, err,
						"writing the search index");
		if (st != STORE_OK)
			return st;
	}
	if (!w->stored)
		return STORE_OK;
	struct idx_batch b = {.c = c, .rid = rid, .st = STORE_OK, .err = err};
	if (search_params_extract(w->type, w->stored, index_row, &b) != 0 && b.st == STORE_OK)
		b.st = store_fail(err, STORE_NO_MEMORY, "out of memory while indexing");
	batch_flush(&b);
	return b.st;
}

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
		struct idx_batch b = {.c = c, .rid = pgs_val(r, i, 0), .st = STORE_OK, .err = err};
		if (search_params_extract(pgs_val(r, i, 1), res, index_row, &b) != 0 && b.st == STORE_OK)
			b.st = store_fail(err, STORE_NO_MEMORY, "out of memory while indexing");
		batch_flush(&b);
		st = b.st;
		cJSON_Delete(res);
	}
	PQclear(r);
	return st;
}

static enum store_status write_body(struct pgconn *c, struct write_req *w, struct store_error *err)
{
	bool exists = false, deleted = false;
	char rid[24] = "";
	int64_t cur = 0;
	enum store_status st;
	if (!w->fresh) {
		/* the row lock makes the version compared the version replaced:
		 * a concurrent writer on any instance waits for this commit */
		PGresult *r;
		const char *vals[] = {w->type, w->id};
		st = pgs_exec(c, "SELECT rid, version, deleted FROM resource WHERE type = $1 AND id = $2 FOR UPDATE", 2,
			      vals, NULL, &r, err, "looking up the resource");
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
	if ((st = sver_check(w->kind, w->type, w->id, w->if_match, exists, deleted, cur, &w->version, &w->created,
			     &skip, err)) != STORE_OK ||
	    skip)
		return st;
	char when[STORE_TIME_SIZE];
	store_now(when, NULL);
	char *text = NULL;
	uint8_t sum[SVER_SUM_LEN];
	char sumhex[2 * SVER_SUM_LEN + 3];
	if ((st = sver_content(w->type, w->id, w->resource, w->version, when, &w->stored, &text, sum, err)) != STORE_OK)
		return st;
	pgs_sum_hex(sum, sumhex);
	char vnum[24], del[2] = {w->kind == SVER_DELETE ? '1' : '0', 0}, opnum[8];
	snprintf(vnum, sizeof vnum, "%lld", (long long)w->version);
	snprintf(opnum, sizeof opnum, "%d", (int)w->op);
	PGresult *r = NULL;
	if (exists) {
		const char *vals[] = {rid, vnum, del, when};
		st = pgs_exec(c, "UPDATE resource SET version = $2, deleted = $3, last_updated = $4 WHERE rid = $1", 4,
			      vals, NULL, NULL, err, "writing the resource");
	} else {
		const char *vals[] = {w->type, w->id, vnum, del, when};
		st = pgs_exec(
			c,
			"INSERT INTO resource(type, id, version, deleted, last_updated) VALUES($1, $2, $3, $4, $5)"
			" RETURNING rid",
			5, vals, NULL, &r, err, "writing the resource");
		if (st == STORE_OK)
			snprintf(rid, sizeof rid, "%s", PQgetvalue(r, 0, 0));
		PQclear(r);
	}
	if (st == STORE_OK) {
		const char *vals[] = {rid, w->type, w->id, vnum, opnum, when, text, sumhex};
		st = pgs_exec(c,
			      "INSERT INTO version(rid, type, id, version, op, last_updated, body, sum)"
			      " VALUES($1, $2, $3, $4, $5, $6, $7, $8)",
			      8, vals, NULL, NULL, err, "writing the resource");
	}
	free(text);
	if (st == STORE_OK)
		st = write_index(c, w, rid, exists, err);
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
			ws = pgs_outbox_insert(c, w->type, w->id, w->version, w->kind == SVER_DELETE, err);
		const char *state = pgs_last_state(c);
		bool raced = (ws == STORE_CONFLICT && strcmp(state, "23505") == 0 && !w->fresh) ||
			     (ws == STORE_BUSY && strcmp(state, "40P01") == 0);
		st = pgs_write_end(c, ws, err);
		if (!raced)
			break;
	}
	if (st != STORE_OK) {
		cJSON_Delete(w->stored);
		w->stored = NULL;
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
		return w->fresh || strcmp(pgs_last_state(c), "23505") != 0;
	default:
		return false;
	}
}

/* The attempts before a group falls back to a savepoint per write. */
#define GROUP_ATTEMPTS 4

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
				bs = pgs_outbox_insert(c, r->w->type, r->w->id, r->w->version,
						       r->w->kind == SVER_DELETE, r->err);
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
			cJSON_Delete(r->w->stored);
			r->w->stored = NULL;
		}
	}
}

void pgs_gc_finish(void *ctx, struct sq_item *item)
{
	struct pg_store *ps = ctx;
	struct pg_async *a = (struct pg_async *)item;
	struct store_write *sw = a->r.async;
	sw->status = a->r.st;
	if (a->r.st == STORE_OK) {
		sw->stored = a->w.stored;
		sw->created = a->w.created;
		sw->version = a->w.version;
	} else {
		cJSON_Delete(a->w.stored);
		if (a->w.fresh)
			sw->id[0] = '\0';
	}
	free(a);
	store_write_finished(&ps->base, sw);
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

enum store_status pg_create(struct store *s, const char *type, const cJSON *resource, const char *id, cJSON **out,
			    struct store_error *err)
{
	char fresh[STORE_ID_SIZE];
	if (!id) {
		if (store_new_id(fresh) != 0)
			return store_fail(err, STORE_IO, "no randomness for a new id");
		id = fresh;
	}
	struct write_req w = {
		.kind = SVER_CREATE,
		.type = type,
		.id = id,
		.resource = resource,
		.op = id == fresh ? STORE_OP_CREATE : STORE_OP_UPDATE,
		.fresh = id == fresh,
	};
	enum store_status st = do_write(s, &w, err);
	if (out)
		*out = w.stored;
	else
		cJSON_Delete(w.stored);
	return st;
}

enum store_status pg_update(struct store *s, const char *type, const char *id, const cJSON *resource, int64_t if_match,
			    bool *created, cJSON **out, struct store_error *err)
{
	struct write_req w = {
		.kind = SVER_UPDATE,
		.type = type,
		.id = id,
		.resource = resource,
		.if_match = if_match,
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

enum store_status pg_delete(struct store *s, const char *type, const char *id, int64_t *version,
			    struct store_error *err)
{
	struct write_req w = {.kind = SVER_DELETE, .type = type, .id = id, .op = STORE_OP_DELETE};
	enum store_status st = do_write(s, &w, err);
	if (version && st == STORE_OK)
		*version = w.version;
	return st;
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
	enum sver_kind kind;
	enum store_op op;
	bool fresh;
	if (sver_queued(sw, &kind, &op, &fresh) != STORE_OK) {
		free(a);
		return sw->status = sw->err.status;
	}
	a->w = (struct write_req){
		.kind = kind,
		.type = sw->type,
		.id = sw->id,
		.resource = sw->resource,
		.if_match = sw->if_match_version,
		.op = op,
		.fresh = fresh,
		.deliver = sw->deliver,
	};
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
