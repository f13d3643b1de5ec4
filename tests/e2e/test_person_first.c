/* End-to-end tests of the person_first plugin (diagnosis_display) over HTTP:
 * POST /export/{format} and GET /export/{format}?patient=ID through the test
 * plugin tp_bundle, whose formats "bundle" and "bundle-raw" export the Bundle
 * the hooks produced as JSON (no built plugin carries a Condition's text to
 * its native output). Each mode, Z-codes, overrides, displays from the
 * ICD-10-CM pack, the per-format override, billing kept at codes, every
 * carrier of a diagnosis (Goal and CarePlan addresses, Encounter diagnosis
 * and reasons, narratives) in each mode, the person's own preference from
 * the recovery plan honoured in the recovery-plan export, and bad settings
 * refused (exit 2). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e/harness.h"

#define ICD "http://hl7.org/fhir/sid/icd-10-cm"
#define SDOHCC "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"

static char tdir[256];

/* A private plugin folder holding tp_bundle.so, made once. */
static const char *test_plugins(void)
{
	if (!tdir[0])
		harness_test_plugins(tdir, sizeof tdir, "tp_bundle", NULL);
	return tdir;
}

static void start(struct gw *g, const char *settings)
{
	const char *args[] = {"--plugins", test_plugins(), NULL};
	assert_int_equal(gw_start_args(g, settings, args), 0);
}

/* A collection Bundle: five Conditions (F20.9 with its display; F32.9 with
 * no display, so the pack gives it; F10.20; Z59.811; a strength with the
 * protective-factor category) and one Observation. */
static const char *const BUNDLE =
	"{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
	"{\"resource\":{\"resourceType\":\"Condition\",\"id\":\"c1\",\"code\":{\"coding\":[{\"system\":\"" ICD
	"\",\"code\":\"F20.9\",\"display\":\"Schizophrenia, unspecified\"}]},\"subject\":{\"reference\":\"Patient/p1\"}}},"
	"{\"resource\":{\"resourceType\":\"Condition\",\"id\":\"c2\",\"code\":{\"coding\":[{\"system\":\"" ICD
	"\",\"code\":\"F32.9\"}]},\"subject\":{\"reference\":\"Patient/p1\"}}},"
	"{\"resource\":{\"resourceType\":\"Condition\",\"id\":\"c3\",\"code\":{\"coding\":[{\"system\":\"" ICD
	"\",\"code\":\"F10.20\",\"display\":\"Alcohol dependence, uncomplicated\"}],\"text\":\"Alcohol dependence, "
	"uncomplicated\"},\"subject\":{\"reference\":\"Patient/p1\"}}},"
	"{\"resource\":{\"resourceType\":\"Condition\",\"id\":\"c4\",\"code\":{\"coding\":[{\"system\":\"" ICD
	"\",\"code\":\"Z59.811\",\"display\":\"Housing instability, housed, with risk of homelessness\"}]},"
	"\"subject\":{\"reference\":\"Patient/p1\"}}},"
	"{\"resource\":{\"resourceType\":\"Condition\",\"id\":\"c5\",\"category\":[{\"coding\":[{\"system\":\"" SDOHCC
	"\",\"code\":\"protective-factor\"}]}],\"code\":{\"coding\":[{\"system\":\"urn:example:strengths\","
	"\"code\":\"s1\",\"display\":\"Skills and talents\"}]},\"subject\":{\"reference\":\"Patient/p1\"}}},"
	"{\"resource\":{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\",\"code\":{\"coding\":[{"
	"\"system\":\"" ICD "\",\"code\":\"F20.9\",\"display\":\"Schizophrenia, unspecified\"}]}}}]}";

static cJSON *export_doc(const struct gw *g, const char *format, const char *doc, struct resp *r)
{
	const char *h[] = {"Content-Type: application/fhir+json", NULL};
	char path[100];
	snprintf(path, sizeof path, "/export/%s", format);
	assert_int_equal(http_do(g, "POST", path, h, doc, strlen(doc), r), 0);
	if (r->status != 200)
		fprintf(stderr, "# %ld %.*s\n", r->status, (int)r->len, r->body);
	assert_int_equal(r->status, 200);
	cJSON *b = cJSON_ParseWithLength(r->body, r->len);
	assert_non_null(b);
	return b;
}

