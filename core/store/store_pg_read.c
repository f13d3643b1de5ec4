/* The PostgreSQL backend's reads: read, vread, history, search (criteria
 * from store_sql in its PostgreSQL dialect) and the bulk export's snapshot
 * and scans. */
#include "store/store_pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_SQL                                                                                          \
	"SELECT v.version, v.body, v.last_updated, v.sum FROM resource r JOIN version v ON v.rid = r.rid" \
	" AND v.version = (CASE WHEN $3::bigint > 0 THEN $3::bigint ELSE r.version END)"                  \
	" WHERE r.type = $1 AND r.id = $2"

/* The version row of type/id (version 0: current) in *out, checked. */
static enum store_status read_row(struct store *s, const char *type, const char *id, int64_t version, PGresult **out,
				  struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	char vnum[24];
	snprintf(vnum, sizeof vnum, "%lld", (long long)version);
	const char *vals[] = {type, id, vnum};
	PGresult *r;
	enum store_status st = pgs_exec_prepared(c, PGS_ST_READ, READ_SQL, 3, vals, &r, err, "reading the resource");
	if (st != STORE_OK)
		return st;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return store_fail(err, STORE_NOT_FOUND, version ? "no such version of %s/%s" : "no %s with id %s", type,
				  id);
	}
	const char *body = pgs_val(r, 0, 1);
	st = pgs_verify(pgs_val(r, 0, 3), type, id, pgs_int(r, 0, 0), pgs_val(r, 0, 2), body,
			body ? (size_t)PQgetlength(r, 0, 1) : 0, err);
	if (st == STORE_OK && !body)
		st = store_fail(err, STORE_GONE, "%s/%s was deleted", type, id);
	if (st != STORE_OK) {
		PQclear(r);
		return st;
	}
	*out = r;
	return STORE_OK;
}

enum store_status pg_read_text(struct store *s, const char *type, const char *id, int64_t version,
			       struct store_text *out, struct store_error *err)
{
	PGresult *r;
	enum store_status st = read_row(s, type, id, version, &r, err);
	if (st != STORE_OK)
		return st;
	size_t n = (size_t)PQgetlength(r, 0, 1);
	if (!(out->text = malloc(n + 1))) {
		PQclear(r);
		return store_fail(err, STORE_NO_MEMORY, "out of memory");
	}
	memcpy(out->text, PQgetvalue(r, 0, 1), n);
	out->text[n] = '\0';
	out->len = n;
	out->version = pgs_int(r, 0, 0);
	snprintf(out->last_updated, sizeof out->last_updated, "%s", PQgetvalue(r, 0, 2));
	PQclear(r);
	return STORE_OK;
}

enum store_status pg_read(struct store *s, const char *type, const char *id, int64_t version, cJSON **out,
			  struct store_error *err)
{
	PGresult *r;
	enum store_status st = read_row(s, type, id, version, &r, err);
	if (st != STORE_OK)
		return st;
	st = sver_parse(PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1), out, err);
	PQclear(r);
	return st;
}

#define HIST_COLS "SELECT type, id, version, op, last_updated, body, seq, sum FROM version "

