/* End-to-end tests of the FHIR REST API's guarantees under stress and at its
 * edges, on a real gateway over loopback: conditional writes that race, the
 * checks that make a transaction refuse instead of storing half-resolved
 * content, search parameters that are refused instead of ignored, what
 * before-store hooks may hand to the store, references to other servers,
 * history paging while writers add versions, and conditional reads with
 * dates in the future. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e/harness.h"

static struct gw gw;
static const char *fj[] = {"Content-Type: application/fhir+json", NULL};

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

static struct resp call_on(const struct gw *on, const char *method, const char *path, const char *const *headers,
			   const char *body)
{
	struct resp r;
	memset(&r, 0, sizeof r);
	assert_int_equal(http_do(on, method, path, headers, body, body ? strlen(body) : 0, &r), 0);
	return r;
}

static struct resp call(const char *method, const char *path, const char *const *headers, const char *body)
{
	return call_on(&gw, method, path, headers, body);
}

static cJSON *json_of(const struct resp *r)
{
	cJSON *j = cJSON_Parse(r->body);
	if (!j)
		print_message("# not JSON (%ld): %s\n", r->status, r->body);
	assert_non_null(j);
	return j;
}

static const cJSON *g(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* The search's total for path (a GET with _summary=count appended). */
static long total_of(const char *path)
{
	char p[512];
	snprintf(p, sizeof p, "%s%s_summary=count", path, strchr(path, '?') ? "&" : "?");
	struct resp r = call("GET", p, NULL, NULL);
	assert_int_equal(r.status, 200);
	cJSON *b = json_of(&r);
	long n = (long)cJSON_GetNumberValue(g(b, "total"));
	cJSON_Delete(b);
	resp_free(&r);
	return n;
}

/* ------------------------------------------------------------ conditional writes race */

#define RACERS 20
#define ROUNDS 4

struct racer {
	pthread_barrier_t *start;
	const char *method, *path, *body;
	const char *headers[3];
	long status;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	pthread_barrier_wait(r->start);
	struct resp x;
	memset(&x, 0, sizeof x);
	r->status = http_do(&gw, r->method, r->path, r->headers, r->body, strlen(r->body), &x) == 0 ? x.status : -1;
	resp_free(&x);
	return NULL;
}

/* RACERS clients send the same conditional write at once; returns how many
 * answered with status ok_a or ok_b. */
static int run_race(const char *method, const char *path, const char *body, const char *extra_header, long ok_a,
		    long ok_b)
{
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, RACERS);
	pthread_t t[RACERS];
	struct racer rs[RACERS];
	for (int i = 0; i < RACERS; i++) {
		rs[i] = (struct racer){.start = &start, .method = method, .path = path, .body = body};
		rs[i].headers[0] = "Content-Type: application/fhir+json";
		rs[i].headers[1] = extra_header;
		assert_int_equal(pthread_create(&t[i], NULL, race, &rs[i]), 0);
	}
	int ok = 0;
	for (int i = 0; i < RACERS; i++) {
		pthread_join(t[i], NULL);
		if (rs[i].status == ok_a || rs[i].status == ok_b)
			ok++;
		else
			print_message("# racer %d answered %ld\n", i, rs[i].status);
	}
	pthread_barrier_destroy(&start);
	return ok;
}

/* 20 parallel conditional creates (If-None-Exist) and 20 parallel
 * conditional updates with no match yet make exactly one resource per round;
 * every racer is answered 200 or 201, and later conditional writes on the
 * same identifier still find the one match. */
