/* Tests of the strengths plugin (the "strengths" native format).
 *
 * Through the plugin host, with the built strengths.so loaded from the
 * plugin directory, once in each mode (Observation, the default, and
 * "resource": "condition"): native → FHIR details, native → FHIR → native
 * for every example in docs/formats/examples (byte for byte for CSV, equal
 * JSON), idempotent ids, structural validity of every emitted resource
 * (core/fhir/validate.c, the check behind POST /fhir/$validate), every refusal
 * with its location, and FHIR → native of resources Crosswalk did not make
 * (the official R4 Observation and Condition examples, a foreign
 * protective-factor Condition), whose unmappable parts come back as warnings.
 *
 * Through the real gateway over loopback: POST /ingest/strengths (JSON and
 * CSV, twice), a refusal as a 422 OperationOutcome, POST /export/strengths
 * in both media types, POST /fhir/$validate of what was ingested, and the
 * plugin's settings. */
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

#include "config/config.h"
#include "e2e/harness.h"
#include "testenv.h"
#include "e2e/plugin_kit.h"
#include "fhir/validate.h"

#define EXAMPLES "docs/formats/examples"
#define BASE "https://crosswalk.example.org/fhir"

/* ------------------------------------------------ through the host API */

static bool condition_mode;

static int host_up_observation(void **state)
{
	(void)state;
	condition_mode = false;
	return tk_host_up("strengths", "{}");
}

static int host_up_condition(void **state)
{
	(void)state;
	condition_mode = true;
	return tk_host_up("strengths", "{\"strengths\":{\"resource\":\"condition\"}}");
}

static int host_down(void **state)
{
	(void)state;
	tk_host_down();
	return 0;
}

static cJSON *to_fhir(struct tk_call *c, enum cw_media media, const char *text)
{
	return tk_to_fhir(c, "strengths", media, text);
}

static char *from_fhir(struct tk_call *c, enum cw_media media, cJSON *in)
{
	return tk_from_fhir(c, "strengths", media, in);
}

static cJSON *mget(cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }
static const cJSON *at(const cJSON *a, int i) { return cJSON_GetArrayItem(a, i); }

/* Every resource of the Bundle passes the core's structural validation. */
static void expect_valid(const cJSON *bundle)
{
	struct outcome oo = OUTCOME_INIT;
	const cJSON *e;
	cJSON_ArrayForEach(e, tk_get(bundle, "entry")) {
		size_t errors = validate_resource(tk_get(e, "resource"), &oo);
		if (errors) {
			fprintf(stderr, "# %s/%s is not valid:\n", tk_sget(tk_get(e, "resource"), "resourceType"),
				tk_sget(tk_get(e, "resource"), "id"));
			tk_dump(&oo);
		}
		assert_int_equal(errors, 0);
	}
	assert_int_equal(validate_resource(bundle, &oo), 0);
	outcome_release(&oo);
}

static const char *strength_type(void) { return condition_mode ? "Condition" : "Observation"; }

