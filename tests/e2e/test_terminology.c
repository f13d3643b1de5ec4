/* End-to-end tests of the terminology operations on a real gateway:
 * CodeSystem/$lookup and CodeSystem/$validate-code over the shipped code packs
 * (ICD-10-CM, HCPCS under its three URIs), in JSON and XML, by GET and by
 * POST of a Parameters resource; the errors (400, 404); a profile
 * CodeSystem and a site's CPT file (codes.cpt_file); and a broken CPT file
 * stopping the gateway at start. */
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

#include "e2e/harness.h"
#include "fhir/fhir_xml.h"
#include "base/fjson.h"

#define ICD "http://hl7.org/fhir/sid/icd-10-cm"
#define HCPCS "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
#define LOOKUP "/fhir/CodeSystem/$lookup"
#define VALIDATE "/fhir/CodeSystem/$validate-code"

static struct gw gw;

static int setup(void **state)
{
	(void)state;
	return gw_start(&gw, NULL);
}

static int teardown(void **state)
{
	(void)state;
	return gw_stop(&gw, 5000);
}

/* One request; the body parsed as FHIR JSON or XML (by Content-Type) into
 * a tree the caller frees. */
static cJSON *call(const char *method, const char *path, const char *const *headers, const char *body, long *status)
{
	struct resp r;
	memset(&r, 0, sizeof r);
	assert_int_equal(http_do(&gw, method, path, headers, body, body ? strlen(body) : 0, &r), 0);
	*status = r.status;
	char ct[200] = "";
	resp_header(&r, "Content-Type", ct, sizeof ct);
	cJSON *t = NULL;
	struct outcome oo = OUTCOME_INIT;
	int st = 0;
	if (!strncmp(ct, "application/fhir+xml", 20))
		t = fhir_xml_to_json(r.body, r.len, NULL, &oo, &st);
	else if (!strncmp(ct, "application/fhir+json", 21))
		t = fjson_parse(r.body, r.len, NULL, NULL);
	outcome_release(&oo);
	if (!t)
		print_message("# %s %s: %ld %s: %.300s\n", method, path, r.status, ct, r.body ? r.body : "");
	assert_non_null(t);
	resp_free(&r);
	return t;
}

static cJSON *get(const char *path, long *status) { return call("GET", path, NULL, NULL, status); }

static const char *rtype(const cJSON *t) { return cJSON_GetObjectItem(t, "resourceType")->valuestring; }

/* The parameter called name (the n-th of them), or NULL. */
static const cJSON *param(const cJSON *t, const char *name, int n)
{
	const cJSON *p;
	cJSON_ArrayForEach(p, cJSON_GetObjectItem(t, "parameter"))
	{
		if (!strcmp(cJSON_GetObjectItem(p, "name")->valuestring, name) && n-- == 0)
			return p;
	}
	return NULL;
}

static const char *pstring(const cJSON *t, const char *name)
{
	const cJSON *p = param(t, name, 0);
	const cJSON *v = p ? cJSON_GetObjectItem(p, "valueString") : NULL;
	return v ? v->valuestring : NULL;
}

static int pbool(const cJSON *t, const char *name)
{
	const cJSON *p = param(t, name, 0);
	const cJSON *v = p ? cJSON_GetObjectItem(p, "valueBoolean") : NULL;
	return v ? cJSON_IsTrue(v) : -1;
}

/* The boolean value of property code, -1 when absent. */
static int property(const cJSON *t, const char *code)
{
	for (int i = 0;; i++) {
		const cJSON *p = param(t, "property", i);
		if (!p)
			return -1;
		const cJSON *parts = cJSON_GetObjectItem(p, "part");
		const cJSON *c = cJSON_GetArrayItem(parts, 0), *v = cJSON_GetArrayItem(parts, 1);
		if (!strcmp(cJSON_GetObjectItem(c, "valueCode")->valuestring, code))
			return cJSON_IsTrue(cJSON_GetObjectItem(v, "valueBoolean"));
	}
}

static void expect_outcome(cJSON *t, long status, long want, const char *code, const char *text)
{
	assert_int_equal(status, want);
	assert_string_equal(rtype(t), "OperationOutcome");
	const cJSON *issue = cJSON_GetArrayItem(cJSON_GetObjectItem(t, "issue"), 0);
	assert_string_equal(cJSON_GetObjectItem(issue, "code")->valuestring, code);
	const char *d = cJSON_GetObjectItem(issue, "diagnostics")->valuestring;
	if (!strstr(d, text))
		fail_msg("'%s' does not say '%s'", d, text);
}