static void conditional_writes_under_concurrency_make_one_resource(void **state)
{
	(void)state;
	for (int round = 0; round < ROUNDS; round++) {
		char body[256], ine[128], query[160];
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:race\",\"value\":\"c%d\"}]}", round);
		snprintf(ine, sizeof ine, "If-None-Exist: identifier=urn:race|c%d", round);
		assert_int_equal(run_race("POST", "/fhir/Patient", body, ine, 201, 200), RACERS);
		snprintf(query, sizeof query, "/fhir/Patient?identifier=urn:race|c%d", round);
		assert_int_equal(total_of(query), 1);
		/* the identifier still names one resource: a conditional create finds it */
		struct resp r = call("POST", "/fhir/Patient", (const char *[]){fj[0], ine, NULL}, body);
		assert_int_equal(r.status, 200);
		resp_free(&r);

		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:race\",\"value\":\"u%d\"}]}", round);
		snprintf(query, sizeof query, "/fhir/Patient?identifier=urn:race|u%d", round);
		assert_int_equal(run_race("PUT", query, body, NULL, 201, 200), RACERS);
		assert_int_equal(total_of(query), 1);
		r = call("PUT", query, fj, body);
		assert_int_equal(r.status, 200);
		resp_free(&r);

		/* a batch entry with ifNoneExist */
		char bundle[512];
		snprintf(bundle, sizeof bundle,
			 "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{\"resource\":{\"resourceType\":"
			 "\"Patient\",\"identifier\":[{\"system\":\"urn:race\",\"value\":\"b%d\"}]},\"request\":{"
			 "\"method\":\"POST\",\"url\":\"Patient\",\"ifNoneExist\":\"identifier=urn:race|b%d\"}}]}",
			 round, round);
		assert_int_equal(run_race("POST", "/fhir", bundle, NULL, 200, 200), RACERS);
		snprintf(query, sizeof query, "/fhir/Patient?identifier=urn:race|b%d", round);
		assert_int_equal(total_of(query), 1);
	}
}

/* ------------------------------------------------------------ transactions */

/* POSTs a transaction; expects 400 with an OperationOutcome whose text
 * contains what. */
static void tx_refused(const char *bundle, const char *what)
{
	struct resp r = call("POST", "/fhir", fj, bundle);
	if (r.status != 400)
		print_message("# %ld %s\n", r.status, r.body);
	assert_int_equal(r.status, 400);
	cJSON *b = json_of(&r);
	assert_string_equal(cJSON_GetStringValue(g(b, "resourceType")), "OperationOutcome");
	if (!strstr(r.body, what))
		print_message("# %s\n", r.body);
	assert_non_null(strstr(r.body, what));
	cJSON_Delete(b);
	resp_free(&r);
}

#define TXP "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
#define PAT(ident) "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:tx\",\"value\":\"" ident "\"}]}"

/* A transaction that would store a urn:uuid reference no entry defines,
 * that names two entries with one fullUrl, or that touches one resource
 * twice is refused whole: 400, nothing stored. A batch refuses only the
 * entry with the dangling reference. */
