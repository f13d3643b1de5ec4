/* Tests of the recovery_plan plugin (the "recovery-plan" native format,
 * docs/formats/recovery-plan.md).
 *
 * Through the plugin tk_host, with the built recovery_plan.so loaded from the
 * plugin directory: native → FHIR details, every emitted resource through
 * the core's structural validator, native → FHIR → native byte for byte for
 * every example in docs/formats/examples, idempotent ids, every refusal with
 * its JSON-pointer location, and FHIR → native of resources Crosswalk did
 * not make (the official R4 Goal and CarePlan examples), whose unmappable
 * parts must come back as warnings — the host API is used there because an
 * HTTP export answers only the document.
 *
 * Through the real gateway over loopback: POST /ingest/recovery-plan twice,
 * POST /fhir/$validate of what it answered, POST /export/recovery-plan, a
 * refusal as a 422 OperationOutcome, and the canonical_base setting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e/harness.h"
#include "testenv.h"
#include "e2e/plugin_kit.h"
#include "fhir/validate.h"

#define EXAMPLES "docs/formats/examples/"
#define BASE "https://crosswalk.example.org/fhir"
#define FORMAT "recovery-plan"

static const char *const example_names[] = {"recovery-plan-four-dimensions.json", "recovery-plan-several.json",
					    "recovery-plan-edge-cases.json", "recovery-plan-crisis.json"};
#define N_EXAMPLES (sizeof example_names / sizeof example_names[0])


static char *example(const char *name)
{
	char path[512];
	snprintf(path, sizeof path, EXAMPLES "%s", name);
	return tk_slurp(path, NULL);
}

static char *r4(const char *name)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/fhir-r4/examples-json-xml/json/%s", corpus_dir(), name);
	return tk_slurp(path, NULL);
}

/* The JSON text without white space outside strings (in place). */
static char *minify(char *s)
{
	char *w = s;
	bool in = false, esc = false;
	for (char *r = s; *r; r++) {
		if (in) {
			*w++ = *r;
			if (esc)
				esc = false;
			else if (*r == '\\')
				esc = true;
			else if (*r == '"')
				in = false;
		} else if (!strchr(" \t\r\n", *r)) {
			*w++ = *r;
			in = *r == '"';
		}
	}
	*w = '\0';
	return s;
}

static const cJSON *at(const cJSON *a, int i) { return cJSON_GetArrayItem(a, i); }

/* ------------------------------------------------ through the host API */

static int host_up(void **state)
{
	(void)state;
	return tk_host_up(FORMAT, NULL);
}

static int host_down(void **state)
{
	(void)state;
	tk_host_down();
	return 0;
}

static cJSON *to_fhir(struct tk_call *c, const char *text) { return tk_to_fhir(c, FORMAT, CW_MEDIA_JSON, text); }

static char *from_fhir(struct tk_call *c, cJSON *in) { return tk_from_fhir(c, FORMAT, CW_MEDIA_JSON, in); }

static cJSON *map_example(const char *name)
{
	char *doc = example(name);
	struct tk_call c;
	tk_call_begin(&c);
	cJSON *b = to_fhir(&c, doc);
	if (!b || c.oo.n)
		tk_dump(&c.oo);
	assert_non_null(b);
	assert_int_equal(c.oo.n, 0);
	tk_call_end(&c);
	free(doc);
	return b;
}

static void check_ref(const cJSON *reference, const char *type, const cJSON *target)
{
	char want[128];
	snprintf(want, sizeof want, "%s/%s", type, tk_sget(target, "id"));
	assert_string_equal(tk_sget(reference, "reference"), want);
}

static const char *coding(const cJSON *cc, int i, const char *key)
{
	return tk_sget(at(tk_get(cc, "coding"), i), key);
}