enum store_status pg_history(struct store *s, const char *type, const char *id, const char *since, size_t count,
			     size_t offset, int64_t before, struct store_page *out, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	/* $1 type, $2 id, $3 since, $4 before, $5 limit, $6 offset */
	const char *where = id     ? "WHERE rid = (SELECT rid FROM resource WHERE type = $1 AND id = $2)"
			    : type ? "WHERE type = $1 AND $2::text IS NULL"
				   : "WHERE $1::text IS NULL AND $2::text IS NULL";
	char count_sql[256], page_sql[512];
	snprintf(count_sql, sizeof count_sql, "SELECT count(*) FROM version %s AND last_updated >= $3", where);
	snprintf(page_sql, sizeof page_sql,
		 HIST_COLS "%s AND last_updated >= $3 AND seq < $4 ORDER BY seq DESC LIMIT $5 OFFSET $6", where);
	char bnum[24], lnum[24], onum[24];
	snprintf(bnum, sizeof bnum, "%lld", (long long)before);
	snprintf(lnum, sizeof lnum, "%lld", (long long)count + 1); /* one more: whether older ones follow */
	snprintf(onum, sizeof onum, "%lld", (long long)(offset > INT64_MAX ? INT64_MAX : offset));
	const char *vals[] = {type, id, since, bnum, lnum, onum};
	bool opened;
	enum store_status st = pgs_read_begin(c, &opened, err);
	if (st != STORE_OK)
		return st;
	PGresult *r = NULL;
	if ((st = pgs_exec(c, count_sql, 3, vals, NULL, &r, err, "counting history")) != STORE_OK)
		goto out;
	out->total = (size_t)pgs_int(r, 0, 0);
	PQclear(r);
	r = NULL;
	if (id && out->total == 0) {
		const char *v2[] = {type, id};
		if ((st = pgs_exec(c, "SELECT 1 FROM resource WHERE type = $1 AND id = $2", 2, v2, NULL, &r, err,
				   "looking up the resource")) != STORE_OK)
			goto out;
		if (PQntuples(r) == 0)
			st = store_fail(err, STORE_NOT_FOUND, "no %s with id %s", type, id);
		PQclear(r);
		r = NULL;
		if (st != STORE_OK)
			goto out;
	}
	if (count == 0)
		goto out;
	if ((st = pgs_exec(c, page_sql, 6, vals, NULL, &r, err, "reading history")) != STORE_OK)
		goto out;
	size_t cap = 0;
	for (int i = 0; i < PQntuples(r); i++) {
		if (out->n == count) {
			out->more = true;
			break;
		}
		if ((st = sver_grow(out, &cap, err)) != STORE_OK)
			break;
		struct store_entry *e = &out->items[out->n];
		memset(e, 0, sizeof *e);
		snprintf(e->type, sizeof e->type, "%s", PQgetvalue(r, i, 0));
		snprintf(e->id, sizeof e->id, "%s", PQgetvalue(r, i, 1));
		e->version = pgs_int(r, i, 2);
		e->op = (enum store_op)pgs_int(r, i, 3);
		snprintf(e->last_updated, sizeof e->last_updated, "%s", PQgetvalue(r, i, 4));
		const char *body = pgs_val(r, i, 5);
		size_t n = body ? (size_t)PQgetlength(r, i, 5) : 0;
		e->deleted = body == NULL;
		e->seq = pgs_int(r, i, 6);
		out->n++;
		if ((st = pgs_verify(pgs_val(r, i, 7), e->type, e->id, e->version, e->last_updated, body, n, err)) !=
		    STORE_OK)
			break;
		if (body && (st = sver_parse(body, n, &e->resource, err)) != STORE_OK)
			break;
	}
out:
	PQclear(r);
	pgs_read_end(c, opened);
	return st;
}

enum store_status pg_search(struct store *s, const char *type, const struct store_search *q, struct store_page *out,
			    struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	struct ssql_search sql;
	PGresult *r = NULL;
	bool opened = false;
	enum store_status st = ssql_search_query(type, q, true, &sql, err);
	if (st != STORE_OK)
		goto out;
	if ((st = pgs_read_begin(c, &opened, err)) != STORE_OK)
		goto out;
	if (q->no_total && q->count > 0) {
		out->total = STORE_NO_TOTAL;
	} else {
		if ((st = pgs_exec_binds(c, sql.count.p, &sql.count_binds, &r, err, "counting matches")) != STORE_OK)
			goto out;
		out->total = (size_t)pgs_int(r, 0, 0);
		PQclear(r);
		r = NULL;
		if (q->count == 0 || q->offset >= out->total)
			goto out;
	}
	if ((st = pgs_exec_binds(c, sql.page.p, &sql.page_binds, &r, err, "searching")) != STORE_OK)
		goto out;
	size_t cap = 0;
	for (int i = 0; i < PQntuples(r); i++) {
		if ((st = sver_grow(out, &cap, err)) != STORE_OK)
			break;
		struct store_entry *e = &out->items[out->n];
		memset(e, 0, sizeof *e);
		snprintf(e->type, sizeof e->type, "%s", type);
		snprintf(e->id, sizeof e->id, "%s", PQgetvalue(r, i, 0));
		e->version = pgs_int(r, i, 1);
		snprintf(e->last_updated, sizeof e->last_updated, "%s", PQgetvalue(r, i, 2));
		e->op = (enum store_op)pgs_int(r, i, 4);
		out->n++;
		const char *body = pgs_val(r, i, 3);
		size_t n = body ? (size_t)PQgetlength(r, i, 3) : 0;
		if ((st = pgs_verify(pgs_val(r, i, 5), e->type, e->id, e->version, e->last_updated, body, n, err)) !=
		    STORE_OK)
			break;
		if (!body) {
			st = store_fail(err, STORE_IO, "a live resource has no body");
			break;
		}
		if ((st = sver_parse(body, n, &e->resource, err)) != STORE_OK)
			break;
	}
out:
	PQclear(r);
	pgs_read_end(c, opened);
	ssql_search_release(&sql);
	return st;
}

/* --- bulk export ---------------------------------------------------------------------------------- */

