/* End-to-end tests of the access record (core/api/audit.c): every request
 * the gateway answers leaves one AuditEvent in the IHE BALP shape — the
 * interaction, the outcome, the source address, the resources answered
 * (a search's ids and its query), the X-Request-Id — and each one is valid
 * R4 by the gateway's own $validate. AuditEvents cannot be written over
 * REST. The record is durable: after kill -9 during 2,000 mixed requests
 * from 8 connections, every request that was answered has its record —
 * also on PostgreSQL, read through a second gateway. With
 * audit.durability batch the records are written within the flush window
 * and a graceful stop writes what is still held. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/harness.h"
#include "pgserver.h"

/* Every AuditEvent in the store, in one array (owned by the caller). */
static cJSON *all_events(const struct gw *g) { return gw_search_all(g, "/fhir/AuditEvent?_count=1000"); }

/* The X-Request-Id an event names. */
static const char *request_id_of(const cJSON *ev)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(ev, "entity"))
	{
		const cJSON *ident = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "what"), "identifier");
		const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(ident, "value"));
		if (v)
			return v;
	}
	return NULL;
}

/* The events naming request id rid (how many into *n; the first returned). */
static const cJSON *event_for(const cJSON *events, const char *rid, int *n)
{
	const cJSON *found = NULL, *ev;
	*n = 0;
	cJSON_ArrayForEach(ev, events)
	{
		const char *v = request_id_of(ev);
		if (v && !strcmp(v, rid)) {
			if (!found)
				found = ev;
			(*n)++;
		}
	}
	return found;
}

/* True when ev names reference ref (exactly) as an entity. */
static bool names(const cJSON *ev, const char *ref)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(ev, "entity"))
	{
		const char *r = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "what"), "reference"));
		if (r && !strcmp(r, ref))
			return true;
	}
	return false;
}

/* The query entity's text (decoded), or "" when none. */
static void query_of(const cJSON *ev, char *out, size_t n)
{
	out[0] = '\0';
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(ev, "entity"))
	{
		const char *q = cJSON_GetStringValue(cJSON_GetObjectItem(e, "query"));
		if (!q)
			continue;
		char cmd[1200];
		snprintf(cmd, sizeof cmd, "printf '%%s' '%s' | base64 -d", q);
		FILE *p = popen(cmd, "r");
		assert_non_null(p);
		size_t got = fread(out, 1, n - 1, p);
		out[got] = '\0';
		pclose(p);
	}
}

static const char *subtype(const cJSON *ev)
{
	return cJSON_GetStringValue(
		cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(ev, "subtype"), 0), "code"));
}

/* $validate of the gateway answers all-OK for ev. */
static void assert_valid(const struct gw *g, const cJSON *ev)
{
	char *text = cJSON_PrintUnformatted(ev);
	static const char *ct[] = {"Content-Type: application/fhir+json", NULL};
	struct resp r;
	assert_int_equal(http_do(g, "POST", "/fhir/$validate", ct, text, strlen(text), &r), 0);
	if (r.status != 200 || strstr(r.body, "\"error\"") || strstr(r.body, "\"warning\""))
		fail_msg("not valid R4: %s\n%s", r.body, text);
	resp_free(&r);
	free(text);
}

/* One request with its own X-Request-Id rid, as client token (NULL: none);
 * returns the status and, when loc is not NULL, the Location into loc. */
static long fixture_call(const struct gw *g, const char *token, const char *method, const char *path, const char *ct,
			 const char *body, const char *rid, char *loc, size_t loclen)
{
	char h[128], a[2048], c[128];
	snprintf(h, sizeof h, "X-Request-Id: %s", rid);
	snprintf(a, sizeof a, "Authorization: Bearer %s", token ? token : "");
	snprintf(c, sizeof c, "Content-Type: %s", ct ? ct : "application/fhir+json");
	const char *hdrs[] = {h, c, token ? a : NULL, NULL};
	struct resp r;
	assert_int_equal(http_do(g, method, path, hdrs, body, body ? strlen(body) : 0, &r), 0);
	if (loc)
		resp_header(&r, "Location", loc, loclen);
	long st = r.status;
	resp_free(&r);
	return st;
}

/* The same without a token, with a FHIR JSON body. */
static long req_id(const struct gw *g, const char *method, const char *path, const char *body, const char *rid,
		   char *loc, size_t loclen)
{
	return fixture_call(g, NULL, method, path, NULL, body, rid, loc, loclen);
}