static void maps_the_four_dimensions_example(void **state)
{
	(void)state;
	cJSON *b = map_example("recovery-plan-four-dimensions.json");
	assert_string_equal(tk_sget(b, "type"), "transaction");
	assert_int_equal(tk_count_type(b, "Patient"), 1);
	assert_int_equal(tk_count_type(b, "Goal"), 4);
	assert_int_equal(tk_count_type(b, "CarePlan"), 1);

	const cJSON *p = tk_nth(b, "Patient", 0);
	assert_string_equal(at(tk_get(tk_get(p, "meta"), "profile"), 0)->valuestring, BASE "/StructureDefinition/recovery-patient");
	assert_string_equal(tk_sget(at(tk_get(p, "identifier"), 0), "value"), "P-2001");
	assert_string_equal(tk_sget(at(tk_get(p, "name"), 0), "text"), "Sample Person One");
	const cJSON *x = at(tk_get(p, "extension"), 0);
	assert_string_equal(tk_sget(x, "url"), BASE "/StructureDefinition/recovery-pronouns");
	assert_string_equal(tk_sget(x, "valueString"), "she/her");
	x = at(tk_get(p, "extension"), 1);
	assert_string_equal(tk_sget(x, "url"), BASE "/StructureDefinition/recovery-identity");
	const cJSON *comm = at(tk_get(p, "communication"), 0);
	assert_string_equal(coding(tk_get(comm, "language"), 0, "system"), "urn:ietf:bcp:47");
	assert_string_equal(coding(tk_get(comm, "language"), 0, "code"), "en");
	assert_true(cJSON_IsTrue(tk_get(comm, "preferred")));

	/* Goal 1: health, the person's words, why it matters, progress. */
	const cJSON *g = tk_nth(b, "Goal", 0);
	assert_string_equal(at(tk_get(tk_get(g, "meta"), "profile"), 0)->valuestring, BASE "/StructureDefinition/recovery-goal");
	assert_string_equal(tk_sget(at(tk_get(g, "identifier"), 0), "value"), "G-1");
	assert_string_equal(tk_sget(g, "lifecycleStatus"), "active");
	assert_string_equal(coding(tk_get(g, "achievementStatus"), 0, "system"),
			    "http://terminology.hl7.org/CodeSystem/goal-achievement");
	assert_string_equal(coding(tk_get(g, "achievementStatus"), 0, "code"), "improving");
	const cJSON *cat = tk_get(g, "category");
	assert_string_equal(coding(at(cat, 0), 0, "system"), BASE "/CodeSystem/recovery-dimension");
	assert_string_equal(coding(at(cat, 0), 0, "code"), "health");
	assert_string_equal(coding(at(cat, 1), 0, "system"),
			    "http://hl7.org/fhir/us/pco/CodeSystem/pco-goal-domains-temporary");
	assert_string_equal(coding(at(cat, 1), 0, "code"), "improving-health-and-wellness");
	assert_null(tk_get(tk_get(g, "description"), "coding")); /* the words are never replaced by a code */
	assert_string_equal(tk_sget(tk_get(g, "description"), "text"), "I want to sleep through the night most nights.");
	check_ref(tk_get(g, "subject"), "Patient", p);
	check_ref(tk_get(g, "expressedBy"), "Patient", p);
	assert_string_equal(tk_sget(at(tk_get(g, "target"), 0), "dueDate"), "2024-06-30");
	assert_string_equal(tk_sget(at(tk_get(g, "note"), 0), "text"), "When I sleep I can handle my days and my moods.");
	assert_string_equal(tk_sget(at(tk_get(g, "addresses"), 0), "display"), "trouble sleeping");
	assert_string_equal(tk_sget(at(tk_get(g, "extension"), 0), "valueString"), "my peer specialist");
	/* The other dimensions: home → PCO housing, purpose alone, community → SDOHCC social-connection. */
	assert_string_equal(coding(at(tk_get(tk_nth(b, "Goal", 1), "category"), 1), 0, "code"), "housing");
	assert_int_equal(cJSON_GetArraySize(tk_get(tk_nth(b, "Goal", 2), "category")), 1);
	assert_string_equal(coding(at(tk_get(tk_nth(b, "Goal", 2), "category"), 0), 0, "code"), "purpose");
	assert_string_equal(coding(at(tk_get(tk_nth(b, "Goal", 3), "category"), 1), 0, "system"),
			    "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes");
	assert_string_equal(coding(at(tk_get(tk_nth(b, "Goal", 3), "category"), 1), 0, "code"), "social-connection");

	/* The CarePlan. */
	const cJSON *cp = tk_nth(b, "CarePlan", 0);
	assert_string_equal(at(tk_get(tk_get(cp, "meta"), "profile"), 0)->valuestring, BASE "/StructureDefinition/recovery-plan");
	assert_string_equal(tk_sget(cp, "status"), "active");
	assert_string_equal(tk_sget(cp, "intent"), "plan");
	assert_string_equal(tk_sget(cp, "title"), "My recovery plan");
	assert_string_equal(tk_sget(cp, "created"), "2024-03-05");
	check_ref(tk_get(cp, "subject"), "Patient", p);
	check_ref(tk_get(cp, "author"), "Patient", p);
	assert_int_equal(cJSON_GetArraySize(tk_get(cp, "goal")), 4);
	check_ref(at(tk_get(cp, "goal"), 3), "Goal", tk_nth(b, "Goal", 3));
	const cJSON *acts = tk_get(cp, "activity");
	assert_int_equal(cJSON_GetArraySize(acts), 5 + 3 + 2 + 2 + 2); /* steps, wellness tools, crisis plan */
	const cJSON *d = tk_get(at(acts, 0), "detail");
	assert_string_equal(tk_sget(d, "description"), "Keep a sleep diary for two weeks");
	assert_string_equal(tk_sget(d, "status"), "completed");
	assert_string_equal(coding(tk_get(d, "code"), 0, "code"), "step");
	check_ref(at(tk_get(d, "goal"), 0), "Goal", tk_nth(b, "Goal", 0));
	d = tk_get(at(acts, 4), "detail");
	check_ref(at(tk_get(d, "goal"), 0), "Goal", tk_nth(b, "Goal", 2));
	d = tk_get(at(acts, 5), "detail");
	assert_string_equal(coding(tk_get(d, "code"), 0, "system"), BASE "/CodeSystem/recovery-plan-activity");
	assert_string_equal(coding(tk_get(d, "code"), 0, "code"), "wellness-tool");
	assert_null(tk_get(d, "goal"));
	assert_string_equal(coding(tk_get(tk_get(at(acts, 8), "detail"), "code"), 0, "code"), "crisis-warning-sign");
	assert_string_equal(coding(tk_get(tk_get(at(acts, 10), "detail"), "code"), 0, "code"), "crisis-what-helps");
	assert_string_equal(tk_sget(tk_get(at(acts, 13), "detail"), "description"), "Warm line: 988");
	const cJSON *info = tk_get(cp, "supportingInfo");
	assert_int_equal(cJSON_GetArraySize(info), 5);
	assert_string_equal(tk_sget(at(info, 0), "type"), "PractitionerRole");
	assert_string_equal(tk_sget(at(info, 0), "display"), "Peer specialist at the drop-in centre");
	assert_string_equal(tk_sget(at(info, 1), "type"), "HealthcareService");
	assert_string_equal(tk_sget(at(info, 3), "type"), "RelatedPerson");
	x = at(tk_get(at(info, 3), "extension"), 0);
	assert_string_equal(tk_sget(x, "url"), BASE "/StructureDefinition/recovery-support-for");
	check_ref(tk_get(x, "valueReference"), "Goal", tk_nth(b, "Goal", 1));
	cJSON_Delete(b);
}

static void ingest_is_a_transaction_of_puts_with_stable_ids(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_EXAMPLES; i++) {
		cJSON *a = map_example(example_names[i]), *b = map_example(example_names[i]);
		assert_true(cJSON_Compare(a, b, true)); /* the same document twice changes nothing */
		const cJSON *e;
		cJSON_ArrayForEach(e, tk_get(a, "entry")) {
			const cJSON *r = tk_get(e, "resource"), *req = tk_get(e, "request");
			char url[200];
			snprintf(url, sizeof url, "%s/%s", tk_sget(r, "resourceType"), tk_sget(r, "id"));
			assert_string_equal(tk_sget(req, "method"), "PUT");
			assert_string_equal(tk_sget(req, "url"), url);
			assert_int_equal(strlen(tk_sget(r, "id")), 36);
			assert_non_null(tk_get(r, "identifier")); /* a business identifier on each */
		}
		cJSON_Delete(a);
		cJSON_Delete(b);
	}
	/* Goal ids are those peer-support uses for the same goal identifier. */
	cJSON *b = map_example("recovery-plan-four-dimensions.json");
	struct tk_call c;
	tk_call_begin(&c);
	cJSON *ps = NULL;
	const char *log = "{\"version\":1,\"person\":{\"identifier\":{\"system\":\"https://recovery.example.org/people\","
			  "\"value\":\"P-2001\"}},\"encounters\":[{\"id\":\"E-1\",\"specialist\":{\"identifier\":{\"system\":"
			  "\"urn:s\",\"value\":\"1\"},\"name\":\"Specialist\"},\"start\":\"2024-03-05T10:00:00Z\","
			  "\"duration_minutes\":30,\"mode\":\"individual\",\"setting\":\"clinic\",\"activities\":[\"goal-planning\"],"
			  "\"goals\":[\"G-1\"],\"billable\":false}]}";
	if (plugin_host_format(tk_host, "peer-support", NULL) &&
	    plugin_host_ingest(tk_host, &c.ctx, "peer-support", CW_MEDIA_JSON, log, strlen(log), "POST",
			       "/ingest/peer-support", &ps) == 200) {
		assert_string_equal(tk_sget(tk_nth(ps, "Patient", 0), "id"), tk_sget(tk_nth(b, "Patient", 0), "id"));
		/* the Encounter's goal link (resource-pertainsToGoal) is this plan's Goal */
		const cJSON *link = NULL, *x;
		cJSON_ArrayForEach(x, tk_get(tk_nth(ps, "Encounter", 0), "extension"))
		{
			if (!strcmp(tk_sget(x, "url"), "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal"))
				link = tk_get(x, "valueReference");
		}
		assert_non_null(link);
		check_ref(link, "Goal", tk_nth(b, "Goal", 0));
	}
	cJSON_Delete(ps);
	tk_call_end(&c);
	cJSON_Delete(b);
}

