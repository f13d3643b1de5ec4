/* Unit tests: conformance resources, snapshots and validation against a
 * profile (core/fhir/profile.h), with the project's profiles/ and official
 * R4 core profiles (the unpacked package tests/fixtures/packages/r4-core-profiles, sources in
 * tests/fixtures/packages/SOURCES.md). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fjson.h"
#include "fhir/profile.h"
#include "fhir/terminology.h"
#include "fhir/validate.h"
#include "testenv.h"
#include "unit/profile_check.h"

#define VS_URL "http://hl7.org/fhir/StructureDefinition/vitalsigns"
#define BW_URL "http://hl7.org/fhir/StructureDefinition/bodyweight"
#define BIRTHPLACE "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
#define STRENGTH "https://crosswalk.example.org/fhir/StructureDefinition/recovery-strength"
#define TEST_SD "https://crosswalk.example.org/fhir/StructureDefinition/test-"

static struct terminology *terms;
static struct profile_set *ps;

/* The checks of profile_check.h against this file's profile set. */
#define json(text) pc_json(text)
#define dump(oo) pc_dump(oo)
#define expect_clean(text, url) pc_expect_clean(ps, text, url)
#define expect_issue(text, url, msgid, expr, sev) pc_expect_issue(ps, text, url, msgid, expr, sev)

/* Profiles written for the rules the shipped ones do not exercise: each a
 * differential, so its snapshot is generated. */