static cJSON *export(const struct gw *g, const char *format, struct resp *r)
{
	return export_doc(g, format, BUNDLE, r);
}

static const cJSON *resource(const cJSON *bundle, const char *id)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(bundle, "entry")) {
		const cJSON *r = cJSON_GetObjectItem(e, "resource");
		if (!strcmp(cJSON_GetObjectItem(r, "id")->valuestring, id))
			return r;
	}
	return NULL;
}

static const char *text_of(const cJSON *bundle, const char *id)
{
	const cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(resource(bundle, id), "code"), "text");
	return cJSON_IsString(t) ? t->valuestring : NULL;
}

static const char *display_of(const cJSON *bundle, const char *id)
{
	const cJSON *c = cJSON_GetArrayItem(
		cJSON_GetObjectItem(cJSON_GetObjectItem(resource(bundle, id), "code"), "coding"), 0);
	const cJSON *d = cJSON_GetObjectItem(c, "display");
	return cJSON_IsString(d) ? d->valuestring : NULL;
}

/* Every coding of the output equals the input's: codes and displays never change. */
static void codings_unchanged(const cJSON *out)
{
	cJSON *in = cJSON_Parse(BUNDLE);
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(out, "entry")) {
		const cJSON *r = cJSON_GetObjectItem(e, "resource");
		const cJSON *orig = resource(in, cJSON_GetObjectItem(r, "id")->valuestring);
		assert_non_null(orig);
		assert_true(cJSON_Compare(cJSON_GetObjectItem(cJSON_GetObjectItem(orig, "code"), "coding"),
					  cJSON_GetObjectItem(cJSON_GetObjectItem(r, "code"), "coding"), 1));
		if (strcmp(cJSON_GetObjectItem(r, "resourceType")->valuestring, "Condition") != 0)
			assert_true(cJSON_Compare(orig, r, 1)); /* other resources untouched */
	}
	cJSON_Delete(in);
}

static void person_first_sets_text_only(void **state)
{
	(void)state;
	struct gw g;
	start(&g, "\"plugins\":{\"person_first\":{\"diagnosis_display\":\"person-first\","
		  "\"formats\":{\"bundle-raw\":\"codes\"},\"overrides\":{\"F20.9\":\"person with schizophrenia\"}}}");
	struct resp r;
	cJSON *b = export(&g, "bundle", &r);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(b, "entry")), 6);
	/* override (identity-first or own words) */
	assert_string_equal(text_of(b, "c1"), "person with schizophrenia");
	/* template, display from the ICD-10-CM pack ("Major depressive disorder, single episode, unspecified") */
	assert_string_equal(text_of(b, "c2"), "Person living with major depressive disorder, single episode");
	assert_null(display_of(b, "c2"));
	/* ICD "dependence": a moderate or severe use disorder (the table of
	 * profiles/); an existing text replaced */
	assert_string_equal(text_of(b, "c3"), "Person living with alcohol use disorder, moderate or severe");
	assert_string_equal(display_of(b, "c3"), "Alcohol dependence, uncomplicated");
	/* Z-code: a circumstance */
	assert_string_equal(text_of(b, "c4"), "Person experiencing housing instability");
	/* a strength is not a diagnosis */
	assert_null(text_of(b, "c5"));
	/* the Observation with a diagnosis code is not a Condition */
	assert_null(text_of(b, "o1"));
	assert_string_equal(display_of(b, "c1"), "Schizophrenia, unspecified");
	codings_unchanged(b);
	cJSON_Delete(b);
	resp_free(&r);

	/* per-format override: bundle-raw keeps codes */
	b = export(&g, "bundle-raw", &r);
	cJSON *in = cJSON_Parse(BUNDLE);
	assert_true(cJSON_Compare(in, b, 1));
	cJSON_Delete(in);
	cJSON_Delete(b);
	resp_free(&r);

	/* GET /export/{format}?patient=ID: the stored Condition, rendered */
	const char *fh[] = {"Content-Type: application/fhir+json", NULL};
	const char *pat = "{\"resourceType\":\"Patient\",\"id\":\"p1\"}";
	assert_int_equal(http_do(&g, "PUT", "/fhir/Patient/p1", fh, pat, strlen(pat), &r), 0);
	assert_true(r.status == 200 || r.status == 201);
	resp_free(&r);
	const char *cond = "{\"resourceType\":\"Condition\",\"id\":\"c9\",\"code\":{\"coding\":[{\"system\":\"" ICD
			   "\",\"code\":\"Z56.0\",\"display\":\"Unemployment, unspecified\"}]},"
			   "\"subject\":{\"reference\":\"Patient/p1\"}}";
	assert_int_equal(http_do(&g, "PUT", "/fhir/Condition/c9", fh, cond, strlen(cond), &r), 0);
	assert_true(r.status == 200 || r.status == 201);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/export/bundle?patient=p1", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	b = cJSON_ParseWithLength(r.body, r.len);
	assert_non_null(b);
	assert_string_equal(text_of(b, "c9"), "Person experiencing unemployment");
	assert_string_equal(display_of(b, "c9"), "Unemployment, unspecified");
	cJSON_Delete(b);
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 15000), 0);
}

