/* The PostgreSQL backend's outbox, shared by every instance on the
 * database and delivered by several workers on each (store.h's outbox
 * contract): pg_outbox_next takes, in one statement, the oldest pending
 * record that nothing holds back — no earlier record of its resource, of a
 * resource its version refers to (outbox_ref, recorded with it), or of one
 * that refers to it is still pending or in flight — skipping rows another
 * taker has locked (FOR UPDATE SKIP LOCKED), and leases it to this instance
 * (lease_owner, lease_until). A record stays pending while it is leased, so
 * it holds its related records back until it is settled. A record whose
 * taker died is taken again once its lease has passed; a settle from a taker
 * whose lease has passed and been taken over is refused, so one delivery's
 * outcome is recorded once. The statements every delivery runs are
 * prepared once per connection (pgs_exec_prepared). */
#include "store/store_pg_int.h"
#include "base/strbuf.h"
#include "store/store_refs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* now in ms by the database's clock, which every instance shares */
#define OB_NOW "(extract(epoch from clock_timestamp()) * 1000)::bigint"
#define OB_SEL "SELECT oid, type, id, version, deleted, state, attempts, next_at, last_error, created"
#define OB_COLS OB_SEL " FROM outbox "
/* this instance's lease, or nobody's any more: a lease taken over by
 * another instance is that instance's to settle */
#define OB_MINE " AND (lease_owner = $2 OR lease_until <= " OB_NOW ")"

enum store_status pg_outbox_add(struct store *s, const char *type, const char *id, int64_t version, bool deleted,
				struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	return pgs_outbox_insert(c, type, id, version, deleted, err);
}

/* The referenced resources of one record, gathered as two array literals
 * ({"Patient","Practitioner"}, {"p1","x"}); ids and type names need no
 * escaping inside the quotes. */
struct refs_arrays {
	struct strbuf types, ids;
	size_t n;
};

static void refs_quoted(struct strbuf *b, bool first, const char *s)
{
	strbuf_adds(b, first ? "{\"" : ",\"");
	strbuf_adds(b, s);
	strbuf_addc(b, '"');
}

static int refs_add(void *ctx, const char *type, const char *id)
{
	struct refs_arrays *a = ctx;
	refs_quoted(&a->types, a->n == 0, type);
	refs_quoted(&a->ids, a->n == 0, id);
	a->n++;
	return 0;
}

enum store_status pgs_outbox_insert(struct pgconn *c, const char *type, const char *id, int64_t version, bool deleted,
				    struct store_error *err)
{
	char now[STORE_TIME_SIZE], vnum[24];
	store_now(now, NULL);
	snprintf(vnum, sizeof vnum, "%lld", (long long)version);
	const char *vals[] = {type, id, vnum, deleted ? "1" : "0", now};
	PGresult *r = NULL;
	enum store_status st = pgs_exec_prepared(
		c, PGS_ST_OB_ADD,
		"INSERT INTO outbox(type, id, version, deleted, created) VALUES($1, $2, $3, $4, $5)"
		" RETURNING oid, (SELECT v.body FROM resource r JOIN version v ON v.rid = r.rid AND v.version = $3"
		" WHERE r.type = $1 AND r.id = $2)",
		5, vals, &r, err, "recording the outbox");
	if (st != STORE_OK || deleted || PQgetisnull(r, 0, 1)) {
		PQclear(r);
		return st;
	}
	struct refs_arrays a = {.types = STRBUF_INIT, .ids = STRBUF_INIT, .n = 0};
	store_refs_each(PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1), type, id, refs_add, &a);
	strbuf_addc(&a.types, '}');
	strbuf_addc(&a.ids, '}');
	char *types = strbuf_take(&a.types, NULL), *ids = strbuf_take(&a.ids, NULL);
	if (!types || !ids) {
		st = store_fail(err, STORE_NO_MEMORY, "recording the outbox's references");
	} else if (a.n) {
		const char *rv[] = {PQgetvalue(r, 0, 0), types, ids};
		st = pgs_exec_prepared(
			c, PGS_ST_OB_REFS,
			"INSERT INTO outbox_ref(oid, type, id) SELECT $1, t, i FROM unnest($2::text[], $3::text[])"
			" AS u(t, i)",
			3, rv, NULL, err, "recording the outbox's references");
	}
	free(types);
	free(ids);
	PQclear(r);
	return st;
}