static const char *const test_profiles[] = {
	/* slicing: closed and ordered components by code pattern; identifiers
	 * sliced by the existence of system, openAtEnd; a fixed status; two
	 * constraints (an error and a warning) */
	"{\"resourceType\":\"StructureDefinition\",\"url\":\"" TEST_SD "slicing\",\"name\":\"S\",\"status\":\"draft\","
	"\"kind\":\"resource\",\"abstract\":false,\"type\":\"Observation\",\"derivation\":\"constraint\","
	"\"baseDefinition\":\"http://hl7.org/fhir/StructureDefinition/Observation\",\"differential\":{\"element\":["
	"{\"id\":\"Observation\",\"path\":\"Observation\",\"constraint\":["
	"{\"key\":\"tst-1\",\"severity\":\"error\",\"human\":\"a note is required\",\"expression\":\"note.exists()\"},"
	"{\"key\":\"tst-2\",\"severity\":\"warning\",\"human\":\"an issued time is "
	"wanted\",\"expression\":\"issued.exists()\"}]},"
	"{\"id\":\"Observation.identifier\",\"path\":\"Observation.identifier\",\"slicing\":{\"discriminator\":[{"
	"\"type\":"
	"\"exists\",\"path\":\"system\"}],\"rules\":\"openAtEnd\"}},"
	"{\"id\":\"Observation.identifier:sys\",\"path\":\"Observation.identifier\",\"sliceName\":\"sys\",\"min\":1},"
	"{\"id\":\"Observation.identifier:sys.system\",\"path\":\"Observation.identifier.system\",\"min\":1},"
	"{\"id\":\"Observation.status\",\"path\":\"Observation.status\",\"fixedCode\":\"final\"},"
	"{\"id\":\"Observation.component\",\"path\":\"Observation.component\",\"slicing\":{\"discriminator\":[{"
	"\"type\":"
	"\"pattern\",\"path\":\"code\"}],\"rules\":\"closed\",\"ordered\":true}},"
	"{\"id\":\"Observation.component:a\",\"path\":\"Observation.component\",\"sliceName\":\"a\",\"min\":1,\"max\":"
	"\"1\"},"
	"{\"id\":\"Observation.component:a.code\",\"path\":\"Observation.component.code\",\"patternCodeableConcept\":"
	"{\"coding\":[{\"system\":\"urn:t\",\"code\":\"a\"}]}},"
	"{\"id\":\"Observation.component:b\",\"path\":\"Observation.component\",\"sliceName\":\"b\",\"max\":\"2\"},"
	"{\"id\":\"Observation.component:b.code\",\"path\":\"Observation.component.code\",\"patternCodeableConcept\":"
	"{\"coding\":[{\"system\":\"urn:t\",\"code\":\"b\"}]}}]}}",
	/* type and profile discriminators */
	"{\"resourceType\":\"StructureDefinition\",\"url\":\"" TEST_SD "params\",\"name\":\"P\",\"status\":\"draft\","
	"\"kind\":\"resource\",\"abstract\":false,\"type\":\"Parameters\",\"derivation\":\"constraint\","
	"\"baseDefinition\":\"http://hl7.org/fhir/StructureDefinition/Parameters\",\"differential\":{\"element\":["
	"{\"id\":\"Parameters.parameter\",\"path\":\"Parameters.parameter\",\"slicing\":{\"discriminator\":[{\"type\":"
	"\"type\",\"path\":\"value\"}],\"rules\":\"closed\"}},"
	"{\"id\":\"Parameters.parameter:num\",\"path\":\"Parameters.parameter\",\"sliceName\":\"num\",\"min\":1},"
	"{\"id\":\"Parameters.parameter:num.value[x]\",\"path\":\"Parameters.parameter.value[x]\",\"type\":[{\"code\":"
	"\"integer\"}]},"
	"{\"id\":\"Parameters.parameter:txt\",\"path\":\"Parameters.parameter\",\"sliceName\":\"txt\"},"
	"{\"id\":\"Parameters.parameter:txt.value[x]\",\"path\":\"Parameters.parameter.value[x]\",\"type\":[{\"code\":"
	"\"string\"}]}]}}",
	"{\"resourceType\":\"StructureDefinition\",\"url\":\"" TEST_SD
	"byprofile\",\"name\":\"B\",\"status\":\"draft\","
	"\"kind\":\"resource\",\"abstract\":false,\"type\":\"Patient\",\"derivation\":\"constraint\","
	"\"baseDefinition\":\"http://hl7.org/fhir/StructureDefinition/Patient\",\"differential\":{\"element\":["
	"{\"id\":\"Patient.extension\",\"path\":\"Patient.extension\",\"slicing\":{\"discriminator\":[{\"type\":"
	"\"profile\",\"path\":\"$this\"}],\"rules\":\"open\"}},"
	"{\"id\":\"Patient.extension:bp\",\"path\":\"Patient.extension\",\"sliceName\":\"bp\",\"min\":1,\"type\":[{"
	"\"code\":"
	"\"Extension\",\"profile\":[\"" BIRTHPLACE "\"]}]}]}}",
	/* a profile on a project profile: its snapshot holds its base's */
	"{\"resourceType\":\"StructureDefinition\",\"url\":\"" TEST_SD
	"strength2\",\"name\":\"S2\",\"status\":\"draft\","
	"\"kind\":\"resource\",\"abstract\":false,\"type\":\"Observation\",\"derivation\":\"constraint\","
	"\"baseDefinition\":\"" STRENGTH "\",\"differential\":{\"element\":["
	"{\"id\":\"Observation.note\",\"path\":\"Observation.note\",\"min\":1}]}}",
	/* a modifier extension */
	"{\"resourceType\":\"StructureDefinition\",\"url\":\"" TEST_SD "modext\",\"name\":\"M\",\"status\":\"draft\","
	"\"kind\":\"complex-type\",\"abstract\":false,\"type\":\"Extension\",\"derivation\":\"constraint\","
	"\"context\":[{\"type\":\"element\",\"expression\":\"Element\"}],"
	"\"baseDefinition\":\"http://hl7.org/fhir/StructureDefinition/Extension\",\"differential\":{\"element\":["
	"{\"id\":\"Extension\",\"path\":\"Extension\",\"isModifier\":true},"
	"{\"id\":\"Extension.url\",\"path\":\"Extension.url\",\"fixedUri\":\"" TEST_SD "modext\"},"
	"{\"id\":\"Extension.value[x]\",\"path\":\"Extension.value[x]\",\"min\":1,\"type\":[{\"code\":\"boolean\"}]}]}"
	"}",
	NULL};

static int setup(void **state)
{
	(void)state;
	char err[1024] = "";
	terms = terminology_new();
	assert_non_null(terms);
	assert_true(terminology_load_dir(terms, "profiles", err, sizeof err) >= 0);
	terminology_seal(terms);
	ps = profile_set_new(terms);
	assert_non_null(ps);
	int n = profile_load_dir(ps, "profiles", err, sizeof err);
	if (n < 0)
		fail_msg("%s", err);
	assert_true(n >= 40);
	n = profile_load_packages(ps, "tests/fixtures/packages", err, sizeof err);
	if (n != 6)
		fail_msg("fixtures: %d %s", n, err);
	for (size_t i = 0; test_profiles[i]; i++)
		assert_int_equal(profile_add(ps, json(test_profiles[i]), "test", err, sizeof err), 1);
	if (profile_seal(ps, err, sizeof err) != 0)
		fail_msg("seal: %s", err);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	profile_set_free(ps);
	terminology_free(terms);
	return 0;
}

