/* End-to-end tests of the FHIR REST API over the embedded SQLite store, on a
 * real gateway: every interaction, its headers and its errors, in JSON and
 * XML; transactions (atomic, urn:uuid resolution) and batches; durability
 * across a restart. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "e2e/harness.h"
#include "fhir/fhir_xml.h"

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

static struct resp call(const char *method, const char *path, const char *const *headers, const char *body)
{
	struct resp r;
	memset(&r, 0, sizeof r);
	assert_int_equal(http_do(&gw, method, path, headers, body, body ? strlen(body) : 0, &r), 0);
	return r;
}

static cJSON *json_of(const struct resp *r)
{
	cJSON *j = cJSON_Parse(r->body);
	if (!j)
		print_message("# not JSON (%ld): %s\n", r->status, r->body);
	assert_non_null(j);
	return j;
}

static const char *s(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *g(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static void header_is(const struct resp *r, const char *name, const char *want)
{
	char buf[512];
	assert_non_null(resp_header(r, name, buf, sizeof buf));
	if (strcmp(buf, want) != 0)
		print_message("# %s: %s (want %s)\n", name, buf, want);
	assert_string_equal(buf, want);
}

/* Creates a resource; returns its id (static buffer). */
static const char *create(const char *type, const char *body)
{
	static char id[80];
	char path[128];
	snprintf(path, sizeof path, "/fhir/%s", type);
	struct resp r = call("POST", path, fj, body);
	if (r.status != 201)
		print_message("# create %s: %ld %s\n", type, r.status, r.body);
	assert_int_equal(r.status, 201);
	cJSON *j = json_of(&r);
	snprintf(id, sizeof id, "%s", s(j, "id"));
	cJSON_Delete(j);
	resp_free(&r);
	return id;
}

static void create_read_update_delete(void **state)
{
	(void)state;
	struct resp r = call("POST", "/fhir/Patient", fj,
			     "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:t\",\"value\":\"crud\"}],"
			     "\"birthDate\":\"1980-05-06\",\"name\":[{\"family\":\"Crud\"}]}");
	assert_int_equal(r.status, 201);
	cJSON *p = json_of(&r);
	char id[80], loc[300], want[300];
	snprintf(id, sizeof id, "%s", s(p, "id"));
	assert_string_equal(s(g(p, "meta"), "versionId"), "1");
	assert_non_null(s(g(p, "meta"), "lastUpdated"));
	header_is(&r, "ETag", "W/\"1\"");
	assert_non_null(resp_header(&r, "Last-Modified", loc, sizeof loc));
	assert_non_null(strstr(loc, "GMT"));
	assert_non_null(resp_header(&r, "Location", loc, sizeof loc));
	snprintf(want, sizeof want, "/fhir/Patient/%s/_history/1", id);
	assert_non_null(strstr(loc, want));
	cJSON_Delete(p);
	resp_free(&r);

	char path[200];
	snprintf(path, sizeof path, "/fhir/Patient/%s", id);
	r = call("GET", path, NULL, NULL);
	assert_int_equal(r.status, 200);
	header_is(&r, "ETag", "W/\"1\"");
	resp_free(&r);
	const char *inm[] = {"If-None-Match: W/\"1\"", NULL};
	r = call("GET", path, inm, NULL);
	assert_int_equal(r.status, 304);
	resp_free(&r);

	/* update with the right and the wrong version */
	char body[400];
	snprintf(body, sizeof body, "{\"resourceType\":\"Patient\",\"id\":\"%s\",\"active\":true,\"birthDate\":\"1980-05-06\"}", id);
	const char *m1[] = {"Content-Type: application/fhir+json", "If-Match: W/\"1\"", NULL};
	r = call("PUT", path, m1, body);
	assert_int_equal(r.status, 200);
	header_is(&r, "ETag", "W/\"2\"");
	resp_free(&r);
	r = call("PUT", path, m1, body);
	assert_int_equal(r.status, 412);
	resp_free(&r);
	/* the body's id must be the URL's */
	r = call("PUT", path, fj, "{\"resourceType\":\"Patient\",\"id\":\"other\"}");
	assert_int_equal(r.status, 400);
	resp_free(&r);

	/* vread and history */
	snprintf(path, sizeof path, "/fhir/Patient/%s/_history/1", id);
	r = call("GET", path, NULL, NULL);
	assert_int_equal(r.status, 200);
	p = json_of(&r);
	assert_null(g(p, "active"));
	cJSON_Delete(p);
	resp_free(&r);
	snprintf(path, sizeof path, "/fhir/Patient/%s/_history", id);
	r = call("GET", path, NULL, NULL);
	assert_int_equal(r.status, 200);
	p = json_of(&r);
	assert_string_equal(s(p, "type"), "history");
	assert_int_equal(cJSON_GetObjectItem(p, "total")->valueint, 2);
	cJSON *first = cJSON_GetArrayItem(g(p, "entry"), 0);
	assert_string_equal(s(g(first, "resource"), "id"), id);
	assert_string_equal(s(g(g(first, "resource"), "meta"), "versionId"), "2");
	assert_string_equal(s(g(first, "request"), "method"), "PUT");
	cJSON_Delete(p);
	resp_free(&r);

	/* delete, then 410; deleting again is fine; history shows the deletion */
	snprintf(path, sizeof path, "/fhir/Patient/%s", id);
	r = call("DELETE", path, NULL, NULL);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	r = call("GET", path, NULL, NULL);
	assert_int_equal(r.status, 410);
	resp_free(&r);
	r = call("DELETE", path, NULL, NULL);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	snprintf(path, sizeof path, "/fhir/Patient/%s/_history", id);
	r = call("GET", path, NULL, NULL);
	p = json_of(&r);
	assert_int_equal(cJSON_GetObjectItem(p, "total")->valueint, 3);
	assert_string_equal(s(g(cJSON_GetArrayItem(g(p, "entry"), 0), "request"), "method"), "DELETE");
	cJSON_Delete(p);
	resp_free(&r);

	/* history pages with links; _since keeps only later versions; other
	 * parameters are refused rather than ignored */
	snprintf(path, sizeof path, "/fhir/Patient/%s/_history?_count=2", id);
	r = call("GET", path, NULL, NULL);
	p = json_of(&r);
	assert_int_equal(cJSON_GetArraySize(g(p, "entry")), 2);
	const char *next = NULL;
	const cJSON *l;
	cJSON_ArrayForEach(l, g(p, "link"))
	{
		if (!strcmp(s(l, "relation"), "next"))
			next = s(l, "url");
	}
	assert_non_null(next);
	assert_non_null(strstr(next, "/_history?_count=2&_cursor="));
	/* the next link gives the oldest version */
	snprintf(path, sizeof path, "%s", strstr(next, "/fhir/"));
	cJSON_Delete(p);
	resp_free(&r);
	r = call("GET", path, NULL, NULL);
	p = json_of(&r);
	assert_int_equal(cJSON_GetArraySize(g(p, "entry")), 1);
	assert_string_equal(s(g(g(cJSON_GetArrayItem(g(p, "entry"), 0), "resource"), "meta"), "versionId"), "1");
	cJSON_ArrayForEach(l, g(p, "link"))
		assert_string_not_equal(s(l, "relation"), "next");
	cJSON_Delete(p);
	resp_free(&r);
	snprintf(path, sizeof path, "/fhir/Patient/%s/_history?_count=2&_offset=2", id);
	r = call("GET", path, NULL, NULL);
	p = json_of(&r);
	assert_int_equal(cJSON_GetArraySize(g(p, "entry")), 1);
	assert_string_equal(s(g(g(cJSON_GetArrayItem(g(p, "entry"), 0), "resource"), "meta"), "versionId"), "1");
	cJSON_Delete(p);
	resp_free(&r);
	snprintf(path, sizeof path, "/fhir/Patient/%s/_history?_since=2999-01-01T00:00:00Z", id);
	r = call("GET", path, NULL, NULL);
	assert_int_equal(r.status, 200);
	p = json_of(&r);
	assert_int_equal(cJSON_GetObjectItem(p, "total")->valueint, 0);
	cJSON_Delete(p);
	resp_free(&r);
	snprintf(path, sizeof path, "/fhir/Patient/%s/_history?_since=2000-01-01", id);
	r = call("GET", path, NULL, NULL);
	p = json_of(&r);
	assert_int_equal(cJSON_GetObjectItem(p, "total")->valueint, 3);
	assert_non_null(strstr(s(cJSON_GetArrayItem(g(p, "link"), 0), "url"), "_since=2000-01-01T00"));
	cJSON_Delete(p);
	resp_free(&r);
	r = call("GET", "/fhir/Patient/_history?_since=2999-01-01", NULL, NULL);
	p = json_of(&r);
	assert_int_equal(cJSON_GetObjectItem(p, "total")->valueint, 0);
	cJSON_Delete(p);
	resp_free(&r);
	const char *refused[] = {"?_since=yesterday", "?name=x", "?_sort=_id", "?_at=2020"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "/fhir/Patient/_history%s", refused[i]);
		r = call("GET", path, NULL, NULL);
		if (r.status != 400)
			fail_msg("%s: %ld", path, r.status);
		assert_non_null(strstr(r.body, "OperationOutcome"));
		resp_free(&r);
	}
	r = call("GET", "/fhir/Patient/never-was/_history?_since=2000-01-01", NULL, NULL);
	assert_int_equal(r.status, 404);
	resp_free(&r);

	/* update-as-create with a client id */
	r = call("PUT", "/fhir/Patient/client-chosen-1", fj, "{\"resourceType\":\"Patient\",\"id\":\"client-chosen-1\"}");
	assert_int_equal(r.status, 201);
	resp_free(&r);
	r = call("GET", "/fhir/Patient/client-chosen-1", NULL, NULL);
	assert_int_equal(r.status, 200);
	resp_free(&r);
}

