/* End-to-end tests of the shared FHIR endpoints: content negotiation in both
 * formats (406/415), $convert, $validate, and hostile JSON and XML over HTTP
 * (T11/T12: 400 with an OperationOutcome, no file content echoed, no
 * connection made to a loopback listener). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e/harness.h"
#include "fhir/fhir_xml.h"
#include "base/fjson.h"
#include "testenv.h"

static struct gw gw;

static int setup(void **state)
{
	(void)state;
	/* Under AddressSanitizer freed memory waits in a quarantine (up to 256 MB),
	 * which would read as growth: keep it small for this gateway so the memory
	 * check measures what the gateway keeps. */
	const char *san = getenv("CW_SANITIZE");
	if (san && strstr(san, "address")) {
		const char *old = getenv("ASAN_OPTIONS");
		char opts[512];
		snprintf(opts, sizeof opts, "%s%squarantine_size_mb=1:thread_local_quarantine_size_kb=64", old ? old : "",
			 old && *old ? ":" : "");
		setenv("ASAN_OPTIONS", opts, 1);
	}
	return gw_start(&gw, NULL);
}

static int teardown(void **state)
{
	(void)state;
	return gw_stop(&gw, 5000);
}

static void req(const char *method, const char *path, const char *const *headers, const char *body, struct resp *r)
{
	memset(r, 0, sizeof *r);
	assert_int_equal(http_do(&gw, method, path, headers, body, body ? strlen(body) : 0, r), 0);
}

static void content_type_is(const struct resp *r, const char *prefix)
{
	char ct[200];
	assert_non_null(resp_header(r, "Content-Type", ct, sizeof ct));
	if (strncmp(ct, prefix, strlen(prefix)) != 0)
		print_message("# Content-Type: %s\n", ct);
	assert_true(strncmp(ct, prefix, strlen(prefix)) == 0);
}

static void metadata_in_both_formats(void **state)
{
	(void)state;
	struct resp r;
	req("GET", "/fhir/metadata", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	content_type_is(&r, "application/fhir+json");
	assert_non_null(strstr(r.body, "\"application/fhir+xml\""));
	assert_non_null(strstr(r.body, "\"validate\""));
	assert_non_null(strstr(r.body, "\"convert\""));
	resp_free(&r);

	const char *accept_xml[] = {"Accept: application/fhir+xml", NULL};
	req("GET", "/fhir/metadata", accept_xml, NULL, &r);
	assert_int_equal(r.status, 200);
	content_type_is(&r, "application/fhir+xml");
	struct outcome oo = OUTCOME_INIT;
	int st = 0;
	cJSON *t = fhir_xml_to_json(r.body, r.len, NULL, &oo, &st);
	assert_non_null(t);
	assert_string_equal(cJSON_GetObjectItem(t, "resourceType")->valuestring, "CapabilityStatement");
	cJSON_Delete(t);
	resp_free(&r);

	const char *forms[] = {"xml", "application/fhir%2Bxml", "application/xml", "text/xml"};
	for (size_t i = 0; i < 4; i++) {
		char path[128];
		snprintf(path, sizeof path, "/fhir/metadata?_format=%s", forms[i]);
		req("GET", path, NULL, NULL, &r);
		assert_int_equal(r.status, 200);
		content_type_is(&r, "application/fhir+xml");
		resp_free(&r);
	}
	req("GET", "/fhir/metadata?_format=json&_pretty=true", accept_xml, NULL, &r);
	assert_int_equal(r.status, 200);
	content_type_is(&r, "application/fhir+json");
	assert_non_null(strchr(r.body, '\n'));
	resp_free(&r);

	const char *html[] = {"Accept: text/html", NULL};
	req("GET", "/fhir/metadata", html, NULL, &r);
	assert_int_equal(r.status, 406);
	assert_non_null(strstr(r.body, "OperationOutcome"));
	resp_free(&r);
	req("GET", "/fhir/metadata?_format=turtle", NULL, NULL, &r);
	assert_int_equal(r.status, 406);
	resp_free(&r);

	/* errors follow the negotiated format too */
	req("GET", "/fhir/Nope/x/y/z?_format=xml", NULL, NULL, &r);
	assert_int_equal(r.status, 404);
	content_type_is(&r, "application/fhir+xml");
	assert_non_null(strstr(r.body, "<OperationOutcome xmlns=\"http://hl7.org/fhir\">"));
	resp_free(&r);
}

static void convert_official_examples(void **state)
{
	(void)state;
	const char *names[] = {"patient-example", "observation-example", "bundle-transaction", "questionnaireresponse-example"};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		char p[1024];
		size_t jl = 0, xl = 0;
		snprintf(p, sizeof p, "%s/fhir-r4/examples-json-xml/json/%s.json", corpus_dir(), names[i]);
		char *json = read_whole_file(p, &jl);
		snprintf(p, sizeof p, "%s/fhir-r4/examples-json-xml/xml/%s.xml", corpus_dir(), names[i]);
		char *xml = read_whole_file(p, &xl);
		assert_non_null(json);
		assert_non_null(xml);

		struct resp r;
		const char *to_json[] = {"Content-Type: application/fhir+xml", "Accept: application/fhir+json", NULL};
		memset(&r, 0, sizeof r);
		assert_int_equal(http_do(&gw, "POST", "/fhir/$convert", to_json, xml, xl, &r), 0);
		assert_int_equal(r.status, 200);
		content_type_is(&r, "application/fhir+json");
		cJSON *got = fjson_parse(r.body, r.len, NULL, NULL);
		cJSON *want = fjson_parse(json, jl, NULL, NULL);
		assert_non_null(got);
		char *a = fjson_print(got, false, NULL);
		/* same members whatever their order: compare through a second conversion */
		size_t al = strlen(a);
		resp_free(&r);

		const char *to_xml[] = {"Content-Type: application/fhir+json; charset=utf-8", NULL};
		memset(&r, 0, sizeof r);
		assert_int_equal(http_do(&gw, "POST", "/fhir/$convert?_format=xml", to_xml, a, al, &r), 0);
		assert_int_equal(r.status, 200);
		content_type_is(&r, "application/fhir+xml");
		char *c1 = fhir_xml_canonical(r.body, r.len, NULL);
		char *c2 = fhir_xml_canonical(xml, xl, NULL);
		assert_non_null(c1);
		assert_non_null(c2);
		assert_string_equal(c1, c2);
		free(c1);
		free(c2);
		resp_free(&r);
		free(a);
		cJSON_Delete(got);
		cJSON_Delete(want);
		free(json);
		free(xml);
	}
	struct resp r;
	const char *plain[] = {"Content-Type: text/plain", NULL};
	req("POST", "/fhir/$convert", plain, "{\"resourceType\":\"Patient\"}", &r);
	assert_int_equal(r.status, 415);
	resp_free(&r);
	const char *latin1[] = {"Content-Type: application/fhir+json; charset=iso-8859-1", NULL};
	req("POST", "/fhir/$convert", latin1, "{\"resourceType\":\"Patient\"}", &r);
	assert_int_equal(r.status, 415);
	resp_free(&r);
}

