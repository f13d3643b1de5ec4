#include "store/store_sqlite_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "base/metrics.h"
#include "fhir/model.h"
#include "store/rcache.h"

/* --- writes ---------------------------------------------------------------------------------- */

int ss_index_row(void *p, const struct search_index_value *v)
{
	struct index_ctx *x = p;
	if (ssql_is_id_param(v->param))
		return 0;
	sqlite3_stmt *s = x->ins;
	sqlite3_bind_int64(s, 1, x->rid);
	ss_bind_text(s, 2, v->param);
	ss_bind_text(s, 3, v->sys);
	ss_bind_text(s, 4, v->val);
	if (v->kind == SEARCH_PARAM_DATE) {
		sqlite3_bind_int64(s, 5, v->lo);
		sqlite3_bind_int64(s, 6, v->hi);
	} else if (v->kind == SEARCH_PARAM_NUMBER || v->kind == SEARCH_PARAM_QUANTITY) {
		/* the same columns, holding reals (an open end as -/+Inf) */
		sqlite3_bind_double(s, 5, v->num_lo);
		sqlite3_bind_double(s, 6, v->num_hi);
	}
	int rc = sqlite3_step(s);
	ss_done(s);
	if (rc != SQLITE_DONE) {
		x->rc = rc;
		return 1;
	}
	return 0;
}

/* An index row worked out before the write (see prepare_create). */
struct pre_row {
	const char *param; /* static: from the search parameter table */
	enum search_param_kind kind;
	char *sys, *val;
	int64_t lo, hi;
	double num_lo, num_hi;
};

struct write_req {
	struct sver_write v;
	/* a create with a fresh id is version 1 whatever else happens, so the
	 * writer thread stamps, prints and indexes it before the group commit;
	 * the group's leader then only runs the statements */
	bool pre;
	bool append; /* an appended record: to the log, indexed later (store_sqlite_log.c) */
	char *pre_text;
	char pre_when[STORE_TIME_SIZE];
	int64_t pre_ms;
	uint8_t pre_sum[SVER_SUM_LEN];
	struct pre_row *rows;
	size_t nrows, caprows;
	bool rows_oom;
};

