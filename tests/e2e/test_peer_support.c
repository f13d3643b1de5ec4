/* Tests of the peer_support plugin (the "peer-support" native format).
 *
 * Through the plugin host, with the built peer_support.so loaded from the
 * plugin directory: native → FHIR details, native → FHIR → native for every
 * example in docs/formats/examples (byte for byte for CSV, equal JSON),
 * idempotent ids, every refusal with its location, and FHIR → native of
 * resources Crosswalk did not make (the official R4 Encounter examples and
 * a mixed Bundle), whose unmappable parts must come back as warnings — the
 * host API is used there because an HTTP export answers only the document.
 *
 * Through the real gateway over loopback: POST /ingest/peer-support (JSON
 * and CSV, twice), refusals as a 422 OperationOutcome, POST and GET
 * /export/peer-support in both media types. */
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

#include "e2e/harness.h"
#include "testenv.h"
#include "e2e/plugin_kit.h"

#define EXAMPLES "docs/formats/examples"

#define FORMAT "peer-support"

static int host_up(void **state)
{
	(void)state;
	return tk_host_up_codes(FORMAT, NULL); /* diagnoses are checked against ICD-10-CM */
}

static int host_down(void **state)
{
	(void)state;
	tk_host_down();
	return 0;
}

static cJSON *to_fhir(struct tk_call *c, enum cw_media media, const char *text)
{
	return tk_to_fhir(c, FORMAT, media, text);
}

static char *from_fhir(struct tk_call *c, enum cw_media media, cJSON *in)
{
	return tk_from_fhir(c, FORMAT, media, in);
}

static void maps_the_individual_example_to_fhir(void **state)
{
	(void)state;
	char *doc = tk_slurp(EXAMPLES "/peer-support-individual.json", NULL);
	struct tk_call c;
	tk_call_begin(&c);
	cJSON *b = to_fhir(&c, CW_MEDIA_JSON, doc);
	if (!b)
		tk_dump(&c.oo);
	assert_non_null(b);
	assert_int_equal(c.oo.n, 0);
	assert_string_equal(tk_sget(b, "type"), "transaction");
	assert_int_equal(tk_count_type(b, "Patient"), 1);
	assert_int_equal(tk_count_type(b, "Practitioner"), 1); /* one specialist, two encounters */
	assert_int_equal(tk_count_type(b, "PractitionerRole"), 1);
	assert_int_equal(tk_count_type(b, "Encounter"), 2);
	assert_int_equal(tk_count_type(b, "Procedure"), 4);

	/* Every entry is a PUT to its own deterministic id; no id twice. */
	const cJSON *e;
	int n = 0;
	cJSON_ArrayForEach(e, tk_get(b, "entry")) {
		const cJSON *r = tk_get(e, "resource");
		char url[128];
		snprintf(url, sizeof url, "%s/%s", tk_sget(r, "resourceType"), tk_sget(r, "id"));
		assert_string_equal(tk_sget(tk_get(e, "request"), "method"), "PUT");
		assert_string_equal(tk_sget(tk_get(e, "request"), "url"), url);
		assert_non_null(strstr(cJSON_GetArrayItem(tk_get(tk_get(r, "meta"), "profile"), 0)->valuestring,
				       "https://crosswalk.example.org/fhir/StructureDefinition/peer-support-"));
		const cJSON *o;
		int m = 0;
		cJSON_ArrayForEach(o, tk_get(b, "entry")) if (m++ < n) assert_string_not_equal(
			tk_sget(tk_get(o, "resource"), "id"), tk_sget(r, "id"));
		n++;
	}

	const cJSON *pat = tk_nth(b, "Patient", 0);
	assert_string_equal(tk_sget(cJSON_GetArrayItem(tk_get(pat, "identifier"), 0), "value"), "P-1001");
	const cJSON *pr = tk_nth(b, "Practitioner", 0);
	const cJSON *npi = cJSON_GetArrayItem(tk_get(pr, "identifier"), 1);
	assert_string_equal(tk_sget(npi, "system"), "http://hl7.org/fhir/sid/us-npi");
	assert_string_equal(tk_sget(npi, "value"), "1234567893");
	assert_string_equal(tk_sget(tk_get(cJSON_GetArrayItem(tk_get(pr, "qualification"), 0), "code"), "text"), "CPS");
	const cJSON *role = tk_nth(b, "PractitionerRole", 0);
	const cJSON *nucc = cJSON_GetArrayItem(tk_get(cJSON_GetArrayItem(tk_get(role, "code"), 0), "coding"), 0);
	assert_string_equal(tk_sget(nucc, "system"), "http://nucc.org/provider-taxonomy");
	assert_string_equal(tk_sget(nucc, "code"), "175T00000X");
	char want[160];
	snprintf(want, sizeof want, "Practitioner/%s", tk_sget(pr, "id"));
	assert_string_equal(tk_sget(tk_get(role, "practitioner"), "reference"), want);

	const cJSON *e1 = tk_nth(b, "Encounter", 0), *e2 = tk_nth(b, "Encounter", 1);
	assert_string_equal(tk_sget(e1, "status"), "finished");
	assert_string_equal(tk_sget(tk_get(e1, "class"), "system"), "http://terminology.hl7.org/CodeSystem/v3-ActCode");
	assert_string_equal(tk_sget(tk_get(e1, "class"), "code"), "FLD"); /* community */
	assert_string_equal(tk_sget(tk_get(e2, "class"), "code"), "VR");  /* telehealth */
	/* H0038 only when billable: e1 is, e2 is not. */
	assert_int_equal(cJSON_GetArraySize(tk_get(e1, "type")), 2);
	assert_int_equal(cJSON_GetArraySize(tk_get(e2, "type")), 1);
	const cJSON *h = cJSON_GetArrayItem(tk_get(cJSON_GetArrayItem(tk_get(e1, "type"), 1), "coding"), 0);
	assert_string_equal(tk_sget(h, "code"), "H0038");
	assert_non_null(strstr(tk_sget(h, "system"), "www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"));
	assert_string_equal(tk_sget(tk_get(e1, "period"), "start"), "2024-03-05T14:30:00-05:00");
	assert_string_equal(tk_sget(tk_get(e1, "period"), "end"), "2024-03-05T15:15:00-05:00");
	assert_string_equal(tk_sget(tk_get(e2, "period"), "end"), "2024-03-13T00:10:00-05:00"); /* past midnight */
	assert_int_equal(tk_get(tk_get(e1, "length"), "value")->valueint, 45);
	assert_string_equal(tk_sget(tk_get(e1, "length"), "system"), "http://unitsofmeasure.org");
	assert_string_equal(tk_sget(tk_get(e1, "length"), "code"), "min");
	snprintf(want, sizeof want, "Patient/%s", tk_sget(pat, "id"));
	assert_string_equal(tk_sget(tk_get(e1, "subject"), "reference"), want);
	snprintf(want, sizeof want, "Practitioner/%s", tk_sget(pr, "id"));
	assert_string_equal(tk_sget(tk_get(cJSON_GetArrayItem(tk_get(e1, "participant"), 0), "individual"), "reference"), want);
	/* goals: R4 allows no Goal in reasonReference; the core extension links them */
	assert_null(tk_get(e1, "reasonReference"));
	const cJSON *goal = NULL, *x;
	int n_goal_links = 0;
	cJSON_ArrayForEach(x, tk_get(e1, "extension"))
	{
		if (strcmp(tk_sget(x, "url"), "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal") != 0)
			continue;
		if (++n_goal_links == 2)
			goal = tk_get(x, "valueReference");
	}
	assert_int_equal(n_goal_links, 2);
	assert_string_equal(tk_sget(tk_get(goal, "identifier"), "value"), "G-2");
	assert_non_null(strstr(tk_sget(goal, "reference"), "Goal/"));
	assert_string_equal(tk_sget(goal, "type"), "Goal");
	assert_null(tk_get(e2, "extension"));

	const cJSON *p1 = tk_nth(b, "Procedure", 0);
	assert_string_equal(tk_sget(p1, "status"), "completed");
	const cJSON *code = cJSON_GetArrayItem(tk_get(tk_get(p1, "code"), "coding"), 0);
	assert_string_equal(tk_sget(code, "system"), "https://crosswalk.example.org/fhir/CodeSystem/peer-support-activity");
	assert_string_equal(tk_sget(code, "code"), "goal-planning");
	snprintf(want, sizeof want, "Encounter/%s", tk_sget(e1, "id"));
	assert_string_equal(tk_sget(tk_get(p1, "encounter"), "reference"), want);
	assert_string_equal(tk_sget(tk_get(p1, "subject"), "reference"), tk_sget(tk_get(e1, "subject"), "reference"));
	assert_string_equal(tk_sget(tk_get(cJSON_GetArrayItem(tk_get(p1, "performer"), 0), "actor"), "reference"),
			    tk_sget(tk_get(cJSON_GetArrayItem(tk_get(e1, "participant"), 0), "individual"), "reference"));
	assert_string_equal(tk_sget(cJSON_GetArrayItem(tk_get(tk_get(tk_nth(b, "Procedure", 3), "code"), "coding"), 0), "code"),
			    "wellness-tools");
	cJSON_Delete(b);
	tk_call_end(&c);
	free(doc);
}

