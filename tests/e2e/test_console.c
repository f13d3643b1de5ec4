/* End-to-end tests of the operator console (/console): a real browser,
 * Debian's Chromium driven by playwright-core (tests/console/console.mjs, no
 * browser download), against a gateway loaded with fixtures
 * (tests/fixtures/console: a recovery plan in four dimensions, outcomes,
 * peer-support contacts; a second person whose stored texts hold markup) and
 * the real upstream test server, which refuses a delivery on purpose.
 * One run of the browser (set up once) checks what a person sees in each
 * view; each case reports one view's verdict; screenshots go to
 * build/test-artifacts/console/. Also checked without a browser: every file
 * of core/console/www is served with the console's Content-Security-Policy,
 * and /console/api/series answers the sampled counters.
 *
 * Needs node and npm (the upstream and tests/console's packages, from the npm
 * registry) and the chromium package (tools/deps.sh test); without them the
 * browser cases skip, saying why. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "e2e/harness.h"

#define FIX "tests/fixtures/console/"
#define PERSON "https://recovery.example.org/people|P-9001"
#define XSS_PERSON "https://recovery.example.org/people|P-9002"
#define ARTIFACTS "build/test-artifacts/console"

static struct gw g;
static struct upstream_srv u;
static bool have_upstream;
static const char *no_browser; /* why the browser cases skip, or NULL */

static const char *chromium_path(void)
{
	const char *p = getenv("CW_CHROMIUM");
	return p && *p ? p : "/usr/bin/chromium";
}

static void ingest(const char *format, const char *file)
{
	char path[256];
	snprintf(path, sizeof path, FIX "%s", file);
	size_t len = 0;
	char *body = read_whole_file(path, &len);
	assert_non_null(body);
	char url[64];
	snprintf(url, sizeof url, "/ingest/%s", format);
	const char *h[] = {"Content-Type: application/json", NULL};
	struct resp r;
	assert_int_equal(http_do(&g, "POST", url, h, body, len, &r), 0);
	if (r.status != 201)
		fprintf(stderr, "# ingest %s: %ld %s\n", file, r.status, r.body);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	free(body);
}

/* The upstream refuses one delivery on purpose: a dead letter for the
 * delivery view to retry. */
static void make_dead_letter(void)
{
	assert_int_equal(upstream_fault(&u, "{\"fault\":\"status\",\"status\":422,\"count\":1,\"method\":\"PUT\"}"), 0);
	const char *body = "{\"resourceType\":\"Observation\",\"id\":\"console-1\",\"status\":\"final\","
			   "\"identifier\":[{\"system\":\"urn:console\",\"value\":\"1\"}],"
			   "\"code\":{\"text\":\"a reading\"},\"valueString\":\"x\"}";
	const char *h[] = {"Content-Type: application/fhir+json", NULL};
	struct resp r;
	assert_int_equal(http_do(&g, "PUT", "/fhir/Observation/console-1", h, body, strlen(body), &r), 0);
	assert_true(r.status == 201 || r.status == 200);
	resp_free(&r);
	long until = now_ms() + 15000;
	while (gw_outbox_number(&g, "dead") != 1 && now_ms() < until)
		sleep_ms(50);
	assert_int_equal(gw_outbox_number(&g, "dead"), 1);
	assert_int_equal(upstream_count(&u, "Observation", "urn:console|1"), 0);
}

/* How many samples /console/api/series answers (the live one included). */
static int series_samples(void)
{
	struct resp r;
	if (http_do(&g, "GET", "/console/api/series", NULL, NULL, 0, &r) != 0)
		return 0;
	cJSON *j = r.status == 200 ? cJSON_Parse(r.body) : NULL;
	resp_free(&r);
	int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "samples"));
	cJSON_Delete(j);
	return n;
}

/* One browser run over every view (one start of Chromium); the cases then
 * read their view's result. */
static cJSON *results;

