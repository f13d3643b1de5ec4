/* End-to-end tests of the bridge to an upstream FHIR server, against a real,
 * independent one (tests/upstream: Medplum's FHIR router over its in-memory
 * repository, started here on 127.0.0.1 and stopped by its PID):
 * pass-through of every interaction with URL rewriting; batches and
 * transactions of pass-through types, and batches mixing them with local
 * ones (a mixed transaction refused); store-and-forward
 * with the upstream down during a push of 1,000 resources, then back; kill -9
 * of the gateway during delivery; 5xx, 429 with Retry-After, stalls, refusals
 * (dead letter, then $retry) and oversized answers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "e2e/harness.h"

static const char *fj[] = {"Content-Type: application/fhir+json", NULL};

static const char *s(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int setup(void **state)
{
	(void)state;
	if (upstream_missing())
		return 0; /* the tests that need it skip */
	if (upstream_install() != 0) {
		fprintf(stderr, "# npm install of tests/upstream failed (see build/upstream-install.log)\n");
		return -1;
	}
	return 0;
}

static void fault(const struct upstream_srv *u, const char *json) { assert_int_equal(upstream_fault(u, json), 0); }

static void pass_through_every_interaction(void **state)
{
	(void)state;
	UPSTREAM_NEEDED();
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u, "\"Patient\":\"pass-through\"", NULL);
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	char gwbase[64];
	snprintf(gwbase, sizeof gwbase, "http://127.0.0.1:%u/fhir/", g.port);

	struct resp r;
	const char *body = "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:pt\",\"value\":\"1\"}],"
			   "\"name\":[{\"family\":\"Through\"}],\"birthDate\":\"1970-01-01\"}";
	assert_int_equal(http_do(&g, "POST", "/fhir/Patient", fj, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 201);
	char loc[512];
	assert_non_null(resp_header(&r, "Location", loc, sizeof loc));
	assert_true(strncmp(loc, gwbase, strlen(gwbase)) == 0); /* rewritten to the gateway */
	cJSON *p = cJSON_Parse(r.body);
	char id[80], vid[80];
	snprintf(id, sizeof id, "%s", s(p, "id"));
	snprintf(vid, sizeof vid, "%s", s(cJSON_GetObjectItemCaseSensitive(p, "meta"), "versionId"));
	cJSON_Delete(p);
	resp_free(&r);
	assert_int_equal(upstream_count(&u, "Patient", "urn:pt|1"), 1); /* it is upstream, */
	assert_int_equal(http_do(&g, "GET", "/outbox", NULL, NULL, 0, &r), 0); /* not queued */
	assert_non_null(strstr(r.body, "\"pending\":0"));
	resp_free(&r);

	char path[256];
	snprintf(path, sizeof path, "/fhir/Patient/%s", id);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "Through"));
	resp_free(&r);
	/* XML answers from a JSON upstream */
	char xpath[300];
	snprintf(xpath, sizeof xpath, "%s?_format=xml", path);
	assert_int_equal(http_do(&g, "GET", xpath, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "<family value=\"Through\"/>"));
	resp_free(&r);

	char upd[512];
	snprintf(upd, sizeof upd,
		 "{\"resourceType\":\"Patient\",\"id\":\"%s\",\"identifier\":[{\"system\":\"urn:pt\",\"value\":\"1\"}],"
		 "\"name\":[{\"family\":\"Updated\"}]}",
		 id);
	assert_int_equal(http_do(&g, "PUT", path, fj, upd, strlen(upd), &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);

	/* PATCH goes on as it came and lands upstream */
	const char *jp[] = {"Content-Type: application/json-patch+json", NULL};
	const char *patch = "[{\"op\":\"add\",\"path\":\"/gender\",\"value\":\"other\"}]";
	assert_int_equal(http_do(&g, "PATCH", path, jp, patch, strlen(patch), &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"other\""));
	resp_free(&r);
	char upath[200];
	snprintf(upath, sizeof upath, "/fhir/R4/Patient/%s", id);
	assert_int_equal(upstream_do(&u, "GET", upath, NULL, &r), 0);
	assert_non_null(strstr(r.body, "\"gender\":\"other\""));
	resp_free(&r);

	assert_int_equal(http_do(&g, "GET", "/fhir/Patient?identifier=urn:pt|1", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *b = cJSON_Parse(r.body);
	const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "entry"), 0);
	assert_non_null(e);
	assert_true(strncmp(s(e, "fullUrl"), gwbase, strlen(gwbase)) == 0);
	const cJSON *l;
	cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(b, "link"))
	{
		assert_null(strstr(s(l, "url"), u.base)); /* no upstream URL leaks */
	}
	cJSON_Delete(b);
	resp_free(&r);

	snprintf(path, sizeof path, "/fhir/Patient/%s/_history", id);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"history\""));
	resp_free(&r);
	snprintf(path, sizeof path, "/fhir/Patient/%s/_history/%s", id, vid);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "Through"));
	resp_free(&r);

	/* conditional create is answered by the upstream */
	const char *cc[] = {"Content-Type: application/fhir+json", "If-None-Exist: identifier=urn:pt|1", NULL};
	assert_int_equal(http_do(&g, "POST", "/fhir/Patient", cc, body, strlen(body), &r), 0);
	assert_true(r.status == 200 || r.status == 201);
	resp_free(&r);
	assert_int_equal(upstream_count(&u, "Patient", "urn:pt|1"), 1);

	snprintf(path, sizeof path, "/fhir/Patient/%s", id);
	assert_int_equal(http_do(&g, "DELETE", path, NULL, NULL, 0, &r), 0);
	assert_true(r.status == 200 || r.status == 204);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_true(r.status == 410 || r.status == 404);
	resp_free(&r);

	/* a local transaction cannot carry a pass-through type */
	const char *tx = "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":"
			 "{\"resourceType\":\"Basic\",\"code\":{\"text\":\"x\"}},\"request\":{\"method\":\"POST\",\"url\":"
			 "\"Basic\"}},{\"resource\":{\"resourceType\":\"Patient\"},\"request\":{\"method\":\"POST\",\"url\":"
			 "\"Patient\"}}]}";
	assert_int_equal(http_do(&g, "POST", "/fhir", fj, tx, strlen(tx), &r), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "passed through"));
	resp_free(&r);

	/* an oversized answer is cut off: 502, the gateway stays up */
	fault(&u, "{\"fault\":\"oversize\",\"mb\":20,\"method\":\"GET\"}");
	assert_int_equal(http_do(&g, "GET", "/fhir/Patient?name=x", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 502);
	resp_free(&r);
	/* a stall is cut off by the timeout: 504 */
	fault(&u, "{\"fault\":\"stall\",\"seconds\":10,\"method\":\"GET\"}");
	long t0 = now_ms();
	assert_int_equal(http_do(&g, "GET", "/fhir/Patient?name=x", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 504);
	assert_true(now_ms() - t0 < 5000);
	resp_free(&r);
	/* the upstream gone: 502 */
	upstream_stop(&u);
	assert_int_equal(http_do(&g, "GET", "/fhir/Patient?name=x", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 502);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 10000), 0);
}

/* How many POST requests the upstream has received. */
static long upstream_posts(const struct upstream_srv *u)
{
	struct resp r;
	if (upstream_do(u, "GET", "/_admin/stats", NULL, &r) != 0 || r.status != 200) {
		resp_free(&r);
		return -1;
	}
	cJSON *j = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "received"), "POST");
	long n = cJSON_IsNumber(v) ? (long)v->valuedouble : 0;
	cJSON_Delete(j);
	return n;
}

/* The first type?identifier=ident the upstream itself finds (a new tree), or NULL. */
static cJSON *upstream_find(const struct upstream_srv *u, const char *type, const char *ident)
{
	char path[300];
	snprintf(path, sizeof path, "/fhir/R4/%s?identifier=%s", type, ident);
	struct resp r;
	assert_int_equal(upstream_do(u, "GET", path, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *b = cJSON_Parse(r.body);
	resp_free(&r);
	cJSON *res = cJSON_DetachItemFromObject(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "entry"), 0),
						"resource");
	cJSON_Delete(b);
	return res;
}

static const cJSON *entry_at(const cJSON *b, int i)
{
	return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "entry"), i);
}

