#include "api/api_outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "fhir/model.h"

static bool have_outbox(const struct app *app, struct http_response *resp)
{
	if (app->outbox)
		return true;
	http_set_error(resp, 404, "not-found", "no upstream is configured, so there is no outbox");
	return false;
}

static size_t query_size(const struct http_request *req, const char *name, size_t dflt, size_t max)
{
	const char *v = http_query(req, name);
	if (!v || !*v)
		return dflt;
	char *end;
	unsigned long n = strtoul(v, &end, 10);
	if (*end || n > max)
		return (size_t)-1;
	return n;
}

static void get_outbox(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	if (!have_outbox(app, resp))
		return;
	const char *state_s = http_query(req, "state");
	int state = -1;
	if (state_s && !strcmp(state_s, "pending"))
		state = OUTBOX_PENDING;
	else if (state_s && !strcmp(state_s, "dead"))
		state = OUTBOX_DEAD;
	else if (state_s) {
		http_set_error(resp, 400, "value", "state is pending or dead");
		return;
	}
	size_t count = query_size(req, "_count", 100, 1000), offset = query_size(req, "_offset", 0, (size_t)1 << 40);
	if (count == (size_t)-1 || offset == (size_t)-1) {
		http_set_error(resp, 400, "value", "_count is 0 to 1000 and _offset a whole number");
		return;
	}
	struct outbox_counts c;
	struct store_error err;
	struct outbox_item *items = calloc(count ? count : 1, sizeof *items);
	size_t n = 0;
	if (!items || store_outbox_counts(app->store, &c, &err) != STORE_OK ||
	    store_outbox_list(app->store, state, count, offset, items, &n, &err) != STORE_OK) {
		free(items);
		http_set_error(resp, 500, "exception", "cannot read the outbox");
		return;
	}
	cJSON *out = cJSON_CreateObject();
	cJSON *arr = out ? cJSON_AddArrayToObject(out, "records") : NULL;
	if (arr) {
		cJSON_AddNumberToObject(out, "pending", (double)c.pending);
		cJSON_AddNumberToObject(out, "dead", (double)c.dead);
		for (size_t i = 0; i < n; i++) {
			const struct outbox_item *it = &items[i];
			cJSON *r = cJSON_CreateObject();
			if (!r)
				break;
			cJSON_AddNumberToObject(r, "id", (double)it->oid);
			char ref[STORE_TYPE_SIZE + STORE_ID_SIZE + 2];
			snprintf(ref, sizeof ref, "%s/%s", it->type, it->id);
			cJSON_AddStringToObject(r, "resource", ref);
			cJSON_AddNumberToObject(r, "version", (double)it->version);
			cJSON_AddStringToObject(r, "operation", it->deleted ? "delete" : "put");
			cJSON_AddStringToObject(r, "state", it->state == OUTBOX_DEAD ? "dead" : "pending");
			cJSON_AddNumberToObject(r, "attempts", it->attempts);
			cJSON_AddNumberToObject(r, "next_attempt_ms", (double)it->next_at_ms);
			if (it->last_error[0])
				cJSON_AddStringToObject(r, "last_error", it->last_error);
			cJSON_AddStringToObject(r, "created", it->created);
			cJSON_AddItemToArray(arr, r);
		}
	}
	free(items);
	size_t len = 0;
	char *text = out ? fjson_print(out, false, &len) : NULL;
	cJSON_Delete(out);
	if (!text) {
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	http_set_body(resp, 200, "application/json; charset=utf-8", text, len);
}

static void post_retry(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	if (!have_outbox(app, resp))
		return;
	char *end;
	long long oid = strtoll(req->params[0], &end, 10);
	if (*end || oid <= 0) {
		http_set_error(resp, 400, "value", "'%.40s' is not an outbox record id", req->params[0]);
		return;
	}
	struct store_error err;
	if (store_outbox_settle(app->store, oid, OUTBOX_PENDING, 0, 0, NULL, &err) != STORE_OK) {
		http_set_error(resp, err.status == STORE_NOT_FOUND ? 404 : 500, "not-found", "%s", err.message);
		return;
	}
	outbox_kick(app->outbox);
	struct outbox_counts c = {0};
	store_outbox_counts(app->store, &c, &err);
	char *body = malloc(128);
	if (body)
		snprintf(body, 128, "{\"id\":%lld,\"state\":\"pending\",\"pending\":%zu}", oid, c.pending);
	http_set_body(resp, 202, "application/json; charset=utf-8", body, body ? strlen(body) : 0);
}

/* Query arguments of POST /outbox/$retry: each one known, given once. */
static int retry_arg(void *ctx, const char *name, const char *value)
{
	struct outbox_filter *f = ctx;
	const char **slot = !strcmp(name, "type")    ? &f->type
			    : !strcmp(name, "error") ? &f->error
			    : !strcmp(name, "since") ? &f->since
			    : !strcmp(name, "until") ? &f->until
						     : NULL;
	if (!slot || *slot || !*value)
		return 1;
	*slot = value;
	return 0;
}

/* A time bound: a prefix of YYYY-MM-DDThh:mm:ss.sssZ, at least the year. */
static bool time_bound_ok(const char *t)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	size_t n = strlen(t);
	if (n < 4 || n >= sizeof shape)
		return false;
	for (size_t i = 0; i < n; i++)
		if (shape[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != shape[i])
			return false;
	return true;
}

/* POST /outbox/$retry?type=&error=&since=&until=: every dead letter that
 * matches all the given filters goes back to pending; answers how many. */
static void post_retry_dead(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	if (!have_outbox(app, resp))
		return;
	struct outbox_filter f = {0};
	if (http_query_each(req, retry_arg, &f)) {
		http_set_error(resp, 400, "value",
			       "the filters are type, error, since and until, each at most once and not empty");
		return;
	}
	if (f.type && !model_resource(f.type)) {
		http_set_error(resp, 400, "value", "'%.64s' is not a FHIR R4 resource type", f.type);
		return;
	}
	if ((f.since && !time_bound_ok(f.since)) || (f.until && !time_bound_ok(f.until))) {
		http_set_error(resp, 400, "value",
			       "since and until are UTC times such as 2026-01-02 or 2026-01-02T03:04:05Z");
		return;
	}
	size_t n = 0;
	struct store_error err;
	if (store_outbox_retry_dead(app->store, &f, &n, &err) != STORE_OK) {
		http_set_error(resp, 500, "exception", "%s", err.message);
		return;
	}
	if (n)
		outbox_kick(app->outbox);
	struct outbox_counts c = {0};
	store_outbox_counts(app->store, &c, &err);
	char *body = malloc(128);
	if (body)
		snprintf(body, 128, "{\"retried\":%zu,\"pending\":%zu,\"dead\":%zu}", n, c.pending, c.dead);
	http_set_body(resp, 200, "application/json; charset=utf-8", body, body ? strlen(body) : 0);
}

int api_outbox_register(struct app *app)
{
	int rc = 0;
	rc |= router_add(&app->router, "GET", "/outbox", get_outbox, app);
	rc |= router_add(&app->router, "POST", "/outbox/{oid}/$retry", post_retry, app);
	rc |= router_add(&app->router, "POST", "/outbox/$retry", post_retry_dead, app);
	return rc ? -1 : 0;
}