static void run_browser(void)
{
	char cmd[2048], out[300], file[300];
	snprintf(out, sizeof out, "%s/browser.log", g.dir);
	snprintf(file, sizeof file, "%s/results.json", g.dir);
	snprintf(cmd, sizeof cmd,
		 "timeout 600 node tests/console/console.mjs --base http://127.0.0.1:%u --out " ARTIFACTS
		 " --results '%s' --chromium '%s' --identifier '" PERSON "' --xss-identifier '" XSS_PERSON
		 "' --from 2024-01-01 --to 2024-12-31 --views traffic,plugins,recovery,xss,billing,delivery,a11y >'%s' "
		 "2>&1",
		 g.port, file, chromium_path(), out);
	int rc = system(cmd);
	size_t len = 0;
	char *text = rc == 0 ? read_whole_file(file, &len) : NULL;
	results = text ? cJSON_Parse(text) : NULL;
	free(text);
	if (!results) {
		char *log = read_whole_file(out, &len);
		fprintf(stderr, "# the browser run failed (exit %d): %s\n", rc, log ? log : "");
		free(log);
	}
}

static int setup(void **state)
{
	(void)state;
	if (!upstream_missing() && upstream_install() == 0 &&
	    system("bash tests/upstream/install.sh tests/console >/dev/null 2>build/console-install.log") == 0)
		have_upstream = upstream_start(&u, 0) == 0;
	if (!have_upstream)
		no_browser = upstream_missing()
				     ? upstream_missing()
				     : "the npm packages of tests/upstream or tests/console could not be installed "
				       "(see build/console-install.log)";
	else if (access(chromium_path(), X_OK) != 0)
		no_browser = "Debian's chromium is not installed (tools/deps.sh test installs it)";
	char extra[1024] = "";
	if (have_upstream)
		upstream_gw_config(extra, sizeof extra, &u, "\"*\":\"store-and-forward\"", ",\"max_attempts\":3");
	if (gw_start(&g, have_upstream ? extra : NULL) != 0)
		return -1;
	ingest("recovery-plan", "recovery-plan.json");
	ingest("outcomes", "outcomes-instruments.json");
	ingest("outcomes", "outcomes-phq9-gad7.json");
	ingest("peer-support", "peer-support.json");
	ingest("recovery-plan", "recovery-plan-xss.json");
	if (have_upstream && !gw_outbox_drained(&g, 30000))
		return -1;
	mkdir("build/test-artifacts", 0755);
	mkdir(ARTIFACTS, 0755);
	if (!no_browser) {
		make_dead_letter();
		/* the plots need one sampled interval beside the live one: the
		 * sampler's first sample comes 5 s after the start */
		for (long until = now_ms() + 15000; series_samples() < 2 && now_ms() < until;)
			sleep_ms(200);
		run_browser();
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cJSON_Delete(results);
	gw_stop(&g, 10000);
	if (have_upstream)
		upstream_stop(&u);
	return 0;
}

/* The browser's verdict on one view. */
static void browse(const char *view)
{
	if (no_browser)
		skip_because(no_browser);
	if (!results)
		fail_msg("the browser run gave no results (see the log above)");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(results, view);
	if (!cJSON_IsString(v))
		fail_msg("the browser run has no result for the %s view", view);
	if (strcmp(v->valuestring, "ok") != 0)
		fail_msg("the console's %s view: %s", view, v->valuestring);
}

/* Without a browser: every file of www/ is served, with the policy. */
static void every_file_is_served_with_the_policy(void **state)
{
	(void)state;
	DIR *d = opendir("core/console/www");
	assert_non_null(d);
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], file[300];
		snprintf(path, sizeof path, "/console/%s", e->d_name);
		snprintf(file, sizeof file, "core/console/www/%s", e->d_name);
		size_t len = 0;
		char *want = read_whole_file(file, &len);
		assert_non_null(want);
		struct resp r;
		assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.len, len);
		assert_memory_equal(r.body, want, len);
		char csp[512];
		assert_non_null(resp_header(&r, "Content-Security-Policy", csp, sizeof csp));
		assert_non_null(strstr(csp, "script-src 'self'"));
		assert_null(strstr(csp, "unsafe-inline"));
		resp_free(&r);
		free(want);
		n++;
	}
	closedir(d);
	assert_true(n >= 10);
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/console", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "<script type=\"module\" src=\"/console/app.js\">"));
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/console/no-such-file.js", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	resp_free(&r);
}