static const char *entry_response(const cJSON *b, int i, const char *key)
{
	return s(cJSON_GetObjectItemCaseSensitive(entry_at(b, i), "response"), key);
}

/* POSTs a Bundle to the gateway's /fhir; the answer parsed (status in *status). */
static cJSON *post_bundle(const struct gw *g, const char *bundle, long *status, char **text)
{
	struct resp r;
	assert_int_equal(http_do(g, "POST", "/fhir", fj, bundle, strlen(bundle), &r), 0);
	*status = r.status;
	cJSON *j = cJSON_Parse(r.body);
	if (text)
		*text = strdup(r.body ? r.body : "");
	resp_free(&r);
	assert_non_null(j);
	return j;
}

/* Nothing in the answer names the upstream, and every fullUrl and
 * response.location is a URL on the gateway. */
static void urls_on_gateway(const cJSON *b, const char *text, const struct upstream_srv *u, const char *gwbase)
{
	assert_null(strstr(text, u->base));
	char host[64];
	snprintf(host, sizeof host, "127.0.0.1:%u", u->port);
	assert_null(strstr(text, host));
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(b, "entry"))
	{
		const char *full = s(e, "fullUrl"), *loc = s(cJSON_GetObjectItemCaseSensitive(e, "response"), "location");
		if (full)
			assert_true(strncmp(full, gwbase, strlen(gwbase)) == 0);
		if (loc)
			assert_true(strncmp(loc, gwbase, strlen(gwbase)) == 0);
	}
}

/* The id in a location ".../Type/id/_history/v" (or ".../Type/id"). */
static void location_id(const char *loc, const char *type, char *id, size_t n)
{
	char key[80];
	snprintf(key, sizeof key, "/%s/", type);
	const char *p = loc ? strstr(loc, key) : NULL;
	assert_non_null(p);
	p += strlen(key);
	snprintf(id, n, "%.*s", (int)strcspn(p, "/"), p);
}

