/* Unit tests: `crosswalk check` (store_check_sqlite) and the log of
 * appended records (the access records, committed to the log first and
 * indexed later: core/store/store_sqlite_log.c), over a real SQLite file in
 * a fresh temporary directory per test. The check verifies every record
 * still in the log against its checksum and names a damaged one by its
 * position; a repair keeps the log and the records indexed before it, and
 * every record is found afterwards. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/fjson.h"
#include "store/store.h"
#include "pgserver.h"
#include "store_kit.h"
#include "testenv.h"

struct fixture {
	char dir[64];
	char data[96]; /* dir/data: created by the store */
	char db[128];  /* data/store.db */
	struct store *s;
};

static void reopen(struct fixture *f)
{
	char err[256];
	if (store_open_sqlite(f->data, 0, STORE_CACHE_DEFAULT_BYTES, &f->s, err, sizeof err) != 0)
		fail_msg("open: %s", err);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/cw-check-XXXXXX");
	if (!f || !mkdtemp(f->dir))
		return -1;
	snprintf(f->data, sizeof f->data, "%s/data", f->dir);
	snprintf(f->db, sizeof f->db, "%s/store.db", f->data);
	reopen(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_close(f->s);
	pgs_remove_tree(f->dir);
	free(f);
	return 0;
}

/* --- appended records ------------------------------------------------------ */

enum { ROUND = 20, ROUNDS = 8 };

/* The one number a query on the closed store's file answers. */
static long long file_number(const struct fixture *f, const char *sql)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	sqlite3_stmt *q = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	long long n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

static void file_exec(const struct fixture *f, const char *sql)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "?");
	sqlite3_close(db);
}

/* Records indexed, then records still in the log when the store closes
 * (the log is indexed after a pause: a round the background step indexed
 * before the close is followed by another). Returns how many were
 * appended, and sets *logged to how many are in the log; the store is
 * closed. */
static int indexed_and_logged(struct fixture *f, struct sk_queued *q, atomic_int *calls, long long *logged)
{
	sk_append_records(f->s, q, 0, ROUND, calls);
	assert_int_equal(sk_audit_total(f->s, NULL), ROUND); /* a read indexes the log first */
	int n = ROUND;
	for (int round = 1; round < ROUNDS; round++) {
		sk_append_records(f->s, q, n, n + ROUND, calls);
		n += ROUND;
		store_close(f->s);
		f->s = NULL;
		*logged = file_number(f, "SELECT count(*) FROM appended");
		if (*logged > 0)
			return n;
		reopen(f);
	}
	fail_msg("the log was indexed before every close");
	return n;
}

/* --- crosswalk check ------------------------------------------------------- */

static char said[1 << 16];

static void say(void *ctx, const char *line)
{
	(void)ctx;
	size_t len = strlen(said);
	snprintf(said + len, sizeof said - len, "%s\n", line);
}

static int check(const struct fixture *f, unsigned flags)
{
	said[0] = '\0';
	char err[512] = "";
	int r = store_check_sqlite(f->data, flags, say, NULL, err, sizeof err);
	if (r < 0)
		fprintf(stderr, "# check: %s\n", err);
	return r;
}

/* A damaged record in the log is found, by its position in the log; an
 * intact log passes. */