static void every_access_has_one_valid_record(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, NULL), 0);
	static const char pat[] = "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"name\":[{\"family\":\"Audit\"}]}";
	static const char obs[] = "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
				  "\"subject\":{\"reference\":\"Patient/p1\"}}";
	char loc[512] = "", oref[200];
	assert_int_equal(req_id(&g, "PUT", "/fhir/Patient/p1", pat, "r-update", NULL, 0), 201);
	assert_int_equal(req_id(&g, "POST", "/fhir/Observation", obs, "r-create", loc, sizeof loc), 201);
	const char *o = strstr(loc, "/fhir/");
	assert_non_null(o);
	snprintf(oref, sizeof oref, "%s", o + 6); /* Observation/ID/_history/1 */
	assert_int_equal(req_id(&g, "GET", "/fhir/Patient/p1", NULL, "r-read", NULL, 0), 200);
	assert_int_equal(req_id(&g, "GET", "/fhir/Patient/p1/_history/1", NULL, "r-vread", NULL, 0), 200);
	assert_int_equal(req_id(&g, "GET", "/fhir/Observation?subject=Patient/p1&_count=5", NULL, "r-search", NULL, 0),
			 200);
	assert_int_equal(req_id(&g, "GET", "/fhir/Patient/p1/_history", NULL, "r-history", NULL, 0), 200);
	assert_int_equal(req_id(&g, "GET", "/fhir/Patient/nope", NULL, "r-missing", NULL, 0), 404);
	assert_int_equal(req_id(&g, "POST", "/fhir",
				"{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{\"request\":{\"method\":"
				"\"GET\",\"url\":\"Patient/p1\"}}]}",
				"r-batch", NULL, 0),
			 200);
	long exp = req_id(&g, "GET", "/export/csv?period=2024-01", NULL, "r-export", NULL, 0);
	char opath[256];
	snprintf(opath, sizeof opath, "/fhir/%.*s", (int)(strstr(oref, "/_history") - oref), oref);
	assert_int_equal(req_id(&g, "DELETE", opath, NULL, "r-delete", NULL, 0), 200);
	/* not recorded: discovery and health */
	assert_int_equal(req_id(&g, "GET", "/fhir/metadata", NULL, "r-metadata", NULL, 0), 200);
	assert_int_equal(req_id(&g, "GET", "/healthz", NULL, "r-health", NULL, 0), 200);

	cJSON *events = all_events(&g);
	static const struct {
		const char *rid, *subtype, *action, *outcome;
	} want[] = {
		{"r-update", "update", "U", "0"},      {"r-create", "create", "C", "0"},
		{"r-read", "read", "R", "0"},          {"r-vread", "vread", "R", "0"},
		{"r-search", "search-type", "R", "0"}, {"r-history", "history-instance", "R", "0"},
		{"r-missing", "read", "R", "4"},       {"r-batch", "batch", "E", "0"},
		{"r-delete", "delete", "D", "0"},
	};
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		int n;
		const cJSON *ev = event_for(events, want[i].rid, &n);
		if (n != 1)
			fail_msg("%s: %d records", want[i].rid, n);
		assert_string_equal(subtype(ev), want[i].subtype);
		assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "action")), want[i].action);
		assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "outcome")), want[i].outcome);
		/* who: the source address and the gateway */
		const cJSON *ag = cJSON_GetArrayItem(cJSON_GetObjectItem(ev, "agent"), 0);
		assert_string_equal(
			cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ag, "network"), "address")),
			"127.0.0.1");
		assert_true(cJSON_IsTrue(cJSON_GetObjectItem(ag, "requestor")));
		assert_valid(&g, ev);
	}
	int n;
	/* what: the resources answered, the patient, the query */
	assert_true(names(event_for(events, "r-update", &n), "Patient/p1/_history/1"));
	assert_true(names(event_for(events, "r-create", &n), oref));
	assert_true(names(event_for(events, "r-read", &n), "Patient/p1/_history/1"));
	const cJSON *s = event_for(events, "r-search", &n);
	assert_true(names(s, oref));
	assert_true(names(s, "Patient/p1"));
	char q[512];
	query_of(s, q, sizeof q);
	assert_string_equal(q, "subject=Patient/p1&_count=5");
	assert_true(names(event_for(events, "r-missing", &n), "Patient/nope"));
	assert_true(names(event_for(events, "r-batch", &n), "Patient/p1/_history/1"));
	const cJSON *x = event_for(events, "r-export", &n);
	assert_int_equal(n, 1);
	assert_string_equal(subtype(x), "export");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(x, "outcome")), exp < 400 ? "0" : "4");
	assert_valid(&g, x);
	/* a deletion names what it deleted */
	char dref[256];
	snprintf(dref, sizeof dref, "%s", opath + 6);
	assert_true(names(event_for(events, "r-delete", &n), dref));
	event_for(events, "r-metadata", &n);
	assert_int_equal(n, 0);
	event_for(events, "r-health", &n);
	assert_int_equal(n, 0);
	cJSON_Delete(events);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* A request the HTTP layer refuses before routing, by its framing (an
 * encoded '/' or '\' in the path: 400, core/http/wire.c), is on the record
 * too: one AuditEvent with its X-Request-Id, a 4xx outcome naming the
 * status and the path as sent, nobody identified; valid R4. */
static void framing_refusals_are_recorded(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, NULL), 0);
	static const char *const asked[][2] = {
		{"/fhir/Patient/a%2Fb", "f-slash"},
		{"/fhir/Patient/a%5Cb", "f-backslash"},
		{"/fhir/Patient%2F..%2Fx?name=y", "f-type"},
	};
	enum { ASKED = sizeof asked / sizeof asked[0] };
	for (int i = 0; i < ASKED; i++)
		assert_int_equal(req_id(&g, "GET", asked[i][0], NULL, asked[i][1], NULL, 0), 400);
	/* written without holding the refusal: committed soon after it */
	cJSON *events = NULL;
	for (long until = now_ms() + 10000;;) {
		events = all_events(&g);
		int n, last;
		event_for(events, asked[ASKED - 1][1], &last);
		event_for(events, asked[0][1], &n);
		if ((n && last) || now_ms() > until)
			break;
		cJSON_Delete(events);
		sleep_ms(50);
	}
	for (int i = 0; i < ASKED; i++) {
		int n;
		const cJSON *ev = event_for(events, asked[i][1], &n);
		if (n != 1)
			fail_msg("%s: %d records, not 1", asked[i][0], n);
		assert_string_equal(cJSON_GetObjectItem(ev, "outcome")->valuestring, "4");
		const char *desc = cJSON_GetObjectItem(ev, "outcomeDesc")->valuestring;
		char want[200];
		snprintf(want, sizeof want, "400 Bad Request: GET %.*s", (int)strcspn(asked[i][0], "?"), asked[i][0]);
		if (strcmp(desc, want))
			fail_msg("outcomeDesc \"%s\", not \"%s\"", desc, want);
		char *text = cJSON_PrintUnformatted(ev);
		assert_non_null(strstr(text, "\"display\":\"anonymous\""));
		free(text);
		assert_valid(&g, ev);
	}
	cJSON_Delete(events);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* Ingest, the billing extract and Claim/$build (from the store) each leave
 * one valid record, with its action and outcome. */
