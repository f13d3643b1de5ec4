/* Unit tests: metrics counting and Prometheus exposition. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fhir/capability.h"
#include "base/metrics.h"

static double seven(void *ctx)
{
	(void)ctx;
	return 7;
}

static void counts_and_renders(void **state)
{
	(void)state;
	metrics_request_done("/fhir/metadata", 200, 0.0004);
	metrics_request_done("/fhir/metadata", 200, 0.003);
	metrics_request_done("/fhir/metadata", 404, 20.0);
	metrics_gauge_add(METRICS_INFLIGHT, 2);
	metrics_gauge_add(METRICS_INFLIGHT, -1);
	metrics_counter_add(METRICS_DEADLINE_CLOSED, 3);
	assert_int_equal(metrics_register_gauge("crosswalk_test_gauge", "A test gauge.", seven, NULL), 0);
	assert_int_equal(metrics_requests("/fhir/metadata", 200), 2);
	assert_int_equal(metrics_requests("/fhir/metadata", 404), 1);
	size_t len;
	char *t = metrics_render(&len);
	assert_non_null(t);
	assert_int_equal(strlen(t), len);
	assert_non_null(strstr(t, "crosswalk_http_requests_total{route=\"/fhir/metadata\",status=\"200\"} 2\n"));
	assert_non_null(strstr(t, "crosswalk_http_requests_total{route=\"/fhir/metadata\",status=\"404\"} 1\n"));
	assert_non_null(strstr(t, "crosswalk_http_request_duration_seconds_bucket{route=\"/fhir/metadata\",le=\"0.0005\"} 1\n"));
	assert_non_null(strstr(t, "crosswalk_http_request_duration_seconds_bucket{route=\"/fhir/metadata\",le=\"0.005\"} 2\n"));
	assert_non_null(strstr(t, "crosswalk_http_request_duration_seconds_bucket{route=\"/fhir/metadata\",le=\"10\"} 2\n"));
	assert_non_null(strstr(t, "crosswalk_http_request_duration_seconds_bucket{route=\"/fhir/metadata\",le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(t, "crosswalk_http_request_duration_seconds_count{route=\"/fhir/metadata\"} 3\n"));
	assert_non_null(strstr(t, "crosswalk_http_requests_in_flight 1\n"));
	assert_non_null(strstr(t, "crosswalk_http_deadline_closed_total 3\n"));
	assert_non_null(strstr(t, "crosswalk_test_gauge 7\n"));
	free(t);
}

static void capability_from_registrations(void **state)
{
	(void)state;
	static struct capability cap;
	capability_init(&cap, "9.9.9");
	capability_add_format(&cap, "application/fhir+json");
	capability_add_operation(&cap, (struct capability_operation){"convert", "http://example.org/OperationDefinition/convert", NULL, "core"});
	struct capability_resource res = {.type = "Goal", .interactions = {"read", "create"}};
	capability_add_resource(&cap, &res);
	capability_add_operation(&cap, (struct capability_operation){"validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate", "Goal", "core"});
	assert_int_equal(capability_add_system_interaction(&cap, "transaction", "atomic"), 0);
	assert_int_equal(capability_add_system_interaction(&cap, "batch", NULL), 0);
	cJSON *cs = capability_build(&cap);
	assert_string_equal(cJSON_GetObjectItem(cs, "fhirVersion")->valuestring, "4.0.1");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cs, "software"), "version")->valuestring, "9.9.9");
	cJSON *server = cJSON_GetArrayItem(cJSON_GetObjectItem(cs, "rest"), 0);
	cJSON *goal = cJSON_GetArrayItem(cJSON_GetObjectItem(server, "resource"), 0);
	assert_string_equal(cJSON_GetObjectItem(goal, "type")->valuestring, "Goal");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(goal, "interaction")), 2);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(goal, "operation"), 0), "name")->valuestring, "validate");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(server, "operation"), 0), "name")->valuestring, "convert");
	cJSON *sys = cJSON_GetObjectItem(server, "interaction");
	assert_int_equal(cJSON_GetArraySize(sys), 2);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(sys, 0), "code")->valuestring, "transaction");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(sys, 0), "documentation")->valuestring, "atomic");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(sys, 1), "code")->valuestring, "batch");
	assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(sys, 1), "documentation"));
	cJSON_Delete(cs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(counts_and_renders),
		cmocka_unit_test(capability_from_registrations),
	};
	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