static void errors_are_outcomes(void **state)
{
	(void)state;
	struct resp r = call("GET", "/fhir/Patient/does-not-exist", NULL, NULL);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(r.body, "OperationOutcome"));
	resp_free(&r);
	r = call("GET", "/fhir/Patient/bad_id!", NULL, NULL);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	r = call("GET", "/fhir/Golem/1", NULL, NULL);
	assert_int_equal(r.status, 404);
	resp_free(&r);
	/* invalid resources are refused and nothing is stored */
	r = call("POST", "/fhir/Patient", fj, "{\"resourceType\":\"Patient\",\"birthDate\":\"1980-13-01\",\"foo\":1}");
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "Patient.birthDate"));
	assert_non_null(strstr(r.body, "Patient.foo"));
	resp_free(&r);
	r = call("POST", "/fhir/Observation", fj, "{\"resourceType\":\"Patient\"}");
	assert_int_equal(r.status, 400);
	resp_free(&r);
	r = call("POST", "/fhir/Patient", fj, "{\"resourceType\":\"Patient\",");
	assert_int_equal(r.status, 400);
	resp_free(&r);
	const char *plain[] = {"Content-Type: text/plain", NULL};
	r = call("POST", "/fhir/Patient", plain, "{\"resourceType\":\"Patient\"}");
	assert_int_equal(r.status, 415);
	resp_free(&r);
	r = call("GET", "/fhir/Patient?nonsense-param=1", NULL, NULL);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "nonsense-param"));
	resp_free(&r);
	r = call("GET", "/fhir/Patient?_count=abc", NULL, NULL);
	assert_int_equal(r.status, 400);
	resp_free(&r);
}

