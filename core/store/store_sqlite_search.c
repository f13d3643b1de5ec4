#include "store/store_sqlite_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "fhir/model.h"
#include "store/rcache.h"

/* --- search --------------------------------------------------------------------------------------- */

static enum store_status prepare_bound(struct conn *c, const struct ssql_buf *sql, const struct ssql_binds *b,
				       sqlite3_stmt **out, struct store_error *err)
{
	int rc = sqlite3_prepare_v2(c->db, sql->p, (int)sql->len, out, NULL);
	if (rc != SQLITE_OK)
		return ss_db_fail(c, err, rc, "preparing the search");
	for (size_t i = 0; i < b->n; i++) {
		int idx = (int)i + 1;
		const struct ssql_bind *x = &b->v[i];
		rc = x->kind == SSQL_BIND_INT    ? sqlite3_bind_int64(*out, idx, x->i)
		     : x->kind == SSQL_BIND_REAL ? sqlite3_bind_double(*out, idx, x->d)
					    : sqlite3_bind_text(*out, idx, x->s, -1, SQLITE_STATIC);
		if (rc != SQLITE_OK) {
			sqlite3_finalize(*out);
			*out = NULL;
			return ss_db_fail(c, err, rc, "binding the search");
		}
	}
	return STORE_OK;
}

enum store_status sqlite_search(struct store *s, const char *type, const struct store_search *q,
				       struct store_page *out, struct store_error *err)
{
	GET_CONN(c, s, err);
	struct ssql_search sql;
	sqlite3_stmt *st_count = NULL, *st_page = NULL;
	bool opened = false;
	int rc;
	enum store_status st = ssql_search_query(type, q, false, &sql, err);
	if (st != STORE_OK)
		goto out;
	if ((st = ss_read_begin(c, &opened, err)) != STORE_OK)
		goto out;
	if (q->no_total && q->count > 0) {
		out->total = STORE_NO_TOTAL;
	} else {
		if ((st = prepare_bound(c, &sql.count, &sql.count_binds, &st_count, err)) != STORE_OK)
			goto out;
		rc = sqlite3_step(st_count);
		if (rc != SQLITE_ROW) {
			st = ss_db_fail(c, err, rc, "counting matches");
			goto out;
		}
		out->total = (size_t)sqlite3_column_int64(st_count, 0);
		if (q->count == 0 || q->offset >= out->total)
			goto out;
	}
	if ((st = prepare_bound(c, &sql.page, &sql.page_binds, &st_page, err)) != STORE_OK)
		goto out;
	size_t cap = 0;
	while ((rc = sqlite3_step(st_page)) == SQLITE_ROW) {
		if ((st = sver_grow(out, &cap, err)) != STORE_OK)
			break;
		struct store_entry *e = &out->items[out->n];
		memset(e, 0, sizeof *e);
		snprintf(e->type, sizeof e->type, "%s", type);
		ss_copy_text(e->id, sizeof e->id, sqlite3_column_text(st_page, 0));
		e->version = sqlite3_column_int64(st_page, 1);
		ss_copy_text(e->last_updated, sizeof e->last_updated, sqlite3_column_text(st_page, 2));
		e->op = (enum store_op)sqlite3_column_int(st_page, 4);
		out->n++;
		const char *body = (const char *)sqlite3_column_text(st_page, 3);
		int n = sqlite3_column_bytes(st_page, 3);
		if ((st = ss_verify(st_page, 5, e->type, e->id, e->version, e->last_updated, body, (size_t)n, err)) !=
		    STORE_OK)
			break;
		if (!body) {
			st = store_fail(err, STORE_IO, "a live resource has no body");
			break;
		}
		if ((st = sver_parse(body, n, &e->resource, err)) != STORE_OK)
			break;
	}
	if (st == STORE_OK && rc != SQLITE_DONE)
		st = ss_db_fail(c, err, rc, "searching");
out:
	sqlite3_finalize(st_count);
	sqlite3_finalize(st_page);
	ss_read_end(c, opened);
	ssql_search_release(&sql);
	return st;
}

/* --- bulk export ---------------------------------------------------------------------------------- */

enum store_status sqlite_snapshot(struct store *s, struct store_snapshot *out, struct store_error *err)
{
	struct sqlite_store *ss = ss_of(s);
	GET_CONN(c, s, err);
	if (c->in_txn)
		return store_fail(err, STORE_CONFLICT, "a transaction is already open on this thread");
	/* the write lock: no write is half way between its seq and its commit */
	enum store_status st = ss_run(c, S_BEGIN_WRITE, err);
	if (st != STORE_OK)
		return st;
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(c->db, "SELECT coalesce(max(seq), 0) FROM version", -1, &q, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		out->seq = sqlite3_column_int64(q, 0);
		int64_t ms;
		store_now(out->time, &ms);
		/* creates stamped before now that commit after the lock is
		 * released are stamped again (see write_body) */
		atomic_store(&ss->snapshot_ms, ms);
	} else {
		st = ss_db_fail(c, err, rc, "taking a snapshot");
	}
	sqlite3_finalize(q);
	ss_run(c, S_ROLLBACK, NULL);
	return st;
}

enum store_status sqlite_export_types(struct store *s, int64_t upto_seq, store_type_fn *fn, void *ctx,
				      struct store_error *err)
{
	GET_CONN(c, s, err);
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(c->db, "SELECT DISTINCT type FROM version WHERE seq <= ?1 ORDER BY type", -1, &q,
				    NULL);
	if (rc != SQLITE_OK)
		return ss_db_fail(c, err, rc, "listing the types");
	sqlite3_bind_int64(q, 1, upto_seq);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		if (fn(ctx, (const char *)sqlite3_column_text(q, 0)) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	enum store_status st = rc == SQLITE_DONE ? STORE_OK : ss_db_fail(c, err, rc, "listing the types");
	sqlite3_finalize(q);
	return st;
}

enum store_status sqlite_export_scan(struct store *s, const struct store_export_query *q, store_export_fn *fn,
				     void *ctx, struct store_error *err)
{
	GET_CONN(c, s, err);
	struct ssql_buf sql = {0};
	struct ssql_binds b = {0};
	sqlite3_stmt *st_scan = NULL;
	enum store_status st = ssql_export_query(q, &sql, &b, err);
	if (st == STORE_OK)
		st = prepare_bound(c, &sql, &b, &st_scan, err);
	if (st == STORE_OK) {
		int rc;
		while ((rc = sqlite3_step(st_scan)) == SQLITE_ROW) {
			const char *id = (const char *)sqlite3_column_text(st_scan, 0);
			const char *body = (const char *)sqlite3_column_text(st_scan, 1);
			size_t blen = (size_t)sqlite3_column_bytes(st_scan, 1);
			/* the checksum every read path verifies: a damaged version
			 * fails the export rather than leave in it */
			st = ss_verify(st_scan, 4, q->type, id, sqlite3_column_int64(st_scan, 2),
				       (const char *)sqlite3_column_text(st_scan, 3), body, blen, err);
			if (st != STORE_OK) {
				rc = SQLITE_DONE;
				break;
			}
			if (fn(ctx, id, body, blen) != 0) {
				rc = SQLITE_DONE;
				break;
			}
		}
		if (rc != SQLITE_DONE && st == STORE_OK)
			st = ss_db_fail(c, err, rc, "exporting");
	}
	sqlite3_finalize(st_scan);
	free(sql.p);
	ssql_binds_release(&b);
	return st;
}
