/* End-to-end tests of scope enforcement beyond the single interaction,
 * through HTTP with real access tokens (signed with the gateway's own key,
 * as its token endpoint signs them): each entry of a batch answers its own
 * refusal while the others proceed, one forbidden entry refuses a whole
 * transaction; _include and _revinclude leave out the types the token may
 * not read (and then give no total); a chain or _has through a type needs
 * search on it; /ingest needs the write on every type the mapping writes,
 * /export read on every type it gathered; a plugin operation needs any
 * valid token. Every refusal is counted in /metrics by reason, and no token
 * reaches the log. */
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

#define CLIENTS                                                                                                   \
	"\"auth\":{\"clients\":[{\"client_id\":\"backend\",\"scopes\":\"system/*.cruds system/crosswalk.admin\"," \
	"\"tls_fingerprint\":\"00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF\"}]}"

static struct gw g;
static char *admin; /* a token with every scope */

/* An access token of the gateway for client backend with scope. */
static char *token(const char *scope) { return gw_token(&g, "backend", scope); }

static long call(const char *tok, const char *method, const char *path, const char *ct, const char *body,
		 struct resp *r)
{
	return gw_call_bearer(&g, tok, method, path, ct, body, r);
}

/* The status of method path with tok; the body is dropped. */
static long status_of(const char *tok, const char *method, const char *path, const char *body)
{
	struct resp r;
	long st = call(tok, method, path, NULL, body, &r);
	resp_free(&r);
	return st;
}

static long refused(const char *reason) { return gw_auth_refused(&g, reason); }

static void put(const char *path, const char *body) { gw_put_bearer(&g, admin, path, body); }

static int setup(void **state)
{
	(void)state;
	if (gw_start(&g, CLIENTS) != 0)
		return -1;
	admin = token("system/*.cruds system/crosswalk.admin");
	put("/fhir/Patient/p1", "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"name\":[{\"family\":\"Rivera\"}]}");
	put("/fhir/Encounter/e1", "{\"resourceType\":\"Encounter\",\"id\":\"e1\",\"status\":\"finished\","
				  "\"class\":{\"code\":\"AMB\"},\"subject\":{\"reference\":\"Patient/p1\"}}");
	put("/fhir/Observation/o1",
	    "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
	    "\"subject\":{\"reference\":\"Patient/p1\"},\"encounter\":{\"reference\":\"Encounter/e1\"}}");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char *log = gw_log(&g);
	/* no token (a JWS starts with the base64url of '{"') in any log line */
	bool clean = log && !strstr(log, "eyJ");
	free(log);
	free(admin);
	int rc = gw_stop(&g, 5000);
	return clean && rc == 0 ? 0 : -1;
}

/* The resource ids of the entries of a Bundle text, "Type/id" each, space-separated. */
static void entry_refs(const char *body, char *out, size_t n)
{
	cJSON *b = cJSON_Parse(body);
	assert_non_null(b);
	out[0] = '\0';
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(b, "entry"))
	{
		const cJSON *res = cJSON_GetObjectItem(e, "resource");
		const cJSON *rt = cJSON_GetObjectItem(res, "resourceType"), *id = cJSON_GetObjectItem(res, "id");
		if (cJSON_IsString(rt) && cJSON_IsString(id) && strcmp(rt->valuestring, "OperationOutcome") != 0) {
			size_t l = strlen(out);
			snprintf(out + l, n - l, "%s%s/%s", l ? " " : "", rt->valuestring, id->valuestring);
		}
	}
	cJSON_Delete(b);
}

/* A batch: the forbidden entries answer 403 each, naming the scope; the
 * others proceed. A transaction with one forbidden entry is refused whole
 * and stores nothing. Conditional forms need search too. */
