/* End-to-end tests of the bridge to an upstream FHIR server, against a real,
 * independent one (tests/upstream: Medplum's FHIR router over its in-memory
 * repository, started here on 127.0.0.1 and stopped by its PID):
 * pass-through of every interaction with URL rewriting; store-and-forward
 * with the upstream down during a push of 1,000 resources, then back; kill -9
 * of the gateway during delivery; 5xx, 429 with Retry-After, stalls, refusals
 * (dead letter, then $retry) and oversized answers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "e2e/harness.h"

static const char *fj[] = {"Content-Type: application/fhir+json", NULL};

static const char *s(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int setup(void **state)
{
	(void)state;
	if (upstream_install() != 0) {
		fprintf(stderr, "# npm install of tests/upstream failed (see build/upstream-install.log)\n");
		return -1;
	}
	return 0;
}

static long outbox_number(const struct gw *g, const char *key)
{
	struct resp r;
	if (http_do(g, "GET", "/outbox?_count=0", NULL, NULL, 0, &r) != 0 || r.status != 200) {
		resp_free(&r);
		return -1;
	}
	cJSON *j = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
	long n = cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
	cJSON_Delete(j);
	return n;
}

/* Waits until the outbox has nothing pending; false on timeout. */
static bool drained(const struct gw *g, long timeout_ms)
{
	long until = now_ms() + timeout_ms;
	while (now_ms() < until) {
		if (outbox_number(g, "pending") == 0)
			return true;
		sleep_ms(100);
	}
	return false;
}

static void fault(const struct upstream_srv *u, const char *json) { assert_int_equal(upstream_fault(u, json), 0); }

static void pass_through_every_interaction(void **state)
{
	(void)state;
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u, "\"Patient\":\"pass-through\"", NULL);
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	char gwbase[64];
	snprintf(gwbase, sizeof gwbase, "http://127.0.0.1:%u/fhir/", g.port);

	struct resp r;
	const char *body = "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:pt\",\"value\":\"1\"}],"
			   "\"name\":[{\"family\":\"Through\"}],\"birthDate\":\"1970-01-01\"}";
	assert_int_equal(http_do(&g, "POST", "/fhir/Patient", fj, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 201);
	char loc[512];
	assert_non_null(resp_header(&r, "Location", loc, sizeof loc));
	assert_true(strncmp(loc, gwbase, strlen(gwbase)) == 0); /* rewritten to the gateway */
	cJSON *p = cJSON_Parse(r.body);
	char id[80], vid[80];
	snprintf(id, sizeof id, "%s", s(p, "id"));
	snprintf(vid, sizeof vid, "%s", s(cJSON_GetObjectItemCaseSensitive(p, "meta"), "versionId"));
	cJSON_Delete(p);
	resp_free(&r);
	assert_int_equal(upstream_count(&u, "Patient", "urn:pt|1"), 1); /* it is upstream, */
	assert_int_equal(http_do(&g, "GET", "/outbox", NULL, NULL, 0, &r), 0); /* not queued */
	assert_non_null(strstr(r.body, "\"pending\":0"));
	resp_free(&r);

	char path[256];
	snprintf(path, sizeof path, "/fhir/Patient/%s", id);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "Through"));
	resp_free(&r);
	/* XML answers from a JSON upstream */
	char xpath[300];
	snprintf(xpath, sizeof xpath, "%s?_format=xml", path);
	assert_int_equal(http_do(&g, "GET", xpath, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "<family value=\"Through\"/>"));
	resp_free(&r);

	char upd[512];
	snprintf(upd, sizeof upd,
		 "{\"resourceType\":\"Patient\",\"id\":\"%s\",\"identifier\":[{\"system\":\"urn:pt\",\"value\":\"1\"}],"
		 "\"name\":[{\"family\":\"Updated\"}]}",
		 id);
	assert_int_equal(http_do(&g, "PUT", path, fj, upd, strlen(upd), &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);

	assert_int_equal(http_do(&g, "GET", "/fhir/Patient?identifier=urn:pt|1", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *b = cJSON_Parse(r.body);
	const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "entry"), 0);
	assert_non_null(e);
	assert_true(strncmp(s(e, "fullUrl"), gwbase, strlen(gwbase)) == 0);
	const cJSON *l;
	cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(b, "link"))
	{
		assert_null(strstr(s(l, "url"), u.base)); /* no upstream URL leaks */
	}
	cJSON_Delete(b);
	resp_free(&r);

	snprintf(path, sizeof path, "/fhir/Patient/%s/_history", id);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"history\""));
	resp_free(&r);
	snprintf(path, sizeof path, "/fhir/Patient/%s/_history/%s", id, vid);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "Through"));
	resp_free(&r);

	/* conditional create is answered by the upstream */
	const char *cc[] = {"Content-Type: application/fhir+json", "If-None-Exist: identifier=urn:pt|1", NULL};
	assert_int_equal(http_do(&g, "POST", "/fhir/Patient", cc, body, strlen(body), &r), 0);
	assert_true(r.status == 200 || r.status == 201);
	resp_free(&r);
	assert_int_equal(upstream_count(&u, "Patient", "urn:pt|1"), 1);

	snprintf(path, sizeof path, "/fhir/Patient/%s", id);
	assert_int_equal(http_do(&g, "DELETE", path, NULL, NULL, 0, &r), 0);
	assert_true(r.status == 200 || r.status == 204);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_true(r.status == 410 || r.status == 404);
	resp_free(&r);

	/* a local batch or transaction cannot carry a pass-through type */
	const char *tx = "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":"
			 "{\"resourceType\":\"Patient\"},\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}}]}";
	assert_int_equal(http_do(&g, "POST", "/fhir", fj, tx, strlen(tx), &r), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "passed through"));
	resp_free(&r);

	/* an oversized answer is cut off: 502, the gateway stays up */
	fault(&u, "{\"fault\":\"oversize\",\"mb\":20,\"method\":\"GET\"}");
	assert_int_equal(http_do(&g, "GET", "/fhir/Patient?name=x", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 502);
	resp_free(&r);
	/* a stall is cut off by the timeout: 504 */
	fault(&u, "{\"fault\":\"stall\",\"seconds\":10,\"method\":\"GET\"}");
	long t0 = now_ms();
	assert_int_equal(http_do(&g, "GET", "/fhir/Patient?name=x", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 504);
	assert_true(now_ms() - t0 < 5000);
	resp_free(&r);
	/* the upstream gone: 502 */
	upstream_stop(&u);
	assert_int_equal(http_do(&g, "GET", "/fhir/Patient?name=x", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 502);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 10000), 0);
}