/* native → FHIR → native gives back what went in, and the ids do not
 * depend on the run. */
static void every_example_round_trips(void **state)
{
	(void)state;
	assert_true(tk_round_trip_examples(EXAMPLES, FORMAT, NULL) >= 4);
}

/* The same encounters in CSV and in JSON make the same FHIR. */
static void csv_and_json_make_the_same_fhir(void **state)
{
	(void)state;
	tk_expect_csv_and_json_agree(FORMAT, EXAMPLES "/peer-support-several.csv");
}

/* ------------------------------------------------------------ refusals */

static const char *const good_header =
	"version,person_system,person_value,person_name,encounter_id,specialist_system,specialist_value,"
	"specialist_name,credential,npi,start,duration_minutes,mode,setting,activities,goals,billable,notes\n";

static void refuses_json(const char *doc, size_t n_expected, const char *const (*expected)[3])
{
	tk_expect_json_refused("peer-support", doc, n_expected, expected);
}

static void refuses_each_bad_json_field(void **state)
{
	(void)state;
	/* One fault at a time, each with its location. */
#define ENC                                                                                         \
	"{\"version\":1,\"person\":{\"identifier\":{\"system\":\"urn:p\",\"value\":\"1\"}},"                  \
			  "\"encounters\":[{\"id\":\"E1\",\"specialist\":{\"identifier\":{\"system\":\"urn:s\","     \
			  "\"value\":\"1\"},\"name\":\"N\",\"npi\":\"%s\"},\"start\":\"%s\",\"duration_minutes\":%s," \
			  "\"mode\":\"individual\",\"setting\":\"clinic\",\"activities\":[\"%s\"],\"billable\":false}]}"
	struct {
		const char *npi, *start, *minutes, *activity;
		const char *code, *where, *text;
	} cases[] = {
		{"1234567893", "2024-01-01T10:00:00Z", "30", "advocacy", NULL, NULL, NULL},
		{"1234567890", "2024-01-01T10:00:00Z", "30", "advocacy", "value", "/encounters/0/specialist/npi", "Luhn"},
		{"123456789", "2024-01-01T10:00:00Z", "30", "advocacy", "value", "/encounters/0/specialist/npi", "10 digits"},
		{"1234567893", "2023-02-29T10:00:00Z", "30", "advocacy", "value", "/encounters/0/start", "date-time"},
		{"1234567893", "2024-01-01T10:00:00", "30", "advocacy", "value", "/encounters/0/start", "offset"},
		{"1234567893", "2024-01-01", "30", "advocacy", "value", "/encounters/0/start", "date-time"},
		{"1234567893", "2024-01-01T24:00:00Z", "30", "advocacy", "value", "/encounters/0/start", "date-time"},
		{"1234567893", "2024-01-01T10:00:00Z", "-30", "advocacy", "value", "/encounters/0/duration_minutes", "negative"},
		{"1234567893", "2024-01-01T10:00:00Z", "0", "advocacy", "value", "/encounters/0/duration_minutes", "1 to 1440"},
		{"1234567893", "2024-01-01T10:00:00Z", "1441", "advocacy", "value", "/encounters/0/duration_minutes", "1 to 1440"},
		{"1234567893", "2024-01-01T10:00:00Z", "30.5", "advocacy", "value", "/encounters/0/duration_minutes", "whole"},
		{"1234567893", "2024-01-01T10:00:00Z", "30", "juggling", "code-invalid", "/encounters/0/activities/0", "unknown activity 'juggling'"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char doc[1024];
		snprintf(doc, sizeof doc, ENC, cases[i].npi, cases[i].start, cases[i].minutes, cases[i].activity);
		struct tk_call c;
		tk_call_begin(&c);
		cJSON *b = to_fhir(&c, CW_MEDIA_JSON, doc);
		if (!cases[i].code) {
			assert_non_null(b); /* the control case maps */
			cJSON_Delete(b);
		} else {
			assert_null(b);
			tk_expect_issue(&c.oo, OUTCOME_ERROR, cases[i].code, cases[i].where, cases[i].text);
			assert_int_equal(tk_count_severity(&c.oo, OUTCOME_ERROR), 1);
		}
		tk_call_end(&c);
	}
}

static void refuses_json_listing_every_problem(void **state)
{
	(void)state;
	const char *doc =
		"{\"version\":3,\"person\":{\"identifier\":{\"system\":\"not a uri\",\"value\":\"\"},\"nick\":\"x\"},"
		"\"encounters\":["
		"{\"id\":\"E1\",\"specialist\":{\"identifier\":{\"system\":\"urn:x\",\"value\":\"s\"},\"npi\":\"1234567890\"},"
		"\"start\":\"2024-02-30T10:00:00Z\",\"duration_minutes\":-5,\"mode\":\"pair\",\"setting\":\"park\","
		"\"activities\":[\"goal-planning\",\"juggling\",\"goal-planning\"],\"goals\":[\"a;b\"],\"billable\":\"yes\"},"
		"{\"id\":\"E1\",\"specialist\":{\"identifier\":{\"system\":\"urn:x\",\"value\":\"s\"},\"name\":\"N\"},"
		"\"start\":\"2024-02-10T10:00\",\"duration_minutes\":4.5,\"mode\":\"group\",\"setting\":\"home\","
		"\"activities\":[],\"billable\":false},"
		"{\"specialist\":{}}]}";
	static const char *const expected[][3] = {
		{"not-supported", "/version", "versions 1 to 2"},
		{"structure", "/person/nick", "unknown member"},
		{"value", "/person/identifier/value", NULL},
		{"value", "/person/identifier/system", "absolute URI"},
		{"required", "/encounters/0/specialist/name", "required"},
		{"value", "/encounters/0/specialist/npi", "Luhn"},
		{"value", "/encounters/0/start", "date-time"},
		{"value", "/encounters/0/duration_minutes", "negative"},
		{"code-invalid", "/encounters/0/mode", "pair"},
		{"code-invalid", "/encounters/0/setting", "park"},
		{"code-invalid", "/encounters/0/activities/1", "juggling"},
		{"duplicate", "/encounters/0/activities/2", "twice"},
		{"value", "/encounters/0/goals/0", "goal identifier"},
		{"structure", "/encounters/0/billable", "true or false"},
		{"value", "/encounters/1/start", "date-time"},
		{"value", "/encounters/1/duration_minutes", "whole"},
		{"structure", "/encounters/1/activities", "non-empty"},
		{"duplicate", "/encounters/1/id", "already given at /encounters/0"},
		{"conflict", "/encounters/1/specialist", "differ"},
		{"required", "/encounters/2/id", NULL},
		{"required", "/encounters/2/specialist/identifier", NULL},
		{"required", "/encounters/2/specialist/name", NULL},
		{"required", "/encounters/2/start", NULL},
		{"required", "/encounters/2/duration_minutes", NULL},
		{"required", "/encounters/2/mode", NULL},
		{"required", "/encounters/2/setting", NULL},
		{"required", "/encounters/2/activities", NULL},
		{"required", "/encounters/2/billable", NULL},
	};
	refuses_json(doc, sizeof expected / sizeof expected[0], expected);

	/* Shapes: not an object, an empty array, two logs for one person. */
	tk_expect_json_shapes_refused(FORMAT, "encounters");
}

static void refuses_csv_listing_every_problem(void **state)
{
	(void)state;
	/* Wrong header (column 12 renamed), then rows with faults. */
	char doc[4096];
	snprintf(doc, sizeof doc, "%s",
		 "version,person_system,person_value,person_name,encounter_id,specialist_system,specialist_value,"
		 "specialist_name,credential,npi,start,duration,mode,setting,activities,goals,billable,notes\n"
		 "1,urn:p,1,,E1,urn:s,1,N,,123,2024-01-01T00:00:00Z,-3,individual,clinic,advocacy;dance,,maybe,\n"
		 "1,urn:p,1\n"
		 "1,urn:p,1,,,urn:s,1,N,,,2024-13-01T00:00:00Z,10,solo,clinic,advocacy,,true,\n"
		 "\"unterminated\n");
	static const char *const faults[][3] = {
		{"structure", "line 1, column 12", "'duration_minutes'"},
		{"value", "line 2, column 10", "NPI"},
		{"value", "line 2, column 12", "negative"},
		{"code-invalid", "line 2, column 15", "'dance'"},
		{"value", "line 2, column 17", "true or false"},
		{"structure", "line 3", "3 columns"},
		{"required", "line 4, column 5", "encounter_id"},
		{"value", "line 4, column 11", "date-time"},
		{"code-invalid", "line 4, column 13", "'solo'"},
		{"structure", "line 5", "malformed"},
		{"structure", "line 5", "columns where the header has 18"},
		{"conflict", "line 4", "line 2"},
	};
	tk_expect_csv_refused(FORMAT, doc, sizeof faults / sizeof faults[0], faults);

	/* A header with a column too few; an empty body; a header alone. */
	tk_expect_csv_shapes_refused(FORMAT, good_header, "no encounter rows");

	/* Conflicts between rows: the same person with another name, the
	 * same specialist with another NPI, an encounter id twice. */
	snprintf(doc, sizeof doc, "%s%s%s", good_header,
		 "1,urn:p,1,Name A,E1,urn:s,1,N,,1234567893,2024-01-01T00:00:00Z,10,individual,clinic,advocacy,,true,\n",
		 "1,urn:p,1,Name B,E1,urn:s,1,N,,,2024-01-01T00:00:00Z,10,individual,clinic,advocacy;advocacy,,true,\n");
	static const char *const conflicts[][3] = {
		{"conflict", "line 3, column 4", "line 2"},
		{"conflict", "line 3", "line 2"},
		{"duplicate", "line 3, column 5", "line 2"},
		{"duplicate", "line 3, column 15", "twice"},
	};
	tk_expect_csv_refused(FORMAT, doc, sizeof conflicts / sizeof conflicts[0], conflicts);
}

/* ------------------------------------------------------------ version 2 */

/* The first extension of r with url. */
static const cJSON *ext_of(const cJSON *r, const char *url)
{
	const cJSON *x;
	cJSON_ArrayForEach(x, tk_get(r, "extension")) if (!strcmp(tk_sget(x, "url"), url)) return x;
	return NULL;
}

#define PS_SD "https://crosswalk.example.org/fhir/StructureDefinition/"

/* Version 2's fields: Conditions ranked in Encounter.diagnosis, one
 * Coverage per person, payer and member id, the supervisor as a
 * participant (a specialist of the document is not written twice), the
 * certification as a qualification, the plan and the prior authorization. */
static void v2_maps_the_billable_example_to_fhir(void **state)
{
	(void)state;
	char *doc = tk_slurp(EXAMPLES "/peer-support-billable.json", NULL);
	struct tk_call c;
	tk_call_begin(&c);
	cJSON *b = to_fhir(&c, CW_MEDIA_JSON, doc);
	if (!b)
		tk_dump(&c.oo);
	assert_non_null(b);
	assert_int_equal(tk_count_type(b, "Condition"), 3);
	assert_int_equal(tk_count_type(b, "Coverage"), 1);
	assert_int_equal(tk_count_type(b, "Practitioner"), 2); /* the supervisor is a specialist too */
	const cJSON *e1 = tk_nth(b, "Encounter", 0), *e3 = tk_nth(b, "Encounter", 2);
	const cJSON *d2 = cJSON_GetArrayItem(tk_get(e1, "diagnosis"), 1);
	assert_int_equal(tk_get(d2, "rank")->valueint, 2);
	assert_string_equal(tk_sget(cJSON_GetArrayItem(tk_get(tk_get(d2, "use"), "coding"), 0), "code"), "billing");
	const cJSON *cond = tk_nth(b, "Condition", 1);
	char want[160];
	snprintf(want, sizeof want, "Condition/%s", tk_sget(cond, "id"));
	assert_string_equal(tk_sget(tk_get(d2, "condition"), "reference"), want);
	const cJSON *icd = cJSON_GetArrayItem(tk_get(tk_get(cond, "code"), "coding"), 0);
	assert_string_equal(tk_sget(icd, "system"), "http://hl7.org/fhir/sid/icd-10-cm");
	assert_string_equal(tk_sget(icd, "code"), "F33.1");
	snprintf(want, sizeof want, "Encounter/%s", tk_sget(e1, "id"));
	assert_string_equal(tk_sget(tk_get(cond, "encounter"), "reference"), want);

	const cJSON *cov = tk_nth(b, "Coverage", 0);
	assert_string_equal(tk_sget(cov, "subscriberId"), "M-778812");
	assert_string_equal(tk_sget(tk_get(cJSON_GetArrayItem(tk_get(cov, "payor"), 0), "identifier"), "value"),
			    "NJ-MCD");
	snprintf(want, sizeof want, "Coverage/%s", tk_sget(cov, "id"));
	assert_string_equal(tk_sget(tk_get(ext_of(e1, PS_SD "peer-support-coverage"), "valueReference"), "reference"),
			    want);
	assert_string_equal(tk_sget(ext_of(e1, PS_SD "peer-support-prior-authorization"), "valueString"),
			    "PA-2025-0457");
	const cJSON *plan = tk_get(ext_of(e1, PS_SD "peer-support-plan-of-care"), "valueReference");
	assert_string_equal(tk_sget(tk_get(plan, "identifier"), "value"), "RP-5001");
	assert_non_null(strstr(tk_sget(plan, "reference"), "CarePlan/"));
	assert_null(tk_get(e3, "diagnosis"));

	const cJSON *sup = cJSON_GetArrayItem(tk_get(e1, "participant"), 1);
	const cJSON *role = cJSON_GetArrayItem(tk_get(cJSON_GetArrayItem(tk_get(sup, "type"), 0), "coding"), 0);
	assert_string_equal(tk_sget(role, "system"), "http://terminology.hl7.org/CodeSystem/claimcareteamrole");
	assert_string_equal(tk_sget(role, "code"), "supervisor");
	/* the supervisor S-02 is the specialist of the third encounter */
	assert_string_equal(
		tk_sget(tk_get(sup, "individual"), "reference"),
		tk_sget(tk_get(cJSON_GetArrayItem(tk_get(e3, "participant"), 0), "individual"), "reference"));

	const cJSON *q = cJSON_GetArrayItem(tk_get(tk_nth(b, "Practitioner", 0), "qualification"), 0);
	assert_string_equal(tk_sget(cJSON_GetArrayItem(tk_get(q, "identifier"), 0), "value"), "CPRS-20417");
	assert_string_equal(tk_sget(tk_get(q, "period"), "end"), "2026-06-30");
	assert_string_equal(tk_sget(tk_get(q, "issuer"), "display"), "Example State Certification Board");
	assert_string_equal(tk_sget(tk_get(q, "code"), "text"), "CPRS");
	assert_string_equal(tk_sget(cJSON_GetArrayItem(tk_get(tk_get(q, "code"), "coding"), 0), "code"), "sud");
	cJSON_Delete(b);
	tk_call_end(&c);
	free(doc);
}

/* A version 2 document exported without its version 2 fields is written
 * as version 1; with them, in version 2 with the columns up to the last
 * one used. */
static void v2_export_picks_the_version(void **state)
{
	(void)state;
	char *doc = tk_slurp(EXAMPLES "/peer-support-billable.csv", NULL);
	struct tk_call c;
	tk_call_begin(&c);
	cJSON *b = to_fhir(&c, CW_MEDIA_CSV, doc);
	assert_non_null(b);
	char *out = from_fhir(&c, CW_MEDIA_CSV, cJSON_Duplicate(b, true));
	assert_non_null(out);
	assert_non_null(strstr(out, ",supervisor_name\n2,"));
	assert_null(strstr(out, "cert_issuer"));
	free(out);
	/* drop every version 2 part: the export is version 1 again */
	const cJSON *e;
	cJSON *keep = cJSON_CreateArray();
	cJSON_ArrayForEach(e, tk_get(b, "entry"))
	{
		const char *t = tk_sget(tk_get(e, "resource"), "resourceType");
		if (strcmp(t, "Condition") != 0 && strcmp(t, "Coverage") != 0)
			cJSON_AddItemToArray(keep, cJSON_Duplicate(e, true));
	}
	cJSON_ReplaceItemInObject(b, "entry", keep);
	cJSON_ArrayForEach(e, keep)
	{
		cJSON *r = tk_get(e, "resource") ? (cJSON *)tk_get(e, "resource") : NULL;
		if (strcmp(tk_sget(r, "resourceType"), "Encounter") != 0)
			continue;
		cJSON_DeleteItemFromObject(r, "diagnosis");
		cJSON_DeleteItemFromObject(r, "extension");
		cJSON *parts = cJSON_GetObjectItem(r, "participant");
		while (cJSON_GetArraySize(parts) > 1)
			cJSON_DeleteItemFromArray(parts, 1);
	}
	char *v1 = from_fhir(&c, CW_MEDIA_CSV, b);
	assert_non_null(v1);
	assert_non_null(strstr(v1, ",billable,notes\n1,"));
	assert_null(strstr(v1, "\n2,"));
	free(v1);
	tk_call_end(&c);
	free(doc);
}

static void v2_refuses_json(void **state)
{
	(void)state;
#define V2DOC(version, spx, encx)                                                                                    \
	"{\"version\":" version ",\"person\":{\"identifier\":{\"system\":\"urn:p\",\"value\":\"1\"}},"               \
	"\"encounters\":[{\"id\":\"E1\",\"specialist\":{\"identifier\":{\"system\":\"urn:s\",\"value\":\"1\"},"      \
	"\"name\":\"N\"" spx "},\"start\":\"2025-01-01T10:00:00Z\",\"duration_minutes\":30,\"mode\":\"individual\"," \
	"\"setting\":\"clinic\",\"activities\":[\"advocacy\"],\"billable\":true" encx "}]}"
	struct {
		const char *doc, *code, *where, *text;
	} cases[] = {
		{V2DOC("2", "", ",\"diagnoses\":[\"F11.20\"]"), NULL, NULL, NULL},
		{V2DOC("1", "", ",\"diagnoses\":[\"F11.20\"]"), "structure", "/encounters/0/diagnoses",
		 "unknown member"},
		{V2DOC("1", ",\"certification\":{\"issuer\":\"B\",\"number\":\"1\",\"expiry\":\"2026-01-01\"}", ""),
		 "structure", "/encounters/0/specialist/certification", "unknown member"},
		{V2DOC("1", "", ",\"plan_of_care\":\"RP\""), "structure", "/encounters/0/plan_of_care",
		 "unknown member"},
		{V2DOC("2", "", ",\"diagnoses\":[\"F11.99X\"]"), "code-invalid", "/encounters/0/diagnoses/0",
		 "ICD-10-CM"},
		{V2DOC("2", "", ",\"diagnoses\":[\"F11.20\",\"F11.20\"]"), "duplicate", "/encounters/0/diagnoses/1",
		 "twice"},
		{V2DOC("2", "", ",\"diagnoses\":[]"), "structure", "/encounters/0/diagnoses", NULL},
		{V2DOC("2", "", ",\"coverage\":{\"payer\":\"NJ-MCD\"}"), "required", "/encounters/0/coverage/member_id",
		 "required"},
		{V2DOC("2", "", ",\"coverage\":{\"payer\":\"NJ-MCD\",\"member_id\":\"M\",\"plan\":\"x\"}"), "structure",
		 "/encounters/0/coverage/plan", "unknown member"},
		{V2DOC("2", "", ",\"supervisor\":{\"identifier\":{\"system\":\"urn:s\",\"value\":\"2\"}}"), "required",
		 "/encounters/0/supervisor/name", "required"},
		{V2DOC("2", "",
		       ",\"supervisor\":{\"identifier\":{\"system\":\"urn:s\",\"value\":\"1\"},\"name\":\"M\"}"),
		 "conflict", "/encounters/0/supervisor/name", "name differs"},
		{V2DOC("2", ",\"certification\":{\"issuer\":\"B\",\"number\":\"1\",\"expiry\":\"2026-02-30\"}", ""),
		 "value", "/encounters/0/specialist/certification/expiry", "date"},
		{V2DOC("2",
		       ",\"certification\":{\"issuer\":\"B\",\"number\":\"1\",\"expiry\":\"2026-01-01\",\"area\":"
		       "\"x\"}",
		       ""),
		 "code-invalid", "/encounters/0/specialist/certification/area", "certification area"},
		{V2DOC("2", ",\"certification\":{\"number\":\"1\",\"expiry\":\"2026-01-01\"}", ""), "required",
		 "/encounters/0/specialist/certification/issuer", "required"},
		{V2DOC("3", "", ""), "not-supported", "/version", "versions 1 to 2"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct tk_call c;
		tk_call_begin(&c);
		cJSON *b = to_fhir(&c, CW_MEDIA_JSON, cases[i].doc);
		if (!cases[i].code) {
			if (!b)
				tk_dump(&c.oo);
			assert_non_null(b); /* the control case maps */
			cJSON_Delete(b);
		} else {
			assert_null(b);
			tk_expect_issue(&c.oo, OUTCOME_ERROR, cases[i].code, cases[i].where, cases[i].text);
			assert_int_equal(tk_count_severity(&c.oo, OUTCOME_ERROR), 1);
		}
		tk_call_end(&c);
	}
#undef V2DOC
}

static void v2_refuses_csv(void **state)
{
	(void)state;
#define V1COLS                                                                                            \
	"version,person_system,person_value,person_name,encounter_id,specialist_system,specialist_value," \
	"specialist_name,credential,npi,start,duration_minutes,mode,setting,activities,goals,billable,notes"
#define ROW(v) v ",urn:p,1,,E1,urn:s,1,N,,,2025-01-01T10:00:00Z,30,individual,clinic,advocacy,,true,"
	struct {
		const char *doc, *code, *where, *text;
	} cases[] = {
		{V1COLS ",diagnoses,payer,member_id\n" ROW("2") ",F11.20,NJ,M1\n", NULL, NULL, NULL},
		{V1COLS ",diagnoses,payer,member_id\n" ROW("1") ",F11.20,,\n", "not-supported", "line 2, column 19",
		 "version 1"},
		{V1COLS ",diagnoses,member_id\n" ROW("2") ",F11.20,M1\n", "structure", "line 1, column 20",
		 "'member_id' where 'payer' belongs"},
		{V1COLS ",diagnoses,diagnoses\n" ROW("2") ",F11.20,F11.20\n", "structure", "line 1, column 20",
		 "'diagnoses' where 'payer' belongs"},
		{V1COLS ",plan_of_care,x\n" ROW("2") ",,\n", "structure", "line 1, column 19", "where 'diagnoses'"},
		{V1COLS ",diagnoses\n" ROW("2") ",F11.20;F11.2Z\n", "code-invalid", "line 2, column 19", "'F11.2Z'"},
		{V1COLS ",diagnoses,payer,member_id\n" ROW("2") ",,NJ,\n", "required", "line 2, column 21",
		 "member_id"},
		{V1COLS ",diagnoses,payer,member_id,prior_authorization\n" ROW("2") ",,,,PA\n", "required",
		 "line 2, column 20", "prior_authorization"},
		{V1COLS ",diagnoses,payer,member_id,prior_authorization,supervisor_system,supervisor_value\n" ROW(
			 "2") ",,,,,urn:s,9\n",
		 "required", "line 2, column 25", "supervisor_name is required"},
		{V1COLS ",diagnoses,payer,member_id,prior_authorization,supervisor_system,supervisor_value,"
			"supervisor_name\n" ROW("2") ",,,,,not a uri,9,S\n",
		 "value", "line 2, column 23", "absolute URI"},
		{V1COLS ",diagnoses,payer,member_id,prior_authorization,supervisor_system,supervisor_value,"
			"supervisor_name,cert_issuer,cert_number,cert_expiry,cert_area\n" ROW(
				"2") ",,,,,,,,B,1,2026-13-01,mh\n",
		 "value", "line 2, column 28", "date"},
		{V1COLS ",diagnoses,payer,member_id,prior_authorization,supervisor_system,supervisor_value,"
			"supervisor_name,cert_issuer,cert_number,cert_expiry,cert_area\n" ROW("2") ",,,,,,,,,,,peer\n",
		 NULL, NULL, NULL},
		{V1COLS "\n" ROW("3") "\n", "not-supported", "line 2, column 1", "versions 1 to 2"},
		{V1COLS ",diagnoses,payer,member_id,prior_authorization,supervisor_system,supervisor_value,"
			"supervisor_name,cert_issuer,cert_number,cert_expiry,cert_area,plan_of_care,extra\n" ROW(
				"2") ",,,,,,,,,,,,,\n",
		 "structure", "line 1", "18 to 30"},
	};
	/* "peer" is no area and no certification is given: two errors */
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct tk_call c;
		tk_call_begin(&c);
		cJSON *b = to_fhir(&c, CW_MEDIA_CSV, cases[i].doc);
		if (i == 11) {
			assert_null(b);
			tk_expect_issue(&c.oo, OUTCOME_ERROR, "code-invalid", "line 2, column 29",
					"certification area");
			tk_expect_issue(&c.oo, OUTCOME_ERROR, "required", "line 2, column 27", "cert_number");
		} else if (!cases[i].code) {
			if (!b)
				tk_dump(&c.oo);
			assert_non_null(b);
			cJSON_Delete(b);
		} else {
			assert_null(b);
			tk_expect_issue(&c.oo, OUTCOME_ERROR, cases[i].code, cases[i].where, cases[i].text);
		}
		tk_call_end(&c);
	}
#undef V1COLS
#undef ROW
}

/* ------------------------------------------------- FHIR made elsewhere */

static void official_encounter_examples_give_warnings(void **state)
{
	(void)state;
	char dir[512];
	DIR *d = opendir(corpus_path(dir, sizeof dir, "fhir-r4/examples-json-xml/json"));
	if (!d)
		fprintf(stderr, "# %s missing (the corpus is unpacked by make tests-build)\n", dir);
	assert_non_null(d);
	struct dirent *de;
	int seen = 0;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "encounter-example", 17) != 0)
			continue;
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		char *text = tk_slurp(path, NULL);
		cJSON *enc = cJSON_Parse(text);
		assert_non_null(enc);
		for (int csv = 0; csv < 2; csv++) {
			struct tk_call c;
			tk_call_begin(&c);
			char *out = from_fhir(&c, csv ? CW_MEDIA_CSV : CW_MEDIA_JSON, cJSON_Duplicate(enc, 1));
			assert_non_null(out);
			/* No subject Patient in the input: nothing exported, every reason a warning. */
			assert_string_equal(out, csv ? good_header : "[]");
			assert_int_equal(tk_count_severity(&c.oo, OUTCOME_ERROR), 0);
			tk_expect_issue(&c.oo, OUTCOME_WARNING, "not-supported", "Bundle.entry[0].resource.subject",
				     "not exported");
			tk_expect_issue(&c.oo, OUTCOME_WARNING, "not-supported", "Bundle.entry[0].resource.identifier",
				     "not exported");
			free(out);
			tk_call_end(&c);
		}
		if (strcmp(de->d_name, "encounter-example-f001-heart.json") == 0) {
			struct tk_call c;
			tk_call_begin(&c);
			free(from_fhir(&c, CW_MEDIA_JSON, cJSON_Duplicate(enc, 1)));
			tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[0].resource.hospitalization", "left out");
			tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[0].resource.priority", "left out");
			tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[0].resource.reasonCode", "left out");
			tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[0].resource.serviceProvider", "left out");
			tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[0].resource.type[0].coding[0]",
				     "270427003");
			tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[0].resource.participant", "not exported");
			tk_call_end(&c);
		}
		cJSON_Delete(enc);
		free(text);
		seen++;
	}
	closedir(d);
	assert_true(seen >= 5);
}