/* Resident memory of a process, in kB (Linux /proc). */
static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static void expect_400(const char *content_type, const char *body, size_t len, const char *needle)
{
	char ct[128];
	if (len == (size_t)-1)
		len = strlen(body);
	snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
	const char *h[] = {ct, NULL};
	struct resp r;
	memset(&r, 0, sizeof r);
	assert_int_equal(http_do(&gw, "POST", "/fhir/$convert", h, body, len, &r), 0);
	if (r.status != 400 || (needle && !strstr(r.body, needle)))
		print_message("# %ld %s\n", r.status, r.body);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "OperationOutcome"));
	if (needle)
		assert_non_null(strstr(r.body, needle));
	assert_null(strstr(r.body, "root:")); /* nothing of /etc/passwd */
	resp_free(&r);
}

static void hostile_input_is_refused(void **state)
{
	(void)state;
	/* a loopback listener that must see no connection */
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(ls >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(ls, 8), 0);
	socklen_t sl = sizeof sa;
	assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
	unsigned port = ntohs(sa.sin_port);

	const char *x = "application/fhir+xml";
	char doc[1024];
	expect_400(x, "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">"
		      "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><Patient xmlns=\"http://hl7.org/fhir\"><id value=\"&c;\"/></Patient>",
		   (size_t)-1, "DOCTYPE");
	expect_400(x, "<!DOCTYPE p [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><Patient xmlns=\"http://hl7.org/fhir\">"
		      "<id value=\"&x;\"/></Patient>",
		   (size_t)-1, "DOCTYPE");
	snprintf(doc, sizeof doc,
		 "<!DOCTYPE p [<!ENTITY x SYSTEM \"http://127.0.0.1:%u/x\">]><Patient xmlns=\"http://hl7.org/fhir\">"
		 "<id value=\"&x;\"/></Patient>",
		 port);
	expect_400(x, doc, (size_t)-1, "DOCTYPE");
	snprintf(doc, sizeof doc,
		 "<!DOCTYPE p [<!ENTITY %% d SYSTEM \"http://127.0.0.1:%u/d.dtd\"> %%d;]><Patient xmlns=\"http://hl7.org/fhir\"/>",
		 port);
	expect_400(x, doc, (size_t)-1, "DOCTYPE");
	snprintf(doc, sizeof doc, "<!DOCTYPE Patient SYSTEM \"http://127.0.0.1:%u/p.dtd\"><Patient xmlns=\"http://hl7.org/fhir\"/>",
		 port);
	expect_400(x, doc, (size_t)-1, "DOCTYPE");
	expect_400(x, "<Patient xmlns=\"http://hl7.org/fhir\" xmlns:xi=\"http://www.w3.org/2001/XInclude\">"
		      "<xi:include href=\"file:///etc/passwd\" parse=\"text\"/></Patient>",
		   (size_t)-1, NULL);
	expect_400(x, "<?xml version=\"1.0\" encoding=\"UTF-16\"?><Patient xmlns=\"http://hl7.org/fhir\"/>", (size_t)-1,
		   NULL);
	/* JSON: duplicate keys, NUL, trailing bytes, invalid UTF-8, deep nesting */
	const char *j = "application/fhir+json";
	expect_400(j, "{\"resourceType\":\"Patient\",\"id\":\"a\",\"id\":\"b\"}", (size_t)-1, "duplicate");
	expect_400(j, "{\"resourceType\":\"Patient\",\"id\":\"a\\u0000b\"}", (size_t)-1, NULL);
	expect_400(j, "{\"resourceType\":\"Patient\"} x", (size_t)-1, NULL);
	expect_400(j, "{\"resourceType\":\"Patient\",\"id\":\"\xff\"}", (size_t)-1, "UTF-8");
	size_t depth = 100000;
	char *deep = malloc(depth * 2 + 64);
	assert_non_null(deep);
	memset(deep, '[', depth);
	memset(deep + depth, ']', depth);
	deep[2 * depth] = '\0';
	expect_400(j, deep, 2 * depth, NULL);
	size_t xd = 100000;
	char *xdeep = malloc(xd * 24 + 100);
	assert_non_null(xdeep);
	char *p = xdeep + sprintf(xdeep, "<Patient xmlns=\"http://hl7.org/fhir\">");
	for (size_t i = 0; i < xd; i++)
		p += sprintf(p, "<extension>");
	for (size_t i = 0; i < xd; i++)
		p += sprintf(p, "</extension>");
	p += sprintf(p, "</Patient>");
	expect_400(x, xdeep, (size_t)(p - xdeep), NULL);
	free(xdeep);
	free(deep);

	/* no memory growth: the hostile set again, twenty times after a warm-up
	 * round (allocator arenas and caches settle in the first) */
	long before = 0;
	for (int round = 0; round < 21; round++) {
		if (round == 1)
			before = rss_kb(gw.pid);
		expect_400(x, "<!DOCTYPE p [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><Patient xmlns=\"http://hl7.org/fhir\"/>",
			   (size_t)-1, "DOCTYPE");
		expect_400(j, "{\"resourceType\":\"Patient\",\"id\":\"a\",\"id\":\"b\"}", (size_t)-1, "duplicate");
		char *d2 = malloc(depth * 2 + 1);
		assert_non_null(d2);
		memset(d2, '[', depth);
		memset(d2 + depth, ']', depth);
		d2[2 * depth] = '\0';
		expect_400(j, d2, 2 * depth, NULL);
		free(d2);
	}
	long after = rss_kb(gw.pid);
	if (after - before > 5 * 1024)
		print_message("# RSS %ld kB -> %ld kB\n", before, after);
	assert_true(before > 0 && after - before <= 5 * 1024);

	int fl = fcntl(ls, F_GETFL);
	assert_int_equal(fcntl(ls, F_SETFL, fl | O_NONBLOCK), 0);
	int c = accept(ls, NULL, NULL);
	assert_int_equal(c, -1); /* no connection was attempted */
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	close(ls);
}

