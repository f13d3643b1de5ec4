/* End-to-end tests of patient/ scopes: a token with a patient/ scope and a
 * launch patient (auth.clients[].patient for a client of the gateway's own
 * token endpoint; the patient claim of an external issuer's token, here
 * from the oidc-provider server of tests/idp) reaches only the Patient
 * compartment of that patient (R4 CompartmentDefinition Patient, the
 * generated table of fhir/compartment.h). A read or vread of a resource
 * outside it answers exactly as one not stored (404); a search is confined
 * to the compartment; includes and revincludes leave out what is outside;
 * an instance's history shows the versions within; a write must stay inside
 * (what it sends: 403; what it replaces or deletes: 404). A patient/ scope
 * without a launch patient grants nothing. Tokens are real JWTs: signed
 * with the gateway's own key (as its token endpoint signs them), and issued
 * by the independent provider (skipped without node and npm). */
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

#define AUDIENCE "https://crosswalk.test/fhir"
#define FINGERPRINT "\"tls_fingerprint\":\"00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF\""

static struct gw g;
static struct upstream_srv idp;
static bool with_idp;
static char *admin; /* every scope */

static long call(const char *tok, const char *method, const char *path, const char *ct, const char *body,
		 struct resp *r)
{
	return gw_call_bearer(&g, tok, method, path, ct, body, r);
}

static void put(const char *path, const char *body) { gw_put_bearer(&g, admin, path, body); }

static void put_obs(const char *id, const char *subject, const char *performer, const char *encounter)
{
	char body[600], path[80], perf[120] = "", enc[120] = "";
	if (performer)
		snprintf(perf, sizeof perf, ",\"performer\":[{\"reference\":\"Patient/%s\"}]", performer);
	if (encounter)
		snprintf(enc, sizeof enc, ",\"encounter\":{\"reference\":\"Encounter/%s\"}", encounter);
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Observation\",\"id\":\"%s\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		 "\"subject\":{\"reference\":\"Patient/%s\"}%s%s}",
		 id, subject, perf, enc);
	snprintf(path, sizeof path, "/fhir/Observation/%s", id);
	put(path, body);
}

static int setup(void **state)
{
	(void)state;
	char cfg[2048], issuer[600] = "";
	with_idp = !upstream_missing();
	if (with_idp) {
		const char *args[] = {"--client", "app:s3cret:patient/Observation.rs patient/Patient.rs:p2", "--client",
				      "nobody:s3cret:patient/Observation.rs", NULL};
		if (idp_start(&idp, args) != 0)
			return -1;
		snprintf(issuer, sizeof issuer,
			 ",\"issuers\":[{\"issuer\":\"%s\",\"jwks_url\":\"%s/jwks\",\"audience\":\"" AUDIENCE "\"}]",
			 idp.base, idp.base);
	}
	snprintf(cfg, sizeof cfg,
		 "\"auth\":{\"clients\":["
		 "{\"client_id\":\"backend\",\"scopes\":\"system/*.cruds system/crosswalk.admin\"," FINGERPRINT "},"
		 "{\"client_id\":\"portal\",\"patient\":\"p1\",\"scopes\":\"patient/Patient.rs patient/Encounter.rs "
		 "patient/Observation.cruds patient/Practitioner.rs\"," FINGERPRINT "},"
		 "{\"client_id\":\"unlaunched\",\"scopes\":\"patient/Observation.rs\"," FINGERPRINT "}]%s}",
		 issuer);
	if (gw_start(&g, cfg) != 0)
		return -1;
	admin = gw_token(&g, "backend", "system/*.cruds system/crosswalk.admin");
	put("/fhir/Patient/p1", "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"name\":[{\"family\":\"Rivera\"}]}");
	put("/fhir/Patient/p2", "{\"resourceType\":\"Patient\",\"id\":\"p2\",\"name\":[{\"family\":\"Okafor\"}]}");
	put("/fhir/Practitioner/dr1", "{\"resourceType\":\"Practitioner\",\"id\":\"dr1\"}");
	put("/fhir/Encounter/e1", "{\"resourceType\":\"Encounter\",\"id\":\"e1\",\"status\":\"finished\","
				  "\"class\":{\"code\":\"AMB\"},\"subject\":{\"reference\":\"Patient/p1\"}}");
	put("/fhir/Encounter/e2", "{\"resourceType\":\"Encounter\",\"id\":\"e2\",\"status\":\"finished\","
				  "\"class\":{\"code\":\"AMB\"},\"subject\":{\"reference\":\"Patient/p2\"}}");
	put_obs("o1", "p1", NULL, "e1");
	put_obs("o2", "p2", NULL, "e2");
	put_obs("o3", "p2", "p1", "e2"); /* in p1's compartment as its performer, and in p2's */
	put_obs("o4", "p1", NULL, NULL);
	put_obs("o4", "p2", NULL, NULL); /* version 1 was p1's, version 2 is p2's */
	put_obs("o5", "p2", NULL, NULL);
	put_obs("o5", "p1", NULL, NULL); /* version 1 was p2's, version 2 is p1's */
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char *log = gw_log(&g);
	bool clean = log && !strstr(log, "eyJ"); /* no token in any log line */
	free(log);
	free(admin);
	int rc = gw_stop(&g, 5000);
	if (with_idp)
		upstream_stop(&idp);
	return clean && rc == 0 ? 0 : -1;
}