/* Validates text against url; returns the errors, the issues in *oo. */
static size_t check(const char *text, const char *url, struct outcome *oo)
{
	cJSON *r = json(text);
	size_t n = profile_validate(ps, r, url, oo, NULL);
	cJSON_Delete(r);
	return n;
}

/* text breaks a core required binding at expr: structural validation
 * reports it (binding-required), and validation against url (a profile
 * whose snapshot repeats the core binding) does not report it again. */
static void expect_core_binding_once(const char *text, const char *url, const char *expr)
{
	cJSON *r = json(text);
	struct outcome oo = OUTCOME_INIT;
	assert_true(validate_resource(r, &oo) > 0);
	profile_validate(ps, r, url, &oo, NULL);
	cJSON_Delete(r);
	size_t structural = 0, repeated = 0;
	for (size_t i = 0; i < oo.n; i++) {
		const struct outcome_issue *x = &oo.issues[i];
		if (!x->expression || strcmp(x->expression, expr) != 0 || !x->message_id)
			continue;
		structural += !strcmp(x->message_id, "binding-required") && x->severity == OUTCOME_ERROR;
		repeated += !strcmp(x->message_id, "profile-binding-required");
	}
	if (structural != 1 || repeated != 0)
		dump(&oo);
	assert_int_equal(structural, 1);
	assert_int_equal(repeated, 0);
	outcome_release(&oo);
}

#define BW_HEAD                                                                                          \
	"{\"resourceType\":\"Observation\",\"status\":\"final\",\"category\":[{\"coding\":[{\"system\":" \
	"\"http://terminology.hl7.org/CodeSystem/observation-category\",\"code\":\"vital-signs\"}]}],"
#define BW_CODE "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"29463-7\"}]},"
#define BW_SUBJ "\"subject\":{\"reference\":\"Patient/p1\"},\"effectiveDateTime\":\"2026-01-01\","
#define BW_VAL \
	"\"valueQuantity\":{\"value\":70,\"unit\":\"kg\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"kg\"}}"

/* Every profile shipped in profiles/ and every fixture has a snapshot. */
static void snapshots(void **state)
{
	(void)state;
	const char *url, *type;
	size_t n = 0;
	for (size_t i = 0; profile_at(ps, i, &url, &type); i++) {
		cJSON *s = profile_snapshot_json(ps, url);
		assert_non_null(s);
		cJSON *el = cJSON_GetObjectItem(s, "element");
		assert_true(cJSON_GetArraySize(el) >= 1);
		assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(el, 0), "path")->valuestring, type);
		cJSON_Delete(s);
		n++;
	}
	assert_true(n >= 15);
	/* generated from a differential: the slice with its cardinality, an
	 * element's maximum from the model */
	cJSON *s = profile_snapshot_json(ps, STRENGTH);
	assert_non_null(s);
	bool slice = false, subject = false;
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(s, "element"))
	{
		const char *id = cJSON_GetObjectItem(e, "id")->valuestring;
		if (!strcmp(id, "Observation.category:socialHistory"))
			slice = cJSON_GetObjectItem(e, "min")->valueint == 1 &&
				!strcmp(cJSON_GetObjectItem(e, "max")->valuestring, "1");
		if (!strcmp(id, "Observation.subject"))
			subject = cJSON_GetObjectItem(e, "min")->valueint == 1 &&
				  !strcmp(cJSON_GetObjectItem(e, "max")->valuestring, "1");
	}
	cJSON_Delete(s);
	assert_true(slice);
	assert_true(subject);
	/* a profile on a project profile holds its base's elements */
	s = profile_snapshot_json(ps, TEST_SD "strength2");
	assert_non_null(s);
	bool base_slice = false;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(s, "element")) base_slice |=
		!strcmp(cJSON_GetObjectItem(e, "id")->valuestring, "Observation.category:strengthCategory");
	cJSON_Delete(s);
	assert_true(base_slice);
	assert_null(profile_snapshot_json(ps, "urn:nowhere"));
}

/* The official bodyweight profile: a conforming resource passes; each rule
 * broken once is reported with its id and path. */