static void emitted_resources_pass_structural_validation(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_EXAMPLES; i++) {
		cJSON *b = map_example(example_names[i]);
		struct outcome oo = OUTCOME_INIT;
		assert_int_equal(validate_resource(b, &oo), 0);
		const cJSON *e;
		cJSON_ArrayForEach(e, tk_get(b, "entry")) {
			size_t errs = validate_resource(tk_get(e, "resource"), &oo);
			if (errs)
				tk_dump(&oo);
			assert_int_equal(errs, 0);
		}
		assert_int_equal(outcome_errors(&oo), 0);
		outcome_release(&oo);
		cJSON_Delete(b);
	}
}

static void every_example_round_trips_byte_for_byte(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_EXAMPLES; i++) {
		char *doc = minify(example(example_names[i]));
		cJSON *b = map_example(example_names[i]);
		struct tk_call c;
		tk_call_begin(&c);
		char *back = from_fhir(&c, b);
		assert_non_null(back);
		if (c.oo.n || strcmp(back, doc) != 0) {
			fprintf(stderr, "# %s\n# want %s\n# got  %s\n", example_names[i], doc, back);
			tk_dump(&c.oo);
		}
		assert_int_equal(c.oo.n, 0); /* our own Bundle maps back without a warning */
		assert_string_equal(back, doc);
		tk_call_end(&c);
		free(back);
		free(doc);
	}
}

/* ------------------------------------------------------------ refusals */

struct want {
	const char *code, *location;
};

/* Maps doc, expects a refusal with exactly the error issues listed. */
static void refused(const char *doc, const struct want *want, size_t n)
{
	struct tk_call c;
	tk_call_begin(&c);
	assert_null(to_fhir(&c, doc));
	if (tk_count_severity(&c.oo, OUTCOME_ERROR) != n) {
		fprintf(stderr, "# want %zu errors, got:\n", n);
		tk_dump(&c.oo);
	}
	assert_int_equal(tk_count_severity(&c.oo, OUTCOME_ERROR), n);
	for (size_t i = 0; i < n; i++)
		tk_expect_issue(&c.oo, OUTCOME_ERROR, want[i].code, want[i].location, NULL);
	tk_call_end(&c);
}

#define PERSON "\"person\":{\"identifier\":{\"system\":\"urn:p\",\"value\":\"1\"}}"
#define GOAL(v) "{\"identifier\":{\"system\":\"urn:g\",\"value\":\"" v "\"},"

static void refuses_missing_required_fields(void **state)
{
	(void)state;
	const struct want w[] = {
		{"required", "/version"},
		{"required", "/person/identifier/system"},
		{"required", "/plan/identifier"},
		{"required", "/plan/status"},
		{"required", "/goals/0/identifier"},
		{"required", "/goals/0/dimension"},
		{"required", "/goals/0/words"},
		{"required", "/goals/0/status"},
		{"required", "/goals/1/steps/0/status"},
		{"required", "/goals/1/supports/0/kind"},
		{"required", "/goals/1/supports/0/name"},
	};
	refused("{\"person\":{\"identifier\":{\"value\":\"1\"}},\"plan\":{\"title\":\"t\"},\"goals\":[{},"
		GOAL("2") "\"dimension\":\"home\",\"words\":\"w\",\"status\":\"active\","
		"\"steps\":[{\"text\":\"s\"}],\"supports\":[{}]}]}",
		w, sizeof w / sizeof w[0]);
	const struct want w2[] = {{"required", "/person"}, {"required", "/goals"}};
	refused("{\"version\":1}", w2, 2);
}

static void refuses_unknown_dimension_and_bad_statuses(void **state)
{
	(void)state;
	const struct want w[] = {
		{"code-invalid", "/plan/status"},
		{"code-invalid", "/goals/0/dimension"},
		{"code-invalid", "/goals/0/status"},
		{"code-invalid", "/goals/0/progress"},
		{"code-invalid", "/goals/1/dimension"},
		{"code-invalid", "/goals/1/status"},
		{"code-invalid", "/goals/1/steps/0/status"},
		{"code-invalid", "/goals/1/supports/0/kind"},
	};
	refused("{\"version\":1," PERSON ",\"plan\":{\"identifier\":{\"system\":\"urn:x\",\"value\":\"1\"},"
		"\"status\":\"entered-in-error\"},\"goals\":["
		GOAL("1") "\"dimension\":\"wealth\",\"words\":\"w\",\"status\":\"done\",\"progress\":\"great\"},"
		GOAL("2") "\"dimension\":\"Health\",\"words\":\"w\",\"status\":\"entered-in-error\","
		"\"steps\":[{\"text\":\"s\",\"status\":\"draft\"}],\"supports\":[{\"kind\":\"doctor\",\"name\":\"n\"}]}]}",
		w, sizeof w / sizeof w[0]);
}

static void refuses_malformed_dates(void **state)
{
	(void)state;
	const struct want w[] = {
		{"value", "/plan/created"},
		{"value", "/goals/0/target_date"},
		{"value", "/goals/1/target_date"},
		{"value", "/goals/2/target_date"},
		{"structure", "/goals/3/target_date"},
		{"value", "/goals/4/target_date"},
	};
	refused("{\"version\":1," PERSON ",\"plan\":{\"identifier\":{\"system\":\"urn:x\",\"value\":\"1\"},"
		"\"status\":\"active\",\"created\":\"2023-02-29\"},\"goals\":["
		GOAL("1") "\"dimension\":\"home\",\"words\":\"w\",\"status\":\"active\",\"target_date\":\"2024-13-01\"},"
		GOAL("2") "\"dimension\":\"home\",\"words\":\"w\",\"status\":\"active\",\"target_date\":\"06/30/2024\"},"
		GOAL("3") "\"dimension\":\"home\",\"words\":\"w\",\"status\":\"active\",\"target_date\":\"2024-06-30T10:00:00Z\"},"
		GOAL("4") "\"dimension\":\"home\",\"words\":\"w\",\"status\":\"active\",\"target_date\":20240630},"
		GOAL("5") "\"dimension\":\"home\",\"words\":\"w\",\"status\":\"active\",\"target_date\":\"1899-12-31\"}]}",
		w, sizeof w / sizeof w[0]);
}

