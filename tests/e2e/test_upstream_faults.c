/* End-to-end tests of a misbehaving upstream FHIR server, against the real
 * test upstream (tests/upstream) with injected faults: an upstream that
 * hangs holds no HTTP worker (local routes, /healthz and /metrics answer
 * while more calls hang than there are workers), the bound on calls in
 * flight (503 with Retry-After), shutdown with calls hanging; Retry-After
 * values of any size, in the outbox and passed through; the upstream's own
 * text kept from clients and from the outbox; answers of the wrong type or
 * id, and URLs on another host. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e2e/harness.h"

static const char *fj[] = {"Content-Type: application/fhir+json", NULL};

static int setup(void **state)
{
	(void)state;
	if (upstream_install() != 0) {
		fprintf(stderr, "# npm install of tests/upstream failed (see build/upstream-install.log)\n");
		return -1;
	}
	return 0;
}

static void fault(const struct upstream_srv *u, const char *json) { assert_int_equal(upstream_fault(u, json), 0); }

/* How many times the upstream injected fault kind (admin stats). */
static long injected(const struct upstream_srv *u, const char *kind)
{
	struct resp r;
	if (upstream_do(u, "GET", "/_admin/stats", NULL, &r) != 0 || r.status != 200) {
		resp_free(&r);
		return -1;
	}
	cJSON *j = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "faultsInjected"), kind);
	long n = cJSON_IsNumber(v) ? (long)v->valuedouble : 0;
	cJSON_Delete(j);
	return n;
}

struct call {
	const struct gw *g;
	char path[128];
	long status; /* -1: no HTTP answer */
	pthread_t t;
};

static void *call_main(void *arg)
{
	struct call *c = arg;
	struct resp r;
	c->status = http_do(c->g, "GET", c->path, NULL, NULL, 0, &r) == 0 ? r.status : -1;
	resp_free(&r);
	return NULL;
}

/* GET path answered; returns its status and how long it took in *ms. */
static long timed_get(const struct gw *g, const char *path, long *ms, struct resp *out)
{
	long t0 = now_ms();
	int rc = http_do(g, "GET", path, NULL, NULL, 0, out);
	*ms = now_ms() - t0;
	return rc == 0 ? out->status : -1;
}

#define HANGS 6          /* pass-through calls left hanging: three times the workers */
#define UP_TIMEOUT 8000  /* the gateway's upstream.timeout_ms here */