static void bodyweight(void **state)
{
	(void)state;
	expect_clean(BW_HEAD BW_CODE BW_SUBJ BW_VAL, BW_URL);
	expect_clean(BW_HEAD BW_CODE BW_SUBJ BW_VAL, VS_URL);
	/* the category slice VSCat (value discriminators on coding.code/system) */
	expect_issue("{\"resourceType\":\"Observation\",\"status\":\"final\",\"category\":[{\"text\":\"x\"}]," BW_CODE
			     BW_SUBJ BW_VAL,
		     BW_URL, "profile-cardinality-min", "Observation.category", OUTCOME_ERROR);
	/* the code slice BodyWeightCode */
	expect_issue(BW_HEAD
		     "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\"}]}," BW_SUBJ BW_VAL,
		     BW_URL, "profile-cardinality-min", "Observation.code.coding", OUTCOME_ERROR);
	/* subject is required by the profile, not by R4 */
	expect_issue(BW_HEAD BW_CODE "\"effectiveDateTime\":\"2026-01-01\"," BW_VAL, BW_URL, "profile-cardinality-min",
		     "Observation.subject", OUTCOME_ERROR);
	/* target profile: a Patient, not a Group */
	expect_issue(BW_HEAD BW_CODE
		     "\"subject\":{\"reference\":\"Group/g1\"},\"effectiveDateTime\":\"2026-01-01\"," BW_VAL,
		     BW_URL, "profile-target", "Observation.subject", OUTCOME_ERROR);
	/* type: a weight is a Quantity */
	expect_issue(BW_HEAD BW_CODE BW_SUBJ "\"valueString\":\"heavy\"}", BW_URL, "profile-type",
		     "Observation.valueString", OUTCOME_ERROR);
	/* required binding of the unit */
	expect_issue(BW_HEAD BW_CODE BW_SUBJ "\"valueQuantity\":{\"value\":11,\"unit\":\"st\",\"system\":"
					     "\"http://unitsofmeasure.org\",\"code\":\"[stone_av]\"}}",
		     BW_URL, "profile-binding-required", "Observation.valueQuantity.code", OUTCOME_ERROR);
	/* the profile's own FHIRPath constraint vs-2 */
	expect_issue(BW_HEAD BW_CODE BW_SUBJ "\"note\":[{\"text\":\"n\"}]}", VS_URL, "profile-constraint",
		     "Observation", OUTCOME_ERROR);
	/* required binding on status: the core binding the profile repeats is
	 * reported once, by structural validation (the built-in ValueSet) */
	expect_core_binding_once(
		"{\"resourceType\":\"Observation\",\"status\":\"guessed\",\"category\":[{\"coding\":[{\"system\":"
		"\"http://terminology.hl7.org/CodeSystem/observation-category\",\"code\":\"vital-signs\"}]}]," BW_CODE
			BW_SUBJ BW_VAL,
		BW_URL, "Observation.status");
}

/* A profile binding an element to an R4 core ValueSet that no package
 * loads: the built-in one is used, and the code is checked (here the
 * profile makes the core extensible binding of interpretation required). */
static void core_valuesets(void **state)
{
	(void)state;
	char err[512] = "";
	struct profile_set *own = profile_set_new(NULL);
	assert_non_null(own);
	assert_int_equal(
		profile_add(
			own,
			json("{\"resourceType\":\"StructureDefinition\",\"url\":\"" TEST_SD
			     "corevs\",\"name\":\"C\",\"status\":\"draft\",\"kind\":\"resource\",\"abstract\":false,"
			     "\"type\":\"Observation\",\"derivation\":\"constraint\",\"baseDefinition\":"
			     "\"http://hl7.org/fhir/StructureDefinition/Observation\",\"differential\":{\"element\":["
			     "{\"id\":\"Observation.interpretation\",\"path\":\"Observation.interpretation\","
			     "\"binding\":{"
			     "\"strength\":\"required\",\"valueSet\":"
			     "\"http://hl7.org/fhir/ValueSet/observation-interpretation|4.0.1\"}}]}}"),
			"test", err, sizeof err),
		1);
	assert_int_equal(profile_seal(own, err, sizeof err), 0);
	const char *head = "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
			   "\"interpretation\":[{\"coding\":[{\"system\":"
			   "\"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation\",\"code\":\"";
	char buf[512];
	struct outcome oo = OUTCOME_INIT;
	snprintf(buf, sizeof buf, "%sH\"}]}]}", head);
	cJSON *r = json(buf);
	assert_int_equal(profile_validate(own, r, TEST_SD "corevs", &oo, NULL), 0);
	cJSON_Delete(r);
	for (size_t i = 0; i < oo.n; i++) /* decided: not reported as unchecked */
		assert_true(oo.issues[i].severity != OUTCOME_INFORMATION);
	outcome_release(&oo);
	snprintf(buf, sizeof buf, "%sgossip\"}]}]}", head);
	r = json(buf);
	assert_int_equal(profile_validate(own, r, TEST_SD "corevs", &oo, NULL), 1);
	cJSON_Delete(r);
	assert_string_equal(oo.issues[0].message_id, "profile-binding-required");
	assert_string_equal(oo.issues[0].expression, "Observation.interpretation[0]");
	outcome_release(&oo);
	profile_set_free(own);
}

