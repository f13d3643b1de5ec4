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

/* --- reads --------------------------------------------------------------------------------------- */

/* Version version of type/id (0: the current one), verified against its
 * checksum: parsed into *out when out is set, else its text copied into
 * *text. */
static enum store_status read_version(struct store *s, const char *type, const char *id, int64_t version,
				      struct store_text *text, cJSON **out, struct store_error *err)
{
	GET_CONN(c, s, err);
	sqlite3_stmt *q = ss_stmt(c, S_READ, err);
	if (!q)
		return err ? err->status : STORE_IO;
	ss_bind_text(q, 1, type);
	ss_bind_text(q, 2, id);
	sqlite3_bind_int64(q, 3, version);
	int rc = sqlite3_step(q);
	enum store_status st = STORE_OK;
	if (rc == SQLITE_ROW) {
		const char *body = (const char *)sqlite3_column_text(q, 1);
		int n = sqlite3_column_bytes(q, 1);
		if ((st = ss_verify(q, 3, type, id, sqlite3_column_int64(q, 0), (const char *)sqlite3_column_text(q, 2),
				    body, (size_t)n, err)) != STORE_OK) {
			/* never served: see store.h, Integrity */
		} else if (!body) {
			st = store_fail(err, STORE_GONE, "%s/%s was deleted", type, id);
		} else if (out) {
			st = sver_parse(body, (size_t)n, out, err);
		} else if (!(text->text = malloc((size_t)n + 1))) {
			st = store_fail(err, STORE_NO_MEMORY, "out of memory");
		} else {
			memcpy(text->text, body, (size_t)n);
			text->text[n] = '\0';
			text->len = (size_t)n;
			text->version = sqlite3_column_int64(q, 0);
			ss_copy_text(text->last_updated, sizeof text->last_updated, sqlite3_column_text(q, 2));
		}
	} else if (rc == SQLITE_DONE) {
		st = store_fail(err, STORE_NOT_FOUND, version ? "no such version of %s/%s" : "no %s with id %s",
				type, id);
	} else {
		st = ss_db_fail(c, err, rc, "reading the resource");
	}
	ss_done(q);
	return st;
}

enum store_status sqlite_read_text(struct store *s, const char *type, const char *id, int64_t version,
				   struct store_text *out, struct store_error *err)
{
	return read_version(s, type, id, version, out, NULL, err);
}

enum store_status sqlite_read(struct store *s, const char *type, const char *id, int64_t version, cJSON **out,
			      struct store_error *err)
{
	return read_version(s, type, id, version, NULL, out, err);
}

void ss_copy_text(char *dst, size_t size, const unsigned char *src)
{
	snprintf(dst, size, "%s", src ? (const char *)src : "");
}

/* STORE_OK when type/id has any version, else STORE_NOT_FOUND. */
static enum store_status exists(struct conn *c, const char *type, const char *id, struct store_error *err)
{
	sqlite3_stmt *q = ss_stmt(c, S_GET_RES, err);
	if (!q)
		return err ? err->status : STORE_IO;
	ss_bind_text(q, 1, type);
	ss_bind_text(q, 2, id);
	int rc = sqlite3_step(q);
	ss_done(q);
	if (rc == SQLITE_ROW)
		return STORE_OK;
	if (rc == SQLITE_DONE)
		return store_fail(err, STORE_NOT_FOUND, "no %s with id %s", type, id);
	return ss_db_fail(c, err, rc, "looking up the resource");
}

enum store_status sqlite_history(struct store *s, const char *type, const char *id, const char *since,
					size_t count, size_t offset, int64_t before, struct store_page *out,
					struct store_error *err)
{
	GET_CONN(c, s, err);
	enum stmt_id nq = id ? S_HIST_ID_N : type ? S_HIST_TYPE_N : S_HIST_ALL_N;
	enum stmt_id pq = id ? S_HIST_ID : type ? S_HIST_TYPE : S_HIST_ALL;
	bool opened;
	enum store_status st = ss_read_begin(c, &opened, err);
	if (st != STORE_OK)
		return st;
	sqlite3_stmt *q = ss_stmt(c, nq, err);
	if (!q) {
		st = err ? err->status : STORE_IO;
		goto out;
	}
	if (type)
		ss_bind_text(q, 1, type);
	if (id)
		ss_bind_text(q, 2, id);
	ss_bind_text(q, 5, since);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		out->total = (size_t)sqlite3_column_int64(q, 0);
	ss_done(q);
	if (rc != SQLITE_ROW) {
		st = ss_db_fail(c, err, rc, "counting history");
		goto out;
	}
	if (id && out->total == 0 && (st = exists(c, type, id, err)) != STORE_OK)
		goto out;
	if (count == 0)
		goto out;
	q = ss_stmt(c, pq, err);
	if (!q) {
		st = err ? err->status : STORE_IO;
		goto out;
	}
	if (type)
		ss_bind_text(q, 1, type);
	if (id)
		ss_bind_text(q, 2, id);
	sqlite3_bind_int64(q, 3, (int64_t)count + 1); /* one more: whether older ones follow */
	sqlite3_bind_int64(q, 4, offset > INT64_MAX ? INT64_MAX : (int64_t)offset);
	ss_bind_text(q, 5, since);
	sqlite3_bind_int64(q, 6, before);
	size_t cap = 0;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (out->n == count) {
			out->more = true;
			continue;
		}
		if ((st = sver_grow(out, &cap, err)) != STORE_OK)
			break;
		struct store_entry *e = &out->items[out->n];
		memset(e, 0, sizeof *e);
		ss_copy_text(e->type, sizeof e->type, sqlite3_column_text(q, 0));
		ss_copy_text(e->id, sizeof e->id, sqlite3_column_text(q, 1));
		e->version = sqlite3_column_int64(q, 2);
		e->op = (enum store_op)sqlite3_column_int(q, 3);
		ss_copy_text(e->last_updated, sizeof e->last_updated, sqlite3_column_text(q, 4));
		const char *body = (const char *)sqlite3_column_text(q, 5);
		int n = sqlite3_column_bytes(q, 5);
		e->deleted = body == NULL;
		e->seq = sqlite3_column_int64(q, 6);
		out->n++;
		if ((st = ss_verify(q, 7, e->type, e->id, e->version, e->last_updated, body, (size_t)n, err)) !=
		    STORE_OK)
			break;
		if (body && (st = sver_parse(body, n, &e->resource, err)) != STORE_OK)
			break;
	}
	if (st == STORE_OK && rc != SQLITE_DONE)
		st = ss_db_fail(c, err, rc, "reading history");
	ss_done(q);
out:
	ss_read_end(c, opened);
	return st;
}
