/* store_pg_audit — the access records on PostgreSQL: one append-only,
 * hash-chained log shared by every gateway on the database, and
 * `crosswalk check` of a PostgreSQL store (docs/audit.md, "PostgreSQL").
 *
 * An access record (an AuditEvent) is stored as a create, in the commit
 * group of the gateway that answered (the answer leaves after that
 * COMMIT). Schema 6 adds the chain beside it:
 *
 *   audit_chain(seq, vseq, sum, hash): one row per AuditEvent version, seq
 *   1, 2, 3, … over the whole database; vseq the version row; sum that
 *   version's checksum (which covers its type, id, version, lastUpdated and
 *   text); hash = SHA-256(previous row's hash || sum), the first row's
 *   previous hash being 32 zero bytes.
 *   audit_pending(vseq): the records stored and not linked yet.
 *
 * A trigger on version adds every AuditEvent version to audit_pending in
 * the transaction that stores it (one small row: the commit holding records
 * waits for nothing else). Linking is the committers' idle work
 * (pgs_audit_seal, after every group and when the queue is idle): one
 * transaction under the advisory lock PGS_LOCK_AUDIT, shared by every
 * gateway, reads the head of the chain, appends what is pending in the
 * order it was stored and removes it from audit_pending. Its commit need
 * not wait for the flush: lost in a crash, the records are still pending and
 * the next link takes them. So the chain's order is the order the records
 * were linked in, one order across all gateways, and no write waits on the
 * lock. Every path that stores an AuditEvent (the commit queue, the spool's
 * import, a transaction) goes through the same trigger.
 *
 * Append-only: BEFORE UPDATE/DELETE triggers on audit_chain and on the
 * AuditEvent rows of version and resource, and BEFORE TRUNCATE on
 * audit_chain, refuse the change (SQLSTATE 42501). The gateway never asks
 * for one; the triggers stop anything else using the gateway's role. A
 * database superuser can still turn triggers off: the chain is what makes
 * such a change evident to store_check_pg. */
#include "store/store_pg_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/crypto.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* The genesis hash, as bytea; the lock's key as SQL text. */
#define ZERO_HASH "decode(repeat('00', 32), 'hex')"
#define LOCK_AUDIT STR(PGS_LOCK_AUDIT)

static const char audit_sql[] =
	"CREATE TABLE IF NOT EXISTS audit_chain(seq bigint PRIMARY KEY, vseq bigint NOT NULL UNIQUE,"
	" sum bytea NOT NULL, hash bytea NOT NULL);"
	"CREATE TABLE IF NOT EXISTS audit_pending(vseq bigint PRIMARY KEY);"
	/* links what is pending in the order it was stored; without wait, -1
	 * when another transaction is linking */
	"CREATE OR REPLACE FUNCTION cw_audit_seal(wait boolean) RETURNS bigint LANGUAGE plpgsql AS $f$"
	" DECLARE v record; s bigint; h bytea; n bigint := 0; BEGIN"
	" IF wait THEN PERFORM pg_advisory_xact_lock(" LOCK_AUDIT ");"
	" ELSIF NOT pg_try_advisory_xact_lock(" LOCK_AUDIT ") THEN RETURN -1; END IF;"
	" SELECT seq, hash INTO s, h FROM audit_chain ORDER BY seq DESC LIMIT 1;"
	" IF s IS NULL THEN s := 0; h := " ZERO_HASH "; END IF;"
	" FOR v IN SELECT p.vseq, coalesce(x.sum, ''::bytea) AS sum FROM audit_pending p"
	"  JOIN version x ON x.seq = p.vseq ORDER BY p.vseq LOOP"
	"  s := s + 1; h := sha256(h || v.sum); n := n + 1;"
	"  INSERT INTO audit_chain(seq, vseq, sum, hash) VALUES(s, v.vseq, v.sum, h);"
	" END LOOP;"
	" DELETE FROM audit_pending p USING audit_chain a WHERE a.vseq = p.vseq;"
	" RETURN n; END $f$;"
	/* the records stored before this schema, in the order they were stored */
	"INSERT INTO audit_pending(vseq) SELECT seq FROM version v WHERE type = 'AuditEvent' AND NOT EXISTS"
	" (SELECT 1 FROM audit_chain a WHERE a.vseq = v.seq) ON CONFLICT DO NOTHING;"
	"CREATE OR REPLACE FUNCTION cw_audit_link() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN"
	" INSERT INTO audit_pending(vseq) VALUES(NEW.seq); RETURN NULL; END $f$;"
	"CREATE OR REPLACE FUNCTION cw_audit_keep() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN"
	" RAISE EXCEPTION 'access records are append-only (% on %)', TG_OP, TG_TABLE_NAME"
	" USING ERRCODE = '42501'; END $f$;"
	"DROP TRIGGER IF EXISTS cw_audit_link ON version;"
	"CREATE TRIGGER cw_audit_link AFTER INSERT ON version"
	" FOR EACH ROW WHEN (NEW.type = 'AuditEvent') EXECUTE FUNCTION cw_audit_link();"
	"DROP TRIGGER IF EXISTS cw_audit_keep ON audit_chain;"
	"CREATE TRIGGER cw_audit_keep BEFORE UPDATE OR DELETE ON audit_chain"
	" FOR EACH ROW EXECUTE FUNCTION cw_audit_keep();"
	"DROP TRIGGER IF EXISTS cw_audit_keep_all ON audit_chain;"
	"CREATE TRIGGER cw_audit_keep_all BEFORE TRUNCATE ON audit_chain"
	" FOR EACH STATEMENT EXECUTE FUNCTION cw_audit_keep();"
	"DROP TRIGGER IF EXISTS cw_audit_keep ON version;"
	"CREATE TRIGGER cw_audit_keep BEFORE UPDATE OR DELETE ON version"
	" FOR EACH ROW WHEN (OLD.type = 'AuditEvent') EXECUTE FUNCTION cw_audit_keep();"
	"DROP TRIGGER IF EXISTS cw_audit_keep ON resource;"
	"CREATE TRIGGER cw_audit_keep BEFORE UPDATE OR DELETE ON resource"
	" FOR EACH ROW WHEN (OLD.type = 'AuditEvent') EXECUTE FUNCTION cw_audit_keep();"
	"SELECT cw_audit_seal(true);";