#define BILLING_SETTINGS                                                                                  \
	"\"plugins\":{\"billing\":{"                                                                      \
	"\"billing_provider\":{\"npi\":\"1555555550\",\"name\":\"Example Peer Recovery Center\"},"        \
	"\"unit_rules\":{\"nj-h0038\":{\"unit_minutes\":15,\"round_up_at\":15,\"max_units_per_day\":4}}," \
	"\"payers\":{\"NJ-MCD\":{\"H0038\":\"nj-h0038\"}},"                                               \
	"\"code_periods\":{\"http://hl7.org/fhir/sid/icd-10-cm\":{\"from\":\"2025-10-01\",\"to\":\"2026-09-30\"}}}}"

static void ingest_extract_and_build_have_one_valid_record(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, BILLING_SETTINGS), 0);
	size_t len = 0;
	char *doc = read_whole_file("tests/fixtures/billing/peer-support-november.json", &len);
	assert_non_null(doc);
	const char *ih[] = {"X-Request-Id: r-ingest", "Content-Type: application/json", NULL};
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/ingest/peer-support", ih, doc, len, &r), 0);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	free(doc);
	const char *xh[] = {"X-Request-Id: r-extract", "Accept: application/json", NULL};
	assert_int_equal(http_do(&g, "GET", "/export/billing?from=2025-11-01&to=2025-11-30", xh, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	const char *params = "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"from\",\"valueDate\":"
			     "\"2025-11-01\"},{\"name\":\"to\",\"valueDate\":\"2025-11-30\"}]}";
	assert_int_equal(req_id(&g, "POST", "/fhir/Claim/$build", params, "r-build", NULL, 0), 200);

	cJSON *events = all_events(&g);
	static const struct {
		const char *rid, *subtype, *action;
	} want[] = {{"r-ingest", "ingest", "C"}, {"r-extract", "export", "R"}, {"r-build", "operation", "E"}};
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		int n;
		const cJSON *ev = event_for(events, want[i].rid, &n);
		if (n != 1)
			fail_msg("%s: %d records", want[i].rid, n);
		assert_string_equal(subtype(ev), want[i].subtype);
		assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "action")), want[i].action);
		assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "outcome")), "0");
		assert_valid(&g, ev);
	}
	cJSON_Delete(events);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

static void audit_events_are_read_only(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, NULL), 0);
	static const char ev[] = "{\"resourceType\":\"AuditEvent\",\"id\":\"a1\",\"type\":{\"code\":\"rest\"},"
				 "\"recorded\":\"2024-01-01T00:00:00Z\",\"agent\":[{\"requestor\":true}],"
				 "\"source\":{\"observer\":{\"display\":\"x\"}}}";
	assert_int_equal(req_id(&g, "POST", "/fhir/AuditEvent", ev, "w-create", NULL, 0), 405);
	assert_int_equal(req_id(&g, "PUT", "/fhir/AuditEvent/a1", ev, "w-update", NULL, 0), 405);
	assert_int_equal(req_id(&g, "PATCH", "/fhir/AuditEvent/a1", "[]", "w-patch", NULL, 0), 405);
	assert_int_equal(req_id(&g, "GET", "/fhir/AuditEvent/a1", NULL, "w-read", NULL, 0), 404);
	cJSON *events = all_events(&g);
	const cJSON *e;
	cJSON_ArrayForEach(e, events)
	{
		const char *rid = request_id_of(e);
		if (rid && !strcmp(rid, "w-update"))
			assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(e, "outcome")), "4");
	}
	/* an existing record cannot be changed or deleted either */
	char path[200];
	const cJSON *first = cJSON_GetArrayItem(events, 0);
	assert_non_null(first);
	snprintf(path, sizeof path, "/fhir/AuditEvent/%s", cJSON_GetStringValue(cJSON_GetObjectItem(first, "id")));
	assert_int_equal(req_id(&g, "DELETE", path, NULL, "w-delete", NULL, 0), 405);
	char *text = cJSON_PrintUnformatted(first);
	assert_int_equal(req_id(&g, "PUT", path, text, "w-over", NULL, 0), 405);
	free(text);
	assert_int_equal(req_id(&g, "GET", path, NULL, "w-still", NULL, 0), 200);
	cJSON_Delete(events);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* ------------------------------------------------ the record's text */

