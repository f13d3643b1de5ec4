/* Unit tests: the upstream's URLs and locations rewritten to the gateway's,
 * and the URL of the upstream's base itself. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "upstream/upstream.h"

#define GW "http://gw.example:8080/fhir"

static struct upstream *make(const char *base)
{
	static struct config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.upstream.base_url = (char *)base;
	cfg.upstream.connect_timeout_ms = 200;
	cfg.upstream.timeout_ms = 500;
	cfg.upstream.max_response_bytes = 1 << 20;
	char err[256];
	struct upstream *u = upstream_new(&cfg, err, sizeof err);
	assert_non_null(u);
	return u;
}

static void locations(void **state)
{
	(void)state;
	struct upstream *u = make("https://ehr.example/fhir/R4/");
	char out[512];
	const struct {
		const char *in, *want;
	} cases[] = {
		{"https://ehr.example/fhir/R4/Patient/1/_history/2", GW "/Patient/1/_history/2"},
		{"Patient/1/_history/2", GW "/Patient/1/_history/2"},
		{"/fhir/R4/Patient/1", GW "/Patient/1"},
		{"urn:uuid:5f0c2a8e-0d6b-4c59-9d1e-2b7f3a6c9e01", "urn:uuid:5f0c2a8e-0d6b-4c59-9d1e-2b7f3a6c9e01"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		assert_string_equal(upstream_rewrite_location(u, cases[i].in, GW, out, sizeof out), cases[i].want);
	/* another host, or outside the base: not passed on */
	const char *foreign[] = {
		"/elsewhere/Patient/1", "/fhir/R4x/Patient/1", "https://other.example/fhir/Patient/1",
		"https://ehr.example/fhir/R4x/Patient/1", "//other.example/fhir/R4/Patient/1", "HTTPS://other.example/x",
		"ftp://ehr.example/fhir/R4/Patient/1",
	};
	for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++)
		assert_null(upstream_rewrite_location(u, foreign[i], GW, out, sizeof out));
	upstream_free(u);

	u = make("https://ehr.example"); /* no path: a rooted path is under the base */
	assert_string_equal(upstream_rewrite_location(u, "/Patient/1", GW, out, sizeof out), GW "/Patient/1");
	upstream_free(u);
}

static void bundle_urls(void **state)
{
	(void)state;
	struct upstream *u = make("https://ehr.example/fhir/R4");
	cJSON *b = cJSON_Parse(
		"{\"resourceType\":\"Bundle\",\"type\":\"batch-response\",\"link\":[{\"relation\":\"self\",\"url\":"
		"\"https://ehr.example/fhir/R4\"}],\"entry\":["
		"{\"fullUrl\":\"https://ehr.example/fhir/R4/Patient/1\",\"response\":{\"status\":\"201\",\"location\":"
		"\"Patient/1/_history/a\"}},"
		"{\"response\":{\"status\":\"200\",\"location\":\"https://ehr.example/fhir/R4/Patient/2\"}},"
		"{\"resource\":{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":[{\"fullUrl\":"
		"\"https://ehr.example/fhir/R4/Patient/3\"}]},\"response\":{\"status\":\"200\"}},"
		"{\"resource\":{\"resourceType\":\"Observation\",\"valueString\":\"Patient/9\"},\"response\":{\"status\":"
		"\"200\"}}]}");
	assert_non_null(b);
	upstream_rewrite_urls(u, b, GW);
	cJSON *e = cJSON_GetObjectItem(b, "entry");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "link"), 0), "url")->valuestring,
			    GW);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(e, 0), "fullUrl")->valuestring, GW "/Patient/1");
	assert_string_equal(
		cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(e, 0), "response"), "location")->valuestring,
		GW "/Patient/1/_history/a");
	assert_string_equal(
		cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(e, 1), "response"), "location")->valuestring,
		GW "/Patient/2");
	cJSON *inner = cJSON_GetObjectItem(cJSON_GetArrayItem(e, 2), "resource");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(inner, "entry"), 0), "fullUrl")->valuestring,
			    GW "/Patient/3");
	/* only locations are resolved: other relative strings stay as they are */
	assert_string_equal(
		cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(e, 3), "resource"), "valueString")->valuestring,
		"Patient/9");
	cJSON_Delete(b);

	/* links, fullUrl and locations on another host go */
	b = cJSON_Parse(
		"{\"resourceType\":\"Bundle\",\"type\":\"batch-response\",\"link\":[{\"relation\":\"self\",\"url\":"
		"\"https://evil.example/fhir?x=1\"},{\"relation\":\"next\",\"url\":\"https://ehr.example/fhir/R4?page=2\"}],"
		"\"entry\":[{\"fullUrl\":\"https://evil.example/fhir/Patient/1\",\"response\":{\"status\":\"201\","
		"\"location\":\"https://evil.example/fhir/Patient/1\"}},"
		"{\"fullUrl\":\"urn:uuid:5f0c2a8e-0d6b-4c59-9d1e-2b7f3a6c9e01\",\"resource\":{\"resourceType\":\"Bundle\","
		"\"type\":\"searchset\",\"link\":[{\"relation\":\"self\",\"url\":\"http://evil.example/s\"}],"
		"\"entry\":[{\"fullUrl\":\"https://evil.example/fhir/Patient/3\"}]},\"response\":{\"status\":\"200\"}}]}");
	assert_non_null(b);
	upstream_rewrite_urls(u, b, GW);
	char *text = cJSON_PrintUnformatted(b);
	assert_null(strstr(text, "evil.example"));
	assert_non_null(strstr(text, "\"url\":\"" GW "?page=2\""));
	assert_non_null(strstr(text, "urn:uuid:5f0c2a8e"));
	assert_non_null(strstr(text, "\"status\":\"201\""));
	cJSON_free(text);
	cJSON_Delete(b);

	/* a Bundle that is data (a stored collection) keeps its relative locations */
	b = cJSON_Parse("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"response\":"
			"{\"status\":\"201\",\"location\":\"Patient/5\"}}]}");
	upstream_rewrite_urls(u, b, GW);
	assert_string_equal(
		cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "entry"), 0), "response"),
				    "location")->valuestring,
		"Patient/5");
	cJSON_Delete(b);
	upstream_free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(locations),
		cmocka_unit_test(bundle_urls),
	};
	return cmocka_run_group_tests_name("upstream_urls", tests, NULL, NULL);
}