/* How many resources of type with identifier ident the gateway's own store has. */
static long local_count(const struct gw *g, const char *type, const char *ident)
{
	char path[300];
	snprintf(path, sizeof path, "/fhir/%s?identifier=%s", type, ident);
	struct resp r;
	assert_int_equal(http_do(g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *j = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "total");
	long n = cJSON_IsNumber(t) ? (long)t->valuedouble : -1;
	cJSON_Delete(j);
	return n;
}

/* A batch entry creating a Practitioner with identifier sys|value. */
static void practitioner_post(char *buf, size_t n, const char *sys, const char *value)
{
	snprintf(buf, n,
		 "{\"resource\":{\"resourceType\":\"Practitioner\",\"identifier\":[{\"system\":\"%s\",\"value\":"
		 "\"%s\"}]},\"request\":{\"method\":\"POST\",\"url\":\"Practitioner\"}}",
		 sys, value);
}

/* An entry for a pass-through type that the gateway refuses before sending
 * (status, why in the outcome): after a good pass-through entry in a batch,
 * it refuses the whole batch and nothing is sent; between a local entry and
 * a good pass-through entry, only it fails and the others land. Identifiers
 * sys|refused-…; returns the second answer for more checks. */
static cJSON *refused_before_sending(const struct gw *g, const struct upstream_srv *u, const char *sys, const char *bad,
				     long status, const char *why)
{
	char body[4096], ident[120];
	char ok1[400], ok2[400], local[400];
	practitioner_post(ok1, sizeof ok1, sys, "refused-ok1");
	practitioner_post(ok2, sizeof ok2, sys, "refused-ok2");
	snprintf(local, sizeof local,
		 "{\"resource\":{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		 "\"identifier\":[{\"system\":\"%s\",\"value\":\"refused-local\"}]},\"request\":{\"method\":"
		 "\"POST\",\"url\":\"Observation\"}}",
		 sys);
	snprintf(body, sizeof body, "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[%s,%s]}", ok1, bad);
	long posts = upstream_posts(u), st;
	char *text;
	cJSON *b = post_bundle(g, body, &st, &text);
	assert_int_equal(st, status);
	assert_string_equal(s(b, "resourceType"), "OperationOutcome");
	assert_non_null(strstr(text, why));
	assert_non_null(strstr(text, "Bundle.entry[1]"));
	assert_non_null(strstr(text, "nothing was sent"));
	cJSON_Delete(b);
	free(text);
	assert_int_equal(upstream_posts(u), posts);
	snprintf(ident, sizeof ident, "%s|refused-ok1", sys);
	assert_int_equal(upstream_count(u, "Practitioner", ident), 0);

	snprintf(body, sizeof body, "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[%s,%s,%s]}", local,
		 bad, ok2);
	b = post_bundle(g, body, &st, &text);
	assert_int_equal(st, 200);
	assert_string_equal(entry_response(b, 0, "status"), "201");
	char code[16];
	snprintf(code, sizeof code, "%ld", status);
	assert_string_equal(entry_response(b, 1, "status"), code);
	assert_non_null(strstr(text, why));
	assert_string_equal(entry_response(b, 2, "status"), "201");
	free(text);
	snprintf(ident, sizeof ident, "%s|refused-ok2", sys);
	assert_int_equal(upstream_count(u, "Practitioner", ident), 1);
	snprintf(ident, sizeof ident, "%s|refused-local", sys);
	assert_int_equal(local_count(g, "Observation", ident), 1);
	return b;
}

static void batches_and_transactions_through_the_upstream(void **state)
{
	(void)state;
	UPSTREAM_NEEDED();
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u, "\"Practitioner\":\"pass-through\",\"PractitionerRole\":\"pass-through\"", NULL);
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	char gwbase[64], body[4096];
	snprintf(gwbase, sizeof gwbase, "http://127.0.0.1:%u/fhir/", g.port);
	long st;
	char *text;

	/* the CapabilityStatement says what happens to them */
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/fhir/metadata", NULL, NULL, 0, &r), 0);
	cJSON *cs = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *it, *sys = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cs, "rest"), 0),
								   "interaction");
	int seen = 0;
	cJSON_ArrayForEach(it, sys)
	{
		if (!strcmp(s(it, "code"), "transaction") || !strcmp(s(it, "code"), "batch")) {
			assert_non_null(strstr(s(it, "documentation"), "upstream"));
			seen++;
		}
	}
	assert_int_equal(seen, 2);
	cJSON_Delete(cs);

	/* a transaction of pass-through types goes upstream whole: the upstream
	 * resolves the urn:uuid reference; a request.url on the gateway's base is
	 * made relative */
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
		 "{\"fullUrl\":\"urn:uuid:5f0c2a8e-0d6b-4c59-9d1e-2b7f3a6c9e01\",\"resource\":{\"resourceType\":"
		 "\"Practitioner\",\"identifier\":[{\"system\":\"urn:btx\",\"value\":\"pr1\"}],\"name\":[{\"family\":"
		 "\"Batchwell\"}]},\"request\":{\"method\":\"POST\",\"url\":\"Practitioner\"}},"
		 "{\"fullUrl\":\"urn:uuid:5f0c2a8e-0d6b-4c59-9d1e-2b7f3a6c9e02\",\"resource\":{\"resourceType\":"
		 "\"PractitionerRole\",\"identifier\":[{\"system\":\"urn:btx\",\"value\":\"role1\"}],\"practitioner\":"
		 "{\"reference\":\"urn:uuid:5f0c2a8e-0d6b-4c59-9d1e-2b7f3a6c9e01\"}},\"request\":{\"method\":\"POST\","
		 "\"url\":\"%sPractitionerRole\"}}]}",
		 gwbase);
	cJSON *b = post_bundle(&g, body, &st, &text);
	if (st != 200)
		fprintf(stderr, "# %s\n", text);
	assert_int_equal(st, 200);
	assert_string_equal(s(b, "type"), "transaction-response");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b, "entry")), 2);
	assert_string_equal(entry_response(b, 0, "status"), "201");
	assert_string_equal(entry_response(b, 1, "status"), "201");
	urls_on_gateway(b, text, &u, gwbase);
	char prid[80], roleid[80];
	location_id(entry_response(b, 0, "location"), "Practitioner", prid, sizeof prid);
	location_id(entry_response(b, 1, "location"), "PractitionerRole", roleid, sizeof roleid);
	cJSON_Delete(b);
	free(text);
	cJSON *pr = upstream_find(&u, "Practitioner", "urn:btx|pr1"), *role = upstream_find(&u, "PractitionerRole", "urn:btx|role1");
	assert_non_null(pr);
	assert_non_null(role);
	assert_string_equal(s(pr, "id"), prid);
	assert_string_equal(s(role, "id"), roleid);
	char want[120];
	snprintf(want, sizeof want, "Practitioner/%s", prid);
	assert_string_equal(s(cJSON_GetObjectItemCaseSensitive(role, "practitioner"), "reference"), want);
	cJSON_Delete(pr);
	cJSON_Delete(role);

	/* the upstream's refusal of such a transaction is passed on, status included */
	char pr_rb[400];
	practitioner_post(pr_rb, sizeof pr_rb, "urn:btx", "pr-rollback");
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[%s,{\"request\":{\"method\":"
		 "\"GET\",\"url\":\"Practitioner/no-such-one\"}}]}",
		 pr_rb);
	b = post_bundle(&g, body, &st, &text);
	assert_int_equal(st, 404);
	assert_string_equal(s(b, "resourceType"), "OperationOutcome");
	cJSON_Delete(b);
	free(text);
	assert_int_equal(upstream_count(&u, "Practitioner", "urn:btx|pr-rollback"), 0);

	/* a batch of pass-through types, reads included, answered in order */
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":["
		 "{\"request\":{\"method\":\"GET\",\"url\":\"Practitioner/%s\"}},"
		 "{\"resource\":{\"resourceType\":\"Practitioner\",\"identifier\":[{\"system\":\"urn:btx\",\"value\":"
		 "\"pr2\"}]},\"request\":{\"method\":\"POST\",\"url\":\"Practitioner\"}},"
		 "{\"request\":{\"method\":\"GET\",\"url\":\"Practitioner/no-such-one\"}}]}",
		 prid);
	b = post_bundle(&g, body, &st, &text);
	assert_int_equal(st, 200);
	assert_string_equal(s(b, "type"), "batch-response");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b, "entry")), 3);
	assert_string_equal(entry_response(b, 0, "status"), "200");
	const cJSON *got = cJSON_GetObjectItemCaseSensitive(entry_at(b, 0), "resource");
	assert_string_equal(s(got, "id"), prid);
	assert_string_equal(s(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(got, "name"), 0), "family"), "Batchwell");
	assert_string_equal(entry_response(b, 1, "status"), "201");
	assert_string_equal(entry_response(b, 2, "status"), "404");
	urls_on_gateway(b, text, &u, gwbase);
	cJSON_Delete(b);
	free(text);
	assert_int_equal(upstream_count(&u, "Practitioner", "urn:btx|pr2"), 1);

	/* a transaction mixing local and pass-through types: refused, nothing
	 * written on either side */
	long posts = upstream_posts(&u);
	const char *mixed_tx =
		"{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
		"{\"resource\":{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"m\"},"
		"\"identifier\":[{\"system\":\"urn:btx\",\"value\":\"obs-tx\"}]},\"request\":{\"method\":\"POST\","
		"\"url\":\"Observation\"}},"
		"{\"resource\":{\"resourceType\":\"Practitioner\",\"identifier\":[{\"system\":\"urn:btx\",\"value\":"
		"\"pr-tx\"}]},\"request\":{\"method\":\"POST\",\"url\":\"Practitioner\"}}]}";
	b = post_bundle(&g, mixed_tx, &st, &text);
	assert_int_equal(st, 400);
	assert_string_equal(s(b, "resourceType"), "OperationOutcome");
	const cJSON *issue = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "issue"), 0);
	assert_string_equal(s(issue, "code"), "not-supported");
	assert_non_null(strstr(s(issue, "diagnostics"), "cannot commit atomically"));
	assert_non_null(strstr(s(issue, "diagnostics"), "own transaction"));
	const cJSON *expr = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(issue, "expression"), 0);
	assert_true(cJSON_IsString(expr));
	assert_string_equal(expr->valuestring, "Bundle.entry[1].request");
	cJSON_Delete(b);
	free(text);
	assert_int_equal(upstream_posts(&u), posts);
	assert_int_equal(upstream_count(&u, "Practitioner", "urn:btx|pr-tx"), 0);
	assert_int_equal(local_count(&g, "Observation", "urn:btx|obs-tx"), 0);

	/* a mixed batch: each entry lands where it belongs, answers in order */
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":["
		 "{\"resource\":{\"resourceType\":\"Practitioner\",\"identifier\":[{\"system\":\"urn:btx\",\"value\":"
		 "\"pr-mixed\"}]},\"request\":{\"method\":\"POST\",\"url\":\"Practitioner\"}},"
		 "{\"resource\":{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"m\"},"
		 "\"identifier\":[{\"system\":\"urn:btx\",\"value\":\"obs-mixed\"}]},\"request\":{\"method\":\"POST\","
		 "\"url\":\"Observation\"}},"
		 "{\"request\":{\"method\":\"GET\",\"url\":\"Observation/no-such-one\"}},"
		 "{\"request\":{\"method\":\"GET\",\"url\":\"Practitioner/%s\"}}]}",
		 prid);
	b = post_bundle(&g, body, &st, &text);
	assert_int_equal(st, 200);
	assert_string_equal(s(b, "type"), "batch-response");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b, "entry")), 4);
	assert_string_equal(entry_response(b, 0, "status"), "201");
	assert_string_equal(entry_response(b, 1, "status"), "201");
	assert_string_equal(entry_response(b, 2, "status"), "404");
	assert_string_equal(entry_response(b, 3, "status"), "200");
	assert_string_equal(s(cJSON_GetObjectItemCaseSensitive(entry_at(b, 3), "resource"), "id"), prid);
	urls_on_gateway(b, text, &u, gwbase);
	char mprid[80], obsid[80];
	location_id(entry_response(b, 0, "location"), "Practitioner", mprid, sizeof mprid);
	location_id(entry_response(b, 1, "location"), "Observation", obsid, sizeof obsid);
	cJSON_Delete(b);
	free(text);
	pr = upstream_find(&u, "Practitioner", "urn:btx|pr-mixed");
	assert_non_null(pr);
	assert_string_equal(s(pr, "id"), mprid);
	cJSON_Delete(pr);
	assert_int_equal(upstream_count(&u, "Observation", "urn:btx|obs-mixed"), 0);
	assert_int_equal(local_count(&g, "Observation", "urn:btx|obs-mixed"), 1);
	char path[200];
	snprintf(path, sizeof path, "/fhir/Observation/%s", obsid);
	assert_int_equal(http_do(&g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);

	/* an invalid pass-through resource */
	const char *bad_entry = "{\"resource\":{\"resourceType\":\"Practitioner\",\"identifier\":[{\"system\":"
				"\"urn:btx\",\"value\":\"pr-bad\"}],\"birthDate\":\"not a date\"},\"request\":{\"method\":"
				"\"POST\",\"url\":\"Practitioner\"}}";
	cJSON_Delete(refused_before_sending(&g, &u, "urn:btx", bad_entry, 400, "birthDate"));
	assert_int_equal(upstream_count(&u, "Practitioner", "urn:btx|pr-bad"), 0);

	/* a stalled upstream: a batch of pass-through types answers 504, a mixed
	 * batch keeps its local entry and reports 504 on the other; the upstream
	 * down: the same with 502 */
	char stalled[1600], pr_stall[400];
	practitioner_post(pr_stall, sizeof pr_stall, "urn:btx", "pr-stall");
	snprintf(stalled, sizeof stalled,
		 "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{\"resource\":{\"resourceType\":"
		 "\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"m\"},\"identifier\":[{\"system\":"
		 "\"urn:btx\",\"value\":\"obs-stall\"}]},\"request\":{\"method\":\"POST\",\"url\":\"Observation\"}},%s]}",
		 pr_stall);
	fault(&u, "{\"fault\":\"stall\",\"seconds\":10,\"method\":\"POST\",\"count\":2}");
	snprintf(body, sizeof body, "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[%s]}", pr_stall);
	b = post_bundle(&g, body, &st, NULL);
	assert_int_equal(st, 504);
	assert_string_equal(s(b, "resourceType"), "OperationOutcome");
	cJSON_Delete(b);
	b = post_bundle(&g, stalled, &st, NULL);
	assert_int_equal(st, 200);
	assert_string_equal(entry_response(b, 0, "status"), "201");
	assert_string_equal(entry_response(b, 1, "status"), "504");
	cJSON_Delete(b);
	assert_int_equal(local_count(&g, "Observation", "urn:btx|obs-stall"), 1);
	upstream_stop(&u);
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":["
		 "{\"request\":{\"method\":\"GET\",\"url\":\"Practitioner/%s\"}}]}",
		 prid);
	b = post_bundle(&g, body, &st, &text);
	assert_int_equal(st, 502);
	assert_string_equal(s(b, "resourceType"), "OperationOutcome");
	assert_non_null(strstr(text, "did not answer"));
	cJSON_Delete(b);
	free(text);
	const char *down =
		"{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":["
		"{\"resource\":{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"m\"},"
		"\"identifier\":[{\"system\":\"urn:btx\",\"value\":\"obs-down\"}]},\"request\":{\"method\":\"POST\","
		"\"url\":\"Observation\"}},"
		"{\"resource\":{\"resourceType\":\"Practitioner\",\"identifier\":[{\"system\":\"urn:btx\",\"value\":"
		"\"pr-down\"}]},\"request\":{\"method\":\"POST\",\"url\":\"Practitioner\"}}]}";
	b = post_bundle(&g, down, &st, &text);
	assert_int_equal(st, 200);
	assert_string_equal(entry_response(b, 0, "status"), "201");
	assert_string_equal(entry_response(b, 1, "status"), "502");
	const cJSON *oc = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(entry_at(b, 1), "response"), "outcome");
	assert_string_equal(s(oc, "resourceType"), "OperationOutcome");
	assert_non_null(strstr(s(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(oc, "issue"), 0), "diagnostics"),
			       "did not answer"));
	cJSON_Delete(b);
	free(text);
	assert_int_equal(local_count(&g, "Observation", "urn:btx|obs-down"), 1);
	assert_int_equal(gw_stop(&g, 10000), 0);
}