/* A transaction of n Observations with identifiers urn:push|first… */
static char *push_bundle(int first, int n)
{
	size_t cap = (size_t)n * 300 + 200;
	char *b = malloc(cap);
	size_t pos = (size_t)snprintf(b, cap, "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[");
	for (int i = 0; i < n; i++)
		pos += (size_t)snprintf(b + pos, cap - pos,
					"%s{\"resource\":{\"resourceType\":\"Observation\",\"status\":\"final\","
					"\"identifier\":[{\"system\":\"urn:push\",\"value\":\"%d\"}],\"code\":{\"text\":\"push\"},"
					"\"valueInteger\":%d},\"request\":{\"method\":\"POST\",\"url\":\"Observation\"}}",
					i ? "," : "", first + i, first + i);
	snprintf(b + pos, cap - pos, "]}");
	return b;
}

static void push(const struct gw *g, int first, int n)
{
	char *b = push_bundle(first, n);
	struct resp r;
	assert_int_equal(http_do(g, "POST", "/fhir", fj, b, strlen(b), &r), 0);
	if (r.status != 200)
		fprintf(stderr, "# push: %ld %s\n", r.status, r.body);
	assert_int_equal(r.status, 200); /* acknowledged: committed with its outbox records */
	resp_free(&r);
	free(b);
}

/* Every urn:push identifier in [first, first+n) is on the upstream exactly
 * once: one paged read of all its Observations (each test has its own
 * upstream), counted here. */
static void every_identifier_once(const struct upstream_srv *u, int first, int n)
{
	int *seen = calloc((size_t)n, sizeof *seen);
	assert_non_null(seen);
	int other = 0;
	for (int offset = 0;; offset += 500) {
		char path[200];
		snprintf(path, sizeof path, "/fhir/R4/Observation?_count=500&_offset=%d", offset);
		struct resp r;
		assert_int_equal(upstream_do(u, "GET", path, NULL, &r), 0);
		assert_int_equal(r.status, 200);
		cJSON *b = cJSON_Parse(r.body);
		resp_free(&r);
		const cJSON *entries = cJSON_GetObjectItemCaseSensitive(b, "entry");
		int got = cJSON_GetArraySize(entries);
		const cJSON *e;
		cJSON_ArrayForEach(e, entries)
		{
			const cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "resource");
			const cJSON *id0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res, "identifier"), 0);
			const char *v = s(id0, "value");
			int k = v ? atoi(v) - first : -1;
			if (k >= 0 && k < n)
				seen[k]++;
			else
				other++;
		}
		cJSON_Delete(b);
		if (got < 500)
			break;
	}
	int missing = 0, dup = 0;
	for (int i = 0; i < n; i++) {
		if (seen[i] == 0)
			missing++;
		else if (seen[i] > 1)
			dup++;
	}
	free(seen);
	if (missing || dup)
		fprintf(stderr, "# %d missing, %d duplicated\n", missing, dup);
	assert_int_equal(missing, 0);
	assert_int_equal(dup, 0);
}