static void refuses_structure_values_and_duplicates(void **state)
{
	(void)state;
	const struct want w[] = {
		{"not-supported", "/0/version"},
		{"structure", "/0/colour"},
		{"value", "/0/person/identifier/system"},
		{"value", "/0/person/name"},
		{"value", "/0/person/language"},
		{"structure", "/0/person/pronouns"},
		{"structure", "/0/plan/a~1b~0c"},
		{"required", "/0/plan/crisis_plan"},
		{"structure", "/0/plan/wellness_tools"},
		{"structure", "/0/goals/0/addresses/1"},
		{"structure", "/0/goals/0/steps/0"},
		{"value", "/0/goals/0/words"},
		{"required", "/1/goals/0"},
		{"duplicate", "/3/person"},
		{"duplicate", "/1/goals/0/identifier"},
		{"duplicate", "/1/goals/1/identifier"},
		{"structure", "/2"},
	};
	refused("[{\"version\":2,\"colour\":\"blue\",\"person\":{\"identifier\":{\"system\":\"not a uri\",\"value\":\"1\"},"
		"\"name\":\" padded\",\"language\":\"english please\",\"pronouns\":7},"
		"\"plan\":{\"identifier\":{\"system\":\"urn:x\",\"value\":\"1\"},\"status\":\"active\",\"a/b~c\":1,"
		"\"crisis_plan\":{},\"wellness_tools\":[]},"
		"\"goals\":[" GOAL("1") "\"dimension\":\"home\",\"words\":\"\",\"status\":\"active\","
		"\"addresses\":[\"ok\",3],\"steps\":[\"a string\"]}]},"
		"{\"version\":1," PERSON ",\"goals\":[" GOAL("1") "\"dimension\":\"home\",\"words\":\"w\",\"status\":\"active\","
		"\"steps\":[{\"text\":\"s\",\"status\":\"scheduled\"}]}," GOAL("1") "\"dimension\":\"home\",\"words\":\"w\","
		"\"status\":\"active\"}]},"
		"\"not a plan\",{\"version\":1," PERSON ",\"goals\":[]}]",
		w, sizeof w / sizeof w[0]);
}

static void refuses_what_is_not_a_plan(void **state)
{
	(void)state;
	struct tk_call c;
	tk_call_begin(&c);
	assert_null(to_fhir(&c, "{\"version\":1,"));
	assert_true(tk_count_severity(&c.oo, OUTCOME_ERROR) >= 1); /* not JSON */
	tk_call_end(&c);
	const struct want empty[] = {{"required", NULL}};
	refused("[]", empty, 1);
	const struct want text[] = {{"structure", NULL}};
	refused("\"text\"", text, 1);
}

/* ------------------------------------------------- FHIR made elsewhere */

static void official_goal_examples_give_warnings(void **state)
{
	(void)state;
	static const char *const names[] = {"goal-example.json", "goal-example-stop-smoking.json"};
	for (size_t i = 0; i < 2; i++) {
		char *text = r4(names[i]);
		struct tk_call c;
		tk_call_begin(&c);
		char *out = from_fhir(&c, cJSON_Parse(text));
		assert_non_null(out);
		assert_string_equal(out, "[]"); /* no Patient in the input: nothing to export */
		assert_int_equal(tk_count_severity(&c.oo, OUTCOME_ERROR), 0);
		tk_expect_issue(&c.oo, OUTCOME_WARNING, "not-supported", "Bundle.entry[0].resource.subject", "Goal left out");
		free(out);
		tk_call_end(&c);
		free(text);
	}
}

static void official_careplan_examples_give_warnings(void **state)
{
	(void)state;
	static const char *const names[] = {"careplan-example.json",          "careplan-example-GPVisit.json",
					    "careplan-example-f001-heart.json", "careplan-example-f002-lung.json",
					    "careplan-example-f003-pharynx.json", "careplan-example-f202-malignancy.json",
					    "careplan-example-f203-sepsis.json", "careplan-example-obesity-narrative.json"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char *text = r4(names[i]);
		struct tk_call c;
		tk_call_begin(&c);
		char *out = from_fhir(&c, cJSON_Parse(text));
		assert_non_null(out);
		assert_string_equal(out, "[]");
		assert_int_equal(tk_count_severity(&c.oo, OUTCOME_ERROR), 0);
		assert_true(tk_count_severity(&c.oo, OUTCOME_WARNING) >= 1);
		tk_expect_issue(&c.oo, OUTCOME_WARNING, "not-supported", "Bundle.entry[0].resource.subject",
			     "CarePlan left out");
		free(out);
		tk_call_end(&c);
		free(text);
	}
}

/* The official Patient, Goal and CarePlan examples in one Bundle: the
 * subject references now resolve, so a document comes out, and every part
 * that has no place in the format is named in a warning. */