/* A transaction of n Observations with identifiers urn:push|first… */
static char *push_bundle(int first, int n)
{
	size_t cap = (size_t)n * 300 + 200;
	char *b = malloc(cap);
	size_t pos = (size_t)snprintf(b, cap, "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[");
	for (int i = 0; i < n; i++)
		pos += (size_t)snprintf(b + pos, cap - pos,
					"%s{\"resource\":{\"resourceType\":\"Observation\",\"status\":\"final\","
					"\"identifier\":[{\"system\":\"urn:push\",\"value\":\"%d\"}],\"code\":{\"text\":\"push\"},"
					"\"valueInteger\":%d},\"request\":{\"method\":\"POST\",\"url\":\"Observation\"}}",
					i ? "," : "", first + i, first + i);
	snprintf(b + pos, cap - pos, "]}");
	return b;
}

static void push(const struct gw *g, int first, int n)
{
	char *b = push_bundle(first, n);
	struct resp r;
	assert_int_equal(http_do(g, "POST", "/fhir", fj, b, strlen(b), &r), 0);
	if (r.status != 200)
		fprintf(stderr, "# push: %ld %s\n", r.status, r.body);
	assert_int_equal(r.status, 200); /* acknowledged: committed with its outbox records */
	resp_free(&r);
	free(b);
}

/* Every urn:push identifier in [first, first+n) is on the upstream exactly
 * once: one paged read of all its Observations (each test has its own
 * upstream), counted here. */
static void every_identifier_once(const struct upstream_srv *u, int first, int n)
{
	int *seen = calloc((size_t)n, sizeof *seen);
	assert_non_null(seen);
	int other = 0;
	for (int offset = 0;; offset += 500) {
		char path[200];
		snprintf(path, sizeof path, "/fhir/R4/Observation?_count=500&_offset=%d", offset);
		struct resp r;
		assert_int_equal(upstream_do(u, "GET", path, NULL, &r), 0);
		assert_int_equal(r.status, 200);
		cJSON *b = cJSON_Parse(r.body);
		resp_free(&r);
		const cJSON *entries = cJSON_GetObjectItemCaseSensitive(b, "entry");
		int got = cJSON_GetArraySize(entries);
		const cJSON *e;
		cJSON_ArrayForEach(e, entries)
		{
			const cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "resource");
			const cJSON *id0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res, "identifier"), 0);
			const char *v = s(id0, "value");
			int k = v ? atoi(v) - first : -1;
			if (k >= 0 && k < n)
				seen[k]++;
			else
				other++;
		}
		cJSON_Delete(b);
		if (got < 500)
			break;
	}
	int missing = 0, dup = 0;
	for (int i = 0; i < n; i++) {
		if (seen[i] == 0)
			missing++;
		else if (seen[i] > 1)
			dup++;
	}
	free(seen);
	if (missing || dup)
		fprintf(stderr, "# %d missing, %d duplicated\n", missing, dup);
	assert_int_equal(missing, 0);
	assert_int_equal(dup, 0);
}

static void upstream_down_during_a_push_of_1000(void **state)
{
	(void)state;
	UPSTREAM_NEEDED();
	unsigned port = free_port();
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, port), 0);
	upstream_stop(&u); /* down before the push */
	char extra[1024];
	/* short retry delays for the test, so attempts must not run out while it is down */
	upstream_gw_config(extra, sizeof extra, &u, "\"*\":\"store-and-forward\"", ",\"max_attempts\":1000");
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	for (int k = 0; k < 10; k++)
		push(&g, k * 100, 100);
	sleep_ms(300);
	assert_int_equal(gw_outbox_number(&g, "pending"), 1000);
	/* back up on the same port: everything arrives, exactly once */
	assert_int_equal(upstream_start(&u, port), 0);
	assert_true(gw_outbox_drained(&g, 120000));
	assert_int_equal(gw_outbox_number(&g, "dead"), 0);
	every_identifier_once(&u, 0, 1000);
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	assert_non_null(strstr(r.body, "crosswalk_outbox_delivered_total 1000"));
	assert_non_null(strstr(r.body, "crosswalk_outbox_pending 0"));
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

static void kill_9_during_delivery(void **state)
{
	(void)state;
	UPSTREAM_NEEDED();
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	/* slow deliveries so the kill lands mid-way */
	fault(&u, "{\"fault\":\"delay\",\"ms\":15,\"count\":-1}");
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u, "\"*\":\"store-and-forward\"", ",\"max_attempts\":1000");
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	for (int k = 0; k < 3; k++)
		push(&g, 5000 + k * 100, 100);
	sleep_ms(800);
	long left = gw_outbox_number(&g, "pending");
	assert_true(left > 0 && left < 300); /* some delivered, some not */
	char dir[256], again[1400];
	snprintf(dir, sizeof dir, "%s", g.dir);
	kill(g.pid, SIGKILL);
	gw_stop(&g, 5000);
	snprintf(again, sizeof again, "%s,\"data_dir\":\"%s/var\"", extra, dir);
	assert_int_equal(gw_start(&g, again), 0);
	assert_true(gw_outbox_drained(&g, 120000));
	every_identifier_once(&u, 5000, 300);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