static void outbox_row(const PGresult *r, int i, struct outbox_item *it)
{
	memset(it, 0, sizeof *it);
	it->oid = pgs_int(r, i, 0);
	snprintf(it->type, sizeof it->type, "%s", PQgetvalue(r, i, 1));
	snprintf(it->id, sizeof it->id, "%s", PQgetvalue(r, i, 2));
	it->version = pgs_int(r, i, 3);
	it->deleted = pgs_int(r, i, 4) != 0;
	it->state = (int)pgs_int(r, i, 5);
	it->attempts = (int)pgs_int(r, i, 6);
	it->next_at_ms = pgs_int(r, i, 7);
	snprintf(it->last_error, sizeof it->last_error, "%s", PQgetvalue(r, i, 8));
	snprintf(it->created, sizeof it->created, "%s", PQgetvalue(r, i, 9));
}

enum store_status pg_outbox_next(struct store *s, int64_t now_ms, struct outbox_item *out, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	struct pg_store *ps = pgs_of(s);
	if (c->in_txn)
		return store_fail(err, STORE_CONFLICT, "a transaction is open on this thread");
	char now[24], owner[24], lease[24];
	snprintf(now, sizeof now, "%lld", (long long)now_ms);
	snprintf(owner, sizeof owner, "%lld", (long long)ps->instance);
	snprintf(lease, sizeof lease, "%lld", (long long)ps->lease_ms);
	const char *vals[] = {now, owner, lease};
	PGresult *r = NULL;
	enum store_status st = pgs_exec_prepared(
		c, PGS_ST_OB_NEXT,
		"WITH c AS (SELECT o.oid FROM outbox o WHERE o.state = 0 AND o.next_at <= $1 AND o.lease_until "
		"<= " OB_NOW
		" AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.type = o.type AND e.id = o.id AND e.oid < o.oid"
		" AND e.state = 0)"
		" AND NOT EXISTS (SELECT 1 FROM outbox_ref f JOIN outbox e ON e.type = f.type AND e.id = f.id"
		" AND e.oid < o.oid AND e.state = 0 WHERE f.oid = o.oid)"
		" AND NOT EXISTS (SELECT 1 FROM outbox_ref f JOIN outbox e ON e.oid = f.oid AND e.state = 0"
		" WHERE f.type = o.type AND f.id = o.id AND f.oid < o.oid)"
		" ORDER BY o.oid LIMIT 1 FOR UPDATE OF o SKIP LOCKED)"
		" UPDATE outbox SET lease_owner = $2, lease_until = " OB_NOW " + $3 FROM c WHERE outbox.oid = c.oid"
		" RETURNING outbox.oid, type, id, version, deleted, state, attempts, next_at, last_error, created",
		3, vals, &r, err, "leasing an outbox record");
	if (st == STORE_OK) {
		if (PQntuples(r) == 0)
			st = store_fail(err, STORE_NOT_FOUND, "nothing due");
		else
			outbox_row(r, 0, out);
	}
	PQclear(r);
	return st;
}