/* The "Type/id" of a Bundle's resources (OperationOutcomes left out),
 * sorted, space-separated. */
static void bundle_refs(const char *body, char *out, size_t n)
{
	cJSON *b = cJSON_Parse(body);
	assert_non_null(b);
	char refs[32][80];
	size_t k = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(b, "entry"))
	{
		const cJSON *res = cJSON_GetObjectItem(e, "resource");
		const cJSON *rt = cJSON_GetObjectItem(res, "resourceType"), *id = cJSON_GetObjectItem(res, "id");
		if (k < 32 && cJSON_IsString(rt) && cJSON_IsString(id) && strcmp(rt->valuestring, "OperationOutcome"))
			snprintf(refs[k++], sizeof refs[0], "%s/%s", rt->valuestring, id->valuestring);
	}
	cJSON_Delete(b);
	qsort(refs, k, sizeof refs[0], (int (*)(const void *, const void *))strcmp);
	out[0] = '\0';
	for (size_t i = 0; i < k; i++) {
		size_t l = strlen(out);
		snprintf(out + l, n - l, "%s%s", i ? " " : "", refs[i]);
	}
}

struct expect {
	const char *method, *path;
	long status;
	const char *refs; /* a Bundle's resources, sorted (NULL: not compared) */
	const char *body;
};

static void check(const char *tok, const char *who, const struct expect *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct resp r;
		const char *ct = x[i].method[0] == 'P' && x[i].method[1] == 'A' ? "application/json-patch+json" : NULL;
		long st = call(tok, x[i].method, x[i].path, ct, x[i].body, &r);
		char refs[1024] = "";
		if (st == 200 && x[i].refs)
			bundle_refs(r.body, refs, sizeof refs);
		if (st != x[i].status || (x[i].refs && strcmp(refs, x[i].refs) != 0))
			fail_msg("%s %s %s: %ld [%s] %.400s", who, x[i].method, x[i].path, st, refs, r.body);
		resp_free(&r);
	}
}

/* A read of what is outside the compartment answers exactly as a read of
 * what is not stored. */
static void not_found_as_absent(const char *tok, const char *type, const char *id)
{
	char path[80], want[300];
	snprintf(path, sizeof path, "/fhir/%s/%s", type, id);
	snprintf(want, sizeof want,
		 "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\",\"code\":\"not-found\","
		 "\"diagnostics\":\"no %s with id %s\"}]}",
		 type, id);
	struct resp r;
	assert_int_equal(call(tok, "GET", path, NULL, NULL, &r), 404);
	assert_string_equal(r.body, want);
	resp_free(&r);
}