static void search_and_paging(void **state)
{
	(void)state;
	char body[600];
	for (int i = 0; i < 5; i++) {
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:page\",\"value\":\"v%d\"}],"
			 "\"name\":[{\"family\":\"Pager%d\"}],\"birthDate\":\"199%d-01-01\",\"gender\":\"%s\"}",
			 i, i, i, i % 2 ? "male" : "female");
		create("Patient", body);
	}
	struct resp r = call("GET", "/fhir/Patient?identifier=urn:page|v3", NULL, NULL);
	assert_int_equal(r.status, 200);
	cJSON *b = json_of(&r);
	assert_string_equal(s(b, "type"), "searchset");
	assert_int_equal(cJSON_GetObjectItem(b, "total")->valueint, 1);
	assert_string_equal(s(g(cJSON_GetArrayItem(g(b, "entry"), 0), "search"), "mode"), "match");
	cJSON_Delete(b);
	resp_free(&r);

	r = call("GET", "/fhir/Patient?birthdate=ge1992-01-01&birthdate=lt1994&_sort=birthdate", NULL, NULL);
	assert_int_equal(r.status, 200);
	b = json_of(&r);
	assert_int_equal(cJSON_GetObjectItem(b, "total")->valueint, 2);
	assert_string_equal(s(g(cJSON_GetArrayItem(g(b, "entry"), 0), "resource"), "birthDate"), "1992-01-01");
	cJSON_Delete(b);
	resp_free(&r);

	/* an unknown parameter: refused by default, left out when lenient */
	r = call("GET", "/fhir/Patient?name=pager&colour=red", NULL, NULL);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "colour"));
	resp_free(&r);
	const char *lenient[] = {"Prefer: handling=lenient", NULL};
	r = call("GET", "/fhir/Patient?name=pager&colour=red", lenient, NULL);
	assert_int_equal(r.status, 200);
	b = json_of(&r);
	assert_int_equal(cJSON_GetObjectItem(b, "total")->valueint, 5);
	const cJSON *last = cJSON_GetArrayItem(g(b, "entry"), 5);
	assert_string_equal(s(g(last, "search"), "mode"), "outcome");
	assert_string_equal(s(g(last, "resource"), "resourceType"), "OperationOutcome");
	assert_non_null(strstr(s(cJSON_GetArrayItem(g(g(last, "resource"), "issue"), 0), "diagnostics"), "'colour'"));
	const char *self = s(cJSON_GetArrayItem(g(b, "link"), 0), "url");
	assert_non_null(strstr(self, "name=pager"));
	assert_null(strstr(self, "colour"));
	cJSON_Delete(b);
	resp_free(&r);

	r = call("GET", "/fhir/Patient?name=pager&_count=2&_sort=-birthdate", NULL, NULL);
	b = json_of(&r);
	assert_int_equal(cJSON_GetObjectItem(b, "total")->valueint, 5);
	assert_int_equal(cJSON_GetArraySize(g(b, "entry")), 2);
	assert_string_equal(s(g(cJSON_GetArrayItem(g(b, "entry"), 0), "resource"), "birthDate"), "1994-01-01");
	const char *next = NULL;
	const cJSON *l;
	cJSON_ArrayForEach(l, g(b, "link"))
	{
		if (!strcmp(s(l, "relation"), "next"))
			next = s(l, "url");
	}
	assert_non_null(next);
	const char *path = strstr(next, "/fhir/");
	assert_non_null(path);
	char nextp[1024];
	snprintf(nextp, sizeof nextp, "%s", path);
	cJSON_Delete(b);
	resp_free(&r);
	r = call("GET", nextp, NULL, NULL);
	assert_int_equal(r.status, 200);
	b = json_of(&r);
	assert_string_equal(s(g(cJSON_GetArrayItem(g(b, "entry"), 0), "resource"), "birthDate"), "1992-01-01");
	cJSON_Delete(b);
	resp_free(&r);

	r = call("GET", "/fhir/Patient?name=pager&_summary=count", NULL, NULL);
	b = json_of(&r);
	assert_int_equal(cJSON_GetObjectItem(b, "total")->valueint, 5);
	assert_null(g(b, "entry"));
	cJSON_Delete(b);
	resp_free(&r);

	r = call("GET", "/fhir/Patient?identifier=urn:page|v1&_elements=gender", NULL, NULL);
	b = json_of(&r);
	const cJSON *res = g(cJSON_GetArrayItem(g(b, "entry"), 0), "resource");
	assert_string_equal(s(res, "gender"), "male");
	assert_null(g(res, "name"));
	assert_non_null(strstr(r.body, "SUBSETTED"));
	cJSON_Delete(b);
	resp_free(&r);

	/* POST _search with a form body */
	const char *form[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
	r = call("POST", "/fhir/Patient/_search", form, "identifier=urn%3Apage%7Cv2&gender=female");
	assert_int_equal(r.status, 200);
	b = json_of(&r);
	assert_int_equal(cJSON_GetObjectItem(b, "total")->valueint, 1);
	cJSON_Delete(b);
	resp_free(&r);

	/* XML searchset */
	r = call("GET", "/fhir/Patient?identifier=urn:page|v4&_format=xml", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "<Bundle xmlns=\"http://hl7.org/fhir\">"));
	resp_free(&r);
}

static void include_and_revinclude(void **state)
{
	(void)state;
	char pid[80], body[600];
	snprintf(pid, sizeof pid, "%s", create("Patient", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Incl\"}]}"));
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
		 "\"code\":\"44261-6\"}]},\"subject\":{\"reference\":\"Patient/%s\"},\"valueInteger\":7}",
		 pid);
	create("Observation", body);
	char path[300];
	snprintf(path, sizeof path, "/fhir/Observation?subject=Patient/%s&_include=Observation:subject", pid);
	struct resp r = call("GET", path, NULL, NULL);
	assert_int_equal(r.status, 200);
	cJSON *b = json_of(&r);
	assert_int_equal(cJSON_GetObjectItem(b, "total")->valueint, 1);
	assert_int_equal(cJSON_GetArraySize(g(b, "entry")), 2);
	cJSON *inc = cJSON_GetArrayItem(g(b, "entry"), 1);
	assert_string_equal(s(g(inc, "search"), "mode"), "include");
	assert_string_equal(s(g(inc, "resource"), "id"), pid);
	cJSON_Delete(b);
	resp_free(&r);

	snprintf(path, sizeof path, "/fhir/Patient?_id=%s&_revinclude=Observation:subject", pid);
	r = call("GET", path, NULL, NULL);
	b = json_of(&r);
	if (cJSON_GetArraySize(g(b, "entry")) != 2)
		print_message("# %s -> %s\n", path, r.body);
	assert_int_equal(cJSON_GetArraySize(g(b, "entry")), 2);
	assert_string_equal(s(g(cJSON_GetArrayItem(g(b, "entry"), 1), "resource"), "resourceType"), "Observation");
	cJSON_Delete(b);
	resp_free(&r);

	r = call("GET", "/fhir/Observation?code=http://loinc.org|44261-6", NULL, NULL);
	b = json_of(&r);
	assert_true(cJSON_GetObjectItem(b, "total")->valueint >= 1);
	cJSON_Delete(b);
	resp_free(&r);

	/* chained: Observations of the Patient named Incl */
	r = call("GET", "/fhir/Observation?subject:Patient.name=incl&_include=Observation:subject", NULL, NULL);
	assert_int_equal(r.status, 200);
	b = json_of(&r);
	assert_int_equal(cJSON_GetObjectItem(b, "total")->valueint, 1);
	assert_string_equal(s(g(cJSON_GetArrayItem(g(b, "entry"), 1), "resource"), "id"), pid);
	cJSON_Delete(b);
	resp_free(&r);
	r = call("GET", "/fhir/Observation?subject.name=incl", NULL, NULL);
	assert_int_equal(r.status, 400); /* subject may point at several types: say which */
	assert_non_null(strstr(r.body, "subject:Type.name"));
	resp_free(&r);

	/* :iterate follows what the previous round included: CarePlan → its
	 * Goals → their Patient; and Patient ← Goals ← CarePlans */
	char gid[80], cpid[80];
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Goal\",\"lifecycleStatus\":\"active\",\"description\":{\"text\":\"walk\"},"
		 "\"subject\":{\"reference\":\"Patient/%s\"}}", pid);
	snprintf(gid, sizeof gid, "%s", create("Goal", body));
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"CarePlan\",\"status\":\"active\",\"intent\":\"plan\","
		 "\"subject\":{\"reference\":\"Patient/%s\"},\"goal\":[{\"reference\":\"Goal/%s\"}]}", pid, gid);
	snprintf(cpid, sizeof cpid, "%s", create("CarePlan", body));
	const char *types_of[2][4] = {{"CarePlan", "Goal", NULL}, {"CarePlan", "Goal", "Patient", NULL}};
	for (int iterate = 0; iterate < 2; iterate++) {
		snprintf(path, sizeof path, "/fhir/CarePlan?_id=%s&_include=CarePlan:goal&_include%s=Goal:subject", cpid,
			 iterate ? ":iterate" : "");
		r = call("GET", path, NULL, NULL);
		assert_int_equal(r.status, 200);
		b = json_of(&r);
		int n = 0;
		for (; types_of[iterate][n]; n++)
			assert_string_equal(s(g(cJSON_GetArrayItem(g(b, "entry"), n), "resource"), "resourceType"),
					    types_of[iterate][n]);
		assert_int_equal(cJSON_GetArraySize(g(b, "entry")), n);
		cJSON_Delete(b);
		resp_free(&r);
	}
	snprintf(path, sizeof path, "/fhir/Patient?_id=%s&_revinclude=Goal:subject&_revinclude:iterate=CarePlan:goal", pid);
	r = call("GET", path, NULL, NULL);
	b = json_of(&r);
	assert_int_equal(cJSON_GetArraySize(g(b, "entry")), 3);
	assert_string_equal(s(g(cJSON_GetArrayItem(g(b, "entry"), 1), "resource"), "id"), gid);
	assert_string_equal(s(g(cJSON_GetArrayItem(g(b, "entry"), 2), "resource"), "id"), cpid);
	cJSON_Delete(b);
	resp_free(&r);
	r = call("GET", "/fhir/CarePlan?_include:deep=CarePlan:goal", NULL, NULL);
	assert_int_equal(r.status, 400);
	resp_free(&r);
}