static void official_examples_together(void **state)
{
	(void)state;
	char *pt = r4("patient-example.json"), *g1 = r4("goal-example.json"), *g2 = r4("goal-example-stop-smoking.json"),
	     *cp = r4("careplan-example.json");
	cJSON *b = cJSON_Parse("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[]}");
	cJSON *entries = (cJSON *)tk_get(b, "entry");
	const char *texts[] = {pt, g1, g2, cp};
	for (int i = 0; i < 4; i++) {
		cJSON *e = cJSON_CreateObject();
		cJSON_AddItemToObject(e, "resource", cJSON_Parse(texts[i]));
		cJSON_AddItemToArray(entries, e);
	}
	/* The stop-smoking goal gains a recovery dimension, by the SDOH/PCO
	 * category only: the dimension is taken from it, with a warning. */
	cJSON *smoke = (cJSON *)tk_get(at(entries, 2), "resource");
	cJSON_AddItemToObject(smoke, "category",
			      cJSON_Parse("[{\"coding\":[{\"system\":\"http://hl7.org/fhir/us/pco/CodeSystem/"
					  "pco-goal-domains-temporary\",\"code\":\"improving-health-and-wellness\"}]}]"));
	struct tk_call c;
	tk_call_begin(&c);
	char *out = from_fhir(&c, b);
	assert_non_null(out);
	assert_int_equal(tk_count_severity(&c.oo, OUTCOME_ERROR), 0);
	cJSON *doc = cJSON_Parse(out);
	assert_non_null(doc);
	const cJSON *person = tk_get(doc, "person");
	assert_string_equal(tk_sget(tk_get(person, "identifier"), "system"), "urn:oid:1.2.36.146.595.217.0.1");
	assert_string_equal(tk_sget(tk_get(person, "identifier"), "value"), "12345");
	assert_string_equal(tk_sget(person, "name"), "Peter James Chalmers");
	const cJSON *plan = tk_get(doc, "plan");
	assert_string_equal(tk_sget(tk_get(plan, "identifier"), "system"), "urn:crosswalk:fhir-reference");
	assert_string_equal(tk_sget(tk_get(plan, "identifier"), "value"), "CarePlan/example");
	assert_string_equal(tk_sget(plan, "status"), "active");
	assert_string_equal(tk_sget(plan, "created"), "2016-01-01");
	/* both goals are kept: the one without a recovery dimension as
	 * "unassigned", for the recovery tool to sort */
	const cJSON *goals = tk_get(doc, "goals");
	assert_int_equal(cJSON_GetArraySize(goals), 2);
	const cJSON *g = at(goals, 0);
	assert_string_equal(tk_sget(g, "dimension"), "unassigned");
	assert_string_equal(tk_sget(g, "words"), "Target weight is 160 to 180 lbs.");
	assert_string_equal(tk_sget(g, "start_date"), "2015-04-05");
	assert_null(tk_get(g, "expressed_by")); /* the person's own (expressedBy: the subject) */
	g = at(goals, 1);
	assert_string_equal(tk_sget(g, "dimension"), "health");
	assert_string_equal(tk_sget(g, "words"), "Stop smoking");
	assert_string_equal(tk_sget(g, "status"), "completed");
	assert_string_equal(tk_sget(g, "progress"), "achieved");
	assert_string_equal(tk_sget(g, "start_date"), "2015-04-05");
	/* no expressedBy: not known to be the person's own */
	assert_string_equal(tk_sget(g, "expressed_by"), "unknown");
	assert_string_equal(tk_sget(tk_get(g, "identifier"), "value"), "Goal/stop-smoking");

	const char *P = "Bundle.entry[0].resource.", *G1 = "Bundle.entry[1].resource.", *G2 = "Bundle.entry[2].resource.",
		   *C = "Bundle.entry[3].resource.";
	char w[160];
#define WARN(prefix, rest, text)                                         \
	do {                                                             \
		snprintf(w, sizeof w, "%s%s", prefix, rest);             \
		tk_expect_issue(&c.oo, OUTCOME_WARNING, "not-supported", w, text); \
	} while (0)
	WARN(P, "gender", "left out");
	WARN(P, "birthDate", "left out");
	WARN(P, "name[1]", "only the first name");
	WARN(P, "identifier[0].period", "left out");
	WARN(P, "identifier[0].assigner", "left out");
	WARN(G1, "category[0].coding[0]", "dietary");
	WARN(G1, "priority", "left out");
	WARN(G1, "target[0].measure", "left out");
	WARN(G1, "target[0].detailRange", "left out");
	WARN(G1, "statusReason", "left out");
	WARN(G1, "outcomeReference", "left out");
	WARN(G2, "category[0].coding[0]", "taken from this category");
	WARN(G2, "identifier", "stands in");
	WARN(G2, "identifier[0]", "lacks an absolute system");
	WARN(G2, "outcomeCode", "left out");
	WARN(C, "identifier", "stands in");
	WARN(C, "contained[0]", "left out");
	WARN(C, "category", "left out");
	WARN(C, "description", "left out");
	WARN(C, "author", "written by the person");
	WARN(C, "activity[0].outcomeCodeableConcept", "left out");
	WARN(C, "activity[0].detail.scheduledTiming", "left out");
	WARN(C, "activity[0].detail", "no description");
#undef WARN
	cJSON_Delete(doc);

	/* What came out reads back in. */
	struct tk_call c2;
	tk_call_begin(&c2);
	cJSON *again = to_fhir(&c2, out);
	if (!again)
		tk_dump(&c2.oo);
	assert_non_null(again);
	cJSON_Delete(again);
	tk_call_end(&c2);
	free(out);
	tk_call_end(&c);
	free(pt);
	free(g1);
	free(g2);
	free(cp);
}

/* A Bundle made by Crosswalk, then changed elsewhere: what was added is
 * reported, everything the format holds still comes out. */
static void foreign_additions_are_reported(void **state)
{
	(void)state;
	char *doc = minify(example("recovery-plan-four-dimensions.json"));
	cJSON *b = map_example("recovery-plan-four-dimensions.json");
	cJSON *entries = (cJSON *)tk_get(b, "entry");
	cJSON *goal = (cJSON *)tk_get(at(entries, 1), "resource"), *cp = (cJSON *)tk_get(at(entries, 5), "resource");
	assert_string_equal(tk_sget(cp, "resourceType"), "CarePlan");
	cJSON_AddItemToObject(goal, "priority", cJSON_Parse("{\"text\":\"high\"}"));
	cJSON_AddItemToArray((cJSON *)tk_get(goal, "note"), cJSON_Parse("{\"text\":\"a second note\"}"));
	cJSON_AddItemToArray((cJSON *)tk_get(cp, "activity"),
			     cJSON_Parse("{\"reference\":{\"reference\":\"ServiceRequest/sr\"}}"));
	cJSON_AddItemToArray((cJSON *)tk_get(cp, "supportingInfo"), cJSON_Parse("{\"reference\":\"Observation/o\"}"));
	cJSON_AddItemToArray(entries, cJSON_Parse("{\"resource\":{\"resourceType\":\"Observation\",\"id\":\"o\","
						  "\"status\":\"final\",\"code\":{\"text\":\"x\"}}}"));
	struct tk_call c;
	tk_call_begin(&c);
	char *out = from_fhir(&c, b);
	assert_non_null(out);
	assert_int_equal(tk_count_severity(&c.oo, OUTCOME_ERROR), 0);
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[1].resource.priority", "left out");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[1].resource.note[1]", "only the first note");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[5].resource.activity[14].reference", "left out");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[5].resource.activity[14]", "detail");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[5].resource.supportingInfo[5]", "support left out");
	tk_expect_issue(&c.oo, OUTCOME_WARNING, NULL, "Bundle.entry[6].resource",
			"1 Observation resource is not part of a recovery plan; left out");
	assert_string_equal(out, doc);
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