static void reads_and_searches_stay_in_the_compartment(void **state)
{
	(void)state;
	char *portal = gw_token(&g, "portal",
				"patient/Patient.rs patient/Encounter.rs patient/Observation.cruds "
				"patient/Practitioner.rs");
	static const struct expect x[] = {
		{"GET", "/fhir/Patient/p1", 200, NULL, NULL},
		{"GET", "/fhir/Patient/p2", 404, NULL, NULL},
		{"GET", "/fhir/Observation/o1", 200, NULL, NULL},
		{"GET", "/fhir/Observation/o2", 404, NULL, NULL},
		{"GET", "/fhir/Observation/o3", 200, NULL, NULL}, /* p1 performed it */
		{"GET", "/fhir/Encounter/e2", 404, NULL, NULL},
		/* a type outside the compartment: the patient/ scope reaches none of it */
		{"GET", "/fhir/Practitioner/dr1", 403, NULL, NULL},
		{"GET", "/fhir/Practitioner", 403, NULL, NULL},
		/* searches: confined by the compartment's first parameter, unless
		 * the search names the patient in one of them */
		{"GET", "/fhir/Patient", 200, "Patient/p1", NULL},
		{"GET", "/fhir/Patient?_id=p2", 200, "", NULL},
		{"GET", "/fhir/Observation", 200, "Observation/o1 Observation/o5", NULL},
		{"GET", "/fhir/Observation?subject=Patient/p2", 200, "", NULL},
		{"GET", "/fhir/Observation?performer=Patient/p1", 200, "Observation/o3", NULL},
		{"GET", "/fhir/Observation?_id=o1,o2,o3,o4", 200, "Observation/o1", NULL},
		{"POST", "/fhir/Observation/_search", 200, "Observation/o1 Observation/o5", NULL},
		{"GET", "/fhir/Encounter", 200, "Encounter/e1", NULL},
		/* includes: what is outside the compartment is left out */
		{"GET", "/fhir/Observation?_include=Observation:encounter", 200,
		 "Encounter/e1 Observation/o1 Observation/o5", NULL},
		{"GET", "/fhir/Observation?performer=Patient/p1&_include=Observation:encounter", 200, "Observation/o3",
		 NULL},
		{"GET", "/fhir/Observation?performer=Patient/p1&_include=Observation:subject", 200, "Observation/o3",
		 NULL},
		{"GET", "/fhir/Patient?_revinclude=Observation:performer", 200, "Observation/o3 Patient/p1", NULL},
		{"GET", "/fhir/Encounter?_revinclude=Observation:encounter", 200, "Encounter/e1 Observation/o1", NULL},
		/* a chain passes through a type it may search whole only */
		{"GET", "/fhir/Observation?subject:Patient.family=Okafor", 403, NULL, NULL},
		/* history and vread: versions within the compartment */
		{"GET", "/fhir/Observation/o1/_history", 200, "Observation/o1", NULL},
		{"GET", "/fhir/Observation/o2/_history", 404, NULL, NULL},
		{"GET", "/fhir/Observation/o1/_history/1", 200, NULL, NULL},
		{"GET", "/fhir/Observation/o2/_history/1", 404, NULL, NULL},
		{"GET", "/fhir/Observation/o4", 404, NULL, NULL},
		{"GET", "/fhir/Observation/o4/_history/1", 200, NULL, NULL},
		{"GET", "/fhir/Observation/o4/_history/2", 404, NULL, NULL},
		{"GET", "/fhir/Observation/o4/_history", 404, NULL, NULL},
		{"GET", "/fhir/Observation/o5/_history", 200, "Observation/o5", NULL},
		{"GET", "/fhir/Observation/o5/_history/1", 404, NULL, NULL},
		{"GET", "/fhir/Observation/o5/_history/2", 200, NULL, NULL},
		{"GET", "/fhir/Observation/_history", 403, NULL, NULL},
		{"GET", "/fhir/_history", 403, NULL, NULL},
	};
	check(portal, "portal", x, sizeof x / sizeof *x);
	not_found_as_absent(portal, "Observation", "o2");
	not_found_as_absent(admin, "Observation", "none");
	/* each compartment type the test stores for another person (p2) */
	static const char *const theirs[][2] = {{"Patient", "p2"}, {"Encounter", "e2"}, {"Observation", "o2"}};
	for (size_t i = 0; i < sizeof theirs / sizeof *theirs; i++)
		not_found_as_absent(portal, theirs[i][0], theirs[i][1]);
	/* an include that left something out gives no total */
	struct resp r;
	assert_int_equal(call(portal, "GET", "/fhir/Observation?performer=Patient/p1&_include=Observation:encounter",
			      NULL, NULL, &r),
			 200);
	assert_null(strstr(r.body, "\"total\""));
	resp_free(&r);

	/* without a launch patient a patient/ scope grants nothing */
	char *unlaunched = gw_token(&g, "unlaunched", "patient/Observation.rs");
	static const struct expect y[] = {
		{"GET", "/fhir/Observation/o1", 403, NULL, NULL},
		{"GET", "/fhir/Observation", 403, NULL, NULL},
	};
	check(unlaunched, "unlaunched", y, sizeof y / sizeof *y);
	free(unlaunched);
	free(portal);
}

