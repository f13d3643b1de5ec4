/* End-to-end tests of validation against profiles on a real gateway:
 * $validate with a profile (query or Parameters) and a mode, meta.profile
 * claims, the CapabilityStatement's supported profiles, writes refused by
 * validation.on_write "profiles", the start refused for a bad
 * validation section, and the R4 core bindings checked with no package. Profiles: the project's profiles/ and the official
 * R4 core ones in the unpacked package tests/fixtures/packages. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fjson.h"
#include "e2e/harness.h"

#define BW "http://hl7.org/fhir/StructureDefinition/bodyweight"
#define STRENGTH "https://crosswalk.example.org/fhir/StructureDefinition/recovery-strength"

#define BW_OK                                                                                            \
	"{\"resourceType\":\"Observation\",\"status\":\"final\",\"category\":[{\"coding\":[{\"system\":" \
	"\"http://terminology.hl7.org/CodeSystem/observation-category\",\"code\":\"vital-signs\"}]}],"   \
	"\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"29463-7\"}]},"                \
	"\"subject\":{\"reference\":\"Patient/p1\"},\"effectiveDateTime\":\"2026-01-01\","               \
	"\"valueQuantity\":{\"value\":70,\"unit\":\"kg\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"kg\"}}"
/* valid R4, but no subject and no category: not a body weight */
#define BW_BAD                                                                            \
	"{\"resourceType\":\"Observation\",\"status\":\"final\","                         \
	"\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"29463-7\"}]}," \
	"\"effectiveDateTime\":\"2026-01-01\","                                           \
	"\"valueQuantity\":{\"value\":70,\"unit\":\"kg\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"kg\"}}"

static struct gw gw;
static char packages[PATH_MAX + 64];

static int setup(void **state)
{
	(void)state;
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof cwd));
	snprintf(packages, sizeof packages, "%s/tests/fixtures/packages", cwd);
	char extra[PATH_MAX + 128];
	snprintf(extra, sizeof extra, "\"validation\":{\"packages_dir\":\"%s\"}", packages);
	return gw_start(&gw, extra);
}

static int teardown(void **state)
{
	(void)state;
	return gw_stop(&gw, 5000);
}

static cJSON *call(const struct gw *g, const char *method, const char *path, const char *body, long *status)
{
	struct resp r;
	memset(&r, 0, sizeof r);
	const char *const headers[] = {"Content-Type: application/fhir+json", NULL};
	assert_int_equal(http_do(g, method, path, headers, body, body ? strlen(body) : 0, &r), 0);
	*status = r.status;
	cJSON *t = fjson_parse(r.body, r.len, NULL, NULL);
	if (!t)
		print_message("# %s %s: %ld %.300s\n", method, path, r.status, r.body ? r.body : "");
	assert_non_null(t);
	resp_free(&r);
	return t;
}

/* The number of issues at error severity. */
static int errors(const cJSON *oo)
{
	int n = 0;
	const cJSON *is;
	cJSON_ArrayForEach(is, cJSON_GetObjectItem(oo, "issue")) n +=
		!strcmp(cJSON_GetObjectItem(is, "severity")->valuestring, "error");
	return n;
}

/* Whether an issue has message id msgid at expression expr. */
static bool has(const cJSON *oo, const char *msgid, const char *expr) { return harness_oo_issue(oo, msgid, expr); }

static void print_oo(const cJSON *oo)
{
	char *s = cJSON_PrintUnformatted(oo);
	print_message("# %s\n", s);
	free(s);
}

/* $validate?profile=: a body weight passes, a bare Observation does not. */
static void validate_with_profile_query(void **state)
{
	(void)state;
	long st;
	cJSON *oo = call(&gw, "POST", "/fhir/Observation/$validate?profile=" BW, BW_OK, &st);
	assert_int_equal(st, 200);
	if (errors(oo))
		print_oo(oo);
	assert_int_equal(errors(oo), 0);
	cJSON_Delete(oo);
	oo = call(&gw, "POST", "/fhir/Observation/$validate?profile=" BW, BW_BAD, &st);
	assert_int_equal(st, 200);
	if (!has(oo, "profile-cardinality-min", "Observation.subject"))
		print_oo(oo);
	assert_true(has(oo, "profile-cardinality-min", "Observation.subject"));
	assert_true(has(oo, "profile-cardinality-min", "Observation.category"));
	cJSON_Delete(oo);
	/* without a profile, the same resource is valid R4 */
	oo = call(&gw, "POST", "/fhir/Observation/$validate", BW_BAD, &st);
	assert_int_equal(errors(oo), 0);
	cJSON_Delete(oo);
}