static void transaction_refuses_dangling_urns_and_duplicates(void **state)
{
	(void)state;
	/* a dangling urn:uuid reference beside a valid entry */
	tx_refused(TXP "{\"fullUrl\":\"urn:uuid:8a0c2f52-0000-4000-8000-000000000001\",\"resource\":" PAT("d1")
		       ",\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}},"
		       "{\"resource\":{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		       "\"identifier\":[{\"system\":\"urn:tx\",\"value\":\"d1\"}],"
		       "\"subject\":{\"reference\":\"urn:uuid:8a0c2f52-0000-4000-8000-0000000000ff\"}},"
		       "\"request\":{\"method\":\"POST\",\"url\":\"Observation\"}}]}",
		   "urn:uuid:8a0c2f52-0000-4000-8000-0000000000ff");
	assert_int_equal(total_of("/fhir/Patient?identifier=urn:tx|d1"), 0);
	assert_int_equal(total_of("/fhir/Observation?identifier=urn:tx|d1"), 0);
	/* the same reference resolved by an entry is stored resolved */
	struct resp r = call("POST", "/fhir", fj,
			     TXP "{\"fullUrl\":\"urn:uuid:8a0c2f52-0000-4000-8000-0000000000ff\",\"resource\":" PAT("d2")
				 ",\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}},"
				 "{\"resource\":{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":"
				 "\"x\"},\"identifier\":[{\"system\":\"urn:tx\",\"value\":\"d2\"}],"
				 "\"subject\":{\"reference\":\"urn:uuid:8a0c2f52-0000-4000-8000-0000000000ff\"}},"
				 "\"request\":{\"method\":\"POST\",\"url\":\"Observation\"}}]}");
	assert_int_equal(r.status, 200);
	assert_null(strstr(r.body, "urn:uuid"));
	resp_free(&r);
	assert_int_equal(total_of("/fhir/Observation?identifier=urn:tx|d2"), 1);

	/* two entries with one fullUrl */
	tx_refused(TXP "{\"fullUrl\":\"urn:uuid:8a0c2f52-0000-4000-8000-000000000002\",\"resource\":" PAT("f1")
		       ",\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}},"
		       "{\"fullUrl\":\"urn:uuid:8a0c2f52-0000-4000-8000-000000000002\",\"resource\":" PAT("f1")
		       ",\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}}]}",
		   "Bundle.entry[1].fullUrl");
	assert_int_equal(total_of("/fhir/Patient?identifier=urn:tx|f1"), 0);

	/* one resource written twice, or written and deleted */
	tx_refused(TXP "{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"twice\",\"gender\":\"male\"},"
		       "\"request\":{\"method\":\"PUT\",\"url\":\"Patient/twice\"}},"
		       "{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"twice\",\"gender\":\"female\"},"
		       "\"request\":{\"method\":\"PUT\",\"url\":\"Patient/twice\"}}]}",
		   "touches each resource once");
	tx_refused(TXP "{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"twice\",\"gender\":\"male\"},"
		       "\"request\":{\"method\":\"PUT\",\"url\":\"Patient/twice\"}},"
		       "{\"request\":{\"method\":\"DELETE\",\"url\":\"Patient/twice\"}}]}",
		   "Patient/twice");
	r = call("GET", "/fhir/Patient/twice", NULL, NULL);
	assert_int_equal(r.status, 404);
	resp_free(&r);
	/* reading it beside writing it is fine */
	r = call("POST", "/fhir", fj,
		 TXP "{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"twice\",\"gender\":\"male\"},"
		     "\"request\":{\"method\":\"PUT\",\"url\":\"Patient/twice\"}},"
		     "{\"request\":{\"method\":\"GET\",\"url\":\"Patient/twice\"}}]}");
	assert_int_equal(r.status, 200);
	resp_free(&r);

	/* a batch: the entry with the dangling reference fails alone */
	r = call("POST", "/fhir", fj,
		 "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{\"resource\":" PAT("b1")
		 ",\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}},"
		 "{\"resource\":{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		 "\"identifier\":[{\"system\":\"urn:tx\",\"value\":\"b1\"}],"
		 "\"subject\":{\"reference\":\"urn:uuid:8a0c2f52-0000-4000-8000-0000000000ee\"}},"
		 "\"request\":{\"method\":\"POST\",\"url\":\"Observation\"}}]}");
	assert_int_equal(r.status, 200);
	cJSON *b = json_of(&r);
	assert_string_equal(cJSON_GetStringValue(g(g(cJSON_GetArrayItem(g(b, "entry"), 1), "response"), "status")), "400");
	cJSON_Delete(b);
	resp_free(&r);
	assert_int_equal(total_of("/fhir/Patient?identifier=urn:tx|b1"), 1);
	assert_int_equal(total_of("/fhir/Observation?identifier=urn:tx|b1"), 0);
}

/* ------------------------------------------------------------ _include, _revinclude, _elements */

static void refused_400(const char *path, const char *what)
{
	struct resp r = call("GET", path, NULL, NULL);
	if (r.status != 400 || !strstr(r.body, what))
		print_message("# %s: %ld %s\n", path, r.status, r.body);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "OperationOutcome"));
	assert_non_null(strstr(r.body, what));
	resp_free(&r);
}

/* Unknown _include, _revinclude and _elements values are refused like any
 * unknown parameter; with Prefer: handling=lenient they are left out and an
 * outcome entry says so, while the known ones still apply. */
