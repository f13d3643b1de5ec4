/* End-to-end tests of consent at every egress (docs/privacy.md): real
 * clients of auth.clients with access tokens signed by the gateway's own
 * key. A Part 2 program writes a peer-support encounter and an F11.20
 * diagnosis; a billing client without consent sees neither through REST
 * (read, search, includes, history), the export, the billing extract or
 * Claim/$build, where the encounter is listed as not billed for
 * no-part2-consent; once a Consent permits HPAYMT to the payer the same
 * requests include them, labelled, with the redisclosure notice. The
 * upstream (the real Medplum server) receives Part 2 data only after a
 * Consent permits it: before, the outbox holds it as a dead letter for
 * no-part2-consent, and $retry sends it. Labels survive an update or a
 * patch that leaves them out. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e2e/harness.h"

#define ACT "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#define CONF "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
#define ICD "http://hl7.org/fhir/sid/icd-10-cm"
#define HCPCS "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
#define NOTICE_START "This record which has been disclosed to you is protected by Federal confidentiality rules"
#define DUMMY_FP "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static const char *sget(const cJSON *o, const char *k)
{
	const cJSON *v = get(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool has_label(const cJSON *r, const char *system, const char *code)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, get(get(r, "meta"), "security"))
	{
		if (sget(c, "system") && !strcmp(sget(c, "system"), system) && sget(c, "code") &&
		    !strcmp(sget(c, "code"), code))
			return true;
	}
	return false;
}

static const char *clients_json =
	"\"auth\":{\"clients\":["
	"{\"client_id\":\"program\",\"purpose\":\"treatment\",\"part2_program\":true,\"scopes\":\"system/*.cruds\","
	"\"tls_fingerprint\":\"" DUMMY_FP "\"},"
	"{\"client_id\":\"biller\",\"purpose\":\"billing\",\"organization\":\"Organization/payer-1\","
	"\"scopes\":\"system/*.cruds\",\"tls_fingerprint\":\"" DUMMY_FP "\"}]}";

static char *token_for(const struct gw *g, const char *client) { return gw_token(g, client, "system/*.cruds"); }

struct who {
	const struct gw *g;
	char *token;
};

/* The requests `as` sends are numbered: the last one's X-Request-Id is
 * consent-NNN with NNN = steps, so each one's access records can be found. */
static int steps;

static long as(const struct who *w, const char *method, const char *path, const char *body, const char *accept,
	       struct resp *r)
{
	char auth[2048], acc[128], rid[64];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", w->token);
	snprintf(acc, sizeof acc, "Accept: %s", accept ? accept : "application/fhir+json");
	snprintf(rid, sizeof rid, "X-Request-Id: consent-%03d", ++steps);
	const char *h[] = {auth, acc, "Content-Type: application/fhir+json", rid, NULL};
	assert_int_equal(http_do(w->g, method, path, h, body, body ? strlen(body) : 0, r), 0);
	return r->status;
}

static cJSON *json_as(const struct who *w, const char *method, const char *path, const char *body, long want,
		      char *notice, size_t nlen)
{
	struct resp r;
	long st = as(w, method, path, body, !strncmp(path, "/export/", 8) ? "application/json" : NULL, &r);
	if (st != want)
		fprintf(stderr, "# %s %s: %ld %s\n", method, path, st, r.body ? r.body : "");
	assert_int_equal(st, want);
	if (notice) {
		notice[0] = '\0';
		resp_header(&r, "X-Redisclosure-Notice", notice, nlen);
	}
	cJSON *t = r.len ? cJSON_Parse(r.body) : NULL;
	resp_free(&r);
	return t;
}

static int count_type(const cJSON *bundle, const char *type)
{
	int n = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, get(bundle, "entry"))
	{
		const char *rt = sget(get(e, "resource"), "resourceType");
		n += rt && !strcmp(rt, type);
	}
	return n;
}

static bool bundle_notice(const cJSON *b)
{
	const cJSON *x;
	cJSON_ArrayForEach(x, get(get(b, "meta"), "extension"))
	{
		const char *v = sget(x, "valueString");
		if (sget(x, "url") && strstr(sget(x, "url"), "redisclosure-notice") && v && strstr(v, NOTICE_START))
			return true;
	}
	return false;
}

#define CONSENT_SCOPE_C1                                                                                            \
	"Disclosed with the patient's consent (Consent/c1), which permits disclosure to Organization/payer-1, for " \
	"HPAYMT, with no time limit, of all kinds of records (any sensitivity)."

/* The permitting Consent a Bundle names on its meta (42 CFR 2.32(b)): its
 * explanation of scope, or NULL. */
static const char *bundle_consent(const cJSON *b, const char *ref)
{
	const cJSON *x;
	cJSON_ArrayForEach(x, get(get(b, "meta"), "extension"))
	{
		const cJSON *v = get(x, "valueReference");
		if (sget(x, "url") && strstr(sget(x, "url"), "/disclosure-consent") && sget(v, "reference") &&
		    !strcmp(sget(v, "reference"), ref))
			return sget(v, "display");
	}
	return NULL;
}

/* The X-Disclosure-Consent header of path as w sees it ("" when none). */
static void consent_header(const struct who *w, const char *path, char *out, size_t n)
{
	struct resp r;
	as(w, "GET", path, NULL, !strncmp(path, "/export/", 8) ? "application/json" : NULL, &r);
	out[0] = '\0';
	resp_header(&r, "X-Disclosure-Consent", out, n);
	resp_free(&r);
}

static const char *patient_json =
	"{\"resourceType\":\"Patient\",\"id\":\"p1\",\"identifier\":[{\"system\":"
	"\"https://recovery.example.org/people\",\"value\":\"P-1\"}],\"name\":[{\"family\":\"Doe\"}]}";
static const char *condition_json =
	"{\"resourceType\":\"Condition\",\"id\":\"dx1\",\"subject\":{\"reference\":\"Patient/p1\"},"
	"\"encounter\":{\"reference\":\"Encounter/e1\"},"
	"\"code\":{\"coding\":[{\"system\":\"" ICD "\",\"code\":\"F11.20\"}]}}";
static const char *encounter_json =
	"{\"resourceType\":\"Encounter\",\"id\":\"e1\",\"status\":\"finished\","
	"\"class\":{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActCode\",\"code\":\"AMB\"},"
	"\"type\":[{\"coding\":[{\"system\":\"" HCPCS "\",\"code\":\"H0038\"}]}],"
	"\"subject\":{\"reference\":\"Patient/p1\"},\"period\":{\"start\":\"2025-11-13T10:00:00Z\","
	"\"end\":\"2025-11-13T11:00:00Z\"},\"diagnosis\":[{\"condition\":{\"reference\":\"Condition/dx1\"}}]}";
