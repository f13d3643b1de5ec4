#include "api/api_system.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/fjson.h"

#include "base/metrics.h"

/* The CapabilityStatement with rest.security for req's authority (the token
 * endpoint's URL depends on it); NULL on OOM. */
static char *metadata_with_security(const struct app *app, const struct http_request *req, size_t *len)
{
	cJSON *cs = fjson_parse(app->metadata, app->metadata_len, NULL, NULL);
	cJSON *rest = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cs, "rest"), 0);
	cJSON *sec = auth_capability_security(app->auth, req);
	if (!rest || !sec) {
		cJSON_Delete(sec);
		cJSON_Delete(cs);
		return NULL;
	}
	/* after mode and documentation, where the element order puts it */
	int at = 0, i = 0;
	for (const cJSON *m = rest->child; m; m = m->next, i++)
		if (!strcmp(m->string, "mode") || !strcmp(m->string, "documentation"))
			at = i + 1;
	cJSON_AddItemToObject(rest, "security", sec);
	for (int k = at; k < i; k++) /* what followed moves after it */
		cJSON_AddItemToArray(rest, cJSON_DetachItemFromArray(rest, at));
	char *text = fjson_print(cs, false, len);
	cJSON_Delete(cs);
	return text;
}

static void get_metadata(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	if (auth_enabled(app->auth)) {
		size_t len = 0;
		char *text = metadata_with_security(app, req, &len);
		if (text)
			http_set_body(resp, 200, "application/fhir+json; charset=utf-8", text, len);
		else
			http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	char *copy = app->metadata ? malloc(app->metadata_len + 1) : NULL;
	if (!copy) {
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	memcpy(copy, app->metadata, app->metadata_len + 1);
	http_set_body(resp, 200, "application/fhir+json; charset=utf-8", copy, app->metadata_len);
}

/* Unix ms as an instant ("2026-01-02T03:04:05.678Z"), or JSON null. */
static void add_instant(cJSON *o, const char *key, int64_t ms)
{
	if (ms <= 0) {
		cJSON_AddNullToObject(o, key);
		return;
	}
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[40];
	gmtime_r(&t, &tm);
	size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof buf - n, ".%03dZ", (int)(ms % 1000));
	cJSON_AddStringToObject(o, key, buf);
}

/* The upstream as last seen (never called from here): "ok" when the last
 * exchange went well, "failing" when it did not, "unknown" before any. */
static void add_upstream(cJSON *out, struct upstream *up)
{
	struct upstream_health h;
	upstream_health(up, &h);
	cJSON *o = cJSON_AddObjectToObject(out, "upstream");
	if (!o)
		return;
	const char *state = !h.last_success_ms && !h.last_failure_ms ? "unknown"
			    : h.last_failure_ms > h.last_success_ms  ? "failing"
								     : "ok";
	cJSON_AddStringToObject(o, "state", state);
	cJSON_AddNumberToObject(o, "in_flight", h.in_flight);
	cJSON_AddNumberToObject(o, "max_concurrent", h.max_concurrent);
	cJSON_AddNumberToObject(o, "refused_busy", (double)h.refused_busy);
	add_instant(o, "last_success", h.last_success_ms);
	add_instant(o, "last_failure", h.last_failure_ms);
	if (h.last_error[0])
		cJSON_AddStringToObject(o, "last_error", h.last_error);
}

static void get_healthz(void *ctx, struct http_request *req, struct http_response *resp)
{
	(void)req;
	struct app *app = ctx;
	bool draining = atomic_load(&app->draining);
	cJSON *out = cJSON_CreateObject();
	/* Full storage still serves reads and must stay reachable for the write
	 * that shows space is back: 200, but not "ok". */
	bool full = !draining && store_full();
	/* Damaged stored content stays refused (500 for its reads) and the rest
	 * is served: 200, but degraded until the store is restored. */
	bool corrupt = !draining && store_corrupt();
	const char *reason = corrupt ? "stored content failed its integrity check; run `crosswalk check`"
			     : full  ? "storage full"
				     : NULL;
	if (out &&
	    cJSON_AddStringToObject(out, "status",
				    draining ? "draining"
				    : reason ? "degraded"
					     : "ok") &&
	    (!reason || cJSON_AddStringToObject(out, "reason", reason)) && app->upstream)
		add_upstream(out, app->upstream);
	size_t len = 0;
	char *text = out ? fjson_print(out, false, &len) : NULL;
	cJSON_Delete(out);
	if (!text) {
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	http_set_body(resp, draining ? 503 : 200, "application/json", text, len);
}

static void get_metrics(void *ctx, struct http_request *req, struct http_response *resp)
{
	(void)ctx;
	(void)req;
	size_t len = 0;
	char *text = metrics_render(&len);
	if (!text) {
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	http_set_body(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

int api_system_register(struct app *app)
{
	int rc = 0;
	rc |= router_add(&app->router, "GET", "/fhir/metadata", get_metadata, app);
	rc |= router_add(&app->router, "GET", "/healthz", get_healthz, app);
	rc |= router_add(&app->router, "GET", "/metrics", get_metrics, app);
	return rc ? -1 : 0;
}