static void maps_one_person(void **state)
{
	(void)state;
	char *doc = tk_slurp(EXAMPLES "/strengths-one-person.json", NULL);
	struct tk_call c;
	tk_call_begin(&c);
	cJSON *b = to_fhir(&c, CW_MEDIA_JSON, doc);
	if (!b)
		tk_dump(&c.oo);
	assert_non_null(b);
	assert_int_equal(c.oo.n, 0);
	expect_valid(b);
	assert_string_equal(tk_sget(b, "type"), "transaction");
	assert_int_equal(tk_count_type(b, "Patient"), 1);
	assert_int_equal(tk_count_type(b, strength_type()), 3);
	assert_int_equal(cJSON_GetArraySize(tk_get(b, "entry")), 4);

	const cJSON *e;
	cJSON_ArrayForEach(e, tk_get(b, "entry")) {
		const cJSON *r = tk_get(e, "resource");
		char url[128];
		snprintf(url, sizeof url, "%s/%s", tk_sget(r, "resourceType"), tk_sget(r, "id"));
		assert_string_equal(tk_sget(tk_get(e, "request"), "method"), "PUT");
		assert_string_equal(tk_sget(tk_get(e, "request"), "url"), url);
		assert_non_null(strstr(at(tk_get(tk_get(r, "meta"), "profile"), 0)->valuestring,
				       BASE "/StructureDefinition/recovery-strength"));
	}
	const cJSON *pat = tk_nth(b, "Patient", 0);
	assert_string_equal(tk_sget(at(tk_get(pat, "identifier"), 0), "value"), "P-1001");
	assert_string_equal(tk_sget(at(tk_get(pat, "name"), 0), "text"), "Sample Person One");
	char patref[128];
	snprintf(patref, sizeof patref, "Patient/%s", tk_sget(pat, "id"));

	const cJSON *s1 = tk_nth(b, strength_type(), 0), *s2 = tk_nth(b, strength_type(), 1);
	const cJSON *id = at(tk_get(s1, "identifier"), 0);
	assert_string_equal(tk_sget(id, "system"), BASE "/NamingSystem/recovery-strength");
	assert_string_equal(tk_sget(id, "value"), "ST-1001-1");
	assert_string_equal(tk_sget(tk_get(s1, "subject"), "reference"), patref);
	/* Who identified it: an extension, and performer/asserter. */
	const cJSON *x0 = at(tk_get(s2, "extension"), 0), *x1 = at(tk_get(s2, "extension"), 1), *x2 = at(tk_get(s2, "extension"), 2);
	assert_string_equal(tk_sget(x0, "url"), BASE "/StructureDefinition/strength-identified-by");
	assert_string_equal(tk_sget(x0, "valueCode"), "peer");
	assert_string_equal(tk_sget(x1, "url"), "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal");
	assert_string_equal(tk_sget(tk_get(tk_get(x1, "valueReference"), "identifier"), "value"), "G-1");
	assert_string_equal(tk_sget(tk_get(tk_get(x1, "valueReference"), "identifier"), "system"), BASE "/NamingSystem/recovery-goal");
	assert_non_null(strstr(tk_sget(tk_get(x1, "valueReference"), "reference"), "Goal/"));
	assert_string_equal(tk_sget(tk_get(tk_get(x2, "valueReference"), "identifier"), "value"), "G-2");
	/* The same goal from two strengths is the same Goal id. */
	assert_string_equal(tk_sget(tk_get(at(tk_get(s1, "extension"), 1), "valueReference"), "reference"),
			    tk_sget(tk_get(x1, "valueReference"), "reference"));

	const cJSON *who1, *who2;
	if (condition_mode) {
		who1 = tk_get(s1, "asserter");
		who2 = tk_get(s2, "asserter");
		assert_true(tk_has_issue(&c.oo, OUTCOME_ERROR, NULL, NULL, NULL) == false);
		const cJSON *cats = tk_get(s1, "category");
		assert_int_equal(cJSON_GetArraySize(cats), 3);
		assert_string_equal(tk_sget(at(tk_get(at(cats, 0), "coding"), 0), "system"),
				    "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes");
		assert_string_equal(tk_sget(at(tk_get(at(cats, 0), "coding"), 0), "code"), "protective-factor");
		assert_string_equal(tk_sget(at(tk_get(at(cats, 1), "coding"), 0), "code"), "health-concern");
		assert_string_equal(tk_sget(at(tk_get(at(cats, 2), "coding"), 0), "system"), BASE "/CodeSystem/strength-category");
		assert_string_equal(tk_sget(at(tk_get(at(cats, 2), "coding"), 0), "code"), "personal");
		assert_string_equal(tk_sget(tk_get(s1, "code"), "text"), "I don't give up, even on the hard days.");
		assert_null(tk_get(tk_get(s1, "code"), "coding")); /* the words are never replaced by a code */
		assert_string_equal(tk_sget(at(tk_get(tk_get(s1, "clinicalStatus"), "coding"), 0), "code"), "active");
		assert_string_equal(tk_sget(s1, "recordedDate"), "2024-03-05");
	} else {
		who1 = at(tk_get(s1, "performer"), 0);
		who2 = at(tk_get(s2, "performer"), 0);
		assert_string_equal(tk_sget(s1, "status"), "final");
		const cJSON *cats = tk_get(s1, "category");
		assert_int_equal(cJSON_GetArraySize(cats), 2);
		assert_string_equal(tk_sget(at(tk_get(at(cats, 0), "coding"), 0), "system"),
				    "http://terminology.hl7.org/CodeSystem/observation-category");
		assert_string_equal(tk_sget(at(tk_get(at(cats, 0), "coding"), 0), "code"), "social-history");
		assert_string_equal(tk_sget(at(tk_get(at(tk_get(s2, "category"), 1), "coding"), 0), "code"), "interpersonal");
		const cJSON *code = at(tk_get(tk_get(s1, "code"), "coding"), 0);
		assert_string_equal(tk_sget(code, "system"), BASE "/CodeSystem/recovery-observation");
		assert_string_equal(tk_sget(code, "code"), "strength");
		assert_string_equal(tk_sget(s1, "valueString"), "I don't give up, even on the hard days.");
		assert_string_equal(tk_sget(s1, "effectiveDateTime"), "2024-03-05");
	}
	assert_string_equal(tk_sget(who1, "reference"), patref); /* self */
	assert_string_equal(tk_sget(who2, "type"), "Practitioner");
	assert_string_equal(tk_sget(who2, "display"), "Sample Specialist A");
	assert_string_equal(tk_sget(tk_get(who2, "identifier"), "value"), "S-17");
	cJSON_Delete(b);
	tk_call_end(&c);
	free(doc);
}

/* Each Bundle passes validation and holds only the configured resource type. */
static void valid_in_its_mode(const cJSON *b)
{
	expect_valid(b);
	assert_int_equal(tk_count_type(b, condition_mode ? "Observation" : "Condition"), 0);
}

/* native → FHIR → native gives back what went in; the Bundle is the same
 * on every run and passes validation. */
static void every_example_round_trips(void **state)
{
	(void)state;
	assert_true(tk_round_trip_examples(EXAMPLES, "strengths", valid_in_its_mode) >= 5);
}

/* CSV and JSON of the same strengths make the same resources. */
static void csv_and_json_make_the_same_fhir(void **state)
{
	(void)state;
	tk_expect_csv_and_json_agree("strengths", EXAMPLES "/strengths-several.csv");
}