#define RECORDS_FIXTURE "tests/fixtures/audit/records.ndjson"
#define FP32 "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"

/* Replaces every "from" in *text with "to" (a new string). */
static void replace_all(char **text, const char *from, const char *to)
{
	size_t nf = strlen(from), nt = strlen(to), n = 0;
	for (const char *p = *text; (p = strstr(p, from)); p += nf)
		n++;
	if (!n || !nf)
		return;
	char *out = malloc(strlen(*text) + n * nt + 1), *o = out;
	assert_non_null(out);
	const char *p = *text, *q;
	while ((q = strstr(p, from))) {
		memcpy(o, p, (size_t)(q - p));
		o += q - p;
		memcpy(o, to, nt);
		o += nt;
		p = q + nf;
	}
	strcpy(o, p);
	free(*text);
	*text = out;
}

/* Every shape of request's record, as stored, is the one in
 * RECORDS_FIXTURE: each line is the record of one request (in request
 * order) with what changes from run to run masked (its id and meta, the
 * time recorded, the gateway's port, the id of the resource created).
 * CW_WRITE_FIXTURE=1 rewrites the file from this build instead. */
static void each_record_is_the_one_in_the_fixture(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(
		gw_start(&g, "\"auth\":{\"clients\":["
			     "{\"client_id\":\"clinic\",\"purpose\":\"treatment\",\"scopes\":\"system/*.cruds\","
			     "\"tls_fingerprint\":\"" FP32 "\"},"
			     "{\"client_id\":\"auditor\",\"purpose\":\"operations\","
			     "\"scopes\":\"system/*.rs system/crosswalk.admin\",\"tls_fingerprint\":\"" FP32 "\"}]}"),
		0);
	char *tok = gw_token(&g, "clinic", "system/*.cruds");
	char *adm = gw_token(&g, "auditor", "system/*.rs system/crosswalk.admin");
	static const char pat[] = "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"name\":[{\"family\":\"Fixture\"}]}";
	static const char obs[] = "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\","
				  "\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":\"Patient/p1\"}}";
	static const char obs2[] = "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"y\"},"
				   "\"subject\":{\"reference\":\"Patient/p2\"}}";
	static const char batch[] =
		"{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{\"request\":{\"method\":"
		"\"GET\",\"url\":\"Patient/p1\"}},{\"request\":{\"method\":\"GET\",\"url\":"
		"\"Observation/o1\"}}]}";
	static const char bundle[] = "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":"
				     "{\"resourceType\":\"Patient\",\"id\":\"c1\"}},{\"resource\":{\"resourceType\":"
				     "\"Observation\",\"id\":\"c2\",\"status\":\"final\",\"code\":{\"text\":\"z\"},"
				     "\"subject\":{\"reference\":\"Patient/c1\"}}}]}";
	char loc[512] = "", created[128] = "";
	static const char *const rids[] = {"f-put",      "f-obs",     "f-create",    "f-read",  "f-vread", "f-search",
					   "f-form",     "f-missing", "f-bad-id",    "f-405",   "f-batch", "f-history",
					   "f-validate", "f-convert", "f-anonymous", "f-delete"};
	assert_int_equal(fixture_call(&g, tok, "PUT", "/fhir/Patient/p1", NULL, pat, rids[0], NULL, 0), 201);
	assert_int_equal(fixture_call(&g, tok, "PUT", "/fhir/Observation/o1", NULL, obs, rids[1], NULL, 0), 201);
	assert_int_equal(fixture_call(&g, tok, "POST", "/fhir/Observation", NULL, obs2, rids[2], loc, sizeof loc), 201);
	const char *o = strstr(loc, "/fhir/Observation/");
	assert_non_null(o);
	snprintf(created, sizeof created, "%.*s", (int)strcspn(o + 18, "/"), o + 18);
	assert_int_equal(fixture_call(&g, tok, "GET", "/fhir/Patient/p1", NULL, NULL, rids[3], NULL, 0), 200);
	assert_int_equal(fixture_call(&g, tok, "GET", "/fhir/Patient/p1/_history/1", NULL, NULL, rids[4], NULL, 0),
			 200);
	assert_int_equal(fixture_call(&g, tok, "GET", "/fhir/Observation?subject=Patient/p1&_sort=_id", NULL, NULL,
				      rids[5], NULL, 0),
			 200);
	assert_int_equal(fixture_call(&g, tok, "POST", "/fhir/Observation/_search?_count=1",
				      "application/x-www-form-urlencoded", "subject=Patient/p1", rids[6], NULL, 0),
			 200);
	assert_int_equal(fixture_call(&g, tok, "GET", "/fhir/Patient/nope", NULL, NULL, rids[7], NULL, 0), 404);
	long bad = fixture_call(&g, tok, "GET", "/fhir/Patient/a%22b", NULL, NULL, rids[8], NULL, 0);
	assert_true(bad >= 400);
	assert_int_equal(fixture_call(&g, tok, "POST", "/fhir/AuditEvent", NULL, "{}", rids[9], NULL, 0), 405);
	assert_int_equal(fixture_call(&g, tok, "POST", "/fhir", NULL, batch, rids[10], NULL, 0), 200);
	assert_int_equal(fixture_call(&g, tok, "GET", "/fhir/Patient/p1/_history", NULL, NULL, rids[11], NULL, 0), 200);
	assert_int_equal(fixture_call(&g, tok, "POST", "/fhir/Observation/$validate", NULL, obs, rids[12], NULL, 0),
			 200);
	assert_int_equal(fixture_call(&g, tok, "POST", "/fhir/$convert", NULL, bundle, rids[13], NULL, 0), 200);
	assert_int_equal(fixture_call(&g, NULL, "GET", "/fhir/Patient/p1", NULL, NULL, rids[14], NULL, 0), 401);
	assert_int_equal(fixture_call(&g, tok, "DELETE", "/fhir/Observation/o1", NULL, NULL, rids[15], NULL, 0), 200);

	struct resp r;
	assert_int_equal(gw_call_bearer(&g, adm, "GET", "/fhir/AuditEvent?_count=1000", NULL, NULL, &r), 200);
	cJSON *b = cJSON_Parse(r.body);
	resp_free(&r);
	assert_non_null(b);
	cJSON *events = cJSON_CreateArray();
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(b, "entry"))
	{
		cJSON_AddItemToArray(events, cJSON_Duplicate(cJSON_GetObjectItem(e, "resource"), 1));
	}
	cJSON_Delete(b);
	/* $convert answers with what was sent: its record names the operation
	 * and the outcome, not the resources converted (nothing stored) */
	int nc;
	const cJSON *conv = event_for(events, "f-convert", &nc);
	assert_int_equal(nc, 1);
	assert_false(names(conv, "Patient/c1"));
	assert_false(names(conv, "Observation/c2"));
	const cJSON *op = cJSON_GetArrayItem(cJSON_GetObjectItem(conv, "subtype"), 1);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(op, "system")), "urn:crosswalk:operation");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(op, "code")), "$convert");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(conv, "outcome")), "0");
	char *ct = cJSON_PrintUnformatted(conv);
	static const char *ctype[] = {"Content-Type: application/fhir+json", NULL};
	char ah[2048];
	snprintf(ah, sizeof ah, "Authorization: Bearer %s", adm);
	const char *vh[] = {ctype[0], ah, NULL};
	assert_int_equal(http_do(&g, "POST", "/fhir/$validate", vh, ct, strlen(ct), &r), 0);
	if (r.status != 200 || strstr(r.body, "\"error\"") || strstr(r.body, "\"warning\""))
		fail_msg("not valid R4: %s\n%s", r.body, ct);
	resp_free(&r);
	free(ct);
	char port[32];
	snprintf(port, sizeof port, "127.0.0.1:%u", g.port);
	char *got = calloc(1, 1);
	size_t got_len = 0;
	for (size_t i = 0; i < sizeof rids / sizeof *rids; i++) {
		int n;
		const cJSON *ev = event_for(events, rids[i], &n);
		if (n != 1)
			fail_msg("%s: %d records", rids[i], n);
		cJSON *copy = cJSON_Duplicate(ev, 1);
		cJSON_DeleteItemFromObject(copy, "id");
		cJSON_DeleteItemFromObject(copy, "meta");
		cJSON_ReplaceItemInObject(copy, "recorded", cJSON_CreateString("RECORDED"));
		char *text = cJSON_PrintUnformatted(copy);
		cJSON_Delete(copy);
		replace_all(&text, port, "127.0.0.1:PORT");
		replace_all(&text, created, "CREATED");
		size_t tl = strlen(text);
		got = realloc(got, got_len + tl + 2);
		assert_non_null(got);
		memcpy(got + got_len, text, tl);
		got_len += tl;
		got[got_len++] = '\n';
		got[got_len] = '\0';
		free(text);
	}
	cJSON_Delete(events);
	const char *w = getenv("CW_WRITE_FIXTURE");
	if (w && !strcmp(w, "1")) {
		FILE *f = fopen(RECORDS_FIXTURE, "w");
		assert_non_null(f);
		fputs(got, f);
		fclose(f);
	}
	FILE *f = fopen(RECORDS_FIXTURE, "r");
	assert_non_null(f);
	char *want = calloc(1, 1 << 20);
	size_t wl = fread(want, 1, (1 << 20) - 1, f);
	fclose(f);
	want[wl] = '\0';
	/* line by line, for a readable failure */
	const char *gp = got, *wp = want;
	for (size_t i = 0; i < sizeof rids / sizeof *rids; i++) {
		size_t gn = strcspn(gp, "\n"), wn = strcspn(wp, "\n");
		if (gn != wn || memcmp(gp, wp, gn) != 0)
			fail_msg("%s's record differs from the fixture:\n got  %.*s\n want %.*s", rids[i], (int)gn, gp,
				 (int)wn, wp);
		gp += gn + (gp[gn] == '\n');
		wp += wn + (wp[wn] == '\n');
	}
	assert_string_equal(gp, wp); /* nothing more on either side */
	free(want);
	free(got);
	free(tok);
	free(adm);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* ------------------------------------------------ kill -9 under load */