enum store_status pg_snapshot(struct store *s, struct store_snapshot *out, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	if (c->in_txn)
		return store_fail(err, STORE_CONFLICT, "a transaction is already open on this thread");
	/* SHARE mode waits for every transaction that has written a version
	 * (on any instance) to end: no seq at or below the snapshot commits
	 * after it. The snapshot's time, kept as the mark PGS_MARK_SNAPSHOT
	 * (never moved back), makes a write stamped before it and committed
	 * after it be stamped again (store_pg_write.c's STAMP_OK). */
	enum store_status st = pgs_run(c, "BEGIN", err, "taking a snapshot");
	if (st == STORE_OK) /* one statement per call: parameters' protocol */
		st = pgs_run(c, "LOCK TABLE version IN SHARE MODE", err, "taking a snapshot");
	PGresult *r = NULL;
	if (st == STORE_OK && (st = pgs_exec(c, "SELECT coalesce(max(seq), 0) FROM version", 0, NULL, NULL, &r, err,
					     "taking a snapshot")) == STORE_OK) {
		out->seq = pgs_int(r, 0, 0);
		int64_t ms;
		store_now(out->time, &ms);
		char num[24];
		snprintf(num, sizeof num, "%lld", (long long)ms);
		const char *vals[] = {num};
		st = pgs_exec(c,
			      "INSERT INTO mark(name, value) VALUES('" PGS_MARK_SNAPSHOT "', $1) ON CONFLICT (name) DO"
			      " UPDATE SET value = greatest(mark.value, excluded.value)",
			      1, vals, NULL, NULL, err, "taking a snapshot");
	}
	PQclear(r);
	if (st == STORE_OK)
		st = pgs_run(c, "COMMIT", err, "taking a snapshot");
	if (PQtransactionStatus(c->db) != PQTRANS_IDLE)
		pgs_run(c, "ROLLBACK", NULL, "ending a snapshot");
	return st;
}

enum store_status pg_export_types(struct store *s, int64_t upto_seq, store_type_fn *fn, void *ctx,
				  struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	char num[24];
	snprintf(num, sizeof num, "%lld", (long long)upto_seq);
	const char *vals[] = {num};
	PGresult *r;
	enum store_status st = pgs_exec(c, "SELECT DISTINCT type FROM version WHERE seq <= $1 ORDER BY type", 1, vals,
					NULL, &r, err, "listing the types");
	if (st != STORE_OK)
		return st;
	for (int i = 0; i < PQntuples(r); i++)
		if (fn(ctx, PQgetvalue(r, i, 0)) != 0)
			break;
	PQclear(r);
	return STORE_OK;
}

/* The scan reads through a cursor, a batch of rows at a time, so that no
 * more than one batch is held in memory. */
#define EXPORT_BATCH "200"

enum store_status pg_export_scan(struct store *s, const struct store_export_query *q, store_export_fn *fn, void *ctx,
				 struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	struct ssql_buf sql = {.pg = true};
	struct ssql_binds b = {0};
	ssql_add(&sql, "DECLARE cw_export NO SCROLL CURSOR FOR ");
	enum store_status st = ssql_export_query(q, &sql, &b, err);
	bool opened = false;
	if (st == STORE_OK)
		st = pgs_read_begin(c, &opened, err);
	if (st == STORE_OK && !opened && !c->in_txn)
		st = store_fail(err, STORE_IO, "the export could not open a snapshot");
	if (st == STORE_OK)
		st = pgs_exec_binds(c, sql.p, &b, NULL, err, "exporting");
	bool stop = false;
	while (st == STORE_OK && !stop) {
		PGresult *r;
		if ((st = pgs_exec(c, "FETCH " EXPORT_BATCH " FROM cw_export", 0, NULL, NULL, &r, err, "exporting")) !=
		    STORE_OK)
			break;
		int n = PQntuples(r);
		for (int i = 0; i < n && !stop; i++) {
			const char *id = PQgetvalue(r, i, 0);
			const char *body = PQgetvalue(r, i, 1);
			size_t blen = (size_t)PQgetlength(r, i, 1);
			st = pgs_verify(pgs_val(r, i, 4), q->type, id, pgs_int(r, i, 2), PQgetvalue(r, i, 3), body,
					blen, err);
			if (st != STORE_OK)
				break;
			stop = fn(ctx, id, body, blen) != 0;
		}
		PQclear(r);
		if (n == 0)
			break;
	}
	if (opened)
		pgs_read_end(c, opened);
	else if (c->in_txn)
		pgs_run(c, "CLOSE cw_export", NULL, "exporting");
	free(sql.p);
	ssql_binds_release(&b);
	return st;
}