#define ST_HEAD                                                                                          \
	"{\"resourceType\":\"Observation\",\"status\":\"final\",\"category\":[{\"coding\":[{\"system\":" \
	"\"http://terminology.hl7.org/CodeSystem/observation-category\",\"code\":\"social-history\"}]}"
#define ST_CODE                                                                                                     \
	"\"code\":{\"coding\":[{\"system\":\"https://crosswalk.example.org/fhir/CodeSystem/recovery-observation\"," \
	"\"code\":\"strength\"}]},\"subject\":{\"reference\":\"Patient/p1\"},"

/* A project profile (recovery-strength), snapshot generated here. */
static void project_profile(void **state)
{
	(void)state;
	const char *cs = "https://crosswalk.example.org/fhir/CodeSystem/strength-category";
	char buf[2048], code[64];
	/* a code of the project's own strength-category system */
	const struct terminology_concept *c = NULL;
	struct terminology_concept tc;
	(void)c;
	struct terminology_system_info si;
	assert_true(terminology_system_info(terms, cs, &si));
	assert_true(si.count > 0);
	/* the first code of the system, read from its CodeSystem */
	size_t len;
	char *text = read_whole_file("profiles/CodeSystem-strength-category.json", &len);
	assert_non_null(text);
	cJSON *csj = json(text);
	free(text);
	snprintf(code, sizeof code, "%s",
		 cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(csj, "concept"), 0), "code")->valuestring);
	cJSON_Delete(csj);
	assert_int_equal(terminology_find(terms, cs, code, &tc), TERMINOLOGY_FOUND);
	snprintf(buf, sizeof buf,
		 ST_HEAD ",{\"coding\":[{\"system\":\"%s\",\"code\":\"%s\"}]}]," ST_CODE "\"valueString\":\"kind\"}",
		 cs, code);
	expect_clean(buf, STRENGTH);
	/* a code that is not in the bound ValueSet */
	snprintf(buf, sizeof buf,
		 ST_HEAD ",{\"coding\":[{\"system\":\"%s\",\"code\":\"no-such-code\"}]}]," ST_CODE
			 "\"valueString\":\"kind\"}",
		 cs);
	expect_issue(buf, STRENGTH, "profile-binding-required", "Observation.category[1]", OUTCOME_ERROR);
	/* the required social-history slice */
	expect_issue("{\"resourceType\":\"Observation\",\"status\":\"final\"," ST_CODE "\"valueString\":\"kind\"}",
		     STRENGTH, "profile-cardinality-min", "Observation.category", OUTCOME_ERROR);
	/* the pattern on code */
	expect_issue(ST_HEAD "],\"code\":{\"text\":\"strength\"},\"subject\":{\"reference\":\"Patient/p1\"},"
			     "\"valueString\":\"kind\"}",
		     STRENGTH, "profile-pattern", "Observation.code", OUTCOME_ERROR);
	/* value[x] restricted to string */
	expect_issue(ST_HEAD "]," ST_CODE "\"valueInteger\":3}", STRENGTH, "profile-type", "Observation.valueInteger",
		     OUTCOME_ERROR);
	/* a profile on it adds its own rule and keeps its base's */
	expect_issue(ST_HEAD "]," ST_CODE "\"valueString\":\"kind\"}", TEST_SD "strength2", "profile-cardinality-min",
		     "Observation.note", OUTCOME_ERROR);
	expect_issue(ST_HEAD "]," ST_CODE "\"valueInteger\":3,\"note\":[{\"text\":\"n\"}]}", TEST_SD "strength2",
		     "profile-type", "Observation.valueInteger", OUTCOME_ERROR);
	/* a resource of another type */
	expect_issue("{\"resourceType\":\"Patient\"}", STRENGTH, "profile-type-mismatch", "Patient", OUTCOME_ERROR);
	expect_issue("{\"resourceType\":\"Patient\"}", "urn:no-such-profile", "profile-unknown", "Patient",
		     OUTCOME_ERROR);
}