static const char *consent_json =
	"{\"resourceType\":\"Consent\",\"id\":\"c1\",\"status\":\"active\","
	"\"scope\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/consentscope\",\"code\":"
	"\"patient-privacy\"}]},\"category\":[{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"59284-0\"}]}],"
	"\"patient\":{\"reference\":\"Patient/p1\"},"
	"\"policyRule\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/"
	"v3-ActCode\",\"code\":\"OPTIN\"}]},"
	"\"provision\":{\"type\":\"permit\",\"actor\":[{\"role\":{\"coding\":[{\"system\":"
	"\"http://terminology.hl7.org/CodeSystem/v3-ParticipationType\",\"code\":\"IRCP\"}]},"
	"\"reference\":{\"reference\":\"Organization/payer-1\"}}],"
	"\"purpose\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActReason\",\"code\":\"HPAYMT\"}]}}";

/* Did the billing extract list e1 as not billed for no-part2-consent? */
static bool extract_withholds_e1(const cJSON *x)
{
	const cJSON *nb;
	cJSON_ArrayForEach(nb, get(x, "not_billed"))
	{
		if (!sget(nb, "encounter") || strcmp(sget(nb, "encounter"), "e1") != 0)
			continue;
		const cJSON *r;
		cJSON_ArrayForEach(r, get(nb, "reasons"))
		{
			if (sget(r, "reason") && !strcmp(sget(r, "reason"), "no-part2-consent"))
				return true;
		}
	}
	return false;
}

static bool mentions_e1(const cJSON *x)
{
	char *t = cJSON_PrintUnformatted(x);
	bool m = t && strstr(t, "\"e1\"");
	free(t);
	return m;
}

/* Whether the access record ev is one of request number step. */
static bool record_of(const cJSON *ev, int step)
{
	char rid[32];
	snprintf(rid, sizeof rid, "consent-%03d", step);
	const cJSON *en;
	cJSON_ArrayForEach(en, get(ev, "entity"))
	{
		const char *v = sget(get(get(en, "what"), "identifier"), "value");
		if (v && !strcmp(v, rid))
			return true;
	}
	return false;
}

/* Whether ev has the subtype code sub and, when ref is not NULL, an entity
 * whose reference starts with ref. */
static bool record_is(const cJSON *ev, const char *sub, const char *ref)
{
	bool has_sub = false, has_ref = !ref;
	const cJSON *c;
	cJSON_ArrayForEach(c, get(ev, "subtype")) has_sub |= sget(c, "code") && !strcmp(sget(c, "code"), sub);
	cJSON_ArrayForEach(c, get(ev, "entity"))
	{
		const char *r = sget(get(c, "what"), "reference");
		has_ref |= ref && r && !strncmp(r, ref, strlen(ref));
	}
	return has_sub && has_ref;
}

/* The display of ev's requesting agent (the client), or "". */
static const char *requestor(const cJSON *ev)
{
	const cJSON *a;
	cJSON_ArrayForEach(a, get(ev, "agent"))
	{
		if (cJSON_IsTrue(get(a, "requestor")))
			return sget(get(a, "who"), "display") ? sget(get(a, "who"), "display") : "";
	}
	return "";
}

/* Request number step left exactly n access records in events, each naming
 * the client who as its requestor, and the one of subtype sub (about ref,
 * when not NULL) has the outcome given (FHIR AuditEvent.outcome: "0"
 * success, "4" minor failure). */
static void expect_records(const cJSON *events, int step, int n, const char *who, const char *sub, const char *ref,
			   const char *outcome)
{
	int found = 0, matching = 0;
	const cJSON *ev;
	cJSON_ArrayForEach(ev, get(events, "entry"))
	{
		const cJSON *r = get(ev, "resource");
		if (!record_of(r, step))
			continue;
		found++;
		if (strcmp(requestor(r), who))
			fail_msg("request consent-%03d: a record names %s, not %s", step, requestor(r), who);
		if (record_is(r, sub, ref)) {
			matching++;
			if (strcmp(sget(r, "outcome"), outcome))
				fail_msg("request consent-%03d: the %s record's outcome is %s, not %s", step, sub,
					 sget(r, "outcome"), outcome);
		}
	}
	if (found != n || matching != 1)
		fail_msg("request consent-%03d: %d access records (%d of subtype %s about %s), not %d (one)", step,
			 found, matching, sub, ref ? ref : "-", n);
}

/* Every request `as` sent up to step last left at least one access record
 * in events, and every record of events is valid R4: $validate, as w,
 * answers it without an error or a warning. */
static void expect_valid_records(const struct who *w, const cJSON *events, int last)
{
	for (int step = 1; step <= last; step++) {
		bool any = false;
		const cJSON *ev;
		cJSON_ArrayForEach(ev, get(events, "entry")) any |= record_of(get(ev, "resource"), step);
		if (!any)
			fail_msg("request consent-%03d left no access record", step);
	}
	int n = 0;
	const cJSON *ev;
	cJSON_ArrayForEach(ev, get(events, "entry"))
	{
		char *text = cJSON_PrintUnformatted(get(ev, "resource"));
		struct resp r;
		as(w, "POST", "/fhir/$validate", text, NULL, &r);
		if (r.status != 200 || strstr(r.body, "\"error\"") || strstr(r.body, "\"warning\""))
			fail_msg("not valid R4: %s\n%s", r.body, text);
		resp_free(&r);
		free(text);
		n++;
	}
	assert_true(n >= last);
}