#define LOAD_THREADS 8
#define LOAD_TOTAL 2000

struct load {
	const struct gw *g;
	int from, to;
	atomic_int *answered_total;
	bool *answered; /* by request number */
};

static void *load_main(void *arg)
{
	struct load *l = arg;
	char body[256], rid[64], h[96], path[128];
	for (int i = l->from; i < l->to; i++) {
		snprintf(rid, sizeof rid, "load-%d", i);
		snprintf(h, sizeof h, "X-Request-Id: %s", rid);
		const char *hdrs[] = {h, "Content-Type: application/fhir+json", NULL};
		const char *method = "GET", *b = NULL;
		switch (i % 4) {
		case 0:
			method = "PUT";
			snprintf(path, sizeof path, "/fhir/Patient/k%d", i % 50);
			snprintf(body, sizeof body,
				 "{\"resourceType\":\"Patient\",\"id\":\"k%d\",\"gender\":\"other\"}", i % 50);
			b = body;
			break;
		case 1:
			snprintf(path, sizeof path, "/fhir/Patient/k%d", (i / 4) % 50);
			break;
		case 2:
			snprintf(path, sizeof path, "/fhir/Patient?gender=other&_count=3");
			break;
		default:
			method = "POST";
			snprintf(path, sizeof path, "/fhir/Observation");
			snprintf(body, sizeof body,
				 "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"%d\"}}",
				 i);
			b = body;
		}
		struct resp r;
		if (http_do_within(l->g, 5000, method, path, hdrs, b, b ? strlen(b) : 0, &r) != 0) {
			resp_free(&r);
			continue; /* the gateway is gone: not answered */
		}
		if (r.status > 0) {
			l->answered[i] = true;
			atomic_fetch_add(l->answered_total, 1);
		}
		resp_free(&r);
	}
	return NULL;
}