/* A Bundle made by Crosswalk, then changed elsewhere: extra elements and
 * resources are reported, the encounter itself still comes out. */
static void foreign_additions_are_reported(void **state)
{
	(void)state;
	char *doc = tk_slurp(EXAMPLES "/peer-support-individual.json", NULL);
	struct tk_call c;
	tk_call_begin(&c);
	cJSON *b = to_fhir(&c, CW_MEDIA_JSON, doc);
	assert_non_null(b);
	cJSON *pat = (cJSON *)tk_nth(b, "Patient", 0), *enc = (cJSON *)tk_nth(b, "Encounter", 1);
	cJSON_AddStringToObject(pat, "birthDate", "1990-01-01");
	cJSON_AddItemToObject(enc, "serviceProvider", cJSON_Parse("{\"reference\":\"Organization/x\"}"));
	cJSON_AddItemToArray(cJSON_GetObjectItem(enc, "participant"),
			     cJSON_Parse("{\"individual\":{\"reference\":\"RelatedPerson/r\"}}"));
	cJSON_AddItemToArray(cJSON_GetObjectItem(enc, "identifier"),
			     cJSON_Parse("{\"system\":\"urn:other\",\"value\":\"v\"}"));
	cJSON_AddItemToArray(cJSON_GetObjectItem(b, "entry"),
			     cJSON_Parse("{\"resource\":{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\"}}"));
	/* The Patient is entry 0, the second Encounter entry 6 (after Practitioner,
	 * PractitionerRole, Encounter and two Procedures). */
	assert_ptr_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "entry"), 6), "resource"), enc);
	char *out = from_fhir(&c, CW_MEDIA_JSON, b);
	assert_non_null(out);
	assert_int_equal(tk_count_severity(&c.oo, OUTCOME_ERROR), 0);
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[0].resource.birthDate", "left out");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[6].resource.serviceProvider", "left out");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[6].resource.participant[1]", "participant left out");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[6].resource.identifier[1]", "identifier left out");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[9].resource",
			"1 Observation resource is not part of any peer-support encounter; left out");
	assert_int_equal(tk_count_severity(&c.oo, OUTCOME_WARNING), 5);
	/* Everything the format holds is still there. */
	cJSON *want = cJSON_Parse(doc), *got = cJSON_Parse(out);
	assert_true(cJSON_Compare(want, got, true));
	cJSON_Delete(want);
	cJSON_Delete(got);
	free(out);
	tk_call_end(&c);
	free(doc);
}