/* A Bundle made in the other mode maps back just the same. */
static void the_other_resource_maps_back_too(void **state)
{
	(void)state;
	char *doc = tk_slurp(EXAMPLES "/strengths-one-person.json", NULL);
	struct tk_call c;
	tk_call_begin(&c);
	cJSON *b = to_fhir(&c, CW_MEDIA_JSON, doc);
	assert_non_null(b);
	/* Rewrite each strength as the other resource, as the other mode would. */
	const cJSON *e;
	cJSON_ArrayForEach(e, tk_get(b, "entry")) {
		const cJSON *r = tk_get(e, "resource");
		if (strcmp(tk_sget(r, "resourceType"), "Patient") == 0)
			continue;
		cJSON *n = cJSON_CreateObject();
		cJSON_AddStringToObject(n, "resourceType", condition_mode ? "Observation" : "Condition");
		cJSON_AddItemToObject(n, "id", cJSON_Duplicate(tk_get(r, "id"), 1));
		cJSON_AddItemToObject(n, "extension", cJSON_Duplicate(tk_get(r, "extension"), 1));
		cJSON_AddItemToObject(n, "identifier", cJSON_Duplicate(tk_get(r, "identifier"), 1));
		cJSON_AddItemToObject(n, "subject", cJSON_Duplicate(tk_get(r, "subject"), 1));
		const cJSON *cat = at(tk_get(r, "category"), condition_mode ? 2 : 1);
		cJSON *cats = cJSON_AddArrayToObject(n, "category");
		cJSON_AddItemToArray(cats, cJSON_Duplicate(cat, 1));
		if (condition_mode) {
			cJSON_AddStringToObject(n, "status", "final");
			cJSON_AddItemToObject(n, "code", cJSON_Parse("{\"coding\":[{\"system\":\"" BASE
								     "/CodeSystem/strength-observation\",\"code\":\"strength\"}]}"));
			cJSON_AddItemToObject(n, "effectiveDateTime", cJSON_Duplicate(tk_get(r, "recordedDate"), 1));
			cJSON_AddItemToArray(cJSON_AddArrayToObject(n, "performer"), cJSON_Duplicate(tk_get(r, "asserter"), 1));
			cJSON_AddItemToObject(n, "valueString", cJSON_Duplicate(tk_get(tk_get(r, "code"), "text"), 1));
		} else {
			cJSON_AddItemToObject(n, "code", cJSON_Parse("{}"));
			cJSON_AddItemToObject(mget(n, "code"), "text", cJSON_Duplicate(tk_get(r, "valueString"), 1));
			cJSON_AddItemToObject(n, "recordedDate", cJSON_Duplicate(tk_get(r, "effectiveDateTime"), 1));
			cJSON_AddItemToObject(n, "asserter", cJSON_Duplicate(at(tk_get(r, "performer"), 0), 1));
		}
		cJSON_ReplaceItemInObjectCaseSensitive((cJSON *)e, "resource", n);
	}
	expect_valid(b);
	char *out = from_fhir(&c, CW_MEDIA_JSON, b);
	assert_non_null(out);
	if (c.oo.n)
		tk_dump(&c.oo);
	assert_int_equal(c.oo.n, 0);
	cJSON *want = cJSON_Parse(doc), *got = cJSON_Parse(out);
	assert_true(cJSON_Compare(want, got, true));
	cJSON_Delete(want);
	cJSON_Delete(got);
	free(out);
	tk_call_end(&c);
	free(doc);
}

/* ------------------------------------------------------------ refusals */

static const char *const good_header =
	"version,person_system,person_value,person_name,strength_id,category,description,identified_by,"
	"identified_by_name,identified_by_system,identified_by_value,date,goals\n";