/* Puts LOAD_TOTAL mixed requests through g from LOAD_THREADS connections
 * and kills it (kill -9) halfway; answered[i] tells whether request i was
 * answered. */
static void load_and_kill_9(struct gw *g, bool answered[LOAD_TOTAL])
{
	memset(answered, 0, LOAD_TOTAL * sizeof *answered);
	atomic_int total = 0;
	struct load l[LOAD_THREADS];
	pthread_t t[LOAD_THREADS];
	for (int i = 0; i < LOAD_THREADS; i++) {
		l[i] = (struct load){g, i * (LOAD_TOTAL / LOAD_THREADS), (i + 1) * (LOAD_TOTAL / LOAD_THREADS), &total,
				     answered};
		assert_int_equal(pthread_create(&t[i], NULL, load_main, &l[i]), 0);
	}
	/* kill -9 in the middle of the load */
	long until = now_ms() + 60000;
	while (atomic_load(&total) < LOAD_TOTAL / 2 && now_ms() < until)
		sleep_ms(2);
	assert_int_equal(kill(g->pid, SIGKILL), 0);
	for (int i = 0; i < LOAD_THREADS; i++)
		pthread_join(t[i], NULL);
	gw_stop(g, 5000); /* reaps it */
	int n_answered = atomic_load(&total);
	assert_true(n_answered >= LOAD_TOTAL / 2);
	assert_true(n_answered < LOAD_TOTAL); /* the kill came under load */
	fprintf(stderr, "# %d of %d requests answered before kill -9\n", n_answered, LOAD_TOTAL);
}

/* Every answered request has its record, read through reader. */
static void assert_all_recorded(const struct gw *reader, const bool answered[LOAD_TOTAL])
{
	cJSON *events = all_events(reader);
	static bool recorded[LOAD_TOTAL];
	memset(recorded, 0, sizeof recorded);
	const cJSON *e;
	cJSON_ArrayForEach(e, events)
	{
		const char *rid = request_id_of(e);
		if (rid && !strncmp(rid, "load-", 5)) {
			int i = atoi(rid + 5);
			if (i >= 0 && i < LOAD_TOTAL)
				recorded[i] = true;
		}
	}
	int missing = 0;
	for (int i = 0; i < LOAD_TOTAL; i++)
		if (answered[i] && !recorded[i]) {
			if (missing++ < 5)
				fprintf(stderr, "# load-%d was answered but has no record\n", i);
		}
	fprintf(stderr, "# %d answered requests without a record\n", missing);
	assert_int_equal(missing, 0);
	cJSON_Delete(events);
}

static void every_answered_request_is_recorded_after_kill_9(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, NULL), 0);
	static bool answered[LOAD_TOTAL];
	load_and_kill_9(&g, answered);
	/* a new gateway on the same data */
	struct gw g2;
	char extra[400];
	snprintf(extra, sizeof extra, "\"data_dir\":\"%s/var\"", g.dir);
	assert_int_equal(gw_start(&g2, extra), 0);
	assert_all_recorded(&g2, answered);
	assert_int_equal(gw_stop(&g2, 5000), 0);
}

/* The same on PostgreSQL with two gateways: the records of the gateway
 * killed are found by a search on the other, which kept running. */