/* Goal links as earlier versions of the plugin wrote them (Goal references
 * in Encounter.reasonReference) are still read; a reason that is no goal of
 * the goal system is reported and left out. */
static void goal_links_in_reason_reference_are_read(void **state)
{
	(void)state;
	char *doc = tk_slurp(EXAMPLES "/peer-support-individual.json", NULL);
	struct tk_call c;
	tk_call_begin(&c);
	cJSON *b = to_fhir(&c, CW_MEDIA_JSON, doc);
	assert_non_null(b);
	cJSON *enc = (cJSON *)tk_nth(b, "Encounter", 0);
	cJSON *ext = cJSON_GetObjectItem(enc, "extension"), *reasons = cJSON_AddArrayToObject(enc, "reasonReference");
	for (cJSON *x = ext ? ext->child : NULL, *next; x; x = next) {
		next = x->next;
		if (strcmp(tk_sget(x, "url"), "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal") == 0) {
			cJSON *link = cJSON_DetachItemViaPointer(ext, x);
			cJSON_AddItemToArray(reasons, cJSON_DetachItemFromObject(link, "valueReference"));
			cJSON_Delete(link);
		}
	}
	assert_int_equal(cJSON_GetArraySize(reasons), 2);
	cJSON_AddItemToArray(reasons, cJSON_Parse("{\"reference\":\"Condition/c9\"}"));
	char *out = from_fhir(&c, CW_MEDIA_JSON, b);
	assert_non_null(out);
	assert_int_equal(tk_count_severity(&c.oo, OUTCOME_ERROR), 0);
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[3].resource.reasonReference[2]", "goal left out");
	assert_int_equal(tk_count_severity(&c.oo, OUTCOME_WARNING), 1);
	cJSON *want = cJSON_Parse(doc), *got = cJSON_Parse(out);
	assert_true(cJSON_Compare(want, got, true));
	cJSON_Delete(want);
	cJSON_Delete(got);
	free(out);
	tk_call_end(&c);
	free(doc);
}