static void faults_are_retried_or_dead_lettered(void **state)
{
	(void)state;
	UPSTREAM_NEEDED();
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u, "\"*\":\"store-and-forward\"", ",\"max_attempts\":6");
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);

	/* three 500s, then success */
	fault(&u, "{\"fault\":\"status\",\"status\":500,\"count\":3,\"method\":\"PUT\"}");
	push(&g, 7000, 1);
	assert_true(gw_outbox_drained(&g, 30000));
	every_identifier_once(&u, 7000, 1);

	/* 429 with Retry-After: 1 — the next attempt waits that long, but no
	 * longer than retry_max_ms (400 here; test_upstream_faults.c has more) */
	fault(&u, "{\"fault\":\"status\",\"status\":429,\"retryAfter\":1,\"count\":1,\"method\":\"PUT\"}");
	long t0 = now_ms();
	push(&g, 7001, 1);
	assert_true(gw_outbox_drained(&g, 30000));
	assert_true(now_ms() - t0 >= 380);
	every_identifier_once(&u, 7001, 1);

	/* a stall longer than the timeout is retried */
	fault(&u, "{\"fault\":\"stall\",\"seconds\":5,\"count\":1,\"method\":\"PUT\"}");
	push(&g, 7002, 1);
	assert_true(gw_outbox_drained(&g, 30000));
	every_identifier_once(&u, 7002, 1);

	/* the answer lost after the upstream committed: the retry overwrites */
	fault(&u, "{\"fault\":\"status\",\"status\":503,\"afterCommit\":true,\"count\":1,\"method\":\"PUT\"}");
	push(&g, 7003, 1);
	assert_true(gw_outbox_drained(&g, 30000));
	every_identifier_once(&u, 7003, 1);

	/* a refusal (400) is a dead letter with its error; $retry resends it */
	fault(&u, "{\"fault\":\"status\",\"status\":400,\"count\":1,\"method\":\"PUT\"}");
	push(&g, 7004, 1);
	long until = now_ms() + 10000;
	while (gw_outbox_number(&g, "dead") != 1 && now_ms() < until)
		sleep_ms(50);
	assert_int_equal(gw_outbox_number(&g, "dead"), 1);
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/outbox?state=dead", NULL, NULL, 0, &r), 0);
	cJSON *j = cJSON_Parse(r.body);
	const cJSON *rec = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "records"), 0);
	assert_non_null(rec);
	assert_non_null(strstr(s(rec, "last_error"), "400"));
	char path[64];
	snprintf(path, sizeof path, "/outbox/%.0f/$retry", cJSON_GetObjectItemCaseSensitive(rec, "id")->valuedouble);
	cJSON_Delete(j);
	resp_free(&r);
	assert_int_equal(upstream_count(&u, "Observation", "urn:push|7004"), 0);
	assert_int_equal(http_do(&g, "POST", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 202);
	resp_free(&r);
	assert_true(gw_outbox_drained(&g, 30000));
	every_identifier_once(&u, 7004, 1);
	assert_int_equal(gw_outbox_number(&g, "dead"), 0);

	/* attempts used up: a dead letter too */
	fault(&u, "{\"fault\":\"status\",\"status\":500,\"count\":50,\"method\":\"PUT\"}");
	push(&g, 7005, 1);
	until = now_ms() + 20000;
	while (gw_outbox_number(&g, "dead") != 1 && now_ms() < until)
		sleep_ms(50);
	assert_int_equal(gw_outbox_number(&g, "dead"), 1);
	/* given up after exactly max_attempts attempts, not one more */
	assert_int_equal(http_do(&g, "GET", "/outbox?state=dead", NULL, NULL, 0, &r), 0);
	j = cJSON_Parse(r.body);
	resp_free(&r);
	rec = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "records"), 0);
	assert_non_null(rec);
	assert_int_equal((long)cJSON_GetObjectItemCaseSensitive(rec, "attempts")->valuedouble, 6);
	cJSON_Delete(j);
	struct resp m;
	assert_int_equal(http_do(&g, "GET", "/metrics", NULL, NULL, 0, &m), 0);
	assert_non_null(strstr(m.body, "crosswalk_outbox_dead 1"));
	resp_free(&m);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

/* One read of Observation/id at the upstream: its HTTP status, and its
 * valueInteger when it answered 200 (else -1). */
static long upstream_value(const struct upstream_srv *u, const char *id, long *value)
{
	char path[200];
	snprintf(path, sizeof path, "/fhir/R4/Observation/%s", id);
	struct resp r;
	assert_int_equal(upstream_do(u, "GET", path, NULL, &r), 0);
	long status = r.status;
	*value = -1;
	if (status == 200) {
		cJSON *j = cJSON_Parse(r.body);
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "valueInteger");
		if (cJSON_IsNumber(v))
			*value = (long)v->valuedouble;
		cJSON_Delete(j);
	}
	resp_free(&r);
	return status;
}

/* How many versions (the DELETE included) the upstream's history of
 * Observation/id holds. */
static int upstream_versions(const struct upstream_srv *u, const char *id)
{
	char path[200];
	snprintf(path, sizeof path, "/fhir/R4/Observation/%s/_history", id);
	struct resp r;
	assert_int_equal(upstream_do(u, "GET", path, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *j = cJSON_Parse(r.body);
	resp_free(&r);
	int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "entry"));
	cJSON_Delete(j);
	return n;
}

/* Waits until the upstream shows what the gateway acknowledged: the
 * outbox drained, then Observation/id answering status (with valueInteger
 * value when 200) and versions versions in its history. */
static void upstream_shows(const struct gw *g, const struct upstream_srv *u, const char *id, long status, long value,
			   int versions)
{
	assert_true(gw_outbox_drained(g, 30000));
	long got = -1;
	long st = upstream_value(u, id, &got);
	int nv = upstream_versions(u, id);
	if (st != status || got != value || nv != versions)
		fprintf(stderr, "# upstream Observation/%s: %ld value %ld, %d versions; want %ld value %ld, %d versions\n",
			id, st, got, nv, status, value, versions);
	assert_int_equal(st, status);
	assert_int_equal(got, value);
	assert_int_equal(nv, versions);
}

/* Store-and-forward delivers every write, not only creates: an update
 * (PUT), a patch and a delete of a resource already delivered each reach
 * the upstream as its next version. */