static void conditional_create_and_update(void **state)
{
	(void)state;
	const char *h[] = {"Content-Type: application/fhir+json", "If-None-Exist: identifier=urn:cond|1", NULL};
	const char *body = "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:cond\",\"value\":\"1\"}]}";
	struct resp r = call("POST", "/fhir/Patient", h, body);
	assert_int_equal(r.status, 201);
	cJSON *a = json_of(&r);
	resp_free(&r);
	r = call("POST", "/fhir/Patient", h, body);
	assert_int_equal(r.status, 200); /* matched: nothing new */
	cJSON *b = json_of(&r);
	assert_string_equal(s(a, "id"), s(b, "id"));
	cJSON_Delete(b);
	resp_free(&r);

	r = call("PUT", "/fhir/Patient?identifier=urn:cond|1", fj,
		 "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:cond\",\"value\":\"1\"}],\"active\":false}");
	assert_int_equal(r.status, 200);
	b = json_of(&r);
	assert_string_equal(s(a, "id"), s(b, "id"));
	assert_string_equal(s(g(b, "meta"), "versionId"), "2");
	cJSON_Delete(b);
	resp_free(&r);
	r = call("PUT", "/fhir/Patient?identifier=urn:cond|2", fj,
		 "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:cond\",\"value\":\"2\"}]}");
	assert_int_equal(r.status, 201);
	resp_free(&r);
	cJSON_Delete(a);
}

static void prefer_header(void **state)
{
	(void)state;
	const char *min[] = {"Content-Type: application/fhir+json", "Prefer: return=minimal", NULL};
	struct resp r = call("POST", "/fhir/Patient", min, "{\"resourceType\":\"Patient\"}");
	assert_int_equal(r.status, 201);
	assert_int_equal(r.len, 0);
	char loc[300];
	assert_non_null(resp_header(&r, "Location", loc, sizeof loc));
	resp_free(&r);
	const char *oo[] = {"Content-Type: application/fhir+json", "Prefer: return=OperationOutcome", NULL};
	r = call("POST", "/fhir/Patient", oo, "{\"resourceType\":\"Patient\"}");
	assert_int_equal(r.status, 201);
	assert_non_null(strstr(r.body, "OperationOutcome"));
	resp_free(&r);
	/* XML in, XML out */
	const char *x[] = {"Content-Type: application/fhir+xml", "Accept: application/fhir+xml", NULL};
	r = call("POST", "/fhir/Patient", x,
		 "<Patient xmlns=\"http://hl7.org/fhir\"><name><family value=\"Xml\"/></name></Patient>");
	assert_int_equal(r.status, 201);
	assert_non_null(strstr(r.body, "<versionId value=\"1\"/>"));
	resp_free(&r);
}