static const char *const json_ct[] = {"Content-Type: application/json", NULL};
static const char *const fhir_ct[] = {"Content-Type: application/fhir+json", NULL};

static void http_ingest_validate_export(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_EXAMPLES; i++) {
		char *doc = example(example_names[i]);
		struct resp r1, r2, r3;
		assert_int_equal(http_do(&g, "POST", "/ingest/" FORMAT "?preview=true", json_ct, doc, strlen(doc), &r1), 0);
		if (r1.status != 200)
			fprintf(stderr, "# %s\n", r1.body);
		assert_int_equal(r1.status, 200);
		assert_int_equal(http_do(&g, "POST", "/ingest/" FORMAT "?preview=true", json_ct, doc, strlen(doc), &r2), 0);
		assert_string_equal(r1.body, r2.body); /* pushing the same plan twice creates nothing new */
		resp_free(&r2);

		/* Every resource through the gateway's own $validate. */
		cJSON *b = cJSON_Parse(r1.body);
		const cJSON *e;
		cJSON_ArrayForEach(e, tk_get(b, "entry")) {
			char *res = cJSON_PrintUnformatted(tk_get(e, "resource"));
			assert_int_equal(http_do(&g, "POST", "/fhir/$validate", fhir_ct, res, strlen(res), &r3), 0);
			assert_int_equal(r3.status, 200);
			cJSON *oo = cJSON_Parse(r3.body);
			const cJSON *is;
			cJSON_ArrayForEach(is, tk_get(oo, "issue")) {
				if (strcmp(tk_sget(is, "severity"), "error") == 0 || strcmp(tk_sget(is, "severity"), "fatal") == 0) {
					fprintf(stderr, "# %s\n# %s\n", res, r3.body);
					fail();
				}
			}
			cJSON_Delete(oo);
			resp_free(&r3);
			free(res);
		}
		cJSON_Delete(b);

		assert_int_equal(http_do(&g, "POST", "/export/" FORMAT, fhir_ct, r1.body, r1.len, &r3), 0);
		assert_int_equal(r3.status, 200);
		assert_string_equal(r3.body, minify(doc));
		resp_free(&r3);
		resp_free(&r1);

		/* Stored for real (201), then read back from the store by patient. */
		assert_int_equal(http_do(&g, "POST", "/ingest/" FORMAT, json_ct, doc, strlen(doc), &r1), 0);
		assert_int_equal(r1.status, 201);
		cJSON *tr = cJSON_Parse(r1.body);
		assert_string_equal(tk_sget(tr, "type"), "transaction-response");
		char pid[80] = "";
		cJSON_ArrayForEach(e, tk_get(tr, "entry")) {
			const char *loc = tk_sget(tk_get(e, "response"), "location");
			const char *p = loc ? strstr(loc, "/Patient/") : NULL;
			if (p && !pid[0])
				snprintf(pid, sizeof pid, "%.*s", (int)strcspn(p + 9, "/"), p + 9);
		}
		cJSON_Delete(tr);
		resp_free(&r1);
		assert_true(pid[0] != '\0');
		char path[200];
		snprintf(path, sizeof path, "/export/" FORMAT "?patient=%s", pid);
		assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r3), 0);
		assert_int_equal(r3.status, 200);
		cJSON *want = cJSON_Parse(doc), *got = cJSON_Parse(r3.body);
		/* the document is a list of people or one person: compare that person */
		const cJSON *w1 = cJSON_IsArray(want) ? at(want, 0) : want, *g1 = cJSON_IsArray(got) ? at(got, 0) : got;
		if (!cJSON_Compare(w1, g1, true))
			fprintf(stderr, "# got %s\n", r3.body);
		assert_true(cJSON_Compare(w1, g1, true));
		cJSON_Delete(want);
		cJSON_Delete(got);
		resp_free(&r3);
		free(doc);
	}
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/export/" FORMAT "?patient=nobody", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	resp_free(&r);
}

static const char *extension_code(const cJSON *r, const char *url, const char *sub)
{
	const cJSON *x, *y;
	cJSON_ArrayForEach(x, tk_get(r, "extension"))
	{
		if (strcmp(tk_sget(x, "url"), url) != 0)
			continue;
		cJSON_ArrayForEach(y, tk_get(x, "extension")) if (!strcmp(tk_sget(y, "url"), sub)) return tk_sget(
			y, "valueCode");
	}
	return NULL;
}

/* A provider's goal the person disagreed with stays the provider's through
 * the store and back; an EHR Goal without a recovery dimension, expressed
 * by a Practitioner, comes out as "unassigned" and never as the person's
 * own; `crosswalk map --to` prints what it left out on success. */
