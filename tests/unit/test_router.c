/* Unit tests: routing table, captures, 404/405, outcome rendering, response
 * headers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fhir/outcome.h"
#include "http/http.h"
#include "http/router.h"

static const char *last;
static char cap0[64], cap1[64];
static size_t ncap;

static void h_a(void *ctx, struct http_request *req, struct http_response *resp)
{
	last = ctx;
	ncap = req->nparams;
	strcpy(cap0, req->nparams > 0 ? req->params[0] : "");
	strcpy(cap1, req->nparams > 1 ? req->params[1] : "");
	http_set_body(resp, 200, "text/plain", NULL, 0);
}

static void dispatch(struct router *r, const char *method, const char *path, struct http_response *resp)
{
	struct http_request req = {.method = method, .path = path, .body = ""};
	memset(resp, 0, sizeof *resp);
	last = NULL;
	router_dispatch(r, &req, resp);
}

static void release(struct http_response *resp)
{
	free(resp->body);
	for (size_t i = 0; i < resp->nheaders; i++) {
		free(resp->headers[i].name);
		free(resp->headers[i].value);
	}
}

static void matching_and_priority(void **state)
{
	(void)state;
	static struct router r;
	memset(&r, 0, sizeof r);
	assert_int_equal(router_add(&r, "GET", "/fhir/{type}/{id}", h_a, "read"), 0);
	assert_int_equal(router_add(&r, "POST", "/fhir/{type}/$validate", h_a, "validate"), 0);
	assert_int_equal(router_add(&r, "GET", "/fhir/metadata", h_a, "metadata"), 0);
	assert_int_equal(router_add(&r, "GET", "/fhir/{type}", h_a, "search"), 0);
	assert_int_equal(router_add(&r, "GET", "bad", h_a, "x"), -1);
	struct http_response resp;

	dispatch(&r, "GET", "/fhir/Patient/123", &resp);
	assert_string_equal(last, "read");
	assert_int_equal(ncap, 2);
	assert_string_equal(cap0, "Patient");
	assert_string_equal(cap1, "123");
	assert_string_equal(resp.route, "/fhir/{type}/{id}");
	release(&resp);

	dispatch(&r, "POST", "/fhir/Goal/$validate", &resp);
	assert_string_equal(last, "validate");
	release(&resp);

	dispatch(&r, "GET", "/fhir/metadata", &resp);
	assert_string_equal(last, "metadata");
	release(&resp);

	dispatch(&r, "GET", "/fhir/metadata/", &resp);
	assert_string_equal(last, "metadata");
	release(&resp);

	dispatch(&r, "GET", "/fhir/Patient", &resp);
	assert_string_equal(last, "search");
	assert_string_equal(cap0, "Patient");
	release(&resp);

	dispatch(&r, "HEAD", "/fhir/metadata", &resp);
	assert_string_equal(last, "metadata");
	release(&resp);
}

static void not_found_and_not_allowed(void **state)
{
	(void)state;
	static struct router r;
	memset(&r, 0, sizeof r);
	router_add(&r, "GET", "/a/{x}", h_a, "a");
	router_add(&r, "PUT", "/a/{x}", h_a, "a");
	struct http_response resp;
	dispatch(&r, "GET", "/b", &resp);
	assert_null(last);
	assert_int_equal(resp.status, 404);
	assert_non_null(strstr(resp.body, "OperationOutcome"));
	assert_non_null(strstr(resp.body, "not-found"));
	release(&resp);
	dispatch(&r, "GET", "/a//", &resp); /* empty capture does not match */
	assert_int_equal(resp.status, 404);
	release(&resp);
	dispatch(&r, "DELETE", "/a/1", &resp);
	assert_int_equal(resp.status, 405);
	assert_int_equal(resp.nheaders, 1);
	assert_string_equal(resp.headers[0].name, "Allow");
	assert_string_equal(resp.headers[0].value, "GET, PUT");
	release(&resp);
}

static void outcome_rendering(void **state)
{
	(void)state;
	struct outcome oo = OUTCOME_INIT;
	cJSON *j = outcome_to_json(&oo);
	assert_string_equal(cJSON_GetObjectItem(j, "resourceType")->valuestring, "OperationOutcome");
	cJSON *is = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "issue"), 0);
	assert_string_equal(cJSON_GetObjectItem(is, "severity")->valuestring, "information");
	cJSON_Delete(j);
	outcome_add(&oo, OUTCOME_ERROR, "required", "Goal.description", "missing %s", "description");
	outcome_add(&oo, OUTCOME_WARNING, "informational", NULL, "ok-ish");
	assert_int_equal(outcome_errors(&oo), 1);
	j = outcome_to_json(&oo);
	cJSON *issues = cJSON_GetObjectItem(j, "issue");
	assert_int_equal(cJSON_GetArraySize(issues), 2);
	is = cJSON_GetArrayItem(issues, 0);
	assert_string_equal(cJSON_GetObjectItem(is, "code")->valuestring, "required");
	assert_string_equal(cJSON_GetObjectItem(is, "diagnostics")->valuestring, "missing description");
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(is, "expression"), 0)->valuestring,
			    "Goal.description");
	assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(issues, 1), "expression"));
	cJSON_Delete(j);
	outcome_release(&oo);
	assert_int_equal(oo.n, 0);
}

/* No header line can be injected into a response: a CR or LF in a value,
 * or a CR, LF or colon in a name, is refused; a full table too. */
static void response_headers_refuse_injection(void **state)
{
	(void)state;
	struct http_response resp;
	memset(&resp, 0, sizeof resp);
	assert_true(http_add_header(&resp, "X-Fine", "a value: with colon"));
	assert_false(http_add_header(&resp, "X-Bad", "a\nSet-Cookie: x=1"));
	assert_false(http_add_header(&resp, "X-Bad", "a\rSet-Cookie: x=1"));
	assert_false(http_add_header(&resp, "X-Bad\nSet-Cookie", "1"));
	assert_false(http_add_header(&resp, "X-Bad\r", "1"));
	assert_false(http_add_header(&resp, "X-Bad:", "1"));
	assert_int_equal(resp.nheaders, 1);
	assert_string_equal(resp.headers[0].name, "X-Fine");
	while (resp.nheaders < HTTP_MAX_HEADERS)
		assert_true(http_add_header(&resp, "X-More", "1"));
	assert_false(http_add_header(&resp, "X-One-Too-Many", "1"));
	release(&resp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(matching_and_priority),
		cmocka_unit_test(not_found_and_not_allowed),
		cmocka_unit_test(outcome_rendering),
		cmocka_unit_test(response_headers_refuse_injection),
	};
	return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