static void a_hanging_upstream_holds_no_worker(void **state)
{
	(void)state;
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char cfg[1400];
	snprintf(cfg, sizeof cfg,
		 "\"upstream\":{\"base_url\":\"%s\",\"routes\":{\"Patient\":\"pass-through\"},\"retry_base_ms\":50,"
		 "\"retry_max_ms\":400,\"timeout_ms\":%d,\"connect_timeout_ms\":500,\"max_concurrent\":%d},"
		 "\"threads\":2,\"limits\":{\"shutdown_grace_ms\":500}",
		 u.base, UP_TIMEOUT, HANGS);
	struct gw g;
	assert_int_equal(gw_start(&g, cfg), 0);

	/* a local resource to read while the upstream hangs */
	struct resp r;
	const char *org = "{\"resourceType\":\"Organization\",\"id\":\"local-1\",\"name\":\"Local\"}";
	assert_int_equal(http_do(&g, "PUT", "/fhir/Organization/local-1", fj, org, strlen(org), &r), 0);
	assert_true(r.status == 201 || r.status == 200);
	resp_free(&r);

	char fj_hang[160];
	snprintf(fj_hang, sizeof fj_hang, "{\"fault\":\"hang\",\"count\":%d,\"method\":\"GET\",\"path\":\"Patient\"}", HANGS);
	fault(&u, fj_hang);
	struct call calls[HANGS];
	for (int i = 0; i < HANGS; i++) {
		calls[i] = (struct call){.g = &g, .status = 0};
		snprintf(calls[i].path, sizeof calls[i].path, "/fhir/Patient/hang-%d", i);
		assert_int_equal(pthread_create(&calls[i].t, NULL, call_main, &calls[i]), 0);
	}
	/* every one of them reaches the upstream and hangs there (a gateway
	 * whose workers wait for the upstream gets only as many there as it has
	 * workers, and then cannot answer anything else) */
	long until = now_ms() + 3000;
	while (injected(&u, "hang") < HANGS && now_ms() < until)
		sleep_ms(50);
	long t_hung = now_ms();

	/* the gateway still answers, well before the upstream's timeout */
	long ms;
	assert_int_equal(timed_get(&g, "/healthz", &ms, &r), 200);
	assert_true(ms < UP_TIMEOUT / 2);
	assert_int_equal(injected(&u, "hang"), HANGS);
	cJSON *h = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *hu = cJSON_GetObjectItemCaseSensitive(h, "upstream");
	assert_non_null(hu);
	assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(hu, "in_flight")->valuedouble, HANGS);
	assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(hu, "max_concurrent")->valuedouble, HANGS);
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(hu, "last_success"))); /* none answered yet */
	cJSON_Delete(h);
	assert_int_equal(timed_get(&g, "/metrics", &ms, &r), 200);
	assert_true(ms < UP_TIMEOUT / 2);
	char gauge[64];
	snprintf(gauge, sizeof gauge, "\ncrosswalk_upstream_in_flight %d\n", HANGS);
	assert_non_null(strstr(r.body, gauge));
	resp_free(&r);
	assert_int_equal(timed_get(&g, "/fhir/Organization/local-1", &ms, &r), 200);
	assert_true(ms < UP_TIMEOUT / 2);
	assert_non_null(strstr(r.body, "\"Local\""));
	resp_free(&r);
	assert_int_equal(timed_get(&g, "/fhir/metadata", &ms, &r), 200);
	assert_true(ms < UP_TIMEOUT / 2);
	resp_free(&r);

	/* one more pass-through call is beyond the bound: 503 with Retry-After */
	assert_int_equal(timed_get(&g, "/fhir/Patient/one-more", &ms, &r), 503);
	assert_true(ms < UP_TIMEOUT / 2);
	char ra[32];
	assert_non_null(resp_header(&r, "Retry-After", ra, sizeof ra));
	assert_true(atoi(ra) >= 1);
	assert_non_null(strstr(r.body, "OperationOutcome"));
	resp_free(&r);
	/* so is the pass-through part of a batch mixing local and pass-through
	 * entries: its local entry is done, the other answers 503 */
	const char *mixed =
		"{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":["
		"{\"resource\":{\"resourceType\":\"Organization\",\"name\":\"Mixed\"},\"request\":{\"method\":\"POST\",\"url\":\"Organization\"}},"
		"{\"request\":{\"method\":\"GET\",\"url\":\"Patient/mixed\"}}]}";
	long t_mixed = now_ms();
	assert_int_equal(http_do(&g, "POST", "/fhir", fj, mixed, strlen(mixed), &r), 0);
	assert_true(now_ms() - t_mixed < UP_TIMEOUT / 2);
	assert_int_equal(r.status, 200);
	cJSON *mb = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *me = cJSON_GetObjectItemCaseSensitive(mb, "entry");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(me, 0), "response"), "status")->valuestring, "201");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(me, 1), "response"), "status")->valuestring, "503");
	cJSON_Delete(mb);
	assert_true(now_ms() - t_hung < UP_TIMEOUT); /* all of it while the calls still hung */

	/* the hanging calls end at the upstream's timeout: 504 */
	for (int i = 0; i < HANGS; i++) {
		pthread_join(calls[i].t, NULL);
		assert_int_equal(calls[i].status, 504);
	}
	assert_int_equal(http_do(&g, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	h = cJSON_Parse(r.body);
	resp_free(&r);
	hu = cJSON_GetObjectItemCaseSensitive(h, "upstream");
	assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(hu, "in_flight")->valuedouble, 0);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(hu, "state")->valuestring, "failing");
	assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(hu, "last_failure")));
	assert_true(cJSON_GetObjectItemCaseSensitive(hu, "refused_busy")->valuedouble >= 1);
	cJSON_Delete(h);

	/* the upstream answers again: ok */
	const char *pat = "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Back\"}]}";
	assert_int_equal(http_do(&g, "POST", "/fhir/Patient", fj, pat, strlen(pat), &r), 0);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	assert_non_null(strstr(r.body, "\"state\":\"ok\""));
	resp_free(&r);

	/* stopping with calls hanging: they are cut off and the gateway exits 0 */
	fault(&u, fj_hang);
	for (int i = 0; i < HANGS; i++) {
		calls[i].status = 0;
		assert_int_equal(pthread_create(&calls[i].t, NULL, call_main, &calls[i]), 0);
	}
	until = now_ms() + 5000;
	while (injected(&u, "hang") < 2 * HANGS && now_ms() < until)
		sleep_ms(50);
	assert_int_equal(injected(&u, "hang"), 2 * HANGS);
	long t_stop = now_ms();
	assert_int_equal(gw_stop(&g, 10000), 0);
	assert_true(now_ms() - t_stop < UP_TIMEOUT);
	for (int i = 0; i < HANGS; i++) {
		pthread_join(calls[i].t, NULL);
		assert_true(calls[i].status == 502 || calls[i].status == -1);
	}
	upstream_stop(&u);
}