static void upstream_down_during_a_push_of_1000(void **state)
{
	(void)state;
	unsigned port = free_port();
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, port), 0);
	upstream_stop(&u); /* down before the push */
	char extra[1024];
	/* short retry delays for the test, so attempts must not run out while it is down */
	upstream_gw_config(extra, sizeof extra, &u, "\"*\":\"store-and-forward\"", ",\"max_attempts\":1000");
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	for (int k = 0; k < 10; k++)
		push(&g, k * 100, 100);
	sleep_ms(300);
	assert_int_equal(outbox_number(&g, "pending"), 1000);
	/* back up on the same port: everything arrives, exactly once */
	assert_int_equal(upstream_start(&u, port), 0);
	assert_true(drained(&g, 120000));
	assert_int_equal(outbox_number(&g, "dead"), 0);
	every_identifier_once(&u, 0, 1000);
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	assert_non_null(strstr(r.body, "crosswalk_outbox_delivered_total 1000"));
	assert_non_null(strstr(r.body, "crosswalk_outbox_pending 0"));
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

static void kill_9_during_delivery(void **state)
{
	(void)state;
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	/* slow deliveries so the kill lands mid-way */
	fault(&u, "{\"fault\":\"delay\",\"ms\":15,\"count\":-1}");
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u, "\"*\":\"store-and-forward\"", ",\"max_attempts\":1000");
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	for (int k = 0; k < 3; k++)
		push(&g, 5000 + k * 100, 100);
	sleep_ms(800);
	long left = outbox_number(&g, "pending");
	assert_true(left > 0 && left < 300); /* some delivered, some not */
	char dir[256], again[1400];
	snprintf(dir, sizeof dir, "%s", g.dir);
	kill(g.pid, SIGKILL);
	gw_stop(&g, 5000);
	snprintf(again, sizeof again, "%s,\"data_dir\":\"%s/var\"", extra, dir);
	assert_int_equal(gw_start(&g, again), 0);
	assert_true(drained(&g, 120000));
	every_identifier_once(&u, 5000, 300);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