static void batch_entries_and_transactions_are_checked_one_by_one(void **state)
{
	(void)state;
	char *tok = token("system/Patient.cruds system/Observation.rs");
	static const char batch[] =
		"{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":["
		"{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"b1\"},\"request\":{\"method\":\"PUT\",\"url\":"
		"\"Patient/b1\"}},"
		"{\"resource\":{\"resourceType\":\"Encounter\",\"status\":\"planned\",\"class\":{\"code\":\"AMB\"}},"
		"\"request\":{\"method\":\"POST\",\"url\":\"Encounter\"}},"
		"{\"request\":{\"method\":\"GET\",\"url\":\"Observation/o1\"}},"
		"{\"request\":{\"method\":\"DELETE\",\"url\":\"Observation/o1\"}},"
		"{\"request\":{\"method\":\"GET\",\"url\":\"Encounter/e1\"}}]}";
	long before = refused("insufficient_scope");
	struct resp r;
	assert_int_equal(call(tok, "POST", "/fhir", NULL, batch, &r), 200);
	cJSON *b = cJSON_Parse(r.body);
	const cJSON *es = cJSON_GetObjectItem(b, "entry");
	assert_int_equal(cJSON_GetArraySize(es), 5);
	static const struct {
		const char *status, *names;
	} want[] = {{"201", NULL},
		    {"403", "system/Encounter.c"},
		    {"200", NULL},
		    {"403", "system/Observation.d"},
		    {"403", "system/Encounter.r"}};
	for (int i = 0; i < 5; i++) {
		const cJSON *e = cJSON_GetArrayItem(es, i);
		const char *st = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "response"), "status")->valuestring;
		char *text = cJSON_PrintUnformatted(e);
		if (strncmp(st, want[i].status, 3) != 0 || (want[i].names && !strstr(text, want[i].names)))
			fail_msg("entry %d: %s", i, text);
		free(text);
	}
	cJSON_Delete(b);
	resp_free(&r);
	assert_int_equal(refused("insufficient_scope"), before + 3);
	/* what was refused did not happen */
	assert_int_equal(status_of(admin, "GET", "/fhir/Observation/o1", NULL), 200);
	assert_int_equal(call(admin, "GET", "/fhir/Encounter?status=planned", NULL, NULL, &r), 200);
	assert_non_null(strstr(r.body, "\"total\":0"));
	resp_free(&r);

	/* a transaction with one forbidden entry: 403 naming it, nothing stored */
	static const char tx[] = "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
				 "{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"t1\"},\"request\":{\"method\":"
				 "\"PUT\",\"url\":\"Patient/t1\"}},"
				 "{\"resource\":{\"resourceType\":\"Observation\",\"id\":\"t2\",\"status\":\"final\","
				 "\"code\":{\"text\":\"x\"}},"
				 "\"request\":{\"method\":\"PUT\",\"url\":\"Observation/t2\"}}]}";
	before = refused("insufficient_scope");
	assert_int_equal(call(tok, "POST", "/fhir", NULL, tx, &r), 403);
	assert_non_null(strstr(r.body, "system/Observation.u"));
	assert_non_null(strstr(r.body, "Bundle.entry[1]"));
	resp_free(&r);
	assert_int_equal(refused("insufficient_scope"), before + 1);
	assert_int_equal(status_of(admin, "GET", "/fhir/Patient/t1", NULL), 404);

	/* conditional forms: ifNoneExist needs search too; a chain in the
	 * criteria needs every permission on every type */
	char *create_only = token("system/Patient.c");
	static const char cond[] =
		"{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":["
		"{\"resource\":{\"resourceType\":\"Patient\"},\"request\":{\"method\":\"POST\",\"url\":\"Patient\","
		"\"ifNoneExist\":\"family=Rivera\"}},"
		"{\"resource\":{\"resourceType\":\"Patient\"},\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}},"
		"{\"resource\":{\"resourceType\":\"Patient\"},\"request\":{\"method\":\"POST\",\"url\":\"Patient\","
		"\"ifNoneExist\":\"general-practitioner.name=x\"}}]}";
	assert_int_equal(call(create_only, "POST", "/fhir", NULL, cond, &r), 200);
	b = cJSON_Parse(r.body);
	char *text = cJSON_PrintUnformatted(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "entry"), 0));
	assert_non_null(strstr(text, "system/Patient.cs"));
	free(text);
	text = cJSON_PrintUnformatted(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "entry"), 1));
	assert_non_null(strstr(text, "\"201"));
	free(text);
	text = cJSON_PrintUnformatted(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "entry"), 2));
	assert_non_null(strstr(text, "system/*.cruds"));
	free(text);
	cJSON_Delete(b);
	resp_free(&r);
	/* the same token may not search */
	assert_int_equal(status_of(create_only, "POST", "/fhir/Patient/_search", ""), 403);
	free(create_only);
	free(tok);
}