static void http_goals_stay_the_persons(void **state)
{
	(void)state;
	const char *doc =
		"{\"version\":1,\"person\":{\"identifier\":{\"system\":\"urn:p\",\"value\":\"goals-1\"}},"
		"\"goals\":[" GOAL(
			"mine") "\"dimension\":\"home\",\"words\":\"Find a flat.\",\"status\":"
				"\"active\"}," GOAL(
					"theirs") "\"dimension\":\"health\",\"words\":\"Take the medication daily.\","
						  "\"status\":\"proposed\",\"start_date\":\"2024-02-01\",\"expressed_"
						  "by\":\"provider\","
						  "\"acceptance\":\"disagree\",\"attainment_levels\":[{\"level\":0,"
						  "\"text\":\"Most days\"}]}]}";
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/ingest/" FORMAT, json_ct, doc, strlen(doc), &r), 0);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/fhir/Goal?identifier=urn:g%7Ctheirs", NULL, NULL, 0, &r), 0);
	cJSON *found = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *goal = tk_get(at(tk_get(found, "entry"), 0), "resource");
	assert_non_null(goal);
	assert_string_equal(tk_sget(tk_get(goal, "expressedBy"), "type"), "Practitioner");
	assert_null(tk_get(tk_get(goal, "expressedBy"), "reference"));
	assert_string_equal(tk_sget(goal, "startDate"), "2024-02-01");
	assert_string_equal(extension_code(goal, "http://hl7.org/fhir/StructureDefinition/goal-acceptance", "status"),
			    "disagree");
	const char *pid = strchr(tk_sget(tk_get(goal, "subject"), "reference"), '/') + 1;
	char body[1024], path[200];
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Goal\",\"id\":\"ehr-goal\",\"identifier\":[{\"system\":\"urn:ehr\",\"value\":"
		 "\"7\"}],"
		 "\"lifecycleStatus\":\"active\",\"description\":{\"text\":\"Lose 5 kg\"},\"subject\":{\"reference\":"
		 "\"Patient/%s\"},\"expressedBy\":{\"reference\":\"Practitioner/dr-1\"}}",
		 pid);
	assert_int_equal(http_do(&g, "PUT", "/fhir/Goal/ehr-goal", fhir_ct, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	snprintf(path, sizeof path, "/export/" FORMAT "?patient=%s", pid);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *out = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *gl;
	int seen = 0;
	cJSON_ArrayForEach(gl, tk_get(out, "goals"))
	{
		const char *v = tk_sget(tk_get(gl, "identifier"), "value");
		if (!strcmp(v, "theirs")) {
			seen++;
			assert_string_equal(tk_sget(gl, "expressed_by"), "provider");
			assert_string_equal(tk_sget(gl, "acceptance"), "disagree");
		} else if (!strcmp(v, "7")) {
			seen++;
			assert_string_equal(tk_sget(gl, "dimension"), "unassigned");
			assert_string_equal(tk_sget(gl, "expressed_by"), "provider");
		} else {
			assert_string_equal(v, "mine");
			seen++;
			assert_null(tk_get(gl, "expressed_by")); /* the person's own */
		}
	}
	assert_int_equal(seen, 3);
	cJSON_Delete(out);

	/* the same Bundle through `crosswalk map --to`: mapped (exit 0), and
	 * what it left out printed */
	snprintf(path, sizeof path, "/fhir/Patient/%s", pid);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	char *bundle = malloc(4096 + r.len + strlen(body));
	assert_non_null(bundle);
	sprintf(bundle,
		"{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":%s},{\"resource\":%s}]}",
		r.body, body);
	resp_free(&r);
	char file[] = "/tmp/cw-rp-map-XXXXXX";
	int fd = mkstemp(file);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bundle, strlen(bundle)), (ssize_t)strlen(bundle));
	close(fd);
	free(bundle);
	static char text[65536];
	const char *args[] = {"map", "--to", FORMAT, file, NULL};
	assert_int_equal(gw_run_command(NULL, args, 15000, text, sizeof text), 0);
	unlink(file);
	assert_non_null(strstr(text, "\"unassigned\""));
	assert_non_null(strstr(text, "OperationOutcome"));
	assert_non_null(strstr(text, "the reference is left out"));
	cJSON_Delete(found);
}

static void http_refusal_is_an_outcome(void **state)
{
	(void)state;
	const char *doc = "{\"version\":1," PERSON ",\"goals\":[" GOAL("1") "\"dimension\":\"wealth\",\"words\":\"w\","
			  "\"status\":\"active\",\"target_date\":\"2024-02-30\"}]}";
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/ingest/" FORMAT, json_ct, doc, strlen(doc), &r), 0);
	assert_int_equal(r.status, 422);
	cJSON *oo = cJSON_Parse(r.body);
	assert_string_equal(tk_sget(oo, "resourceType"), "OperationOutcome");
	const cJSON *issues = tk_get(oo, "issue");
	assert_int_equal(cJSON_GetArraySize(issues), 2);
	assert_string_equal(at(tk_get(at(issues, 0), "expression"), 0)->valuestring, "/goals/0/dimension");
	assert_string_equal(at(tk_get(at(issues, 1), "expression"), 0)->valuestring, "/goals/0/target_date");
	cJSON_Delete(oo);
	resp_free(&r);
}

/* Ingests doc in format (201), answers the Patient id of the first Patient
 * the transaction wrote. */
static void ingest_for_patient(const char *format, const char *doc, char *pid, size_t cap)
{
	struct resp r;
	char path[80];
	snprintf(path, sizeof path, "/ingest/%s", format);
	assert_int_equal(http_do(&g, "POST", path, json_ct, doc, strlen(doc), &r), 0);
	if (r.status != 201)
		fprintf(stderr, "# %s\n", r.body);
	assert_int_equal(r.status, 201);
	cJSON *tr = cJSON_Parse(r.body);
	const cJSON *e;
	pid[0] = '\0';
	cJSON_ArrayForEach(e, tk_get(tr, "entry"))
	{
		const char *loc = tk_sget(tk_get(e, "response"), "location");
		const char *p = loc ? strstr(loc, "Patient/") : NULL;
		if (p && !pid[0])
			snprintf(pid, cap, "%.*s", (int)strcspn(p + 8, "/"), p + 8);
	}
	cJSON_Delete(tr);
	resp_free(&r);
	assert_true(pid[0] != '\0');
}

/* A crisis plan that works in a crisis: contacts with role and phone (988 a
 * HealthcareService), the WRAP sections, the advance directive — stored and
 * readable over REST — and a PHQ-9 item 9 answer above 0, recorded through
 * the outcomes format, shown as a flag by the plan's export; an answer of 0
 * raises none. */