/* ------------------------------------------------------ over HTTP */

static struct gw g;

static int gw_up(void **state)
{
	(void)state;
	return gw_start(&g, NULL);
}

static int gw_down(void **state)
{
	(void)state;
	return gw_stop(&g, 15000) == 0 ? 0 : -1;
}

static void http_ingest_is_idempotent(void **state)
{
	(void)state;
	size_t len;
	char *doc = tk_slurp(EXAMPLES "/peer-support-group.json", &len);
	struct resp r1, r3;
	tk_http_preview_twice(&g, FORMAT, "application/json", doc, len, &r1);
	cJSON *b = cJSON_Parse(r1.body);
	assert_string_equal(tk_sget(b, "type"), "transaction");
	assert_int_equal(tk_count_type(b, "Patient"), 3);
	assert_int_equal(tk_count_type(b, "Encounter"), 3);

	/* Export that Bundle back, as JSON and as CSV. */
	tk_http_export_json_is(&g, FORMAT, r1.body, r1.len, doc);
	tk_http_export(&g, FORMAT, "text/csv", r1.body, r1.len, &r3);
	assert_non_null(strstr(r3.body, good_header));
	assert_non_null(strstr(r3.body, "\"Group \"\"Tuesday circle\"\", topic: sleep.\nSix people attended.\""));
	resp_free(&r3);
	cJSON_Delete(b);
	resp_free(&r1);
	free(doc);

	/* CSV in, CSV out, byte for byte. */
	tk_http_csv_round_trip(&g, FORMAT, EXAMPLES "/peer-support-several.csv");
}