static void hidden_withholds_conditions(void **state)
{
	(void)state;
	struct gw g;
	start(&g, "\"plugins\":{\"person_first\":{\"diagnosis_display\":\"hidden\",\"formats\":{\"bundle-raw\":"
		  "\"person-first\"}}}");
	struct resp r;
	cJSON *b = export(&g, "bundle", &r);
	/* four diagnoses withheld; the strength and the Observation stay */
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(b, "entry")), 2);
	assert_non_null(resource(b, "c5"));
	assert_non_null(resource(b, "o1"));
	assert_null(resource(b, "c1"));
	codings_unchanged(b);
	char buf[512];
	assert_string_equal(resp_header(&r, "X-Crosswalk-Warnings", buf, sizeof buf), "1");
	assert_non_null(resp_header(&r, "X-Crosswalk-Warning", buf, sizeof buf));
	assert_non_null(strstr(buf, "4 diagnoses (Condition) were withheld by configuration"));
	cJSON_Delete(b);
	resp_free(&r);
	/* per-format override */
	b = export(&g, "bundle-raw", &r);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(b, "entry")), 6);
	assert_string_equal(text_of(b, "c1"), "Person living with schizophrenia");
	assert_null(resp_header(&r, "X-Crosswalk-Warnings", buf, sizeof buf));
	cJSON_Delete(b);
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 15000), 0);
}

/* A person's record with a diagnosis in every carrier: the Condition (with
 * a narrative), a Goal and a CarePlan addressing it, an Encounter with it as
 * diagnosis, reasonReference and reasonCode, and a Goal addressing the
 * person's own words (no Condition). */