/* _include and _revinclude leave out what the token may not read, and the
 * answer then gives no total; GET and POST _search alike. */
static void includes_leave_out_unreadable_types(void **state)
{
	(void)state;
	char *tok = token("system/Patient.rs system/Observation.rs");
	static const char inc[] =
		"/fhir/Observation?_id=o1&_include=Observation:subject&_include=Observation:encounter";
	static const char form[] = "application/x-www-form-urlencoded";
	static const struct {
		bool admin;
		const char *method, *path, *form;
		const char *refs;  /* the entries, in order */
		const char *total; /* NULL: none given */
		long left_out;     /* counted in /metrics */
	} cases[] = {
		{false, "GET", inc, NULL, "Observation/o1 Patient/p1", NULL, 1},
		/* with every scope the Encounter is there, and the total */
		{true, "GET", inc, NULL, "Observation/o1 Patient/p1 Encounter/e1", "\"total\":1", 0},
		/* a _revinclude of a forbidden type, in a form body */
		{false, "POST", "/fhir/Patient/_search",
		 "_id=p1&_revinclude=Encounter:subject&_revinclude=Observation:subject", "Patient/p1 Observation/o1",
		 NULL, 1},
		/* nothing left out: the total stays */
		{false, "GET", "/fhir/Patient?_id=p1&_revinclude=Observation:subject", NULL,
		 "Patient/p1 Observation/o1", "\"total\":1", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		long before = refused("left_out");
		struct resp r;
		char refs[512];
		long st = call(cases[i].admin ? admin : tok, cases[i].method, cases[i].path,
			       cases[i].form ? form : NULL, cases[i].form, &r);
		entry_refs(r.body, refs, sizeof refs);
		if (st != 200 || strcmp(refs, cases[i].refs) != 0 ||
		    (cases[i].total ? !strstr(r.body, cases[i].total) : strstr(r.body, "\"total\"") != NULL))
			fail_msg("%s %s: %ld %s", cases[i].method, cases[i].path, st, r.body);
		resp_free(&r);
		assert_int_equal(refused("left_out"), before + cases[i].left_out);
	}
	free(tok);
}

/* A chain or _has through a type needs search on it: 403 naming it. */
static void chains_need_search_on_each_type_they_pass(void **state)
{
	(void)state;
	char *obs = token("system/Observation.rs");
	char *obs_pat = token("system/Observation.rs system/Patient.rs");
	char *obs_enc = token("system/Observation.rs system/Encounter.rs");
	static const struct {
		int who; /* 0 obs, 1 obs_pat, 2 obs_enc */
		const char *method, *path, *body;
		long status;
		const char *names;
	} cases[] = {
		{0, "GET", "/fhir/Observation?subject:Patient.family=Rivera", NULL, 403, "system/Patient.s"},
		{1, "GET", "/fhir/Observation?subject:Patient.family=Rivera", NULL, 200, NULL},
		{0, "GET", "/fhir/Observation?patient.family=Rivera", NULL, 403, "system/Patient.s"},
		{0, "GET", "/fhir/Observation?encounter.status=finished", NULL, 403, "system/Encounter.s"},
		{2, "GET", "/fhir/Observation?encounter.status=finished", NULL, 200, NULL},
		{2, "GET", "/fhir/Observation?encounter.patient.family=Rivera", NULL, 403, "system/Patient.s"},
		{0, "POST", "/fhir/Observation/_search", "patient.family=Rivera", 403, "system/Patient.s"},
		{1, "GET", "/fhir/Patient?_has:Encounter:subject:status=finished", NULL, 403, "system/Encounter.s"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const char *tok = cases[i].who == 0 ? obs : cases[i].who == 1 ? obs_pat : obs_enc;
		long before = refused("insufficient_scope");
		struct resp r;
		long st = call(tok, cases[i].method, cases[i].path,
			       cases[i].body ? "application/x-www-form-urlencoded" : NULL, cases[i].body, &r);
		if (st != cases[i].status || (cases[i].names && !strstr(r.body, cases[i].names)))
			fail_msg("%s %s: %ld %s", cases[i].method, cases[i].path, st, r.body);
		if (st == 200 && !strstr(r.body, "Observation/o1"))
			fail_msg("%s: the chain found nothing: %s", cases[i].path, r.body);
		resp_free(&r);
		if (cases[i].status == 403)
			assert_int_equal(refused("insufficient_scope"), before + 1);
	}
	free(obs);
	free(obs_pat);
	free(obs_enc);
}

/* /ingest needs the write of every type the mapping writes (one missing
 * refuses the document whole); /export read on every type it gathered. */
static void ingest_and_export_need_every_type_they_touch(void **state)
{
	(void)state;
	static const char doc[] =
		"[{\"version\":1,\"person\":{\"identifier\":{\"system\":\"https://recovery.example.org/people\","
		"\"value\":\"S-1\"},\"name\":\"Sample Person\"},\"encounters\":[{\"id\":\"SC-1\",\"specialist\":{"
		"\"identifier\":{\"system\":\"https://recovery.example.org/"
		"staff\",\"value\":\"S-9\"},\"name\":\"Sample "
		"Specialist\"},\"start\":\"2025-11-03T09:00:00-05:00\",\"duration_minutes\":30,\"mode\":\"individual\","
		"\"setting\":\"community\",\"activities\":[\"goal-planning\"],\"billable\":false}]}]";
	char *partial = token("system/Patient.cruds system/Encounter.cruds");
	long before = refused("insufficient_scope");
	struct resp r;
	assert_int_equal(call(partial, "POST", "/ingest/peer-support", "application/json", doc, &r), 403);
	assert_non_null(strstr(r.body, "\"forbidden\""));
	assert_non_null(strstr(r.body, "nothing was stored"));
	resp_free(&r);
	assert_int_equal(refused("insufficient_scope"), before + 1);
	/* nothing of it was stored */
	assert_int_equal(call(admin, "GET", "/fhir/Encounter?identifier=SC-1", NULL, NULL, &r), 200);
	assert_non_null(strstr(r.body, "\"total\":0"));
	resp_free(&r);
	/* a preview stores nothing: any valid token */
	assert_int_equal(status_of(partial, "POST", "/ingest/peer-support?preview=true", doc), 200);

	char *writer = token("system/*.cu");
	assert_int_equal(call(writer, "POST", "/ingest/peer-support", "application/json", doc, &r), 201);
	resp_free(&r);

	/* the export of that person gathers Patient, Encounter and more */
	char *readers[] = {token("system/Patient.rs system/Encounter.rs"), token("system/*.rs")};
	before = refused("insufficient_scope");
	assert_int_equal(call(readers[0], "GET",
			      "/export/peer-support?patient=https://recovery.example.org/people%7CS-1", NULL, NULL, &r),
			 403);
	assert_non_null(strstr(r.body, "\"forbidden\""));
	assert_non_null(strstr(r.body, ".rs (or user/"));
	resp_free(&r);
	assert_int_equal(refused("insufficient_scope"), before + 1);
	assert_int_equal(call(readers[1], "GET",
			      "/export/peer-support?patient=https://recovery.example.org/people%7CS-1", NULL, NULL, &r),
			 200);
	assert_non_null(strstr(r.body, "SC-1"));
	resp_free(&r);
	/* /plugins still needs every permission */
	assert_int_equal(status_of(readers[1], "GET", "/plugins", NULL), 403);
	free(readers[0]);
	free(readers[1]);
	free(writer);
	free(partial);
}

/* A plugin operation needs any valid token; what it gathers from the store
 * needs read on every type gathered. $validate and $convert any token. */
static void operations_are_checked_by_what_they_touch(void **state)
{
	(void)state;
	char *enc = token("system/Encounter.rs");
	assert_int_equal(status_of(enc, "POST", "/fhir/$echo", "{\"resourceType\":\"Parameters\"}"), 200);
	assert_int_equal(status_of(enc, "POST", "/fhir/Patient/$validate", "{\"resourceType\":\"Patient\"}"), 200);
	static const char build[] = "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"encounter\","
				    "\"valueReference\":{\"reference\":\"Encounter/e1\"}}]}";
	long before = refused("insufficient_scope");
	struct resp r;
	assert_int_equal(call(enc, "POST", "/fhir/Claim/$build", NULL, build, &r), 403);
	assert_non_null(strstr(r.body, "system/Patient.rs"));
	resp_free(&r);
	assert_int_equal(refused("insufficient_scope"), before + 1);
	/* with read on what it gathers, it is not refused for scopes */
	char *readers = token("system/Encounter.rs system/Patient.rs system/Condition.rs system/Coverage.rs");
	assert_int_not_equal(status_of(readers, "POST", "/fhir/Claim/$build", build), 403);
	/* bulk export: a token that reads some types passes the gate (here to
	 * the kick-off's own 400 for a missing Prefer: respond-async); what
	 * it exports is decided type by type (test_bulk) */
	assert_int_equal(status_of(readers, "GET", "/fhir/$export", NULL), 400);
	free(readers);
	free(enc);
}

/* Granular scopes (SMART v2 ?category=, ?code=): a read or search sees only
 * what matches the scope's query, by the store's own search; a vread or an
 * instance's history the versions that match it; a stored resource outside
 * it reads as not found; a chain needs search on the types it passes; what
 * granular scopes do not confine (type and system history) is refused. */
static void granular_scopes_confine_reads_and_searches(void **state)
{
	(void)state;
	static const char cat[] = "http://terminology.hl7.org/CodeSystem/observation-category";
	char body[600];
	static const struct {
		const char *id, *category, *code;
	} obs[] = {
		{"g-lab", "laboratory", "2345-7"}, {"g-vit", "vital-signs", "8867-4"}, {"g-img", "imaging", "2345-7"}};
	for (size_t i = 0; i < 3; i++) {
		char path[64];
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Observation\",\"id\":\"%s\",\"status\":\"final\",\"category\":[{"
			 "\"coding\":[{\"system\":\"%s\",\"code\":\"%s\"}]}],\"code\":{\"coding\":[{\"system\":"
			 "\"http://loinc.org\",\"code\":\"%s\"}]}}",
			 obs[i].id, cat, obs[i].category, obs[i].code);
		snprintf(path, sizeof path, "/fhir/Observation/%s", obs[i].id);
		put(path, body);
	}
	char *lab = token("system/Observation.rs?category=laboratory system/Patient.rs");
	char *two = token("system/Observation.rs?category=laboratory system/Observation.rs?category=vital-signs");
	char *code = token("system/Observation.rs?code=http://loinc.org|2345-7");
	char *mixed = token("system/Observation.rs?category=laboratory system/Observation.rs?code=8867-4");
	static const struct {
		int who; /* 0 lab, 1 two, 2 code, 3 mixed */
		const char *method, *path;
		long status;
		const char *refs; /* a search's entries (ids in the store's order are compared as a set) */
	} cases[] = {
		{0, "GET", "/fhir/Observation/g-lab", 200, NULL},
		{0, "GET", "/fhir/Observation/g-vit", 404, NULL},
		{0, "GET", "/fhir/Observation/nope", 404, NULL},
		{0, "GET", "/fhir/Observation?_id=g-lab,g-vit,g-img,o1", 200, "g-lab"},
		{0, "GET", "/fhir/Observation?category=vital-signs", 200, ""},
		{1, "GET", "/fhir/Observation?_id=g-lab,g-vit,g-img,o1", 200, "g-lab g-vit"},
		{1, "GET", "/fhir/Observation/g-vit", 200, NULL},
		{1, "GET", "/fhir/Observation/g-img", 404, NULL},
		{2, "GET", "/fhir/Observation?_id=g-lab,g-vit,g-img,o1", 200, "g-lab g-img"},
		{2, "GET", "/fhir/Observation/g-img", 200, NULL},
		{2, "GET", "/fhir/Observation/g-vit", 404, NULL},
		/* two queries on different parameters cannot be one search */
		{3, "GET", "/fhir/Observation?_id=g-lab", 403, NULL},
		{3, "GET", "/fhir/Observation/g-vit", 200, NULL},
		/* vread and an instance's history: the versions their queries match */
		{0, "GET", "/fhir/Observation/g-lab/_history/1", 200, NULL},
		{0, "GET", "/fhir/Observation/g-vit/_history/1", 404, NULL},
		{0, "GET", "/fhir/Observation/g-lab/_history", 200, "g-lab"},
		{0, "GET", "/fhir/Observation/g-vit/_history", 404, NULL},
		{2, "GET", "/fhir/Observation/g-img/_history/1", 200, NULL},
		{2, "GET", "/fhir/Observation/g-vit/_history/1", 404, NULL},
		/* what granular scopes do not confine */
		{0, "GET", "/fhir/Observation/_history", 403, NULL},
		/* a chain: search on each type it passes, and the matches confined
		 * (o1 is Rivera's, outside the query) */
		{0, "GET", "/fhir/Observation?patient.family=Rivera", 200, ""},
		{1, "GET", "/fhir/Observation?patient.family=Rivera", 403, NULL},
		{0, "DELETE", "/fhir/Observation/g-vit", 403, NULL},
	};
	char *toks[] = {lab, two, code, mixed};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct resp r;
		long st = call(toks[cases[i].who], cases[i].method, cases[i].path, NULL, NULL, &r);
		bool ok = st == cases[i].status;
		if (ok && cases[i].refs) {
			char refs[512], want[512] = "";
			entry_refs(r.body, refs, sizeof refs);
			for (const char *w = cases[i].refs; *w;) {
				size_t n = strcspn(w, " ");
				char one[80];
				snprintf(one, sizeof one, "Observation/%.*s", (int)n, w);
				ok &= strstr(refs, one) != NULL;
				strcat(want, one);
				w += n;
				if (*w)
					w++, strcat(want, " ");
			}
			ok &= strlen(refs) == strlen(want);
		}
		if (!ok)
			fail_msg("%d %s %s: %ld %s", cases[i].who, cases[i].method, cases[i].path, st, r.body);
		resp_free(&r);
	}
	/* a resource outside the query reads exactly as one not stored */
	static const char nf[] = "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\",\"code\":"
				 "\"not-found\",\"diagnostics\":\"no Observation with id %s\"}]}";
	const char *ids[] = {"g-vit", "g-none"};
	char *who[] = {lab, admin};
	for (int i = 0; i < 2; i++) {
		struct resp r;
		char want[300];
		snprintf(want, sizeof want, nf, ids[i]);
		char path[64];
		snprintf(path, sizeof path, "/fhir/Observation/%s", ids[i]);
		assert_int_equal(call(who[i], "GET", path, NULL, NULL, &r), 404);
		assert_string_equal(r.body, want);
		resp_free(&r);
	}
	free(lab);
	free(two);
	free(code);
	free(mixed);
}