enum store_status pgs_audit_upgrade(struct pgconn *c, struct store_error *err)
{
	return pgs_run_script(c, audit_sql, err, "adding the chain of access records");
}

bool pgs_audit_seal(void *ctx, bool busy)
{
	struct pg_store *ps = ctx;
	struct store_error e;
	struct pgconn *c = pgs_get_conn(ps, &e);
	if (!c)
		return false; /* the next group tries again */
	PGresult *r = PQexec(c->db, busy ? "BEGIN; SET LOCAL synchronous_commit = off; SELECT cw_audit_seal(false)"
					 : "BEGIN; SET LOCAL synchronous_commit = off; SELECT cw_audit_seal(true)");
	/* busy and another committer linking: again once the queue is idle */
	bool again = busy && r && PQresultStatus(r) == PGRES_TUPLES_OK && pgs_int(r, 0, 0) < 0;
	PQclear(r);
	pgs_run(c, PQtransactionStatus(c->db) == PQTRANS_INTRANS ? "COMMIT" : "ROLLBACK", NULL,
		"linking access records");
	return again;
}

/* --- crosswalk check ---------------------------------------------------------------------- */

#define SAY_MAX 50 /* lines per kind of finding; the rest are counted */
#define BATCH 1000 /* rows fetched at a time */

struct pcheck {
	struct pgconn c;
	struct store_say out; /* the findings */
	size_t problems;
	char *err;
	size_t errlen;
};

/* A query the check cannot go on without; -1 with the reason in k->err. */
static int must(struct pcheck *k, const char *sql, PGresult **out)
{
	struct store_error e;
	if (pgs_exec(&k->c, sql, 0, NULL, NULL, out, &e, "checking the store") != STORE_OK) {
		snprintf(k->err, k->errlen, "%s", e.message);
		return -1;
	}
	return 0;
}

/* Runs a cursor over sql, calling row(k, r, i) on every row; -1 when a
 * fetch fails. */
static int each_row(struct pcheck *k, const char *name, const char *sql,
		    void (*row)(struct pcheck *k, const PGresult *r, int i, void *ctx), void *ctx)
{
	char q[2048];
	snprintf(q, sizeof q, "DECLARE %s NO SCROLL CURSOR FOR %s", name, sql);
	if (must(k, q, NULL) != 0)
		return -1;
	snprintf(q, sizeof q, "FETCH %d FROM %s", BATCH, name);
	for (;;) {
		PGresult *r = NULL;
		if (must(k, q, &r) != 0)
			return -1;
		int n = PQntuples(r);
		for (int i = 0; i < n; i++)
			row(k, r, i, ctx);
		PQclear(r);
		if (n < BATCH)
			break;
	}
	snprintf(q, sizeof q, "CLOSE %s", name);
	return must(k, q, NULL);
}