static void unknown_result_parameters_are_refused(void **state)
{
	(void)state;
	struct resp r = call("PUT", "/fhir/Patient/incp", fj,
			     "{\"resourceType\":\"Patient\",\"id\":\"incp\",\"gender\":\"female\",\"birthDate\":\"1970\"}");
	assert_true(r.status == 201 || r.status == 200);
	resp_free(&r);
	r = call("PUT", "/fhir/Observation/inco", fj,
		 "{\"resourceType\":\"Observation\",\"id\":\"inco\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		 "\"subject\":{\"reference\":\"Patient/incp\"},\"valueString\":\"v\"}");
	assert_true(r.status == 201 || r.status == 200);
	resp_free(&r);

	refused_400("/fhir/Observation?_id=inco&_include=Observation:nope", "Observation:nope");
	refused_400("/fhir/Observation?_id=inco&_include=Nope:subject", "Nope:subject");
	refused_400("/fhir/Observation?_id=inco&_include=Observation:code", "not a reference");
	refused_400("/fhir/Observation?_id=inco&_include=Observation:subject:Nope", "Observation:subject:Nope");
	refused_400("/fhir/Observation?_id=inco&_include=subject", "_include=subject");
	refused_400("/fhir/Observation?_id=inco&_include=Observation:subject:Practitioner", "cannot point at");
	refused_400("/fhir/Patient?_id=incp&_revinclude=Observation:subject:Practitioner", "cannot point at");
	refused_400("/fhir/Patient?_id=incp&_revinclude=Observation:nope", "Observation:nope");
	refused_400("/fhir/Patient?_id=incp&_revinclude:iterate=Observation:nope", "Observation:nope");
	refused_400("/fhir/Patient?_id=incp&_elements=gender,nope", "'nope'");
	refused_400("/fhir/Patient/incp?_elements=nope", "'nope'");

	/* the known ones work */
	r = call("GET", "/fhir/Observation?_id=inco&_include=Observation:subject:Patient&_elements=status,value", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"valueString\":\"v\""));
	assert_null(strstr(r.body, "\"code\":{\"text\""));
	assert_non_null(strstr(r.body, "\"id\":\"incp\""));
	resp_free(&r);

	/* lenient: left out, said in an outcome entry; the rest applies */
	const char *lenient[] = {"Prefer: handling=lenient", NULL};
	r = call("GET", "/fhir/Observation?_id=inco&_include=Observation:nope&_include=Observation:subject&_elements=status,nope",
		 lenient, NULL);
	assert_int_equal(r.status, 200);
	cJSON *b = json_of(&r);
	int outcomes = 0, patients = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, g(b, "entry"))
	{
		const char *mode = cJSON_GetStringValue(g(g(e, "search"), "mode"));
		const char *rt = cJSON_GetStringValue(g(g(e, "resource"), "resourceType"));
		outcomes += mode && !strcmp(mode, "outcome");
		patients += rt && !strcmp(rt, "Patient");
	}
	assert_int_equal(outcomes, 1);
	assert_int_equal(patients, 1);
	assert_non_null(strstr(r.body, "Observation:nope"));
	assert_non_null(strstr(r.body, "'nope'"));
	assert_null(strstr(r.body, "\"valueString\""));
	cJSON_Delete(b);
	resp_free(&r);
	r = call("GET", "/fhir/Patient/incp?_elements=nope,gender", lenient, NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"gender\""));
	assert_null(strstr(r.body, "\"birthDate\""));
	resp_free(&r);
}

/* ------------------------------------------------------------ plugins' output */

/* A gateway whose plugin directory holds the test plugin name. */
static void start_with_test_plugin(struct gw *on, const char *name)
{
	char dir[256];
	harness_test_plugins(dir, sizeof dir, name, NULL);
	const char *args[] = {"--plugins", dir, NULL};
	assert_int_equal(gw_start_args(on, NULL, args), 0);
}

/* What a before-store hook, a mapper or an operation hands on is checked
 * like what a client sends: a hook that adds an unknown element and an
 * impossible date makes the write fail (500, the plugin named, nothing
 * stored), on create, update, transaction and ingest; a mapper's invalid
 * resource is 422 naming it; an operation answering non-FHIR JSON is 500
 * naming it. */