/* The issue's scenario, over HTTP with real clients. */
static void part2_data_leaves_only_with_consent(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, clients_json), 0);
	struct who program = {&g, token_for(&g, "program")}, biller = {&g, token_for(&g, "biller")};
	char notice[4096];

	/* the Part 2 program writes; everything it writes is 42CFRPart2 */
	cJSON_Delete(json_as(&program, "PUT", "/fhir/Patient/p1", patient_json, 201, NULL, 0));
	cJSON_Delete(json_as(&program, "PUT", "/fhir/Encounter/e1", encounter_json, 201, NULL, 0));
	int s_write = steps;
	cJSON_Delete(json_as(&program, "PUT", "/fhir/Condition/dx1", condition_json, 201, NULL, 0));
	/* it reads its own records back, labelled, with the notice */
	cJSON *e = json_as(&program, "GET", "/fhir/Encounter/e1", NULL, 200, notice, sizeof notice);
	assert_true(has_label(e, ACT, "42CFRPart2"));
	assert_true(has_label(e, ACT, "ETH"));
	assert_non_null(strstr(notice, NOTICE_START));
	cJSON_Delete(e);

	/* the billing client without consent sees nothing anywhere */
	cJSON_Delete(json_as(&biller, "GET", "/fhir/Encounter/e1", NULL, 404, NULL, 0));
	int s_withheld = steps;
	cJSON_Delete(json_as(&biller, "GET", "/fhir/Condition/dx1", NULL, 404, NULL, 0));
	cJSON_Delete(json_as(&biller, "GET", "/fhir/Encounter/e1/_history/1", NULL, 404, NULL, 0));
	/* each withholding is on the access record (docs/audit.md), durable
	 * before the 404 left: read with the admin scope */
	struct who auditor = {&g, gw_token(&g, "program", "system/*.cruds system/crosswalk.admin")};
	cJSON *ae = json_as(&auditor, "GET", "/fhir/AuditEvent?_count=1000", NULL, 200, NULL, 0);
	char *aet = cJSON_PrintUnformatted(ae);
	assert_non_null(strstr(aet, "consent-withheld"));
	assert_non_null(strstr(aet, "\"reference\":\"Encounter/e1\""));
	assert_non_null(strstr(aet, "\"reference\":\"Condition/dx1\""));
	free(aet);
	cJSON_Delete(ae);
	free(auditor.token);
	cJSON *b = json_as(&biller, "GET", "/fhir/Encounter?subject=Patient/p1&_include=Encounter:diagnosis", NULL, 200,
			   notice, sizeof notice);
	int s_search_withheld = steps;
	assert_int_equal(count_type(b, "Encounter"), 0);
	assert_int_equal(count_type(b, "Condition"), 0);
	assert_int_equal((int)get(b, "total")->valuedouble, 0);
	assert_string_equal(notice, "");
	assert_null(bundle_consent(b, "Consent/c1"));
	cJSON_Delete(b);
	b = json_as(&biller, "GET", "/fhir/Condition?_revinclude=Encounter:diagnosis", NULL, 200, NULL, 0);
	assert_false(mentions_e1(b));
	cJSON_Delete(b);
	b = json_as(&biller, "GET", "/fhir/Encounter/e1/_history", NULL, 200, NULL, 0);
	assert_int_equal(count_type(b, "Encounter"), 0);
	cJSON_Delete(b);
	b = json_as(&biller, "GET", "/fhir/_history", NULL, 200, NULL, 0);
	assert_int_equal(count_type(b, "Encounter") + count_type(b, "Condition") + count_type(b, "Patient"), 0);
	cJSON_Delete(b);
	/* the extract lists the encounter as withheld, with nothing of it */
	cJSON *x = json_as(&biller, "GET", "/export/billing?from=2025-11-01&to=2025-11-30", NULL, 200, notice,
			   sizeof notice);
	int s_extract_withheld = steps;
	assert_true(extract_withholds_e1(x));
	assert_int_equal(cJSON_GetArraySize(get(x, "lines")), 0);
	char *text = cJSON_PrintUnformatted(x);
	assert_null(strstr(text, "F11.20"));
	assert_null(strstr(text, "H0038"));
	free(text);
	assert_string_equal(notice, "");
	assert_null(get(x, "consents"));
	assert_null(get(x, "notice"));
	cJSON_Delete(x);
	/* Claim/$build from the store says the same */
	const char *params = "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"encounter\","
			     "\"valueReference\":{\"reference\":\"Encounter/e1\"}}]}";
	b = json_as(&biller, "POST", "/fhir/Claim/$build", params, 200, NULL, 0);
	assert_int_equal(count_type(b, "Claim"), 0);
	int s_build_withheld = steps;
	text = cJSON_PrintUnformatted(b);
	assert_non_null(strstr(text, "no-part2-consent"));
	assert_null(strstr(text, "F11.20"));
	free(text);
	cJSON_Delete(b);

	/* a Consent permitting payment to the payer */
	cJSON_Delete(json_as(&program, "PUT", "/fhir/Consent/c1", consent_json, 201, NULL, 0));
	int s_consent = steps;

	e = json_as(&biller, "GET", "/fhir/Encounter/e1", NULL, 200, notice, sizeof notice);
	int s_read = steps;
	assert_true(has_label(e, ACT, "42CFRPart2"));
	assert_non_null(strstr(notice, NOTICE_START));
	cJSON_Delete(e);
	b = json_as(&biller, "GET", "/fhir/Encounter?subject=Patient/p1&_include=Encounter:diagnosis", NULL, 200,
		    notice, sizeof notice);
	int s_search = steps;
	assert_int_equal(count_type(b, "Encounter"), 1);
	assert_int_equal(count_type(b, "Condition"), 1);
	assert_true(bundle_notice(b));
	assert_non_null(strstr(notice, NOTICE_START));
	/* and names the Consent that permitted it, with its scope */
	assert_non_null(bundle_consent(b, "Consent/c1"));
	assert_string_equal(bundle_consent(b, "Consent/c1"), CONSENT_SCOPE_C1);
	cJSON_Delete(b);
	char hdr[2048];
	consent_header(&biller, "/fhir/Encounter?subject=Patient/p1", hdr, sizeof hdr);
	assert_string_equal(hdr, "Consent/c1; " CONSENT_SCOPE_C1);
	consent_header(&biller, "/fhir/Encounter/e1", hdr, sizeof hdr);
	assert_string_equal(hdr, "Consent/c1; " CONSENT_SCOPE_C1);
	consent_header(&biller, "/export/billing?from=2025-11-01&to=2025-11-30", hdr, sizeof hdr);
	assert_string_equal(hdr, "Consent/c1; " CONSENT_SCOPE_C1);
	/* the program reads its own records: no Consent is needed, none named */
	consent_header(&program, "/fhir/Encounter/e1", hdr, sizeof hdr);
	assert_string_equal(hdr, "");
	x = json_as(&biller, "GET", "/export/billing?from=2025-11-01&to=2025-11-30", NULL, 200, notice, sizeof notice);
	int s_extract = steps;
	assert_false(extract_withholds_e1(x));
	assert_true(mentions_e1(x));
	assert_non_null(strstr(notice, NOTICE_START));
	assert_non_null(strstr(sget(x, "notice"), NOTICE_START));
	assert_string_equal(sget(get(x, "consents")->child, "reference"), "Consent/c1");
	assert_string_equal(sget(get(x, "consents")->child, "scope"), CONSENT_SCOPE_C1);
	cJSON_Delete(x);
	b = json_as(&biller, "POST", "/fhir/Claim/$build", params, 200, notice, sizeof notice);
	int s_build = steps;
	text = cJSON_PrintUnformatted(b);
	assert_null(strstr(text, "no-part2-consent"));
	free(text);
	/* the Claims built from what the Consent permitted name it too */
	/* (what it built from was 42CFRPart2 data: the notice goes with it) */
	assert_non_null(strstr(notice, NOTICE_START));
	assert_non_null(bundle_consent(b, "Consent/c1"));
	assert_string_equal(bundle_consent(b, "Consent/c1"), CONSENT_SCOPE_C1);
	cJSON_Delete(b);
	struct resp br;
	as(&biller, "POST", "/fhir/Claim/$build", params, NULL, &br);
	assert_int_equal(br.status, 200);
	hdr[0] = '\0';
	resp_header(&br, "X-Disclosure-Consent", hdr, sizeof hdr);
	resp_free(&br);
	assert_string_equal(hdr, "Consent/c1; " CONSENT_SCOPE_C1);
	/* the program builds from its own records: no Consent is named */
	b = json_as(&program, "POST", "/fhir/Claim/$build", params, 200, NULL, 0);
	assert_null(bundle_consent(b, "Consent/c1"));
	cJSON_Delete(b);

	/* every request left its access records, each valid R4 */
	int last = steps;
	struct who admin = {&g, gw_token(&g, "program", "system/*.cruds system/crosswalk.admin")};
	cJSON *events = json_as(&admin, "GET", "/fhir/AuditEvent?_count=1000", NULL, 200, NULL, 0);
	assert_int_equal(cJSON_GetArraySize(get(events, "entry")), (int)get(events, "total")->valuedouble);
	/* without the Consent: what was asked, and what was withheld from it */
	expect_records(events, s_write, 1, "program", "update", "Encounter/e1", "0");
	expect_records(events, s_withheld, 2, "biller", "read", "Encounter/e1", "4");
	expect_records(events, s_withheld, 2, "biller", "consent-withheld", "Encounter/e1", "0");
	expect_records(events, s_search_withheld, 2, "biller", "search-type", NULL, "0");
	expect_records(events, s_search_withheld, 2, "biller", "consent-withheld", "Encounter/e1", "0");
	expect_records(events, s_extract_withheld, 2, "biller", "export", NULL, "0");
	expect_records(events, s_extract_withheld, 2, "biller", "consent-withheld", "Encounter/e1", "0");
	expect_records(events, s_build_withheld, 2, "biller", "$build", NULL, "0");
	expect_records(events, s_build_withheld, 2, "biller", "consent-withheld", "Encounter/e1", "0");
	/* the Consent, then the same requests: nothing withheld */
	expect_records(events, s_consent, 1, "program", "update", "Consent/c1", "0");
	expect_records(events, s_read, 1, "biller", "read", "Encounter/e1", "0");
	expect_records(events, s_search, 1, "biller", "search-type", "Condition/dx1", "0");
	expect_records(events, s_extract, 1, "biller", "export", NULL, "0");
	expect_records(events, s_build, 1, "biller", "$build", NULL, "0");
	expect_valid_records(&admin, events, last);
	cJSON_Delete(events);
	free(admin.token);

	free(program.token);
	free(biller.token);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* A client cannot drop a label by updating or patching. */