static void http_refusal_is_an_outcome(void **state)
{
	(void)state;
	char doc[2048];
	snprintf(doc, sizeof doc, "%s%s", good_header,
		 "1,urn:p,1,,E1,urn:s,1,N,,1234567890,2024-01-01T00:00:00Z,-3,individual,clinic,advocacy,,true,\n");
	static const char *const where[] = {"line 2, column 10", "line 2, column 12"};
	tk_http_expect_refused(&g, FORMAT, "text/csv", doc, 2, where);

	struct resp r;
	const char *json[] = {"Content-Type: application/json", NULL};
	assert_int_equal(http_do(&g, "POST", "/ingest/peer-support", json, "{\"version\":1,", 13, &r), 0);
	assert_int_equal(r.status, 400); /* not JSON at all */
	resp_free(&r);
}

/* Stored through POST /ingest (201), read back from the store with GET
 * /export/peer-support?patient=ID, in JSON and CSV. */
static void http_store_round_trip(void **state)
{
	(void)state;
	size_t len;
	char *doc = tk_slurp(EXAMPLES "/peer-support-individual.json", &len);
	char id[80], path[200];
	gw_ingest_stored(&g, "peer-support", "application/json", doc, len, id, sizeof id);
	gw_expect_export_json(&g, "peer-support", id, doc);
	free(doc);

	doc = tk_slurp(EXAMPLES "/peer-support-minimal.csv", &len);
	gw_ingest_stored(&g, "peer-support", "text/csv", doc, len, id, sizeof id);
	snprintf(path, sizeof path, "/export/peer-support?patient=%s", id);
	const char *acc[] = {"Accept: text/csv", NULL};
	struct resp r;
	assert_int_equal(http_do(&g, "GET", path, acc, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, doc);
	resp_free(&r);
	free(doc);

	assert_int_equal(http_do(&g, "GET", "/export/peer-support?patient=nobody", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	resp_free(&r);
}

/* Version 2 over HTTP: a billable log stored, then exported from the store
 * as it came (the Conditions, the Coverage, the supervisor and the
 * certification found again). */
static void http_v2_store_round_trip(void **state)
{
	(void)state;
	size_t len;
	char *doc = tk_slurp(EXAMPLES "/peer-support-billable.json", &len);
	char id[80];
	gw_ingest_stored(&g, "peer-support", "application/json", doc, len, id, sizeof id);
	gw_expect_export_json(&g, "peer-support", id, doc);
	free(doc);

	/* a version 2 row with an ICD-10-CM code the pack does not have */
	const char *bad =
		"version,person_system,person_value,person_name,encounter_id,specialist_system,"
		"specialist_value,specialist_name,credential,npi,start,duration_minutes,mode,setting,"
		"activities,goals,billable,notes,diagnoses\n"
		"2,urn:p,9,,E9,urn:s,1,N,,,2025-01-01T10:00:00Z,30,individual,clinic,advocacy,,true,,F11.2Z\n";
	const char *csv[] = {"Content-Type: text/csv", NULL};
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/ingest/peer-support", csv, bad, strlen(bad), &r), 0);
	assert_int_equal(r.status, 422);
	assert_non_null(strstr(r.body, "line 2, column 19"));
	resp_free(&r);
}

int main(void)
{
	const struct CMUnitTest mapping[] = {
		cmocka_unit_test(maps_the_individual_example_to_fhir),
		cmocka_unit_test(every_example_round_trips),
		cmocka_unit_test(csv_and_json_make_the_same_fhir),
		cmocka_unit_test(refuses_each_bad_json_field),
		cmocka_unit_test(refuses_json_listing_every_problem),
		cmocka_unit_test(refuses_csv_listing_every_problem),
		cmocka_unit_test(official_encounter_examples_give_warnings),
		cmocka_unit_test(foreign_additions_are_reported),
		cmocka_unit_test(goal_links_in_reason_reference_are_read),
		cmocka_unit_test(v2_maps_the_billable_example_to_fhir),
		cmocka_unit_test(v2_export_picks_the_version),
		cmocka_unit_test(v2_refuses_json),
		cmocka_unit_test(v2_refuses_csv),
	};
	const struct CMUnitTest served[] = {
		cmocka_unit_test(http_ingest_is_idempotent),
		cmocka_unit_test(http_refusal_is_an_outcome),
		cmocka_unit_test(http_store_round_trip),
		cmocka_unit_test(http_v2_store_round_trip),
	};
	int rc = cmocka_run_group_tests_name("peer-support mapping", mapping, host_up, host_down);
	rc += cmocka_run_group_tests_name("peer-support served", served, gw_up, gw_down);
	return rc;
}