static void http_crisis_plan_works_in_a_crisis(void **state)
{
	(void)state;
	const char *plan =
		"{\"version\":1,\"person\":{\"identifier\":{\"system\":\"urn:crisis\",\"value\":\"c-1\"}},"
		"\"plan\":{\"identifier\":{\"system\":\"urn:plans\",\"value\":\"c-1-plan\"},\"status\":\"active\","
		"\"daily_maintenance\":[\"Breakfast\"],\"triggers\":[\"Loud parties\"],"
		"\"crisis_plan\":{\"contacts\":[{\"role\":\"988 Suicide and Crisis Lifeline\",\"kind\":\"service\","
		"\"phone\":\"988\"},{\"role\":\"My aunt\",\"kind\":\"person\",\"phone\":\"+1-555-0111\"}],"
		"\"post_crisis\":[\"Rest for two days\"],\"advance_directive\":{\"title\":\"My directive\","
		"\"url\":\"https://records.example.org/ad/c-1\"}}},\"goals\":[]}";
	char pid[80], pid2[80], path[200];
	ingest_for_patient(FORMAT, plan, pid, sizeof pid);

	/* The stored CarePlan carries the contacts' telecom and the directive. */
	struct resp r;
	snprintf(path, sizeof path, "/fhir/CarePlan?subject=Patient/%s", pid);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *b = cJSON_Parse(r.body);
	const cJSON *cp = tk_get(at(tk_get(b, "entry"), 0), "resource"), *c;
	assert_non_null(cp);
	int services = 0, people = 0, directives = 0;
	cJSON_ArrayForEach(c, tk_get(cp, "contained"))
	{
		const char *type = tk_sget(c, "resourceType");
		const char *phone = tk_sget(at(tk_get(c, "telecom"), 0), "value");
		if (!strcmp(type, "HealthcareService")) {
			services++;
			assert_string_equal(phone, "988");
			assert_string_equal(tk_sget(c, "name"), "988 Suicide and Crisis Lifeline");
		} else if (!strcmp(type, "RelatedPerson")) {
			people++;
			assert_string_equal(phone, "+1-555-0111");
		} else if (!strcmp(type, "DocumentReference")) {
			directives++;
			assert_string_equal(tk_sget(at(tk_get(tk_get(c, "type"), "coding"), 0), "code"), "42348-3");
		}
	}
	assert_int_equal(services, 1);
	assert_int_equal(people, 1);
	assert_int_equal(directives, 1);
	cJSON_Delete(b);
	resp_free(&r);

	/* PHQ-9 administrations for the same person: item 9 answered 2, then 0. */
	const char *outcomes =
		"{\"format\":\"outcomes\",\"version\":1,\"people\":[{\"identifier\":{\"system\":\"urn:crisis\","
		"\"value\":\"c-1\"},\"administrations\":["
		"{\"identifier\":{\"system\":\"urn:adm\",\"value\":\"c-1-a\"},\"instrument\":\"phq-9\","
		"\"date\":\"2024-05-07\",\"items\":[1,1,1,1,1,1,1,1,2]},"
		"{\"identifier\":{\"system\":\"urn:adm\",\"value\":\"c-1-b\"},\"instrument\":\"phq-9\","
		"\"date\":\"2024-06-04\",\"items\":[1,1,1,0,0,0,0,0,0]}]}]}";
	ingest_for_patient("outcomes", outcomes, pid2, sizeof pid2);
	assert_string_equal(pid, pid2); /* one person, one Patient */

	snprintf(path, sizeof path, "/export/" FORMAT "?patient=%s", pid);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *doc = cJSON_Parse(r.body);
	const cJSON *flags = tk_get(doc, "flags");
	if (cJSON_GetArraySize(flags) != 1)
		fprintf(stderr, "# %s\n", r.body);
	assert_int_equal(cJSON_GetArraySize(flags), 1);
	assert_string_equal(tk_sget(at(flags, 0), "source"), "phq-9-item-9");
	assert_string_equal(tk_sget(at(flags, 0), "date"), "2024-05-07");
	assert_int_equal(tk_get(at(flags, 0), "answer")->valueint, 2);
	const cJSON *crisis = tk_get(tk_get(doc, "plan"), "crisis_plan");
	assert_string_equal(tk_sget(at(tk_get(crisis, "contacts"), 0), "phone"), "988");
	assert_string_equal(tk_sget(at(tk_get(crisis, "contacts"), 0), "kind"), "service");
	assert_string_equal(tk_sget(tk_get(crisis, "advance_directive"), "url"), "https://records.example.org/ad/c-1");
	assert_string_equal(at(tk_get(crisis, "post_crisis"), 0)->valuestring, "Rest for two days");
	assert_string_equal(at(tk_get(tk_get(doc, "plan"), "triggers"), 0)->valuestring, "Loud parties");
	assert_string_equal(at(tk_get(tk_get(doc, "plan"), "daily_maintenance"), 0)->valuestring, "Breakfast");
	cJSON_Delete(doc);
	resp_free(&r);
}

static void canonical_base_is_configurable(void **state)
{
	(void)state;
	struct gw own;
	assert_int_equal(gw_start(&own, "\"plugins\":{\"recovery_plan\":{\"canonical_base\":\"https://fhir.example.net/r4/\"}}"), 0);
	char *doc = example("recovery-plan-four-dimensions.json");
	struct resp r;
	assert_int_equal(http_do(&own, "POST", "/ingest/" FORMAT "?preview=true", json_ct, doc, strlen(doc), &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "https://fhir.example.net/r4/StructureDefinition/recovery-goal\""));
	assert_non_null(strstr(r.body, "https://fhir.example.net/r4/CodeSystem/recovery-dimension\""));
	assert_null(strstr(r.body, BASE "/StructureDefinition"));
	assert_null(strstr(r.body, BASE "/CodeSystem"));
	/* and back, under the same base */
	struct resp r2;
	assert_int_equal(http_do(&own, "POST", "/export/" FORMAT, fhir_ct, r.body, r.len, &r2), 0);
	assert_int_equal(r2.status, 200);
	assert_string_equal(r2.body, minify(doc));
	resp_free(&r2);
	resp_free(&r);
	free(doc);
	assert_int_equal(gw_stop(&own, 15000), 0);

	static char out[65536];
	int rc = gw_run_expect_exit("\"plugins\":{\"recovery_plan\":{\"canonical_base\":\"not a uri\"}}", NULL, 15000,
				    out, sizeof out);
	assert_int_equal(rc, 2);
	assert_non_null(strstr(out, "canonical_base"));
	rc = gw_run_expect_exit("\"plugins\":{\"recovery_plan\":{\"colour\":\"blue\"}}", NULL, 15000, out, sizeof out);
	assert_int_equal(rc, 2);
	assert_non_null(strstr(out, "colour"));
}

int main(void)
{
	const struct CMUnitTest mapping[] = {
		cmocka_unit_test(maps_the_four_dimensions_example),
		cmocka_unit_test(ingest_is_a_transaction_of_puts_with_stable_ids),
		cmocka_unit_test(emitted_resources_pass_structural_validation),
		cmocka_unit_test(every_example_round_trips_byte_for_byte),
		cmocka_unit_test(refuses_missing_required_fields),
		cmocka_unit_test(refuses_unknown_dimension_and_bad_statuses),
		cmocka_unit_test(refuses_malformed_dates),
		cmocka_unit_test(refuses_structure_values_and_duplicates),
		cmocka_unit_test(refuses_what_is_not_a_plan),
		cmocka_unit_test(official_goal_examples_give_warnings),
		cmocka_unit_test(official_careplan_examples_give_warnings),
		cmocka_unit_test(official_examples_together),
		cmocka_unit_test(foreign_additions_are_reported),
	};
	const struct CMUnitTest served[] = {
		cmocka_unit_test(http_ingest_validate_export),
		cmocka_unit_test(http_refusal_is_an_outcome),
		cmocka_unit_test(http_goals_stay_the_persons),
		cmocka_unit_test(http_crisis_plan_works_in_a_crisis),
	};
	const struct CMUnitTest standalone[] = {
		cmocka_unit_test(canonical_base_is_configurable),
	};
	int rc = cmocka_run_group_tests_name("recovery-plan mapping", mapping, host_up, host_down);
	rc += cmocka_run_group_tests_name("recovery-plan served", served, gw_up, gw_down);
	rc += cmocka_run_group_tests_name("recovery-plan", standalone, NULL, NULL);
	return rc;
}
