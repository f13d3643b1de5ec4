/* store_sqlite_check — `crosswalk check` on the SQLite store
 * (store_check_sqlite in store.h): what is checked and what a repair
 * rebuilds.
 *
 * Checked, with the directory's lock held (no gateway runs on it):
 *   1. PRAGMA integrity_check: the file's structure, every table and index;
 *   2. every version row against its checksum (sver_sum), and every record
 *      of the log of appended records not indexed yet against its own;
 *   3. the resource rows against what the versions say (each resource's
 *      newest version: its number, whether it is a deletion, lastUpdated);
 *   4. the search index (table idx) against what the stored current
 *      versions index (search_params_extract), both ways.
 * Derived, so rebuilt by a repair: SQLite's own indexes, the resource rows
 * and the search index. Not derived: the stored versions (a damaged one is
 * named; the gateway keeps refusing to serve it until the store is
 * restored from a backup), the outbox and the marks.
 *
 * The repair writes a fresh database beside the damaged one
 * (store.db.repair): the version, outbox (with its references) and mark
 * rows copied as they are, the resource rows and the search index built anew from the versions (a
 * damaged version's resource keeps the index rows it had, so its searches
 * keep answering the integrity failure). The fresh file is checked, then
 * takes store.db's place; the damaged file is kept beside it as
 * store.db.before-repair-TIME. A table of stored data that cannot be read
 * to its end fails the repair, and nothing is replaced. */
#include "store/store_sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/fjson.h"

#define SAY_MAX 50 /* lines per kind of finding; the rest are counted */

struct check {
	sqlite3 *db;
	struct store_say out; /* the findings */
	size_t structure;     /* integrity_check findings */
	size_t damaged;       /* versions failing their checksum */
	size_t resources;     /* resource rows differing from their versions */
	size_t index;         /* search index rows missing or extra */
	bool unreadable;      /* the versions cannot be read to their end */
	size_t logged;        /* appended records failing their checksum */
	bool log_cut;         /* the log of appended records cannot be read to its end */
};

static const char *text_or(sqlite3_stmt *q, int col, const char *dflt)
{
	const char *t = (const char *)sqlite3_column_text(q, col);
	return t ? t : dflt;
}

/* The one number a query answers; -1 when it fails. */
static int64_t one_number(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *q = NULL;
	int64_t n = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return n;
}

/* 1. The file's structure. */
static void check_structure(struct check *k)
{
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(k->db, "PRAGMA integrity_check(200)", -1, &q, NULL);
	while ((rc == SQLITE_OK || rc == SQLITE_ROW) && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *m = text_or(q, 0, "");
		if (strcmp(m, "ok") == 0)
			continue;
		static const char prefix[] = "*** in database main ***\n";
		if (strncmp(m, prefix, sizeof prefix - 1) == 0)
			m += sizeof prefix - 1;
		if (++k->structure <= SAY_MAX)
			store_sayf(&k->out, "structure: %s", m);
	}
	if (rc != SQLITE_DONE) {
		k->structure++;
		store_sayf(&k->out, "structure: the check could not finish: %s", sqlite3_errmsg(k->db));
	}
	sqlite3_finalize(q);
	if (k->structure > SAY_MAX)
		store_sayf(&k->out, "structure: ... %zu findings in all", k->structure);
}

/* 2. Every version against its checksum; the damaged ones go to
 * temp.damaged. */
