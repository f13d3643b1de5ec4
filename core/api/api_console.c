#include "api/api_console.h"

#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "base/series.h"
#include "console/assets.h"

/* Sampling every 5 s, one hour kept. (The HTTP layer adds nosniff and
 * Cache-Control: no-store to every answer.) */
#define SERIES_INTERVAL_MS 5000
#define SERIES_CAPACITY 720

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
			  "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
			  "frame-ancestors 'none'";

static void secure_headers(struct http_response *resp)
{
	http_add_header(resp, "Content-Security-Policy", csp);
	http_add_header(resp, "Referrer-Policy", "no-referrer");
	http_add_header(resp, "X-Frame-Options", "DENY");
}

static void serve(struct http_response *resp, const char *name)
{
	struct console_asset a;
	if (!console_asset(name, &a)) {
		http_set_error(resp, 404, "not-found", "the console has no file called %s", name);
		return;
	}
	char *copy = malloc(a.len + 1);
	if (!copy) {
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	memcpy(copy, a.data, a.len);
	copy[a.len] = '\0';
	http_set_body(resp, 200, a.content_type, copy, a.len);
	secure_headers(resp);
}

static void get_page(void *ctx, struct http_request *req, struct http_response *resp)
{
	(void)ctx;
	(void)req;
	serve(resp, "index.html");
}

static void get_asset(void *ctx, struct http_request *req, struct http_response *resp)
{
	(void)ctx;
	serve(resp, req->params[0]);
}

static void get_series(void *ctx, struct http_request *req, struct http_response *resp)
{
	(void)req;
	struct app *app = ctx;
	struct series_sample *s = malloc((SERIES_CAPACITY + 1) * sizeof *s);
	size_t n = s ? series_copy(app->series, s, SERIES_CAPACITY + 1) : 0;
	cJSON *out = s ? cJSON_CreateObject() : NULL;
	cJSON *arr = out ? cJSON_AddArrayToObject(out, "samples") : NULL;
	bool ok = arr && cJSON_AddNumberToObject(out, "interval_s", series_interval_ms(app->series) / 1000.0);
	for (size_t i = 0; ok && i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		ok = o && cJSON_AddItemToArray(arr, o);
		ok = ok && cJSON_AddNumberToObject(o, "t", (double)s[i].t_ms / 1000.0) &&
		     cJSON_AddNumberToObject(o, "rps", s[i].rps) && cJSON_AddNumberToObject(o, "p50_ms", s[i].p50_ms) &&
		     cJSON_AddNumberToObject(o, "p99_ms", s[i].p99_ms) &&
		     cJSON_AddNumberToObject(o, "rate_4xx", s[i].rate_4xx) &&
		     cJSON_AddNumberToObject(o, "rate_5xx", s[i].rate_5xx);
		if (ok && s[i].has_outbox)
			ok = cJSON_AddNumberToObject(o, "outbox_pending", s[i].outbox_pending) &&
			     cJSON_AddNumberToObject(o, "outbox_dead", s[i].outbox_dead);
		if (ok && i + 1 == n)
			ok = cJSON_AddBoolToObject(o, "live", true);
	}
	free(s);
	if (!ok) {
		cJSON_Delete(out);
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	size_t len = 0;
	char *text = fjson_print(out, false, &len);
	cJSON_Delete(out);
	if (!text) {
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	http_set_body(resp, 200, "application/json", text, len);
}

int api_console_register(struct app *app)
{
	if (!(app->series = series_start(SERIES_INTERVAL_MS, SERIES_CAPACITY)))
		return -1;
	int rc = 0;
	rc |= router_add(&app->router, "GET", "/console", get_page, app);
	rc |= router_add(&app->router, "GET", "/console/api/series", get_series, app);
	rc |= router_add(&app->router, "GET", "/console/{asset}", get_asset, app);
	return rc ? -1 : 0;
}