struct versions {
	size_t n, damaged;
};

static void version_row(struct pcheck *k, const PGresult *r, int i, void *ctx)
{
	struct versions *v = ctx;
	v->n++;
	const char *type = pgs_val(r, i, 0), *id = pgs_val(r, i, 1), *when = pgs_val(r, i, 3);
	const char *body = pgs_val(r, i, 4), *hex = pgs_val(r, i, 5);
	int64_t version = pgs_int(r, i, 2);
	uint8_t want[SVER_SUM_LEN];
	char want_hex[2 * SVER_SUM_LEN + 3];
	if (hex && type && id &&
	    sver_sum(type, id, version, when, body, body ? (size_t)PQgetlength(r, i, 4) : 0, want) == 0) {
		pgs_sum_hex(want, want_hex);
		if (strcmp(hex, want_hex) == 0)
			return;
	}
	if (++v->damaged <= SAY_MAX)
		store_sayf(&k->out, "version: %s/%s version %lld (row %s) fails its checksum; restore it from a backup",
			   type ? type : "?", id ? id : "?", (long long)version, pgs_val(r, i, 6));
}

/* 1. Every version against its checksum. */
static int check_versions(struct pcheck *k)
{
	struct versions v = {0};
	if (each_row(k, "cw_versions",
		     "SELECT type, id, version, last_updated, body, sum, seq FROM version ORDER BY seq", version_row,
		     &v) != 0)
		return -1;
	if (v.damaged > SAY_MAX)
		store_sayf(&k->out, "version: ... %zu damaged versions in all", v.damaged);
	k->problems += v.damaged;
	store_sayf(&k->out, "versions: %zu checked, %zu damaged", v.n, v.damaged);
	return 0;
}

/* Lists the rows a query finds (one line each, after what), counted as
 * problems. */
static int list_rows(struct pcheck *k, const char *sql, const char *what, const char *fix)
{
	PGresult *r = NULL;
	if (must(k, sql, &r) != 0)
		return -1;
	int n = PQntuples(r);
	for (int i = 0; i < n && i < SAY_MAX; i++)
		store_sayf(&k->out, "%s: %s", what, PQgetvalue(r, i, 0));
	int64_t total = n ? pgs_int(r, 0, 1) : 0;
	if (total > SAY_MAX)
		store_sayf(&k->out, "%s: ... %lld in all", what, (long long)total);
	if (total)
		store_sayf(&k->out, "%s: %s", what, fix);
	PQclear(r);
	k->problems += (size_t)total;
	return 0;
}

/* 2. The rows the dropped foreign keys used to keep whole: versions and
 * index rows of no resource, resources without their current version. */
static int check_rows(struct pcheck *k)
{
	if (list_rows(k,
		      "SELECT format('row %s: %s/%s version %s has no resource row (rid %s)', v.seq, v.type, v.id,"
		      " v.version, v.rid), count(*) OVER () FROM version v WHERE NOT EXISTS (SELECT 1 FROM resource r"
		      " WHERE r.rid = v.rid AND r.type = v.type AND r.id = v.id) ORDER BY v.seq LIMIT " STR(SAY_MAX),
		      "orphan version", "restore the resource rows from a backup") != 0)
		return -1;
	if (list_rows(k,
		      "SELECT format('rid %s: %s index rows', i.rid, count(*)), count(*) OVER () FROM idx i"
		      " WHERE NOT EXISTS (SELECT 1 FROM resource r WHERE r.rid = i.rid) GROUP BY i.rid ORDER BY i.rid"
		      " LIMIT " STR(SAY_MAX),
		      "orphan index rows", "run `crosswalk check --repair` to remove them") != 0)
		return -1;
	return list_rows(k,
			 "SELECT format('%s/%s (rid %s): version %s is not stored', r.type, r.id, r.rid, r.version),"
			 " count(*) OVER () FROM resource r WHERE NOT EXISTS (SELECT 1 FROM version v"
			 " WHERE v.rid = r.rid AND v.version = r.version) ORDER BY r.rid LIMIT " STR(SAY_MAX),
			 "resource", "restore its versions from a backup");
}