static void transaction_is_atomic_and_resolves_urns(void **state)
{
	(void)state;
	const char *tx =
		"{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
		"{\"fullUrl\":\"urn:uuid:0b1e7c3a-6f3e-4f57-9a7e-0c4b0f9d2a11\",\"resource\":{\"resourceType\":\"Patient\","
		"\"identifier\":[{\"system\":\"urn:tx\",\"value\":\"1\"}]},\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}},"
		"{\"resource\":{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"tx\"},"
		"\"subject\":{\"reference\":\"urn:uuid:0b1e7c3a-6f3e-4f57-9a7e-0c4b0f9d2a11\"}},"
		"\"request\":{\"method\":\"POST\",\"url\":\"Observation\"}},"
		"{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"tx-put\"},\"request\":{\"method\":\"PUT\",\"url\":\"Patient/tx-put\"}}]}";
	struct resp r = call("POST", "/fhir", fj, tx);
	if (r.status != 200)
		print_message("# %s\n", r.body);
	assert_int_equal(r.status, 200);
	cJSON *b = json_of(&r);
	assert_string_equal(s(b, "type"), "transaction-response");
	assert_int_equal(cJSON_GetArraySize(g(b, "entry")), 3);
	const char *l0 = s(g(cJSON_GetArrayItem(g(b, "entry"), 0), "response"), "location");
	const char *l1 = s(g(cJSON_GetArrayItem(g(b, "entry"), 1), "response"), "location");
	assert_non_null(l0);
	assert_non_null(l1);
	char pid[80], opath[300];
	const char *pp = strstr(l0, "/Patient/") + 9;
	snprintf(pid, sizeof pid, "%.*s", (int)strcspn(pp, "/"), pp);
	const char *op = strstr(l1, "/fhir/");
	snprintf(opath, sizeof opath, "%.*s", (int)(strstr(op, "/_history") - op), op);
	cJSON_Delete(b);
	resp_free(&r);
	r = call("GET", opath, NULL, NULL);
	assert_int_equal(r.status, 200);
	b = json_of(&r);
	char want[120];
	snprintf(want, sizeof want, "Patient/%s", pid);
	assert_string_equal(s(g(b, "subject"), "reference"), want);
	cJSON_Delete(b);
	resp_free(&r);

	/* one bad entry: nothing of the transaction is stored */
	const char *bad =
		"{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
		"{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"atomic-1\"},\"request\":{\"method\":\"PUT\",\"url\":\"Patient/atomic-1\"}},"
		"{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"atomic-2\",\"birthDate\":\"not a date\"},"
		"\"request\":{\"method\":\"PUT\",\"url\":\"Patient/atomic-2\"}}]}";
	r = call("POST", "/fhir", fj, bad);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "nothing was stored"));
	resp_free(&r);
	r = call("GET", "/fhir/Patient/atomic-1", NULL, NULL);
	assert_int_equal(r.status, 404);
	resp_free(&r);

	/* a batch: entries independent */
	const char *batch =
		"{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":["
		"{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"batch-1\"},\"request\":{\"method\":\"PUT\",\"url\":\"Patient/batch-1\"}},"
		"{\"request\":{\"method\":\"GET\",\"url\":\"Patient/none-such\"}}]}";
	r = call("POST", "/fhir", fj, batch);
	assert_int_equal(r.status, 200);
	b = json_of(&r);
	assert_string_equal(s(b, "type"), "batch-response");
	assert_string_equal(s(g(cJSON_GetArrayItem(g(b, "entry"), 0), "response"), "status"), "201");
	assert_string_equal(s(g(cJSON_GetArrayItem(g(b, "entry"), 1), "response"), "status"), "404");
	cJSON_Delete(b);
	resp_free(&r);
	r = call("POST", "/fhir", fj, "{\"resourceType\":\"Bundle\",\"type\":\"collection\"}");
	assert_int_equal(r.status, 400);
	resp_free(&r);
}

static void acknowledged_writes_survive_kill_9(void **state)
{
	(void)state;
	struct resp r = call("PUT", "/fhir/Patient/durable-1", fj,
			     "{\"resourceType\":\"Patient\",\"id\":\"durable-1\",\"name\":[{\"family\":\"Kept\"}]}");
	assert_int_equal(r.status, 201);
	resp_free(&r);
	/* kill -9 right after the acknowledgement, then a new gateway on the same
	 * data directory */
	char extra[400];
	snprintf(extra, sizeof extra, "\"data_dir\":\"%s/var\"", gw.dir);
	kill(gw.pid, SIGKILL);
	gw_stop(&gw, 5000);
	assert_int_equal(gw_start(&gw, extra), 0);
	r = call("GET", "/fhir/Patient/durable-1", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "Kept"));
	resp_free(&r);
}

static const char *jp[] = {"Content-Type: application/json-patch+json", NULL};

struct patcher {
	int n, ok;
};

static void *patch_many(void *p)
{
	struct patcher *w = p;
	for (int i = 0; i < 5; i++) {
		char body[200];
		snprintf(body, sizeof body, "[{\"op\":\"add\",\"path\":\"/name/0/given/-\",\"value\":\"t%d-%d\"}]", w->n, i);
		struct resp r;
		memset(&r, 0, sizeof r);
		if (http_do(&gw, "PATCH", "/fhir/Patient/patched", jp, body, strlen(body), &r) == 0 && r.status == 200)
			w->ok++;
		resp_free(&r);
	}
	return NULL;
}

/* PATCH with a JSON Patch: applied to the current version and stored as the
 * next, all or nothing, checked like any update. */
