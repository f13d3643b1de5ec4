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
#include "store/store_refs.h"

/* --- outbox ------------------------------------------------------------------------- */

/* The outbox of the one process that writes the database, delivered by
 * several workers of that process (store.h's outbox contract): a record is
 * taken when no earlier record of its resource, of a resource its version
 * refers to (outbox_ref, recorded with it) or of one that refers to it is
 * still pending; a taken record stays pending until settled, and the set of
 * taken ones (ob_taken) keeps two workers from taking the same. */

enum store_status sqlite_outbox_add(struct store *s, const char *type, const char *id, int64_t version, bool deleted,
				    struct store_error *err)
{
	GET_CONN(c, s, err);
	return ss_outbox_insert(c, type, id, version, deleted, err);
}

struct refs_ins {
	struct conn *c;
	int64_t oid;
	struct store_error *err;
};

static int refs_insert(void *ctx, const char *type, const char *id)
{
	struct refs_ins *ri = ctx;
	sqlite3_stmt *st = ss_stmt(ri->c, S_OB_REF_ADD, ri->err);
	if (!st)
		return 1;
	sqlite3_bind_int64(st, 1, ri->oid);
	ss_bind_text(st, 2, type);
	ss_bind_text(st, 3, id);
	int rc = sqlite3_step(st);
	ss_done(st);
	if (rc != SQLITE_DONE) {
		ss_db_fail(ri->c, ri->err, rc, "recording the outbox's references");
		return 1;
	}
	return 0;
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
	if (rc != SQLITE_DONE)
		return ss_db_fail(c, err, rc, "recording the outbox");
	if (deleted)
		return STORE_OK;
	struct store_error local;
	struct refs_ins ri = {.c = c, .oid = sqlite3_last_insert_rowid(c->db), .err = err ? err : &local};
	if (!(st = ss_stmt(c, S_OB_BODY, err)))
		return err ? err->status : STORE_IO;
	ss_bind_text(st, 1, type);
	ss_bind_text(st, 2, id);
	sqlite3_bind_int64(st, 3, version);
	enum store_status res = STORE_OK;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *body = (const char *)sqlite3_column_text(st, 0);
		if (body && store_refs_each(body, (size_t)sqlite3_column_bytes(st, 0), type, id, refs_insert, &ri) > 0)
			res = ri.err->status;
	} else if (rc != SQLITE_DONE) {
		res = ss_db_fail(c, err, rc, "recording the outbox's references");
	}
	ss_done(st);
	return res;
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

static enum store_status ss_outbox_settle(struct conn *c, int64_t oid, int state, int attempts, int64_t next_at_ms,
					  const char *error, struct store_error *err)
{
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
	if (!sqlite3_changes(c->db))
		return store_fail(err, STORE_NOT_FOUND, "no outbox record %lld", (long long)oid);
	/* a delivered record's references go with it (left over, they hold nothing back) */
	if (state < 0 && (st = ss_stmt(c, S_OB_REF_DELETE, NULL)) != NULL) {
		sqlite3_bind_int64(st, 1, oid);
		sqlite3_step(st);
		ss_done(st);
	}
	return STORE_OK;
}

/* Whether oid is taken (mu held); drops takes that ran out (a worker that
 * died without settling). */
static bool ob_is_taken(struct sqlite_store *ss, int64_t oid, int64_t now_ms)
{
	for (size_t i = 0; i < ss->ob_ntaken;) {
		if (ss->ob_taken[i].until_ms <= now_ms) {
			ss->ob_taken[i] = ss->ob_taken[--ss->ob_ntaken];
			continue;
		}
		if (ss->ob_taken[i].oid == oid)
			return true;
		i++;
	}
	return false;
}

static void ob_release(struct sqlite_store *ss, int64_t oid)
{
	pthread_mutex_lock(&ss->mu);
	for (size_t i = 0; i < ss->ob_ntaken; i++)
		if (ss->ob_taken[i].oid == oid) {
			ss->ob_taken[i] = ss->ob_taken[--ss->ob_ntaken];
			break;
		}
	pthread_mutex_unlock(&ss->mu);
}

/* Whether oid is still pending and due, read afresh (a new read
 * transaction: the candidate's statement has been reset). A record that
 * cannot be read is not taken. */
static bool ob_still_due(struct conn *c, int64_t oid, int64_t now_ms)
{
	sqlite3_stmt *st = ss_stmt(c, S_OB_STILL_DUE, NULL);
	if (!st)
		return false;
	sqlite3_bind_int64(st, 1, oid);
	sqlite3_bind_int64(st, 2, now_ms);
	bool due = sqlite3_step(st) == SQLITE_ROW;
	ss_done(st);
	return due;
}

enum store_status sqlite_outbox_next(struct store *s, int64_t now_ms, struct outbox_item *out, struct store_error *err)
{
	GET_CONN(c, s, err);
	struct sqlite_store *ss = ss_of(s);
	pthread_mutex_lock(&ss->mu);
	ob_is_taken(ss, 0, now_ms);
	size_t taken = ss->ob_ntaken;
	pthread_mutex_unlock(&ss->mu);
	if (taken >= SS_OB_TAKEN_MAX)
		return store_fail(err, STORE_NOT_FOUND, "nothing due");
	sqlite3_stmt *st = ss_stmt(c, S_OB_NEXT, err);
	if (!st)
		return err ? err->status : STORE_IO;
	sqlite3_bind_int64(st, 1, now_ms);
	/* the taken ones are among the candidates: one more is one not taken */
	sqlite3_bind_int64(st, 2, (int64_t)taken + 1);
	int rc = SQLITE_DONE;
	bool found = false;
	while (!found && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t oid = sqlite3_column_int64(st, 0);
		pthread_mutex_lock(&ss->mu);
		if (!ob_is_taken(ss, oid, now_ms) && ss->ob_ntaken < SS_OB_TAKEN_MAX) {
			ss->ob_taken[ss->ob_ntaken].oid = oid;
			ss->ob_taken[ss->ob_ntaken++].until_ms = now_ms + SS_OB_TAKEN_MS;
			found = true;
		}
		pthread_mutex_unlock(&ss->mu);
		if (found)
			outbox_row(st, out);
	}
	enum store_status res = STORE_OK;
	if (!found)
		res = rc == SQLITE_DONE || rc == SQLITE_ROW ? store_fail(err, STORE_NOT_FOUND, "nothing due")
							    : ss_db_fail(c, err, rc, "reading the outbox");
	ss_done(st);
	if (found && !ob_still_due(c, out->oid, now_ms)) {
		/* another worker settled it after this read's snapshot began and
		 * before it was claimed here: not delivered twice */
		ob_release(ss, out->oid);
		return store_fail(err, STORE_NOT_FOUND, "nothing due");
	}
	return res;
}

enum store_status sqlite_outbox_settle(struct store *s, int64_t oid, int state, int attempts, int64_t next_at_ms,
				       const char *error, struct store_error *err)
{
	GET_CONN(c, s, err);
	enum store_status res = ss_outbox_settle(c, oid, state, attempts, next_at_ms, error, err);
	ob_release(ss_of(s), oid);
	return res;
}

enum store_status sqlite_outbox_list(struct store *s, int state, size_t count, size_t offset, struct outbox_item *items,
				     size_t *n, struct store_error *err)
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
