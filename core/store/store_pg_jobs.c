/* The PostgreSQL backend's shared bulk export jobs (store.h's
 * store_job_ops): tables bulk_job and bulk_chunk (schema 5). A job's lease
 * is the outbox's (store.postgresql.lease_ms), its holder this process's
 * instance id; the statements that change a running job name both, so a
 * gateway that lost its lease can neither renew nor finish the job. */
#include "store/store_pg_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The size of one stored piece of an output file. */
#define CHUNK_BYTES (1u << 20)

static enum store_status job_row(PGresult *r, int col, struct store_job *out, struct store_error *err)
{
	memset(out, 0, sizeof *out);
	if (!(out->rec = strdup(PQgetvalue(r, 0, col))))
		return store_fail(err, STORE_NO_MEMORY, "out of memory");
	snprintf(out->state, sizeof out->state, "%s", PQgetvalue(r, 0, col + 1));
	snprintf(out->progress, sizeof out->progress, "%s", PQgetvalue(r, 0, col + 2));
	out->finished_ms = strtoll(PQgetvalue(r, 0, col + 3), NULL, 10);
	return STORE_OK;
}

/* Runs sql and tells whether it gave a row: STORE_NOT_FOUND when not. */
static enum store_status exec_row(struct pgconn *c, const char *sql, int n, const char *const *vals, PGresult **out,
				  struct store_error *err, const char *what)
{
	PGresult *r;
	enum store_status st = pgs_exec(c, sql, n, vals, NULL, &r, err, what);
	if (st != STORE_OK)
		return st;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return store_fail(err, STORE_NOT_FOUND, "no such export job");
	}
	if (out)
		*out = r;
	else
		PQclear(r);
	return STORE_OK;
}

static void num(char out[24], int64_t v) { snprintf(out, 24, "%lld", (long long)v); }

/* Whether a statement outside a transaction failed (st) only because this
 * thread's connection was lost since its last statement (the server
 * restarted) and the connection is made again: a statement that reads, or
 * that does the same when run twice, then runs once more, so a job's
 * status asked just after the restart is not answered "no such job". */
static bool reconnected(struct store *s, struct pgconn *c, enum store_status st)
{
	if (st != STORE_BUSY || c->in_txn || PQstatus(c->db) == CONNECTION_OK)
		return false;
	return pgs_get_conn(pgs_of(s), NULL) == c && PQstatus(c->db) == CONNECTION_OK;
}

static enum store_status job_add(struct store *s, const char *id, const char *rec, int64_t created_ms,
				 uint64_t max_jobs, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	char cr[24], mx[24];
	num(cr, created_ms);
	num(mx, (int64_t)max_jobs);
	const char *v[] = {id, rec, cr, mx};
	enum store_status st =
		exec_row(c,
			 "INSERT INTO bulk_job(id, rec, state, progress, created) SELECT $1, $2, 'queued',"
			 " 'queued', $3 WHERE (SELECT count(*) FROM bulk_job) < $4::bigint RETURNING 1",
			 4, v, NULL, err, "recording an export job");
	return st == STORE_NOT_FOUND ? store_fail(err, STORE_CONFLICT, "too many export jobs are kept") : st;
}

#define JOB_COLS "rec, state, progress, finished"

static enum store_status job_get(struct store *s, const char *id, struct store_job *out, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	PGresult *r;
	const char *v[] = {id};
	static const char sql[] = "SELECT " JOB_COLS " FROM bulk_job WHERE id = $1";
	enum store_status st = exec_row(c, sql, 1, v, &r, err, "reading an export job");
	if (reconnected(s, c, st))
		st = exec_row(c, sql, 1, v, &r, err, "reading an export job");
	if (st == STORE_OK) {
		st = job_row(r, 0, out, err);
		PQclear(r);
	}
	return st;
}

static enum store_status job_claim(struct store *s, int64_t now_ms, char id[STORE_ID_SIZE], struct store_job *out,
				   struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	struct pg_store *ps = pgs_of(s);
	char me[24], now[24], until[24];
	num(me, ps->instance);
	num(now, now_ms);
	num(until, now_ms + ps->lease_ms);
	const char *v[] = {me, now, until};
	PGresult *r;
	enum store_status st =
		exec_row(c,
			 "UPDATE bulk_job SET state = 'running', owner = $1, lease_until = $3, progress = 'starting'"
			 " WHERE id = (SELECT id FROM bulk_job WHERE state = 'queued' OR (state = 'running' AND "
			 "lease_until < $2)"
			 " ORDER BY created LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, " JOB_COLS,
			 3, v, &r, err, "taking an export job");
	if (st == STORE_OK) {
		snprintf(id, STORE_ID_SIZE, "%s", PQgetvalue(r, 0, 0));
		st = job_row(r, 1, out, err);
		PQclear(r);
	}
	return st;
}

static enum store_status job_renew(struct store *s, const char *id, int64_t now_ms, const char *progress,
				   struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	struct pg_store *ps = pgs_of(s);
	char me[24], until[24];
	num(me, ps->instance);
	num(until, now_ms + ps->lease_ms);
	const char *v[] = {id, me, until, progress};
	static const char sql[] = "UPDATE bulk_job SET lease_until = $3, progress = $4 WHERE id = $1 AND owner = $2"
				  " AND state = 'running' RETURNING 1";
	enum store_status st = exec_row(c, sql, 4, v, NULL, err, "renewing an export job's lease");
	if (reconnected(s, c, st))
		st = exec_row(c, sql, 4, v, NULL, err, "renewing an export job's lease");
	return st;
}

