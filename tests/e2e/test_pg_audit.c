/* End-to-end tests of the access records on PostgreSQL (docs/audit.md,
 * "PostgreSQL"): two real gateways on one real database
 * (tests/pgserver.h) answer requests at once; their records form one
 * chain that `crosswalk check` verifies and that AuditEvent searches on
 * either gateway find; the gateway's role cannot change or remove a record;
 * a record forged with a matching checksum, a link removed, orphan version
 * and index rows are each found by check (exit 1), and --repair removes the
 * orphan index rows only. The cases share one database, in this order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e/harness.h"
#include "pgserver.h"

#define PER_GATEWAY 150

static struct pg_server server;
static struct gw pair[2];

static int setup(void **state)
{
	(void)state;
	return harness_pg_gateways(&server, pair, 2, NULL);
}

static int teardown(void **state)
{
	(void)state;
	harness_pg_stop(&server, pair, 2);
	return 0;
}

/* `crosswalk check` on the shared database: its exit status, its output in
 * out. */
static int check(const char *option, char *out, size_t n)
{
	char store[512];
	harness_pg_store(store, sizeof store, &server, NULL);
	const char *args[] = {"check", option, NULL};
	return gw_run_command(store, args, 120000, out, n);
}

/* The records check counted on the chain and waiting to be linked to it
 * ("access records chained: N, …; W waiting to be chained"), -1 when it did
 * not say. */
static long chained(const char *out)
{
	const char *p = strstr(out, "access records chained: ");
	const char *w = p ? strstr(p, " waiting to be chained") : NULL;
	if (!w)
		return -1;
	while (w > p && w[-1] != ' ')
		w--;
	return strtol(p + strlen("access records chained: "), NULL, 10) + strtol(w, NULL, 10);
}

struct load {
	int g;
	int answered;
};

static void *load_one(void *arg)
{
	struct load *l = arg;
	for (int i = 0; i < PER_GATEWAY; i++) {
		char rid[64], hdr[96], path[64];
		snprintf(rid, sizeof rid, "pga-%d-%03d", l->g, i);
		snprintf(hdr, sizeof hdr, "X-Request-Id: %s", rid);
		snprintf(path, sizeof path, "/fhir/Patient/pga-%d", i % 7);
		const char *h[] = {hdr, NULL};
		struct resp r;
		if (http_do(&pair[l->g], "GET", path, h, NULL, 0, &r) == 0 && r.status == 404)
			l->answered++;
		resp_free(&r);
	}
	return NULL;
}

/* Every AuditEvent gateway g serves, as one text (the caller frees it). */
static char *all_events_text(const struct gw *g)
{
	cJSON *evs = gw_search_all(g, "/fhir/AuditEvent?_count=500");
	char *all = cJSON_PrintUnformatted(evs);
	cJSON_Delete(evs);
	assert_non_null(all);
	return all;
}

static void records_of_two_gateways_form_one_chain(void **state)
{
	(void)state;
	char out[16384];
	assert_int_equal(check(NULL, out, sizeof out), 0);
	long before = chained(out);
	assert_true(before >= 0);
	struct load l[2] = {{.g = 0}, {.g = 1}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, load_one, &l[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(l[0].answered, PER_GATEWAY);
	assert_int_equal(l[1].answered, PER_GATEWAY);
	/* the committers link every record soon after its answer */
	int rc;
	for (int tries = 0;; tries++) {
		rc = check(NULL, out, sizeof out);
		if (rc != 0 || strstr(out, "; 0 waiting to be chained") || tries == 50)
			break;
		usleep(200 * 1000);
	}
	if (rc != 0)
		fprintf(stderr, "# %s\n", out);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "no problems found"));
	assert_non_null(strstr(out, "; 0 waiting to be chained"));
	assert_true(chained(out) >= before + 2 * PER_GATEWAY);
	/* the records of both gateways are found on each */
	for (int g = 0; g < 2; g++) {
		char *all = all_events_text(&pair[g]);
		int missing = 0;
		for (int w = 0; w < 2; w++)
			for (int i = 0; i < PER_GATEWAY; i++) {
				char want[64];
				snprintf(want, sizeof want, "\"pga-%d-%03d\"", w, i);
				missing += strstr(all, want) == NULL;
			}
		free(all);
		assert_int_equal(missing, 0);
	}
}

