/* Person matching at the upstream (upstream.match_identifier_systems,
 * core/upstream/person_match.h), against the real Medplum test upstream
 * (tests/upstream) with Patients it already has:
 *   - the EHR's Patient carries the program's identifier beside its own MRN:
 *     the gateway's Patient is not delivered, the EHR's record keeps its
 *     MRN and is not overwritten, and the Goals and CarePlan of the push
 *     name the EHR's Patient;
 *   - two EHR Patients carry the identifier: the Patient and what refers to
 *     it wait as dead letters saying so, nothing is duplicated;
 *   - nobody carries it: the gateway's Patient is delivered as before;
 *   - without the setting, the same push duplicates the person (the
 *     behaviour the setting is there to prevent). */
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

#define SYS "https://recovery.example.org/people"

static const char *js[] = {"Content-Type: application/json", NULL};

static int setup(void **state)
{
	(void)state;
	if (upstream_missing())
		return 0; /* the tests skip */
	if (upstream_install() != 0) {
		fprintf(stderr, "# npm install of tests/upstream failed (see build/upstream-install.log)\n");
		return -1;
	}
	return 0;
}

/* Creates at the upstream a Patient with an MRN and, when value is not
 * NULL, the program's identifier; *id receives its id. */
static void ehr_patient(const struct upstream_srv *u, const char *mrn, const char *value, char *id, size_t n)
{
	char body[600];
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:ehr:mrn\",\"value\":\"%s\"}%s%s%s],"
		 "\"name\":[{\"family\":\"Record\",\"given\":[\"Ehr\"]}]}",
		 mrn, value ? ",{\"system\":\"" SYS "\",\"value\":\"" : "", value ? value : "", value ? "\"}" : "");
	struct resp r;
	assert_int_equal(upstream_do(u, "POST", "/fhir/R4/Patient", body, &r), 0);
	assert_int_equal(r.status, 201);
	cJSON *p = cJSON_Parse(r.body);
	snprintf(id, n, "%s", cJSON_GetObjectItemCaseSensitive(p, "id")->valuestring);
	cJSON_Delete(p);
	resp_free(&r);
}

/* The upstream's search answer for path (a new tree). */
static cJSON *upstream_get(const struct upstream_srv *u, const char *path)
{
	char full[400];
	snprintf(full, sizeof full, "/fhir/R4/%s", path);
	struct resp r;
	assert_int_equal(upstream_do(u, "GET", full, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *b = cJSON_Parse(r.body);
	resp_free(&r);
	return b;
}

static int entries(const cJSON *b) { return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b, "entry")); }

static const cJSON *resource(const cJSON *b, int i)
{
	return cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "entry"), i),
						"resource");
}

/* A recovery plan of person value: one goal and a plan. */
static void push_plan(const struct gw *g, const char *value)
{
	char doc[1200];
	snprintf(doc, sizeof doc,
		 "{\"version\":1,\"person\":{\"identifier\":{\"system\":\"" SYS "\",\"value\":\"%s\"},"
		 "\"pronouns\":\"she/her\"},\"plan\":{\"identifier\":{\"system\":\"urn:plans\",\"value\":\"%s-plan\"},"
		 "\"status\":\"active\",\"wellness_tools\":[\"A walk\"]},\"goals\":[{\"identifier\":{\"system\":"
		 "\"urn:goals\",\"value\":\"%s-g1\"},\"dimension\":\"home\",\"words\":\"A flat of my own.\","
		 "\"status\":\"active\",\"steps\":[{\"text\":\"Call the housing "
		 "office\",\"status\":\"not-started\"}]}]}",
		 value, value, value);
	struct resp r;
	assert_int_equal(http_do(g, "POST", "/ingest/recovery-plan", js, doc, strlen(doc), &r), 0);
	if (r.status != 201)
		fprintf(stderr, "# %s\n", r.body);
	assert_int_equal(r.status, 201);
	resp_free(&r);
}

static void start_gateway(struct gw *g, const struct upstream_srv *u, bool match)
{
	char up[1200];
	upstream_gw_config(up, sizeof up, u,
			   "\"*\":\"local\",\"Patient\":\"store-and-forward\",\"Goal\":\"store-and-forward\","
			   "\"CarePlan\":\"store-and-forward\"",
			   match ? ",\"match_identifier_systems\":[\"urn:other:system\",\"" SYS "\"]" : NULL);
	assert_int_equal(gw_start(g, up), 0);
}