static void lookup_icd10cm(void **state)
{
	(void)state;
	long st;
	cJSON *t = get(LOOKUP "?system=" ICD "&code=F32.A", &st);
	assert_int_equal(st, 200);
	assert_string_equal(rtype(t), "Parameters");
	assert_string_equal(pstring(t, "name"), "ICD-10-CM");
	assert_string_equal(pstring(t, "version"), "2026");
	assert_string_equal(pstring(t, "display"), "Depression, unspecified");
	assert_int_equal(property(t, "billable"), 1);
	assert_int_equal(property(t, "inactive"), -1);
	cJSON_Delete(t);

	t = get(LOOKUP "?system=" ICD "&code=Z59.0&version=2026", &st);
	assert_int_equal(st, 200);
	assert_string_equal(pstring(t, "display"), "Homelessness");
	assert_int_equal(property(t, "billable"), 0);
	cJSON_Delete(t);
}

static void lookup_in_xml(void **state)
{
	(void)state;
	long st;
	cJSON *t = get(LOOKUP "?system=" ICD "&code=Z59.01&_format=xml", &st);
	assert_int_equal(st, 200);
	assert_string_equal(rtype(t), "Parameters");
	assert_string_equal(pstring(t, "display"), "Sheltered homelessness");
	assert_int_equal(property(t, "billable"), 1);
	cJSON_Delete(t);

	t = get(LOOKUP "?system=" ICD "&code=NOPE&_format=xml", &st);
	expect_outcome(t, st, 404, "not-found", "code 'NOPE' is not in " ICD " version 2026");
	cJSON_Delete(t);
}

static void lookup_hcpcs_under_three_uris(void **state)
{
	(void)state;
	static const char *const uris[] = {HCPCS, "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
					   "http://terminology.hl7.org/CodeSystem/HCPCS-all-codes"};
	for (size_t i = 0; i < 3; i++) {
		char path[300];
		snprintf(path, sizeof path, LOOKUP "?system=%s&code=H0038", uris[i]);
		long st;
		cJSON *t = get(path, &st);
		assert_int_equal(st, 200);
		assert_string_equal(pstring(t, "name"), "HCPCS Level II");
		assert_string_equal(pstring(t, "version"), "2025");
		assert_string_equal(pstring(t, "display"), "Self-help/peer services, per 15 minutes");
		assert_int_equal(property(t, "billable"), -1); /* HCPCS does not record it */
		cJSON_Delete(t);
	}
	long st;
	cJSON *t = get(LOOKUP "?system=" HCPCS "&code=CP", &st);
	assert_int_equal(st, 200);
	assert_int_equal(property(t, "inactive"), 1);
	cJSON_Delete(t);
}

static void lookup_errors(void **state)
{
	(void)state;
	long st;
	cJSON *t = get(LOOKUP "?system=http://snomed.info/sct&code=1", &st);
	expect_outcome(t, st, 404, "not-found", "code system 'http://snomed.info/sct' is not known");
	const char *d = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(t, "issue"), 0), "diagnostics")
				->valuestring;
	assert_non_null(strstr(d, ICD " (ICD-10-CM 2026)"));
	assert_non_null(strstr(d, HCPCS " (HCPCS Level II 2025)"));
	assert_null(strstr(d, "ama-assn")); /* CPT is not shipped */
	cJSON_Delete(t);

	t = get(LOOKUP "?system=" ICD "&code=F32.A&version=2025", &st);
	expect_outcome(t, st, 404, "not-found", "version '2025' of " ICD " is not known to this server: it has version 2026");
	cJSON_Delete(t);
	t = get(LOOKUP "?system=" ICD, &st);
	expect_outcome(t, st, 400, "required", "code is required");
	cJSON_Delete(t);
	t = get(LOOKUP "?code=F32.A", &st);
	expect_outcome(t, st, 400, "required", "system is required");
	cJSON_Delete(t);
	t = get(LOOKUP "?url=" ICD "&code=F32.A&_format=xml", &st); /* $lookup takes system, not url */
	expect_outcome(t, st, 400, "required", "system is required");
	cJSON_Delete(t);
}