static const char *const CARRIERS =
	"{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
	"{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"p1\"}},"
	"{\"resource\":{\"resourceType\":\"Condition\",\"id\":\"c1\",\"text\":{\"status\":\"generated\",\"div\":"
	"\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">Schizophrenia, unspecified</div>\"},\"code\":{\"coding\":[{"
	"\"system\":\"" ICD "\",\"code\":\"F20.9\",\"display\":\"Schizophrenia, unspecified\"}]},"
	"\"subject\":{\"reference\":\"Patient/p1\"}}},"
	"{\"resource\":{\"resourceType\":\"Goal\",\"id\":\"g1\",\"text\":{\"status\":\"generated\",\"div\":"
	"\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">Goal for schizophrenia</div>\"},\"lifecycleStatus\":"
	"\"active\",\"description\":{\"text\":\"Sleep well\"},\"subject\":{\"reference\":\"Patient/p1\"},"
	"\"addresses\":[{\"reference\":\"Condition/c1\",\"display\":\"Schizophrenia, unspecified\"},"
	"{\"display\":\"late nights\"}]}},"
	"{\"resource\":{\"resourceType\":\"CarePlan\",\"id\":\"cp1\",\"status\":\"active\",\"intent\":\"plan\","
	"\"subject\":{\"reference\":\"Patient/p1\"},\"addresses\":[{\"reference\":\"Condition/c1\","
	"\"display\":\"Schizophrenia, unspecified\"}]}},"
	"{\"resource\":{\"resourceType\":\"Encounter\",\"id\":\"e1\",\"status\":\"finished\",\"class\":{\"system\":"
	"\"http://terminology.hl7.org/CodeSystem/v3-ActCode\",\"code\":\"AMB\"},\"subject\":{\"reference\":"
	"\"Patient/p1\"},\"reasonCode\":[{\"coding\":[{\"system\":\"" ICD "\",\"code\":\"F20.9\"}],\"text\":"
	"\"Schizophrenia\"},{\"text\":\"wants company\"}],\"reasonReference\":[{\"reference\":\"Condition/c1\","
	"\"display\":\"Schizophrenia, unspecified\"}],\"diagnosis\":[{\"condition\":{\"reference\":\"Condition/c1\","
	"\"display\":\"Schizophrenia, unspecified\"},\"rank\":1}]}}]}";

static const char *sget(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The diagnosis shows nowhere in hidden mode, and as the same person-first
 * phrase everywhere in person-first mode; what is not a diagnosis stays. */
static void every_carrier_follows_the_mode(void **state)
{
	(void)state;
	struct gw g;
	start(&g, "\"plugins\":{\"person_first\":{\"diagnosis_display\":\"hidden\",\"formats\":{\"bundle-raw\":"
		  "\"person-first\"}}}");
	struct resp r;
	cJSON *b = export_doc(&g, "bundle", CARRIERS, &r);
	char *text = cJSON_PrintUnformatted(b);
	assert_null(strstr(text, "chizophrenia")); /* nowhere: no carrier, no narrative */
	free(text);
	assert_null(resource(b, "c1"));
	const cJSON *goal = resource(b, "g1");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(goal, "addresses")), 1);
	assert_string_equal(sget(cJSON_GetArrayItem(cJSON_GetObjectItem(goal, "addresses"), 0), "display"),
			    "late nights");
	assert_null(cJSON_GetObjectItem(resource(b, "cp1"), "addresses"));
	const cJSON *enc = resource(b, "e1");
	assert_null(cJSON_GetObjectItem(enc, "diagnosis"));
	assert_null(cJSON_GetObjectItem(enc, "reasonReference"));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(enc, "reasonCode")), 1);
	char buf[512];
	assert_non_null(resp_header(&r, "X-Crosswalk-Warning", buf, sizeof buf));
	assert_non_null(strstr(buf, "1 diagnosis (Condition) was withheld by configuration"));
	assert_non_null(strstr(buf, "and 5 references or reasons to diagnoses in other resources"));
	cJSON_Delete(b);
	resp_free(&r);

	b = export_doc(&g, "bundle-raw", CARRIERS, &r);
	const char *phrase = "Person living with schizophrenia";
	goal = resource(b, "g1");
	assert_string_equal(text_of(b, "c1"), phrase);
	assert_null(cJSON_GetObjectItem(resource(b, "c1"), "text"));
	assert_null(cJSON_GetObjectItem(goal, "text"));
	assert_string_equal(sget(cJSON_GetArrayItem(cJSON_GetObjectItem(goal, "addresses"), 0), "display"), phrase);
	assert_string_equal(sget(cJSON_GetArrayItem(cJSON_GetObjectItem(goal, "addresses"), 1), "display"),
			    "late nights");
	assert_string_equal(
		sget(cJSON_GetArrayItem(cJSON_GetObjectItem(resource(b, "cp1"), "addresses"), 0), "display"), phrase);
	enc = resource(b, "e1");
	assert_string_equal(
		sget(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(enc, "diagnosis"), 0), "condition"),
		     "display"),
		phrase);
	assert_string_equal(sget(cJSON_GetArrayItem(cJSON_GetObjectItem(enc, "reasonReference"), 0), "display"),
			    phrase);
	assert_string_equal(sget(cJSON_GetArrayItem(cJSON_GetObjectItem(enc, "reasonCode"), 0), "text"), phrase);
	assert_string_equal(sget(cJSON_GetArrayItem(cJSON_GetObjectItem(enc, "reasonCode"), 1), "text"),
			    "wants company");
	cJSON_Delete(b);
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 15000), 0);
}

