/* The PostgreSQL backend's outbox, shared by every instance on the
 * database. Records are delivered in the order written (as store.h's
 * outbox contract says): pg_outbox_next takes the oldest pending record
 * under its row lock and leases it to this instance (lease_owner,
 * lease_until) in one short transaction; while the lease runs no instance
 * takes that record or, the order being global, any later one. A record
 * whose taker died is taken again once its lease has passed; a settle from
 * a taker whose lease has passed and been taken over is refused, so one
 * delivery's outcome is recorded once. */
#include "store/store_pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OB_SEL "SELECT oid, type, id, version, deleted, state, attempts, next_at, last_error, created"
#define OB_COLS OB_SEL " FROM outbox "
/* this instance's lease, or nobody's any more: a lease taken over by
 * another instance is that instance's to settle */
#define OB_MINE                                    \
	" AND (lease_owner = $2 OR lease_until <=" \
	" (extract(epoch from clock_timestamp()) * 1000)::bigint)"

enum store_status pg_outbox_add(struct store *s, const char *type, const char *id, int64_t version, bool deleted,
				struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	return pgs_outbox_insert(c, type, id, version, deleted, err);
}

enum store_status pgs_outbox_insert(struct pgconn *c, const char *type, const char *id, int64_t version, bool deleted,
				    struct store_error *err)
{
	char now[STORE_TIME_SIZE], vnum[24];
	store_now(now, NULL);
	snprintf(vnum, sizeof vnum, "%lld", (long long)version);
	const char *vals[] = {type, id, vnum, deleted ? "1" : "0", now};
	return pgs_exec(c, "INSERT INTO outbox(type, id, version, deleted, created) VALUES($1, $2, $3, $4, $5)", 5,
			vals, NULL, NULL, err, "recording the outbox");
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
	enum store_status st = pgs_run(c, "BEGIN", err, "reading the outbox");
	if (st != STORE_OK)
		return st;
	/* leases are compared with the database's clock, which every
	 * instance shares */
	PGresult *r = NULL;
	st = pgs_exec(c,
		      OB_SEL ", (lease_until > (extract(epoch from clock_timestamp()) * 1000)::bigint) FROM outbox"
			     " WHERE state = 0 ORDER BY oid LIMIT 1 FOR UPDATE",
		      0, NULL, NULL, &r, err, "reading the outbox");
	if (st == STORE_OK) {
		if (PQntuples(r) == 0 || pgs_int(r, 0, 7) > now_ms || strcmp(PQgetvalue(r, 0, 10), "t") == 0) {
			st = store_fail(err, STORE_NOT_FOUND, "nothing due");
		} else {
			outbox_row(r, 0, out);
			char oid[24], owner[24], lease[24];
			snprintf(oid, sizeof oid, "%lld", (long long)out->oid);
			snprintf(owner, sizeof owner, "%lld", (long long)ps->instance);
			snprintf(lease, sizeof lease, "%lld", (long long)ps->lease_ms);
			const char *vals[] = {oid, owner, lease};
			st = pgs_exec(c,
				      "UPDATE outbox SET lease_owner = $2, lease_until ="
				      " (extract(epoch from clock_timestamp()) * 1000)::bigint + $3 WHERE oid = $1",
				      3, vals, NULL, NULL, err, "leasing an outbox record");
		}
	}
	PQclear(r);
	if (st == STORE_OK)
		st = pgs_run(c, "COMMIT", err, "leasing an outbox record");
	else if (PQtransactionStatus(c->db) != PQTRANS_IDLE)
		pgs_run(c, "ROLLBACK", NULL, "reading the outbox");
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
		st = pgs_exec(c, "DELETE FROM outbox WHERE oid = $1" OB_MINE, 2, vals, NULL, &r, err,
			      "updating the outbox");
	} else {
		const char *vals[] = {onum, owner, snum, anum, nnum, error};
		st = pgs_exec(
			c,
			"UPDATE outbox SET state = $3, attempts = $4, next_at = $5, last_error = $6, lease_owner = 0,"
			" lease_until = 0 WHERE oid = $1" OB_MINE,
			6, vals, NULL, &r, err, "updating the outbox");
	}
	if (st == STORE_OK && strcmp(PQcmdTuples(r), "0") == 0)
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