/* A gateway on u: routes (members of upstream.routes), retry_max_ms, then
 * more members of "upstream" (starting with a comma, or ""). */
static void start_gw(struct gw *g, const struct upstream_srv *u, const char *routes, int retry_max_ms, const char *more)
{
	char cfg[1600];
	snprintf(cfg, sizeof cfg,
		 "\"upstream\":{\"base_url\":\"%s\",\"routes\":{%s},\"retry_base_ms\":50,\"retry_max_ms\":%d,"
		 "\"timeout_ms\":3000,\"connect_timeout_ms\":500,\"max_attempts\":4%s}",
		 u->base, routes, retry_max_ms, more);
	assert_int_equal(gw_start(g, cfg), 0);
}

/* PUT Patient/id, acknowledged (stored, queued for the upstream). */
static void put_patient(const struct gw *g, const char *id)
{
	char body[256], path[128];
	snprintf(body, sizeof body, "{\"resourceType\":\"Patient\",\"id\":\"%s\",\"name\":[{\"family\":\"Queued\"}]}", id);
	snprintf(path, sizeof path, "/fhir/Patient/%s", id);
	struct resp r;
	assert_int_equal(http_do(g, "PUT", path, fj, body, strlen(body), &r), 0);
	assert_true(r.status == 201 || r.status == 200);
	resp_free(&r);
}

/* Whether the upstream has Patient/id. */
static bool upstream_has(const struct upstream_srv *u, const char *id)
{
	char path[128];
	snprintf(path, sizeof path, "/fhir/R4/Patient/%s", id);
	struct resp r;
	bool has = upstream_do(u, "GET", path, NULL, &r) == 0 && r.status == 200;
	resp_free(&r);
	return has;
}