static void validate_code(void **state)
{
	(void)state;
	long st;
	cJSON *t = get(VALIDATE "?url=" ICD "&code=F43.10", &st);
	assert_int_equal(st, 200);
	assert_int_equal(pbool(t, "result"), 1);
	assert_string_equal(pstring(t, "display"), "Post-traumatic stress disorder, unspecified");
	assert_null(param(t, "message", 0));
	cJSON_Delete(t);

	/* Display compared without regard to case. */
	t = get(VALIDATE "?url=" ICD "&code=F32.A&display=depression,%20UNSPECIFIED", &st);
	assert_int_equal(pbool(t, "result"), 1);
	cJSON_Delete(t);
	t = get(VALIDATE "?url=" ICD "&code=F32.A&display=Sad", &st);
	assert_int_equal(st, 200);
	assert_int_equal(pbool(t, "result"), 0);
	assert_non_null(strstr(pstring(t, "message"), "wrong display 'Sad'"));
	assert_string_equal(pstring(t, "display"), "Depression, unspecified");
	cJSON_Delete(t);

	/* A header code is a valid code, with a warning. */
	t = get(VALIDATE "?url=" ICD "&code=Z59.0", &st);
	assert_int_equal(pbool(t, "result"), 1);
	assert_non_null(strstr(pstring(t, "message"), "not billable"));
	cJSON_Delete(t);

	/* Unknown code: an answer, not an error. */
	t = get(VALIDATE "?url=" ICD "&code=Z59.9999&_format=xml", &st);
	assert_int_equal(st, 200);
	assert_string_equal(rtype(t), "Parameters");
	assert_int_equal(pbool(t, "result"), 0);
	assert_non_null(strstr(pstring(t, "message"), "unknown code 'Z59.9999'"));
	assert_null(param(t, "display", 0));
	cJSON_Delete(t);

	/* An alias: valid, and the message says how it was read. */
	t = get(VALIDATE "?url=http://terminology.hl7.org/CodeSystem/HCPCS-all-codes&code=T1016", &st);
	assert_int_equal(pbool(t, "result"), 1);
	assert_non_null(strstr(pstring(t, "message"), "read as " HCPCS));
	cJSON_Delete(t);

	t = get(VALIDATE "?url=urn:nothing&code=A", &st);
	expect_outcome(t, st, 404, "not-found", "code system 'urn:nothing' is not known");
	cJSON_Delete(t);
	t = get(VALIDATE "?code=A", &st);
	expect_outcome(t, st, 400, "required", "url is required");
	cJSON_Delete(t);
}

static void post_parameters(void **state)
{
	(void)state;
	const char *json[] = {"Content-Type: application/fhir+json", NULL};
	const char *xml[] = {"Content-Type: application/fhir+xml", "Accept: application/fhir+xml", NULL};
	long st;
	cJSON *t = call("POST", LOOKUP, json,
			"{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"system\",\"valueUri\":\"" ICD
			"\"},{\"name\":\"code\",\"valueCode\":\"F10.20\"},{\"name\":\"property\",\"valueCode\":"
			"\"display\"}]}",
			&st);
	assert_int_equal(st, 200);
	assert_string_equal(pstring(t, "display"), "Alcohol dependence, uncomplicated");
	cJSON_Delete(t);

	t = call("POST", LOOKUP, xml,
		 "<Parameters xmlns=\"http://hl7.org/fhir\"><parameter><name value=\"coding\"/><valueCoding><system "
		 "value=\"https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets\"/><code value=\"G0140\"/>"
		 "</valueCoding></parameter></Parameters>",
		 &st);
	assert_int_equal(st, 200);
	assert_string_equal(rtype(t), "Parameters");
	assert_non_null(strstr(pstring(t, "display"), "Principal illness navigation - peer support"));
	cJSON_Delete(t);

	t = call("POST", VALIDATE, json,
		 "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"coding\",\"valueCoding\":{\"system\":\"" ICD
		 "\",\"code\":\"Z56.0\",\"display\":\"Unemployment, unspecified\"}}]}",
		 &st);
	assert_int_equal(st, 200);
	assert_int_equal(pbool(t, "result"), 1);
	cJSON_Delete(t);

	t = call("POST", VALIDATE, xml,
		 "<Parameters xmlns=\"http://hl7.org/fhir\"><parameter><name value=\"url\"/><valueUri value=\"" ICD
		 "\"/></parameter><parameter><name value=\"code\"/><valueCode value=\"F99.99\"/></parameter>"
		 "</Parameters>",
		 &st);
	assert_int_equal(st, 200);
	assert_int_equal(pbool(t, "result"), 0);
	cJSON_Delete(t);

	/* Refusals. */
	t = call("POST", VALIDATE, json, "{\"resourceType\":\"Patient\"}", &st);
	expect_outcome(t, st, 400, "invalid", "must be a Parameters resource");
	cJSON_Delete(t);
	t = call("POST", VALIDATE, json,
		 "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"url\",\"valueUri\":\"" ICD
		 "\"},{\"name\":\"coding\",\"valueCoding\":{\"system\":\"" HCPCS "\",\"code\":\"H0038\"}}]}",
		 &st);
	expect_outcome(t, st, 400, "invalid", "differs from url");
	cJSON_Delete(t);
	t = call("POST", LOOKUP, json,
		 "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"code\",\"valueCode\":\"A\"},{\"name\":"
		 "\"code\",\"valueCode\":\"B\"},{\"name\":\"system\",\"valueUri\":\"" ICD "\"}]}",
		 &st);
	expect_outcome(t, st, 400, "invalid", "'code' is given twice");
	cJSON_Delete(t);
	t = call("POST", VALIDATE, json,
		 "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"codeableConcept\","
		 "\"valueCodeableConcept\":{}}]}",
		 &st);
	expect_outcome(t, st, 400, "not-supported", "'codeableConcept' is not supported");
	cJSON_Delete(t);
	t = call("POST", LOOKUP, json, "{\"resourceType\":\"Parameters\"", &st);
	assert_int_equal(st, 400);
	cJSON_Delete(t);
}

