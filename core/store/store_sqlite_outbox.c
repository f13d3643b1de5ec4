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

/* --- outbox ------------------------------------------------------------------------- */

enum store_status sqlite_outbox_add(struct store *s, const char *type, const char *id, int64_t version,
					   bool deleted, struct store_error *err)
{
	GET_CONN(c, s, err);
	return ss_outbox_insert(c, type, id, version, deleted, err);
}

enum store_status ss_outbox_insert(struct conn *c, const char *type, const char *id, int64_t version, bool deleted,
				   struct store_error *err)
{
	sqlite3_stmt *st = ss_stmt(c, S_OB_ADD, err);
	if (!st)
		return err ? err->status : STORE_IO;
	char now[STORE_TIME_SIZE];
	store_now(now, NULL);
	ss_bind_text(st, 1, type);
	ss_bind_text(st, 2, id);
	sqlite3_bind_int64(st, 3, version);
	sqlite3_bind_int(st, 4, deleted ? 1 : 0);
	ss_bind_text(st, 5, now);
	int rc = sqlite3_step(st);
	ss_done(st);
	return rc == SQLITE_DONE ? STORE_OK : ss_db_fail(c, err, rc, "recording the outbox");
}

static void outbox_row(sqlite3_stmt *st, struct outbox_item *it)
{
	memset(it, 0, sizeof *it);
	it->oid = sqlite3_column_int64(st, 0);
	ss_copy_text(it->type, sizeof it->type, sqlite3_column_text(st, 1));
	ss_copy_text(it->id, sizeof it->id, sqlite3_column_text(st, 2));
	it->version = sqlite3_column_int64(st, 3);
	it->deleted = sqlite3_column_int(st, 4) != 0;
	it->state = sqlite3_column_int(st, 5);
	it->attempts = sqlite3_column_int(st, 6);
	it->next_at_ms = sqlite3_column_int64(st, 7);
	ss_copy_text(it->last_error, sizeof it->last_error, sqlite3_column_text(st, 8));
	ss_copy_text(it->created, sizeof it->created, sqlite3_column_text(st, 9));
}

enum store_status sqlite_outbox_next(struct store *s, int64_t now_ms, struct outbox_item *out,
					    struct store_error *err)
{
	GET_CONN(c, s, err);
	sqlite3_stmt *st = ss_stmt(c, S_OB_NEXT, err);
	if (!st)
		return err ? err->status : STORE_IO;
	sqlite3_bind_int64(st, 1, now_ms);
	int rc = sqlite3_step(st);
	enum store_status res = STORE_OK;
	if (rc == SQLITE_ROW)
		outbox_row(st, out);
	else if (rc == SQLITE_DONE)
		res = store_fail(err, STORE_NOT_FOUND, "nothing due");
	else
		res = ss_db_fail(c, err, rc, "reading the outbox");
	ss_done(st);
	return res;
}

enum store_status sqlite_outbox_settle(struct store *s, int64_t oid, int state, int attempts,
					      int64_t next_at_ms, const char *error, struct store_error *err)
{
	GET_CONN(c, s, err);
	sqlite3_stmt *st = ss_stmt(c, state < 0 ? S_OB_DELETE : S_OB_SETTLE, err);
	if (!st)
		return err ? err->status : STORE_IO;
	sqlite3_bind_int64(st, 1, oid);
	if (state >= 0) {
		sqlite3_bind_int(st, 2, state);
		sqlite3_bind_int(st, 3, attempts);
		sqlite3_bind_int64(st, 4, next_at_ms);
		if (error)
			ss_bind_text(st, 5, error);
		else
			sqlite3_bind_null(st, 5);
	}
	int rc = sqlite3_step(st);
	ss_done(st);
	if (rc != SQLITE_DONE)
		return ss_db_fail(c, err, rc, "updating the outbox");
	return sqlite3_changes(c->db) ? STORE_OK
				      : store_fail(err, STORE_NOT_FOUND, "no outbox record %lld", (long long)oid);
}

enum store_status sqlite_outbox_list(struct store *s, int state, size_t count, size_t offset,
					    struct outbox_item *items, size_t *n, struct store_error *err)
{
	GET_CONN(c, s, err);
	sqlite3_stmt *st = ss_stmt(c, state < 0 ? S_OB_LIST_ALL : S_OB_LIST, err);
	if (!st)
		return err ? err->status : STORE_IO;
	if (state >= 0)
		sqlite3_bind_int(st, 1, state);
	sqlite3_bind_int64(st, 2, (int64_t)count);
	sqlite3_bind_int64(st, 3, (int64_t)offset);
	while (*n < count && sqlite3_step(st) == SQLITE_ROW)
		outbox_row(st, &items[(*n)++]);
	ss_done(st);
	return STORE_OK;
}

enum store_status sqlite_outbox_counts(struct store *s, struct outbox_counts *out, struct store_error *err)
{
	GET_CONN(c, s, err);
	sqlite3_stmt *st = ss_stmt(c, S_OB_COUNTS, err);
	if (!st)
		return err ? err->status : STORE_IO;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->pending = (size_t)sqlite3_column_int64(st, 0);
		out->dead = (size_t)sqlite3_column_int64(st, 1);
	}
	ss_done(st);
	return rc == SQLITE_ROW ? STORE_OK : ss_db_fail(c, err, rc, "counting the outbox");
}

enum store_status sqlite_outbox_retry_dead(struct store *s, const struct outbox_filter *f, size_t *n,
					   struct store_error *err)
{
	GET_CONN(c, s, err);
	sqlite3_stmt *st = ss_stmt(c, S_OB_RETRY_DEAD, err);
	if (!st)
		return err ? err->status : STORE_IO;
	const char *v[4] = {f->type, f->error, f->since, f->until};
	for (int i = 0; i < 4; i++)
		if (v[i])
			ss_bind_text(st, i + 1, v[i]);
		else
			sqlite3_bind_null(st, i + 1);
	int rc = sqlite3_step(st);
	ss_done(st);
	if (rc != SQLITE_DONE)
		return ss_db_fail(c, err, rc, "retrying dead letters");
	*n = (size_t)sqlite3_changes(c->db);
	return STORE_OK;
}