enum store_status pg_outbox_settle(struct store *s, int64_t oid, int state, int attempts, int64_t next_at_ms,
				   const char *error, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	struct pg_store *ps = pgs_of(s);
	char onum[24], owner[24], snum[12], anum[12], nnum[24];
	snprintf(onum, sizeof onum, "%lld", (long long)oid);
	snprintf(owner, sizeof owner, "%lld", (long long)ps->instance);
	snprintf(snum, sizeof snum, "%d", state);
	snprintf(anum, sizeof anum, "%d", attempts);
	snprintf(nnum, sizeof nnum, "%lld", (long long)next_at_ms);
	PGresult *r = NULL;
	enum store_status st;
	if (state < 0) {
		const char *vals[] = {onum, owner};
		st = pgs_exec_prepared(
			c, PGS_ST_OB_DONE,
			"WITH d AS (DELETE FROM outbox WHERE oid = $1" OB_MINE " RETURNING oid),"
			" f AS (DELETE FROM outbox_ref WHERE oid IN (SELECT oid FROM d)) SELECT count(*) FROM d",
			2, vals, &r, err, "updating the outbox");
	} else {
		const char *vals[] = {onum, owner, snum, anum, nnum, error};
		st = pgs_exec_prepared(
			c, PGS_ST_OB_SET,
			"UPDATE outbox SET state = $3, attempts = $4, next_at = $5, last_error = $6, lease_owner = 0,"
			" lease_until = 0 WHERE oid = $1" OB_MINE,
			6, vals, &r, err, "updating the outbox");
	}
	if (st == STORE_OK && (state < 0 ? pgs_int(r, 0, 0) == 0 : strcmp(PQcmdTuples(r), "0") == 0))
		st = store_fail(err, STORE_NOT_FOUND, "no outbox record %lld leased to this instance", (long long)oid);
	PQclear(r);
	return st;
}

enum store_status pg_outbox_list(struct store *s, int state, size_t count, size_t offset, struct outbox_item *items,
				 size_t *n, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	char snum[12], cnum[24], onum[24];
	snprintf(snum, sizeof snum, "%d", state);
	snprintf(cnum, sizeof cnum, "%lld", (long long)count);
	snprintf(onum, sizeof onum, "%lld", (long long)offset);
	const char *vals[] = {snum, cnum, onum};
	PGresult *r;
	enum store_status st = pgs_exec(c, OB_COLS "WHERE ($1::int < 0 OR state = $1) ORDER BY oid LIMIT $2 OFFSET $3",
					3, vals, NULL, &r, err, "listing the outbox");
	if (st != STORE_OK)
		return st;
	for (int i = 0; i < PQntuples(r) && *n < count; i++)
		outbox_row(r, i, &items[(*n)++]);
	PQclear(r);
	return STORE_OK;
}

enum store_status pg_outbox_counts(struct store *s, struct outbox_counts *out, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	PGresult *r;
	enum store_status st = pgs_exec(c,
					"SELECT count(*) FILTER (WHERE state = 0), count(*) FILTER (WHERE state = 2)"
					" FROM outbox",
					0, NULL, NULL, &r, err, "counting the outbox");
	if (st != STORE_OK)
		return st;
	out->pending = (size_t)pgs_int(r, 0, 0);
	out->dead = (size_t)pgs_int(r, 0, 1);
	PQclear(r);
	return STORE_OK;
}

enum store_status pg_outbox_retry_dead(struct store *s, const struct outbox_filter *f, size_t *n,
				       struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	const char *vals[] = {f->type, f->error, f->since, f->until};
	PGresult *r;
	enum store_status st =
		pgs_exec(c,
			 "UPDATE outbox SET state = 0, attempts = 0, next_at = 0, last_error = NULL,"
			 " lease_owner = 0, lease_until = 0 WHERE state = 2"
			 " AND ($1::text IS NULL OR type = $1) AND ($2::text IS NULL OR strpos(last_error,"
			 " $2) > 0) AND ($3::text IS NULL OR created >= $3) AND ($4::text IS NULL OR"
			 " created < $4)",
			 4, vals, NULL, &r, err, "retrying dead letters");
	if (st != STORE_OK)
		return st;
	*n = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return STORE_OK;
}
