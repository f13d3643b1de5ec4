/* Unit tests: reslicing and discriminators through resolve() in profile
 * validation (core/fhir/profile.h), with the small profiles written for them
 * in tests/fixtures/slicing/ and the official R4 lipid profile (its copy in
 * tests/fixtures/slicing/lipid/, sources in tests/fixtures/slicing/SOURCES.md)
 * on the official lipids example of the corpus. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "fhir/profile.h"
#include "testenv.h"
#include "unit/profile_check.h"

#define SD "https://crosswalk.example.org/fhir/StructureDefinition/test-"
#define LIPID "http://hl7.org/fhir/StructureDefinition/lipidprofile"

static struct profile_set *ps;

static int setup(void **state)
{
	(void)state;
	char err[1024] = "";
	ps = profile_set_new(NULL);
	assert_non_null(ps);
	int n = profile_load_dir(ps, "tests/fixtures/slicing", err, sizeof err);
	if (n != 12)
		fail_msg("fixtures: %d %s", n, err);
	if (profile_seal(ps, err, sizeof err) != 0)
		fail_msg("seal: %s", err);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	profile_set_free(ps);
	return 0;
}

/* The checks of profile_check.h against this file's profile set. */
#define json(text) pc_json(text)
#define expect_clean(text, url) pc_expect_clean(ps, text, url)
#define expect_clean_json(r, url) pc_expect_clean_json(ps, r, url)
#define expect_issue(text, url, msgid, expr, sev) pc_expect_issue(ps, text, url, msgid, expr, sev)
#define expect_issue_json(r, url, msgid, expr, sev) pc_expect_issue_json(ps, r, url, msgid, expr, sev)

/* ---- reslicing ---- */

#define OBS(components)                                                                                                \
	"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"bp\"},\"component\":[" components \
	"]}"
#define BPC(c) "{\"code\":{\"coding\":[{\"system\":\"http://example.org/bp\",\"code\":\"" c "\"}]},"
#define SNC(c)                                                                                          \
	"{\"code\":{\"coding\":[{\"system\":\"http://example.org/bp\",\"code\":\"" c "\"},{\"system\":" \
	"\"http://snomed.info/sct\",\"code\":\"1\"}]},"
#define QTY "\"valueQuantity\":{\"value\":120}}"
#define OTHER "{\"code\":{\"text\":\"other\"},\"valueString\":\"x\"}"

/* Slice bp of components is resliced into systolic and diastolic, closed and
 * ordered: each reslice's cardinality, order, closure and own element rules
 * hold within the values of bp; values outside bp are not concerned. */
static void reslicing(void **state)
{
	(void)state;
	const char *url = SD "reslice";
	expect_clean(OBS(BPC("sys") QTY "," BPC("dia") QTY "," OTHER), url);
	expect_issue(OBS(BPC("sys") QTY), url, "profile-cardinality-min", "Observation.component", OUTCOME_ERROR);
	expect_issue(OBS(BPC("sys") QTY "," BPC("sys") QTY "," BPC("dia") QTY), url, "profile-cardinality-max",
		     "Observation.component[0]", OUTCOME_ERROR);
	expect_issue(OBS(BPC("dia") QTY "," BPC("sys") QTY), url, "profile-slice-order", "Observation.component[1]",
		     OUTCOME_ERROR);
	expect_issue(OBS(BPC("sys") QTY "," BPC("dia") QTY "," BPC("mean") QTY), url, "profile-slice-closed",
		     "Observation.component[2]", OUTCOME_ERROR);
	expect_issue(OBS(BPC("sys") "\"valueString\":\"high\"}," BPC("dia") QTY), url, "profile-type",
		     "Observation.component[0].valueString", OUTCOME_ERROR);
	/* the slice itself still counts its values (bp allows three) */
	expect_issue(OBS(BPC("sys") QTY "," BPC("dia") QTY "," BPC("dia") QTY "," BPC("dia") QTY), url,
		     "profile-cardinality-max", "Observation.component[0]", OUTCOME_ERROR);
}

/* A profile derived from the reslicing one adds a reslice (mean) to its
 * closed slice and slices the codings within the slice (one SNOMED CT
 * coding required in every bp component). */
static void reslicing_derived(void **state)
{
	(void)state;
	const char *url = SD "reslice-derived";
	expect_clean(OBS(SNC("sys") QTY "," SNC("dia") QTY "," SNC("mean") QTY), url);
	expect_issue(OBS(SNC("sys") QTY "," SNC("dia") QTY "," SNC("mean") QTY "," SNC("mean") QTY), url,
		     "profile-cardinality-max", "Observation.component[2]", OUTCOME_ERROR);
	expect_issue(OBS(SNC("sys") QTY "," BPC("dia") QTY), url, "profile-cardinality-min",
		     "Observation.component[1].code.coding", OUTCOME_ERROR);
	/* the base's reslices still hold in the derived profile */
	expect_issue(OBS(SNC("sys") QTY), url, "profile-cardinality-min", "Observation.component", OUTCOME_ERROR);
	/* and the base itself refuses mean */
	expect_issue(OBS(SNC("sys") QTY "," SNC("dia") QTY "," SNC("mean") QTY), SD "reslice", "profile-slice-closed",
		     "Observation.component[2]", OUTCOME_ERROR);
	/* the generated snapshot holds the reslice under the slice's id */
	cJSON *snap = profile_snapshot_json(ps, url);
	assert_non_null(snap);
	bool mean = false, sys = false;
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(snap, "element"))
	{
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
		mean = mean || !strcmp(id->valuestring, "Observation.component:bp/mean");
		sys = sys || !strcmp(id->valuestring, "Observation.component:bp/systolic");
	}
	cJSON_Delete(snap);
	assert_true(mean && sys);
}

