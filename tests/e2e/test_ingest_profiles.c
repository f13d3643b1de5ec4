/* End-to-end tests of validation.ingest: what a plugin's mapper makes is
 * held to the profiles it claims, on POST /ingest/{format} and in
 * `crosswalk map --from`. The test plugin tp_claims (tests/plugins) makes a
 * transaction whose Observation breaks the recovery-strength profile it
 * claims ("bad"), one with no claims ("good"), or one claiming a profile no
 * one loaded ("unknown"). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fjson.h"
#include "e2e/harness.h"

static struct gw gw;
static char tdir[256];

/* A private plugin folder holding tp_claims only. */
static int setup(void **state)
{
	(void)state;
	harness_test_plugins(tdir, sizeof tdir, "tp_claims", NULL);
	const char *args[] = {"--plugins", tdir, NULL};
	return gw_start_args(&gw, NULL, args);
}

static int teardown(void **state)
{
	(void)state;
	return gw_stop(&gw, 5000);
}

static const char *const json_ct[] = {"Content-Type: application/json", NULL};

static long ingest(const struct gw *g, const char *query, const char *doc, struct resp *r)
{
	char path[128];
	snprintf(path, sizeof path, "/ingest/claims%s", query);
	assert_int_equal(http_do(g, "POST", path, json_ct, doc, strlen(doc), r), 0);
	return r->status;
}

static long status_of(const struct gw *g, const char *path)
{
	struct resp r;
	assert_int_equal(http_do(g, "GET", path, NULL, NULL, 0, &r), 0);
	resp_free(&r);
	return r.status;
}

/* By default a resource that fails a profile it claims refuses the whole
 * ingest with 422, naming the plugin, the entry and the rule; nothing of
 * the transaction is stored, in preview or not. */
static void refused_by_default(void **state)
{
	(void)state;
	const char *queries[] = {"?preview=true", ""};
	for (size_t i = 0; i < 2; i++) {
		struct resp r;
		assert_int_equal(ingest(&gw, queries[i], "\"bad\"", &r), 422);
		cJSON *oo = fjson_parse(r.body, r.len, NULL, NULL);
		assert_non_null(oo);
		const cJSON *is = harness_oo_issue(oo, "profile-type", "Observation.valueInteger");
		if (!is)
			print_message("# %.*s\n", (int)r.len, r.body);
		assert_non_null(is);
		assert_string_equal(cJSON_GetObjectItem(is, "severity")->valuestring, "error");
		const char *d = cJSON_GetObjectItem(is, "diagnostics")->valuestring;
		assert_non_null(strstr(d, "plugin tp_claims"));
		assert_non_null(strstr(d, "claims mapper's entry 1 (Observation claims-o)"));
		assert_non_null(strstr(d, "refused"));
		assert_non_null(strstr(d, "recovery-strength"));
		cJSON_Delete(oo);
		resp_free(&r);
	}
	assert_int_equal(status_of(&gw, "/fhir/Basic/claims-b"), 404);
	assert_int_equal(status_of(&gw, "/fhir/Observation/claims-o"), 404);
}

/* Output without claims is stored; a claim of a profile no one loaded is
 * stored with the warning in the answer's headers. */
static void stored_with_warnings(void **state)
{
	(void)state;
	struct resp r;
	assert_int_equal(ingest(&gw, "", "\"good\"", &r), 201);
	char h[512];
	assert_null(resp_header(&r, "X-Crosswalk-Warnings", h, sizeof h));
	resp_free(&r);
	assert_int_equal(status_of(&gw, "/fhir/Patient/claims-p"), 200);
	assert_int_equal(ingest(&gw, "", "\"unknown\"", &r), 201);
	assert_non_null(resp_header(&r, "X-Crosswalk-Warnings", h, sizeof h));
	assert_string_equal(h, "1");
	assert_non_null(resp_header(&r, "X-Crosswalk-Warning", h, sizeof h));
	assert_non_null(strstr(h, "plugin tp_claims"));
	assert_non_null(strstr(h, "urn:test:no-such-profile"));
	resp_free(&r);
}

/* validation.ingest "warn" stores the output with the errors as warnings;
 * "off" checks nothing; another value stops the start. */
static void warn_and_off(void **state)
{
	(void)state;
	const char *args[] = {"--plugins", tdir, NULL};
	struct gw g2;
	assert_int_equal(gw_start_args(&g2, "\"validation\":{\"ingest\":\"warn\"}", args), 0);
	struct resp r;
	assert_int_equal(ingest(&g2, "", "\"bad\"", &r), 201);
	char h[512];
	assert_non_null(resp_header(&r, "X-Crosswalk-Warning", h, sizeof h));
	assert_non_null(strstr(h, "plugin tp_claims"));
	assert_null(strstr(h, "refused"));
	resp_free(&r);
	assert_int_equal(status_of(&g2, "/fhir/Observation/claims-o"), 200);
	assert_int_equal(gw_stop(&g2, 5000), 0);

	assert_int_equal(gw_start_args(&g2, "\"validation\":{\"ingest\":\"off\"}", args), 0);
	assert_int_equal(ingest(&g2, "", "\"bad\"", &r), 201);
	assert_null(resp_header(&r, "X-Crosswalk-Warnings", h, sizeof h));
	resp_free(&r);
	assert_int_equal(gw_stop(&g2, 5000), 0);

	char out[4096] = "";
	const char *const serve[] = {NULL};
	assert_int_equal(gw_run_expect_exit("\"validation\":{\"ingest\":\"maybe\"}", serve, 15000, out, sizeof out), 2);
	assert_non_null(strstr(out, "validation.ingest"));
}

/* `crosswalk map --from` holds the mapper to its claims the same way. */
static void map_command(void **state)
{
	(void)state;
	char doc[300], out[1 << 15];
	snprintf(doc, sizeof doc, "%s/doc.json", tdir);
	const char *texts[] = {"\"bad\"", "\"good\""};
	for (size_t i = 0; i < 2; i++) {
		FILE *f = fopen(doc, "wb");
		assert_non_null(f);
		fputs(texts[i], f);
		fclose(f);
		const char *args[] = {"map", "--from", "claims", "--plugins", tdir, doc, NULL};
		int rc = gw_run_command(NULL, args, 15000, out, sizeof out);
		if (rc != (i == 0 ? 1 : 0))
			print_message("# %s: exit %d: %s\n", texts[i], rc, out);
		assert_int_equal(rc, i == 0 ? 1 : 0);
		if (i == 0) {
			assert_non_null(strstr(out, "plugin tp_claims"));
			assert_non_null(strstr(out, "does not meet a profile it claims, refused"));
			assert_null(strstr(out, "\"transaction\""));
		} else {
			assert_non_null(strstr(out, "\"transaction\""));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(refused_by_default),
		cmocka_unit_test(stored_with_warnings),
		cmocka_unit_test(warn_and_off),
		cmocka_unit_test(map_command),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
