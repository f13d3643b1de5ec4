/* Pushing an unchanged document again is a no-op, through the real gateway
 * over loopback: POST /ingest of the same recovery plan twice answers 201
 * with each entry "200" both times the second time, and creates no new
 * version; in store-and-forward mode against the Medplum upstream of
 * tests/upstream it queues nothing, so nothing is sent again (a changed
 * push afterwards sends exactly what changed). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/harness.h"
#include "fhir/fhir_helpers.h"

#define PEOPLE "https://recovery.example.org/people"
#define GOALS "https://crosswalk.example.org/fhir/NamingSystem/recovery-goal"

static const char *const json_ct[] = {"Content-Type: application/json", NULL};

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static void plan(char *buf, size_t n, const char *words)
{
	snprintf(buf, n,
		 "{\"version\":1,\"person\":{\"identifier\":{\"system\":\"" PEOPLE "\",\"value\":\"P-R\"},"
		 "\"name\":\"Sample\"},\"plan\":{\"identifier\":{\"system\":\"https://recovery.example.org/plans\","
		 "\"value\":\"RP-R\"},\"status\":\"active\",\"wellness_tools\":[\"Walk\"]},"
		 "\"goals\":[{\"identifier\":{\"system\":\"" GOALS "\",\"value\":\"G-1\"},\"dimension\":\"home\","
		 "\"words\":\"%s\",\"status\":\"active\",\"progress\":\"improving\"}]}",
		 words);
}

/* POST /ingest/recovery-plan; the transaction-response's entry statuses
 * joined by ',' into statuses. */
static void push(const struct gw *g, const char *doc, char *statuses, size_t n)
{
	struct resp r;
	assert_int_equal(http_do(g, "POST", "/ingest/recovery-plan", json_ct, doc, strlen(doc), &r), 0);
	if (r.status != 201)
		fprintf(stderr, "# %s\n", r.body);
	assert_int_equal(r.status, 201);
	cJSON *tr = cJSON_Parse(r.body);
	resp_free(&r);
	statuses[0] = '\0';
	const cJSON *e;
	cJSON_ArrayForEach(e, get(tr, "entry")) {
		const cJSON *st = get(get(e, "response"), "status");
		size_t len = strlen(statuses);
		snprintf(statuses + len, n - len, "%s%s", len ? "," : "", cJSON_IsString(st) ? st->valuestring : "?");
	}
	cJSON_Delete(tr);
}

static int history_total(const struct gw *g, const char *type, const char *id)
{
	char path[200];
	snprintf(path, sizeof path, "/fhir/%s/%s/_history", type, id);
	struct resp r;
	assert_int_equal(http_do(g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *b = cJSON_Parse(r.body);
	resp_free(&r);
	int n = get(b, "total")->valueint;
	cJSON_Delete(b);
	return n;
}

static void ids(char pid[FHIR_ID_SIZE], char gid[FHIR_ID_SIZE])
{
	assert_int_equal(fhir_make_id(PEOPLE, "P-R", pid), 0);
	assert_int_equal(fhir_make_id(pid, "Goal|" GOALS "|G-1", gid), 0);
}

static void unchanged_push_makes_no_version(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, NULL), 0);
	char doc[2048], first[200], second[200], pid[FHIR_ID_SIZE], gid[FHIR_ID_SIZE];
	ids(pid, gid);
	plan(doc, sizeof doc, "A home of my own.");
	push(&g, doc, first, sizeof first);
	assert_string_equal(first, "201,201,201");
	push(&g, doc, second, sizeof second);
	assert_string_equal(second, "200,200,200");
	assert_int_equal(history_total(&g, "Patient", pid), 1);
	assert_int_equal(history_total(&g, "Goal", gid), 1);
	/* a change is a new version of what changed only */
	plan(doc, sizeof doc, "A home of my own, near my sister.");
	push(&g, doc, second, sizeof second);
	assert_string_equal(second, "200,200,200");
	assert_int_equal(history_total(&g, "Goal", gid), 2);
	assert_int_equal(history_total(&g, "Patient", pid), 1);
	assert_int_equal(gw_stop(&g, 15000), 0);
}

/* The upstream's count of FHIR requests with method. */
static long received(const struct upstream_srv *u, const char *method)
{
	struct resp r;
	assert_int_equal(upstream_do(u, "GET", "/_admin/stats", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *j = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *v = get(get(j, "received"), method);
	long n = cJSON_IsNumber(v) ? (long)v->valuedouble : 0;
	cJSON_Delete(j);
	return n;
}

static void unchanged_push_sends_nothing_upstream(void **state)
{
	(void)state;
	if (upstream_install() != 0) {
		fprintf(stderr, "# npm install of tests/upstream failed (see build/upstream-install.log)\n");
		fail();
	}
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u,
			   "\"Patient\":\"store-and-forward\",\"Goal\":\"store-and-forward\","
			   "\"CarePlan\":\"store-and-forward\"",
			   NULL);
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	char doc[2048], st[200];
	plan(doc, sizeof doc, "A home of my own.");
	push(&g, doc, st, sizeof st);
	assert_true(gw_outbox_drained(&g, 20000));
	long puts = received(&u, "PUT") + received(&u, "POST");
	assert_true(puts >= 3);

	push(&g, doc, st, sizeof st); /* unchanged: nothing queued */
	assert_string_equal(st, "200,200,200");
	assert_int_equal(gw_outbox_number(&g, "pending"), 0);
	/* a changed push after it: what is delivered is what changed alone,
	 * and the unchanged push would have been delivered before it */
	plan(doc, sizeof doc, "A home of my own, near my sister.");
	push(&g, doc, st, sizeof st);
	assert_true(gw_outbox_drained(&g, 20000));
	assert_int_equal(received(&u, "PUT") + received(&u, "POST"), puts + 1);
	assert_int_equal(gw_stop(&g, 15000), 0);
	upstream_stop(&u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unchanged_push_makes_no_version),
		cmocka_unit_test(unchanged_push_sends_nothing_upstream),
	};
	return cmocka_run_group_tests_name("re-push", tests, NULL, NULL);
}