static void the_ehrs_patient_is_linked_not_duplicated(void **state)
{
	(void)state;
	UPSTREAM_NEEDED();
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char ehr[80];
	ehr_patient(&u, "MRN-1", "P-1", ehr, sizeof ehr);
	struct gw g;
	start_gateway(&g, &u, true);
	push_plan(&g, "P-1");
	assert_true(gw_outbox_drained(&g, 20000));
	assert_int_equal(gw_outbox_number(&g, "dead"), 0);

	cJSON *b = upstream_get(&u, "Patient?identifier=" SYS "|P-1");
	assert_int_equal(entries(b), 1); /* one person, the EHR's */
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(resource(b, 0), "id")->valuestring, ehr);
	char *text = cJSON_PrintUnformatted(resource(b, 0));
	assert_non_null(strstr(text, "MRN-1")); /* the EHR's record is its own */
	assert_null(strstr(text, "she/her"));   /* not overwritten by the gateway's */
	free(text);
	cJSON_Delete(b);

	char path[200];
	snprintf(path, sizeof path, "Goal?subject=Patient/%s", ehr);
	b = upstream_get(&u, path);
	assert_int_equal(entries(b), 1); /* the goal names the EHR's Patient */
	cJSON_Delete(b);
	snprintf(path, sizeof path, "CarePlan?subject=Patient/%s", ehr);
	b = upstream_get(&u, path);
	assert_int_equal(entries(b), 1);
	text = cJSON_PrintUnformatted(resource(b, 0));
	char want[120];
	snprintf(want, sizeof want, "\"author\":{\"reference\":\"Patient/%s\"", ehr);
	assert_non_null(strstr(text, want)); /* every reference, not only subject */
	free(text);
	cJSON_Delete(b);
	b = upstream_get(&u, "Patient");
	assert_int_equal(entries(b), 1);
	cJSON_Delete(b);

	/* a second push (the gateway restarted: asked again) changes nothing there */
	assert_int_equal(gw_stop(&g, 10000), 0);
	start_gateway(&g, &u, true);
	push_plan(&g, "P-1"); /* the same document: nothing new to deliver */
	assert_true(gw_outbox_drained(&g, 20000));
	b = upstream_get(&u, "Patient");
	assert_int_equal(entries(b), 1);
	cJSON_Delete(b);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

static void an_ambiguous_person_waits_as_a_dead_letter(void **state)
{
	(void)state;
	UPSTREAM_NEEDED();
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char a[80], b2[80];
	ehr_patient(&u, "MRN-2a", "P-2", a, sizeof a);
	ehr_patient(&u, "MRN-2b", "P-2", b2, sizeof b2);
	struct gw g;
	start_gateway(&g, &u, true);
	push_plan(&g, "P-2");
	assert_true(gw_outbox_drained(&g, 20000));
	/* the Patient, the Goal and the CarePlan: none delivered, each says why */
	assert_int_equal(gw_outbox_number(&g, "dead"), 3);
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/outbox?state=dead", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "matches 2 Patients at the upstream by " SYS "|P-2"));
	resp_free(&r);
	cJSON *b = upstream_get(&u, "Patient");
	assert_int_equal(entries(b), 2);
	cJSON_Delete(b);
	b = upstream_get(&u, "Goal");
	assert_int_equal(entries(b), 0);
	cJSON_Delete(b);

	/* the EHR merges its duplicates; a retry of the dead letters links */
	char path[200];
	snprintf(path, sizeof path, "/fhir/R4/Patient/%s", b2);
	assert_int_equal(upstream_do(&u, "DELETE", path, NULL, &r), 0);
	assert_true(r.status == 200 || r.status == 204);
	resp_free(&r);
	assert_int_equal(http_do(&g, "POST", "/outbox/$retry", NULL, NULL, 0, &r), 0);
	assert_true(r.status == 200);
	resp_free(&r);
	assert_true(gw_outbox_drained(&g, 20000));
	assert_int_equal(gw_outbox_number(&g, "dead"), 0);
	snprintf(path, sizeof path, "Goal?subject=Patient/%s", a);
	b = upstream_get(&u, path);
	assert_int_equal(entries(b), 1);
	cJSON_Delete(b);
	b = upstream_get(&u, "Patient");
	assert_int_equal(entries(b), 1);
	cJSON_Delete(b);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

static void nobody_there_is_delivered_and_without_the_setting_duplicated(void **state)
{
	(void)state;
	UPSTREAM_NEEDED();
	for (int match = 1; match >= 0; match--) {
		struct upstream_srv u;
		assert_int_equal(upstream_start(&u, 0), 0);
		char other[80], ehr[80];
		ehr_patient(&u, "MRN-3", NULL, other, sizeof other); /* someone else, no program identifier */
		struct gw g;
		start_gateway(&g, &u, match);
		push_plan(&g, "P-3");
		assert_true(gw_outbox_drained(&g, 20000));
		assert_int_equal(gw_outbox_number(&g, "dead"), 0);
		cJSON *b = upstream_get(&u, "Patient?identifier=" SYS "|P-3");
		assert_int_equal(entries(b), 1); /* the gateway's own, delivered */
		cJSON_Delete(b);
		assert_int_equal(gw_stop(&g, 10000), 0);

		/* and a person the EHR has: linked with the setting, duplicated without */
		ehr_patient(&u, "MRN-4", "P-4", ehr, sizeof ehr);
		start_gateway(&g, &u, match);
		push_plan(&g, "P-4");
		assert_true(gw_outbox_drained(&g, 20000));
		b = upstream_get(&u, "Patient?identifier=" SYS "|P-4");
		assert_int_equal(entries(b), match ? 1 : 2);
		cJSON_Delete(b);
		assert_int_equal(gw_stop(&g, 10000), 0);
		upstream_stop(&u);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_ehrs_patient_is_linked_not_duplicated),
		cmocka_unit_test(an_ambiguous_person_waits_as_a_dead_letter),
		cmocka_unit_test(nobody_there_is_delivered_and_without_the_setting_duplicated),
	};
	return cmocka_run_group_tests_name("upstream person matching", tests, setup, NULL);
}