/* ---- resolve() in discriminators ---- */

#define LAB(c) "\"code\":{\"coding\":[{\"system\":\"http://example.org/lab\",\"code\":\"" c "\"}]}"
#define RES_CHOL "{\"resourceType\":\"Observation\",\"id\":\"c1\",\"status\":\"final\"," LAB("chol") "}"
#define RES_TRIG \
	"{\"resourceType\":\"Observation\",\"id\":\"t1\",\"status\":\"final\"," LAB("trig") ",\"valueString\":\"1\"}"
#define RES_ORG "{\"resourceType\":\"Organization\",\"id\":\"o1\",\"name\":\"Lab\"}"
#define RES_PRAC "{\"resourceType\":\"Practitioner\",\"id\":\"p1\"}"
#define DR_HEAD \
	"{\"resourceType\":\"DiagnosticReport\",\"id\":\"r1\",\"status\":\"final\",\"code\":{\"text\":\"lipids\"},"
#define DR_CLAIM "\"meta\":{\"profile\":[\"" SD "panel\"]},"
#define ENTRY(url, res) "{\"fullUrl\":\"" url "\",\"resource\":" res "}"

/* A report whose results are sliced by resolve().code, and performers by
 * resolve() type, resolving contained resources. */
static void resolve_contained(void **state)
{
	(void)state;
	const char *url = SD "panel";
	const char *contained =
		"\"contained\":[" RES_CHOL "," RES_TRIG "," RES_ORG "," RES_PRAC "],\"performer\":[{\"reference\":"
		"\"#o1\"},{\"reference\":\"#p1\"}],";
	char buf[4096];
	snprintf(buf, sizeof buf, DR_HEAD "%s\"result\":[{\"reference\":\"#c1\"},{\"reference\":\"#t1\"}]}", contained);
	expect_clean(buf, url);
	/* ordered */
	snprintf(buf, sizeof buf, DR_HEAD "%s\"result\":[{\"reference\":\"#t1\"},{\"reference\":\"#c1\"}]}", contained);
	expect_issue(buf, url, "profile-slice-order", "DiagnosticReport.result[1]", OUTCOME_ERROR);
	/* a reference that cannot be resolved matches no slice, and says so */
	snprintf(buf, sizeof buf, DR_HEAD "%s\"result\":[{\"reference\":\"#c1\"},{\"reference\":\"#gone\"}]}",
		 contained);
	expect_issue(buf, url, "profile-slice-unresolved", "DiagnosticReport.result[1]", OUTCOME_WARNING);
	expect_issue(buf, url, "profile-slice-closed", "DiagnosticReport.result[1]", OUTCOME_ERROR);
	/* the type through resolve(): two practitioners, no organization */
	snprintf(buf, sizeof buf,
		 DR_HEAD "\"contained\":[" RES_CHOL "," RES_PRAC
			 "],\"performer\":[{\"reference\":\"#p1\"},{\"reference\":"
			 "\"#p1\"}],\"result\":[{\"reference\":\"#c1\"}]}");
	expect_issue(buf, url, "profile-cardinality-min", NULL, OUTCOME_ERROR);
	/* a contained resource of another type matches neither performer slice */
	snprintf(buf, sizeof buf,
		 DR_HEAD "\"contained\":[" RES_CHOL "," RES_ORG
			 "],\"performer\":[{\"reference\":\"#o1\"},{\"reference\":"
			 "\"#c1\"}],\"result\":[{\"reference\":\"#c1\"}]}");
	expect_issue(buf, url, "profile-slice-closed", "DiagnosticReport.performer[1]", OUTCOME_ERROR);
}

/* The same report as an entry of a Bundle: relative references resolve
 * against the base of the report's fullUrl, absolute ones by fullUrl. */