static void labels_survive_updates(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, NULL), 0);
	struct resp r;
	const char *h[] = {"Content-Type: application/fhir+json", NULL};
	const char *sud = "{\"resourceType\":\"Condition\",\"id\":\"dx9\",\"subject\":{\"reference\":\"Patient/p9\"},"
			  "\"code\":{\"coding\":[{\"system\":\"" ICD "\",\"code\":\"F11.20\"}]}}";
	const char *other = "{\"resourceType\":\"Condition\",\"id\":\"dx9\",\"subject\":{\"reference\":\"Patient/p9\"},"
			    "\"code\":{\"coding\":[{\"system\":\"" ICD "\",\"code\":\"F33.1\"}]}}";
	assert_int_equal(http_do(&g, "PUT", "/fhir/Condition/dx9", h, sud, strlen(sud), &r), 0);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	assert_int_equal(http_do(&g, "PUT", "/fhir/Condition/dx9", h, other, strlen(other), &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/fhir/Condition/dx9", NULL, NULL, 0, &r), 0);
	cJSON *c = cJSON_Parse(r.body);
	resp_free(&r);
	assert_string_equal(sget(get(get(c, "code"), "coding")->child, "code"), "F33.1");
	assert_true(has_label(c, ACT, "ETH"));
	assert_true(has_label(c, CONF, "R"));
	cJSON_Delete(c);
	/* a patch removing them */
	const char *ph[] = {"Content-Type: application/json-patch+json", NULL};
	const char *patch = "[{\"op\":\"remove\",\"path\":\"/meta/security\"}]";
	assert_int_equal(http_do(&g, "PATCH", "/fhir/Condition/dx9", ph, patch, strlen(patch), &r), 0);
	if (r.status != 200)
		fprintf(stderr, "# PATCH: %ld %s\n", r.status, r.body);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/fhir/Condition/dx9", NULL, NULL, 0, &r), 0);
	c = cJSON_Parse(r.body);
	resp_free(&r);
	assert_true(has_label(c, ACT, "ETH"));
	assert_true(has_label(c, CONF, "R"));
	cJSON_Delete(c);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* Retries every dead letter; returns how many there were. */
static int retry_dead(const struct gw *g, bool want_reason)
{
	struct resp r;
	assert_int_equal(http_do(g, "GET", "/outbox?state=dead", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *j = cJSON_Parse(r.body);
	resp_free(&r);
	int n = 0;
	const cJSON *d;
	cJSON_ArrayForEach(d, get(j, "records"))
	{
		if (want_reason)
			assert_non_null(strstr(sget(d, "last_error"), "no-part2-consent"));
		char path[128];
		snprintf(path, sizeof path, "/outbox/%.0f/$retry", get(d, "id")->valuedouble);
		assert_int_equal(http_do(g, "POST", path, NULL, NULL, 0, &r), 0);
		assert_int_equal(r.status, 202);
		resp_free(&r);
		n++;
	}
	cJSON_Delete(j);
	return n;
}

static long dead_after(const struct gw *g, long want)
{
	long until = now_ms() + 15000;
	while (gw_outbox_number(g, "dead") != want && now_ms() < until)
		sleep_ms(50);
	return gw_outbox_number(g, "dead");
}

#define PEOPLE "https://recovery.example.org/people|P-1"
#define VISITS "urn:visits|V-1"

/* What the upstream noted of the disclosures it received (tests/upstream:
 * GET /_admin/disclosures), a new tree. */
static cJSON *upstream_disclosures(const struct upstream_srv *u)
{
	struct resp r;
	assert_int_equal(upstream_do(u, "GET", "/_admin/disclosures", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *d = cJSON_Parse(r.body);
	resp_free(&r);
	assert_non_null(d);
	return d;
}

/* The first disclosure of list made by method to path, or NULL. */
static const cJSON *disclosure_to(const cJSON *list, const char *method, const char *path)
{
	const cJSON *d;
	cJSON_ArrayForEach(d, get(list, "disclosures"))
	{
		if (sget(d, "method") && !strcmp(sget(d, "method"), method) && sget(d, "path") &&
		    !strcmp(sget(d, "path"), path))
			return d;
	}
	return NULL;
}

/* Did disclosure d carry the header naming the permitting Consent c1? */
static bool names_c1(const cJSON *d)
{
	const cJSON *v;
	bool named = false;
	cJSON_ArrayForEach(v, get(d, "consents"))
	{
		named |= cJSON_IsString(v) && !strcmp(v->valuestring, "Consent/c1; " CONSENT_SCOPE_C1);
	}
	return named;
}

/* The upstream is a recipient like any other: Part 2 data waits as a dead
 * letter for no-part2-consent until a Consent permits it; $retry sends it,
 * with the notice and the Consent that permitted it, as pass-through writes
 * go (a Bundle also names them on its meta). */
static void upstream_receives_part2_data_only_after_consent(void **state)
{
	(void)state;
	if (upstream_missing())
		skip_because(upstream_missing());
	/* its npm packages (a fresh clone has none yet) */
	assert_int_equal(upstream_install(), 0);
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char up[2048], cfg[4096];
	upstream_gw_config(up, sizeof up, &u, "\"Observation\":\"pass-through\",\"*\":\"store-and-forward\"",
			   ",\"organization\":\"Organization/payer-1\",\"purpose_of_use\":\"HPAYMT\"");
	snprintf(cfg, sizeof cfg, "%s,%s", up, clients_json);
	struct gw g;
	assert_int_equal(gw_start(&g, cfg), 0);
	struct who program = {&g, token_for(&g, "program")};
	char *enc = strdup(encounter_json);
	char *with_id = malloc(strlen(enc) + 128);
	snprintf(with_id, strlen(enc) + 128, "{\"identifier\":[{\"system\":\"urn:visits\",\"value\":\"V-1\"}],%s",
		 enc + 1);
	free(enc);
	/* no diagnosis reference: the Condition is not written here */
	char *dx = strstr(with_id, ",\"diagnosis\"");
	strcpy(dx, "}");
	cJSON_Delete(json_as(&program, "PUT", "/fhir/Patient/p1", patient_json, 201, NULL, 0));
	cJSON_Delete(json_as(&program, "PUT", "/fhir/Encounter/e1", with_id, 201, NULL, 0));
	free(with_id);
	assert_int_equal(dead_after(&g, 2), 2);
	assert_int_equal(upstream_count(&u, "Patient", PEOPLE), 0);
	assert_int_equal(upstream_count(&u, "Encounter", VISITS), 0);
	/* $retry without a consent: withheld again, for the same reason */
	assert_int_equal(retry_dead(&g, true), 2);
	sleep_ms(300);
	assert_int_equal(dead_after(&g, 2), 2);
	assert_int_equal(upstream_count(&u, "Patient", PEOPLE), 0);
	assert_int_equal(upstream_count(&u, "Encounter", VISITS), 0);
	/* a pass-through write is refused for the same reason: nothing is sent */
	const char *obs = "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\","
			  "\"identifier\":[{\"system\":\"urn:obs\",\"value\":\"O-1\"}],"
			  "\"code\":{\"text\":\"craving scale\"},\"subject\":{\"reference\":\"Patient/p1\"}}";
	cJSON *oo = json_as(&program, "PUT", "/fhir/Observation/o1", obs, 403, NULL, 0);
	char *text = cJSON_PrintUnformatted(oo);
	assert_non_null(strstr(text, "no-part2-consent"));
	free(text);
	cJSON_Delete(oo);
	assert_int_equal(upstream_count(&u, "Observation", "urn:obs|O-1"), 0);
	cJSON *none = upstream_disclosures(&u);
	assert_int_equal(cJSON_GetArraySize(get(none, "disclosures")), 0);
	cJSON_Delete(none);
	/* the Consent permits payment to the payer: $retry sends them */
	cJSON_Delete(json_as(&program, "PUT", "/fhir/Consent/c1", consent_json, 201, NULL, 0));
	cJSON_Delete(json_as(&program, "PUT", "/fhir/Observation/o1", obs, 201, NULL, 0));
	assert_int_equal(upstream_count(&u, "Observation", "urn:obs|O-1"), 1);
	assert_int_equal(retry_dead(&g, true), 2);
	long until = now_ms() + 15000;
	while ((upstream_count(&u, "Patient", PEOPLE) < 1 || upstream_count(&u, "Encounter", VISITS) < 1) &&
	       now_ms() < until)
		sleep_ms(50);
	assert_int_equal(upstream_count(&u, "Patient", PEOPLE), 1);
	assert_int_equal(upstream_count(&u, "Encounter", VISITS), 1);
	assert_true(gw_outbox_drained(&g, 15000));
	assert_int_equal(gw_outbox_number(&g, "dead"), 0);
	/* each went with the notice and named the Consent that permitted it */
	cJSON *seen = upstream_disclosures(&u);
	const char *sent[][2] = {{"PUT", "Encounter/e1"}, {"PUT", "Patient/p1"}, {"PUT", "Observation/o1"}};
	for (size_t i = 0; i < sizeof sent / sizeof sent[0]; i++) {
		const cJSON *d = disclosure_to(seen, sent[i][0], sent[i][1]);
		if (!d)
			fprintf(stderr, "# no disclosure noted for %s %s\n", sent[i][0], sent[i][1]);
		assert_non_null(d);
		assert_true(names_c1(d));
		assert_non_null(sget(d, "notice"));
		assert_non_null(strstr(sget(d, "notice"), NOTICE_START));
	}
	cJSON_Delete(seen);
	/* a transaction passed through names them on Bundle.meta as well */
	const char *tx = "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":"
			 "{\"resourceType\":\"Observation\",\"id\":\"o3\",\"status\":\"final\","
			 "\"identifier\":[{\"system\":\"urn:obs\",\"value\":\"O-3\"}],"
			 "\"code\":{\"text\":\"craving scale\"},\"subject\":{\"reference\":\"Patient/p1\"}},"
			 "\"request\":{\"method\":\"PUT\",\"url\":\"Observation/o3\"}}]}";
	cJSON_Delete(json_as(&program, "POST", "/fhir", tx, 200, NULL, 0));
	assert_int_equal(upstream_count(&u, "Observation", "urn:obs|O-3"), 1);
	seen = upstream_disclosures(&u);
	const cJSON *d = disclosure_to(seen, "POST", "");
	assert_non_null(d);
	assert_true(names_c1(d));
	assert_true(cJSON_IsTrue(get(d, "bundleNotice")));
	assert_int_equal(cJSON_GetArraySize(get(d, "bundleConsents")), 1);
	assert_string_equal(cJSON_GetArrayItem(get(d, "bundleConsents"), 0)->valuestring, "Consent/c1");
	cJSON_Delete(seen);
	free(program.token);
	assert_int_equal(gw_stop(&g, 5000), 0);
	upstream_stop(&u);
}

/* The resources of type in a finished bulk export kicked off by w. */
/* The notice of the last manifest bulk_export read ("" when none), its
 * X-Disclosure-Consent header ("" when none) and the manifest itself. */
static char manifest_notice[4096], manifest_consent[2048];
static cJSON *manifest_last;

static cJSON *bulk_export(const struct who *w, const char *type)
{
	char auth[2048];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", w->token);
	const char *kh[] = {auth, "Prefer: respond-async", "Accept: application/fhir+json", NULL};
	struct resp r;
	assert_int_equal(http_do(w->g, "GET", "/fhir/$export", kh, NULL, 0, &r), 0);
	if (r.status != 202)
		fprintf(stderr, "# $export: %ld %s\n", r.status, r.body ? r.body : "");
	assert_int_equal(r.status, 202);
	char loc[1024];
	assert_non_null(resp_header(&r, "Content-Location", loc, sizeof loc));
	resp_free(&r);
	const char *status = strstr(loc, "://");
	status = status ? strchr(status + 3, '/') : loc;
	const char *ah[] = {auth, NULL};
	cJSON *m = NULL;
	for (int i = 0; i < 400 && !m; i++) {
		assert_int_equal(http_do(w->g, "GET", status, ah, NULL, 0, &r), 0);
		manifest_consent[0] = '\0';
		if (r.status == 200) {
			m = cJSON_Parse(r.body);
			resp_header(&r, "X-Disclosure-Consent", manifest_consent, sizeof manifest_consent);
		} else
			assert_int_equal(r.status, 202);
		resp_free(&r);
		if (!m)
			sleep_ms(50);
	}
	assert_non_null(m);
	const char *notice =
		sget(get(m, "extension"), "https://crosswalk.example.org/fhir/StructureDefinition/redisclosure-notice");
	snprintf(manifest_notice, sizeof manifest_notice, "%s", notice ? notice : "");
	cJSON_Delete(manifest_last);
	manifest_last = cJSON_Duplicate(m, true);
	cJSON *all = cJSON_CreateArray();
	const cJSON *o;
	cJSON_ArrayForEach(o, get(m, "output"))
	{
		if (strcmp(sget(o, "type"), type) != 0)
			continue;
		const char *url = strchr(strstr(sget(o, "url"), "://") + 3, '/');
		assert_int_equal(http_do(w->g, "GET", url, ah, NULL, 0, &r), 0);
		assert_int_equal(r.status, 200);
		for (char *line = r.body, *nl; line && *line; line = nl + 1) {
			nl = strchr(line, '\n');
			assert_non_null(nl);
			*nl = '\0';
			cJSON_AddItemToArray(all, cJSON_Parse(line));
		}
		resp_free(&r);
	}
	cJSON_Delete(m);
	return all;
}

/* A gateway g with the two clients (program and, when biller is not NULL,
 * biller, each with a token) and the program's Patient p1 and Encounter e1,
 * Part 2 data, stored. */
static void start_with_part2_encounter(struct gw *g, struct who *program, struct who *biller)
{
	assert_int_equal(gw_start(g, clients_json), 0);
	*program = (struct who){g, token_for(g, "program")};
	if (biller)
		*biller = (struct who){g, token_for(g, "biller")};
	cJSON_Delete(json_as(program, "PUT", "/fhir/Patient/p1", patient_json, 201, NULL, 0));
	cJSON_Delete(json_as(program, "PUT", "/fhir/Encounter/e1", encounter_json, 201, NULL, 0));
}

/* Bulk export files leave out what the job's client may not see. */
static void bulk_files_leave_out_withheld_data(void **state)
{
	(void)state;
	struct gw g;
	struct who program, biller;
	start_with_part2_encounter(&g, &program, &biller);
	const char *other = "{\"resourceType\":\"Patient\",\"id\":\"p2\"}";
	struct resp r;
	assert_int_equal(as(&biller, "PUT", "/fhir/Patient/p2", other, NULL, &r), 201);
	resp_free(&r);
	cJSON *pats = bulk_export(&biller, "Patient");
	cJSON *encs = bulk_export(&biller, "Encounter");
	assert_int_equal(cJSON_GetArraySize(pats), 1); /* p2 only */
	assert_string_equal(sget(cJSON_GetArrayItem(pats, 0), "id"), "p2");
	assert_int_equal(cJSON_GetArraySize(encs), 0);
	assert_string_equal(manifest_notice, ""); /* no Part 2 data: no notice */
	cJSON_Delete(pats);
	cJSON_Delete(encs);
	/* the program's own export holds its Part 2 data: the manifest
	 * carries the redisclosure notice */
	encs = bulk_export(&program, "Encounter");
	assert_int_equal(cJSON_GetArraySize(encs), 1);
	assert_non_null(strstr(manifest_notice, NOTICE_START));
	cJSON_Delete(encs);
	free(program.token);
	free(biller.token);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

#define CONSENT_URL "https://crosswalk.example.org/fhir/StructureDefinition/disclosure-consent"

/* The scope the extension object ext (a manifest's or an output entry's)
 * gives for the permitting Consent ref, or NULL. */
static const char *manifest_cites(const cJSON *ext, const char *ref)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, get(ext, CONSENT_URL))
	{
		if (sget(c, "reference") && !strcmp(sget(c, "reference"), ref))
			return sget(c, "display");
	}
	return NULL;
}

/* The output entry of type in the last manifest. */
static const cJSON *manifest_output(const char *type)
{
	const cJSON *o;
	cJSON_ArrayForEach(o, get(manifest_last, "output"))
	{
		if (sget(o, "type") && !strcmp(sget(o, "type"), type))
			return o;
	}
	return NULL;
}

/* A bulk export disclosed with consent names the Consents that permitted
 * it (42 CFR 2.32(b)): on the manifest, on the output entry of each file
 * holding what they permitted, and in the header of the status answer. */
static void bulk_manifest_names_the_permitting_consents(void **state)
{
	(void)state;
	struct gw g;
	struct who program, biller;
	start_with_part2_encounter(&g, &program, &biller);
	const char *other = "{\"resourceType\":\"Observation\",\"id\":\"o2\",\"status\":\"final\","
			    "\"code\":{\"text\":\"steps\"}}";
	cJSON_Delete(json_as(&biller, "PUT", "/fhir/Observation/o2", other, 201, NULL, 0));
	/* without a Consent nothing of p1 leaves, and none is named */
	cJSON *encs = bulk_export(&biller, "Encounter");
	assert_int_equal(cJSON_GetArraySize(encs), 0);
	cJSON_Delete(encs);
	assert_null(manifest_cites(get(manifest_last, "extension"), "Consent/c1"));
	assert_string_equal(manifest_consent, "");
	/* the Consent permits payment to the payer */
	cJSON_Delete(json_as(&program, "PUT", "/fhir/Consent/c1", consent_json, 201, NULL, 0));
	encs = bulk_export(&biller, "Encounter");
	assert_int_equal(cJSON_GetArraySize(encs), 1);
	cJSON_Delete(encs);
	assert_non_null(strstr(manifest_notice, NOTICE_START));
	const char *scope = manifest_cites(get(manifest_last, "extension"), "Consent/c1");
	assert_non_null(scope);
	assert_string_equal(scope, CONSENT_SCOPE_C1);
	assert_string_equal(manifest_consent, "Consent/c1; " CONSENT_SCOPE_C1);
	/* each file says what permitted what it holds: the Encounter's and the
	 * Patient's file, not the Observation's, which needed no Consent */
	assert_non_null(manifest_output("Encounter"));
	scope = manifest_cites(get(manifest_output("Encounter"), "extension"), "Consent/c1");
	assert_non_null(scope);
	assert_string_equal(scope, CONSENT_SCOPE_C1);
	assert_non_null(manifest_cites(get(manifest_output("Patient"), "extension"), "Consent/c1"));
	assert_non_null(manifest_output("Observation"));
	assert_null(manifest_cites(get(manifest_output("Observation"), "extension"), "Consent/c1"));
	/* the program's own export needs no Consent: none is named */
	cJSON_Delete(bulk_export(&program, "Encounter"));
	assert_non_null(strstr(manifest_notice, NOTICE_START));
	assert_null(manifest_cites(get(manifest_last, "extension"), "Consent/c1"));
	assert_string_equal(manifest_consent, "");
	cJSON_Delete(manifest_last);
	manifest_last = NULL;
	free(program.token);
	free(biller.token);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* How many resources of type a Bundle (or an array of resources) holds. */
static int count_any(const cJSON *x, const char *type)
{
	int n = 0;
	const cJSON *e, *list = cJSON_IsArray(x) ? x : get(x, "entry");
	cJSON_ArrayForEach(e, list)
	{
		const cJSON *res = cJSON_IsArray(x) ? e : get(e, "resource");
		const char *t = sget(res, "resourceType");
		n += t && !strcmp(t, type);
	}
	return n;
}

/* The access record leaves only with the admin scope: a client without it
 * gets no AuditEvent from a system history, an _include, a bulk export
 * without _type, and a 403 when it asks for them by type. */
static void audit_events_leave_only_with_the_admin_scope(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g,
				  "\"auth\":{\"clients\":["
				  "{\"client_id\":\"biller\",\"purpose\":\"billing\",\"scopes\":\"system/*.cruds\","
				  "\"tls_fingerprint\":\"" DUMMY_FP "\"},"
				  "{\"client_id\":\"auditor\",\"purpose\":\"operations\","
				  "\"scopes\":\"system/*.rs system/crosswalk.admin\",\"tls_fingerprint\":\"" DUMMY_FP
				  "\"}]}"),
			 0);
	struct who biller = {&g, token_for(&g, "biller")},
		   auditor = {&g, gw_token(&g, "auditor", "system/*.rs system/crosswalk.admin")};
	const char *pat = "{\"resourceType\":\"Patient\",\"id\":\"p2\"}";
	cJSON_Delete(json_as(&biller, "PUT", "/fhir/Patient/p2", pat, 201, NULL, 0));
	cJSON_Delete(json_as(&biller, "GET", "/fhir/Patient/p2", NULL, 200, NULL, 0));

	cJSON *h = json_as(&biller, "GET", "/fhir/_history?_count=100", NULL, 200, NULL, 0);
	assert_int_equal(count_any(h, "AuditEvent"), 0);
	assert_int_equal(count_any(h, "Patient"), 1);
	cJSON_Delete(h);
	h = json_as(&auditor, "GET", "/fhir/_history?_count=100", NULL, 200, NULL, 0);
	assert_true(count_any(h, "AuditEvent") >= 2);
	cJSON_Delete(h);

	const char *inc = "/fhir/Patient?_id=p2&_revinclude=AuditEvent:patient";
	cJSON *s = json_as(&biller, "GET", inc, NULL, 200, NULL, 0);
	assert_int_equal(count_any(s, "AuditEvent"), 0);
	assert_int_equal(count_any(s, "Patient"), 1);
	cJSON_Delete(s);
	s = json_as(&auditor, "GET", inc, NULL, 200, NULL, 0);
	assert_true(count_any(s, "AuditEvent") >= 2);
	cJSON_Delete(s);
	cJSON_Delete(json_as(&biller, "GET", "/fhir/AuditEvent", NULL, 403, NULL, 0));

	char auth[2048];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", biller.token);
	const char *kh[] = {auth, "Prefer: respond-async", "Accept: application/fhir+json", NULL};
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/fhir/$export?_type=AuditEvent", kh, NULL, 0, &r), 0);
	assert_int_equal(r.status, 403);
	resp_free(&r);
	cJSON *all = bulk_export(&biller, "AuditEvent");
	assert_int_equal(cJSON_GetArraySize(all), 0);
	cJSON_Delete(all);
	all = bulk_export(&auditor, "AuditEvent");
	assert_true(cJSON_GetArraySize(all) >= 2);
	cJSON_Delete(all);
	free(biller.token);
	free(auditor.token);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* The site's policy table for R/V data without 42CFRPart2 that no Consent
 * speaks to (privacy.restricted): here billing is denied it, treatment and
 * operations keep the default (permit). */
static void restricted_data_follows_the_site_policy_table(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g,
				  "\"privacy\":{\"restricted\":{\"default\":\"permit\",\"HPAYMT\":\"deny\"}},"
				  "\"auth\":{\"clients\":["
				  "{\"client_id\":\"clinic\",\"purpose\":\"treatment\",\"scopes\":\"system/*.cruds\","
				  "\"tls_fingerprint\":\"" DUMMY_FP "\"},"
				  "{\"client_id\":\"ops\",\"purpose\":\"operations\",\"scopes\":\"system/*.rs\","
				  "\"tls_fingerprint\":\"" DUMMY_FP "\"},"
				  "{\"client_id\":\"biller\",\"purpose\":\"billing\",\"scopes\":\"system/*.rs\","
				  "\"tls_fingerprint\":\"" DUMMY_FP "\"}]}"),
			 0);
	struct who clinic = {&g, token_for(&g, "clinic")}, ops = {&g, gw_token(&g, "ops", "system/*.rs")},
		   biller = {&g, gw_token(&g, "biller", "system/*.rs")};
	cJSON_Delete(json_as(&clinic, "PUT", "/fhir/Patient/p3", "{\"resourceType\":\"Patient\",\"id\":\"p3\"}", 201,
			     NULL, 0));
	const char *obs = "{\"resourceType\":\"Observation\",\"id\":\"o3\",\"status\":\"final\","
			  "\"meta\":{\"security\":[{\"system\":\"" CONF "\",\"code\":\"R\"}]},"
			  "\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":\"Patient/p3\"}}";
	cJSON_Delete(json_as(&clinic, "PUT", "/fhir/Observation/o3", obs, 201, NULL, 0));
	cJSON_Delete(json_as(&clinic, "GET", "/fhir/Observation/o3", NULL, 200, NULL, 0));
	cJSON_Delete(json_as(&ops, "GET", "/fhir/Observation/o3", NULL, 200, NULL, 0));
	cJSON_Delete(json_as(&biller, "GET", "/fhir/Observation/o3", NULL, 404, NULL, 0));
	cJSON *s = json_as(&biller, "GET", "/fhir/Observation?subject=Patient/p3", NULL, 200, NULL, 0);
	assert_int_equal(count_any(s, "Observation"), 0);
	cJSON_Delete(s);
	s = json_as(&ops, "GET", "/fhir/Observation?subject=Patient/p3", NULL, 200, NULL, 0);
	assert_int_equal(count_any(s, "Observation"), 1);
	cJSON_Delete(s);
	free(clinic.token);
	free(ops.token);
	free(biller.token);
	assert_int_equal(gw_stop(&g, 5000), 0);
	/* a value other than permit or deny stops the start */
	char out[2048];
	assert_int_not_equal(
		gw_run_expect_exit("\"privacy\":{\"restricted\":{\"HPAYMT\":\"maybe\"}}", NULL, 10000, out, sizeof out),
		0);
	assert_non_null(strstr(out, "privacy.restricted.HPAYMT"));
}

/* Runs `crosswalk billing` for November 2025 over g's store (its data_dir)
 * for client (NULL: none named); returns the extract (JSON) or NULL. */
static cJSON *billing_command(const struct gw *g, const char *client, char *out, size_t outlen)
{
	char extra[4096];
	snprintf(extra, sizeof extra, "\"data_dir\":\"%s/var\",%s", g->dir, clients_json);
	const char *args[] = {"billing", "--from", "2025-11-01", "--to", "2025-11-30", client ? "--client" : NULL,
			      client,    NULL};
	int rc = gw_run_command(extra, args, 20000, out, outlen);
	if (rc != 0)
		fprintf(stderr, "# crosswalk billing exited %d: %s\n", rc, out);
	assert_int_equal(rc, 0);
	return cJSON_Parse(out);
}

/* How many runs wait in data_dir/audit-spool. */
static int spooled_runs(const char *data_dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "ls %s/audit-spool 2>/dev/null | grep -c '\\.ndjson$'", data_dir);
	FILE *p = popen(cmd, "r");
	int n = 0;
	assert_non_null(p);
	if (fscanf(p, "%d", &n) != 1)
		n = 0;
	pclose(p);
	return n;
}

static int occurrences(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* `crosswalk billing` beside the running gateway decides as the HTTP
 * extract does: for the client named by --client, Part 2 data without a
 * Consent is listed as withheld for no-part2-consent; with a permitting
 * Consent it appears with the redisclosure notice; naming no client
 * discloses no Part 2 data at all. Each run's AuditEvents are spooled
 * durably while the gateway holds the store, stored when it starts again,
 * and stored at once by a run with no gateway. */
static void billing_command_applies_consent_and_is_audited(void **state)
{
	(void)state;
	struct gw g;
	struct who program;
	start_with_part2_encounter(&g, &program, NULL);
	cJSON_Delete(json_as(&program, "PUT", "/fhir/Condition/dx1", condition_json, 201, NULL, 0));
	char data_dir[600];
	snprintf(data_dir, sizeof data_dir, "%s/var", g.dir);
	static char out[1 << 16];

	/* no consent: withheld, with the reason, and nothing of it */
	cJSON *x = billing_command(&g, "biller", out, sizeof out);
	assert_non_null(x);
	assert_true(extract_withholds_e1(x));
	assert_int_equal(cJSON_GetArraySize(get(x, "lines")), 0);
	assert_null(strstr(out, "F11.20"));
	assert_null(strstr(out, "H0038"));
	assert_null(get(x, "notice"));
	cJSON_Delete(x);
	assert_int_equal(spooled_runs(data_dir), 1);
	/* an unknown client is a usage error, and discloses nothing */
	char extra[4096];
	snprintf(extra, sizeof extra, "\"data_dir\":\"%s\",%s", data_dir, clients_json);
	const char *bad[] = {"billing", "--from", "2025-11-01", "--to", "2025-11-30", "--client", "nobody", NULL};
	assert_int_equal(gw_run_command(extra, bad, 20000, out, sizeof out), 2);
	assert_null(strstr(out, "\"e1\""));

	/* a Consent permitting payment to the biller's organization */
	cJSON_Delete(json_as(&program, "PUT", "/fhir/Consent/c1", consent_json, 201, NULL, 0));
	x = billing_command(&g, "biller", out, sizeof out);
	assert_non_null(x);
	assert_false(extract_withholds_e1(x));
	assert_true(mentions_e1(x));
	assert_non_null(sget(x, "notice"));
	assert_non_null(strstr(sget(x, "notice"), NOTICE_START));
	assert_string_equal(sget(get(x, "consents")->child, "reference"), "Consent/c1");
	assert_string_equal(sget(get(x, "consents")->child, "scope"), CONSENT_SCOPE_C1);
	cJSON_Delete(x);
	/* naming nobody, Part 2 data never leaves, whatever the Consents say:
	 * here one permits treatment to any recipient */
	char *c2 = strdup(consent_json);
	char *actor = strstr(c2, "\"actor\"");
	char *purpose = strstr(c2, "\"purpose\"");
	memmove(actor, purpose, strlen(purpose) + 1);
	char *code = strstr(c2, "HPAYMT");
	memcpy(code, "TREAT\"", 6);
	memmove(code + 6, code + 7, strlen(code + 7) + 1);
	memcpy(strstr(c2, "\"c1\""), "\"c2\"", 4);
	cJSON *c2j = cJSON_Parse(c2);
	assert_non_null(c2j);
	cJSON_Delete(c2j);
	cJSON_Delete(json_as(&program, "PUT", "/fhir/Consent/c2", c2, 201, NULL, 0));
	free(c2);
	x = billing_command(&g, NULL, out, sizeof out);
	assert_non_null(x);
	assert_true(extract_withholds_e1(x));
	assert_null(strstr(out, "F11.20"));
	cJSON_Delete(x);
	assert_int_equal(spooled_runs(data_dir), 3);
	free(program.token);
	assert_int_equal(gw_stop(&g, 5000), 0);

	/* no gateway: the run stores its record (and the spooled ones) itself */
	x = billing_command(&g, "biller", out, sizeof out);
	assert_non_null(x);
	cJSON_Delete(x);
	assert_int_equal(spooled_runs(data_dir), 0);

	/* on the access record: each run, and what consent withheld */
	struct gw g2;
	char conf[4096];
	snprintf(conf, sizeof conf, "\"data_dir\":\"%s\",%s", data_dir, clients_json);
	assert_int_equal(gw_start(&g2, conf), 0);
	/* the key is the store's (its data_dir), the issuer the new gateway */
	struct gw keyed = g2;
	snprintf(keyed.dir, sizeof keyed.dir, "%s", g.dir);
	struct who auditor = {&g2, gw_token(&keyed, "program", "system/*.cruds system/crosswalk.admin")};
	cJSON *ae = json_as(&auditor, "GET", "/fhir/AuditEvent?_count=1000", NULL, 200, NULL, 0);
	char *aet = cJSON_PrintUnformatted(ae);
	assert_int_equal(occurrences(aet, "\"code\":\"billing-extract\""), 4);
	assert_int_equal(occurrences(aet, "\"code\":\"consent-withheld\""), 2);
	assert_non_null(strstr(aet, "\"value\":\"biller\""));
	assert_non_null(strstr(aet, "\"reference\":\"Encounter/e1\""));
	free(aet);
	cJSON_Delete(ae);
	free(auditor.token);
	assert_int_equal(gw_stop(&g2, 5000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(part2_data_leaves_only_with_consent),
		cmocka_unit_test(labels_survive_updates),
		cmocka_unit_test(bulk_files_leave_out_withheld_data),
		cmocka_unit_test(bulk_manifest_names_the_permitting_consents),
		cmocka_unit_test(upstream_receives_part2_data_only_after_consent),
		cmocka_unit_test(audit_events_leave_only_with_the_admin_scope),
		cmocka_unit_test(restricted_data_follows_the_site_policy_table),
		cmocka_unit_test(billing_command_applies_consent_and_is_audited),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