/* The profile and mode as Parameters; claims in meta.profile. */
static void validate_with_parameters(void **state)
{
	(void)state;
	long st;
	cJSON *oo = call(&gw, "POST", "/fhir/$validate",
			 "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"resource\",\"resource\":" BW_BAD
			 "},{\"name\":\"profile\",\"valueCanonical\":\"" BW
			 "\"},{\"name\":\"mode\",\"valueCode\":\"create\"}]}",
			 &st);
	assert_int_equal(st, 200);
	assert_true(has(oo, "profile-cardinality-min", "Observation.subject"));
	cJSON_Delete(oo);
	/* a project profile */
	oo = call(&gw, "POST", "/fhir/$validate?profile=" STRENGTH,
		  "{\"resourceType\":\"Observation\",\"meta\":{\"profile\":[\"" STRENGTH "\"]},\"status\":\"final\","
		  "\"code\":{\"text\":\"strength\"},\"valueInteger\":3}",
		  &st);
	assert_int_equal(st, 200);
	if (!has(oo, "profile-type", "Observation.valueInteger"))
		print_oo(oo);
	assert_true(has(oo, "profile-type", "Observation.valueInteger"));
	assert_true(has(oo, "profile-pattern", "Observation.code"));
	cJSON_Delete(oo);
	/* the same resource without a profile parameter: its claim is followed
	 * although validation.on_write is left at structural here */
	oo = call(&gw, "POST", "/fhir/$validate",
		  "{\"resourceType\":\"Observation\",\"meta\":{\"profile\":[\"" STRENGTH "\"]},\"status\":\"final\","
		  "\"code\":{\"text\":\"strength\"},\"valueInteger\":3}",
		  &st);
	assert_int_equal(st, 200);
	assert_true(has(oo, "profile-type", "Observation.valueInteger"));
	assert_true(has(oo, "profile-pattern", "Observation.code"));
	cJSON_Delete(oo);
	/* mode delete checks no content */
	oo = call(&gw, "POST", "/fhir/Observation/$validate?mode=delete&profile=" BW, BW_BAD, &st);
	assert_int_equal(st, 200);
	assert_int_equal(errors(oo), 0);
	cJSON_Delete(oo);
}

/* Refusals: an unknown profile, an unknown mode. */
static void validate_refusals(void **state)
{
	(void)state;
	long st;
	cJSON *oo = call(&gw, "POST", "/fhir/Observation/$validate?profile=urn:x:no-such", BW_OK, &st);
	assert_int_equal(st, 400);
	assert_string_equal(cJSON_GetObjectItem(oo, "resourceType")->valuestring, "OperationOutcome");
	cJSON_Delete(oo);
	oo = call(&gw, "POST", "/fhir/Observation/$validate?mode=sometimes", BW_OK, &st);
	assert_int_equal(st, 400);
	cJSON_Delete(oo);
}

/* The CapabilityStatement lists the loaded profiles per type. */
static void capability(void **state)
{
	(void)state;
	long st;
	cJSON *cs = call(&gw, "GET", "/fhir/metadata", NULL, &st);
	assert_int_equal(st, 200);
	bool strength = false, bw = false;
	const cJSON *r;
	cJSON_ArrayForEach(r, cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(cs, "rest"), 0), "resource"))
	{
		const cJSON *p;
		cJSON_ArrayForEach(p, cJSON_GetObjectItem(r, "supportedProfile"))
		{
			if (!strcmp(p->valuestring, STRENGTH))
				strength = !strcmp(cJSON_GetObjectItem(r, "type")->valuestring, "Observation");
			if (!strcmp(p->valuestring, BW))
				bw = !strcmp(cJSON_GetObjectItem(r, "type")->valuestring, "Observation");
		}
	}
	cJSON_Delete(cs);
	assert_true(strength);
	assert_true(bw);
}

/* validation.on_write "profiles": claimed and configured profiles are
 * enforced on create, update and in transactions; structural (the default)
 * does not. */
static void on_write_profiles(void **state)
{
	(void)state;
	long st;
	/* the default gateway takes a bare Observation */
	cJSON *r = call(&gw, "POST", "/fhir/Observation", BW_BAD, &st);
	assert_int_equal(st, 201);
	cJSON_Delete(r);
	struct gw g2;
	char extra[PATH_MAX + 256];
	snprintf(extra, sizeof extra,
		 "\"validation\":{\"on_write\":\"profiles\",\"packages_dir\":\"%s\",\"profiles\":{\"Observation\":\"" BW
		 "\"}}",
		 packages);
	assert_int_equal(gw_start(&g2, extra), 0);
	r = call(&g2, "POST", "/fhir/Observation", BW_BAD, &st);
	assert_int_equal(st, 422);
	assert_true(has(r, "profile-cardinality-min", "Observation.subject"));
	cJSON_Delete(r);
	r = call(&g2, "POST", "/fhir/Observation", BW_OK, &st);
	assert_int_equal(st, 201);
	cJSON_Delete(r);
	/* there $validate follows the claims too */
	r = call(&g2, "POST", "/fhir/$validate",
		 "{\"resourceType\":\"Observation\",\"meta\":{\"profile\":[\"" STRENGTH "\"]},\"status\":\"final\","
		 "\"code\":{\"text\":\"strength\"},\"valueInteger\":3}",
		 &st);
	assert_int_equal(st, 200);
	assert_true(has(r, "profile-type", "Observation.valueInteger"));
	cJSON_Delete(r);
	/* a claimed profile on another type */
	r = call(&g2, "PUT", "/fhir/Observation/s1",
		 "{\"resourceType\":\"Observation\",\"id\":\"s1\",\"meta\":{\"profile\":[\"" STRENGTH "\"]},"
		 "\"status\":\"final\",\"code\":{\"text\":\"strength\"},\"valueInteger\":3}",
		 &st);
	assert_int_equal(st, 422);
	cJSON_Delete(r);
	r = call(&g2, "POST", "/fhir",
		 "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":" BW_BAD
		 ",\"request\":{\"method\":\"POST\",\"url\":\"Observation\"}}]}",
		 &st);
	assert_int_equal(st, 422);
	cJSON_Delete(r);
	assert_int_equal(gw_stop(&g2, 5000), 0);
}