static void refuses_each_bad_json_field(void **state)
{
	(void)state;
#define ONE                                                                                            \
	"{\"version\":1,\"person\":{\"identifier\":{\"system\":\"urn:p\",\"value\":\"1\"}},"               \
	"\"strengths\":[{\"id\":\"S1\",\"category\":\"%s\",\"description\":\"%s\",\"identified_by\":%s," \
	"\"date\":\"%s\"}]}"
	struct {
		const char *cat, *desc, *by, *date;
		const char *code, *where, *text;
	} cases[] = {
		{"personal", "Kind.", "{\"role\":\"self\"}", "2024-01-01", NULL, NULL, NULL},
		{"bravery", "Kind.", "{\"role\":\"self\"}", "2024-01-01", "code-invalid", "/strengths/0/category",
		 "unknown category 'bravery'"},
		{"personal", " Kind.", "{\"role\":\"self\"}", "2024-01-01", "value", "/strengths/0/description",
		 "white space"},
		{"personal", "", "{\"role\":\"self\"}", "2024-01-01", "value", "/strengths/0/description", "empty"},
		{"personal", "a\\u000bb", "{\"role\":\"self\"}", "2024-01-01", "value", "/strengths/0/description",
		 "control characters"},
		{"personal", "Kind.", "{\"role\":\"friend\"}", "2024-01-01", "code-invalid",
		 "/strengths/0/identified_by/role", "unknown role 'friend'"},
		{"personal", "Kind.", "{\"role\":\"self\",\"name\":\"N\"}", "2024-01-01", "value",
		 "/strengths/0/identified_by", "self"},
		{"personal", "Kind.", "{\"role\":\"peer\",\"identifier\":{\"system\":\"x y\",\"value\":\"1\"}}", "2024-01-01",
		 "value", "/strengths/0/identified_by/identifier/system", "absolute URI"},
		{"personal", "Kind.", "{\"name\":\"N\"}", "2024-01-01", "required", "/strengths/0/identified_by/role",
		 "required"},
		{"personal", "Kind.", "{\"role\":\"self\"}", "2023-02-29", "value", "/strengths/0/date", "YYYY-MM-DD"},
		{"personal", "Kind.", "{\"role\":\"self\"}", "2024-01-01T10:00:00Z", "value", "/strengths/0/date",
		 "YYYY-MM-DD"},
		{"personal", "Kind.", "{\"role\":\"self\"}", "01/02/2024", "value", "/strengths/0/date", "YYYY-MM-DD"},
		{"personal", "Kind.", "{\"role\":\"self\"}", "20240101", "value", "/strengths/0/date", "YYYY-MM-DD"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char doc[1024];
		snprintf(doc, sizeof doc, ONE, cases[i].cat, cases[i].desc, cases[i].by, cases[i].date);
		struct tk_call c;
		tk_call_begin(&c);
		cJSON *b = to_fhir(&c, CW_MEDIA_JSON, doc);
		if (!cases[i].code) {
			assert_non_null(b);
			cJSON_Delete(b);
		} else {
			assert_null(b);
			tk_expect_issue(&c.oo, OUTCOME_ERROR, cases[i].code, cases[i].where, cases[i].text);
			if (tk_count_severity(&c.oo, OUTCOME_ERROR) != 1)
				tk_dump(&c.oo);
			assert_int_equal(tk_count_severity(&c.oo, OUTCOME_ERROR), 1);
		}
		tk_call_end(&c);
	}
#undef ONE
}

static void refuses_json(const char *doc, size_t n_expected, const char *const (*expected)[3])
{
	tk_expect_json_refused("strengths", doc, n_expected, expected);
}

static void refuses_json_listing_every_problem(void **state)
{
	(void)state;
	const char *doc =
		"{\"version\":2,\"person\":{\"identifier\":{\"system\":\"not a uri\",\"value\":\"\"},\"nick\":\"x\"},"
		"\"strengths\":["
		"{\"id\":\"S1\",\"category\":\"luck\",\"description\":\"Kind.\",\"identified_by\":{\"role\":\"self\","
		"\"identifier\":{\"system\":\"urn:x\",\"value\":\"v\"}},\"date\":\"2024-13-01\",\"goals\":[\"a;b\",\"g\",\"g\"]},"
		"{\"id\":\"S1\",\"category\":\"personal\",\"description\":7,\"identified_by\":\"self\","
		"\"date\":\"2024-01-01\",\"goals\":[],\"extra\":true},"
		"{}]}";
	static const char *const expected[][3] = {
		{"not-supported", "/version", "version 1"},
		{"structure", "/person/nick", "unknown member"},
		{"value", "/person/identifier/value", NULL},
		{"value", "/person/identifier/system", "absolute URI"},
		{"code-invalid", "/strengths/0/category", "luck"},
		{"value", "/strengths/0/identified_by", "self"},
		{"value", "/strengths/0/date", "YYYY-MM-DD"},
		{"value", "/strengths/0/goals/0", "goal identifier"},
		{"duplicate", "/strengths/0/goals/2", "twice"},
		{"structure", "/strengths/1/extra", "unknown member"},
		{"structure", "/strengths/1/description", "string"},
		{"structure", "/strengths/1/identified_by", "object"},
		{"structure", "/strengths/1/goals", "non-empty"},
		{"duplicate", "/strengths/1/id", "already given at /strengths/0"},
		{"required", "/strengths/2/id", NULL},
		{"required", "/strengths/2/category", NULL},
		{"required", "/strengths/2/description", NULL},
		{"required", "/strengths/2/identified_by", NULL},
		{"required", "/strengths/2/date", NULL},
	};
	refuses_json(doc, sizeof expected / sizeof expected[0], expected);

	tk_expect_json_shapes_refused("strengths", "strengths");
	static const char *const missing[][3] = {
		{"required", "/version", NULL}, {"required", "/person", NULL}, {"required", "/strengths", NULL}};
	refuses_json("{}", 3, missing);
}

static void refuses_csv_listing_every_problem(void **state)
{
	(void)state;
	/* A wrong header (column 6 renamed), then rows with faults. */
	const char *doc =
		"version,person_system,person_value,person_name,strength_id,kind,description,identified_by,"
		"identified_by_name,identified_by_system,identified_by_value,date,goals\n"
		"1,urn:p,1,,S1,bravery,Kind.,self,Name,,,2024-02-30,\n"
		"1,urn:p,1\n"
		"2,urn:p,1,,,personal, Kind.,cousin,,urn:s,,2024-01-01,g;g\n"
		"1,urn:p,1,,S1,personal,Kind.,peer,,,,2024-01-01,\n"
		"1,urn:p,1,,S9,personal,\"Kind\"x,self,,,,2024-01-01,\n";
	static const char *const faults[][3] = {
		{"structure", "line 1, column 6", "'category'"},
		{"code-invalid", "line 2, column 6", "'bravery'"},
		{"value", "line 2, column 8", "self"},
		{"value", "line 2, column 12", "YYYY-MM-DD"},
		{"structure", "line 3", "3 columns"},
		{"not-supported", "line 4, column 1", "version 1"},
		{"required", "line 4, column 5", "strength_id"},
		{"value", "line 4, column 7", "white space"},
		{"code-invalid", "line 4, column 8", "'cousin'"},
		{"required", "line 4, column 11", "go together"},
		{"duplicate", "line 4, column 13", "twice"},
		{"duplicate", "line 5, column 5", "line 2"},
		{"structure", "line 6", "malformed"},
	};
	tk_expect_csv_refused("strengths", doc, sizeof faults / sizeof faults[0], faults);

	/* A short header; an empty body; a header alone; a name conflict. */
	tk_expect_csv_shapes_refused("strengths", good_header, "no strength rows");
	char two[1024];
	snprintf(two, sizeof two, "%s%s%s", good_header, "1,urn:p,1,Name A,S1,personal,Kind.,self,,,,2024-01-01,\n",
		 "1,urn:p,1,Name B,S2,personal,Brave.,self,,,,2024-01-01,\n");
	static const char *const conflict[][3] = {
		{"conflict", "line 3, column 4", "line 2"},
	};
	tk_expect_csv_refused("strengths", two, 1, conflict);
}

/* ------------------------------------------------- FHIR made elsewhere */

static void official_examples_give_warnings(void **state)
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
		bool obs = strncmp(de->d_name, "observation-example", 19) == 0;
		if (!obs && strncmp(de->d_name, "condition-example", 17) != 0)
			continue;
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		char *text = tk_slurp(path, NULL);
		cJSON *res = cJSON_Parse(text);
		assert_non_null(res);
		for (int csv = 0; csv < 2; csv++) {
			struct tk_call c;
			tk_call_begin(&c);
			char *out = from_fhir(&c, csv ? CW_MEDIA_CSV : CW_MEDIA_JSON, cJSON_Duplicate(res, 1));
			if (!out)
				tk_dump(&c.oo);
			assert_non_null(out);
			assert_string_equal(out, csv ? good_header : "[]");
			assert_int_equal(tk_count_severity(&c.oo, OUTCOME_ERROR), 0);
			tk_expect_issue(&c.oo, OUTCOME_WARNING, "not-supported", "Bundle.entry[0].resource", "not a strength");
			free(out);
			tk_call_end(&c);
		}
		cJSON_Delete(res);
		free(text);
		seen++;
	}
	closedir(d);
	assert_true(seen >= 20);

	/* The official Patient example in a Bundle with the Condition example
	 * retyped as a protective factor: mapped, with everything else reported. */
	char path[1024];
	snprintf(path, sizeof path, "%s/condition-example.json", dir);
	char *text = tk_slurp(path, NULL);
	cJSON *cond = cJSON_Parse(text);
	free(text);
	snprintf(path, sizeof path, "%s/patient-example.json", dir);
	text = tk_slurp(path, NULL);
	cJSON *pat = cJSON_Parse(text);
	free(text);
	assert_non_null(cond);
	assert_non_null(pat);
	cJSON_AddItemToArray(mget(cond, "category"),
			     cJSON_Parse("{\"coding\":[{\"system\":\"" BASE "/CodeSystem/strength-category\","
					 "\"code\":\"resources\"}]}"));
	cJSON_AddItemToArray(cJSON_AddArrayToObject(cond, "identifier"),
			     cJSON_Parse("{\"system\":\"" BASE "/NamingSystem/recovery-strength\",\"value\":\"F-1\"}"));
	cJSON_ReplaceItemInObjectCaseSensitive(mget(cond, "code"), "text", cJSON_CreateString("Stably housed."));
	cJSON_AddStringToObject(cond, "recordedDate", "2024-05-06T10:00:00Z");
	cJSON_AddItemToObject(cond, "asserter", cJSON_Parse("{\"reference\":\"Practitioner/f201\",\"display\":\"Sample Clinician\"}"));
	cJSON_ReplaceItemInObjectCaseSensitive(mget(cond, "subject"), "reference", cJSON_CreateString("Patient/example"));
	cJSON *b = cJSON_Parse("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[]}");
	cJSON *e1 = cJSON_CreateObject(), *e2 = cJSON_CreateObject();
	cJSON_AddItemToObject(e1, "resource", pat);
	cJSON_AddItemToObject(e2, "resource", cond);
	cJSON_AddItemToArray(mget(b, "entry"), e1);
	cJSON_AddItemToArray(mget(b, "entry"), e2);
	struct tk_call c;
	tk_call_begin(&c);
	char *out = from_fhir(&c, CW_MEDIA_JSON, b);
	assert_non_null(out);
	assert_int_equal(tk_count_severity(&c.oo, OUTCOME_ERROR), 0);
	/* The asserter, Practitioner/f201, is not in the Bundle: its reference goes. */
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[1].resource.asserter.reference", "left out");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[1].resource.severity", "left out");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[1].resource.category[0].coding[0]", "left out");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[1].resource.code.coding[0]", "own words");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[1].resource.recordedDate", "time of day");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[0].resource.birthDate", "left out");
	cJSON *doc = cJSON_Parse(out);
	assert_non_null(doc);
	const cJSON *s = at(tk_get(doc, "strengths"), 0);
	if (!s)
		tk_dump(&c.oo);
	assert_non_null(s);
	assert_string_equal(tk_sget(s, "id"), "F-1");
	assert_string_equal(tk_sget(s, "category"), "resources");
	assert_string_equal(tk_sget(s, "description"), "Stably housed.");
	assert_string_equal(tk_sget(s, "date"), "2024-05-06");
	assert_string_equal(tk_sget(tk_get(s, "identified_by"), "role"), "provider");
	assert_string_equal(tk_sget(tk_get(s, "identified_by"), "name"), "Sample Clinician");
	cJSON_Delete(doc);
	free(out);
	tk_call_end(&c);
}