static void check_verifies_the_log_of_appended_records(void **state)
{
	struct fixture *f = *state;
	static struct sk_queued q[ROUND * ROUNDS];
	atomic_int calls = 0;
	long long logged = 0;
	int n = indexed_and_logged(f, q, &calls, &logged);
	assert_int_equal(check(f, 0), 0);
	assert_non_null(strstr(said, "0 damaged appended records"));
	assert_non_null(strstr(said, "the store is clean"));

	/* one record's stored text altered (the row itself intact: SQLite sees
	 * nothing); the first of the log stays as it was */
	long long seq = file_number(f, "SELECT seq FROM appended ORDER BY seq LIMIT 1 OFFSET 0");
	char sql[300];
	snprintf(sql, sizeof sql,
		 "UPDATE appended SET body = replace(body, '\"Patient/ap', '\"Patient/aq') WHERE seq = %lld", seq);
	if (logged > 1) {
		/* the second: its position says where it is */
		seq = file_number(f, "SELECT seq FROM appended ORDER BY seq LIMIT 1 OFFSET 1");
		snprintf(sql, sizeof sql,
			 "UPDATE appended SET body = replace(body, '\"Patient/ap', '\"Patient/aq') WHERE seq = %lld",
			 seq);
	}
	file_exec(f, sql);
	assert_int_equal(check(f, 0), 1);
	char want[200];
	snprintf(want, sizeof want, "damaged: the appended record at position %d of the log (seq %lld, AuditEvent/",
		 logged > 1 ? 2 : 1, seq);
	if (!strstr(said, want))
		fprintf(stderr, "# %s", said);
	assert_non_null(strstr(said, want));
	assert_non_null(strstr(said, "1 damaged appended records"));
	assert_non_null(strstr(said, "not repairable: the appended records named above"));
	assert_null(strstr(said, "the store is clean"));
	/* a repair cannot rebuild it: still named, still exit 1 */
	assert_int_equal(check(f, STORE_CHECK_REPAIR), 1);
	assert_non_null(strstr(said, want));

	/* put back as it was: clean again */
	snprintf(sql, sizeof sql,
		 "UPDATE appended SET body = replace(body, '\"Patient/aq', '\"Patient/ap') WHERE seq = %lld", seq);
	file_exec(f, sql);
	assert_int_equal(check(f, 0), 0);
	assert_non_null(strstr(said, "the store is clean"));
	reopen(f);
	assert_int_equal(sk_audit_total(f->s, NULL), (size_t)n);
	for (int i = 0; i < n; i++)
		store_write_release(&q[i].w);
}

/* A repair keeps the log of appended records and the records indexed
 * before it: every record is found afterwards, by search and by id. */
static void repair_keeps_the_log_of_appended_records(void **state)
{
	struct fixture *f = *state;
	static struct sk_queued q[ROUND * ROUNDS];
	atomic_int calls = 0;
	long long logged = 0;
	int n = indexed_and_logged(f, q, &calls, &logged);
	long long indexed = file_number(f, "SELECT count(*) FROM resource WHERE type = 'AuditEvent'");
	assert_int_equal(indexed + logged, n);
	/* an indexed record's search index rows lost: the repair rebuilds it */
	file_exec(f, "DELETE FROM idx WHERE rid = (SELECT min(rid) FROM resource WHERE type = 'AuditEvent')");
	assert_int_equal(check(f, 0), 1);
	assert_non_null(strstr(said, "run `crosswalk check --repair`"));
	assert_int_equal(check(f, STORE_CHECK_REPAIR), 0);
	assert_non_null(strstr(said, "repair: done"));
	/* the log is there as it was, the indexed records too */
	assert_int_equal(file_number(f, "SELECT count(*) FROM appended"), logged);
	assert_int_equal(file_number(f, "SELECT count(*) FROM resource WHERE type = 'AuditEvent'"), indexed);
	assert_int_equal(check(f, 0), 0);
	assert_non_null(strstr(said, "the store is clean"));

	/* every record is found: by search (the log indexed first) and by id */
	reopen(f);
	assert_int_equal(sk_audit_total(f->s, NULL), (size_t)n);
	char agent[32];
	for (int i = 0; i < n; i++) {
		snprintf(agent, sizeof agent, "Patient/ap%d", i);
		assert_int_equal(sk_audit_total(f->s, agent), 1);
		cJSON *got = NULL;
		struct store_error err;
		assert_int_equal(store_read(f->s, "AuditEvent", q[i].w.id, &got, &err), STORE_OK);
		cJSON_Delete(got);
		store_write_release(&q[i].w);
	}
	/* and the log, indexed now, is empty */
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(file_number(f, "SELECT count(*) FROM appended"), 0);
	assert_int_equal(file_number(f, "SELECT count(*) FROM resource WHERE type = 'AuditEvent'"), n);
	reopen(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(check_verifies_the_log_of_appended_records, setup, teardown),
		cmocka_unit_test_setup_teardown(repair_keeps_the_log_of_appended_records, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