static void updates_patches_and_deletes_are_forwarded(void **state)
{
	(void)state;
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u, "\"*\":\"store-and-forward\"", NULL);
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	static const char obs[] = "{\"resourceType\":\"Observation\",%s\"status\":\"final\","
				  "\"identifier\":[{\"system\":\"urn:saf\",\"value\":\"1\"}],"
				  "\"code\":{\"text\":\"saf\"},\"valueInteger\":%d}";
	char body[512], id[80], path[160], idm[120];

	/* create → delivered as version 1 */
	snprintf(body, sizeof body, obs, "", 1);
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/fhir/Observation", fj, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 201);
	char loc[300];
	assert_non_null(resp_header(&r, "Location", loc, sizeof loc));
	resp_free(&r);
	location_id(loc, "Observation", id, sizeof id);
	upstream_shows(&g, &u, id, 200, 1, 1);

	/* update (PUT of an existing resource) → version 2 with the new value */
	snprintf(path, sizeof path, "/fhir/Observation/%s", id);
	snprintf(idm, sizeof idm, "\"id\":\"%s\",", id);
	snprintf(body, sizeof body, obs, idm, 2);
	assert_int_equal(http_do(&g, "PUT", path, fj, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	upstream_shows(&g, &u, id, 200, 2, 2);

	/* patch → version 3 */
	static const char *jp[] = {"Content-Type: application/json-patch+json", NULL};
	static const char patch[] = "[{\"op\":\"replace\",\"path\":\"/valueInteger\",\"value\":3}]";
	assert_int_equal(http_do(&g, "PATCH", path, jp, patch, strlen(patch), &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	upstream_shows(&g, &u, id, 200, 3, 3);

	/* delete → gone at the upstream too, its deletion the fourth entry */
	assert_int_equal(http_do(&g, "DELETE", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	upstream_shows(&g, &u, id, 410, -1, 4);

	assert_int_equal(gw_outbox_number(&g, "dead"), 0);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

/* A later version of a resource is not delivered before an earlier one that
 * waits for its retry: else the older content would arrive last and stay. */
static void later_versions_wait_for_earlier_ones(void **state)
{
	(void)state;
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u, "\"*\":\"store-and-forward\"", ",\"max_attempts\":100");
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	/* version 1's first delivery is told to come back in 2 s */
	fault(&u, "{\"fault\":\"status\",\"status\":503,\"retryAfter\":2,\"count\":1,\"method\":\"PUT\"}");
	static const char obs[] = "{\"resourceType\":\"Observation\",\"id\":\"ordered\",\"status\":\"final\","
				  "\"code\":{\"text\":\"order\"},\"valueInteger\":%d}";
	char body[256];
	struct resp r;
	snprintf(body, sizeof body, obs, 1);
	assert_int_equal(http_do(&g, "PUT", "/fhir/Observation/ordered", fj, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	/* wait for that refused attempt, then write version 2, due at once */
	long until = now_ms() + 10000;
	for (;;) {
		assert_int_equal(http_do(&g, "GET", "/outbox", NULL, NULL, 0, &r), 0);
		bool tried = r.body && strstr(r.body, "\"attempts\":1");
		resp_free(&r);
		if (tried)
			break;
		assert_true(now_ms() < until);
		sleep_ms(20);
	}
	snprintf(body, sizeof body, obs, 2);
	assert_int_equal(http_do(&g, "PUT", "/fhir/Observation/ordered", fj, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	upstream_shows(&g, &u, "ordered", 200, 2, 2);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

/* A delete the upstream answers 404 or 410 (already gone there) is
 * delivered, not a dead letter. */
static void deleting_what_is_gone_upstream_is_delivered(void **state)
{
	(void)state;
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u, "\"*\":\"store-and-forward\"", ",\"max_attempts\":100");
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	static const int gone[] = {404, 410};
	for (int i = 0; i < 2; i++) {
		char body[256], path[80], f[160];
		snprintf(path, sizeof path, "/fhir/Observation/gone-%d", gone[i]);
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Observation\",\"id\":\"gone-%d\",\"status\":\"final\","
			 "\"code\":{\"text\":\"gone\"}}",
			 gone[i]);
		struct resp r;
		assert_int_equal(http_do(&g, "PUT", path, fj, body, strlen(body), &r), 0);
		assert_int_equal(r.status, 201);
		resp_free(&r);
		assert_true(gw_outbox_drained(&g, 30000));
		snprintf(f, sizeof f, "{\"fault\":\"status\",\"status\":%d,\"count\":1,\"method\":\"DELETE\"}", gone[i]);
		fault(&u, f);
		assert_int_equal(http_do(&g, "DELETE", path, NULL, NULL, 0, &r), 0);
		assert_int_equal(r.status, 200);
		resp_free(&r);
		assert_true(gw_outbox_drained(&g, 30000));
		assert_int_equal(gw_outbox_number(&g, "dead"), 0);
	}
	struct resp m;
	assert_int_equal(http_do(&g, "GET", "/metrics", NULL, NULL, 0, &m), 0);
	assert_non_null(strstr(m.body, "crosswalk_outbox_delivered_total 4"));
	resp_free(&m);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

static void high_water_answers_503(void **state)
{
	(void)state;
	UPSTREAM_NEEDED();
	unsigned port = free_port();
	struct upstream_srv u = {.port = port};
	snprintf(u.base, sizeof u.base, "http://127.0.0.1:%u/fhir/R4", port); /* never started */
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u, "\"*\":\"store-and-forward\"", ",\"high_water\":5");
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	push(&g, 9000, 5);
	char *b = push_bundle(9005, 1);
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/fhir", fj, b, strlen(b), &r), 0);
	assert_int_equal(r.status, 503);
	char ra[16];
	assert_non_null(resp_header(&r, "Retry-After", ra, sizeof ra));
	resp_free(&r);
	free(b);
	assert_int_equal(gw_outbox_number(&g, "pending"), 5); /* nothing half-stored */
	assert_int_equal(gw_stop(&g, 10000), 0);
}

static bool has_tag(const cJSON *res, const char *code)
{
	const cJSON *t;
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "meta"), "tag"))
	{
		if (s(t, "code") && !strcmp(s(t, "code"), code))
			return true;
	}
	return false;
}

static void upstream_hooks_run_on_both_paths(void **state)
{
	(void)state;
	UPSTREAM_NEEDED();
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char extra[1024], dir[256];
	upstream_gw_config(extra, sizeof extra, &u, "\"Practitioner\":\"pass-through\",\"*\":\"store-and-forward\"", NULL);
	harness_test_plugins(dir, sizeof dir, "tp_upstream", NULL);
	const char *args[] = {"--plugins", dir, NULL};
	struct gw g;
	assert_int_equal(gw_start_args(&g, extra, args), 0);

	/* pass-through: before-upstream on the way out, after-response on the way back */
	const char *pr = "{\"resourceType\":\"Practitioner\",\"identifier\":[{\"system\":\"urn:h\",\"value\":\"p1\"}]}";
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/fhir/Practitioner", fj, pr, strlen(pr), &r), 0);
	assert_int_equal(r.status, 201);
	cJSON *back = cJSON_Parse(r.body);
	assert_true(has_tag(back, "tp_upstream:before")); /* the upstream stored what the hook made */
	assert_true(has_tag(back, "tp_upstream:after"));
	cJSON_Delete(back);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/fhir/Practitioner?identifier=urn:h|p1", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *b = cJSON_Parse(r.body);
	assert_true(has_tag(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "entry"), 0),
							     "resource"),
			    "tp_upstream:after"));
	cJSON_Delete(b);
	resp_free(&r);
	const char *blocked = "{\"resourceType\":\"Practitioner\",\"identifier\":[{\"system\":\"urn:h\",\"value\":\"block-upstream\"}]}";
	assert_int_equal(http_do(&g, "POST", "/fhir/Practitioner", fj, blocked, strlen(blocked), &r), 0);
	assert_int_equal(r.status, 451);
	assert_non_null(strstr(r.body, "may not leave"));
	resp_free(&r);
	assert_int_equal(upstream_count(&u, "Practitioner", "urn:h|block-upstream"), 0);

	/* store-and-forward: the delivered copy carries the hook's change; a stopped
	 * one becomes a dead letter with the hook's reason */
	push(&g, 8000, 1);
	assert_true(gw_outbox_drained(&g, 30000));
	struct resp q;
	assert_int_equal(upstream_do(&u, "GET", "/fhir/R4/Observation?identifier=urn:push|8000", NULL, &q), 0);
	b = cJSON_Parse(q.body);
	assert_true(has_tag(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "entry"), 0),
							     "resource"),
			    "tp_upstream:before"));
	cJSON_Delete(b);
	resp_free(&q);
	const char *tx = "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":{\"resourceType\":"
			 "\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"identifier\":[{\"system\":\"urn:h\","
			 "\"value\":\"block-upstream\"}]},\"request\":{\"method\":\"POST\",\"url\":\"Observation\"}}]}";
	assert_int_equal(http_do(&g, "POST", "/fhir", fj, tx, strlen(tx), &r), 0);
	assert_int_equal(r.status, 200); /* stored locally */
	resp_free(&r);
	long until = now_ms() + 10000;
	while (gw_outbox_number(&g, "dead") != 1 && now_ms() < until)
		sleep_ms(50);
	assert_int_equal(gw_outbox_number(&g, "dead"), 1);
	assert_int_equal(http_do(&g, "GET", "/outbox?state=dead", NULL, NULL, 0, &r), 0);
	assert_non_null(strstr(r.body, "before-upstream hook"));
	resp_free(&r);

	/* a transaction of pass-through types: the before-upstream hooks see each
	 * entry, the after-response hooks each resource that comes back */
	const char *ptx = "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
			  "{\"resource\":{\"resourceType\":\"Practitioner\",\"identifier\":[{\"system\":\"urn:h\","
			  "\"value\":\"tx1\"}]},\"request\":{\"method\":\"POST\",\"url\":\"Practitioner\"}},"
			  "{\"resource\":{\"resourceType\":\"Practitioner\",\"identifier\":[{\"system\":\"urn:h\","
			  "\"value\":\"tx2\"}]},\"request\":{\"method\":\"PUT\",\"url\":\"Practitioner?identifier=urn:h|tx2\"}}]}";
	long st;
	b = post_bundle(&g, ptx, &st, NULL);
	assert_int_equal(st, 200);
	for (int i = 0; i < 2; i++) {
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(entry_at(b, i), "resource");
		assert_true(has_tag(res, "tp_upstream:before"));
		assert_true(has_tag(res, "tp_upstream:after"));
	}
	cJSON_Delete(b);
	const char *idents[] = {"urn:h|tx1", "urn:h|tx2"};
	for (int i = 0; i < 2; i++) {
		cJSON *up = upstream_find(&u, "Practitioner", idents[i]);
		assert_non_null(up);
		assert_true(has_tag(up, "tp_upstream:before"));
		assert_false(has_tag(up, "tp_upstream:after"));
		cJSON_Delete(up);
	}
	/* a search in a batch: the hooks see the resources found, not the searchset */
	const char *search = "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{\"request\":"
			     "{\"method\":\"GET\",\"url\":\"Practitioner?identifier=urn:h|tx1\"}}]}";
	b = post_bundle(&g, search, &st, NULL);
	assert_int_equal(st, 200);
	const cJSON *set = cJSON_GetObjectItemCaseSensitive(entry_at(b, 0), "resource");
	assert_string_equal(s(set, "type"), "searchset");
	assert_false(has_tag(set, "tp_upstream:after"));
	assert_true(has_tag(cJSON_GetObjectItemCaseSensitive(entry_at(set, 0), "resource"), "tp_upstream:after"));
	cJSON_Delete(b);

	/* a hook that stops one entry */
	const char *stopped = "{\"resource\":{\"resourceType\":\"Practitioner\",\"identifier\":[{\"system\":"
			      "\"urn:h\",\"value\":\"block-upstream\"}]},\"request\":{\"method\":\"POST\",\"url\":"
			      "\"Practitioner\"}}";
	b = refused_before_sending(&g, &u, "urn:h", stopped, 451, "may not leave");
	assert_true(has_tag(cJSON_GetObjectItemCaseSensitive(entry_at(b, 2), "resource"), "tp_upstream:after"));
	cJSON_Delete(b);
	assert_int_equal(upstream_count(&u, "Practitioner", "urn:h|block-upstream"), 0);
	cJSON *up = upstream_find(&u, "Practitioner", "urn:h|refused-ok2");
	assert_non_null(up);
	assert_true(has_tag(up, "tp_upstream:before"));
	cJSON_Delete(up);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

/* Active content an upstream holds never reaches a client: each narrative
 * that breaks txt-1/txt-2 is replaced by a fixed one on every answer; a
 * write carrying it is refused before it reaches the upstream. */
static void upstream_narrative_is_neutralised(void **state)
{
	(void)state;
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u, "\"Patient\":\"pass-through\"", NULL);
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	struct resp r;
	const char *evil = "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:nar\",\"value\":\"1\"}],"
			   "\"text\":{\"status\":\"generated\",\"div\":\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">"
			   "<p onclick=\\\"steal()\\\">hi</p><script>steal()</script></div>\"}}";
	assert_int_equal(upstream_do(&u, "POST", "/fhir/R4/Patient", evil, &r), 0);
	assert_int_equal(r.status, 201);
	cJSON *p = cJSON_Parse(r.body);
	char path[200];
	snprintf(path, sizeof path, "/fhir/Patient/%s", s(p, "id"));
	cJSON_Delete(p);
	resp_free(&r);
	const char *reads[] = {path, "/fhir/Patient?identifier=urn:nar|1"};
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(http_do(&g, "GET", reads[i], NULL, NULL, 0, &r), 0);
		assert_int_equal(r.status, 200);
		assert_null(strstr(r.body, "script"));
		assert_null(strstr(r.body, "onclick"));
		assert_non_null(strstr(r.body, "withheld"));
		assert_non_null(strstr(r.body, "urn:nar")); /* the rest is passed on */
		resp_free(&r);
	}
	/* writes with active content do not reach the upstream */
	assert_int_equal(http_do(&g, "POST", "/fhir/Patient", fj, evil, strlen(evil), &r), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "txt-1"));
	assert_non_null(strstr(r.body, "Patient.text.div"));
	resp_free(&r);
	assert_int_equal(upstream_count(&u, "Patient", "urn:nar|1"), 1);
	gw_stop(&g, 5000);
	upstream_stop(&u);
}