/* A Bundle made by Crosswalk, then changed elsewhere: additions reported,
 * the strengths themselves still come out. */
static void foreign_additions_are_reported(void **state)
{
	(void)state;
	char *doc = tk_slurp(EXAMPLES "/strengths-one-person.json", NULL);
	struct tk_call c;
	tk_call_begin(&c);
	cJSON *b = to_fhir(&c, CW_MEDIA_JSON, doc);
	assert_non_null(b);
	cJSON *pat = (cJSON *)tk_nth(b, "Patient", 0), *s = (cJSON *)tk_nth(b, strength_type(), 1);
	cJSON_AddStringToObject(pat, "gender", "unknown");
	cJSON_AddItemToObject(s, "note", cJSON_Parse("[{\"text\":\"n\"}]"));
	cJSON_AddItemToArray(mget(s, "identifier"), cJSON_Parse("{\"system\":\"urn:other\",\"value\":\"v\"}"));
	cJSON_AddItemToArray(mget(s, "extension"), cJSON_Parse("{\"url\":\"urn:x\",\"valueString\":\"y\"}"));
	cJSON_AddItemToArray(mget(b, "entry"),
			     cJSON_Parse("{\"resource\":{\"resourceType\":\"Goal\",\"id\":\"g1\",\"lifecycleStatus\":\"active\","
					 "\"description\":{\"text\":\"d\"},\"subject\":{\"reference\":\"Patient/x\"}}}"));
	char *out = from_fhir(&c, CW_MEDIA_JSON, b);
	assert_non_null(out);
	assert_int_equal(tk_count_severity(&c.oo, OUTCOME_ERROR), 0);
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[0].resource.gender", "left out");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[2].resource.note", "left out");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[2].resource.identifier[1]", "left out");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[2].resource.extension[3]", "urn:x");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[4].resource",
			"1 Goal resource is not part of the strengths format; left out");
	assert_int_equal(tk_count_severity(&c.oo, OUTCOME_WARNING), 5);
	cJSON *want = cJSON_Parse(doc), *got = cJSON_Parse(out);
	assert_true(cJSON_Compare(want, got, true));
	cJSON_Delete(want);
	cJSON_Delete(got);
	free(out);
	tk_call_end(&c);
	free(doc);
}

