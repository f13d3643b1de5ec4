/* The payer rule tables of the billing plugin (plugins.billing.payer_rules),
 * end to end: a gateway started with the plugins section of the shipped
 * conf/examples/billing.json (a New Jersey-style payer NJ-MCD and a North
 * Carolina-style payer NC-MCD), peer-support version 2 logs ingested over
 * HTTP, then the billing extract and Claim/$build of the period. Every rule
 * of the table has an encounter that breaks it and one that keeps it, so
 * removing a rule (or its check) fails a case here. */
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
#include "testenv.h"

#define FIXTURE "tests/fixtures/billing/payers-peer-support.json"
#define PERIOD "from=2025-11-01&to=2025-11-30"

static struct gw g;
static char *plugins_json; /* the shipped table's "plugins" section */

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static const char *sget(const cJSON *o, const char *k)
{
	const cJSON *v = get(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int gw_up(void **state)
{
	(void)state;
	size_t n;
	char *conf = read_whole_file("conf/examples/billing.json", &n);
	cJSON *c = conf ? cJSON_Parse(conf) : NULL;
	free(conf);
	plugins_json = c ? cJSON_PrintUnformatted(get(c, "plugins")) : NULL;
	cJSON_Delete(c);
	if (!plugins_json)
		return -1;
	size_t len = strlen(plugins_json) + 16;
	char *extra = malloc(len);
	snprintf(extra, len, "\"plugins\":%s", plugins_json);
	int rc = gw_start(&g, extra);
	free(extra);
	if (rc != 0)
		return -1;
	char *doc = read_whole_file(FIXTURE, &n);
	const char *ct[] = {"Content-Type: application/json", NULL};
	struct resp r;
	if (!doc || http_do(&g, "POST", "/ingest/peer-support", ct, doc, n, &r) != 0 || r.status != 201) {
		fprintf(stderr, "# ingest: %ld %s\n", r.status, r.body);
		free(doc);
		return -1;
	}
	resp_free(&r);
	free(doc);
	return 0;
}

static int gw_down(void **state)
{
	(void)state;
	free(plugins_json);
	return gw_stop(&g, 15000) == 0 ? 0 : -1;
}

/* The row of the extract for the program's encounter id key. */
static const cJSON *row_of(const cJSON *rows, const char *key)
{
	const cJSON *o;
	cJSON_ArrayForEach(o, rows) if (sget(get(o, "encounter_identifier"), "value") &&
					!strcmp(sget(get(o, "encounter_identifier"), "value"), key)) return o;
	return NULL;
}

static cJSON *extract(void)
{
	struct resp r;
	const char *acc[] = {"Accept: application/json", NULL};
	assert_int_equal(http_do(&g, "GET", "/export/billing?" PERIOD, acc, NULL, 0, &r), 0);
	if (r.status != 200)
		fprintf(stderr, "# %s\n", r.body);
	assert_int_equal(r.status, 200);
	cJSON *doc = cJSON_Parse(r.body);
	resp_free(&r);
	assert_non_null(doc);
	return doc;
}

/* The reasons of a not-billed row, "a;b". */
static void reasons_of(const cJSON *row, char *out, size_t cap)
{
	const cJSON *x;
	out[0] = '\0';
	cJSON_ArrayForEach(x, get(row, "reasons"))
	{
		size_t l = strlen(out);
		snprintf(out + l, cap - l, "%s%s", l ? ";" : "", sget(x, "reason"));
	}
}

static void each_rule_bills_or_says_why(void **state)
{
	(void)state;
	cJSON *doc = extract();
	const cJSON *lines = get(doc, "lines"), *nb = get(doc, "not_billed");
	static const struct {
		const char *key, *reasons; /* NULL: billed */
		int units;
		const char *mods;
	} want[] = {
		{"nj-ok", NULL, 4, "HF"},
		{"nj-no-supervisor", "no-supervisor", 0, NULL},
		{"nj-not-sud", "diagnosis-not-covered", 0, NULL},
		{"nj-expired", "credential-expired", 0, NULL},
		{"nc-group", NULL, 8, "HQ"},
		{"nc-16", NULL, 16, ""},
		{"nc-over", "authorization-exceeded", 0, NULL},
		{"nc-authorized", NULL, 2, ""},
		{"nc-no-plan", "no-plan-of-care", 0, NULL},
		{"nc-next-plan", NULL, 2, ""}, /* a new plan of care: a new episode */
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		const cJSON *row = row_of(want[i].reasons ? nb : lines, want[i].key);
		if (!row)
			fprintf(stderr, "# %s not among the %s rows: %s\n", want[i].key,
				want[i].reasons ? "not billed" : "billed", cJSON_PrintUnformatted(doc));
		assert_non_null(row);
		if (want[i].reasons) {
			char buf[256];
			reasons_of(row, buf, sizeof buf);
			if (strcmp(buf, want[i].reasons) != 0)
				fprintf(stderr, "# %s: %s\n", want[i].key, buf);
			assert_string_equal(buf, want[i].reasons);
			continue;
		}
		assert_int_equal(get(row, "units")->valueint, want[i].units);
		char mods[64] = "";
		const cJSON *m;
		cJSON_ArrayForEach(m, get(row, "modifiers"))
		{
			size_t l = strlen(mods);
			snprintf(mods + l, sizeof mods - l, "%s%s", l ? ";" : "", m->valuestring);
		}
		if (strcmp(mods, want[i].mods) != 0)
			fprintf(stderr, "# %s modifiers: %s\n", want[i].key, mods);
		assert_string_equal(mods, want[i].mods);
	}
	assert_int_equal(cJSON_GetArraySize(lines), 5);
	assert_int_equal(cJSON_GetArraySize(nb), 5);
	cJSON_Delete(doc);
}

/* The Claims carry the supervisor in careTeam and the prior authorization
 * in insurance.preAuthRef. */
static void claims_carry_supervisor_and_authorization(void **state)
{
	(void)state;
	const char *body = "{\"resourceType\":\"Parameters\",\"parameter\":["
			   "{\"name\":\"from\",\"valueDate\":\"2025-11-01\"},"
			   "{\"name\":\"to\",\"valueDate\":\"2025-11-30\"}]}";
	const char *ct[] = {"Content-Type: application/fhir+json", NULL};
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/fhir/Claim/$build", ct, body, strlen(body), &r), 0);
	if (r.status != 200)
		fprintf(stderr, "# %s\n", r.body);
	assert_int_equal(r.status, 200);
	cJSON *b = cJSON_Parse(r.body);
	resp_free(&r);
	bool supervisor = false, preauth = false;
	const cJSON *e;
	cJSON_ArrayForEach(e, get(b, "entry"))
	{
		const cJSON *cl = get(e, "resource"), *t;
		if (!sget(cl, "resourceType") || strcmp(sget(cl, "resourceType"), "Claim") != 0)
			continue;
		cJSON_ArrayForEach(t, get(cl, "careTeam"))
		{
			const cJSON *c = cJSON_GetArrayItem(get(get(t, "role"), "coding"), 0);
			supervisor |= sget(c, "code") && !strcmp(sget(c, "code"), "supervisor");
		}
		const cJSON *pa = get(cJSON_GetArrayItem(get(cl, "insurance"), 0), "preAuthRef");
		preauth |= pa && !strcmp(cJSON_GetArrayItem(pa, 0)->valuestring, "PA-77");
	}
	assert_true(supervisor);
	assert_true(preauth);
	cJSON_Delete(b);
}

/* `crosswalk billing` over the same store prints the same extract, with
 * the payer rules' reasons. */
static void command_prints_the_same_reasons(void **state)
{
	(void)state;
	struct resp r;
	const char *acc[] = {"Accept: application/json", NULL};
	assert_int_equal(http_do(&g, "GET", "/export/billing?" PERIOD, acc, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	size_t len = strlen(plugins_json) + strlen(g.dir) + 64;
	char *extra = malloc(len);
	snprintf(extra, len, "\"data_dir\":\"%s/var\",\"plugins\":%s", g.dir, plugins_json);
	static char out[1 << 16];
	const char *args[] = {"billing", "--from", "2025-11-01", "--to", "2025-11-30", NULL};
	assert_int_equal(gw_run_command(extra, args, 15000, out, sizeof out), 0);
	free(extra);
	if (strncmp(out, r.body, strlen(r.body)) != 0)
		fprintf(stderr, "# got %s\n", out);
	assert_int_equal(strncmp(out, r.body, strlen(r.body)), 0);
	assert_non_null(strstr(out, "\"authorization-exceeded\""));
	assert_non_null(strstr(out, "\"credential-expired\""));
	resp_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(each_rule_bills_or_says_why),
		cmocka_unit_test(claims_carry_supervisor_and_authorization),
		cmocka_unit_test(command_prints_the_same_reasons),
	};
	return cmocka_run_group_tests_name("billing payer rules", tests, gw_up, gw_down);
}