static void plugins_cannot_store_what_validation_refuses(void **state)
{
	(void)state;
	struct gw pg;
	start_with_test_plugin(&pg, "tp_corrupt");
	const char *bad[] = {"Content-Type: application/fhir+json", "X-Test-Corrupt: 1", NULL};
	const char *pat = "{\"resourceType\":\"Patient\",\"id\":\"hooked\",\"birthDate\":\"1970-01-01\"}";

	struct resp r = call_on(&pg, "POST", "/fhir/Patient", bad, pat);
	if (r.status != 500)
		print_message("# %ld %s\n", r.status, r.body);
	assert_int_equal(r.status, 500);
	assert_non_null(strstr(r.body, "OperationOutcome"));
	assert_non_null(strstr(r.body, "tp_corrupt"));
	assert_non_null(strstr(r.body, "notAnElement"));
	resp_free(&r);
	r = call_on(&pg, "PUT", "/fhir/Patient/hooked", bad, pat);
	assert_int_equal(r.status, 500);
	assert_non_null(strstr(r.body, "tp_corrupt"));
	resp_free(&r);
	r = call_on(&pg, "POST", "/fhir", bad,
		    "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":{\"resourceType\":"
		    "\"Patient\",\"id\":\"hooked\"},\"request\":{\"method\":\"PUT\",\"url\":\"Patient/hooked\"}}]}");
	assert_int_equal(r.status, 500);
	assert_non_null(strstr(r.body, "tp_corrupt"));
	resp_free(&r);
	r = call_on(&pg, "GET", "/fhir/Patient?_summary=count", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"total\":0"));
	resp_free(&r);
	/* without the header the hook leaves it alone */
	r = call_on(&pg, "PUT", "/fhir/Patient/hooked", fj, pat);
	assert_int_equal(r.status, 201);
	resp_free(&r);

	/* the mapper */
	const char *json[] = {"Content-Type: application/json", NULL};
	r = call_on(&pg, "POST", "/ingest/corrupt", json, "{}");
	if (r.status != 422)
		print_message("# %ld %s\n", r.status, r.body);
	assert_int_equal(r.status, 422);
	assert_non_null(strstr(r.body, "tp_corrupt"));
	assert_non_null(strstr(r.body, "notAnElement"));
	resp_free(&r);
	r = call_on(&pg, "POST", "/ingest/corrupt?preview=true", json, "{}");
	assert_int_equal(r.status, 422);
	resp_free(&r);

	/* the operation */
	r = call_on(&pg, "POST", "/fhir/$corrupt", fj, "{\"resourceType\":\"Parameters\"}");
	if (r.status != 500)
		print_message("# %ld %s\n", r.status, r.body);
	assert_int_equal(r.status, 500);
	assert_non_null(strstr(r.body, "tp_corrupt"));
	assert_null(strstr(r.body, "not FHIR"));
	resp_free(&r);

	r = call_on(&pg, "GET", "/fhir/Patient?_summary=count", NULL, NULL);
	assert_non_null(strstr(r.body, "\"total\":1"));
	resp_free(&r);
	assert_int_equal(gw_stop(&pg, 5000), 0);
}

/* ------------------------------------------------------------ references to other servers */

/* The ids of a searchset's entries (resourceType/id, comma-separated, in order) into buf. */
static const char *ids_of(const char *path, char *buf, size_t n)
{
	struct resp r = call("GET", path, NULL, NULL);
	if (r.status != 200)
		print_message("# %s: %ld %s\n", path, r.status, r.body);
	assert_int_equal(r.status, 200);
	cJSON *b = json_of(&r);
	buf[0] = '\0';
	size_t pos = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, g(b, "entry"))
	{
		const cJSON *res = g(e, "resource");
		if (!strcmp(cJSON_GetStringValue(g(res, "resourceType")), "OperationOutcome"))
			continue;
		pos += (size_t)snprintf(buf + pos, n - pos, "%s%s", pos ? "," : "", cJSON_GetStringValue(g(res, "id")));
	}
	cJSON_Delete(b);
	resp_free(&r);
	return buf;
}