static void listed_in_metadata(void **state)
{
	(void)state;
	long st;
	cJSON *t = get("/fhir/metadata", &st);
	assert_int_equal(st, 200);
	char *text = cJSON_PrintUnformatted(t);
	assert_non_null(strstr(text, "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup"));
	assert_non_null(strstr(text, "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code"));
	free(text);
	cJSON_Delete(t);
}

/* ------------------------------------------- profiles and a site's CPT file */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void profile_codesystem_and_cpt_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/cw-e2e-tx-XXXXXX";
	assert_non_null(mkdtemp(dir));
	harness_remove_at_exit(dir);
	char prof[300], cs[400], cpt[300], extra[1024];
	snprintf(prof, sizeof prof, "%s/profiles", dir);
	assert_int_equal(mkdir(prof, 0700), 0);
	snprintf(cs, sizeof cs, "%s/CodeSystem-dims.json", prof);
	write_file(cs, "{\"resourceType\":\"CodeSystem\",\"url\":\"urn:test:dims\",\"title\":\"Recovery dimensions\","
		       "\"version\":\"1.0\",\"status\":\"draft\",\"content\":\"complete\",\"concept\":[{\"code\":"
		       "\"home\",\"display\":\"Home\"}]}");
	snprintf(cpt, sizeof cpt, "%s/cpt.tsv", dir);
	write_file(cpt, "#crosswalk-codes\t1\n#version\t2025\n90832\t-\tPsychotherapy, 30 min\n");
	snprintf(extra, sizeof extra, "\"profiles_dir\":\"%s\",\"codes\":{\"cpt_file\":\"%s\"}", prof, cpt);

	struct gw saved = gw;
	assert_int_equal(gw_start(&gw, extra), 0);
	long st;
	cJSON *t = get(LOOKUP "?system=urn:test:dims&code=home&_format=xml", &st);
	assert_int_equal(st, 200);
	assert_string_equal(pstring(t, "name"), "Recovery dimensions");
	assert_string_equal(pstring(t, "version"), "1.0");
	assert_string_equal(pstring(t, "display"), "Home");
	cJSON_Delete(t);
	t = get(VALIDATE "?url=urn:test:dims&code=work", &st);
	assert_int_equal(pbool(t, "result"), 0);
	cJSON_Delete(t);
	t = get(LOOKUP "?system=http://www.ama-assn.org/go/cpt&code=90832", &st);
	assert_int_equal(st, 200);
	assert_string_equal(pstring(t, "display"), "Psychotherapy, 30 min");
	cJSON_Delete(t);
	/* This profiles folder has no codes/: no ICD-10-CM here. */
	t = get(LOOKUP "?system=" ICD "&code=F32.A", &st);
	expect_outcome(t, st, 404, "not-found", "urn:test:dims (Recovery dimensions 1.0)");
	cJSON_Delete(t);
	assert_int_equal(gw_stop(&gw, 5000), 0);
	gw = saved;

	/* A broken CPT file stops the gateway at start, naming file and line. */
	write_file(cpt, "#crosswalk-codes\t1\n90834\t-\tb\n90832\t-\ta\n");
	char out[4096] = "";
	const char *const serve[] = {NULL};
	int rc = gw_run_expect_exit(extra, serve, 15000, out, sizeof out);
	if (rc != 2 || !strstr(out, "line 3: 90834 90832"))
		print_message("# rc=%d output:\n%s\n", rc, out);
	assert_int_equal(rc, 2);
	assert_non_null(strstr(out, cpt));
	assert_non_null(strstr(out, "line 3: 90834 90832: codes must be unique and sorted"));
	/* …and so does a missing one. */
	unlink(cpt);
	rc = gw_run_expect_exit(extra, serve, 15000, out, sizeof out);
	assert_int_equal(rc, 2);
	assert_non_null(strstr(out, "cannot read"));
	unlink(cs);
	rmdir(prof);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lookup_icd10cm),
		cmocka_unit_test(lookup_in_xml),
		cmocka_unit_test(lookup_hcpcs_under_three_uris),
		cmocka_unit_test(lookup_errors),
		cmocka_unit_test(validate_code),
		cmocka_unit_test(post_parameters),
		cmocka_unit_test(listed_in_metadata),
		cmocka_unit_test(profile_codesystem_and_cpt_file),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