static int collect_row(void *p, const struct search_index_value *v)
{
	struct write_req *w = p;
	if (ssql_is_id_param(v->param))
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

/* Stamps, prints and indexes a fresh create as version 1 (see write_req). */
static void prepare_create(struct write_req *w)
{
	if (w->v.kind != SVER_CREATE || w->v.op != STORE_OP_CREATE || !w->v.resource)
		return;
	store_now(w->pre_when, &w->pre_ms);
	if (sver_stamp(w->v.resource, w->v.id, 1, w->pre_when, &w->v.stored, NULL) != STORE_OK)
		return;
	w->pre_text = fjson_print(w->v.stored, false, NULL);
	if (w->pre_text && sver_sum(w->v.type, w->v.id, 1, w->pre_when, w->pre_text, strlen(w->pre_text), w->pre_sum) == 0 &&
	    search_params_extract(w->v.type, w->v.stored, collect_row, w) == 0 && !w->rows_oom) {
		w->pre = true;
		return;
	}
	release_pre(w);
	cJSON_Delete(w->v.stored);
	w->v.stored = NULL;
}

/* An appended record (store.h): stamped in place (the tree is w's to
 * take), printed and summed on the submitting thread, where the tree is
 * freed again; the committer only writes the text to the log. */
static void prepare_append(struct write_req *w, cJSON *resource)
{
	store_now(w->pre_when, &w->pre_ms);
	cJSON *stamped = NULL;
	if (sver_stamp_take(resource, w->v.id, 1, w->pre_when, &stamped, NULL) != STORE_OK)
		return;
	w->pre_text = fjson_print(stamped, false, NULL);
	cJSON_Delete(stamped);
	if (w->pre_text && sver_sum(w->v.type, w->v.id, 1, w->pre_when, w->pre_text, strlen(w->pre_text), w->pre_sum) == 0)
		w->pre = true;
}

/* An appended record given as text (store_write.text, taken): stamped by
 * splicing id and meta in, and summed, on the submitting thread. */
static void prepare_append_text(struct write_req *w, char *text)
{
	store_now(w->pre_when, &w->pre_ms);
	size_t len = 0;
	w->pre_text = sver_stamp_text(text, w->v.type, w->v.id, 1, w->pre_when, &len);
	free(text);
	if (w->pre_text && sver_sum(w->v.type, w->v.id, 1, w->pre_when, w->pre_text, len, w->pre_sum) == 0)
		w->pre = true;
}

/* The resource row (inserted, or updated to the new version; *rid set for a
 * new one) and the version row with its body text (NULL for a deletion) and
 * its checksum. */
static enum store_status write_rows(struct conn *c, struct write_req *w, bool exists, int64_t *rid, const char *when,
				    const char *text, const uint8_t sum[SVER_SUM_LEN], struct store_error *err)
{
	sqlite3_stmt *s;
	bool del = w->v.kind == SVER_DELETE;
	if (exists) {
		s = ss_stmt(c, S_UPD_RES, err);
		if (!s)
			return err ? err->status : STORE_IO;
		sqlite3_bind_int64(s, 1, *rid);
		sqlite3_bind_int64(s, 2, w->v.version);
		sqlite3_bind_int(s, 3, del);
		ss_bind_text(s, 4, when);
	} else {
		s = ss_stmt(c, S_INS_RES, err);
		if (!s)
			return err ? err->status : STORE_IO;
		ss_bind_text(s, 1, w->v.type);
		ss_bind_text(s, 2, w->v.id);
		sqlite3_bind_int64(s, 3, w->v.version);
		sqlite3_bind_int(s, 4, del);
		ss_bind_text(s, 5, when);
	}
	int rc = sqlite3_step(s);
	ss_done(s);
	if (rc != SQLITE_DONE)
		return ss_db_fail(c, err, rc, "writing the resource");
	if (!exists)
		*rid = sqlite3_last_insert_rowid(c->db);

	s = ss_stmt(c, S_INS_VER, err);
	if (!s)
		return err ? err->status : STORE_IO;
	sqlite3_bind_int64(s, 1, *rid);
	ss_bind_text(s, 2, w->v.type);
	ss_bind_text(s, 3, w->v.id);
	sqlite3_bind_int64(s, 4, w->v.version);
	sqlite3_bind_int(s, 5, (int)w->v.op);
	ss_bind_text(s, 6, when);
	ss_bind_text(s, 7, text);
	sqlite3_bind_blob(s, 8, sum, SVER_SUM_LEN, SQLITE_STATIC);
	rc = sqlite3_step(s);
	ss_done(s);
	return rc == SQLITE_DONE ? STORE_OK : ss_db_fail(c, err, rc, "writing the resource");
}

/* Replaces the search index rows of rid (existed: a resource row was there
 * before this write): from the rows computed before the transaction
 * (use_pre), else extracted from the stored version (none for a deletion). */
static enum store_status write_index(struct conn *c, struct write_req *w, int64_t rid, bool existed, bool use_pre,
				     struct store_error *err)
{
	if (existed) { /* a new rid has no rows yet */
		sqlite3_stmt *s = ss_stmt(c, S_DEL_IDX, err);
		if (!s)
			return err ? err->status : STORE_IO;
		sqlite3_bind_int64(s, 1, rid);
		int rc = sqlite3_step(s);
		ss_done(s);
		if (rc != SQLITE_DONE)
			return ss_db_fail(c, err, rc, "writing the resource");
	}
	if (!use_pre && !w->v.stored)
		return STORE_OK;
	struct index_ctx x = {.c = c, .ins = ss_stmt(c, S_INS_IDX, err), .rid = rid};
	if (!x.ins)
		return err ? err->status : STORE_IO;
	if (use_pre) {
		for (size_t i = 0; i < w->nrows; i++) {
			const struct pre_row *pr = &w->rows[i];
			struct search_index_value v = {pr->param, pr->kind, pr->sys, pr->val,
						       pr->lo,    pr->hi,   pr->num_lo, pr->num_hi};
			if (ss_index_row(&x, &v) != 0)
				return ss_db_fail(c, err, x.rc, "writing the resource");
		}
		return STORE_OK;
	}
	if (search_params_extract(w->v.type, w->v.stored, ss_index_row, &x) != 0) {
		if (x.rc)
			return ss_db_fail(c, err, x.rc, "writing the resource");
		return store_fail(err, STORE_NO_MEMORY, "out of memory while indexing");
	}
	return STORE_OK;
}

static enum store_status write_body(struct conn *c, struct write_req *w, struct store_error *err)
{
	bool exists = false, deleted = false;
	int64_t rid = 0, cur = 0;
	/* a prepared create has a fresh random id: no lookup (the resource
	 * table's uniqueness still refuses a collision, as a conflict) */
	if (!w->pre) {
		sqlite3_stmt *s = ss_stmt(c, S_GET_RES, err);
		if (!s)
			return err ? err->status : STORE_IO;
		ss_bind_text(s, 1, w->v.type);
		ss_bind_text(s, 2, w->v.id);
		int rc = sqlite3_step(s);
		exists = rc == SQLITE_ROW;
		if (exists) {
			rid = sqlite3_column_int64(s, 0);
			cur = sqlite3_column_int64(s, 1);
			deleted = sqlite3_column_int(s, 2) != 0;
		}
		ss_done(s);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return ss_db_fail(c, err, rc, "looking up the resource");
	}

	bool skip;
	enum store_status st = sver_check(w->v.kind, w->v.type, w->v.id, w->v.if_match, exists, deleted, cur, &w->v.version,
					  &w->v.created, &skip, err);
	if (st != STORE_OK || skip)
		return st;
	char when[STORE_TIME_SIZE];
	/* a stamp taken before a bulk export's snapshot would put this write
	 * before the snapshot's time although the snapshot does not hold it */
	bool use_pre = w->pre && w->v.version == 1 && w->pre_ms >= atomic_load(&c->owner->snapshot_ms);
	if (use_pre) {
		memcpy(when, w->pre_when, sizeof when);
	} else {
		store_now(when, NULL);
		if (w->v.stored) { /* prepared for a version this is not */
			cJSON_Delete(w->v.stored);
			w->v.stored = NULL;
		}
	}

	char *text = NULL;
	uint8_t sum[SVER_SUM_LEN];
	if (use_pre) {
		text = w->pre_text;
		w->pre_text = NULL;
		memcpy(sum, w->pre_sum, sizeof sum);
	} else if ((st = sver_content(w->v.type, w->v.id, w->v.resource, w->v.version, when, &w->v.stored, &text, sum, err)) !=
		   STORE_OK) {
		return st;
	}

	st = write_rows(c, w, exists, &rid, when, text, sum, err);
	if (st == STORE_OK)
		st = write_index(c, w, rid, exists, use_pre, err);
	free(text);
	return st;
}

/* Runs a batch of queued single writes on c in one transaction: each in its
 * own savepoint (a failing write fails alone), one COMMIT (one fsync) for all.
 * A failed COMMIT fails every write of the batch. */
static void run_batch(struct conn *c, struct sq_item *group)
{
	int64_t t0 = ss_mono_us();
	struct store_error berr;
	enum store_status st = ss_run(c, S_BEGIN_WRITE, &berr);
	for (struct gc_req *r = (struct gc_req *)group; r; r = (struct gc_req *)r->item.next) {
		if (st != STORE_OK) {
			r->st = st;
			if (r->err)
				*r->err = berr;
			continue;
		}
		if (r->settle)
			continue; /* after the group (ss_gc_run) */
		if (r->w->append) {
			/* one statement: undone alone when it fails */
			r->st = ss_log_write(c, r->w, r->err);
			continue;
		}
		enum store_status ws = ss_run(c, S_SAVEPOINT, r->err);
		if (ws == STORE_OK)
			ws = write_body(c, r->w, r->err);
		if (ws == STORE_OK && r->async && r->async->deliver)
			ws = ss_outbox_insert(c, r->w->v.type, r->w->v.id, r->w->v.version, r->w->v.kind == SVER_DELETE, r->err);
		if (ws == STORE_OK) {
			ws = ss_run(c, S_RELEASE, r->err);
		} else if (!sqlite3_get_autocommit(c->db)) {
			ss_run(c, S_ROLLBACK_TO, NULL);
			ss_run(c, S_RELEASE, NULL);
		}
		r->st = ws;
	}
	if (st != STORE_OK)
		return;
	if (sqlite3_get_autocommit(c->db)) {
		/* the database ended the transaction itself: nothing is durable */
		for (struct gc_req *r = (struct gc_req *)group; r; r = (struct gc_req *)r->item.next)
			if (r->st == STORE_OK)
				r->st = store_fail(r->err, STORE_IO, "the database rolled the transaction back");
		return;
	}
	/* a group of records alone (small rows) may fit where data does not:
	 * its commit does not clear the storage-full state */
	bool only_log = true;
	for (struct gc_req *r = (struct gc_req *)group; r; r = (struct gc_req *)r->item.next)
		only_log &= r->settle || r->w->append;
	int64_t t1 = ss_mono_us(), tail0 = ss_tail_us;
	metrics_counter_add(METRICS_STORE_COMMITTER_GROUP_US, (unsigned long)(t1 - t0));
	enum store_status cs = ss_run(c, only_log ? S_COMMIT_LOG : S_COMMIT, &berr);
	int64_t tail = ss_tail_us - tail0;
	metrics_counter_add(METRICS_STORE_COMMITTER_TAIL_US, (unsigned long)tail);
	metrics_counter_add(METRICS_STORE_COMMITTER_COMMIT_US, (unsigned long)(ss_mono_us() - t1 - tail));
	if (cs == STORE_OK) {
		int64_t n = 0;
		for (struct gc_req *r = (struct gc_req *)group; r; r = (struct gc_req *)r->item.next)
			if (!r->settle && r->w->append && r->st == STORE_OK) {
				ss_log_added(c->owner, r->w->v.type, 1);
				n++;
			}
		atomic_store(&c->owner->log_last_group, n);
	} else {
		if (!sqlite3_get_autocommit(c->db))
			ss_run(c, S_ROLLBACK, NULL);
		for (struct gc_req *r = (struct gc_req *)group; r; r = (struct gc_req *)r->item.next) {
			if (r->st == STORE_OK) {
				r->st = cs;
				if (r->err)
					*r->err = berr;
			}
		}
	}
}

void ss_gc_run(void *ctx, struct sq_item *group)
{
	struct sqlite_store *ss = ctx;
	run_batch(ss->writer, group);
	/* readers waiting for the appended records to be indexed */
	struct gc_req *first = NULL;
	for (struct gc_req *r = (struct gc_req *)group; r; r = (struct gc_req *)r->item.next)
		if (r->settle && !first)
			first = r;
	if (!first)
		return;
	struct store_error err = {0};
	int64_t left = 1;
	enum store_status st = STORE_OK;
	while (st == STORE_OK && left > 0)
		st = ss_log_index(ss, 4096, &left, &err);
	for (struct gc_req *r = first; r; r = (struct gc_req *)r->item.next)
		if (r->settle) {
			r->st = st;
			if (st != STORE_OK && r->err)
				*r->err = err;
		}
}

enum store_status ss_log_write(struct conn *c, struct write_req *w, struct store_error *err)
{
	if (!w->pre)
		return store_fail(err, STORE_NO_MEMORY, "out of memory while preparing the record");
	sqlite3_stmt *s = ss_stmt(c, S_LOG_ADD, err);
	if (!s)
		return err ? err->status : STORE_IO;
	ss_bind_text(s, 1, w->v.type);
	ss_bind_text(s, 2, w->v.id);
	ss_bind_text(s, 3, w->pre_when);
	sqlite3_bind_int64(s, 4, w->pre_ms);
	ss_bind_text(s, 5, w->pre_text);
	sqlite3_bind_blob(s, 6, w->pre_sum, SVER_SUM_LEN, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	ss_done(s);
	if (rc != SQLITE_DONE)
		return ss_db_fail(c, err, rc, "writing the record");
	w->v.version = 1;
	w->v.created = true;
	return STORE_OK;
}

enum store_status ss_log_index_one(struct conn *c, const char *type, const char *id, const char *text, size_t len,
				   const char *when, int64_t ms, const uint8_t sum[SVER_SUM_LEN],
				   struct store_error *err)
{
	cJSON *tree = cJSON_ParseWithLength(text, len);
	if (!tree)
		return store_fail(err, STORE_CORRUPT, "a logged %s could not be read back", type);
	struct write_req w = {
		.v = {.kind = SVER_CREATE, .type = type, .id = id, .resource = tree, .op = STORE_OP_CREATE, .fresh = true}};
	/* as a fresh create prepared before its group: the logged text, time
	 * and sum, the search rows from it */
	snprintf(w.pre_when, sizeof w.pre_when, "%s", when);
	w.pre_ms = ms;
	w.pre_text = strndup(text, len);
	memcpy(w.pre_sum, sum, SVER_SUM_LEN);
	w.v.stored = tree;
	enum store_status st = STORE_OK;
	if (!w.pre_text || search_params_extract(type, tree, collect_row, &w) != 0 || w.rows_oom)
		st = store_fail(err, STORE_NO_MEMORY, "out of memory while indexing");
	w.v.stored = NULL;
	if (st == STORE_OK) {
		w.pre = true;
		/* a new row for a fresh id: a collision is a conflict, as a create's */
		st = write_body(c, &w, err);
	}
	release_pre(&w);
	if (w.v.stored != tree)
		cJSON_Delete(w.v.stored);
	cJSON_Delete(tree);
	return st;
}

/* A queued write's outputs into its struct store_write; the request is freed. */
struct async_req {
	struct gc_req r;
	struct write_req w;
};

void ss_gc_finish(void *ctx, struct sq_item *item)
{
	struct sqlite_store *ss = ctx;
	struct async_req *a = (struct async_req *)item;
	struct store_write *sw = a->r.async;
	enum store_status st = a->r.st;
	release_pre(&a->w);
	struct sver_write v = a->w.v;
	free(a);
	sver_queued_done(&ss->base, sw, st, &v);
}

static enum store_status do_write(struct store *s, struct write_req *w, struct store_error *err)
{
	GET_CONN(c, s, err);
	enum store_status st;
	ss_sync_txn(c);
	if (c->in_txn) {
		/* inside the caller's transaction: a savepoint there */
		st = ss_write_begin(c, err);
		if (st == STORE_OK)
			st = ss_write_end(c, write_body(c, w, err), err);
	} else {
		struct sqlite_store *ss = ss_of(s);
		prepare_create(w);
		struct gc_req me = {.w = w, .err = err, .st = STORE_OK};
		if (sq_enqueue(&ss->gc, &me.item, false)) {
			sq_wait(&ss->gc, &me.item);
			st = me.st;
		} else {
			st = store_fail(err, STORE_BUSY, "the store is closing");
		}
		release_pre(w);
	}
	if (st != STORE_OK) {
		cJSON_Delete(w->v.stored);
		w->v.stored = NULL;
	}
	return st;
}

enum store_status sqlite_submit(struct store *s, struct store_write *sw)
{
	struct sqlite_store *ss = ss_of(s);
	struct async_req *a = calloc(1, sizeof *a);
	if (!a)
		return sw->status = store_fail(&sw->err, STORE_NO_MEMORY, "out of memory");
	if (sver_queued(sw, &a->w.v) != STORE_OK) {
		free(a);
		return sw->status = sw->err.status;
	}
	bool fresh = a->w.v.fresh;
	a->w.append = sw->append;
	a->r = (struct gc_req){.item.async = true, .w = &a->w, .err = &sw->err, .st = STORE_OK, .async = sw};
	/* stamped, printed and indexed here, on the submitting thread */
	if (sw->append && sw->text) {
		prepare_append_text(&a->w, sw->text);
		sw->text = NULL;
	} else if (sw->append) {
		a->w.v.resource = NULL;
		prepare_append(&a->w, sw->resource);
		sw->resource = NULL;
	} else {
		prepare_create(&a->w);
	}
	if (!sq_enqueue(&ss->gc, &a->r.item, true)) {
		release_pre(&a->w);
		cJSON_Delete(a->w.v.stored);
		free(a);
		if (fresh)
			sw->id[0] = '\0';
		sw->status = store_fail(&sw->err, STORE_BUSY, "the store is stopping: nothing was written");
		return sw->status;
	}
	return STORE_OK;
}

void sqlite_drain(struct store *s) { sq_drain(&ss_of(s)->gc); }

static enum store_status run_single(struct store *s, struct sver_write *v, struct store_error *err)
{
	struct write_req w = {.v = *v};
	enum store_status st = do_write(s, &w, err);
	*v = w.v;
	return st;
}

enum store_status sqlite_create(struct store *s, const char *type, const cJSON *resource, const char *id,
				       cJSON **out, struct store_error *err)
{
	return sver_create(s, run_single, type, resource, id, out, err);
}

enum store_status sqlite_update(struct store *s, const char *type, const char *id, const cJSON *resource,
				       int64_t if_match, bool *created, cJSON **out, struct store_error *err)
{
	return sver_update(s, run_single, type, id, resource, if_match, created, out, err);
}

enum store_status sqlite_delete(struct store *s, const char *type, const char *id, int64_t *version,
				       struct store_error *err)
{
	return sver_delete(s, run_single, type, id, version, err);
}