#define SL_HEAD                                                                                                        \
	"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"t\"},\"note\":[{\"text\":\"n\"}]" \
	","                                                                                                            \
	"\"issued\":\"2026-01-01T00:00:00Z\","
#define SL_ID "\"identifier\":[{\"system\":\"urn:s\",\"value\":\"1\"}],"
#define COMP(c) "{\"code\":{\"coding\":[{\"system\":\"urn:t\",\"code\":\"" c "\"}]},\"valueString\":\"v\"}"

/* Slicing rules, discriminators, fixed values and constraints. */
static void slicing(void **state)
{
	(void)state;
	const char *url = TEST_SD "slicing";
	expect_clean(SL_HEAD SL_ID "\"component\":[" COMP("a") "," COMP("b") "," COMP("b") "]}", url);
	/* closed: a component no slice matches */
	expect_issue(SL_HEAD SL_ID "\"component\":[" COMP("a") "," COMP("z") "]}", url, "profile-slice-closed",
		     "Observation.component[1]", OUTCOME_ERROR);
	/* ordered: b before a */
	expect_issue(SL_HEAD SL_ID "\"component\":[" COMP("b") "," COMP("a") "]}", url, "profile-slice-order",
		     "Observation.component[1]", OUTCOME_ERROR);
	/* a slice's own cardinality: a is required, b at most twice */
	expect_issue(SL_HEAD SL_ID "\"component\":[" COMP("b") "]}", url, "profile-cardinality-min", NULL,
		     OUTCOME_ERROR);
	expect_issue(SL_HEAD SL_ID "\"component\":[" COMP("a") "," COMP("b") "," COMP("b") "," COMP("b") "]}", url,
		     "profile-cardinality-max", "Observation.component[1]", OUTCOME_ERROR);
	/* exists discriminator, openAtEnd: one without system after the slice is fine, before it is not */
	expect_clean(SL_HEAD "\"identifier\":[{\"system\":\"urn:s\",\"value\":\"1\"},{\"value\":\"2\"}],"
			     "\"component\":[" COMP("a") "]}",
		     url);
	expect_issue(SL_HEAD "\"identifier\":[{\"value\":\"2\"},{\"system\":\"urn:s\",\"value\":\"1\"}],"
			     "\"component\":[" COMP("a") "]}",
		     url, "profile-slice-openatend", "Observation.identifier[1]", OUTCOME_ERROR);
	expect_issue(SL_HEAD "\"identifier\":[{\"value\":\"2\"}],\"component\":[" COMP("a") "]}", url,
		     "profile-cardinality-min", "Observation.identifier", OUTCOME_ERROR);
	/* fixed status */
	expect_issue("{\"resourceType\":\"Observation\",\"status\":\"amended\",\"code\":{\"text\":\"t\"},"
		     "\"note\":[{\"text\":\"n\"}],\"issued\":\"2026-01-01T00:00:00Z\"," SL_ID
		     "\"component\":[" COMP("a") "]}",
		     url, "profile-fixed", "Observation.status", OUTCOME_ERROR);
	/* constraints at their severity */
	expect_issue("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"t\"},"
		     "\"issued\":\"2026-01-01T00:00:00Z\"," SL_ID "\"component\":[" COMP("a") "]}",
		     url, "profile-constraint", "Observation", OUTCOME_ERROR);
	expect_issue("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"t\"},"
		     "\"note\":[{\"text\":\"n\"}]," SL_ID "\"component\":[" COMP("a") "]}",
		     url, "profile-constraint", "Observation", OUTCOME_WARNING);
	/* type discriminator */
	const char *pu = TEST_SD "params";
	expect_clean("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"a\",\"valueInteger\":1},"
		     "{\"name\":\"b\",\"valueString\":\"x\"}]}",
		     pu);
	expect_issue("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"a\",\"valueInteger\":1},"
		     "{\"name\":\"b\",\"valueBoolean\":true}]}",
		     pu, "profile-slice-closed", "Parameters.parameter[1]", OUTCOME_ERROR);
	expect_issue("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"b\",\"valueString\":\"x\"}]}", pu,
		     "profile-cardinality-min", "Parameters.parameter", OUTCOME_ERROR);
	/* profile discriminator */
	const char *bu = TEST_SD "byprofile";
	expect_clean("{\"resourceType\":\"Patient\",\"extension\":[{\"url\":\"" BIRTHPLACE
		     "\",\"valueAddress\":{\"city\":\"Oslo\"}}]}",
		     bu);
	expect_issue("{\"resourceType\":\"Patient\",\"gender\":\"other\"}", bu, "profile-cardinality-min",
		     "Patient.extension", OUTCOME_ERROR);
}