static void every_answered_request_is_recorded_after_kill_9_on_postgresql(void **state)
{
	(void)state;
	struct pg_server pg;
	struct gw g[2];
	assert_int_equal(harness_pg_gateways(&pg, g, 2, NULL), 0);
	static bool answered[LOAD_TOTAL];
	load_and_kill_9(&g[0], answered);
	assert_all_recorded(&g[1], answered);
	/* the records of both gateways, the killed one's included, form one
	 * valid chain */
	char store[512], out[8192];
	harness_pg_store(store, sizeof store, &pg, NULL);
	const char *check[] = {"check", NULL};
	int rc = gw_run_command(store, check, 120000, out, sizeof out);
	if (rc != 0)
		fprintf(stderr, "# %s\n", out);
	assert_int_equal(rc, 0);
	const char *chained = strstr(out, "access records chained: ");
	const char *waiting = chained ? strstr(chained, "; ") : NULL;
	waiting = waiting ? strstr(waiting + 2, "; ") : NULL;
	assert_non_null(waiting);
	long n_answered = 0;
	for (int i = 0; i < LOAD_TOTAL; i++)
		n_answered += answered[i];
	assert_true(strtol(chained + strlen("access records chained: "), NULL, 10) + strtol(waiting + 2, NULL, 10) >=
		    n_answered);
	assert_int_equal(gw_stop(&g[1], 5000), 0);
	pg_server_stop(&pg);
}

/* ------------------------------------------------ batch */

static void batch_records_are_written_within_the_window_and_at_stop(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, "\"audit\":{\"durability\":\"batch\",\"flush_ms\":200}"), 0);
	assert_int_equal(req_id(&g, "GET", "/fhir/Patient/b1", NULL, "b-1", NULL, 0), 404);
	sleep_ms(1000);
	cJSON *events = all_events(&g);
	int n;
	event_for(events, "b-1", &n);
	assert_int_equal(n, 1);
	cJSON_Delete(events);
	/* a record still held when the gateway stops is written */
	assert_int_equal(req_id(&g, "GET", "/fhir/Patient/b2", NULL, "b-2", NULL, 0), 404);
	assert_int_equal(gw_stop(&g, 5000), 0);
	struct gw g2;
	char extra[400];
	snprintf(extra, sizeof extra, "\"data_dir\":\"%s/var\"", g.dir);
	assert_int_equal(gw_start(&g2, extra), 0);
	events = all_events(&g2);
	event_for(events, "b-2", &n);
	assert_int_equal(n, 1);
	cJSON_Delete(events);
	assert_int_equal(gw_stop(&g2, 5000), 0);
}

/* The batch queue is bounded (audit.batch_max): once it holds that many
 * records, an answer waits for its own record as a durable one does, and
 * nothing is dropped. With a window of a minute, only the records still in
 * the queue are missing right after the answers; all are there after a
 * graceful stop. */
static void a_full_batch_queue_makes_answers_wait_for_their_records(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, "\"audit\":{\"durability\":\"batch\",\"flush_ms\":60000,\"batch_max\":2}"), 0);
	char rid[32];
	for (int i = 0; i < 8; i++) {
		snprintf(rid, sizeof rid, "bq-%d", i);
		assert_int_equal(req_id(&g, "GET", "/fhir/Patient/bq", NULL, rid, NULL, 0), 404);
	}
	cJSON *events = all_events(&g);
	int written = 0, n;
	for (int i = 0; i < 8; i++) {
		snprintf(rid, sizeof rid, "bq-%d", i);
		event_for(events, rid, &n);
		assert_true(n <= 1);
		written += n;
	}
	cJSON_Delete(events);
	if (written < 8 - 2)
		fail_msg("%d of 8 records written with a queue of 2", written);
	assert_int_equal(gw_stop(&g, 5000), 0);
	struct gw g2;
	char extra[400];
	snprintf(extra, sizeof extra, "\"data_dir\":\"%s/var\"", g.dir);
	assert_int_equal(gw_start(&g2, extra), 0);
	events = all_events(&g2);
	for (int i = 0; i < 8; i++) {
		snprintf(rid, sizeof rid, "bq-%d", i);
		event_for(events, rid, &n);
		assert_int_equal(n, 1);
	}
	cJSON_Delete(events);
	assert_int_equal(gw_stop(&g2, 5000), 0);
}

/* AuditEvents are indexed by the parameters an access record is searched
 * by (docs/audit.md); the others are not offered: a search by one is
 * refused and the CapabilityStatement does not list it. */