static void check_versions(struct check *k)
{
	sqlite3_stmt *q = NULL, *ins = NULL;
	int rc = sqlite3_exec(k->db, "CREATE TEMP TABLE damaged(rid INTEGER, version INTEGER)", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(k->db, "INSERT INTO temp.damaged(rid, version) VALUES(?1, ?2)", -1, &ins, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(k->db,
					"SELECT rid, type, id, version, last_updated, body, sum FROM main.version", -1,
					&q, NULL);
	size_t rows = 0;
	while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		rows++;
		const char *type = text_or(q, 1, "?"), *id = text_or(q, 2, "?");
		const char *body = (const char *)sqlite3_column_text(q, 5);
		int64_t version = sqlite3_column_int64(q, 3);
		if (ss_sum_ok(q, 6, type, id, version, (const char *)sqlite3_column_text(q, 4), body,
			      (size_t)sqlite3_column_bytes(q, 5))) {
			rc = SQLITE_OK;
			continue;
		}
		if (++k->damaged <= SAY_MAX)
			store_sayf(&k->out, "damaged: %s/%s version %lld: its stored content fails its checksum", type,
				   id, (long long)version);
		sqlite3_bind_int64(ins, 1, sqlite3_column_int64(q, 0));
		sqlite3_bind_int64(ins, 2, version);
		rc = sqlite3_step(ins);
		sqlite3_reset(ins);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		k->unreadable = true;
		store_sayf(&k->out, "damaged: the stored versions cannot be read to their end (%s, after %zu rows)",
			   sqlite3_errmsg(k->db), rows);
	}
	sqlite3_finalize(q);
	sqlite3_finalize(ins);
	if (k->damaged > SAY_MAX)
		store_sayf(&k->out, "damaged: ... %zu damaged versions in all", k->damaged);
}

/* What the resource rows are, derived from the versions: each resource's
 * newest version. */
#define DERIVED_RESOURCES                                                                           \
	"SELECT v.rid, v.type, v.id, v.version, v.body IS NULL, v.last_updated FROM main.version v" \
	" JOIN (SELECT rid, max(version) AS top FROM main.version GROUP BY rid) m"                  \
	" ON m.rid = v.rid AND v.version = m.top"
#define STORED_RESOURCES "SELECT rid, type, id, version, deleted <> 0, last_updated FROM main.resource"

/* 3. The resource rows against their versions. */
static void check_resources(struct check *k)
{
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(k->db,
				    "SELECT 'differs from its versions', type, id FROM (" STORED_RESOURCES
				    " EXCEPT " DERIVED_RESOURCES
				    ") UNION ALL SELECT 'is missing', type, id FROM (" DERIVED_RESOURCES
				    ") d WHERE d.rid NOT IN (SELECT rid FROM main.resource)",
				    -1, &q, NULL);
	while ((rc == SQLITE_OK || rc == SQLITE_ROW) && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (++k->resources <= SAY_MAX)
			store_sayf(&k->out, "resources: the row of %s/%s %s (rebuilt by --repair)", text_or(q, 1, "?"),
				   text_or(q, 2, "?"), text_or(q, 0, ""));
	}
	if (rc != SQLITE_DONE) {
		k->resources++;
		store_sayf(
			&k->out,
			"resources: the resource rows cannot be compared with the versions (%s; rebuilt by --repair)",
			sqlite3_errmsg(k->db));
	}
	sqlite3_finalize(q);
	if (k->resources > SAY_MAX)
		store_sayf(&k->out, "resources: ... %zu rows in all", k->resources);
}

/* 4. What the current versions index, into temp.expect; the resources whose
 * current version is damaged into temp.skip. 0, or -1 when it could not be
 * worked out. */
static int expected_index(struct check *k)
{
	sqlite3_stmt *q = NULL;
	struct index_ctx x = {0};
	int rc = sqlite3_exec(k->db,
			      "CREATE TEMP TABLE expect(rid INTEGER NOT NULL, param TEXT NOT NULL, sys TEXT, val TEXT,"
			      " lo INTEGER, hi INTEGER);"
			      "CREATE TEMP TABLE skip(rid INTEGER PRIMARY KEY);"
			      "INSERT OR IGNORE INTO temp.skip SELECT d.rid FROM temp.damaged d"
			      " JOIN (SELECT rid, max(version) AS top FROM main.version GROUP BY rid) m"
			      " ON m.rid = d.rid AND d.version = m.top;",
			      NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(
			k->db, "INSERT INTO temp.expect(rid, param, sys, val, lo, hi) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
			-1, &x.ins, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(k->db,
					"SELECT v.rid, v.type, v.body FROM main.version v"
					" JOIN (SELECT rid, max(version) AS top FROM main.version GROUP BY rid) m"
					" ON m.rid = v.rid AND v.version = m.top"
					" WHERE v.body IS NOT NULL AND v.rid NOT IN (SELECT rid FROM temp.skip)",
					-1, &q, NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		cJSON *res = NULL;
		if (sver_parse((const char *)sqlite3_column_text(q, 2), sqlite3_column_bytes(q, 2), &res, NULL) !=
		    STORE_OK) {
			store_sayf(&k->out, "index: a stored resource (%s) cannot be read back to index it",
				   text_or(q, 1, "?"));
			rc = SQLITE_ERROR;
			break;
		}
		x.rid = sqlite3_column_int64(q, 0);
		int r = search_params_extract(text_or(q, 1, ""), res, ss_index_row, &x);
		cJSON_Delete(res);
		if (r != 0) {
			store_sayf(&k->out, "index: indexing a stored resource failed: %s",
				   x.rc ? sqlite3_errmsg(k->db) : "out of memory");
			rc = SQLITE_ERROR;
			break;
		}
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ERROR)
		store_sayf(&k->out, "index: what the stored resources index could not be worked out: %s",
			   sqlite3_errmsg(k->db));
	sqlite3_finalize(q);
	sqlite3_finalize(x.ins);
	return rc == SQLITE_DONE ? 0 : -1;
}

#define INDEX_COLS "rid, param, sys, val, lo, hi"

/* 4. The search index against what the stored resources index. */
static int check_index(struct check *k)
{
	if (expected_index(k) != 0)
		return -1;
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(
		k->db,
		"SELECT d.what, d.n, r.type, r.id FROM ("
		" SELECT 'missing' AS what, rid, count(*) AS n FROM (SELECT " INDEX_COLS " FROM temp.expect EXCEPT"
		" SELECT " INDEX_COLS " FROM main.idx) GROUP BY rid"
		" UNION ALL SELECT 'that should not be there', rid, count(*) FROM (SELECT " INDEX_COLS
		" FROM main.idx WHERE rid NOT IN (SELECT rid FROM temp.skip) EXCEPT SELECT " INDEX_COLS
		" FROM temp.expect) GROUP BY rid) d LEFT JOIN main.resource r ON r.rid = d.rid",
		-1, &q, NULL);
	size_t lines = 0;
	while ((rc == SQLITE_OK || rc == SQLITE_ROW) && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		k->index += (size_t)sqlite3_column_int64(q, 1);
		if (++lines <= SAY_MAX)
			store_sayf(&k->out, "index: %lld search index rows %s for %s/%s (rebuilt by --repair)",
				   (long long)sqlite3_column_int64(q, 1), text_or(q, 0, ""), text_or(q, 2, "?"),
				   text_or(q, 3, "(no resource)"));
	}
	if (rc != SQLITE_DONE) {
		k->index++;
		store_sayf(&k->out, "index: the search index cannot be read (%s; rebuilt by --repair)",
			   sqlite3_errmsg(k->db));
	}
	sqlite3_finalize(q);
	if (lines > SAY_MAX)
		store_sayf(&k->out, "index: ... %zu resources in all", lines);
	if (rc == SQLITE_DONE && k->index == 0) {
		/* the same rows, but some twice */
		int64_t have =
			one_number(k->db, "SELECT count(*) FROM main.idx WHERE rid NOT IN (SELECT rid FROM temp.skip)");
		int64_t want = one_number(k->db, "SELECT count(*) FROM temp.expect");
		if (have != want) {
			k->index++;
			store_sayf(
				&k->out,
				"index: the search index holds %lld rows where %lld are expected (rebuilt by --repair)",
				(long long)have, (long long)want);
		}
	}
	return 0;
}

/* --- repair ------------------------------------------------------------------------------------ */

/* Whether the checked database has table name (one a later build added). */
static bool has_table(sqlite3 *db, const char *name)
{
	sqlite3_stmt *q = NULL;
	bool has = false;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?1", -1, &q,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
		has = sqlite3_step(q) == SQLITE_ROW;
	}
	sqlite3_finalize(q);
	return has;
}

static int exec_or_say(struct check *k, const char *sql, const char *what)
{
	if (sqlite3_exec(k->db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	store_sayf(&k->out, "repair: %s failed: %s", what, sqlite3_errmsg(k->db));
	return -1;
}

/* 5. The log of appended records not indexed yet (store_sqlite_log.c),
 * each against its checksum, oldest first: a damaged one is named by its
 * position in the log (1 = the oldest) and its seq. Not derived: the
 * gateway refuses to index a damaged record (and what follows it), so the
 * log must be restored from a backup. */
static void check_log(struct check *k)
{
	if (!has_table(k->db, "appended"))
		return;
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(
		k->db, "SELECT seq, type, id, last_updated, body, sum FROM main.appended ORDER BY seq", -1, &q, NULL);
	size_t pos = 0;
	while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		pos++;
		rc = SQLITE_OK;
		const char *type = text_or(q, 1, "?"), *id = text_or(q, 2, "?");
		const char *when = (const char *)sqlite3_column_text(q, 3);
		const char *body = (const char *)sqlite3_column_text(q, 4);
		size_t len = (size_t)sqlite3_column_bytes(q, 4);
		if (ss_sum_ok(q, 5, type, id, 1, when, body, len))
			continue;
		if (++k->logged <= SAY_MAX)
			store_sayf(
				&k->out,
				"damaged: the appended record at position %zu of the log (seq %lld, %s/%s) fails its "
				"checksum",
				pos, (long long)sqlite3_column_int64(q, 0), type, id);
	}
	if (rc != SQLITE_DONE) {
		k->log_cut = true;
		store_sayf(&k->out,
			   "damaged: the log of appended records cannot be read to its end (%s, after %zu records)",
			   sqlite3_errmsg(k->db), pos);
	}
	sqlite3_finalize(q);
	if (k->logged > SAY_MAX)
		store_sayf(&k->out, "damaged: ... %zu damaged appended records in all", k->logged);
}

/* The fresh database at fresh (see the file comment); 0 when it is built
 * and passes its own integrity check. */
static int build_fresh(struct check *k, const char *fresh)
{
	unlink(fresh);
	sqlite3 *f = NULL;
	int fd = open(fresh, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		store_sayf(&k->out, "repair: %s: %s", fresh, strerror(errno));
		return -1;
	}
	close(fd);
	int rc = sqlite3_open_v2(fresh, &f, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = ss_schema_create(f);
	if (rc != SQLITE_OK) {
		store_sayf(&k->out, "repair: creating %s: %s", fresh, f ? sqlite3_errmsg(f) : sqlite3_errstr(rc));
		sqlite3_close(f);
		return -1;
	}
	sqlite3_close(f);
	sqlite3_stmt *a = NULL;
	rc = sqlite3_prepare_v2(k->db, "ATTACH ?1 AS fresh", -1, &a, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(a, 1, fresh, -1, SQLITE_STATIC);
		rc = sqlite3_step(a) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(a);
	if (rc != SQLITE_OK) {
		store_sayf(&k->out, "repair: attaching %s: %s", fresh, sqlite3_errmsg(k->db));
		return -1;
	}
	int r = exec_or_say(k, "PRAGMA fresh.synchronous=FULL; BEGIN", "starting the copy");
	if (r == 0)
		r = exec_or_say(k,
				"INSERT INTO fresh.version(seq, rid, type, id, version, op, last_updated, body, sum)"
				" SELECT seq, rid, type, id, version, op, last_updated, body, sum FROM main.version",
				"copying the stored versions");
	if (r == 0)
		r = exec_or_say(
			k,
			"INSERT INTO fresh.resource(rid, type, id, version, deleted, last_updated) " DERIVED_RESOURCES,
			"rebuilding the resource rows");
	if (r == 0)
		r = exec_or_say(k, "INSERT INTO fresh.idx(" INDEX_COLS ") SELECT " INDEX_COLS " FROM temp.expect",
				"rebuilding the search index");
	if (r == 0 && sqlite3_exec(k->db,
				   "INSERT INTO fresh.idx(" INDEX_COLS ") SELECT " INDEX_COLS
				   " FROM main.idx WHERE rid IN (SELECT rid FROM temp.skip)",
				   NULL, NULL, NULL) != SQLITE_OK)
		store_sayf(&k->out,
			   "repair: the damaged resources' search index rows could not be kept (%s): they are not "
			   "found by searches until restored",
			   sqlite3_errmsg(k->db));
	if (r == 0)
		r = exec_or_say(
			k,
			"INSERT INTO fresh.outbox(oid, type, id, version, deleted, state, attempts, next_at,"
			" last_error, created) SELECT oid, type, id, version, deleted, state, attempts, next_at,"
			" last_error, created FROM main.outbox",
			"copying the outbox");
	if (r == 0 &&
	    sqlite3_exec(k->db, "INSERT INTO fresh.outbox_ref(oid, type, id) SELECT oid, type, id FROM main.outbox_ref",
			 NULL, NULL, NULL) != SQLITE_OK)
		store_sayf(&k->out,
			   "repair: the outbox's references could not be copied (%s): the records written before "
			   "are delivered in order by resource only",
			   sqlite3_errmsg(k->db));
	if (r == 0)
		r = exec_or_say(k, "INSERT INTO fresh.mark(name, value) SELECT name, value FROM main.mark",
				"copying the marks");
	if (r == 0 && has_table(k->db, "appended")) /* appended records not indexed yet: indexed when opened */
		r = exec_or_say(k,
				"INSERT INTO fresh.appended(seq, type, id, last_updated, ms, body, sum)"
				" SELECT seq, type, id, last_updated, ms, body, sum FROM main.appended",
				"copying the appended records");
	if (r == 0)
		r = exec_or_say(k, "COMMIT", "committing the copy");
	if (r != 0)
		sqlite3_exec(k->db, "ROLLBACK", NULL, NULL, NULL);
	if (r == 0) {
		sqlite3_stmt *q = NULL;
		rc = sqlite3_prepare_v2(k->db, "PRAGMA fresh.integrity_check(1)", -1, &q, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(q);
		if (rc != SQLITE_ROW || strcmp(text_or(q, 0, ""), "ok") != 0) {
			store_sayf(&k->out, "repair: the rebuilt database fails its own check (%s)",
				   rc == SQLITE_ROW ? text_or(q, 0, "") : sqlite3_errmsg(k->db));
			r = -1;
		}
		sqlite3_finalize(q);
	}
	sqlite3_exec(k->db, "DETACH fresh", NULL, NULL, NULL);
	if (r != 0)
		unlink(fresh);
	return r;
}

static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Puts fresh in place of db (the connection k->db is closed first); the
 * damaged file is kept. 0, or -1 with nothing replaced. */
static int swap_in(struct check *k, const char *data_dir, const char *db, const char *fresh)
{
	sqlite3_close(k->db);
	k->db = NULL;
	char stamp[32], kept[4300], path[4300];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	snprintf(kept, sizeof kept, "%s.before-repair-%s", db, stamp);
	if (rename(db, kept) != 0) {
		store_sayf(&k->out, "repair: %s: cannot move it aside: %s", db, strerror(errno));
		unlink(fresh);
		return -1;
	}
	snprintf(path, sizeof path, "%s-wal", db);
	char kept_wal[4400];
	snprintf(kept_wal, sizeof kept_wal, "%s-wal", kept);
	if (rename(path, kept_wal) != 0 && errno != ENOENT)
		store_sayf(&k->out, "repair: %s: %s", path, strerror(errno));
	snprintf(path, sizeof path, "%s-shm", db);
	unlink(path);
	if (rename(fresh, db) != 0) {
		store_sayf(&k->out, "repair: %s: cannot take the place of %s: %s", fresh, db, strerror(errno));
		rename(kept, db);
		return -1;
	}
	sync_dir(data_dir);
	store_sayf(&k->out, "repair: the damaged file is kept as %s (remove it once the store serves well)", kept);
	return 0;
}

/* --- the command ---------------------------------------------------------------------------------- */

int store_check_sqlite(const char *data_dir, unsigned flags, void (*say)(void *ctx, const char *line), void *ctx,
		       char *err, size_t errlen)
{
	char db[4200], fresh[4300];
	snprintf(db, sizeof db, "%s/store.db", data_dir);
	snprintf(fresh, sizeof fresh, "%s.repair", db);
	struct stat sb;
	if (stat(db, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "no store in %s (data_dir): %s", data_dir, strerror(errno));
		return -1;
	}
	bool busy = false;
	int lock = ss_take_lock(data_dir, &busy, err, errlen);
	if (lock < 0) {
		if (busy)
			snprintf(
				err, errlen,
				"a running gateway (or another command) holds %s (store.lock): stop it first, or check "
				"a copy of the directory",
				data_dir);
		return -1;
	}
	struct check k = {.out = {say, ctx}};
	int rc = sqlite3_open_v2(db, &k.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", db, k.db ? sqlite3_errmsg(k.db) : sqlite3_errstr(rc));
		sqlite3_close(k.db);
		close(lock);
		return -1;
	}
	sqlite3_busy_timeout(k.db, 10000);
	int result = 1;
	int64_t version = one_number(k.db, "SELECT max(version) FROM schema_version");
	if (version < 0) {
		store_sayf(&k.out,
			   "structure: the database cannot be read (%s): restore the data directory from a backup",
			   sqlite3_errmsg(k.db));
		goto out;
	}
	if (version != ss_schema_version()) {
		snprintf(err, errlen,
			 "%s has schema version %lld and this build checks version %d: start this build's gateway once "
			 "(it upgrades the store), then check",
			 db, (long long)version, ss_schema_version());
		result = -1;
		goto out;
	}
	check_structure(&k);
	check_versions(&k);
	check_log(&k);
	if (!k.unreadable) {
		check_resources(&k);
		if (check_index(&k) != 0)
			k.index++;
	}
	size_t derived = k.structure + k.resources + k.index;
	store_sayf(&k.out,
		   "summary: %zu structure findings, %zu damaged stored versions, %zu damaged appended records, %zu "
		   "resource rows and %zu search index rows to rebuild",
		   k.structure, k.damaged, k.logged, k.resources, k.index);
	/* a damaged log is stored data, as a damaged version is: named, kept
	 * by a repair as it is, restored from a backup */
	bool log_bad = k.logged || k.log_cut;
	if (!derived && !k.damaged && !k.unreadable && !log_bad) {
		store_sayf(&k.out, "the store is clean");
		result = 0;
		goto out;
	}
	if (flags & STORE_CHECK_REPAIR) {
		if (k.unreadable) {
			store_sayf(&k.out, "repair: not possible: the stored versions cannot be read to their end");
		} else if (derived) {
			if (build_fresh(&k, fresh) == 0 && swap_in(&k, data_dir, db, fresh) == 0) {
				store_sayf(&k.out,
					   "repair: done: the resource rows, the search index and SQLite's indexes are "
					   "rebuilt "
					   "from the stored versions");
				derived = 0;
			} else {
				store_sayf(&k.out, "repair: failed; the store is as it was");
			}
		}
	}
	if (k.damaged || k.unreadable)
		store_sayf(&k.out,
			   "not repairable: stored resources themselves (the versions named above) cannot be rebuilt: "
			   "restore "
			   "the data directory from a backup; until then the gateway refuses to serve them (500)");
	if (log_bad)
		store_sayf(&k.out,
			   "not repairable: the appended records named above (access records not indexed yet) cannot "
			   "be rebuilt: restore the data directory from a backup; until then the gateway cannot index "
			   "the log past them");
	if (!k.damaged && !k.unreadable && !log_bad && derived && !(flags & STORE_CHECK_REPAIR))
		store_sayf(&k.out, "run `crosswalk check --repair` to rebuild what is listed above");
	result = derived || k.damaged || k.unreadable || log_bad ? 1 : 0;
out:
	sqlite3_close(k.db);
	close(lock);
	return result;
}