static void patch_interaction(void **state)
{
	(void)state;
	struct resp r = call("PUT", "/fhir/Patient/patched", fj,
			     "{\"resourceType\":\"Patient\",\"id\":\"patched\",\"active\":true,"
			     "\"name\":[{\"family\":\"Patch\",\"given\":[\"First\"]}]}");
	assert_int_equal(r.status, 201);
	resp_free(&r);
	r = call("PATCH", "/fhir/Patient/patched", jp,
		 "[{\"op\":\"test\",\"path\":\"/active\",\"value\":true},"
		 "{\"op\":\"replace\",\"path\":\"/active\",\"value\":false},"
		 "{\"op\":\"add\",\"path\":\"/birthDate\",\"value\":\"1990-02-03\"}]");
	assert_int_equal(r.status, 200);
	header_is(&r, "ETag", "W/\"2\"");
	cJSON *b = json_of(&r);
	assert_true(cJSON_IsFalse(g(b, "active")));
	assert_string_equal(s(b, "birthDate"), "1990-02-03");
	assert_string_equal(s(g(b, "meta"), "versionId"), "2");
	cJSON_Delete(b);
	resp_free(&r);

	/* failures leave the resource as it was */
	struct {
		const char *const *headers;
		const char *body;
		long status;
		const char *says;
	} bad[] = {
		{jp, "[{\"op\":\"test\",\"path\":\"/active\",\"value\":true}]", 422, "test failed"},
		{jp, "[{\"op\":\"remove\",\"path\":\"/deceasedBoolean\"}]", 422, "does not exist"},
		{jp, "[{\"op\":\"add\",\"path\":\"/colour\",\"value\":\"red\"}]", 422, "Patient.colour"},
		{jp, "[{\"op\":\"replace\",\"path\":\"/id\",\"value\":\"other\"}]", 422, "id"},
		{jp, "[{\"op\":\"replace\",\"path\":\"/resourceType\",\"value\":\"Group\"}]", 422, "not a Patient"},
		{jp, "[{\"op\":\"frobnicate\",\"path\":\"/a\"}]", 400, "not a JSON Patch operation"},
		{jp, "{\"op\":\"remove\",\"path\":\"/active\"}", 400, "array of operations"},
		{jp, "[{\"op\":", 400, "OperationOutcome"},
		{fj, "[]", 415, "application/json-patch+json"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		r = call("PATCH", "/fhir/Patient/patched", bad[i].headers, bad[i].body);
		if (r.status != bad[i].status || !strstr(r.body, bad[i].says))
			fail_msg("patch %zu: %ld %s", i, r.status, r.body);
		assert_non_null(strstr(r.body, "OperationOutcome"));
		resp_free(&r);
	}
	const char *stale[] = {"Content-Type: application/json-patch+json", "If-Match: W/\"1\"", NULL};
	r = call("PATCH", "/fhir/Patient/patched", stale, "[{\"op\":\"remove\",\"path\":\"/birthDate\"}]");
	assert_int_equal(r.status, 412);
	resp_free(&r);
	r = call("PATCH", "/fhir/Patient/no-such", jp, "[]");
	assert_int_equal(r.status, 404);
	resp_free(&r);
	/* conditional patch: exactly one match */
	r = call("PATCH", "/fhir/Patient?_id=patched", jp, "[{\"op\":\"add\",\"path\":\"/gender\",\"value\":\"other\"}]");
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"gender\":\"other\""));
	header_is(&r, "ETag", "W/\"3\"");
	resp_free(&r);
	r = call("PATCH", "/fhir/Patient?_id=nope", jp, "[]");
	assert_int_equal(r.status, 404);
	resp_free(&r);
	r = call("PATCH", "/fhir/Patient?name=pager", jp, "[]");
	assert_int_equal(r.status, 412);
	resp_free(&r);
	r = call("PATCH", "/fhir/Patient", jp, "[]");
	assert_int_equal(r.status, 400);
	resp_free(&r);
	r = call("PATCH", "/fhir/Patient?_id=patched", jp, "[{\"op\":\"remove\",\"path\":\"/gender\"}]");
	assert_int_equal(r.status, 200);
	resp_free(&r);
	r = call("GET", "/fhir/Patient/patched", NULL, NULL);
	b = json_of(&r);
	assert_string_equal(s(g(b, "meta"), "versionId"), "4");
	assert_string_equal(s(b, "birthDate"), "1990-02-03");
	assert_null(g(b, "gender"));
	cJSON_Delete(b);
	resp_free(&r);

	/* concurrent patches without If-Match: each applies to the version it
	 * finds current, none is lost */
	pthread_t t[4];
	struct patcher w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct patcher){.n = i};
		assert_int_equal(pthread_create(&t[i], NULL, patch_many, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].ok, 5);
	}
	r = call("GET", "/fhir/Patient/patched", NULL, NULL);
	b = json_of(&r);
	assert_int_equal(cJSON_GetArraySize(g(cJSON_GetArrayItem(g(b, "name"), 0), "given")), 1 + 4 * 5);
	assert_string_equal(s(g(b, "meta"), "versionId"), "24");
	cJSON_Delete(b);
	resp_free(&r);
	r = call("GET", "/fhir/metadata", NULL, NULL);
	assert_non_null(strstr(r.body, "{\"code\":\"patch\"}"));
	resp_free(&r);
}

/* DELETE /fhir/Type?criteria: one match deleted, none fine, several 412. */
static void conditional_delete(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		char body[300];
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Goal\",\"lifecycleStatus\":\"active\",\"description\":{\"text\":\"d\"},"
			 "\"subject\":{\"reference\":\"Patient/cd\"},\"identifier\":[{\"system\":\"urn:cd\",\"value\":\"%s\"}]}",
			 i < 2 ? "shared" : "only");
		create("Goal", body);
	}
	struct resp r = call("DELETE", "/fhir/Goal?identifier=urn:cd|only", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "deleted"));
	resp_free(&r);
	r = call("GET", "/fhir/Goal?identifier=urn:cd|only", NULL, NULL);
	cJSON *b = json_of(&r);
	assert_int_equal(cJSON_GetObjectItem(b, "total")->valueint, 0);
	cJSON_Delete(b);
	resp_free(&r);
	r = call("DELETE", "/fhir/Goal?identifier=urn:cd|only", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "nothing"));
	resp_free(&r);
	r = call("DELETE", "/fhir/Goal?identifier=urn:cd|shared", NULL, NULL);
	assert_int_equal(r.status, 412);
	resp_free(&r);
	r = call("GET", "/fhir/Goal?identifier=urn:cd|shared", NULL, NULL);
	b = json_of(&r);
	assert_int_equal(cJSON_GetObjectItem(b, "total")->valueint, 2); /* nothing deleted */
	cJSON_Delete(b);
	resp_free(&r);
	r = call("DELETE", "/fhir/Goal", NULL, NULL);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	r = call("DELETE", "/fhir/Goal?colour=red", NULL, NULL);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	r = call("GET", "/fhir/metadata", NULL, NULL);
	assert_non_null(strstr(r.body, "\"conditionalDelete\":\"single\""));
	resp_free(&r);
}