struct chain {
	int64_t next;                    /* the seq expected */
	uint8_t prev[CRYPTO_SHA256_LEN]; /* the hash of the row before */
	size_t n, broken;
	char head[2 * CRYPTO_SHA256_LEN + 1];
};

static bool unhex(const char *hex, uint8_t *out, size_t n)
{
	if (!hex || strncmp(hex, "\\x", 2) != 0 || strlen(hex + 2) != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned b;
		if (sscanf(hex + 2 + 2 * i, "%2x", &b) != 1)
			return false;
		out[i] = (uint8_t)b;
	}
	return true;
}

static void chain_broken(struct pcheck *k, struct chain *ch, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void chain_broken(struct pcheck *k, struct chain *ch, const char *fmt, ...)
{
	if (++ch->broken > SAY_MAX)
		return;
	char line[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	store_sayf(&k->out, "access record chain: %s", line);
}

/* a.seq, a.vseq, a.sum, a.hash, v.type, v.id, v.sum */
static void chain_row(struct pcheck *k, const PGresult *r, int i, void *ctx)
{
	struct chain *ch = ctx;
	int64_t seq = pgs_int(r, i, 0);
	const char *id = pgs_val(r, i, 5);
	ch->n++;
	if (seq != ch->next)
		chain_broken(k, ch, "position %lld follows %lld (records removed or inserted)", (long long)seq,
			     (long long)ch->next - 1);
	ch->next = seq + 1;
	size_t sum_len = (size_t)(PQgetlength(r, i, 2) > 2 ? (PQgetlength(r, i, 2) - 2) / 2 : 0);
	uint8_t sum[SVER_SUM_LEN], hash[CRYPTO_SHA256_LEN], want[CRYPTO_SHA256_LEN];
	bool ok = sum_len <= SVER_SUM_LEN && (sum_len == 0 || unhex(pgs_val(r, i, 2), sum, sum_len)) &&
		  unhex(pgs_val(r, i, 3), hash, sizeof hash) &&
		  crypto_sha256_pair(ch->prev, sizeof ch->prev, sum, sum_len, want) == 0;
	if (!ok || memcmp(want, hash, sizeof hash) != 0)
		chain_broken(k, ch,
			     "position %lld (AuditEvent/%s): its hash is not that of the record before and its own",
			     (long long)seq, id ? id : "?");
	if (!pgs_val(r, i, 4))
		chain_broken(k, ch, "position %lld: its record (version row %s) is not stored", (long long)seq,
			     pgs_val(r, i, 1));
	else if (strcmp(pgs_val(r, i, 4), "AuditEvent") != 0 || !pgs_val(r, i, 6) ||
		 strcmp(pgs_val(r, i, 6), pgs_val(r, i, 2)) != 0)
		chain_broken(k, ch, "position %lld (AuditEvent/%s): the stored record is not the one chained",
			     (long long)seq, id ? id : "?");
	if (ok)
		memcpy(ch->prev, hash, sizeof hash);
	else /* go on from the stored hash: one damaged row is one finding */
		unhex(pgs_val(r, i, 3), ch->prev, sizeof ch->prev);
	snprintf(ch->head, sizeof ch->head, "%s", pgs_val(r, i, 3) ? pgs_val(r, i, 3) + 2 : "");
}

/* 3. The chain of access records, and every AuditEvent on it. */
static int check_chain(struct pcheck *k)
{
	struct chain ch = {.next = 1};
	if (each_row(k, "cw_chain",
		     "SELECT a.seq, a.vseq, a.sum, a.hash, v.type, v.id, v.sum FROM audit_chain a"
		     " LEFT JOIN version v ON v.seq = a.vseq ORDER BY a.seq",
		     chain_row, &ch) != 0)
		return -1;
	if (ch.broken > SAY_MAX)
		store_sayf(&k->out, "access record chain: ... %zu findings in all", ch.broken);
	k->problems += ch.broken;
	if (list_rows(k,
		      "SELECT format('waiting record %s has no stored version', p.vseq), count(*) OVER ()"
		      " FROM audit_pending p WHERE NOT EXISTS (SELECT 1 FROM version v WHERE v.seq = p.vseq"
		      " AND v.type = 'AuditEvent') ORDER BY p.vseq LIMIT " STR(SAY_MAX),
		      "access record chain", "restore from a backup") != 0)
		return -1;
	PGresult *r = NULL;
	if (must(k, "SELECT count(*) FROM audit_pending", &r) != 0)
		return -1;
	int64_t waiting = pgs_int(r, 0, 0);
	PQclear(r);
	if (list_rows(
		    k,
		    "SELECT format('AuditEvent/%s (version row %s) is not on the chain', v.id, v.seq), count(*) OVER ()"
		    " FROM version v WHERE v.type = 'AuditEvent' AND NOT EXISTS (SELECT 1 FROM audit_chain a"
		    " WHERE a.vseq = v.seq) AND NOT EXISTS (SELECT 1 FROM audit_pending p WHERE p.vseq = v.seq)"
		    " ORDER BY v.seq LIMIT " STR(SAY_MAX),
		    "access record chain",
		    "a record off the chain (its link removed, or stored around the gateway): restore from a backup") !=
	    0)
		return -1;
	store_sayf(&k->out, "access records chained: %zu, %zu findings; head %lld %s; %lld waiting to be chained", ch.n,
		   ch.broken, (long long)ch.next - 1, ch.n ? ch.head : "-", (long long)waiting);
	return 0;
}

static int repair(struct pcheck *k)
{
	PGresult *r = NULL;
	if (must(k,
		 "WITH d AS (DELETE FROM idx i WHERE NOT EXISTS (SELECT 1 FROM resource r WHERE r.rid = i.rid)"
		 " RETURNING 1) SELECT count(*) FROM d",
		 &r) != 0)
		return -1;
	store_sayf(&k->out, "repair: %lld orphan index rows removed", (long long)pgs_int(r, 0, 0));
	PQclear(r);
	return 0;
}

int store_check_pg(const char *conninfo, unsigned flags, void (*say)(void *ctx, const char *line), void *ctx, char *err,
		   size_t errlen)
{
	if (crypto_init() != 0) {
		snprintf(err, errlen, "the crypto library could not be initialised");
		return -1;
	}
	struct pcheck k = {.out = {say, ctx}, .err = err, .errlen = errlen};
	if (!conninfo || !conninfo[0]) {
		snprintf(err, errlen, "no PostgreSQL connection string given (store.postgresql.conninfo)");
		return -1;
	}
	k.c.db = PQconnectdb(conninfo);
	if (!k.c.db || PQstatus(k.c.db) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
			 k.c.db ? PQerrorMessage(k.c.db) : "out of memory");
		PQfinish(k.c.db);
		return -1;
	}
	int rc = -1;
	PGresult *r = NULL;
	if (must(&k, "SELECT to_regclass('cw_schema') IS NOT NULL", &r) != 0)
		goto out;
	bool have = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (!have) {
		snprintf(err, errlen, "the database holds no store (no table cw_schema)");
		goto out;
	}
	if (must(&k, "SELECT coalesce(max(version), 0) FROM cw_schema", &r) != 0)
		goto out;
	int64_t version = pgs_int(r, 0, 0);
	PQclear(r);
	if (version != 6) { /* PG_SCHEMA_VERSION */
		snprintf(err, errlen,
			 "the store's schema is version %lld, this build checks version 6: start a gateway of this "
			 "build on it first (an older schema is upgraded) or use the build that wrote it",
			 (long long)version);
		goto out;
	}
	/* one snapshot: gateways may keep running beside the check */
	if (must(&k, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL) != 0 || check_versions(&k) != 0 ||
	    check_rows(&k) != 0 || check_chain(&k) != 0 || must(&k, "COMMIT", NULL) != 0)
		goto out;
	if ((flags & STORE_CHECK_REPAIR) && k.problems) {
		size_t before = k.problems;
		k.problems = 0;
		if (repair(&k) != 0 || must(&k, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL) != 0 ||
		    check_versions(&k) != 0 || check_rows(&k) != 0 || check_chain(&k) != 0 ||
		    must(&k, "COMMIT", NULL) != 0)
			goto out;
		store_sayf(&k.out, "repair: %zu problems before, %zu after", before, k.problems);
	}
	if (k.problems)
		store_sayf(&k.out, "%zu problems found", k.problems);
	else
		store_sayf(&k.out, "no problems found");
	rc = k.problems ? 1 : 0;
out:
	PQfinish(k.c.db);
	return rc;
}