static void refused_upstream_configurations(void **state)
{
	(void)state;
	static char out[65536];
	const char *bad[] = {
		"\"upstream\":{\"base_url\":\"http://ehr.example.org/fhir\"}",
		"\"upstream\":{\"base_url\":\"ftp://127.0.0.1/fhir\"}",
		"\"upstream\":{\"base_url\":\"https://user:pw@ehr.example.org/fhir\"}",
		"\"upstream\":{\"base_url\":\"https://ehr.example.org/fhir\",\"routes\":{\"Golem\":\"local\"}}",
		"\"upstream\":{\"base_url\":\"https://ehr.example.org/fhir\",\"routes\":{\"Patient\":\"sideways\"}}",
		"\"upstream\":{\"base_url\":\"https://ehr.example.org/fhir\",\"bearer_token_env\":\"CW_TEST_UNSET_TOKEN\"}",
	};
	const char *why[] = {"loopback", "https", "credentials", "Golem", "pass-through", "CW_TEST_UNSET_TOKEN"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		int rc = gw_run_expect_exit(bad[i], NULL, 15000, out, sizeof out);
		if (rc != 2 || !strstr(out, why[i]))
			fprintf(stderr, "# %s -> %d: %s\n", bad[i], rc, out);
		assert_true(rc == 2 || rc == 1);
		assert_non_null(strstr(out, why[i]));
	}
}

/* One peer-support log of one person: a Patient, a Practitioner and
 * PractitionerRole, an Encounter with a free-text note, a Procedure per
 * activity (each refers to the Encounter, which refers to the Patient). */
#define PEER_LOG_FMT \
	"{\"version\":1,\"person\":{\"identifier\":{\"system\":\"https://recovery.example.org/people\",\"value\":\"P-%d\"}," \
	"\"name\":\"Sample Person %d\"},\"encounters\":[{\"id\":\"E-2024-%d\",\"specialist\":{\"identifier\":{\"system\":" \
	"\"https://recovery.example.org/staff\",\"value\":\"S-17\"},\"name\":\"Sample Specialist A\",\"credential\":\"CPS\"," \
	"\"npi\":\"1234567893\"},\"start\":\"2024-03-05T14:30:00-05:00\",\"duration_minutes\":45,\"mode\":\"individual\"," \
	"\"setting\":\"community\",\"activities\":[\"goal-planning\",\"community-connection\"],\"billable\":true," \
	"\"notes\":\"Met at the library; planned the first visit to the food co-op.\"}]}"

/* How many resources of type the upstream holds; *body gets the search
 * answer when body is not NULL (the caller frees it). */
static long upstream_total(const struct upstream_srv *u, const char *type, char **body)
{
	char path[128];
	snprintf(path, sizeof path, "/fhir/R4/%s?_count=1000", type);
	struct resp r;
	if (upstream_do(u, "GET", path, NULL, &r) != 0 || r.status != 200) {
		resp_free(&r);
		return -1;
	}
	cJSON *b = cJSON_Parse(r.body);
	long n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b, "entry"));
	cJSON_Delete(b);
	if (body)
		*body = strdup(r.body);
	resp_free(&r);
	return n;
}

/* Ingests the log of person k (the specialist is the same for every k). */
static void ingest_peer_log(const struct gw *g, int k)
{
	const char *js[] = {"Content-Type: application/json", NULL};
	char log[2048];
	snprintf(log, sizeof log, PEER_LOG_FMT, 1000 + k, k, k);
	struct resp r;
	assert_int_equal(http_do(g, "POST", "/ingest/peer-support", js, log, strlen(log), &r), 0);
	if (r.status != 201)
		fprintf(stderr, "# ingest: %ld %s\n", (long)r.status, r.body);
	assert_int_equal(r.status, 201);
	resp_free(&r);
}

/* /ingest delivers what the routes say (store-and-forward and pass-through
 * types), nothing routed local; the peer-support note stays home unless the
 * site chose to send it (notes_upstream). */
