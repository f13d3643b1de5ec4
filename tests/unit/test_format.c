/* Unit tests: FHIR content negotiation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "fhir/format.h"

static void format_parameter(void **state)
{
	(void)state;
	assert_int_equal(format_from_param("json"), FORMAT_JSON);
	assert_int_equal(format_from_param("xml"), FORMAT_XML);
	assert_int_equal(format_from_param("application/fhir+json"), FORMAT_JSON);
	assert_int_equal(format_from_param("application/fhir+xml;fhirVersion=4.0"), FORMAT_XML);
	assert_int_equal(format_from_param("application/json"), FORMAT_JSON);
	assert_int_equal(format_from_param("application/xml"), FORMAT_XML);
	assert_int_equal(format_from_param("text/xml"), FORMAT_XML);
	assert_int_equal(format_from_param("ttl"), FORMAT_NONE);
	assert_int_equal(format_from_param("jsonx"), FORMAT_NONE);
	assert_int_equal(format_from_param(""), FORMAT_NONE);
}

static void negotiation(void **state)
{
	(void)state;
	assert_int_equal(format_negotiate(NULL, NULL), FORMAT_JSON);
	assert_int_equal(format_negotiate(NULL, "*/*"), FORMAT_JSON);
	assert_int_equal(format_negotiate(NULL, "application/fhir+xml"), FORMAT_XML);
	assert_int_equal(format_negotiate(NULL, "text/html, application/xml;q=0.9, */*;q=0.1"), FORMAT_XML);
	assert_int_equal(format_negotiate(NULL, "application/fhir+xml;q=0.2, application/fhir+json"), FORMAT_JSON);
	assert_int_equal(format_negotiate(NULL, "application/fhir+json; fhirVersion=4.0"), FORMAT_JSON);
	assert_int_equal(format_negotiate(NULL, "text/html"), FORMAT_NONE);
	assert_int_equal(format_negotiate(NULL, "application/fhir+json;q=0"), FORMAT_NONE);
	assert_int_equal(format_negotiate("xml", "application/fhir+json"), FORMAT_XML);
	assert_int_equal(format_negotiate("html", NULL), FORMAT_NONE);
	assert_string_equal(format_media_type(FORMAT_XML), "application/fhir+xml; charset=utf-8");
}

static void body_format(void **state)
{
	(void)state;
	assert_int_equal(format_of_body("application/fhir+json", "{}", 2), FORMAT_JSON);
	assert_int_equal(format_of_body("application/fhir+json; charset=UTF-8", "{}", 2), FORMAT_JSON);
	assert_int_equal(format_of_body("application/fhir+xml;charset=\"utf-8\"", "<a/>", 4), FORMAT_XML);
	assert_int_equal(format_of_body("application/fhir+json; charset=iso-8859-1", "{}", 2), FORMAT_NONE);
	assert_int_equal(format_of_body("application/x-www-form-urlencoded", "a=b", 3), FORMAT_NONE);
	assert_int_equal(format_of_body("text/plain", "{}", 2), FORMAT_NONE);
	assert_int_equal(format_of_body(NULL, "  \n{}", 5), FORMAT_JSON);
	assert_int_equal(format_of_body(NULL, "<Patient/>", 10), FORMAT_XML);
	assert_int_equal(format_of_body(NULL, "hello", 5), FORMAT_NONE);
	assert_int_equal(format_of_body(NULL, "", 0), FORMAT_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(format_parameter),
		cmocka_unit_test(negotiation),
		cmocka_unit_test(body_format),
	};
	return cmocka_run_group_tests_name("format", tests, NULL, NULL);
}
