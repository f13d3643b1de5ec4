/* End-to-end tests of documents near the body limit: FHIR XML and JSON just
 * under limits.max_body_bytes (16 MiB by default, above the 10 MB libxml2
 * keeps in view at once) are read whole by POST /fhir/$convert and the REST
 * API; just over it, both get the same 413 naming the limit. No text of the
 * XML library reaches the client. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/harness.h"

#define LIMIT (16u << 20)

static struct gw gw;

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

/* A Binary of exactly size bytes in XML or JSON: base64 data filling it,
 * padded with whitespace between elements. */
static char *binary(bool xml, size_t size)
{
	const char *head =
		xml ? "<Binary xmlns=\"http://hl7.org/fhir\"><contentType value=\"application/pdf\"/><data value=\""
		    : "{\"resourceType\":\"Binary\",\"contentType\":\"application/pdf\",\"data\":\"";
	const char *tail = xml ? "\"/></Binary>" : "\"}";
	size_t fixed = strlen(head) + strlen(tail);
	assert_true(size > fixed + 8);
	size_t data = (size - fixed) / 4 * 4, pad = size - fixed - data;
	char *buf = malloc(size + 1);
	assert_non_null(buf);
	size_t at = 0;
	memcpy(buf, head, strlen(head));
	at += strlen(head);
	memset(buf + at, 'Q', data);
	at += data;
	memcpy(buf + at, tail, strlen(tail));
	at += strlen(tail);
	memset(buf + at, '\n', pad);
	at += pad;
	buf[at] = '\0';
	assert_int_equal(at, size);
	return buf;
}

static long post(const char *path, bool xml, const char *accept, size_t size, struct resp *r)
{
	const char *h[] = {xml ? "Content-Type: application/fhir+xml" : "Content-Type: application/fhir+json", accept,
			   NULL};
	char *body = binary(xml, size);
	memset(r, 0, sizeof *r);
	assert_int_equal(http_do(&gw, "POST", path, h, body, size, r), 0);
	free(body);
	return r->status;
}

/* The data of a converted Binary came through whole. */
static void data_whole(const struct resp *r, size_t size, bool xml_in)
{
	size_t fixed =
		xml_in ? strlen("<Binary xmlns=\"http://hl7.org/fhir\"><contentType value=\"application/pdf\"/>"
				"<data value=\"\"/></Binary>")
		       : strlen("{\"resourceType\":\"Binary\",\"contentType\":\"application/pdf\",\"data\":\"\"}");
	size_t data = (size - fixed) / 4 * 4;
	char *run = malloc(data + 3);
	assert_non_null(run);
	run[0] = '"';
	memset(run + 1, 'Q', data);
	run[data + 1] = '"';
	run[data + 2] = '\0';
	assert_non_null(strstr(r->body, run));
	free(run);
}

static void convert_just_under_the_limit(void **state)
{
	(void)state;
	struct resp r;
	size_t size = LIMIT - 16;
	assert_int_equal(post("/fhir/$convert", true, "Accept: application/fhir+json", size, &r), 200);
	assert_null(strstr(r.body, "OperationOutcome"));
	data_whole(&r, size, true);
	resp_free(&r);
	assert_int_equal(post("/fhir/$convert", false, "Accept: application/fhir+xml", size, &r), 200);
	assert_non_null(strstr(r.body, "<Binary"));
	resp_free(&r);
	/* XML to XML goes through the reader too */
	assert_int_equal(post("/fhir/$convert", true, "Accept: application/fhir+xml", size, &r), 200);
	assert_non_null(strstr(r.body, "<Binary"));
	resp_free(&r);
}

static void rest_just_under_the_limit(void **state)
{
	(void)state;
	struct resp r;
	size_t size = LIMIT - 16;
	long st = post("/fhir/Binary", true, "Accept: application/fhir+json", size, &r);
	if (st != 201)
		fprintf(stderr, "# %ld %.300s\n", st, r.body ? r.body : "");
	assert_int_equal(st, 201);
	resp_free(&r);
	assert_int_equal(post("/fhir/Binary", false, "Accept: application/fhir+json", size, &r), 201);
	resp_free(&r);
}

static void just_over_the_limit_is_413_for_both(void **state)
{
	(void)state;
	for (int xml = 0; xml < 2; xml++) {
		for (int path = 0; path < 2; path++) {
			struct resp r;
			long st = post(path ? "/fhir/Binary" : "/fhir/$convert", xml, "Accept: application/fhir+json",
				       LIMIT + 1, &r);
			assert_int_equal(st, 413);
			assert_non_null(strstr(r.body, "OperationOutcome"));
			assert_non_null(strstr(r.body, "exceeds the limit of 16777216 bytes (limits.max_body_bytes)"));
			resp_free(&r);
		}
	}
}

/* Malformed XML is described in the gateway's words with its position. */
static void malformed_xml_in_own_words(void **state)
{
	(void)state;
	static const char *h[] = {"Content-Type: application/fhir+xml", NULL};
	static const char *docs[] = {
		"<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"a\"/></Patien>",
		"<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"a\"/>",
		"<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"a&foo;\"/></Patient>",
	};
	static const char *says[] = {
		"an end tag does not match its start tag",
		"does not end right after its root element",
		"an entity reference other than",
	};
	for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
		struct resp r;
		memset(&r, 0, sizeof r);
		assert_int_equal(http_do(&gw, "POST", "/fhir/$convert", h, docs[i], strlen(docs[i]), &r), 0);
		assert_int_equal(r.status, 400);
		assert_non_null(strstr(r.body, "XML is not well-formed at line 1 column"));
		if (!strstr(r.body, says[i]))
			fprintf(stderr, "# %s\n", r.body);
		assert_non_null(strstr(r.body, says[i]));
		resp_free(&r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(convert_just_under_the_limit),
		cmocka_unit_test(rest_just_under_the_limit),
		cmocka_unit_test(just_over_the_limit_is_413_for_both),
		cmocka_unit_test(malformed_xml_in_own_words),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
