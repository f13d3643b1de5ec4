/* The PostgreSQL backend's writes: create, update and delete (one
 * transaction each, or a savepoint in the caller's), and queued writes. */
#include "store/store_pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"

enum write_kind { W_CREATE, W_UPDATE, W_DELETE };

struct write_req {
	enum write_kind kind;
	const char *type, *id;
	const cJSON *resource; /* NULL for W_DELETE */
	int64_t if_match;      /* 0 = none */
	enum store_op op;
	bool fresh;      /* a new random id: no row can exist */
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
	switch (w->kind) {
	case W_CREATE:
		if (exists && !deleted)
			return store_fail(err, STORE_CONFLICT, "%s/%s already exists", w->type, w->id);
		break;
	case W_UPDATE:
		if (w->if_match && !exists)
			return store_fail(err, STORE_VERSION_MISMATCH,
					  "%s/%s: expected version %lld, but it does not exist", w->type, w->id,
					  (long long)w->if_match);
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
	store_now(when, NULL);
	cJSON_Delete(w->stored);
	w->stored = NULL;
	char *text = NULL;
	if (w->resource) {
		if ((st = sver_stamp(w->resource, w->id, w->version, when, &w->stored, err)) != STORE_OK)
			return st;
		if (!(text = fjson_print(w->stored, false, NULL)))
			return store_fail(err, STORE_NO_MEMORY, "out of memory");
	}
	uint8_t sum[SVER_SUM_LEN];
	char sumhex[2 * SVER_SUM_LEN + 3];
	if (sver_sum(w->type, w->id, w->version, when, text, text ? strlen(text) : 0, sum) != 0) {
		free(text);
		return store_fail(err, STORE_NO_MEMORY, "the checksum of the stored content could not be computed");
	}
	pgs_sum_hex(sum, sumhex);
	char vnum[24], del[2] = {w->kind == W_DELETE ? '1' : '0', 0}, opnum[8];
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

/* One write in its transaction (or the caller's savepoint). Two writers
 * creating one new id race on the resource row's uniqueness: the loser,
 * undone alone, tries once more and then sees the winner's row. */
static enum store_status run_write(struct pgconn *c, struct write_req *w, struct store_error *err)
{
	enum store_status st = STORE_IO;
	for (int attempt = 0; attempt < 2; attempt++) {
		st = pgs_write_begin(c, err);
		if (st != STORE_OK)
			return st;
		enum store_status ws = write_body(c, w, err);
		bool raced = ws == STORE_CONFLICT && strcmp(pgs_last_state(c), "23505") == 0 && !w->fresh;
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

static enum store_status do_write(struct store *s, struct write_req *w, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	return run_write(c, w, err);
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
		.kind = W_CREATE,
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
		.kind = W_UPDATE,
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
	struct write_req w = {.kind = W_DELETE, .type = type, .id = id, .op = STORE_OP_DELETE};
	enum store_status st = do_write(s, &w, err);
	if (version && st == STORE_OK)
		*version = w.version;
	return st;
}

/* A queued write runs at once on the submitting thread's connection and is
 * answered when its COMMIT has returned (PostgreSQL's commit is durable);
 * done runs before store_submit returns, as store.h allows. */
enum store_status pg_submit(struct store *s, struct store_write *sw)
{
	struct pg_store *ps = pgs_of(s);
	struct pgconn *mine = pthread_getspecific(ps->key);
	if (mine && mine->in_txn)
		return sw->status = store_fail(&sw->err, STORE_INVALID, "a transaction is open on this thread");
	pthread_mutex_lock(&ps->mu);
	if (ps->draining) {
		pthread_mutex_unlock(&ps->mu);
		return sw->status = store_fail(&sw->err, STORE_BUSY, "the store is stopping: nothing was written");
	}
	ps->inflight++;
	pthread_mutex_unlock(&ps->mu);
	bool fresh = sw->kind == STORE_WRITE_CREATE && !sw->id[0];
	struct write_req w = {
		.kind = sw->kind == STORE_WRITE_CREATE   ? W_CREATE
			: sw->kind == STORE_WRITE_UPDATE ? W_UPDATE
							 : W_DELETE,
		.type = sw->type,
		.id = sw->id,
		.resource = sw->resource,
		.if_match = sw->if_match_version,
		.op = sw->kind == STORE_WRITE_DELETE            ? STORE_OP_DELETE
		      : fresh && sw->kind == STORE_WRITE_CREATE ? STORE_OP_CREATE
								: STORE_OP_UPDATE,
		.fresh = fresh,
	};
	if (fresh && store_new_id(sw->id) != 0)
		sw->status = store_fail(&sw->err, STORE_IO, "no randomness for a new id");
	else
		sw->status = do_write(s, &w, &sw->err);
	if (sw->status == STORE_OK) {
		sw->stored = w.stored;
		sw->created = w.created;
		sw->version = w.version;
	} else {
		cJSON_Delete(w.stored);
		if (fresh)
			sw->id[0] = '\0';
	}
	store_write_finished(s, sw);
	pthread_mutex_lock(&ps->mu);
	if (--ps->inflight == 0)
		pthread_cond_broadcast(&ps->idle);
	pthread_mutex_unlock(&ps->mu);
	return STORE_OK;
}

void pg_drain(struct store *s)
{
	struct pg_store *ps = pgs_of(s);
	pthread_mutex_lock(&ps->mu);
	ps->draining = true;
	while (ps->inflight > 0)
		pthread_cond_wait(&ps->idle, &ps->mu);
	pthread_mutex_unlock(&ps->mu);
}