/* The series: a live sample at least, counting the requests made. */
static void series_counts_the_requests(void **state)
{
	(void)state;
	struct resp r;
	for (int i = 0; i < 20; i++) {
		assert_int_equal(http_do(&g, "GET", "/healthz", NULL, NULL, 0, &r), 0);
		resp_free(&r);
	}
	assert_int_equal(http_do(&g, "GET", "/console/api/series", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *j = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "samples");
	assert_true(cJSON_GetArraySize(s) >= 1);
	const cJSON *last = cJSON_GetArrayItem(s, cJSON_GetArraySize(s) - 1);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(last, "live")));
	assert_true(cJSON_GetObjectItemCaseSensitive(last, "rps")->valuedouble > 0);
	assert_true(cJSON_GetObjectItemCaseSensitive(last, "p99_ms")->valuedouble >=
		    cJSON_GetObjectItemCaseSensitive(last, "p50_ms")->valuedouble);
	if (have_upstream)
		assert_non_null(cJSON_GetObjectItemCaseSensitive(last, "outbox_pending"));
	assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(j, "interval_s")->valuedouble, 5);
	cJSON_Delete(j);
}

/* The counters GET /plugins gives each plugin: two recovery plans mapped,
 * then a refused document counted as a refusal. */
static void plugin_counters_count_calls(void **state)
{
	(void)state;
	struct resp r;
	const char *h[] = {"Content-Type: application/json", NULL};
	assert_int_equal(http_do(&g, "POST", "/ingest/recovery-plan", h, "{\"format\":\"nonsense\"}", 22, &r), 0);
	assert_true(r.status >= 400 && r.status < 500);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/plugins", NULL, NULL, 0, &r), 0);
	cJSON *j = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *p, *seen = NULL;
	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(j, "plugins"))
	{
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(p, "name");
		if (cJSON_IsString(n) && !strcmp(n->valuestring, "recovery_plan"))
			seen = cJSON_GetObjectItemCaseSensitive(p, "counters");
	}
	assert_non_null(seen);
	assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(seen, "documents_mapped")->valuedouble, 2);
	assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(seen, "refusals")->valuedouble, 1);
	assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(seen, "failures")->valuedouble, 0);
	cJSON_Delete(j);
}

static void traffic_plots_have_points(void **state)
{
	(void)state;
	browse("traffic");
}

static void plugins_and_their_counters(void **state)
{
	(void)state;
	browse("plugins");
}

static void recovery_shows_four_dimensions_and_both_series(void **state)
{
	(void)state;
	browse("recovery");
}

static void stored_markup_never_runs(void **state)
{
	(void)state;
	browse("xss");
}

static void billing_chart_matches_the_extract(void **state)
{
	(void)state;
	browse("billing");
}

/* The upstream refused one delivery (setup): it showed as a dead letter;
 * "retry" in the browser delivered it. */
static void dead_letter_retried_from_the_browser(void **state)
{
	(void)state;
	browse("delivery");
	assert_true(gw_outbox_drained(&g, 30000));
	assert_int_equal(upstream_count(&u, "Observation", "urn:console|1"), 1);
	assert_int_equal(gw_outbox_number(&g, "dead"), 0);
}

static void no_serious_accessibility_violation(void **state)
{
	(void)state;
	browse("a11y");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_file_is_served_with_the_policy),
		cmocka_unit_test(series_counts_the_requests),
		cmocka_unit_test(plugin_counters_count_calls),
		cmocka_unit_test(traffic_plots_have_points),
		cmocka_unit_test(plugins_and_their_counters),
		cmocka_unit_test(recovery_shows_four_dimensions_and_both_series),
		cmocka_unit_test(stored_markup_never_runs),
		cmocka_unit_test(billing_chart_matches_the_extract),
		cmocka_unit_test(dead_letter_retried_from_the_browser),
		cmocka_unit_test(no_serious_accessibility_violation),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
