#include "api/api_system.h"

#include <stdlib.h>
#include <string.h>

#include "base/metrics.h"

static void get_metadata(void *ctx, struct http_request *req, struct http_response *resp)
{
	(void)req;
	const struct app *app = ctx;
	char *copy = app->metadata ? malloc(app->metadata_len + 1) : NULL;
	if (!copy) {
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	memcpy(copy, app->metadata, app->metadata_len + 1);
	http_set_body(resp, 200, "application/fhir+json; charset=utf-8", copy, app->metadata_len);
}

static void get_healthz(void *ctx, struct http_request *req, struct http_response *resp)
{
	(void)req;
	struct app *app = ctx;
	bool draining = atomic_load(&app->draining);
	/* Full storage still serves reads and must stay reachable for the write
	 * that shows space is back: 200, but not "ok". */
	const char *body = draining	   ? "{\"status\":\"draining\"}"
			   : store_full() ? "{\"status\":\"degraded\",\"reason\":\"storage full\"}"
					  : "{\"status\":\"ok\"}";
	char *copy = strdup(body);
	http_set_body(resp, draining ? 503 : 200, "application/json", copy, copy ? strlen(copy) : 0);
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