/* Severity of the issue with message id msgid at expr, or NULL. */
static const char *severity_of(const cJSON *oo, const char *msgid, const char *expr)
{
	const cJSON *is;
	cJSON_ArrayForEach(is, cJSON_GetObjectItem(oo, "issue"))
	{
		const cJSON *c =
			cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(is, "details"), "coding"), 0);
		const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItem(is, "expression"), 0);
		if (c && !strcmp(cJSON_GetObjectItem(c, "code")->valuestring, msgid) && e &&
		    !strcmp(e->valuestring, expr))
			return cJSON_GetObjectItem(is, "severity")->valuestring;
	}
	return NULL;
}

/* With no package and no validation settings, the R4 core bindings hold:
 * a required one is an error in $validate and refuses a write (nothing
 * stored), an extensible one is a warning and the write goes through. */
static void core_bindings_out_of_the_box(void **state)
{
	(void)state;
	struct gw g2;
	assert_int_equal(gw_start(&g2, NULL), 0);
	long st;
	cJSON *r = call(&g2, "POST", "/fhir/Observation/$validate",
			"{\"resourceType\":\"Observation\",\"status\":\"bogus\",\"code\":{\"text\":\"x\"}}", &st);
	assert_int_equal(st, 200);
	if (errors(r) != 1 || !severity_of(r, "binding-required", "Observation.status"))
		print_oo(r);
	assert_int_equal(errors(r), 1);
	assert_string_equal(severity_of(r, "binding-required", "Observation.status"), "error");
	cJSON_Delete(r);
	r = call(&g2, "POST", "/fhir/$validate",
		 "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"resource\",\"resource\":"
		 "{\"resourceType\":\"Patient\",\"gender\":\"x\",\"name\":[{\"use\":\"official\"}]}}]}",
		 &st);
	assert_int_equal(st, 200);
	assert_int_equal(errors(r), 1);
	assert_string_equal(severity_of(r, "binding-required", "Patient.gender"), "error");
	cJSON_Delete(r);
	const char *cond = "{\"resourceType\":\"Condition\",\"id\":\"c1\",\"subject\":{\"reference\":\"Patient/p\"},"
			   "\"category\":[{\"coding\":[{\"system\":"
			   "\"http://terminology.hl7.org/CodeSystem/condition-category\",\"code\":\"worry\"}]}]}";
	r = call(&g2, "POST", "/fhir/Condition/$validate", cond, &st);
	assert_int_equal(errors(r), 0);
	assert_string_equal(severity_of(r, "binding-extensible", "Condition.category[0]"), "warning");
	cJSON_Delete(r);
	r = call(&g2, "PUT", "/fhir/Condition/c1", cond, &st);
	assert_int_equal(st, 201);
	cJSON_Delete(r);
	/* a write breaking a required binding is refused and stores nothing */
	r = call(&g2, "PUT", "/fhir/Patient/px", "{\"resourceType\":\"Patient\",\"id\":\"px\",\"gender\":\"x\"}", &st);
	assert_int_equal(st, 400);
	assert_string_equal(severity_of(r, "binding-required", "Patient.gender"), "error");
	cJSON_Delete(r);
	r = call(&g2, "GET", "/fhir/Patient/px", NULL, &st);
	assert_int_equal(st, 404);
	cJSON_Delete(r);
	assert_int_equal(gw_stop(&g2, 5000), 0);
}

/* A bad validation section stops the start. */
static void bad_config(void **state)
{
	(void)state;
	char out[4096] = "";
	const char *const serve[] = {NULL};
	int rc = gw_run_expect_exit("\"validation\":{\"on_write\":\"sometimes\"}", serve, 15000, out, sizeof out);
	assert_int_equal(rc, 2);
	assert_non_null(strstr(out, "validation.on_write"));
	rc = gw_run_expect_exit("\"validation\":{\"profiles\":{\"Observation\":\"urn:x:no-such\"}}", serve, 15000, out,
				sizeof out);
	assert_int_equal(rc, 2);
	assert_non_null(strstr(out, "urn:x:no-such"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(validate_with_profile_query),
		cmocka_unit_test(validate_with_parameters),
		cmocka_unit_test(validate_refusals),
		cmocka_unit_test(capability),
		cmocka_unit_test(on_write_profiles),
		cmocka_unit_test(bad_config),
		cmocka_unit_test(core_bindings_out_of_the_box),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