static void audit_events_are_searched_by_the_parameters_indexed(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, NULL), 0);
	static const char pat[] = "{\"resourceType\":\"Patient\",\"id\":\"ix1\"}";
	assert_int_equal(req_id(&g, "PUT", "/fhir/Patient/ix1", pat, "ix-put", NULL, 0), 201);
	assert_int_equal(req_id(&g, "GET", "/fhir/Patient/ix1", NULL, "ix-read", NULL, 0), 200);
	struct resp r;
	assert_int_equal(
		http_do(&g, "GET", "/fhir/AuditEvent?entity=Patient/ix1&subtype=read&outcome=0", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *b = cJSON_Parse(r.body);
	resp_free(&r);
	cJSON *entries = cJSON_GetObjectItem(b, "entry");
	assert_int_equal(cJSON_GetArraySize(entries), 1);
	cJSON *ev = cJSON_GetObjectItem(cJSON_GetArrayItem(entries, 0), "resource");
	assert_string_equal(request_id_of(ev), "ix-read");
	cJSON_Delete(b);
	assert_int_equal(http_do(&g, "GET", "/fhir/AuditEvent?patient=Patient/ix1&date=ge2020-01-01&type=rest", NULL,
				 NULL, 0, &r),
			 0);
	assert_int_equal(r.status, 200);
	b = cJSON_Parse(r.body);
	resp_free(&r);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(b, "entry")), 2);
	cJSON_Delete(b);
	static const char *const refused[] = {"site=127.0.0.1", "entity-type=2", "address=127.0.0.1", "entity-role=1"};
	char path[128];
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		snprintf(path, sizeof path, "/fhir/AuditEvent?%s", refused[i]);
		assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
		if (r.status != 400)
			fail_msg("%s: %ld %s", path, r.status, r.body);
		resp_free(&r);
	}
	assert_int_equal(http_do(&g, "GET", "/fhir/metadata", NULL, NULL, 0, &r), 0);
	b = cJSON_Parse(r.body);
	resp_free(&r);
	bool entity = false, site = false;
	const cJSON *res, *sp;
	cJSON_ArrayForEach(res, cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "rest"), 0), "resource"))
	{
		if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(res, "type")), "AuditEvent") != 0)
			continue;
		cJSON_ArrayForEach(sp, cJSON_GetObjectItem(res, "searchParam"))
		{
			const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(sp, "name"));
			entity |= !strcmp(name, "entity");
			site |= !strcmp(name, "site");
		}
	}
	cJSON_Delete(b);
	assert_true(entity);
	assert_false(site);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

static void audit_can_be_turned_off(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, "\"audit\":{\"enabled\":false}"), 0);
	assert_int_equal(req_id(&g, "GET", "/fhir/Patient/o1", NULL, "o-1", NULL, 0), 404);
	cJSON *events = all_events(&g);
	assert_int_equal(cJSON_GetArraySize(events), 0);
	cJSON_Delete(events);
	char out[2048];
	assert_int_not_equal(
		gw_run_expect_exit("\"audit\":{\"durability\":\"sometimes\"}", NULL, 10000, out, sizeof out), 0);
	assert_non_null(strstr(out, "audit.durability"));
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* Routed upstream like any type, AuditEvents reach the upstream through
 * the outbox (the real upstream of tests/upstream); each delivery attempt of
 * another type is on the record, naming the version delivered. */
static void records_are_delivered_upstream_and_deliveries_recorded(void **state)
{
	(void)state;
	UPSTREAM_NEEDED();
	/* its npm packages (a fresh clone has none yet) */
	assert_int_equal(upstream_install(), 0);
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u,
			   "\"AuditEvent\":\"store-and-forward\",\"Patient\":\"store-and-forward\"", NULL);
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	static const char pat[] = "{\"resourceType\":\"Patient\",\"id\":\"up1\"}";
	assert_int_equal(req_id(&g, "PUT", "/fhir/Patient/up1", pat, "d-put", NULL, 0), 201);
	assert_true(gw_outbox_drained(&g, 30000));
	cJSON *events = all_events(&g);
	int n;
	const cJSON *ev = event_for(events, "d-put", &n);
	assert_int_equal(n, 1);
	char path[200];
	snprintf(path, sizeof path, "/fhir/R4/AuditEvent/%s", cJSON_GetStringValue(cJSON_GetObjectItem(ev, "id")));
	struct resp r;
	assert_int_equal(upstream_do(&u, "GET", path, NULL, &r), 0);
	if (r.status != 200)
		fail_msg("GET %s upstream: %ld %s", path, r.status, r.body);
	assert_non_null(strstr(r.body, "d-put"));
	resp_free(&r);
	/* the Patient's delivery is recorded; the AuditEvents' are not */
	int deliveries = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, events)
	{
		const char *code = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "type"), "code"));
		if (code && !strcmp(code, "110106")) {
			assert_true(names(e, "Patient/up1/_history/1"));
			assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(e, "outcome")), "0");
			assert_valid(&g, e);
			deliveries++;
		}
	}
	assert_int_equal(deliveries, 1);
	cJSON_Delete(events);
	assert_int_equal(gw_stop(&g, 5000), 0);
	upstream_stop(&u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_access_has_one_valid_record),
		cmocka_unit_test(framing_refusals_are_recorded),
		cmocka_unit_test(ingest_extract_and_build_have_one_valid_record),
		cmocka_unit_test(audit_events_are_read_only),
		cmocka_unit_test(each_record_is_the_one_in_the_fixture),
		cmocka_unit_test(every_answered_request_is_recorded_after_kill_9),
		cmocka_unit_test(every_answered_request_is_recorded_after_kill_9_on_postgresql),
		cmocka_unit_test(batch_records_are_written_within_the_window_and_at_stop),
		cmocka_unit_test(a_full_batch_queue_makes_answers_wait_for_their_records),
		cmocka_unit_test(audit_events_are_searched_by_the_parameters_indexed),
		cmocka_unit_test(audit_can_be_turned_off),
		cmocka_unit_test(records_are_delivered_upstream_and_deliveries_recorded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