/* Extensions anywhere: definition, context, value type, modifier. */
static void extensions(void **state)
{
	(void)state;
	expect_clean("{\"resourceType\":\"Patient\",\"extension\":[{\"url\":\"" BIRTHPLACE
		     "\",\"valueAddress\":{\"city\":\"Oslo\"}}]}",
		     NULL);
	expect_issue("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"t\"},"
		     "\"extension\":[{\"url\":\"" BIRTHPLACE "\",\"valueAddress\":{\"city\":\"Oslo\"}}]}",
		     NULL, "extension-context", "Observation.extension[0]", OUTCOME_ERROR);
	expect_issue("{\"resourceType\":\"Patient\",\"extension\":[{\"url\":\"" BIRTHPLACE
		     "\",\"valueString\":\"Oslo\"}]}",
		     NULL, "profile-type", "Patient.extension[0].valueString", OUTCOME_ERROR);
	expect_issue("{\"resourceType\":\"Patient\",\"modifierExtension\":[{\"url\":\"" BIRTHPLACE
		     "\",\"valueAddress\":{\"city\":\"Oslo\"}}]}",
		     NULL, "extension-not-modifier", "Patient.modifierExtension[0]", OUTCOME_ERROR);
	expect_clean("{\"resourceType\":\"Patient\",\"modifierExtension\":[{\"url\":\"" TEST_SD
		     "modext\",\"valueBoolean\":true}]}",
		     NULL);
	expect_issue("{\"resourceType\":\"Patient\",\"extension\":[{\"url\":\"" TEST_SD
		     "modext\",\"valueBoolean\":true}]}",
		     NULL, "extension-modifier", "Patient.extension[0]", OUTCOME_ERROR);
	expect_issue("{\"resourceType\":\"Patient\",\"modifierExtension\":[{\"url\":\"" TEST_SD "modext\"}]}", NULL,
		     "profile-cardinality-min", NULL, OUTCOME_ERROR);
	expect_issue("{\"resourceType\":\"Patient\",\"name\":[{\"extension\":[{\"url\":\"urn:x:unknown\","
		     "\"valueString\":\"v\"}],\"family\":\"F\"}]}",
		     NULL, "extension-unknown", "Patient.name[0].extension[0]", OUTCOME_WARNING);
}

/* meta.profile claims are followed, in Bundle entries too. */
static void claims(void **state)
{
	(void)state;
	expect_clean(
		"{\"resourceType\":\"Observation\",\"meta\":{\"profile\":[\"" BW_URL "\"]},"
		"\"status\":\"final\",\"category\":[{\"coding\":[{\"system\":"
		"\"http://terminology.hl7.org/CodeSystem/observation-category\",\"code\":\"vital-signs\"}]}]," BW_CODE
			BW_SUBJ BW_VAL,
		NULL);
	expect_issue("{\"resourceType\":\"Observation\",\"meta\":{\"profile\":[\"" BW_URL "\"]},"
		     "\"status\":\"final\",\"code\":{\"text\":\"t\"}}",
		     NULL, "profile-cardinality-min", "Observation.subject", OUTCOME_ERROR);
	expect_issue("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":"
		     "{\"resourceType\":\"Observation\",\"meta\":{\"profile\":[\"" BW_URL "\"]},"
		     "\"status\":\"final\",\"code\":{\"text\":\"t\"}}}]}",
		     NULL, "profile-cardinality-min", "Bundle.entry[0].resource.subject", OUTCOME_ERROR);
	expect_issue("{\"resourceType\":\"Patient\",\"meta\":{\"profile\":[\"urn:x:nowhere\"]}}", NULL,
		     "profile-unknown", "Patient", OUTCOME_WARNING);
}