static void writes_stay_in_the_compartment(void **state)
{
	(void)state;
	char *portal = gw_token(&g, "portal", "patient/Patient.rs patient/Encounter.rs patient/Observation.cruds");
	static const char mine[] = "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"w\"},"
				   "\"subject\":{\"reference\":\"Patient/p1\"}}";
	static const char theirs[] = "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":"
				     "\"w\"},\"subject\":{\"reference\":\"Patient/p2\"}}";
	static const char o1_theirs[] = "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\","
					"\"code\":{\"text\":\"w\"},\"subject\":{\"reference\":\"Patient/p2\"}}";
	static const char o2_mine[] = "{\"resourceType\":\"Observation\",\"id\":\"o2\",\"status\":\"final\","
				      "\"code\":{\"text\":\"w\"},\"subject\":{\"reference\":\"Patient/p1\"}}";
	static const char new_mine[] = "{\"resourceType\":\"Observation\",\"id\":\"w-new\",\"status\":\"final\","
				       "\"code\":{\"text\":\"w\"},\"subject\":{\"reference\":\"Patient/p1\"}}";
	static const char to_p2[] = "[{\"op\":\"replace\",\"path\":\"/subject/reference\",\"value\":\"Patient/p2\"}]";
	static const char note[] = "[{\"op\":\"add\",\"path\":\"/status\",\"value\":\"amended\"}]";
	const struct expect x[] = {
		{"POST", "/fhir/Observation", 201, NULL, mine},
		{"POST", "/fhir/Observation", 403, NULL, theirs},
		{"PUT", "/fhir/Observation/o1", 403, NULL, o1_theirs},
		{"PUT", "/fhir/Observation/o2", 404, NULL, o2_mine},
		{"PUT", "/fhir/Observation/w-new", 201, NULL, new_mine},
		{"PATCH", "/fhir/Observation/o2", 404, NULL, note},
		{"PATCH", "/fhir/Observation/o1", 403, NULL, to_p2},
		{"PATCH", "/fhir/Observation/o1", 200, NULL, note},
		{"DELETE", "/fhir/Observation/o2", 404, NULL, NULL},
		{"DELETE", "/fhir/Observation/w-new", 200, NULL, NULL},
		/* a scope without the write, a conditional write */
		{"POST", "/fhir/Encounter", 403, NULL,
		 "{\"resourceType\":\"Encounter\",\"status\":\"finished\",\"class\":{\"code\":\"AMB\"},"
		 "\"subject\":{\"reference\":\"Patient/p1\"}}"},
		{"DELETE", "/fhir/Observation?status=final", 403, NULL, NULL},
	};
	check(portal, "portal", x, sizeof x / sizeof *x);
	/* nothing of p2's changed */
	struct resp r;
	assert_int_equal(call(admin, "GET", "/fhir/Observation/o2", NULL, NULL, &r), 200);
	assert_non_null(strstr(r.body, "\"versionId\":\"1\""));
	assert_null(strstr(r.body, "amended"));
	resp_free(&r);
	assert_int_equal(call(admin, "GET", "/fhir/Observation?subject=Patient/p2", NULL, NULL, &r), 200);
	assert_null(strstr(r.body, "\"text\":\"w\""));
	resp_free(&r);
	free(portal);
}

/* The response.status of each entry of a batch- or transaction-response,
 * space-separated. */
static void entry_statuses(const char *body, char *out, size_t n)
{
	cJSON *b = cJSON_Parse(body);
	assert_non_null(b);
	out[0] = '\0';
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(b, "entry"))
	{
		const cJSON *st = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "response"), "status");
		size_t l = strlen(out);
		snprintf(out + l, n - l, "%s%.3s", l ? " " : "", cJSON_IsString(st) ? st->valuestring : "-");
	}
	cJSON_Delete(b);
}