static void records_cannot_be_changed_or_removed(void **state)
{
	(void)state;
	assert_int_equal(pg_server_sql(&server, "UPDATE version SET body = body WHERE type = 'AuditEvent'"), -1);
	assert_int_equal(pg_server_sql(&server, "DELETE FROM version WHERE type = 'AuditEvent'"), -1);
	assert_int_equal(pg_server_sql(&server, "UPDATE resource SET version = 2 WHERE type = 'AuditEvent'"), -1);
	assert_int_equal(pg_server_sql(&server, "DELETE FROM audit_chain WHERE seq = 1"), -1);
	assert_int_equal(pg_server_sql(&server, "UPDATE audit_chain SET hash = sha256(hash)"), -1);
	assert_int_equal(pg_server_sql(&server, "TRUNCATE audit_chain"), -1);
	/* other types' rows are not held */
	assert_int_equal(pg_server_sql(&server, "UPDATE version SET op = op WHERE type = 'Patient'"), 0);
	char out[16384];
	assert_int_equal(check(NULL, out, sizeof out), 0);
}

static void check_finds_orphan_rows_and_repair_removes_orphan_index_rows(void **state)
{
	(void)state;
	assert_int_equal(pg_server_sql(&server,
				       "INSERT INTO idx(rid, param, sys, val) VALUES(987654, '_id', NULL, 'x');"
				       "INSERT INTO version(rid, type, id, version, op, last_updated, body, sum)"
				       " VALUES(987655, 'Basic', 'ghost', 1, 0, '2026-01-01T00:00:00.000Z',"
				       " '{}', '\\x00')"),
			 0);
	char out[16384];
	assert_int_equal(check(NULL, out, sizeof out), 1);
	assert_non_null(strstr(out, "orphan index rows: rid 987654: 1 index rows"));
	assert_non_null(strstr(out, "orphan version: row "));
	assert_non_null(strstr(out, "Basic/ghost version 1 has no resource row (rid 987655)"));
	/* the repair removes the derived rows; the version stays, named */
	assert_int_equal(check("--repair", out, sizeof out), 1);
	assert_non_null(strstr(out, "repair: 1 orphan index rows removed"));
	assert_non_null(strstr(out, "Basic/ghost version 1 has no resource row"));
	assert_int_equal(pg_server_sql(&server, "DELETE FROM version WHERE type = 'Basic' AND id = 'ghost'"), 0);
	assert_int_equal(check(NULL, out, sizeof out), 0);
}

/* A superuser with the triggers off forges a record with a checksum that
 * matches its new text, and the chain's copy of that checksum too: the
 * chain's link no longer holds. Then a link is removed. */
static void check_finds_a_forged_record_and_a_removed_link(void **state)
{
	(void)state;
	assert_int_equal(
		pg_server_sql(&server,
			      "SET session_replication_role = replica;"
			      "UPDATE version SET body = replace(body, '\"pga-0-010\"', '\"pga-0-999\"') WHERE seq ="
			      " (SELECT seq FROM version WHERE type = 'AuditEvent' AND body LIKE '%\"pga-0-010\"%');"
			      "UPDATE version SET sum = sha256(convert_to(type || '/' || id || '/' || version || '/' ||"
			      " last_updated || '/B' || body, 'UTF8')) WHERE body LIKE '%\"pga-0-999\"%';"
			      "UPDATE audit_chain a SET sum = v.sum FROM version v WHERE v.seq = a.vseq AND"
			      " v.body LIKE '%\"pga-0-999\"%'"),
		0);
	char out[16384];
	assert_int_equal(check(NULL, out, sizeof out), 1);
	if (!strstr(out, "its hash is not that of the record before and its own"))
		fprintf(stderr, "# %s\n", out);
	assert_non_null(strstr(out, "its hash is not that of the record before and its own"));
	/* the version itself passes its checksum: only the chain tells */
	assert_non_null(strstr(out, "versions: "));
	assert_non_null(strstr(out, ", 0 damaged"));
	assert_null(strstr(out, "is not on the chain"));
	assert_int_equal(pg_server_sql(&server, "SET session_replication_role = replica;"
						"DELETE FROM audit_chain WHERE seq = 5"),
			 0);
	assert_int_equal(check(NULL, out, sizeof out), 1);
	assert_non_null(strstr(out, "position 6 follows 4 (records removed or inserted)"));
	assert_non_null(strstr(out, "is not on the chain"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(records_of_two_gateways_form_one_chain),
		cmocka_unit_test(records_cannot_be_changed_or_removed),
		cmocka_unit_test(check_finds_orphan_rows_and_repair_removes_orphan_index_rows),
		cmocka_unit_test(check_finds_a_forged_record_and_a_removed_link),
	};
	const char *filter = getenv("CW_TEST_FILTER");
	if (filter && *filter)
		cmocka_set_test_filter(filter);
	return cmocka_run_group_tests(tests, setup, teardown);
}