/* What a strength needs and lacks: left out, one warning per reason. */
static void incomplete_strengths_are_left_out(void **state)
{
	(void)state;
	const char *bundle =
		"{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
		"{\"fullUrl\":\"urn:uuid:9b1f0c62-7d2e-4f7e-9b0e-4c6f1f0a0001\",\"resource\":{\"resourceType\":\"Patient\","
		"\"identifier\":[{\"system\":\"urn:p\",\"value\":\"1\"}]}},"
		"{\"resource\":{\"resourceType\":\"Observation\",\"status\":\"preliminary\","
		"\"code\":{\"coding\":[{\"system\":\"http://hl7.org/fhir/us/eltss/CodeSystem/eltss-observation-codes-temporary\","
		"\"code\":\"strength\"}]},\"subject\":{\"reference\":\"urn:uuid:9b1f0c62-7d2e-4f7e-9b0e-4c6f1f0a0001\"},"
		"\"valueString\":\"Able to manage bills.\"}},"
		"{\"resource\":{\"resourceType\":\"Condition\",\"clinicalStatus\":{\"coding\":[{\"system\":"
		"\"http://terminology.hl7.org/CodeSystem/condition-clinical\",\"code\":\"resolved\"}]},"
		"\"category\":[{\"coding\":[{\"system\":\"http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/"
		"SDOHCC-CodeSystemTemporaryCodes\",\"code\":\"protective-factor\"}]}],"
		"\"code\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"1137434003\"}]},"
		"\"subject\":{\"reference\":\"Patient/elsewhere\"}}}]}";
	struct tk_call c;
	tk_call_begin(&c);
	char *out = from_fhir(&c, CW_MEDIA_JSON, cJSON_Parse(bundle));
	assert_non_null(out);
	assert_string_equal(out, "{\"version\":1,\"person\":{\"identifier\":{\"system\":\"urn:p\",\"value\":\"1\"}},"
				 "\"strengths\":[]}");
	assert_int_equal(tk_count_severity(&c.oo, OUTCOME_ERROR), 0);
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[1].resource.identifier", "not exported");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[1].resource.status", "not exported");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[1].resource.category", "not exported");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[1].resource.effectiveDateTime", "not exported");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[1].resource.performer[0]", "who identified");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[2].resource.clinicalStatus", "not active");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[2].resource.code.coding[0]", "1137434003");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[2].resource.code.text", "person's words");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[2].resource.subject", "not exported");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[2].resource.recordedDate", "not exported");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[2].resource.asserter", "who identified");
	free(out);
	tk_call_end(&c);
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

static void validate_over_http(const struct gw *gw, const cJSON *bundle)
{
	const char *fhir[] = {"Content-Type: application/fhir+json", NULL};
	const cJSON *e;
	cJSON_ArrayForEach(e, tk_get(bundle, "entry")) {
		char *text = cJSON_PrintUnformatted(tk_get(e, "resource"));
		struct resp r;
		assert_int_equal(http_do(gw, "POST", "/fhir/$validate", fhir, text, strlen(text), &r), 0);
		assert_int_equal(r.status, 200);
		if (strstr(r.body, "\"error\""))
			fprintf(stderr, "# %s\n", r.body);
		assert_null(strstr(r.body, "\"error\""));
		resp_free(&r);
		free(text);
	}
}

static void http_ingest_is_idempotent(void **state)
{
	(void)state;
	size_t len;
	char *doc = tk_slurp(EXAMPLES "/strengths-several.json", &len);
	struct resp r1;
	tk_http_preview_twice(&g, "strengths", "application/json", doc, len, &r1);
	cJSON *b = cJSON_Parse(r1.body);
	assert_int_equal(tk_count_type(b, "Patient"), 3);
	assert_int_equal(tk_count_type(b, "Observation"), 5);
	validate_over_http(&g, b);
	tk_http_export_json_is(&g, "strengths", r1.body, r1.len, doc);
	cJSON_Delete(b);
	resp_free(&r1);
	free(doc);

	tk_http_csv_round_trip(&g, "strengths", EXAMPLES "/strengths-several.csv");

	/* Stored for real (201), then read back from the store by patient. */
	doc = tk_slurp(EXAMPLES "/strengths-one-person.json", &len);
	char pid[80];
	gw_ingest_stored(&g, "strengths", "application/json", doc, len, pid, sizeof pid);
	gw_expect_export_json(&g, "strengths", pid, doc);
	free(doc);
}