/* _summary on reads and searches, _total=none, If-Modified-Since. */
static void summaries_totals_and_conditional_reads(void **state)
{
	(void)state;
	struct resp r = call("PUT", "/fhir/Patient/summed", fj,
			     "{\"resourceType\":\"Patient\",\"id\":\"summed\",\"text\":{\"status\":\"generated\","
			     "\"div\":\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">Sum</div>\"},"
			     "\"name\":[{\"family\":\"Summed\"}],\"maritalStatus\":{\"text\":\"M\"},\"birthDate\":\"1970\"}");
	assert_int_equal(r.status, 201);
	resp_free(&r);
	r = call("GET", "/fhir/Patient/summed?_summary=true", NULL, NULL);
	assert_int_equal(r.status, 200);
	cJSON *p = json_of(&r);
	assert_non_null(g(p, "name"));
	assert_non_null(g(p, "birthDate"));
	assert_null(g(p, "maritalStatus")); /* not a summary element */
	assert_null(g(p, "text"));
	assert_non_null(strstr(r.body, "SUBSETTED"));
	cJSON_Delete(p);
	resp_free(&r);
	r = call("GET", "/fhir/Patient/summed?_summary=text", NULL, NULL);
	p = json_of(&r);
	assert_non_null(g(p, "text"));
	assert_null(g(p, "name"));
	cJSON_Delete(p);
	resp_free(&r);
	r = call("GET", "/fhir/Patient/summed?_summary=data", NULL, NULL);
	p = json_of(&r);
	assert_null(g(p, "text"));
	assert_non_null(g(p, "maritalStatus"));
	cJSON_Delete(p);
	resp_free(&r);
	r = call("GET", "/fhir/Patient/summed?_summary=false", NULL, NULL);
	assert_null(strstr(r.body, "SUBSETTED"));
	assert_non_null(strstr(r.body, "maritalStatus"));
	resp_free(&r);
	r = call("GET", "/fhir/Patient/summed?_summary=most", NULL, NULL);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	r = call("GET", "/fhir/Patient?_id=summed&_summary=true", NULL, NULL);
	p = json_of(&r);
	const cJSON *res = g(cJSON_GetArrayItem(g(p, "entry"), 0), "resource");
	assert_non_null(g(res, "name"));
	assert_null(g(res, "maritalStatus"));
	cJSON_Delete(p);
	resp_free(&r);

	/* _total=none: no count, and a full page links to the next */
	r = call("GET", "/fhir/Patient?_total=none&_count=1", NULL, NULL);
	assert_int_equal(r.status, 200);
	p = json_of(&r);
	assert_null(g(p, "total"));
	bool next = false;
	const cJSON *l;
	cJSON_ArrayForEach(l, g(p, "link"))
	{
		next |= !strcmp(s(l, "relation"), "next");
	}
	assert_true(next);
	cJSON_Delete(p);
	resp_free(&r);
	r = call("GET", "/fhir/Patient?_total=accurate&_count=1", NULL, NULL);
	p = json_of(&r);
	assert_true(cJSON_GetObjectItem(p, "total")->valueint > 1);
	cJSON_Delete(p);
	resp_free(&r);
	r = call("GET", "/fhir/Patient?_total=some", NULL, NULL);
	assert_int_equal(r.status, 400);
	resp_free(&r);

	/* If-Modified-Since: 304 when nothing changed since (now; a date in
	 * the future is ignored), else the resource */
	char now_h[80];
	time_t now_t = time(NULL);
	struct tm now_tm;
	gmtime_r(&now_t, &now_tm);
	strftime(now_h, sizeof now_h, "If-Modified-Since: %a, %d %b %Y %H:%M:%S GMT", &now_tm);
	const char *later[] = {now_h, NULL};
	const char *earlier[] = {"If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT", NULL};
	const char *later_xml[] = {now_h, "Accept: application/fhir+xml", NULL};
	r = call("GET", "/fhir/Patient/summed", later, NULL);
	assert_int_equal(r.status, 304);
	resp_free(&r);
	r = call("GET", "/fhir/Patient/summed", later_xml, NULL);
	assert_int_equal(r.status, 304);
	resp_free(&r);
	r = call("GET", "/fhir/Patient/summed", earlier, NULL);
	assert_int_equal(r.status, 200);
	resp_free(&r);
}

/* Quantity and uri parameters over HTTP, and the CapabilityStatement listing
 * exactly the parameters, includes and revincludes the store answers. */
static void quantities_and_the_capability_statement(void **state)
{
	(void)state;
	create("Observation", "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"phq\"},"
			      "\"subject\":{\"reference\":\"Patient/qp\"},\"meta\":{\"source\":\"urn:qty\"},"
			      "\"valueQuantity\":{\"value\":14,\"system\":\"http://unitsofmeasure.org\",\"code\":\"{score}\"}}");
	create("Observation", "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"phq\"},"
			      "\"subject\":{\"reference\":\"Patient/qp\"},\"meta\":{\"source\":\"urn:qty\"},"
			      "\"valueQuantity\":{\"value\":6,\"system\":\"http://unitsofmeasure.org\",\"code\":\"{score}\"}}");
	struct resp r = call("GET", "/fhir/Observation?_source=urn:qty&value-quantity=ge10%7C%7C%7Bscore%7D", NULL, NULL);
	assert_int_equal(r.status, 200);
	cJSON *b = json_of(&r);
	assert_int_equal(cJSON_GetObjectItem(b, "total")->valueint, 1);
	assert_int_equal(g(g(g(cJSON_GetArrayItem(g(b, "entry"), 0), "resource"), "valueQuantity"), "value")->valueint, 14);
	cJSON_Delete(b);
	resp_free(&r);
	r = call("GET", "/fhir/Observation?value-quantity=ten", NULL, NULL);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "OperationOutcome"));
	resp_free(&r);

	r = call("GET", "/fhir/metadata", NULL, NULL);
	assert_int_equal(r.status, 200);
	b = json_of(&r);
	const cJSON *res, *obs = NULL, *goal = NULL;
	cJSON_ArrayForEach(res, g(cJSON_GetArrayItem(g(b, "rest"), 0), "resource"))
	{
		if (!strcmp(s(res, "type"), "Observation"))
			obs = res;
		if (!strcmp(s(res, "type"), "Goal"))
			goal = res;
	}
	assert_non_null(obs);
	assert_non_null(goal);
	bool quantity = false, source = false;
	const cJSON *p;
	cJSON_ArrayForEach(p, g(obs, "searchParam"))
	{
		if (!strcmp(s(p, "name"), "value-quantity")) {
			quantity = true;
			assert_string_equal(s(p, "type"), "quantity");
			assert_string_equal(s(p, "definition"), "http://hl7.org/fhir/SearchParameter/Observation-value-quantity");
		}
		if (!strcmp(s(p, "name"), "_source"))
			source = !strcmp(s(p, "type"), "uri");
	}
	assert_true(quantity);
	assert_true(source);
	char *inc = cJSON_PrintUnformatted(g(obs, "searchInclude"));
	char *rev = cJSON_PrintUnformatted(g(goal, "searchRevInclude"));
	assert_non_null(strstr(inc, "\"Observation:subject\""));
	assert_null(strstr(inc, "Goal:"));
	assert_non_null(strstr(rev, "\"CarePlan:goal\""));
	assert_null(strstr(rev, "\"Observation:patient\"")); /* only ever points at a Patient */
	free(inc);
	free(rev);
	cJSON_Delete(b);
	resp_free(&r);
}

/* One gateway per data directory: the read cache relies on it. */
static void second_gateway_on_the_same_store_is_refused(void **state)
{
	(void)state;
	char extra[400];
	snprintf(extra, sizeof extra, "\"data_dir\":\"%s/var\"", gw.dir);
	const char *args[] = {"serve", NULL};
	static char out[8192];
	assert_int_equal(gw_run_command(extra, args, 10000, out, sizeof out), 2);
	assert_non_null(strstr(out, "in use by another process"));
	/* the running one is unaffected */
	struct resp r = call("GET", "/fhir/metadata", NULL, NULL);
	assert_int_equal(r.status, 200);
	resp_free(&r);
}

/* A write the content rules refuse: 400, an OperationOutcome naming what
 * and where, and nothing stored. */