/* A recovery plan carries the person's preference; with no setting at all
 * (person-first is the recovery formats' default) every export about the
 * person honours it, also after a thin record of another format. */
static void the_persons_preference_is_honoured(void **state)
{
	(void)state;
	struct gw g;
	start(&g, NULL);
	const char *json[] = {"Content-Type: application/json", NULL},
		   *fh[] = {"Content-Type: application/fhir+json", NULL};
	const char *plan =
		"{\"version\":1,\"person\":{\"identifier\":{\"system\":\"https://recovery.example.org/people\","
		"\"value\":\"P-L\"},\"diagnosis_language\":{\"style\":\"identity-first\",\"words\":[{\"code\":\"F20."
		"9\","
		"\"text\":\"hearing voices\"}]}},\"goals\":[{\"identifier\":{\"system\":\"urn:example:goals\","
		"\"value\":\"g\"},\"dimension\":\"health\",\"words\":\"Sleep well.\",\"status\":\"active\"}]}";
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/ingest/recovery-plan", json, plan, strlen(plan), &r), 0);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	const char *outcomes = "{\"format\":\"outcomes\",\"version\":1,\"people\":[{\"identifier\":{\"system\":"
			       "\"https://recovery.example.org/people\",\"value\":\"P-L\"},\"administrations\":[{"
			       "\"identifier\":{\"system\":\"urn:example:admin\",\"value\":\"a\"},\"instrument\":"
			       "\"phq-9\",\"date\":\"2024-03-01\",\"items\":[1,2,1,0,3,1,2,0,0]}]}]}";
	assert_int_equal(http_do(&g, "POST", "/ingest/outcomes", json, outcomes, strlen(outcomes), &r), 0);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	/* the EHR's Goal and Conditions for the same person */
	assert_int_equal(http_do(&g, "GET", "/fhir/Patient?identifier=https://recovery.example.org/people%7CP-L", NULL,
				 NULL, 0, &r),
			 0);
	cJSON *found = cJSON_ParseWithLength(r.body, r.len);
	resp_free(&r);
	const char *pid =
		sget(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(found, "entry"), 0), "resource"), "id");
	assert_non_null(pid);
	char body[2048], path[200];
	const char *conds[][2] = {{"cx1", "F20.9"}, {"cx2", "F10.20"}};
	for (int i = 0; i < 2; i++) {
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Condition\",\"id\":\"%s\",\"code\":{\"coding\":[{\"system\":\"" ICD
			 "\",\"code\":\"%s\"}]},\"subject\":{\"reference\":\"Patient/%s\"}}",
			 conds[i][0], conds[i][1], pid);
		snprintf(path, sizeof path, "/fhir/Condition/%s", conds[i][0]);
		assert_int_equal(http_do(&g, "PUT", path, fh, body, strlen(body), &r), 0);
		assert_int_equal(r.status, 201);
		resp_free(&r);
	}
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Goal\",\"id\":\"gx\",\"identifier\":[{\"system\":\"urn:example:ehr-goals\","
		 "\"value\":"
		 "\"gx\"}],\"lifecycleStatus\":\"active\",\"category\":[{\"coding\":[{\"system\":"
		 "\"https://crosswalk.example.org/fhir/CodeSystem/recovery-dimension\",\"code\":\"health\"}]}],"
		 "\"description\":{\"text\":\"Fewer bad days\"},\"subject\":{\"reference\":\"Patient/%s\"},"
		 "\"expressedBy\":{\"reference\":\"Patient/%s\"},\"addresses\":[{\"reference\":\"Condition/cx1\","
		 "\"display\":\"Schizophrenia, unspecified\"},{\"reference\":\"Condition/cx2\",\"display\":\"Alcohol "
		 "dependence, uncomplicated\"}]}",
		 pid, pid);
	assert_int_equal(http_do(&g, "PUT", "/fhir/Goal/gx", fh, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	snprintf(path, sizeof path, "/export/recovery-plan?patient=%s", pid);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *doc = cJSON_ParseWithLength(r.body, r.len);
	resp_free(&r);
	/* the preference travels with the plan, and names the diagnoses */
	const cJSON *lang = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "person"), "diagnosis_language");
	assert_string_equal(sget(lang, "style"), "identity-first");
	const cJSON *gl, *addresses = NULL;
	cJSON_ArrayForEach(gl, cJSON_GetObjectItem(doc, "goals")) if (!strcmp(sget(gl, "words"), "Fewer bad days"))
		addresses = cJSON_GetObjectItem(gl, "addresses");
	assert_non_null(addresses);
	assert_int_equal(cJSON_GetArraySize(addresses), 2);
	assert_string_equal(cJSON_GetArrayItem(addresses, 0)->valuestring, "hearing voices");
	assert_string_equal(cJSON_GetArrayItem(addresses, 1)->valuestring, "Alcohol use disorder, moderate or severe");
	cJSON_Delete(doc);
	cJSON_Delete(found);
	assert_int_equal(gw_stop(&g, 15000), 0);
}