static void retry_after_is_bounded_in_the_outbox(void **state)
{
	(void)state;
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	struct gw g;
	start_gw(&g, &u, "\"Patient\":\"store-and-forward\"", 1000, "");

	/* under the cap, the wait is as told: Retry-After: 1 */
	fault(&u, "{\"fault\":\"status\",\"status\":429,\"retryAfter\":1,\"count\":1,\"method\":\"PUT\"}");
	long t0 = now_ms();
	put_patient(&g, "ra-1");
	assert_true(gw_outbox_drained(&g, 20000));
	assert_true(now_ms() - t0 >= 900);
	assert_true(upstream_has(&u, "ra-1"));

	/* 10^12 seconds: clamped to retry_max_ms, not parked for millennia */
	fault(&u, "{\"fault\":\"status\",\"status\":503,\"retryAfter\":\"1000000000000\",\"count\":1,\"method\":\"PUT\"}");
	put_patient(&g, "ra-2");
	assert_true(gw_outbox_drained(&g, 10000));
	assert_true(upstream_has(&u, "ra-2"));

	/* 10^20 seconds (beyond 64 bits): twice the cap, not retried at once and
	 * dead-lettered */
	fault(&u, "{\"fault\":\"status\",\"status\":429,\"retryAfter\":\"100000000000000000000\",\"count\":2,\"method\":\"PUT\"}");
	t0 = now_ms();
	put_patient(&g, "ra-3");
	assert_true(gw_outbox_drained(&g, 10000));
	assert_true(now_ms() - t0 >= 1800);
	assert_true(upstream_has(&u, "ra-3"));

	/* an HTTP-date in the past: at once; one years ahead: the cap */
	fault(&u, "{\"fault\":\"status\",\"status\":503,\"retryAfter\":\"Sun, 06 Nov 1994 08:49:37 GMT\",\"count\":1,\"method\":\"PUT\"}");
	put_patient(&g, "ra-4");
	assert_true(gw_outbox_drained(&g, 10000));
	fault(&u, "{\"fault\":\"status\",\"status\":503,\"retryAfter\":\"Fri, 31 Dec 9999 23:59:59 GMT\",\"count\":1,\"method\":\"PUT\"}");
	put_patient(&g, "ra-5");
	assert_true(gw_outbox_drained(&g, 10000));
	assert_true(upstream_has(&u, "ra-4") && upstream_has(&u, "ra-5"));
	assert_int_equal(gw_outbox_number(&g, "dead"), 0);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

static void retry_after_passed_through_is_bounded(void **state)
{
	(void)state;
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	struct gw g;
	start_gw(&g, &u, "\"Patient\":\"pass-through\"", 120000, "");
	const struct {
		const char *value, *expect;
	} cases[] = {
		{"\"100000000000000000000\"", "120"},
		{"\"1000000000000\"", "120"},
		{"7", "7"},
		{"\"Fri, 31 Dec 9999 23:59:59 GMT\"", "120"},
		{"\"Sun, 06 Nov 1994 08:49:37 GMT\"", "0"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char f[256];
		snprintf(f, sizeof f, "{\"fault\":\"status\",\"status\":503,\"retryAfter\":%s,\"count\":1,\"method\":\"GET\"}",
			 cases[i].value);
		fault(&u, f);
		struct resp r;
		assert_int_equal(http_do(&g, "GET", "/fhir/Patient/x", NULL, NULL, 0, &r), 0);
		assert_int_equal(r.status, 503);
		char ra[64];
		assert_non_null(resp_header(&r, "Retry-After", ra, sizeof ra));
		assert_string_equal(ra, cases[i].expect);
		resp_free(&r);
	}
	/* a value that is neither is not passed on */
	fault(&u, "{\"fault\":\"status\",\"status\":503,\"retryAfter\":\"soon\",\"count\":1,\"method\":\"GET\"}");
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/fhir/Patient/x", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 503);
	char ra[64];
	assert_null(resp_header(&r, "Retry-After", ra, sizeof ra));
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

/* An OperationOutcome as a careless server writes it: its stack in the text. */
#define LEAKY_OO                                                                                                       \
	"{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\",\"code\":\"processing\","            \
	"\"details\":{\"coding\":[{\"system\":\"http://example.org/codes\",\"code\":\"E42\"}],"                           \
	"\"text\":\"at /srv/secret/app.js:10\"},"                                                                          \
	"\"diagnostics\":\"TypeError: x is undefined\\n    at handler (/srv/secret/node_modules/router/index.js:42:7)\"}]}"

static void upstream_text_stays_upstream(void **state)
{
	(void)state;
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	struct gw g;
	start_gw(&g, &u, "\"Patient\":\"pass-through\",\"Organization\":\"store-and-forward\"", 400, "");

	/* pass-through: the status and the codes, not the text */
	fault(&u, "{\"fault\":\"body\",\"status\":500,\"count\":1,\"method\":\"GET\",\"body\":" LEAKY_OO "}");
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/fhir/Patient/x", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 500);
	assert_null(strstr(r.body, "/srv/secret"));
	assert_null(strstr(r.body, "TypeError"));
	assert_non_null(strstr(r.body, "\"processing\""));
	assert_non_null(strstr(r.body, "\"E42\""));
	resp_free(&r);

	/* a 4xx's words are for the client: kept, cleaned; a file path is not */
	fault(&u, "{\"fault\":\"body\",\"status\":422,\"count\":1,\"method\":\"GET\",\"body\":"
		  "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\",\"code\":\"required\","
		  "\"diagnostics\":\"Patient.name is required\\nsecond line\"}]}}");
	assert_int_equal(http_do(&g, "GET", "/fhir/Patient/x", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 422);
	assert_non_null(strstr(r.body, "\"diagnostics\":\"Patient.name is required\""));
	assert_null(strstr(r.body, "second line"));
	resp_free(&r);
	fault(&u, "{\"fault\":\"body\",\"status\":422,\"count\":1,\"method\":\"GET\",\"body\":" LEAKY_OO "}");
	assert_int_equal(http_do(&g, "GET", "/fhir/Patient/x", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 422);
	assert_null(strstr(r.body, "/srv/secret"));
	assert_non_null(strstr(r.body, "\"processing\""));
	resp_free(&r);

	/* the outbox's last_error: the status and the codes, not the text */
	fault(&u, "{\"fault\":\"body\",\"status\":400,\"count\":1,\"method\":\"PUT\",\"body\":" LEAKY_OO "}");
	const char *org = "{\"resourceType\":\"Organization\",\"id\":\"o1\",\"name\":\"Refused\"}";
	assert_int_equal(http_do(&g, "PUT", "/fhir/Organization/o1", fj, org, strlen(org), &r), 0);
	assert_true(r.status == 201 || r.status == 200);
	resp_free(&r);
	long until = now_ms() + 10000;
	while (gw_outbox_number(&g, "dead") < 1 && now_ms() < until)
		sleep_ms(50);
	assert_int_equal(http_do(&g, "GET", "/outbox?state=dead", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"last_error\":\"HTTP 400, issue processing\""));
	assert_null(strstr(r.body, "/srv/secret"));
	assert_null(strstr(r.body, "TypeError"));
	resp_free(&r);
	char *log = gw_log(&g);
	assert_null(strstr(log, "/srv/secret"));
	free(log);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

/* GET path through the gateway while the upstream answers 200 with body. */
static long answered_with(const struct upstream_srv *u, const struct gw *g, const char *method, const char *path,
			  const char *body_fault, struct resp *r)
{
	char f[2048];
	snprintf(f, sizeof f, "{\"fault\":\"body\",\"count\":1,\"method\":\"%s\",%s}", method, body_fault);
	fault(u, f);
	const char *pat = "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"New\"}]}";
	bool post = !strcmp(method, "POST");
	assert_int_equal(http_do(g, method, path, post ? fj : NULL, post ? pat : NULL, post ? strlen(pat) : 0, r), 0);
	return r->status;
}

static void wrong_or_foreign_answers(void **state)
{
	(void)state;
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	struct gw g;
	start_gw(&g, &u, "\"Patient\":\"pass-through\"", 400, "");
	struct resp r;

	/* another type, or another id, for a read: 502 */
	assert_int_equal(answered_with(&u, &g, "GET", "/fhir/Patient/p1",
				       "\"status\":200,\"body\":{\"resourceType\":\"Observation\",\"id\":\"p1\","
				       "\"status\":\"final\",\"code\":{\"text\":\"x\"}}", &r), 502);
	assert_null(strstr(r.body, "\"final\""));
	resp_free(&r);
	assert_int_equal(answered_with(&u, &g, "GET", "/fhir/Patient/p1",
				       "\"status\":200,\"body\":{\"resourceType\":\"Patient\",\"id\":\"p2\"}", &r), 502);
	resp_free(&r);
	assert_int_equal(answered_with(&u, &g, "GET", "/fhir/Patient/p1/_history/1",
				       "\"status\":200,\"body\":{\"resourceType\":\"Patient\",\"id\":\"p2\"}", &r), 502);
	resp_free(&r);
	/* a search answered with anything but a Bundle: 502 */
	assert_int_equal(answered_with(&u, &g, "GET", "/fhir/Patient?name=x",
				       "\"status\":200,\"body\":{\"resourceType\":\"Patient\",\"id\":\"p1\"}", &r), 502);
	resp_free(&r);
	/* the right one passes */
	assert_int_equal(answered_with(&u, &g, "GET", "/fhir/Patient/p1",
				       "\"status\":200,\"body\":{\"resourceType\":\"Patient\",\"id\":\"p1\"}", &r), 200);
	resp_free(&r);

	/* a Location on another host is not passed on */
	assert_int_equal(answered_with(&u, &g, "POST", "/fhir/Patient",
				       "\"status\":201,\"headers\":{\"Location\":\"https://evil.example/fhir/Patient/9/_history/1\"},"
				       "\"body\":{\"resourceType\":\"Patient\",\"id\":\"9\"}", &r), 201);
	char loc[256];
	assert_null(resp_header(&r, "Location", loc, sizeof loc));
	resp_free(&r);
	/* one on the upstream's base is rewritten to the gateway */
	char f[600];
	snprintf(f, sizeof f, "\"status\":201,\"headers\":{\"Location\":\"%s/Patient/9/_history/1\"},"
		 "\"body\":{\"resourceType\":\"Patient\",\"id\":\"9\"}", u.base);
	assert_int_equal(answered_with(&u, &g, "POST", "/fhir/Patient", f, &r), 201);
	assert_non_null(resp_header(&r, "Location", loc, sizeof loc));
	char want[128];
	snprintf(want, sizeof want, "http://127.0.0.1:%u/fhir/Patient/9/_history/1", g.port);
	assert_string_equal(loc, want);
	resp_free(&r);

	/* Bundle links and fullUrl on another host go; the entries stay */
	snprintf(f, sizeof f,
		 "\"status\":200,\"body\":{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"link\":["
		 "{\"relation\":\"self\",\"url\":\"https://evil.example/fhir/Patient?name=x\"},"
		 "{\"relation\":\"next\",\"url\":\"%s/Patient?name=x&page=2\"}],"
		 "\"entry\":[{\"fullUrl\":\"https://evil.example/fhir/Patient/p1\",\"resource\":"
		 "{\"resourceType\":\"Patient\",\"id\":\"p1\"}}]}",
		 u.base);
	assert_int_equal(answered_with(&u, &g, "GET", "/fhir/Patient?name=x", f, &r), 200);
	assert_null(strstr(r.body, "evil.example"));
	assert_non_null(strstr(r.body, "\"id\":\"p1\""));
	snprintf(want, sizeof want, "\"url\":\"http://127.0.0.1:%u/fhir/Patient?name=x&page=2\"", g.port);
	assert_non_null(strstr(r.body, want));
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_hanging_upstream_holds_no_worker),
		cmocka_unit_test(retry_after_is_bounded_in_the_outbox),
		cmocka_unit_test(retry_after_passed_through_is_bounded),
		cmocka_unit_test(upstream_text_stays_upstream),
		cmocka_unit_test(wrong_or_foreign_answers),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