#define OBS(subject, text)                                                                         \
	"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"" text "\"}," \
	"\"subject\":{\"reference\":\"Patient/" subject "\"}}"
#define OBS_ID(id, subject, text)                                                                                    \
	"{\"resourceType\":\"Observation\",\"id\":\"" id "\",\"status\":\"final\",\"code\":{\"text\":\"" text "\"}," \
	"\"subject\":{\"reference\":\"Patient/" subject "\"}}"
#define ENTRY(method, url, res) "{\"request\":{\"method\":\"" method "\",\"url\":\"" url "\"}" res "}"

/* POSTs a Bundle of type (batch, transaction) with entries to /fhir. */
static long post_bundle(const char *tok, const char *type, const char *const *entries, size_t n, struct resp *r)
{
	char body[8192];
	size_t l =
		(size_t)snprintf(body, sizeof body, "{\"resourceType\":\"Bundle\",\"type\":\"%s\",\"entry\":[", type);
	for (size_t i = 0; i < n; i++)
		l += (size_t)snprintf(body + l, sizeof body - l, "%s%s", i ? "," : "", entries[i]);
	snprintf(body + l, sizeof body - l, "]}");
	assert_true(l + 2 < sizeof body);
	return call(tok, "POST", "/fhir", NULL, body, r);
}

/* Batch and transaction entries are confined as the single interactions
 * are: in a batch an entry outside the compartment answers its own 404 (a
 * read, what a write replaces or deletes) or 403 (what a write sends) and
 * the others proceed; a transaction with one such entry is refused whole. */
static void bundle_entries_stay_in_the_compartment(void **state)
{
	(void)state;
	char *portal = gw_token(&g, "portal", "patient/Patient.rs patient/Encounter.rs patient/Observation.cruds");
	static const char *const batch[] = {
		ENTRY("GET", "Observation/o1", ""),
		ENTRY("GET", "Observation/o2", ""),
		ENTRY("GET", "Patient/p1", ""),
		ENTRY("GET", "Patient/p2", ""),
		ENTRY("GET", "Practitioner/dr1", ""),
		ENTRY("POST", "Observation", ",\"resource\":" OBS("p1", "b-mine")),
		ENTRY("POST", "Observation", ",\"resource\":" OBS("p2", "b-theirs")),
		ENTRY("PUT", "Observation/o2", ",\"resource\":" OBS_ID("o2", "p1", "b-mine")),
		ENTRY("PUT", "Observation/o1", ",\"resource\":" OBS_ID("o1", "p2", "b-theirs")),
		ENTRY("PUT", "Observation/b-new", ",\"resource\":" OBS_ID("b-new", "p1", "b-mine")),
		ENTRY("DELETE", "Observation/o2", ""),
		ENTRY("DELETE", "Observation/b-del", ""),
	};
	put_obs("b-del", "p1", NULL, NULL);
	char got[200];
	struct resp r;
	long st = post_bundle(portal, "batch", batch, sizeof batch / sizeof *batch, &r);
	if (st != 200)
		fail_msg("batch: %ld %.400s", st, r.body);
	entry_statuses(r.body, got, sizeof got);
	assert_string_equal(got, "200 404 200 404 403 201 403 404 403 201 404 204");
	assert_null(strstr(r.body, "Okafor"));
	resp_free(&r);

	static const char *const tx_in[] = {
		ENTRY("POST", "Observation", ",\"resource\":" OBS("p1", "t-in")),
		ENTRY("PUT", "Observation/t-in", ",\"resource\":" OBS_ID("t-in", "p1", "t-in")),
		ENTRY("GET", "Observation/o1", ""),
	};
	st = post_bundle(portal, "transaction", tx_in, sizeof tx_in / sizeof *tx_in, &r);
	if (st != 200)
		fail_msg("transaction within: %ld %.400s", st, r.body);
	entry_statuses(r.body, got, sizeof got);
	assert_string_equal(got, "201 201 200");
	resp_free(&r);

	/* one entry outside refuses the whole transaction, with its status */
	static const struct {
		const char *outside;
		long status;
	} tx_out[] = {
		{ENTRY("POST", "Observation", ",\"resource\":" OBS("p2", "t-out")), 403},
		{ENTRY("DELETE", "Observation/o2", ""), 404},
		{ENTRY("GET", "Observation/o2", ""), 404},
	};
	for (size_t i = 0; i < sizeof tx_out / sizeof *tx_out; i++) {
		const char *entries[] = {ENTRY("POST", "Observation", ",\"resource\":" OBS("p1", "t-out")),
					 tx_out[i].outside};
		st = post_bundle(portal, "transaction", entries, 2, &r);
		if (st != tx_out[i].status)
			fail_msg("transaction %zu with one entry outside: %ld %.400s", i, st, r.body);
		resp_free(&r);
	}
	/* what was refused stored nothing, and nothing of p2's changed */
	assert_int_equal(call(admin, "GET", "/fhir/Observation?subject=Patient/p1&_count=100", NULL, NULL, &r), 200);
	assert_null(strstr(r.body, "\"t-out\""));
	assert_non_null(strstr(r.body, "\"t-in\""));
	resp_free(&r);
	assert_int_equal(call(admin, "GET", "/fhir/Observation?subject=Patient/p2", NULL, NULL, &r), 200);
	assert_null(strstr(r.body, "\"b-mine\""));
	assert_null(strstr(r.body, "\"b-theirs\""));
	resp_free(&r);
	assert_int_equal(call(admin, "GET", "/fhir/Observation/o2", NULL, NULL, &r), 200);
	assert_non_null(strstr(r.body, "\"versionId\":\"1\""));
	resp_free(&r);
	assert_int_equal(call(admin, "GET", "/fhir/Observation/b-del", NULL, NULL, &r), 410);
	resp_free(&r);
	free(portal);
}

