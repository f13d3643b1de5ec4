/* Unit tests of the consent hook of the access record (core/api/audit.h)
 * over a real store: a request whose answer left resources out by consent
 * (audit_withheld) gets a second AuditEvent naming each one with its
 * reason, beside the request's own; without a withholding, only its own.
 * The batch writer is used so that no HTTP connection is needed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/audit.h"
#include "config/config.h"
#include "store/store.h"

/* Runs one GET of path answered 200 with body through the record; the
 * withholdings (type, id pairs) are reported first. Returns the AuditEvents
 * stored, as a page the caller releases. */
static void record(const char *rid, const char *path, const char *body, const char *const *withheld,
		   struct store_page *out)
{
	char dir[] = "/tmp/cw-audit-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct config cfg;
	assert_int_equal(config_defaults(&cfg), 0);
	free(cfg.audit.durability);
	cfg.audit.durability = strdup("batch");
	struct store *st = NULL;
	char err[256];
	assert_int_equal(store_open_sqlite(dir, 0, 0, &st, err, sizeof err), 0);
	struct audit *a = audit_start(st, &cfg, err, sizeof err);
	assert_non_null(a);

	struct http_request req = {.method = "GET",
				   .path = path,
				   .body = "",
				   .request_id = rid,
				   .client = "127.0.0.1",
				   .authority = "127.0.0.1:8080"};
	struct http_response resp = {.status = 200, .content_type = "application/fhir+json"};
	resp.body = strdup(body);
	resp.body_len = strlen(body);
	audit_request_begin(a, &req);
	assert_non_null(req.app);
	for (size_t i = 0; withheld && withheld[i]; i += 2)
		audit_withheld(&req, withheld[i], withheld[i + 1], "no-part2-consent");
	audit_request_finish(a, &req, &resp);
	audit_drain(a);
	store_drain(st);
	req.app_free(req.app);
	free(resp.body);

	struct store_search q = {.count = 100};
	struct store_error serr;
	assert_int_equal(store_search(st, "AuditEvent", &q, out, &serr), STORE_OK);
	audit_stop(a);
	store_close(st);
	config_release(&cfg);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static const cJSON *with_subtype(const struct store_page *p, const char *code)
{
	for (size_t i = 0; i < p->n; i++) {
		const cJSON *sub = cJSON_GetArrayItem(cJSON_GetObjectItem(p->items[i].resource, "subtype"), 0);
		if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(sub, "code")), code))
			return p->items[i].resource;
	}
	return NULL;
}

static void withheld_resources_get_their_own_record(void **state)
{
	(void)state;
	static const char *const withheld[] = {"Condition", "c1", "Encounter", "e9", NULL};
	struct store_page p = {0};
	record("u-1", "/fhir/Condition/c2",
	       "{\"resourceType\":\"Condition\",\"id\":\"c2\",\"subject\":{\"reference\":\"Patient/p1\"}}", withheld,
	       &p);
	assert_int_equal(p.n, 2);
	const cJSON *own = with_subtype(&p, "read");
	assert_non_null(own);
	const cJSON *dec = with_subtype(&p, "consent-withheld");
	assert_non_null(dec);
	const cJSON *ents = cJSON_GetObjectItem(dec, "entity");
	int named = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, ents)
	{
		const char *ref =
			cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "what"), "reference"));
		if (!ref)
			continue; /* the X-Request-Id */
		assert_true(!strcmp(ref, "Condition/c1") || !strcmp(ref, "Encounter/e9"));
		assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(e, "description")), "no-part2-consent");
		named++;
	}
	assert_int_equal(named, 2);
	assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(dec, "outcomeDesc")), "2 resources withheld"));
	store_page_release(&p);
}

static void nothing_withheld_one_record(void **state)
{
	(void)state;
	struct store_page p = {0};
	record("u-2", "/fhir/Condition/c2", "{\"resourceType\":\"Condition\",\"id\":\"c2\"}", NULL, &p);
	assert_int_equal(p.n, 1);
	assert_non_null(with_subtype(&p, "read"));
	store_page_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(withheld_resources_get_their_own_record),
		cmocka_unit_test(nothing_withheld_one_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