/* Granular scopes on writes: what a client sends must match one of its
 * write scopes' queries (else 403), and what it replaces, patches or
 * deletes too (else 404, as if not stored); a version outside them stays
 * as it was. */
static void granular_scopes_confine_writes(void **state)
{
	(void)state;
	static const char obs[] = "{\"resourceType\":\"Observation\",%s%s%s\"status\":\"final\",\"category\":[{"
				  "\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/observation-"
				  "category\",\"code\":\"%s\"}]}],\"code\":{\"text\":\"w\"}}";
	char lab_new[400], vit_new[400], vit_as_lab[400], lab_as_vit[400], lab_same[400];
	snprintf(lab_new, sizeof lab_new, obs, "", "", "", "laboratory");
	snprintf(vit_new, sizeof vit_new, obs, "", "", "", "vital-signs");
	snprintf(vit_as_lab, sizeof vit_as_lab, obs, "\"id\":\"", "w-vit", "\",", "laboratory");
	snprintf(lab_as_vit, sizeof lab_as_vit, obs, "\"id\":\"", "w-lab", "\",", "vital-signs");
	snprintf(lab_same, sizeof lab_same, obs, "\"id\":\"", "w-lab", "\",", "laboratory");
	char vit_stored[400];
	snprintf(vit_stored, sizeof vit_stored, obs, "\"id\":\"", "w-vit", "\",", "vital-signs");
	put("/fhir/Observation/w-lab", lab_same);
	put("/fhir/Observation/w-vit", vit_stored);
	char *w = token("system/Observation.cruds?category=laboratory");
	static const char note[] = "[{\"op\":\"add\",\"path\":\"/status\",\"value\":\"amended\"}]";
	const struct {
		const char *method, *path, *ct, *body;
		long status;
	} cases[] = {
		{"POST", "/fhir/Observation", NULL, lab_new, 201},
		{"POST", "/fhir/Observation", NULL, vit_new, 403},
		{"PUT", "/fhir/Observation/w-vit", NULL, vit_as_lab, 404},
		{"PUT", "/fhir/Observation/w-lab", NULL, lab_as_vit, 403},
		{"PUT", "/fhir/Observation/w-lab", NULL, lab_same, 200},
		{"PATCH", "/fhir/Observation/w-vit", "application/json-patch+json", note, 404},
		{"PATCH", "/fhir/Observation/w-lab", "application/json-patch+json", note, 200},
		{"DELETE", "/fhir/Observation/w-vit", NULL, NULL, 404},
		{"DELETE", "/fhir/Observation/w-lab", NULL, NULL, 200},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct resp r;
		long st = call(w, cases[i].method, cases[i].path, cases[i].ct, cases[i].body, &r);
		if (st != cases[i].status)
			fail_msg("%s %s: %ld %s", cases[i].method, cases[i].path, st, r.body);
		resp_free(&r);
	}
	struct resp r;
	assert_int_equal(call(admin, "GET", "/fhir/Observation/w-vit", NULL, NULL, &r), 200);
	assert_non_null(strstr(r.body, "\"versionId\":\"1\""));
	resp_free(&r);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(batch_entries_and_transactions_are_checked_one_by_one),
		cmocka_unit_test(includes_leave_out_unreadable_types),
		cmocka_unit_test(chains_need_search_on_each_type_they_pass),
		cmocka_unit_test(ingest_and_export_need_every_type_they_touch),
		cmocka_unit_test(operations_are_checked_by_what_they_touch),
		cmocka_unit_test(granular_scopes_confine_reads_and_searches),
		cmocka_unit_test(granular_scopes_confine_writes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