static void faults_are_retried_or_dead_lettered(void **state)
{
	(void)state;
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u, "\"*\":\"store-and-forward\"", ",\"max_attempts\":6");
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);

	/* three 500s, then success */
	fault(&u, "{\"fault\":\"status\",\"status\":500,\"count\":3,\"method\":\"PUT\"}");
	push(&g, 7000, 1);
	assert_true(drained(&g, 30000));
	every_identifier_once(&u, 7000, 1);

	/* 429 with Retry-After: 1 — the next attempt waits that long */
	fault(&u, "{\"fault\":\"status\",\"status\":429,\"retryAfter\":1,\"count\":1,\"method\":\"PUT\"}");
	long t0 = now_ms();
	push(&g, 7001, 1);
	assert_true(drained(&g, 30000));
	assert_true(now_ms() - t0 >= 900);
	every_identifier_once(&u, 7001, 1);

	/* a stall longer than the timeout is retried */
	fault(&u, "{\"fault\":\"stall\",\"seconds\":5,\"count\":1,\"method\":\"PUT\"}");
	push(&g, 7002, 1);
	assert_true(drained(&g, 30000));
	every_identifier_once(&u, 7002, 1);

	/* the answer lost after the upstream committed: the retry overwrites */
	fault(&u, "{\"fault\":\"status\",\"status\":503,\"afterCommit\":true,\"count\":1,\"method\":\"PUT\"}");
	push(&g, 7003, 1);
	assert_true(drained(&g, 30000));
	every_identifier_once(&u, 7003, 1);

	/* a refusal (400) is a dead letter with its error; $retry resends it */
	fault(&u, "{\"fault\":\"status\",\"status\":400,\"count\":1,\"method\":\"PUT\"}");
	push(&g, 7004, 1);
	long until = now_ms() + 10000;
	while (outbox_number(&g, "dead") != 1 && now_ms() < until)
		sleep_ms(50);
	assert_int_equal(outbox_number(&g, "dead"), 1);
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/outbox?state=dead", NULL, NULL, 0, &r), 0);
	cJSON *j = cJSON_Parse(r.body);
	const cJSON *rec = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "records"), 0);
	assert_non_null(rec);
	assert_non_null(strstr(s(rec, "last_error"), "400"));
	char path[64];
	snprintf(path, sizeof path, "/outbox/%.0f/$retry", cJSON_GetObjectItemCaseSensitive(rec, "id")->valuedouble);
	cJSON_Delete(j);
	resp_free(&r);
	assert_int_equal(upstream_count(&u, "Observation", "urn:push|7004"), 0);
	assert_int_equal(http_do(&g, "POST", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 202);
	resp_free(&r);
	assert_true(drained(&g, 30000));
	every_identifier_once(&u, 7004, 1);
	assert_int_equal(outbox_number(&g, "dead"), 0);

	/* attempts used up: a dead letter too */
	fault(&u, "{\"fault\":\"status\",\"status\":500,\"count\":50,\"method\":\"PUT\"}");
	push(&g, 7005, 1);
	until = now_ms() + 20000;
	while (outbox_number(&g, "dead") != 1 && now_ms() < until)
		sleep_ms(50);
	assert_int_equal(outbox_number(&g, "dead"), 1);
	struct resp m;
	assert_int_equal(http_do(&g, "GET", "/metrics", NULL, NULL, 0, &m), 0);
	assert_non_null(strstr(m.body, "crosswalk_outbox_dead 1"));
	resp_free(&m);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

static void high_water_answers_503(void **state)
{
	(void)state;
	unsigned port = free_port();
	struct upstream_srv u = {.port = port};
	snprintf(u.base, sizeof u.base, "http://127.0.0.1:%u/fhir/R4", port); /* never started */
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u, "\"*\":\"store-and-forward\"", ",\"high_water\":5");
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	push(&g, 9000, 5);
	char *b = push_bundle(9005, 1);
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/fhir", fj, b, strlen(b), &r), 0);
	assert_int_equal(r.status, 503);
	char ra[16];
	assert_non_null(resp_header(&r, "Retry-After", ra, sizeof ra));
	resp_free(&r);
	free(b);
	assert_int_equal(outbox_number(&g, "pending"), 5); /* nothing half-stored */
	assert_int_equal(gw_stop(&g, 10000), 0);
}

/* A private 0755 directory holding the built tp_upstream test plugin. */
static void test_plugin_dir(char *dir, size_t n)
{
	snprintf(dir, n, "/tmp/cw-tpup-XXXXXX");
	assert_non_null(mkdtemp(dir));
	harness_remove_at_exit(dir);
	assert_int_equal(chmod(dir, 0755), 0);
	const char *src = getenv("CW_TEST_PLUGIN_DIR");
	char from[512], to[512];
	snprintf(from, sizeof from, "%s/tp_upstream.so", src && *src ? src : "build/default/test-plugins");
	snprintf(to, sizeof to, "%s/tp_upstream.so", dir);
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	assert_non_null(in);
	assert_non_null(out);
	char buf[65536];
	size_t k;
	while ((k = fread(buf, 1, sizeof buf, in)) > 0)
		assert_int_equal(fwrite(buf, 1, k, out), k);
	fclose(in);
	fclose(out);
	assert_int_equal(chmod(to, 0755), 0);
}

static bool has_tag(const cJSON *res, const char *code)
{
	const cJSON *t;
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "meta"), "tag"))
	{
		if (s(t, "code") && !strcmp(s(t, "code"), code))
			return true;
	}
	return false;
}