static void refused(const char *method, const char *path, const char *const *headers, const char *body,
		    const char *what, const char *where)
{
	struct resp r = call(method, path, headers, body);
	if (r.status != 400 || !strstr(r.body, what) || !strstr(r.body, where))
		print_message("# %s %s -> %ld %s\n", method, path, r.status, r.body);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "OperationOutcome"));
	assert_non_null(strstr(r.body, what));
	assert_non_null(strstr(r.body, where));
	resp_free(&r);
}

/* The content rules hold on every write path, in JSON and XML. */
static void content_rules_on_every_write(void **state)
{
	(void)state;
	const char *xj[] = {"Content-Type: application/fhir+xml", NULL};
	/* narrative: txt-1 */
	const char *nar = "{\"resourceType\":\"Patient\",\"id\":\"cv1\",\"text\":{\"status\":\"generated\",\"div\":"
			  "\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\"><a href=\\\"&#x6A;avascript:x()\\\">a</a>"
			  "</div>\"}}";
	refused("POST", "/fhir/Patient", fj, nar, "txt-1", "Patient.text.div");
	refused("PUT", "/fhir/Patient/cv1", fj, nar, "txt-1", "Patient.text.div");
	refused("POST", "/fhir/Patient", xj,
		"<Patient xmlns=\"http://hl7.org/fhir\"><text><status value=\"generated\"/>"
		"<div xmlns=\"http://www.w3.org/1999/xhtml\"><img src=\"x\" onerror=\"x()\"/></div></text></Patient>",
		"txt-1", "Patient.text.div");
	refused("POST", "/fhir", fj,
		"{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":"
		"{\"resourceType\":\"Patient\",\"text\":{\"status\":\"generated\",\"div\":"
		"\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\"><iframe src=\\\"x\\\"/></div>\"}},"
		"\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}}]}",
		"txt-1", "text.div");
	/* control characters in strings */
	refused("POST", "/fhir/Patient", fj, "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"a\\u0001b\"}]}",
		"U+0001", "Patient.name[0].family");
	refused("PUT", "/fhir/Patient/cv1", fj,
		"{\"resourceType\":\"Patient\",\"id\":\"cv1\",\"name\":[{\"given\":[\"x\",\"a\\u001fb\"]}]}", "U+001F",
		"Patient.name[0].given[1]");
	/* decimals outside IEEE double range */
	refused("POST", "/fhir/Observation", fj,
		"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		"\"valueQuantity\":{\"value\":1e400}}",
		"IEEE double", "Observation.valueQuantity.value");
	refused("POST", "/fhir/Observation", xj,
		"<Observation xmlns=\"http://hl7.org/fhir\"><status value=\"final\"/><code><text value=\"x\"/></code>"
		"<valueQuantity><value value=\"1e-400\"/></valueQuantity></Observation>",
		"IEEE double", "Observation.valueQuantity.value");
	/* impossible calendar days */
	refused("PUT", "/fhir/Patient/cv1", fj, "{\"resourceType\":\"Patient\",\"id\":\"cv1\",\"birthDate\":\"2023-02-29\"}",
		"2023-02-29", "Patient.birthDate");
	refused("POST", "/fhir/Patient", xj,
		"<Patient xmlns=\"http://hl7.org/fhir\"><birthDate value=\"1900-02-29\"/></Patient>", "1900-02-29",
		"Patient.birthDate");
	/* contained resources: dom-2, dom-3, "#id" that resolves to nothing */
	refused("POST", "/fhir/Patient", fj,
		"{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"Organization\",\"id\":\"o\",\"name\":\"x\"}]}",
		"dom-3", "Patient.contained[0]");
	refused("POST", "/fhir/Patient", xj,
		"<Patient xmlns=\"http://hl7.org/fhir\"><contained><Organization><id value=\"o\"/><contained><Organization>"
		"<id value=\"o2\"/><name value=\"y\"/></Organization></contained><name value=\"x\"/></Organization></contained>"
		"<managingOrganization><reference value=\"#o\"/></managingOrganization></Patient>",
		"dom-2", "Patient.contained[0]");
	refused("PUT", "/fhir/Patient/cv1", fj,
		"{\"resourceType\":\"Patient\",\"id\":\"cv1\",\"managingOrganization\":{\"reference\":\"#gone\"}}",
		"names no contained resource", "Patient.managingOrganization.reference");
	/* the R4 core invariants (FHIRPath): pat-1 on a contact, obs-6 on the resource */
	refused("POST", "/fhir/Patient", fj, "{\"resourceType\":\"Patient\",\"contact\":[{\"gender\":\"male\"}]}",
		"pat-1", "Patient.contact");
	refused("PUT", "/fhir/Patient/cv1", xj,
		"<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"cv1\"/><contact><gender value=\"male\"/></contact>"
		"</Patient>",
		"pat-1", "Patient.contact");
	refused("POST", "/fhir", fj,
		"{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":"
		"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		"\"valueString\":\"a\",\"dataAbsentReason\":{\"text\":\"unknown\"}},"
		"\"request\":{\"method\":\"POST\",\"url\":\"Observation\"}}]}",
		"obs-6", "Observation");
	struct resp r = call("GET", "/fhir/Patient/cv1", NULL, NULL);
	assert_int_equal(r.status, 404); /* nothing was stored */
	resp_free(&r);
	/* in range, the literal is kept exactly */
	r = call("PUT", "/fhir/Observation/cv2", fj,
		 "{\"resourceType\":\"Observation\",\"id\":\"cv2\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		 "\"valueQuantity\":{\"value\":1.7976931348623157e308}}");
	assert_int_equal(r.status, 201);
	resp_free(&r);
	r = call("GET", "/fhir/Observation/cv2", NULL, NULL);
	assert_non_null(strstr(r.body, "1.7976931348623157e308"));
	resp_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_read_update_delete),
		cmocka_unit_test(errors_are_outcomes),
		cmocka_unit_test(search_and_paging),
		cmocka_unit_test(include_and_revinclude),
		cmocka_unit_test(conditional_create_and_update),
		cmocka_unit_test(prefer_header),
		cmocka_unit_test(content_rules_on_every_write),
		cmocka_unit_test(transaction_is_atomic_and_resolves_urns),
		cmocka_unit_test(patch_interaction),
		cmocka_unit_test(summaries_totals_and_conditional_reads),
		cmocka_unit_test(conditional_delete),
		cmocka_unit_test(quantities_and_the_capability_statement),
		cmocka_unit_test(second_gateway_on_the_same_store_is_refused),
		cmocka_unit_test(acknowledged_writes_survive_kill_9),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