static void put_obs(const char *id, const char *subject)
{
	char body[512], path[64];
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Observation\",\"id\":\"%s\",\"status\":\"final\",\"code\":{\"text\":\"ref\"},"
		 "\"subject\":{\"reference\":\"%s\"}}",
		 id, subject);
	snprintf(path, sizeof path, "/fhir/Observation/%s", id);
	struct resp r = call("PUT", path, fj, body);
	assert_int_equal(r.status, 201);
	resp_free(&r);
}

/* A reference is to a local resource only when it is relative or names the
 * gateway's own base; another server's Patient/fr1 is not the local
 * Patient/fr1 for search, _include or _revinclude, and a search by the
 * absolute URL matches it exactly. */
static void references_to_other_servers_are_not_local(void **state)
{
	(void)state;
	char own[128], buf[512], path[300];
	snprintf(own, sizeof own, "http://127.0.0.1:%u/fhir/Patient/fr1", gw.port);
	struct resp r = call("PUT", "/fhir/Patient/fr1", fj, "{\"resourceType\":\"Patient\",\"id\":\"fr1\"}");
	assert_int_equal(r.status, 201);
	resp_free(&r);
	put_obs("fr-local", "Patient/fr1");
	put_obs("fr-own", own);
	put_obs("fr-far", "http://other.example/fhir/Patient/fr1");
	put_obs("fr-far-v", "https://other.example/fhir/Patient/fr1/_history/2");

	assert_string_equal(ids_of("/fhir/Observation?subject=Patient/fr1", buf, sizeof buf), "fr-local,fr-own");
	assert_string_equal(ids_of("/fhir/Observation?patient=fr1", buf, sizeof buf), "fr-local,fr-own");
	assert_string_equal(ids_of("/fhir/Observation?subject:Patient=fr1", buf, sizeof buf), "fr-local,fr-own");
	snprintf(path, sizeof path, "/fhir/Observation?subject=%s", own);
	assert_string_equal(ids_of(path, buf, sizeof buf), "fr-local,fr-own");
	assert_string_equal(ids_of("/fhir/Observation?subject=http://other.example/fhir/Patient/fr1", buf, sizeof buf),
			    "fr-far");
	assert_string_equal(ids_of("/fhir/Observation?_id=fr-far,fr-far-v&subject=http://other.example/fhir/Patient/fr2",
				   buf, sizeof buf),
			    "");
	assert_string_equal(ids_of("/fhir/Patient?_id=fr1&_revinclude=Observation:subject", buf, sizeof buf),
			    "fr1,fr-local,fr-own");
	assert_string_equal(ids_of("/fhir/Observation?_id=fr-far,fr-far-v&_include=Observation:subject", buf, sizeof buf),
			    "fr-far,fr-far-v");
	assert_string_equal(ids_of("/fhir/Observation?_id=fr-own&_include=Observation:subject", buf, sizeof buf),
			    "fr-own,fr1");
	/* the own base was made relative when stored */
	r = call("GET", "/fhir/Observation/fr-own", NULL, NULL);
	assert_non_null(strstr(r.body, "\"reference\":\"Patient/fr1\""));
	resp_free(&r);
}

/* ------------------------------------------------------------ conditional reads */

/* If-Modified-Since later than the server's clock is invalid and ignored
 * (200 with the resource); one at or after the last change is 304. */
static void if_modified_since_in_the_future_is_ignored(void **state)
{
	(void)state;
	struct resp r = call("PUT", "/fhir/Patient/ims", fj, "{\"resourceType\":\"Patient\",\"id\":\"ims\"}");
	assert_true(r.status == 201 || r.status == 200);
	char lm[128];
	assert_non_null(resp_header(&r, "Last-Modified", lm, sizeof lm));
	resp_free(&r);
	char h[200];
	snprintf(h, sizeof h, "If-Modified-Since: %s", lm);
	const char *now[] = {h, NULL};
	r = call("GET", "/fhir/Patient/ims", now, NULL);
	assert_int_equal(r.status, 304);
	resp_free(&r);
	const char *future[] = {"If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT", NULL};
	r = call("GET", "/fhir/Patient/ims", future, NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"id\":\"ims\""));
	resp_free(&r);
	r = call("GET", "/fhir/Patient/ims?_summary=true", future, NULL);
	assert_int_equal(r.status, 200);
	resp_free(&r);
}