static void codes_by_default(void **state)
{
	(void)state;
	struct gw g;
	start(&g, NULL);
	struct resp r;
	cJSON *b = export(&g, "bundle", &r);
	cJSON *in = cJSON_Parse(BUNDLE);
	assert_true(cJSON_Compare(in, b, 1));
	cJSON_Delete(in);
	cJSON_Delete(b);
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 15000), 0);
}

static void expect_exit2(const char *settings, const char *reason)
{
	static char out[65536];
	const char *args[] = {"--plugins", test_plugins(), NULL};
	int rc = gw_run_expect_exit(settings, args, 15000, out, sizeof out);
	if (rc != 2 || !strstr(out, reason))
		fprintf(stderr, "# rc=%d output:\n%s\n", rc, out);
	assert_int_equal(rc, 2);
	assert_non_null(strstr(out, "person_first"));
	assert_non_null(strstr(out, reason));
}

static void bad_settings_refused(void **state)
{
	(void)state;
	expect_exit2("\"plugins\":{\"person_first\":{\"diagnosis_display\":\"words\"}}",
		     "must be \\\"codes\\\", \\\"person-first\\\" or \\\"hidden\\\"");
	expect_exit2("\"plugins\":{\"person_first\":{\"display\":\"codes\"}}", "unknown setting 'display'");
	expect_exit2("\"plugins\":{\"person_first\":{\"formats\":{\"bundle\":\"plain\"}}}", "format 'bundle'");
	expect_exit2("\"plugins\":{\"person_first\":{\"formats\":{\"billing\":\"person-first\"}}}",
		     "billing exports keep codes");
	expect_exit2("\"plugins\":{\"person_first\":{\"overrides\":{\"F20.9\":\"\"}}}", "code 'F20.9'");
	expect_exit2("\"plugins\":{\"person_first\":{\"overrides\":{\"F20.9\":7}}}", "code 'F20.9'");
	expect_exit2("\"plugins\":{\"person_first\":{\"overrides\":{\"F 20\":\"x\"}}}", "a code must be");
	expect_exit2("\"plugins\":{\"person_first\":{\"overrides\":[\"F20.9\"]}}", "must be an object");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(person_first_sets_text_only),
		cmocka_unit_test(hidden_withholds_conditions),
		cmocka_unit_test(every_carrier_follows_the_mode),
		cmocka_unit_test(the_persons_preference_is_honoured),
		cmocka_unit_test(codes_by_default),
		cmocka_unit_test(bad_settings_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