static void resolve_bundle(void **state)
{
	(void)state;
	const char *base = "http://lab.example.org/fhir/";
	char buf[8192];
	snprintf(buf, sizeof buf,
		 "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
		 "{\"fullUrl\":\"%sDiagnosticReport/r1\",\"resource\":" DR_HEAD DR_CLAIM
		 "\"performer\":[{\"reference\":\"Organization/o1\"}],"
		 "\"result\":[{\"reference\":\"Observation/c1\"},{\"reference\":\"%sObservation/t1\"}]}},"
		 /* same type and id on another server: not the one meant */
		 ENTRY("http://other.example.org/fhir/Observation/c1",
		       RES_TRIG) ","
				 "{\"fullUrl\":\"%sObservation/c1\",\"resource\":" RES_CHOL "},"
				 "{\"fullUrl\":\"%sObservation/t1\",\"resource\":" RES_TRIG "},"
				 "{\"fullUrl\":\"%sOrganization/o1\",\"resource\":" RES_ORG "}]}",
		 base, base, base, base, base);
	cJSON *b = json(buf);
	expect_clean_json(b, NULL);
	/* the report alone: nothing resolves */
	const cJSON *dr = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "entry"), 0), "resource");
	expect_issue_json(dr, SD "panel", "profile-slice-unresolved", "DiagnosticReport.result[0]", OUTCOME_WARNING);
	expect_issue_json(dr, SD "panel", "profile-cardinality-min", NULL, OUTCOME_ERROR);
	/* in the Bundle, a result to an entry that is not there */
	cJSON *res0 = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "entry"), 0), "resource");
	cJSON *ref = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res0, "result"), 1), "reference");
	cJSON_SetValuestring(ref, "Observation/t9");
	expect_issue_json(b, NULL, "profile-slice-unresolved", "Bundle.entry[0].resource.result[1]", OUTCOME_WARNING);
	cJSON_Delete(b);
}

/* A profile discriminator through resolve(): the resolved resource must meet
 * the slice's target profile (trig requires a value). */
static void resolve_profile(void **state)
{
	(void)state;
	const char *url = SD "panel-by-profile";
	expect_clean(DR_HEAD "\"contained\":[" RES_TRIG "],\"result\":[{\"reference\":\"#t1\"}]}", url);
	expect_issue(DR_HEAD "\"contained\":[{\"resourceType\":\"Observation\",\"id\":\"t1\",\"status\":\"final\"," LAB(
			     "trig") "}],\"result\":[{\"reference\":\"#t1\"}]}",
		     url, "profile-cardinality-min", NULL, OUTCOME_ERROR);
}

/* The official lipid profile (results sliced by resolve().code, closed and
 * ordered, LDL by a required binding) on the official lipids example. */
static void lipid_profile(void **state)
{
	(void)state;
	char path[4096];
	corpus_path(path, sizeof path, "fhir-r4/examples-json-xml/json/diagnosticreport-example-lipids.json");
	size_t len = 0;
	char *text = read_whole_file(path, &len);
	assert_non_null(text);
	cJSON *b = fjson_parse(text, len, NULL, NULL);
	free(text);
	assert_non_null(b);
	cJSON *entries = cJSON_GetObjectItemCaseSensitive(b, "entry");
	cJSON *dr = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, 0), "resource");
	cJSON *meta = cJSON_AddObjectToObject(dr, "meta");
	cJSON *claims = cJSON_AddArrayToObject(meta, "profile");
	cJSON_AddItemToArray(claims, cJSON_CreateString(LIPID));
	/* the example codes the 1996 panel, the profile fixes the panel with
	 * direct LDL: that is its one error */
	struct outcome oo = OUTCOME_INIT;
	assert_int_equal(profile_validate(ps, b, NULL, &oo, NULL), 1);
	assert_string_equal(oo.issues[0].message_id, "profile-fixed");
	assert_string_equal(oo.issues[0].expression, "Bundle.entry[0].resource.code");
	outcome_release(&oo);
	cJSON_ReplaceItemInObject(dr, "code",
				  json("{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"57698-3\","
				       "\"display\":\"Lipid panel with direct LDL - Serum or Plasma\"}]}"));
	expect_clean_json(b, NULL);
	/* alone, its results resolve to nothing */
	expect_issue_json(dr, LIPID, "profile-slice-unresolved", "DiagnosticReport.result[0]", OUTCOME_WARNING);
	/* HDL before triglyceride: out of order */
	cJSON *results = cJSON_GetObjectItemCaseSensitive(dr, "result");
	cJSON *r1 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(results, 1), "reference");
	cJSON *r2 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(results, 2), "reference");
	cJSON_SetValuestring(r1, "Observation/hdlcholesterol");
	cJSON_SetValuestring(r2, "Observation/triglyceride");
	expect_issue_json(b, NULL, "profile-slice-order", "Bundle.entry[0].resource.result[2]", OUTCOME_ERROR);
	cJSON_SetValuestring(r1, "Observation/triglyceride");
	cJSON_SetValuestring(r2, "Observation/hdlcholesterol");
	expect_clean_json(b, NULL);
	/* an LDL code outside the required ValueSet matches no slice */
	cJSON *ldl = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, 4), "resource");
	cJSON *code = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetArrayItem(
			cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ldl, "code"), "coding"), 0),
		"code");
	cJSON_SetValuestring(code, "2089-1");
	expect_issue_json(b, NULL, "profile-slice-closed", "Bundle.entry[0].resource.result[3]", OUTCOME_ERROR);
	cJSON_Delete(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reslicing),         cmocka_unit_test(reslicing_derived),
		cmocka_unit_test(resolve_contained), cmocka_unit_test(resolve_bundle),
		cmocka_unit_test(resolve_profile),   cmocka_unit_test(lipid_profile),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