/* ------------------------------------------------------------ history paging */

#define HIST_START 40

struct hist_writer {
	int n;
	atomic_int *stop;
	int written;
};

static void *hist_write(void *arg)
{
	struct hist_writer *w = arg;
	for (int i = 0; !*w->stop && i < 400; i++) {
		char body[160];
		snprintf(body, sizeof body, "{\"resourceType\":\"Patient\",\"id\":\"hist\",\"gender\":\"%s\"}",
			 (w->n + i) % 2 ? "male" : "female");
		struct resp r;
		memset(&r, 0, sizeof r);
		if (http_do(&gw, "PUT", "/fhir/Patient/hist", fj, body, strlen(body), &r) == 0 && r.status == 200)
			w->written++;
		resp_free(&r);
	}
	return NULL;
}

/* Paging a history by its next links while writers add versions reaches
 * every version that existed when paging began exactly once, in order,
 * newest first: the next link is a cursor, not an offset. */
static void history_paging_is_stable_under_concurrent_writes(void **state)
{
	(void)state;
	for (int i = 0; i < HIST_START; i++) {
		char body[160];
		snprintf(body, sizeof body, "{\"resourceType\":\"Patient\",\"id\":\"hist\",\"birthDate\":\"19%02d\"}", 50 + i);
		struct resp r = call("PUT", "/fhir/Patient/hist", fj, body);
		assert_true(r.status == 201 || r.status == 200);
		resp_free(&r);
	}
	atomic_int stop = 0;
	pthread_t t[2];
	struct hist_writer w[2];
	for (int i = 0; i < 2; i++) {
		w[i] = (struct hist_writer){.n = i, .stop = &stop};
		assert_int_equal(pthread_create(&t[i], NULL, hist_write, &w[i]), 0);
	}
	static int seen[4000];
	memset(seen, 0, sizeof seen);
	char path[512];
	snprintf(path, sizeof path, "/fhir/Patient/hist/_history?_count=1");
	long first = 0, last = 0;
	int pages = 0;
	for (; path[0] && pages < 2000; pages++) {
		struct resp r = call("GET", path, NULL, NULL);
		assert_int_equal(r.status, 200);
		cJSON *b = json_of(&r);
		const cJSON *e;
		cJSON_ArrayForEach(e, g(b, "entry"))
		{
			long v = strtol(cJSON_GetStringValue(g(g(g(e, "resource"), "meta"), "versionId")), NULL, 10);
			assert_true(v > 0 && v < 4000);
			if (!first)
				first = v;
			else
				assert_true(v < last); /* newest first, never repeated */
			last = v;
			seen[v]++;
		}
		path[0] = '\0';
		const cJSON *l;
		cJSON_ArrayForEach(l, g(b, "link"))
		{
			if (!strcmp(cJSON_GetStringValue(g(l, "relation")), "next"))
				snprintf(path, sizeof path, "%s", strstr(cJSON_GetStringValue(g(l, "url")), "/fhir/"));
		}
		cJSON_Delete(b);
		resp_free(&r);
	}
	stop = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	print_message("# %d pages while %d versions were written\n", pages, w[0].written + w[1].written);
	assert_true(first >= HIST_START);
	for (long v = 1; v <= first; v++) {
		if (seen[v] != 1)
			print_message("# version %ld reached %d times\n", v, seen[v]);
		assert_int_equal(seen[v], 1);
	}
	assert_true(w[0].written + w[1].written > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(conditional_writes_under_concurrency_make_one_resource),
		cmocka_unit_test(transaction_refuses_dangling_urns_and_duplicates),
		cmocka_unit_test(unknown_result_parameters_are_refused),
		cmocka_unit_test(plugins_cannot_store_what_validation_refuses),
		cmocka_unit_test(references_to_other_servers_are_not_local),
		cmocka_unit_test(if_modified_since_in_the_future_is_ignored),
		cmocka_unit_test(history_paging_is_stable_under_concurrent_writes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