static void validate_operation(void **state)
{
	(void)state;
	const char *h[] = {"Content-Type: application/fhir+json", NULL};
	struct resp r;
	req("POST", "/fhir/$validate", h, "{\"resourceType\":\"Patient\",\"birthDate\":\"1990-01-01\"}", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"information\""));
	assert_null(strstr(r.body, "\"error\""));
	resp_free(&r);

	req("POST", "/fhir/Patient/$validate", h,
	    "{\"resourceType\":\"Patient\",\"birthDate\":\"1990-02-31x\",\"name\":[{\"given\":[\"\"]}],\"foo\":true}", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"expression\":[\"Patient.birthDate\"]"));
	assert_non_null(strstr(r.body, "\"expression\":[\"Patient.name[0].given[0]\"]"));
	assert_non_null(strstr(r.body, "\"expression\":[\"Patient.foo\"]"));
	resp_free(&r);

	req("POST", "/fhir/Observation/$validate", h, "{\"resourceType\":\"Patient\"}", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "not a Observation"));
	resp_free(&r);

	req("POST", "/fhir/Golem/$validate", h, "{\"resourceType\":\"Patient\"}", &r);
	assert_int_equal(r.status, 404);
	resp_free(&r);

	req("POST", "/fhir/$validate", h,
	    "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"resource\",\"resource\":"
	    "{\"resourceType\":\"Observation\",\"code\":{\"text\":\"x\"}}}]}",
	    &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "Observation.status"));
	resp_free(&r);

	const char *hx[] = {"Content-Type: application/fhir+xml", "Accept: application/fhir+xml", NULL};
	req("POST", "/fhir/$validate", hx,
	    "<Observation xmlns=\"http://hl7.org/fhir\"><status value=\"final\"/><code><text value=\"x\"/></code>"
	    "<valueQuantity><value value=\"1.10\"/></valueQuantity></Observation>",
	    &r);
	assert_int_equal(r.status, 200);
	content_type_is(&r, "application/fhir+xml");
	assert_non_null(strstr(r.body, "<severity value=\"information\"/>"));
	resp_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(metadata_in_both_formats),
		cmocka_unit_test(convert_official_examples),
		cmocka_unit_test(hostile_input_is_refused),
		cmocka_unit_test(validate_operation),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