static void ingest_delivers_what_the_routes_say(void **state)
{
	(void)state;
	for (int send = 0; send < 2; send++) {
		struct upstream_srv u;
		assert_int_equal(upstream_start(&u, 0), 0);
		char up[1024], extra[1200];
		upstream_gw_config(up, sizeof up, &u,
				   "\"*\":\"local\",\"Patient\":\"store-and-forward\",\"Encounter\":\"store-and-forward\","
				   "\"PractitionerRole\":\"pass-through\"",
				   NULL);
		snprintf(extra, sizeof extra, "%s%s", up,
			 send ? ",\"plugins\":{\"peer_support\":{\"notes_upstream\":\"send\"}}" : "");
		struct gw g;
		assert_int_equal(gw_start(&g, extra), 0);
		ingest_peer_log(&g, 1);
		assert_true(gw_outbox_drained(&g, 20000));
		assert_int_equal(gw_outbox_number(&g, "dead"), 0);
		char *enc = NULL;
		assert_int_equal(upstream_total(&u, "Patient", NULL), 1);
		assert_int_equal(upstream_total(&u, "Encounter", &enc), 1);
		/* routed local: stored here, never sent */
		assert_int_equal(upstream_total(&u, "Procedure", NULL), 0);
		assert_int_equal(upstream_total(&u, "Practitioner", NULL), 0);
		/* pass-through: ingest stores it with the push, then delivers it */
		assert_int_equal(upstream_total(&u, "PractitionerRole", NULL), 1);
		struct resp r;
		assert_int_equal(http_do(&g, "GET", "/fhir/Procedure", NULL, NULL, 0, &r), 0);
		assert_non_null(strstr(r.body, "\"total\":2"));
		resp_free(&r);
		/* the note: in the gateway's store always, upstream only when sent */
		assert_int_equal(http_do(&g, "GET", "/fhir/Encounter", NULL, NULL, 0, &r), 0);
		assert_non_null(strstr(r.body, "food co-op"));
		resp_free(&r);
		if (send)
			assert_non_null(strstr(enc, "food co-op"));
		else
			assert_null(strstr(enc, "food co-op"));
		free(enc);
		assert_int_equal(gw_stop(&g, 10000), 0);
		upstream_stop(&u);
	}
}

/* The upstream's count of writes it refused for an unresolved reference. */
static long references_refused(const struct upstream_srv *u)
{
	struct resp r;
	if (upstream_do(u, "GET", "/_admin/stats", NULL, &r) != 0 || r.status != 200) {
		resp_free(&r);
		return -1;
	}
	cJSON *j = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "referencesRefused");
	long n = cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
	cJSON_Delete(j);
	return n;
}

/* Pushes made while the upstream is down reach a reference-checking upstream
 * in the order written once it is back: every Patient before its Encounter,
 * every Encounter before its Procedures, the shared specialist (written by
 * the first push only) before the later pushes that refer to it. */
static void outage_delivers_in_dependency_order(void **state)
{
	(void)state;
	unsigned port = free_port();
	const char *args[] = {"--check-references", NULL};
	struct upstream_srv u;
	assert_int_equal(upstream_start_args(&u, port, args), 0);
	upstream_stop(&u); /* down during the pushes */
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u, "\"*\":\"store-and-forward\"", ",\"max_attempts\":1000");
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	enum { PEOPLE = 12 };
	for (int k = 0; k < PEOPLE; k++)
		ingest_peer_log(&g, k);
	/* Patient, Encounter, 2 Procedures each; the Practitioner and role once */
	assert_int_equal(gw_outbox_number(&g, "pending"), 4 * PEOPLE + 2);
	sleep_ms(1200); /* several failed attempts each, with their own backoff */
	assert_int_equal(upstream_start_args(&u, port, args), 0);
	assert_true(gw_outbox_drained(&g, 60000));
	assert_int_equal(references_refused(&u), 0);
	assert_int_equal(gw_outbox_number(&g, "dead"), 0);
	assert_int_equal(upstream_total(&u, "Patient", NULL), PEOPLE);
	assert_int_equal(upstream_total(&u, "Encounter", NULL), PEOPLE);
	assert_int_equal(upstream_total(&u, "Procedure", NULL), 2 * PEOPLE);
	assert_int_equal(upstream_total(&u, "PractitionerRole", NULL), 1);
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

static long retried(const struct gw *g, const char *query)
{
	char path[512];
	snprintf(path, sizeof path, "/outbox/$retry%s", query);
	struct resp r;
	assert_int_equal(http_do(g, "POST", path, NULL, NULL, 0, &r), 0);
	if (r.status != 200) {
		long st = -r.status;
		resp_free(&r);
		return st;
	}
	cJSON *j = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "retried");
	long n = cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
	cJSON_Delete(j);
	return n;
}

/* POST /outbox/$retry puts back every dead letter matching the filters, in
 * one call, and they are then delivered. */
static void dead_letters_retried_by_filter(void **state)
{
	(void)state;
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u, "\"*\":\"store-and-forward\"", ",\"max_attempts\":1000");
	struct gw g;
	assert_int_equal(gw_start(&g, extra), 0);
	/* refusals: 6 Observations with one error, 3 with another, 2 Patients */
	fault(&u, "{\"fault\":\"status\",\"status\":422,\"method\":\"PUT\",\"path\":\"Observation\",\"count\":6}");
	push(&g, 9000, 6);
	long until = now_ms() + 20000;
	while (gw_outbox_number(&g, "dead") != 6 && now_ms() < until)
		sleep_ms(50);
	fault(&u, "{\"fault\":\"status\",\"status\":400,\"method\":\"PUT\",\"path\":\"Observation\",\"count\":3}");
	push(&g, 9100, 3);
	until = now_ms() + 20000;
	while (gw_outbox_number(&g, "dead") != 9 && now_ms() < until)
		sleep_ms(50);
	assert_int_equal(gw_outbox_number(&g, "dead"), 9);
	struct resp r;
	char stamp[64] = "";
	assert_int_equal(http_do(&g, "GET", "/outbox?state=dead&_count=1", NULL, NULL, 0, &r), 0);
	cJSON *j = cJSON_Parse(r.body);
	const cJSON *oldest = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "records"), 0);
	snprintf(stamp, sizeof stamp, "%s", s(oldest, "created"));
	cJSON_Delete(j);
	resp_free(&r);
	assert_true(strlen(stamp) >= 20);

	/* bad filters: 400, nothing retried */
	assert_int_equal(retried(&g, "?typ=Observation"), -400);
	assert_int_equal(retried(&g, "?type=Nonsense"), -400);
	assert_int_equal(retried(&g, "?since=yesterday"), -400);
	assert_int_equal(retried(&g, "?type=Observation&type=Patient"), -400);
	assert_int_equal(gw_outbox_number(&g, "dead"), 9);
	/* no match */
	assert_int_equal(retried(&g, "?type=Patient"), 0);
	assert_int_equal(retried(&g, "?until=2000-01-01"), 0);
	assert_int_equal(retried(&g, "?since=2999"), 0);
	/* by error text and type: the three 400s only */
	assert_int_equal(retried(&g, "?type=Observation&error=HTTP%20400"), 3);
	until = now_ms() + 20000;
	while (gw_outbox_number(&g, "pending") != 0 && now_ms() < until)
		sleep_ms(50);
	assert_int_equal(gw_outbox_number(&g, "dead"), 6);
	assert_int_equal(upstream_count(&u, "Observation", "urn:push|9100"), 1);
	/* by time range: the first dead letter's creation onwards, the rest */
	char q[160];
	snprintf(q, sizeof q, "?since=%s&until=2999-01-01", stamp);
	assert_int_equal(retried(&g, q), 6);
	assert_true(gw_outbox_drained(&g, 20000));
	assert_int_equal(gw_outbox_number(&g, "dead"), 0);
	for (int k = 0; k < 6; k++) {
		char ident[64];
		snprintf(ident, sizeof ident, "urn:push|%d", 9000 + k);
		assert_int_equal(upstream_count(&u, "Observation", ident), 1);
	}
	assert_int_equal(gw_stop(&g, 10000), 0);
	upstream_stop(&u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(refused_upstream_configurations),
		cmocka_unit_test(pass_through_every_interaction),
		cmocka_unit_test(upstream_narrative_is_neutralised),
		cmocka_unit_test(batches_and_transactions_through_the_upstream),
		cmocka_unit_test(upstream_down_during_a_push_of_1000),
		cmocka_unit_test(kill_9_during_delivery),
		cmocka_unit_test(faults_are_retried_or_dead_lettered),
		cmocka_unit_test(updates_patches_and_deletes_are_forwarded),
		cmocka_unit_test(later_versions_wait_for_earlier_ones),
		cmocka_unit_test(deleting_what_is_gone_upstream_is_delivered),
		cmocka_unit_test(high_water_answers_503),
		cmocka_unit_test(upstream_hooks_run_on_both_paths),
		cmocka_unit_test(ingest_delivers_what_the_routes_say),
		cmocka_unit_test(outage_delivers_in_dependency_order),
		cmocka_unit_test(dead_letters_retried_by_filter),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