/* The X-Crosswalk-Warning header lines of r that contain needle. */
static int warning_lines(const struct resp *r, const char *needle)
{
	int n = 0;
	for (const char *p = r->headers; (p = strstr(p, "X-Crosswalk-Warning: ")) != NULL; p++) {
		const char *eol = strstr(p, "\r\n");
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		const char *hit = strstr(p, needle);
		n += hit && hit < p + len;
	}
	return n;
}

/* A person's record holds more than one format: exporting the strengths
 * says what it leaves out in one warning per resource type, while what was
 * in scope and could not be mapped keeps its own warning. */
static void export_summarises_what_other_formats_hold(void **state)
{
	(void)state;
	const char *json[] = {"Content-Type: application/json", NULL};
	const char *fhir[] = {"Content-Type: application/fhir+json", NULL};
	struct resp r;
	size_t len;
	char *doc = tk_slurp(EXAMPLES "/peer-support-individual.json", &len);
	assert_int_equal(http_do(&g, "POST", "/ingest/peer-support", json, doc, len, &r), 0);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	free(doc);
	doc = tk_slurp(EXAMPLES "/strengths-one-person.json", &len);
	assert_int_equal(http_do(&g, "POST", "/ingest/strengths", json, doc, len, &r), 0);
	assert_int_equal(r.status, 201);
	free(doc);
	char pid[80] = "", oid[80] = "", path[200];
	cJSON *tr = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *e;
	cJSON_ArrayForEach(e, tk_get(tr, "entry")) {
		const char *loc = tk_sget(tk_get(e, "response"), "location");
		const char *p = loc ? strstr(loc, "/Patient/") : NULL, *o = loc ? strstr(loc, "/Observation/") : NULL;
		if (p && !pid[0])
			snprintf(pid, sizeof pid, "%.*s", (int)strcspn(p + 9, "/"), p + 9);
		if (o && !oid[0])
			snprintf(oid, sizeof oid, "%.*s", (int)strcspn(o + 13, "/"), o + 13);
	}
	cJSON_Delete(tr);
	assert_true(pid[0] && oid[0]);
	/* In scope but not mappable: a note on one strength. */
	snprintf(path, sizeof path, "/fhir/Observation/%s", oid);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *obs = cJSON_Parse(r.body);
	resp_free(&r);
	cJSON *note = cJSON_AddArrayToObject(obs, "note"), *n1 = cJSON_CreateObject();
	cJSON_AddStringToObject(n1, "text", "said at the second meeting");
	cJSON_AddItemToArray(note, n1);
	char *text = cJSON_PrintUnformatted(obs);
	cJSON_Delete(obs);
	assert_int_equal(http_do(&g, "PUT", path, fhir, text, strlen(text), &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	free(text);

	snprintf(path, sizeof path, "/export/strengths?patient=%s", pid);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	char count[16];
	assert_non_null(resp_header(&r, "X-Crosswalk-Warnings", count, sizeof count));
	/* peer-support left Encounters, Procedures and the specialist: one line
	 * per type, counted; the note keeps its own line. */
	if (warning_lines(&r, "") != 4 || warning_lines(&r, "2 Encounter resources are not part of the strengths format") != 1 ||
	    warning_lines(&r, "Procedure resources are not part of the strengths format") != 1)
		fprintf(stderr, "# %s\n", r.headers);
	assert_string_equal(count, "4");
	assert_int_equal(warning_lines(&r, ""), 4);
	assert_int_equal(warning_lines(&r, "2 Encounter resources are not part of the strengths format; left out"), 1);
	assert_int_equal(warning_lines(&r, "Procedure resources are not part of the strengths format; left out"), 1);
	assert_int_equal(warning_lines(&r, "1 Practitioner resource is not part of the strengths format; left out"), 1);
	assert_int_equal(warning_lines(&r, "Encounter/"), 0);
	assert_int_equal(warning_lines(&r, ".note: strengths: Observation.note has no place in the strengths format"), 1);
	resp_free(&r);
}

static void http_refusal_is_an_outcome(void **state)
{
	(void)state;
	char doc[2048];
	snprintf(doc, sizeof doc, "%s%s", good_header, "1,urn:p,1,,S1,grit,Kind.,self,,,,2024-02-30,\n");
	static const char *const where[] = {"line 2, column 6", "line 2, column 12"};
	tk_http_expect_refused(&g, "strengths", "text/csv", doc, 2, where);
}

/* The settings: Condition mode and another base over HTTP; bad settings
 * stop the gateway. */
/* Writes text to dir/name; the path into path. */
static void write_as(const char *dir, const char *name, const char *text, char *path, size_t size)
{
	snprintf(path, size, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	fclose(f);
}

/* crosswalk map --from reads the media from the file's extension, else from
 * its content; --media still decides when given. */
static void map_command_tells_csv_from_json(void **state)
{
	(void)state;
	static char out[1 << 17], want[1 << 17];
	char dir[] = "/tmp/cw-map-XXXXXX", path[512];
	assert_non_null(mkdtemp(dir));
	harness_remove_at_exit(dir);
	char *csv = tk_slurp(EXAMPLES "/strengths-several.csv", NULL);
	char *json = tk_slurp(EXAMPLES "/strengths-several.json", NULL);

	const char *with_media[] = {"map", "--from", "strengths", "--media", "csv", EXAMPLES "/strengths-several.csv", NULL};
	assert_int_equal(gw_run_command(NULL, with_media, 15000, want, sizeof want), 0);
	assert_non_null(strstr(want, "\"transaction\""));
	const char *by_name[] = {"map", "--from", "strengths", EXAMPLES "/strengths-several.csv", NULL};
	assert_int_equal(gw_run_command(NULL, by_name, 15000, out, sizeof out), 0);
	assert_string_equal(out, want);
	write_as(dir, "PEOPLE.CSV", csv, path, sizeof path);
	const char *upper[] = {"map", "--from", "strengths", path, NULL};
	assert_int_equal(gw_run_command(NULL, upper, 15000, out, sizeof out), 0);
	assert_string_equal(out, want);
	write_as(dir, "people", csv, path, sizeof path);
	const char *by_content[] = {"map", "--from", "strengths", path, NULL};
	assert_int_equal(gw_run_command(NULL, by_content, 15000, out, sizeof out), 0);
	assert_string_equal(out, want);

	const char *json_media[] = {"map", "--from", "strengths", "--media", "json", EXAMPLES "/strengths-several.json", NULL};
	assert_int_equal(gw_run_command(NULL, json_media, 15000, want, sizeof want), 0);
	write_as(dir, "people.txt", json, path, sizeof path);
	const char *json_content[] = {"map", "--from", "strengths", path, NULL};
	assert_int_equal(gw_run_command(NULL, json_content, 15000, out, sizeof out), 0);
	assert_string_equal(out, want);

	/* The extension wins over the content: CSV text named .json is refused. */
	write_as(dir, "people.json", csv, path, sizeof path);
	const char *wrong[] = {"map", "--from", "strengths", path, NULL};
	assert_int_equal(gw_run_command(NULL, wrong, 15000, out, sizeof out), 1);
	assert_non_null(strstr(out, "OperationOutcome"));
	free(csv);
	free(json);
}

static void settings_are_checked_and_used(void **state)
{
	(void)state;
	struct gw own;
	assert_int_equal(gw_start(&own, "\"plugins\":{\"strengths\":{\"resource\":\"condition\","
					"\"canonical_base\":\"https://fhir.example.net/r4/\"}}"),
			 0);
	size_t len;
	char *doc = tk_slurp(EXAMPLES "/strengths-edge-cases.json", &len);
	const char *json[] = {"Content-Type: application/json", NULL};
	struct resp r;
	assert_int_equal(http_do(&own, "POST", "/ingest/strengths?preview=true", json, doc, len, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "https://fhir.example.net/r4/StructureDefinition/recovery-strength-condition"));
	assert_non_null(strstr(r.body, "https://fhir.example.net/r4/CodeSystem/strength-category"));
	assert_null(strstr(r.body, "crosswalk.example.org"));
	cJSON *b = cJSON_Parse(r.body);
	assert_int_equal(tk_count_type(b, "Condition"), 3);
	assert_int_equal(tk_count_type(b, "Observation"), 0);
	validate_over_http(&own, b);
	cJSON_Delete(b);
	resp_free(&r);
	free(doc);
	assert_int_equal(gw_stop(&own, 15000), 0);

	static char out[65536];
	const char *bad[] = {"\"plugins\":{\"strengths\":{\"resource\":\"procedure\"}}",
			     "\"plugins\":{\"strengths\":{\"canonical_base\":\"not a uri\"}}",
			     "\"plugins\":{\"strengths\":{\"goal_system\":\"\"}}",
			     "\"plugins\":{\"strengths\":{\"colour\":\"blue\"}}"};
	const char *why[] = {"resource", "canonical_base", "goal_system", "colour"};
	for (size_t i = 0; i < 4; i++) {
		int rc = gw_run_expect_exit(bad[i], NULL, 15000, out, sizeof out);
		assert_int_equal(rc, 2);
		if (!strstr(out, why[i]))
			fprintf(stderr, "# %s\n", out);
		assert_non_null(strstr(out, why[i]));
	}
}

int main(void)
{
	const struct CMUnitTest mapping[] = {
		cmocka_unit_test(maps_one_person),
		cmocka_unit_test(every_example_round_trips),
		cmocka_unit_test(csv_and_json_make_the_same_fhir),
		cmocka_unit_test(the_other_resource_maps_back_too),
		cmocka_unit_test(refuses_each_bad_json_field),
		cmocka_unit_test(refuses_json_listing_every_problem),
		cmocka_unit_test(refuses_csv_listing_every_problem),
		cmocka_unit_test(official_examples_give_warnings),
		cmocka_unit_test(foreign_additions_are_reported),
		cmocka_unit_test(incomplete_strengths_are_left_out),
	};
	const struct CMUnitTest served[] = {
		cmocka_unit_test(http_ingest_is_idempotent),
		cmocka_unit_test(http_refusal_is_an_outcome),
		cmocka_unit_test(export_summarises_what_other_formats_hold),
	};
	const struct CMUnitTest standalone[] = {
		cmocka_unit_test(settings_are_checked_and_used),
		cmocka_unit_test(map_command_tells_csv_from_json),
	};
	int rc = cmocka_run_group_tests_name("strengths as Observation", mapping, host_up_observation, host_down);
	rc += cmocka_run_group_tests_name("strengths as Condition", mapping, host_up_condition, host_down);
	rc += cmocka_run_group_tests_name("strengths served", served, gw_up, gw_down);
	rc += cmocka_run_group_tests_name("strengths settings", standalone, NULL, NULL);
	return rc;
}