/* The OperationOutcome carries the message id. */
static void message_ids(void **state)
{
	(void)state;
	struct outcome oo = OUTCOME_INIT;
	check("{\"resourceType\":\"Patient\"}", STRENGTH, &oo);
	cJSON *o = outcome_to_json(&oo);
	outcome_release(&oo);
	const cJSON *is = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "issue"), 0);
	const cJSON *coding = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(is, "details"), "coding"), 0);
	assert_string_equal(cJSON_GetObjectItem(coding, "system")->valuestring, OUTCOME_MESSAGE_SYSTEM);
	assert_string_equal(cJSON_GetObjectItem(coding, "code")->valuestring, "profile-type-mismatch");
	assert_non_null(strstr(cJSON_GetObjectItem(is, "diagnostics")->valuestring, STRENGTH));
	cJSON_Delete(o);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Loading: packages, and the faults that stop a start. */
static void loading(void **state)
{
	(void)state;
	char dir[] = "/tmp/cw-profile-XXXXXX", path[512], err[1024];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/pkg", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/pkg/package", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/pkg/package/package.json", dir);
	write_file(path, "{\"name\":\"example.pkg\",\"version\":\"1.0.0\"}");
	snprintf(path, sizeof path, "%s/pkg/package/StructureDefinition-x.json", dir);
	write_file(path, test_profiles[0]);
	snprintf(path, sizeof path, "%s/pkg/package/Patient-example.json", dir);
	write_file(path, "{\"resourceType\":\"Patient\"}");
	struct profile_set *p = profile_set_new(NULL);
	assert_int_equal(profile_load_packages(p, dir, err, sizeof err), 1);
	assert_int_equal(profile_seal(p, err, sizeof err), 0);
	assert_true(profile_known(p, TEST_SD "slicing|1.0"));
	profile_set_free(p);
	/* a file that is not JSON */
	snprintf(path, sizeof path, "%s/pkg/package/bad.json", dir);
	write_file(path, "{");
	p = profile_set_new(NULL);
	assert_int_equal(profile_load_packages(p, dir, err, sizeof err), -1);
	assert_non_null(strstr(err, "bad.json"));
	profile_set_free(p);
	unlink(path);
	/* a base that is not loaded, and a cycle */
	p = profile_set_new(NULL);
	assert_int_equal(profile_add(p, json(test_profiles[3]), "t", err, sizeof err), 1);
	assert_int_equal(profile_seal(p, err, sizeof err), -1);
	assert_non_null(strstr(err, "not loaded"));
	profile_set_free(p);
	p = profile_set_new(NULL);
	assert_int_equal(
		profile_add(p,
			    json("{\"resourceType\":\"StructureDefinition\",\"url\":\"urn:a\",\"type\":"
				 "\"Patient\",\"baseDefinition\":\"urn:b\",\"differential\":{\"element\":[]}}"),
			    "t", err, sizeof err),
		1);
	assert_int_equal(
		profile_add(p,
			    json("{\"resourceType\":\"StructureDefinition\",\"url\":\"urn:b\",\"type\":"
				 "\"Patient\",\"baseDefinition\":\"urn:a\",\"differential\":{\"element\":[]}}"),
			    "t", err, sizeof err),
		1);
	assert_int_equal(profile_seal(p, err, sizeof err), -1);
	assert_non_null(strstr(err, "cycle"));
	/* the same url with another content */
	assert_int_equal(profile_add(p,
				     json("{\"resourceType\":\"StructureDefinition\",\"url\":\"urn:a\",\"type\":"
					  "\"Observation\"}"),
				     "t", err, sizeof err),
			 -1);
	profile_set_free(p);
	/* a missing folder is no error */
	p = profile_set_new(NULL);
	assert_int_equal(profile_load_dir(p, "/nonexistent/profiles", err, sizeof err), 0);
	assert_int_equal(profile_load_packages(p, "/nonexistent/packages", err, sizeof err), 0);
	profile_set_free(p);
	snprintf(path, sizeof path, "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(snapshots),       cmocka_unit_test(bodyweight),  cmocka_unit_test(core_valuesets),
		cmocka_unit_test(project_profile), cmocka_unit_test(slicing),     cmocka_unit_test(extensions),
		cmocka_unit_test(claims),          cmocka_unit_test(message_ids), cmocka_unit_test(loading),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