/* A token of the independent provider (oidc-provider) for client:s3cret,
 * carrying the launch patient in its patient claim. */
static char *provider_token(const char *client, const char *scope)
{
	char *tok = idp_token(&idp, client, "s3cret", scope, "https%3A%2F%2Fcrosswalk.test%2Ffhir");
	assert_non_null(tok);
	return tok;
}

static void an_external_issuers_patient_claim_confines(void **state)
{
	(void)state;
	UPSTREAM_NEEDED();
	/* app, launched for p2 */
	char *app = provider_token("app", "patient%2FObservation.rs%20patient%2FPatient.rs");
	static const struct expect x[] = {
		{"GET", "/fhir/Patient/p2", 200, NULL, NULL},
		{"GET", "/fhir/Patient/p1", 404, NULL, NULL},
		{"GET", "/fhir/Observation/o2", 200, NULL, NULL},
		{"GET", "/fhir/Observation/o1", 404, NULL, NULL},
		{"GET", "/fhir/Observation/o4", 200, NULL, NULL},
		{"GET", "/fhir/Observation/o4/_history/1", 404, NULL, NULL},
		{"GET", "/fhir/Observation?_id=o1,o2,o3", 200, "Observation/o2 Observation/o3", NULL},
		{"GET", "/fhir/Observation?_revinclude=Observation:subject", 200, NULL, NULL},
		{"GET", "/fhir/Patient?_revinclude=Observation:subject", 200,
		 "Observation/o2 Observation/o3 Observation/o4 Patient/p2", NULL},
		{"POST", "/fhir/Observation", 403, NULL,
		 "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		 "\"subject\":{\"reference\":\"Patient/p2\"}}"},
	};
	check(app, "app", x, sizeof x / sizeof *x);
	free(app);
	/* nobody:s3cret has no launch patient: its patient/ scope grants nothing */
	char *nobody = provider_token("nobody", "patient%2FObservation.rs");
	static const struct expect y[] = {{"GET", "/fhir/Observation/o2", 403, NULL, NULL}};
	check(nobody, "nobody", y, sizeof y / sizeof *y);
	free(nobody);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reads_and_searches_stay_in_the_compartment),
		cmocka_unit_test(writes_stay_in_the_compartment),
		cmocka_unit_test(bundle_entries_stay_in_the_compartment),
		cmocka_unit_test(an_external_issuers_patient_claim_confines),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