/* Stores the file read from fd in chunks of job id (inside the caller's
 * transaction). */
static enum store_status put_file(struct pgconn *c, const char *id, const struct store_job_file *f, char *buf,
				  struct store_error *err)
{
	if (lseek(f->fd, 0, SEEK_SET) < 0)
		return store_fail(err, STORE_IO, "reading export file %s: %s", f->name, strerror(errno));
	enum store_status st = STORE_OK;
	for (int n = 0; st == STORE_OK; n++) {
		size_t len = 0;
		while (len < CHUNK_BYTES) {
			ssize_t k = read(f->fd, buf + len, CHUNK_BYTES - len);
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return store_fail(err, STORE_IO, "reading export file %s: %s", f->name,
						  strerror(errno));
			if (k == 0)
				break;
			len += (size_t)k;
		}
		if (len == 0 && n > 0)
			break;
		char nn[24];
		num(nn, n);
		const char *v[] = {id, f->name, nn, buf};
		const int lens[] = {0, 0, 0, (int)len};
		const int fmts[] = {0, 0, 0, 1};
		st = pgs_result(c,
				PQexecParams(c->db, "INSERT INTO bulk_chunk(job, name, n, data) VALUES($1, $2, $3, $4)",
					     4, NULL, v, lens, fmts, 0),
				NULL, err, "storing an export file");
		if (len < CHUNK_BYTES)
			break;
	}
	return st;
}

static enum store_status job_finish(struct store *s, const char *id, const char *state, const char *rec,
				    int64_t finished_ms, const struct store_job_file *files, size_t n,
				    struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	struct pg_store *ps = pgs_of(s);
	char me[24], fin[24];
	num(me, ps->instance);
	num(fin, finished_ms);
	char *buf = n ? malloc(CHUNK_BYTES) : NULL;
	if (n && !buf)
		return store_fail(err, STORE_NO_MEMORY, "out of memory");
	enum store_status st = pgs_run(c, "BEGIN", err, "finishing an export job");
	if (st == STORE_OK) {
		const char *v[] = {id, me, state, rec, fin};
		st = exec_row(c,
			      "UPDATE bulk_job SET state = $3, rec = $4, finished = $5, progress = '', owner = 0,"
			      " lease_until = 0 WHERE id = $1 AND owner = $2 AND state = 'running' RETURNING 1",
			      5, v, NULL, err, "finishing an export job");
	}
	if (st == STORE_OK) {
		const char *v[] = {id};
		st = pgs_exec(c, "DELETE FROM bulk_chunk WHERE job = $1", 1, v, NULL, NULL, err,
			      "finishing an export job");
	}
	for (size_t i = 0; i < n && st == STORE_OK; i++)
		st = put_file(c, id, &files[i], buf, err);
	if (st == STORE_OK)
		st = pgs_run(c, "COMMIT", err, "finishing an export job");
	else
		pgs_run(c, "ROLLBACK", NULL, "finishing an export job");
	free(buf);
	return st;
}

static enum store_status job_unclaim(struct store *s, const char *id, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	char me[24];
	num(me, pgs_of(s)->instance);
	const char *v[] = {id, me};
	return pgs_exec(c,
			"UPDATE bulk_job SET state = 'queued', owner = 0, lease_until = 0, progress = 'queued'"
			" WHERE id = $1 AND owner = $2 AND state = 'running'",
			2, v, NULL, NULL, err, "putting an export job back");
}

static enum store_status job_remove(struct store *s, const char *id, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	const char *v[] = {id};
	return exec_row(c, "DELETE FROM bulk_job WHERE id = $1 RETURNING 1", 1, v, NULL, err, "removing an export job");
}

static enum store_status job_expire(struct store *s, int64_t before_ms, struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	char b[24];
	num(b, before_ms);
	const char *v[] = {b};
	return pgs_exec(c, "DELETE FROM bulk_job WHERE state IN ('complete', 'failed') AND finished < $1", 1, v, NULL,
			NULL, err, "removing expired export jobs");
}

static enum store_status job_file(struct store *s, const char *id, const char *name, store_chunk_fn *fn, void *ctx,
				  struct store_error *err)
{
	PGS_GET_CONN(c, s, err);
	enum store_status st = STORE_OK;
	bool again = true; /* the first chunk may be asked once more (reconnected) */
	for (int n = 0; st == STORE_OK; n++) {
		char nn[24];
		num(nn, n);
		const char *v[] = {id, name, nn};
		PGresult *r;
		st = pgs_result(c,
				PQexecParams(c->db,
					     "SELECT data FROM bulk_chunk WHERE job = $1 AND name = $2 AND n = $3", 3,
					     NULL, v, NULL, NULL, 1),
				&r, err, "reading an export file");
		if (n == 0 && again && reconnected(s, c, st)) {
			again = false;
			n = -1; /* the first chunk again */
			st = STORE_OK;
			continue;
		}
		if (st != STORE_OK)
			break;
		if (PQntuples(r) == 0) {
			PQclear(r);
			if (n == 0)
				st = store_fail(err, STORE_NOT_FOUND, "no such export file");
			break;
		}
		int stop = fn(ctx, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
		PQclear(r);
		if (stop)
			break;
	}
	return st;
}

const struct store_job_ops pgs_job_ops = {
	.add = job_add,
	.get = job_get,
	.claim = job_claim,
	.renew = job_renew,
	.finish = job_finish,
	.unclaim = job_unclaim,
	.remove = job_remove,
	.expire = job_expire,
	.file = job_file,
};