static void upstream_hooks_run_on_both_paths(void **state)
{
	(void)state;
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char extra[1024], dir[256];
	upstream_gw_config(extra, sizeof extra, &u, "\"Practitioner\":\"pass-through\",\"*\":\"store-and-forward\"", NULL);
	test_plugin_dir(dir, sizeof dir);
	const char *args[] = {"--plugins", dir, NULL};
	struct gw g;
	assert_int_equal(gw_start_args(&g, extra, args), 0);

	/* pass-through: before-upstream on the way out, after-response on the way back */
	const char *pr = "{\"resourceType\":\"Practitioner\",\"identifier\":[{\"system\":\"urn:h\",\"value\":\"p1\"}]}";
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/fhir/Practitioner", fj, pr, strlen(pr), &r), 0);
	assert_int_equal(r.status, 201);
	cJSON *back = cJSON_Parse(r.body);
	assert_true(has_tag(back, "tp_upstream:before")); /* the upstream stored what the hook made */
	assert_true(has_tag(back, "tp_upstream:after"));
	cJSON_Delete(back);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/fhir/Practitioner?identifier=urn:h|p1", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *b = cJSON_Parse(r.body);
	assert_true(has_tag(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "entry"), 0),
							     "resource"),
			    "tp_upstream:after"));
	cJSON_Delete(b);
	resp_free(&r);
	const char *blocked = "{\"resourceType\":\"Practitioner\",\"identifier\":[{\"system\":\"urn:h\",\"value\":\"block-upstream\"}]}";
	assert_int_equal(http_do(&g, "POST", "/fhir/Practitioner", fj, blocked, strlen(blocked), &r), 0);
	assert_int_equal(r.status, 451);
	assert_non_null(strstr(r.body, "may not leave"));
	resp_free(&r);
	assert_int_equal(upstream_count(&u, "Practitioner", "urn:h|block-upstream"), 0);

	/* store-and-forward: the delivered copy carries the hook's change; a stopped
	 * one becomes a dead letter with the hook's reason */
	push(&g, 8000, 1);
	assert_true(drained(&g, 30000));
	struct resp q;
	assert_int_equal(upstream_do(&u, "GET", "/fhir/R4/Observation?identifier=urn:push|8000", NULL, &q), 0);
	b = cJSON_Parse(q.body);
	assert_true(has_tag(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "entry"), 0),
							     "resource"),
			    "tp_upstream:before"));
	cJSON_Delete(b);
	resp_free(&q);
	const char *tx = "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":{\"resourceType\":"
			 "\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"identifier\":[{\"system\":\"urn:h\","
			 "\"value\":\"block-upstream\"}]},\"request\":{\"method\":\"POST\",\"url\":\"Observation\"}}]}";
	assert_int_equal(http_do(&g, "POST", "/fhir", fj, tx, strlen(tx), &r), 0);
	assert_int_equal(r.status, 200); /* stored locally */
	resp_free(&r);
	long until = now_ms() + 10000;
	while (outbox_number(&g, "dead") != 1 && now_ms() < until)
		sleep_ms(50);
	assert_int_equal(outbox_number(&g, "dead"), 1);
	assert_int_equal(http_do(&g, "GET", "/outbox?state=dead", NULL, NULL, 0, &r), 0);
	assert_non_null(strstr(r.body, "before-upstream hook"));
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

static void refused_upstream_configurations(void **state)
{
	(void)state;
	static char out[65536];
	const char *bad[] = {
		"\"upstream\":{\"base_url\":\"http://ehr.example.org/fhir\"}",
		"\"upstream\":{\"base_url\":\"ftp://127.0.0.1/fhir\"}",
		"\"upstream\":{\"base_url\":\"https://user:pw@ehr.example.org/fhir\"}",
		"\"upstream\":{\"base_url\":\"https://ehr.example.org/fhir\",\"routes\":{\"Golem\":\"local\"}}",
		"\"upstream\":{\"base_url\":\"https://ehr.example.org/fhir\",\"routes\":{\"Patient\":\"sideways\"}}",
		"\"upstream\":{\"base_url\":\"https://ehr.example.org/fhir\",\"bearer_token_env\":\"CW_TEST_UNSET_TOKEN\"}",
	};
	const char *why[] = {"loopback", "https", "credentials", "Golem", "pass-through", "CW_TEST_UNSET_TOKEN"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		int rc = gw_run_expect_exit(bad[i], NULL, 15000, out, sizeof out);
		if (rc != 2 || !strstr(out, why[i]))
			fprintf(stderr, "# %s -> %d: %s\n", bad[i], rc, out);
		assert_true(rc == 2 || rc == 1);
		assert_non_null(strstr(out, why[i]));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(refused_upstream_configurations),
		cmocka_unit_test(pass_through_every_interaction),
		cmocka_unit_test(upstream_down_during_a_push_of_1000),
		cmocka_unit_test(kill_9_during_delivery),
		cmocka_unit_test(faults_are_retried_or_dead_lettered),
		cmocka_unit_test(high_water_answers_503),
		cmocka_unit_test(upstream_hooks_run_on_both_paths),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
