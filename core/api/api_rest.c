#include "api/api_rest.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api_fhir.h"
#include "base/arena.h"
#include "base/fjson.h"
#include "fhir/format.h"
#include "base/metrics.h"
#include "fhir/model.h"
#include "plugin/plugin_host.h"
#include "base/json_patch.h"
#include "fhir/search_params.h"
#include "store/store.h"
#include "fhir/validate.h"

/* ------------------------------------------------------------ helpers */

static bool valid_id(const char *id) { return id && validate_primitive_text("id", id); }

/* The base URL links and Locations use: from Host when it is a plain
 * host[:port], else the configured listen address. */
static void base_url(const struct app *app, const struct http_request *req, char *buf, size_t n)
{
	const char *host = req ? http_header(req, "Host") : NULL;
	bool ok = host && *host && strlen(host) < 200;
	for (const char *p = host; ok && *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-:[]", *p))
			ok = false;
	snprintf(buf, n, "http://%s/fhir", ok ? host : app->cfg->listen);
}

static void add_header(struct http_response *resp, const char *name, const char *value)
{
	http_add_header(resp, name, value);
}

/* RFC 7231 date from a FHIR instant "YYYY-MM-DDThh:mm:ss(.sss)Z" (UTC, as
 * the store writes it), without the C library's time zone machinery. */
static bool http_date(const char *instant, char *out, size_t n)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	static const int shift[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
	if (!instant || strlen(instant) < 19 || n < 30)
		return false;
	const char *f = instant;
	for (int k = 0; k < 19; k++) {
		bool digit = f[k] >= '0' && f[k] <= '9';
		bool sep = k == 4 || k == 7 || k == 10 || k == 13 || k == 16;
		if (sep ? digit : !digit)
			return false;
	}
	int y = (f[0] - '0') * 1000 + (f[1] - '0') * 100 + (f[2] - '0') * 10 + (f[3] - '0');
	int mo = (f[5] - '0') * 10 + (f[6] - '0'), d = (f[8] - '0') * 10 + (f[9] - '0');
	if (mo < 1 || mo > 12 || d < 1 || d > 31)
		return false;
	int yy = mo < 3 ? y - 1 : y;
	int wd = (yy + yy / 4 - yy / 100 + yy / 400 + shift[mo - 1] + d) % 7;
	memcpy(out, days[wd], 3);
	out[3] = ',';
	out[4] = ' ';
	out[5] = f[8];
	out[6] = f[9];
	out[7] = ' ';
	memcpy(out + 8, months[mo - 1], 3);
	out[11] = ' ';
	memcpy(out + 12, f, 4);
	out[16] = ' ';
	memcpy(out + 17, f + 11, 8);
	memcpy(out + 25, " GMT", 5);
	return true;
}

static const char *meta_str(const cJSON *res, const char *key)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(res, "meta");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *str_member(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void set_version_headers(struct http_response *resp, const cJSON *res)
{
	const char *vid = meta_str(res, "versionId");
	char buf[128];
	if (vid) {
		snprintf(buf, sizeof buf, "W/\"%s\"", vid);
		add_header(resp, "ETag", buf);
	}
	if (http_date(meta_str(res, "lastUpdated"), buf, sizeof buf))
		add_header(resp, "Last-Modified", buf);
}

static void store_answer(const struct http_request *req, struct http_response *resp, enum store_status st,
			 const struct store_error *err)
{
	struct outcome oo = OUTCOME_INIT;
	const char *code = st == STORE_NOT_FOUND ? "not-found"
			   : st == STORE_GONE ? "deleted"
			   : st == STORE_VERSION_MISMATCH || st == STORE_CONFLICT ? "conflict"
			   : st == STORE_INVALID ? "invalid"
			   : st == STORE_BUSY ? "transient"
					      : "exception";
	outcome_add(&oo, OUTCOME_ERROR, code, NULL, "%s", err->message[0] ? err->message : store_status_text(st));
	api_fhir_send(req, resp, store_status_http(st), outcome_to_json(&oo));
	outcome_release(&oo);
}

enum prefer { PREFER_REPRESENTATION, PREFER_MINIMAL, PREFER_OUTCOME };

static enum prefer prefer_of(const struct http_request *req)
{
	const char *p = http_header(req, "Prefer");
	if (!p)
		return PREFER_REPRESENTATION;
	if (strstr(p, "return=minimal"))
		return PREFER_MINIMAL;
	if (strstr(p, "return=OperationOutcome"))
		return PREFER_OUTCOME;
	return PREFER_REPRESENTATION;
}

/* Answers a written resource (taken over) per Prefer. */
static void send_written(const struct app *app, const struct http_request *req, struct http_response *resp,
			 int status, cJSON *res, bool location)
{
	char loc[512], base[256];
	base_url(app, req, base, sizeof base);
	if (location)
		snprintf(loc, sizeof loc, "%s/%s/%s/_history/%s", base, str_member(res, "resourceType"),
			 str_member(res, "id"), meta_str(res, "versionId") ? meta_str(res, "versionId") : "1");
	enum prefer pf = prefer_of(req);
	if (pf == PREFER_MINIMAL) {
		http_set_body(resp, status, NULL, NULL, 0);
	} else if (pf == PREFER_OUTCOME) {
		struct outcome oo = OUTCOME_INIT;
		outcome_add(&oo, OUTCOME_INFORMATION, "informational", NULL, "%s/%s version %s stored",
			    str_member(res, "resourceType"), str_member(res, "id"), meta_str(res, "versionId"));
		api_fhir_send(req, resp, status, outcome_to_json(&oo));
		outcome_release(&oo);
	}
	set_version_headers(resp, res);
	if (location)
		add_header(resp, "Location", loc);
	if (pf == PREFER_REPRESENTATION)
		api_fhir_send(req, resp, status, res);
	else
		cJSON_Delete(res);
}

/* Validates res structurally and against the URL's type. */
static bool check_resource(const cJSON *res, const char *type, struct outcome *oo)
{
	const char *rt = str_member(res, "resourceType");
	if (type && (!rt || strcmp(rt, type) != 0)) {
		outcome_add(oo, OUTCOME_ERROR, "invalid", "resourceType", "the resource is a %.64s, not a %.64s",
			    rt ? rt : "(none)", type);
		return false;
	}
	return validate_resource(res, oo) == 0;
}

/* Runs the before-store hooks over *res. Returns 0, or the HTTP status to
 * answer with the hooks' issues in oo. */
static int run_hooks(const struct app *app, const struct http_request *req, enum cw_hook_point point, cJSON **res,
		     struct outcome *oo)
{
	if (!plugin_host_hook_count(app->plugins, point))
		return 0;
	struct arena arena;
	arena_init(&arena, 0);
	struct cw_ctx ctx;
	plugin_host_ctx(&ctx, app->plugins, &arena, oo, req);
	struct cw_hook_args args = {.point = point,
				    .method = req ? req->method : NULL,
				    .path = req ? req->path : NULL,
				    .type = str_member(*res, "resourceType")};
	enum cw_hook_result r = plugin_host_run_hooks(app->plugins, &ctx, &args, res);
	int status = r == CW_HOOK_STOP ? (ctx.status ? ctx.status : 422) : 0;
	arena_release(&arena);
	return status;
}

static int before_store(const struct app *app, const struct http_request *req, cJSON **res, struct outcome *oo)
{
	return run_hooks(app, req, CW_HOOK_BEFORE_STORE, res, oo);
}

/* after-response hooks over what came back: the resource, or each entry of a
 * Bundle; the resources of a batch or transaction response are answers in
 * turn (a search's Bundle among them: each of its entries). Returns 0 or the
 * status of a hook that stopped. */
static int after_response(const struct app *app, const struct http_request *req, cJSON **tree, struct outcome *oo)
{
	if (!plugin_host_hook_count(app->plugins, CW_HOOK_AFTER_RESPONSE) || !str_member(*tree, "resourceType"))
		return 0;
	if (strcmp(str_member(*tree, "resourceType"), "Bundle") != 0)
		return run_hooks(app, req, CW_HOOK_AFTER_RESPONSE, tree, oo);
	const char *bt = str_member(*tree, "type");
	bool answers = bt && (!strcmp(bt, "batch-response") || !strcmp(bt, "transaction-response"));
	cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(*tree, "entry"))
	{
		if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(e, "resource")))
			continue;
		/* detached while the hooks run: a hook may replace (and the host free) it */
		cJSON *cur = cJSON_DetachItemFromObjectCaseSensitive(e, "resource");
		int st = answers ? after_response(app, req, &cur, oo) : run_hooks(app, req, CW_HOOK_AFTER_RESPONSE, &cur, oo);
		if (cur)
			cJSON_AddItemToObject(e, "resource", cur);
		if (st)
			return st;
	}
	return 0;
}

static void send_outcome(const struct http_request *req, struct http_response *resp, int status,
			 struct outcome *oo)
{
	api_fhir_send(req, resp, status, outcome_to_json(oo));
	outcome_release(oo);
}

static bool check_type_id(const struct http_request *req, struct http_response *resp, const char *type,
			  const char *id)
{
	if (!model_resource(type)) {
		http_set_error(resp, 404, "not-supported", "'%.64s' is not a FHIR R4 resource type", type);
		return false;
	}
	if (id && id[0] == '$') {
		http_set_error(resp, 404, "not-supported", "no operation %.64s on %s", id, type);
		return false;
	}
	if (id && !valid_id(id)) {
		http_set_error(resp, 400, "value", "'%.80s' is not a valid FHIR id ([A-Za-z0-9-.]{1,64})", id);
		return false;
	}
	(void)req;
	return true;
}

/* ------------------------------------------------------------ upstream */

static bool url_safe(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == ',' || c == '|' || c == '/';
}

static void url_encode(char *out, size_t n, size_t *pos, const char *s)
{
	for (; *s && *pos + 4 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if (url_safe(c))
			out[(*pos)++] = (char)c;
		else
			*pos += (size_t)snprintf(out + *pos, n - *pos, "%%%02X", c);
	}
	out[*pos] = '\0';
}

struct qs {
	char buf[4096];
	size_t pos;
	bool overflow;
};

static int qs_add(void *ctx, const char *name, const char *value)
{
	struct qs *q = ctx;
	if (!strcmp(name, "_format") || !strcmp(name, "_pretty"))
		return 0;
	if (q->pos + strlen(name) * 3 + (value ? strlen(value) * 3 : 0) + 4 >= sizeof q->buf) {
		q->overflow = true;
		return -1;
	}
	char sep = q->pos ? '&' : '?';
	q->buf[q->pos++] = sep;
	url_encode(q->buf, sizeof q->buf, &q->pos, name);
	q->buf[q->pos++] = '=';
	url_encode(q->buf, sizeof q->buf, &q->pos, value ? value : "");
	return 0;
}

/* The headers of a request to the upstream. */
struct up_headers {
	char lines[8][1100];
	const char *h[10];
	size_t n;
};

/* Copies a client header the upstream may see, when its value is clean. */
static void pass_header(const struct http_request *req, const char *name, struct up_headers *uh)
{
	const char *v = http_header(req, name);
	if (!v || strlen(v) > 1024 || strpbrk(v, "\r\n"))
		return;
	snprintf(uh->lines[uh->n], sizeof uh->lines[0], "%s: %s", name, v);
	uh->h[uh->n] = uh->lines[uh->n];
	uh->n++;
}

/* Accept, the body's Content-Type (NULL: no body), and the client's
 * conditional and Prefer headers. */
static void upstream_headers(const struct http_request *req, const char *content_type, struct up_headers *uh)
{
	uh->n = 0;
	snprintf(uh->lines[uh->n], sizeof uh->lines[0], "Accept: application/fhir+json");
	uh->h[uh->n] = uh->lines[uh->n];
	uh->n++;
	if (content_type) {
		snprintf(uh->lines[uh->n], sizeof uh->lines[0], "Content-Type: %s", content_type);
		uh->h[uh->n] = uh->lines[uh->n];
		uh->n++;
	}
	pass_header(req, "If-Match", uh);
	pass_header(req, "If-None-Match", uh);
	pass_header(req, "If-None-Exist", uh);
	pass_header(req, "Prefer", uh);
	uh->h[uh->n] = NULL;
}

/* Readies a resource for the upstream: the structural validation, then the
 * before-upstream hooks (which may change or replace *res). Returns 0, or the
 * status to answer with the issues in oo. */
static int upstream_ready(const struct app *app, const struct http_request *req, cJSON **res, struct outcome *oo)
{
	if (validate_resource(*res, oo) != 0)
		return 400;
	return run_hooks(app, req, CW_HOOK_BEFORE_UPSTREAM, res, oo);
}

/* One exchange with the upstream: body (NULL: none) sent as content_type;
 * a JSON answer parsed, its URLs rewritten to the gateway's and the
 * after-response hooks run over it. Returns 0 with ur filled and *tree the
 * answer (NULL when empty), or the status to answer with issues in oo: 502
 * or 504 when the upstream did not answer, 502 when its body is not FHIR
 * JSON, a hook's. The caller releases ur either way. */
static int upstream_call(const struct app *app, const struct http_request *req, const char *method, const char *path,
			 const char *body, size_t blen, const char *content_type, struct upstream_response *ur,
			 cJSON **tree, struct outcome *oo)
{
	*tree = NULL;
	struct up_headers uh;
	upstream_headers(req, content_type, &uh);
	if (upstream_request(app->upstream, method, path, uh.h, body, blen, ur) != 0) {
		metrics_counter_add(METRICS_UPSTREAM_FAILED, 1);
		outcome_add(oo, OUTCOME_FATAL, ur->timed_out ? "timeout" : "transient", NULL,
			    "the upstream FHIR server did not answer: %s", ur->error);
		return ur->timed_out ? 504 : 502;
	}
	if (ur->status >= 300 && ur->status < 400 && ur->status != 304) {
		/* not followed, and its Location (perhaps another host) is not passed on */
		outcome_add(oo, OUTCOME_ERROR, "not-supported", NULL,
			    "the upstream answered %ld, a redirect, which is not followed", ur->status);
		return 502;
	}
	if (!ur->body || !ur->len)
		return 0;
	*tree = fjson_parse(ur->body, ur->len, NULL, NULL);
	if (!*tree) {
		outcome_add(oo, OUTCOME_FATAL, "transient", NULL, "the upstream answered %ld with a body that is not FHIR JSON",
			    ur->status);
		return 502;
	}
	char base[256];
	base_url(app, req, base, sizeof base);
	upstream_rewrite_urls(app->upstream, *tree, base);
	int hs = after_response(app, req, tree, oo);
	if (hs) {
		cJSON_Delete(*tree);
		*tree = NULL;
	}
	return hs;
}

/* Answers with the upstream's answer to method path: its status, its body
 * (see upstream_call) and its ETag, Last-Modified, Location and Retry-After. */
static void upstream_answer(const struct app *app, const struct http_request *req, struct http_response *resp,
			    const char *method, const char *path, const char *body, size_t blen,
			    const char *content_type)
{
	struct upstream_response ur;
	struct outcome oo = OUTCOME_INIT;
	cJSON *tree = NULL;
	int st = upstream_call(app, req, method, path, body, blen, content_type, &ur, &tree, &oo);
	if (st) {
		upstream_response_release(&ur);
		send_outcome(req, resp, st, &oo);
		return;
	}
	outcome_release(&oo);
	if (tree)
		http_set_json(resp, (int)ur.status, tree);
	else
		http_set_body(resp, (int)ur.status, NULL, NULL, 0);
	char base[256], url[1200];
	base_url(app, req, base, sizeof base);
	if (ur.etag[0])
		add_header(resp, "ETag", ur.etag);
	if (ur.last_modified[0])
		add_header(resp, "Last-Modified", ur.last_modified);
	if (ur.location[0])
		add_header(resp, "Location", upstream_rewrite_location(app->upstream, ur.location, base, url, sizeof url));
	if (ur.retry_after_s >= 0) {
		char ra[24];
		snprintf(ra, sizeof ra, "%ld", ur.retry_after_s);
		add_header(resp, "Retry-After", ra);
	}
	upstream_response_release(&ur);
}

/* Sends the request on to the upstream and answers with what comes back,
 * URLs rewritten to the gateway; a redirect, never followed, is a 502. The
 * body (JSON or XML) is read and checked like any write, then sent as JSON. */
static void forward(const struct app *app, struct http_request *req, struct http_response *resp)
{
	char path[8192];
	struct qs q = {.pos = 0};
	if (http_query_each(req, qs_add, &q) != 0 || q.overflow) {
		http_set_error(resp, 414, "too-costly", "the query is too long to pass on");
		return;
	}
	const char *rel = req->path + 5; /* after "/fhir" */
	while (*rel == '/')
		rel++;
	snprintf(path, sizeof path, "%s%s", rel, q.buf);
	char *body = NULL;
	size_t blen = 0;
	const char *ct = NULL;
	bool form = !strcmp(req->method, "POST") && strstr(req->path, "/_search");
	bool patch = !strcmp(req->method, "PATCH");
	if ((form || patch) && req->body_len) {
		/* a search form or a JSON Patch goes on as it came (the upstream
		 * checks it); not a resource the hooks could see */
		body = strndup(req->body, req->body_len);
		blen = req->body_len;
		ct = form ? "application/x-www-form-urlencoded" : "application/json-patch+json";
	} else if (!strcmp(req->method, "POST") || !strcmp(req->method, "PUT")) {
		cJSON *res = api_fhir_read_body(app, req, resp);
		if (!res)
			return;
		struct outcome oo = OUTCOME_INIT;
		int st = upstream_ready(app, req, &res, &oo);
		if (st) {
			cJSON_Delete(res);
			send_outcome(req, resp, st, &oo);
			return;
		}
		outcome_release(&oo);
		body = fjson_print(res, false, &blen);
		cJSON_Delete(res);
		if (!body) {
			http_set_error(resp, 500, "exception", "out of memory");
			return;
		}
		ct = "application/fhir+json";
	}
	upstream_answer(app, req, resp, req->method, path, body, blen, ct);
	free(body);
}

/* Types whose every request goes to the upstream as it is. */
static bool routed_upstream(const struct app *app, const char *type)
{
	return app->upstream && !strcmp(config_route(app->cfg, type), "pass-through");
}

/* Pass-through types go upstream; true when the request was answered. */
static bool pass_through(const struct app *app, struct http_request *req, struct http_response *resp,
			 const char *type)
{
	if (!routed_upstream(app, type))
		return false;
	forward(app, req, resp);
	return true;
}

/* Writes of this type are recorded for delivery upstream. */
static bool forwards(const struct app *app, const char *type, bool ingest)
{
	if (!app->outbox)
		return false;
	const char *route = config_route(app->cfg, type);
	return ingest || !strcmp(route, "store-and-forward");
}

/* 503 with Retry-After when the outbox is over its high-water mark. */
static bool outbox_refuses(const struct app *app, struct http_response *resp)
{
	long ra = 0;
	if (!outbox_full(app->outbox, &ra))
		return false;
	char v[24];
	snprintf(v, sizeof v, "%ld", ra);
	http_set_error(resp, 503, "transient", "the delivery queue to the upstream is full; try again later");
	add_header(resp, "Retry-After", v);
	return true;
}

/* ------------------------------------------------------------ search */

enum summary { SUMMARY_FALSE, SUMMARY_TRUE, SUMMARY_TEXT, SUMMARY_DATA };

static int summary_of(const char *value, enum summary *out)
{
	static const char *const names[] = {"false", "true", "text", "data"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (!strcmp(value, names[i])) {
			*out = (enum summary)i;
			return 0;
		}
	}
	return -1;
}

struct query {
	struct store_search_param params[64];
	size_t n;
	size_t count, offset;
	bool count_given;
	const char *sort;
	bool summary_count;
	enum summary summary; /* _summary=true|text|data */
	bool no_total;        /* _total=none */
	const char *elements;
	const char *includes[8];
	bool inc_iterate[8]; /* _include:iterate */
	size_t ninc;
	const char *revincludes[8];
	bool rev_iterate[8];
	size_t nrev;
	char *owned[200]; /* strings split off for modifiers */
	size_t nowned;
	char error[200];
};

static const char *qkeep(struct query *q, const char *s, size_t n)
{
	if (q->nowned == sizeof q->owned / sizeof *q->owned)
		return NULL;
	char *c = strndup(s, n);
	if (c)
		q->owned[q->nowned++] = c;
	return c;
}

/* Frees what q owns; a second call does nothing. */
static void query_release(struct query *q)
{
	for (size_t i = 0; i < q->nowned; i++)
		free(q->owned[i]);
	q->nowned = 0;
}

static int query_add(void *ctx, const char *name, const char *value)
{
	struct query *q = ctx;
	if (!value)
		value = "";
	if (!strcmp(name, "_format") || !strcmp(name, "_pretty"))
		return 0;
	if (!strcmp(name, "_count") || !strcmp(name, "_offset") || !strcmp(name, "_getpagesoffset")) {
		char *end;
		long v = strtol(value, &end, 10);
		if (!*value || *end || v < 0) {
			snprintf(q->error, sizeof q->error, "%s must be a non-negative integer", name);
			return -1;
		}
		if (!strcmp(name, "_count")) {
			q->count = (size_t)v > STORE_MAX_COUNT ? STORE_MAX_COUNT : (size_t)v;
			q->count_given = true;
		} else {
			q->offset = (size_t)v;
		}
		return 0;
	}
	if (!strcmp(name, "_sort")) {
		q->sort = qkeep(q, value, strlen(value));
		return 0;
	}
	if (!strcmp(name, "_summary")) {
		if (!strcmp(value, "count"))
			q->summary_count = true;
		else if (summary_of(value, &q->summary) != 0) {
			snprintf(q->error, sizeof q->error, "_summary=%.40s is not one of true, text, data, count, false",
				 value);
			return -1;
		}
		return 0;
	}
	if (!strcmp(name, "_total")) {
		if (strcmp(value, "none") && strcmp(value, "estimate") && strcmp(value, "accurate")) {
			snprintf(q->error, sizeof q->error, "_total=%.40s is not one of none, estimate, accurate", value);
			return -1;
		}
		q->no_total = !strcmp(value, "none");
		return 0;
	}
	if (!strcmp(name, "_elements")) {
		q->elements = qkeep(q, value, strlen(value));
		return 0;
	}
	if (!strncmp(name, "_include", 8) || !strncmp(name, "_revinclude", 11)) {
		bool inc = name[1] == 'i';
		const char *mod = name + (inc ? 8 : 11);
		bool iterate = !strcmp(mod, ":iterate") || !strcmp(mod, ":recurse");
		if (*mod && !iterate) {
			snprintf(q->error, sizeof q->error, "%.40s: the only modifier is :iterate", name);
			return -1;
		}
		size_t *n = inc ? &q->ninc : &q->nrev;
		if (*n == 8) {
			snprintf(q->error, sizeof q->error, "at most 8 %s", inc ? "_include" : "_revinclude");
			return -1;
		}
		(inc ? q->inc_iterate : q->rev_iterate)[*n] = iterate;
		(inc ? q->includes : q->revincludes)[(*n)++] = qkeep(q, value, strlen(value));
		return 0;
	}
	if (q->n == sizeof q->params / sizeof *q->params) {
		snprintf(q->error, sizeof q->error, "too many search parameters");
		return -1;
	}
	const char *colon = strchr(name, ':');
	struct store_search_param *p = &q->params[q->n++];
	p->name = colon ? qkeep(q, name, (size_t)(colon - name)) : qkeep(q, name, strlen(name));
	p->modifier = colon ? qkeep(q, colon + 1, strlen(colon + 1)) : NULL;
	p->value = qkeep(q, value, strlen(value));
	if (!p->name || !p->value || (colon && !p->modifier)) {
		snprintf(q->error, sizeof q->error, "out of memory");
		return -1;
	}
	return 0;
}

/* Decodes application/x-www-form-urlencoded text into q. */
static int query_from_form(struct query *q, const char *body, size_t len)
{
	char *copy = strndup(body, len);
	if (!copy)
		return -1;
	int rc = 0;
	char *save = NULL;
	for (char *pair = strtok_r(copy, "&", &save); pair && rc == 0; pair = strtok_r(NULL, "&", &save)) {
		for (char *p = pair; *p; p++)
			if (*p == '+')
				*p = ' ';
		/* percent-decoding in place */
		char *w = pair;
		for (char *r = pair; *r; r++) {
			if (*r == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2])) {
				char hex[3] = {r[1], r[2], 0};
				*w++ = (char)strtol(hex, NULL, 16);
				r += 2;
			} else {
				*w++ = *r;
			}
		}
		*w = '\0';
		char *eq = strchr(pair, '=');
		if (eq)
			*eq = '\0';
		rc = query_add(q, pair, eq ? eq + 1 : "");
	}
	free(copy);
	return rc;
}

/* Parses "a=b&c=d" (already in a URL) into q. */
static int query_from_string(struct query *q, const char *qs)
{
	return query_from_form(q, qs, strlen(qs));
}

/* Tags res as a subset of the resource (meta.tag SUBSETTED). */
static void mark_subsetted(cJSON *res)
{
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(res, "meta");
	if (!meta)
		meta = cJSON_AddObjectToObject(res, "meta");
	cJSON *tags = meta ? cJSON_GetObjectItemCaseSensitive(meta, "tag") : NULL;
	if (meta && !tags)
		tags = cJSON_AddArrayToObject(meta, "tag");
	cJSON *tag = tags ? cJSON_CreateObject() : NULL;
	if (tag) {
		cJSON_AddStringToObject(tag, "system", "http://terminology.hl7.org/CodeSystem/v3-ObservationValue");
		cJSON_AddStringToObject(tag, "code", "SUBSETTED");
		cJSON_AddItemToArray(tags, tag);
	}
}

/* _summary: true keeps the elements the specification marks as summary,
 * text keeps text, id, meta and the mandatory elements, data drops text
 * (all at the top level of the resource). false leaves res whole. */
static cJSON *summary_only(cJSON *res, enum summary mode)
{
	if (mode == SUMMARY_FALSE)
		return res;
	const struct model_type *t = model_resource(str_member(res, "resourceType"));
	for (cJSON *m = res->child; m && t;) {
		cJSON *next = m->next;
		const char *k = m->string, *base = k[0] == '_' ? k + 1 : k;
		const struct model_type *chosen;
		const struct model_elem *e = model_find_elem(t, base, strlen(base), &chosen);
		bool keep = !strcmp(k, "resourceType") || !strcmp(k, "id") || !strcmp(k, "meta");
		if (!keep && e)
			keep = mode == SUMMARY_TRUE   ? (e->flags & MODEL_F_SUMMARY) != 0
			       : mode == SUMMARY_TEXT ? !strcmp(base, "text") || e->min > 0
						      : strcmp(base, "text") != 0;
		if (!keep)
			cJSON_Delete(cJSON_DetachItemViaPointer(res, m));
		m = next;
	}
	mark_subsetted(res);
	return res;
}

static cJSON *elements_only(cJSON *res, const char *elements)
{
	cJSON *keep = cJSON_CreateObject();
	if (!keep)
		return res;
	for (cJSON *m = res->child; m;) {
		cJSON *next = m->next;
		const char *k = m->string;
		const char *base = k[0] == '_' ? k + 1 : k;
		bool wanted = !strcmp(k, "resourceType") || !strcmp(k, "id") || !strcmp(k, "meta");
		for (const char *e = elements; !wanted && e && *e;) {
			size_t n = strcspn(e, ",");
			if (n == strlen(base) && !strncmp(e, base, n))
				wanted = true;
			e += n;
			if (*e == ',')
				e++;
		}
		if (!wanted)
			cJSON_Delete(cJSON_DetachItemViaPointer(res, m));
		m = next;
	}
	cJSON_Delete(keep);
	mark_subsetted(res);
	return res;
}

static cJSON *bundle_new(const char *type)
{
	cJSON *b = cJSON_CreateObject();
	if (!b)
		return NULL;
	cJSON_AddStringToObject(b, "resourceType", "Bundle");
	char id[STORE_ID_SIZE];
	if (store_new_id(id) == 0)
		cJSON_AddStringToObject(b, "id", id);
	char now[STORE_TIME_SIZE];
	store_now(now, NULL);
	cJSON *meta = cJSON_AddObjectToObject(b, "meta");
	if (meta)
		cJSON_AddStringToObject(meta, "lastUpdated", now);
	cJSON_AddStringToObject(b, "type", type);
	return b;
}

static void add_link(cJSON *links, const char *rel, const char *url)
{
	cJSON *l = cJSON_CreateObject();
	if (!l)
		return;
	cJSON_AddStringToObject(l, "relation", rel);
	cJSON_AddStringToObject(l, "url", url);
	cJSON_AddItemToArray(links, l);
}

static bool bundle_has(const cJSON *entries, const char *type, const char *id)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, entries)
	{
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "resource");
		const char *rt = str_member(r, "resourceType"), *rid = str_member(r, "id");
		if (rt && rid && !strcmp(rt, type) && !strcmp(rid, id))
			return true;
	}
	return false;
}

static void add_entry(cJSON *entries, const char *base, cJSON *res, const char *mode)
{
	cJSON *e = cJSON_CreateObject();
	if (!e) {
		cJSON_Delete(res);
		return;
	}
	char url[512];
	snprintf(url, sizeof url, "%s/%s/%s", base, str_member(res, "resourceType"), str_member(res, "id"));
	cJSON_AddStringToObject(e, "fullUrl", url);
	cJSON_AddItemToObject(e, "resource", res);
	if (mode) {
		cJSON *s = cJSON_AddObjectToObject(e, "search");
		if (s)
			cJSON_AddStringToObject(s, "mode", mode);
	}
	cJSON_AddItemToArray(entries, e);
}

struct ref_collect {
	const char *param;
	char refs[64][160];
	size_t n;
};

static int collect_ref(void *ctx, const struct search_index_value *v)
{
	struct ref_collect *rc = ctx;
	if (v->kind != SEARCH_PARAM_REFERENCE || strcmp(v->param, rc->param) != 0 || rc->n == 64 || !v->val)
		return 0;
	/* references index as (type, id) */
	if (v->sys)
		snprintf(rc->refs[rc->n++], sizeof rc->refs[0], "%s/%s", v->sys, v->val);
	else
		snprintf(rc->refs[rc->n++], sizeof rc->refs[0], "%s", v->val);
	return 0;
}

/* Splits "Type:param[:Target]" into its parts (in buf); false when malformed. */
static bool include_spec(const char *text, char *buf, size_t n, const char **type, const char **param,
			 const char **target)
{
	snprintf(buf, n, "%s", text ? text : "");
	char *p1 = strchr(buf, ':');
	if (!p1)
		return false;
	*p1++ = '\0';
	char *p2 = strchr(p1, ':');
	if (p2)
		*p2++ = '\0';
	*type = buf;
	*param = p1;
	*target = p2;
	return model_resource(buf) && *p1;
}

#define INCLUDE_MAX 1000 /* resources _include/_revinclude may add to one page */
#define INCLUDE_ROUNDS 8 /* rounds of :iterate */

/* _include=Type:param[:Target] for the entries [from, to) of Type: the
 * resources they reference. Returns false when INCLUDE_MAX was reached. */
static bool include_round(const struct app *app, const char *text, cJSON *entries, const char *base, size_t from,
			  size_t to, size_t *added)
{
	char buf[160];
	const char *type, *param, *target;
	if (!include_spec(text, buf, sizeof buf, &type, &param, &target))
		return true;
	for (size_t i = from; i < to; i++) {
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, (int)i), "resource");
		if (strcmp(str_member(res, "resourceType") ? str_member(res, "resourceType") : "", type) != 0)
			continue;
		struct ref_collect rc = {.param = param};
		search_params_extract(type, res, collect_ref, &rc);
		for (size_t j = 0; j < rc.n; j++) {
			char rt[65], rid[65];
			if (!search_params_split_reference(rc.refs[j], rt, sizeof rt, rid, sizeof rid))
				continue;
			if ((target && strcmp(rt, target) != 0) || bundle_has(entries, rt, rid))
				continue;
			if (*added >= INCLUDE_MAX)
				return false;
			cJSON *got = NULL;
			struct store_error err;
			if (store_read(app->store, rt, rid, &got, &err) == STORE_OK) {
				add_entry(entries, base, got, "include");
				(*added)++;
			}
		}
	}
	return true;
}

/* _revinclude=Type:param[:Target] for the entries [from, to): the
 * resources of Type whose param references one of them. */
static bool revinclude_round(const struct app *app, const char *text, cJSON *entries, const char *base, size_t from,
			     size_t to, size_t *added)
{
	char buf[160];
	const char *type, *param, *target;
	if (!include_spec(text, buf, sizeof buf, &type, &param, &target))
		return true;
	for (size_t i = from; i < to; i++) {
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, (int)i), "resource");
		const char *rt = str_member(res, "resourceType"), *rid = str_member(res, "id");
		if (!rt || !rid || (target && strcmp(rt, target) != 0))
			continue;
		char ref[200];
		snprintf(ref, sizeof ref, "%s/%s", rt, rid);
		struct store_search_param sp = {param, NULL, ref};
		struct store_search sq = {.params = &sp, .n_params = 1, .count = STORE_MAX_COUNT, .no_total = true};
		struct store_page page = {0};
		struct store_error err;
		if (store_search(app->store, type, &sq, &page, &err) != STORE_OK)
			continue;
		bool room = true;
		for (size_t j = 0; j < page.n && room; j++) {
			cJSON *r = page.items[j].resource;
			if (!r || bundle_has(entries, type, page.items[j].id))
				continue;
			if (*added >= INCLUDE_MAX) {
				room = false;
				break;
			}
			page.items[j].resource = NULL;
			add_entry(entries, base, r, "include");
			(*added)++;
		}
		store_page_release(&page);
		if (!room)
			return false;
	}
	return true;
}

/* _include and _revinclude for the matches [0, nmatch) of entries, then
 * the :iterate ones again for what the previous round added, until a
 * round adds nothing (at most INCLUDE_ROUNDS rounds and INCLUDE_MAX
 * resources; reaching either is said in oo). */
static void do_includes(const struct app *app, const struct query *q, cJSON *entries, const char *base,
			struct outcome *oo)
{
	size_t from = 0, to = (size_t)cJSON_GetArraySize(entries), added = 0;
	bool room = true;
	for (int round = 0; room && from < to; round++) {
		if (round == INCLUDE_ROUNDS) {
			outcome_add(oo, OUTCOME_WARNING, "too-costly", NULL,
				    "_include:iterate stopped after %d rounds", INCLUDE_ROUNDS);
			break;
		}
		for (size_t k = 0; room && k < q->ninc; k++)
			if (round == 0 || q->inc_iterate[k])
				room = include_round(app, q->includes[k], entries, base, from, to, &added);
		for (size_t k = 0; room && k < q->nrev; k++)
			if (round == 0 || q->rev_iterate[k])
				room = revinclude_round(app, q->revincludes[k], entries, base, from, to, &added);
		from = to;
		to = (size_t)cJSON_GetArraySize(entries);
	}
	if (!room)
		outcome_add(oo, OUTCOME_WARNING, "too-costly", NULL,
			    "_include and _revinclude stopped at %d added resources", INCLUDE_MAX);
}

static void self_link(char *buf, size_t n, const char *base, const char *type, const struct query *q, size_t offset)
{
	size_t pos = (size_t)snprintf(buf, n, "%s/%s?", base, type);
	for (size_t i = 0; i < q->n && pos + 8 < n; i++) {
		url_encode(buf, n, &pos, q->params[i].name);
		if (q->params[i].modifier) {
			buf[pos++] = ':';
			url_encode(buf, n, &pos, q->params[i].modifier);
		}
		buf[pos++] = '=';
		url_encode(buf, n, &pos, q->params[i].value);
		if (pos + 1 < n) {
			buf[pos++] = '&';
			buf[pos] = '\0';
		}
	}
	if (pos < n)
		snprintf(buf + pos, n - pos, "_count=%zu&_offset=%zu", q->count, offset);
}

/* A page of a history: base[/Type[/id]]/_history?… */
static void history_link(char *buf, size_t n, const char *base, const char *type, const char *id,
			 const char *since, size_t count, size_t offset)
{
	size_t pos = (size_t)snprintf(buf, n, "%s%s%s%s%s/_history?", base, type ? "/" : "", type ? type : "",
				      id ? "/" : "", id ? id : "");
	if (since[0] && pos + 8 < n) {
		pos += (size_t)snprintf(buf + pos, n - pos, "_since=");
		url_encode(buf, n, &pos, since);
		if (pos + 1 < n) {
			buf[pos++] = '&';
			buf[pos] = '\0';
		}
	}
	if (pos < n)
		snprintf(buf + pos, n - pos, "_count=%zu&_offset=%zu", count, offset);
}

static void run_search(const struct app *app, const struct http_request *req, struct http_response *resp,
		       const char *type, struct query *q)
{
	if (!q->count_given)
		q->count = 20;
	/* Prefer: handling=lenient — parameters this server does not know for
	 * the type are left out (and said so in an outcome entry) instead of
	 * refusing the search */
	struct outcome notes = OUTCOME_INIT;
	const char *prefer = http_header(req, "Prefer");
	if (prefer && strstr(prefer, "handling=lenient")) {
		size_t keep = 0;
		for (size_t i = 0; i < q->n; i++) {
			/* a chain (subject.name) is judged by its first parameter */
			char first[65];
			snprintf(first, sizeof first, "%.*s", (int)strcspn(q->params[i].name, "."), q->params[i].name);
			if (search_params_find(type, first, NULL)) {
				q->params[keep++] = q->params[i];
				continue;
			}
			outcome_add(&notes, OUTCOME_WARNING, "not-supported", NULL,
				    "the search parameter '%.64s' is not supported for %s and was notes",
				    q->params[i].name, type);
		}
		q->n = keep;
	}
	struct store_search sq = {.params = q->params,
				  .n_params = q->n,
				  .count = q->summary_count ? 0 : q->count,
				  .no_total = q->no_total,
				  .offset = q->offset,
				  .sort = q->sort};
	struct store_page page = {0};
	struct store_error err = {0};
	enum store_status st = store_search(app->store, type, &sq, &page, &err);
	if (st != STORE_OK) {
		outcome_release(&notes);
		store_answer(req, resp, st, &err);
		return;
	}
	char base[256];
	base_url(app, req, base, sizeof base);
	cJSON *b = bundle_new("searchset");
	if (!b) {
		outcome_release(&notes);
		store_page_release(&page);
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	if (page.total != STORE_NO_TOTAL)
		cJSON_AddNumberToObject(b, "total", (double)page.total);
	cJSON *links = cJSON_AddArrayToObject(b, "link");
	char url[2048];
	self_link(url, sizeof url, base, type, q, q->offset);
	add_link(links, "self", url);
	/* without a total, a full page may have more behind it */
	bool more = page.total == STORE_NO_TOTAL ? page.n == q->count && q->count > 0 : q->offset + page.n < page.total;
	if (!q->summary_count && more) {
		self_link(url, sizeof url, base, type, q, q->offset + q->count);
		add_link(links, "next", url);
	}
	if (!q->summary_count && q->offset > 0) {
		self_link(url, sizeof url, base, type, q, q->offset > q->count ? q->offset - q->count : 0);
		add_link(links, "previous", url);
	}
	if (!q->summary_count) {
		cJSON *entries = cJSON_AddArrayToObject(b, "entry");
		for (size_t i = 0; i < page.n; i++) {
			cJSON *r = page.items[i].resource;
			if (!r)
				continue;
			page.items[i].resource = NULL;
			if (q->elements)
				r = elements_only(r, q->elements);
			else
				r = summary_only(r, q->summary);
			add_entry(entries, base, r, "match");
		}
		do_includes(app, q, entries, base, &notes);
		if (notes.n) {
			cJSON *e = cJSON_CreateObject();
			cJSON_AddItemToArray(entries, e);
			cJSON_AddItemToObject(e, "resource", outcome_to_json(&notes));
			cJSON_AddStringToObject(cJSON_AddObjectToObject(e, "search"), "mode", "outcome");
		}
		if (!cJSON_GetArraySize(entries))
			cJSON_DeleteItemFromObjectCaseSensitive(b, "entry");
	}
	outcome_release(&notes);
	outcome_release(&notes);
	store_page_release(&page);
	api_fhir_send(req, resp, 200, b);
}

static void get_search(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	const char *type = req->params[0];
	if (!check_type_id(req, resp, type, NULL) || pass_through(app, req, resp, type))
		return;
	struct query q;
	memset(&q, 0, sizeof q);
	if (http_query_each(req, query_add, &q) != 0) {
		http_set_error(resp, 400, "invalid", "%s", q.error[0] ? q.error : "bad query");
		query_release(&q);
		return;
	}
	run_search(app, req, resp, type, &q);
	query_release(&q);
}

static void post_search(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	const char *type = req->params[0];
	if (!check_type_id(req, resp, type, NULL) || pass_through(app, req, resp, type))
		return;
	const char *ct = http_header(req, "Content-Type");
	if (req->body_len && (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0)) {
		http_set_error(resp, 415, "not-supported", "_search takes application/x-www-form-urlencoded");
		return;
	}
	struct query q;
	memset(&q, 0, sizeof q);
	if (http_query_each(req, query_add, &q) != 0 || query_from_form(&q, req->body, req->body_len) != 0) {
		http_set_error(resp, 400, "invalid", "%s", q.error[0] ? q.error : "bad query");
		query_release(&q);
		return;
	}
	run_search(app, req, resp, type, &q);
	query_release(&q);
}

/* ------------------------------------------------------------ read, history */

/* If-None-Match names version vid (or "*"). */
static bool not_modified(const struct http_request *req, const char *vid)
{
	const char *inm = http_header(req, "If-None-Match");
	if (!inm || !vid)
		return false;
	char want[80];
	snprintf(want, sizeof want, "W/\"%s\"", vid);
	return !strcmp(inm, want) || !strcmp(inm, want + 2) || !strcmp(inm, "*");
}

/* If-Modified-Since (an HTTP date) is at or after lastUpdated, to the second. */
static bool not_modified_since(const struct http_request *req, const char *last_updated)
{
	const char *ims = http_header(req, "If-Modified-Since");
	char lm[64];
	if (!ims || !last_updated || !http_date(last_updated, lm, sizeof lm))
		return false;
	struct tm a = {0}, b = {0};
	const char *fmt = "%a, %d %b %Y %H:%M:%S GMT";
	if (!strptime(ims, fmt, &a) || !strptime(lm, fmt, &b))
		return false;
	return timegm(&b) <= timegm(&a);
}

static void read_common(const struct app *app, struct http_request *req, struct http_response *resp, const char *vid)
{
	const char *type = req->params[0], *id = req->params[1];
	if (!check_type_id(req, resp, type, id) || pass_through(app, req, resp, type))
		return;
	struct store_error err = {0};
	enum summary summary = SUMMARY_FALSE;
	const char *sv = http_query(req, "_summary");
	if (sv && summary_of(sv, &summary) != 0) {
		http_set_error(resp, 400, "invalid", "_summary=%.40s is not one of true, text, data, false on a read", sv);
		return;
	}
	if (req->format == FORMAT_JSON && !req->pretty && !http_query(req, "_elements") && summary == SUMMARY_FALSE) {
		/* the common case: the stored JSON text goes out as it is */
		struct store_text t;
		enum store_status st = store_read_text(app->store, type, id, vid, &t, &err);
		if (st != STORE_OK) {
			store_answer(req, resp, st, &err);
			return;
		}
		char version[24], etag[64], lm[64];
		snprintf(version, sizeof version, "%lld", (long long)t.version);
		snprintf(etag, sizeof etag, "W/\"%s\"", version);
		if (!vid && (not_modified(req, version) || not_modified_since(req, t.last_updated))) {
			free(t.text);
			http_set_body(resp, 304, NULL, NULL, 0);
		} else {
			http_set_body(resp, 200, "application/fhir+json; charset=utf-8", t.text, t.len);
		}
		add_header(resp, "ETag", etag);
		if (http_date(t.last_updated, lm, sizeof lm))
			add_header(resp, "Last-Modified", lm);
		return;
	}
	cJSON *res = NULL;
	enum store_status st = vid ? store_vread(app->store, type, id, vid, &res, &err)
				   : store_read(app->store, type, id, &res, &err);
	if (st != STORE_OK) {
		store_answer(req, resp, st, &err);
		return;
	}
	if (!vid && (not_modified(req, meta_str(res, "versionId")) || not_modified_since(req, meta_str(res, "lastUpdated")))) {
		http_set_body(resp, 304, NULL, NULL, 0);
		set_version_headers(resp, res);
		cJSON_Delete(res);
		return;
	}
	const char *elements = http_query(req, "_elements");
	if (elements)
		res = elements_only(res, elements);
	else
		res = summary_only(res, summary);
	set_version_headers(resp, res);
	api_fhir_send(req, resp, 200, res);
}

static void get_read(void *ctx, struct http_request *req, struct http_response *resp) { read_common(ctx, req, resp, NULL); }

static void get_vread(void *ctx, struct http_request *req, struct http_response *resp)
{
	read_common(ctx, req, resp, req->params[2]);
}

static void history_common(const struct app *app, struct http_request *req, struct http_response *resp,
			   const char *type, const char *id)
{
	struct query q;
	memset(&q, 0, sizeof q);
	if (http_query_each(req, query_add, &q) != 0) {
		http_set_error(resp, 400, "invalid", "%s", q.error);
		query_release(&q);
		return;
	}
	/* _since (an instant, or any date/dateTime: its start) is the only
	 * filter history takes; anything else is refused rather than ignored */
	int64_t since = STORE_ALL_TIME;
	for (size_t i = 0; i < q.n; i++) {
		const struct store_search_param *p = &q.params[i];
		int64_t lo, hi;
		if (strcmp(p->name, "_since") == 0 && !p->modifier && search_params_date_range(p->value, &lo, &hi)) {
			since = lo;
			continue;
		}
		http_set_error(resp, 400, strcmp(p->name, "_since") == 0 ? "invalid" : "not-supported",
			       strcmp(p->name, "_since") == 0 ? "_since takes an instant, such as 2024-05-01T09:30:00Z"
							    : "history takes _count, _offset and _since, not '%.64s'",
			       p->name);
		query_release(&q);
		return;
	}
	if (q.sort || q.summary_count || q.summary != SUMMARY_FALSE || q.no_total || q.elements || q.ninc || q.nrev) {
		http_set_error(resp, 400, "not-supported", "history takes _count, _offset and _since");
		query_release(&q);
		return;
	}
	size_t count = q.count_given ? q.count : 20, offset = q.offset;
	query_release(&q);
	struct store_page page = {0};
	struct store_error err = {0};
	enum store_status st = store_history(app->store, type, id, since, count, offset, &page, &err);
	if (st != STORE_OK) {
		store_answer(req, resp, st, &err);
		return;
	}
	char base[256];
	base_url(app, req, base, sizeof base);
	cJSON *b = bundle_new("history");
	if (!b) {
		store_page_release(&page);
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	cJSON_AddNumberToObject(b, "total", (double)page.total);
	char since_text[STORE_TIME_SIZE] = "", page_url[1024];
	if (since != STORE_ALL_TIME)
		store_time_text(since, since_text);
	cJSON *links = cJSON_AddArrayToObject(b, "link");
	history_link(page_url, sizeof page_url, base, type, id, since_text, count, offset);
	add_link(links, "self", page_url);
	if (offset + page.n < page.total) {
		history_link(page_url, sizeof page_url, base, type, id, since_text, count, offset + count);
		add_link(links, "next", page_url);
	}
	if (offset > 0) {
		history_link(page_url, sizeof page_url, base, type, id, since_text, count, offset > count ? offset - count : 0);
		add_link(links, "previous", page_url);
	}
	cJSON *entries = cJSON_AddArrayToObject(b, "entry");
	for (size_t i = 0; i < page.n; i++) {
		struct store_entry *it = &page.items[i];
		cJSON *e = cJSON_CreateObject();
		if (!e)
			break;
		char url[512];
		snprintf(url, sizeof url, "%s/%s/%s", base, it->type, it->id);
		cJSON_AddStringToObject(e, "fullUrl", url);
		if (it->resource) {
			cJSON_AddItemToObject(e, "resource", it->resource);
			it->resource = NULL;
		}
		cJSON *rq = cJSON_AddObjectToObject(e, "request");
		cJSON *rs = cJSON_AddObjectToObject(e, "response");
		const char *method = it->deleted ? "DELETE" : it->op == STORE_OP_CREATE ? "POST" : "PUT";
		char path[200];
		if (it->op == STORE_OP_CREATE && !it->deleted)
			snprintf(path, sizeof path, "%s", it->type);
		else
			snprintf(path, sizeof path, "%s/%s", it->type, it->id);
		if (rq) {
			cJSON_AddStringToObject(rq, "method", method);
			cJSON_AddStringToObject(rq, "url", path);
		}
		if (rs) {
			cJSON_AddStringToObject(rs, "status", it->deleted ? "204" : it->version == 1 ? "201" : "200");
			char etag[64];
			snprintf(etag, sizeof etag, "W/\"%lld\"", (long long)it->version);
			cJSON_AddStringToObject(rs, "etag", etag);
			cJSON_AddStringToObject(rs, "lastModified", it->last_updated);
		}
		cJSON_AddItemToArray(entries, e);
	}
	if (!cJSON_GetArraySize(entries))
		cJSON_DeleteItemFromObjectCaseSensitive(b, "entry");
	store_page_release(&page);
	api_fhir_send(req, resp, 200, b);
}

static void get_history_instance(void *ctx, struct http_request *req, struct http_response *resp)
{
	if (check_type_id(req, resp, req->params[0], req->params[1]) && !pass_through(ctx, req, resp, req->params[0]))
		history_common(ctx, req, resp, req->params[0], req->params[1]);
}

static void get_history_type(void *ctx, struct http_request *req, struct http_response *resp)
{
	if (check_type_id(req, resp, req->params[0], NULL) && !pass_through(ctx, req, resp, req->params[0]))
		history_common(ctx, req, resp, req->params[0], NULL);
}

static void get_history_system(void *ctx, struct http_request *req, struct http_response *resp)
{
	history_common(ctx, req, resp, NULL, NULL);
}

/* ------------------------------------------------------------ writes */

/* Records a written resource (its id and version) in the outbox. */
static enum store_status enqueue(const struct app *app, const cJSON *written, bool deleted, struct store_error *err)
{
	const char *type = str_member(written, "resourceType"), *id = str_member(written, "id");
	const char *vid = meta_str(written, "versionId");
	long long v = vid ? strtoll(vid, NULL, 10) : 0;
	if (!type || !id || v < 1)
		return store_fail(err, STORE_IO, "the written resource has no id or version");
	return store_outbox_add(app->store, type, id, v, deleted, err);
}

/* Commits the caller's transaction when st is OK (else rolls back) and wakes
 * the delivery worker. Returns the final status. */
static enum store_status finish_txn(const struct app *app, enum store_status st, struct store_error *err)
{
	struct store_error e2;
	if (st != STORE_OK) {
		store_rollback(app->store, &e2);
		return st;
	}
	st = store_commit(app->store, err);
	if (st == STORE_OK)
		outbox_kick(app->outbox);
	else
		store_rollback(app->store, &e2);
	return st;
}

/* Searches type with a query string; returns the match count (0, 1, 2 = many)
 * and the id of a single match. -1 with an answer on a bad query. */
/* How many resources of type match parsed criteria q (released here), and
 * the id of a single match; -1 with an issue in oo and *status the HTTP
 * status when the search fails. */
static long conditional_search(const struct app *app, const char *type, struct query *q, char id[STORE_ID_SIZE],
			       struct outcome *oo, int *status)
{
	struct store_search sq = {.params = q->params, .n_params = q->n, .count = 2};
	struct store_page page = {0};
	struct store_error err = {0};
	enum store_status st = store_search(app->store, type, &sq, &page, &err);
	query_release(q);
	if (st != STORE_OK) {
		outcome_add(oo, OUTCOME_ERROR, "invalid", NULL, "%s", err.message);
		*status = store_status_http(st);
		return -1;
	}
	long n = (long)page.total;
	if (n == 1 && page.n == 1)
		snprintf(id, STORE_ID_SIZE, "%s", page.items[0].id);
	store_page_release(&page);
	return n;
}

/* Conditional update, patch and delete: the request's query is the
 * criteria. The number of matches (the one match's id in id), or -1 when
 * it was answered already (no criteria: 400; bad criteria: their status). */
static long request_matches(const struct app *app, const struct http_request *req, struct http_response *resp,
			    const char *type, const char *what, char id[STORE_ID_SIZE])
{
	struct query q;
	memset(&q, 0, sizeof q);
	if (http_query_each(req, query_add, &q) != 0 || q.n == 0) {
		query_release(&q);
		http_set_error(resp, 400, "invalid", "a conditional %s needs search criteria", what);
		return -1;
	}
	struct outcome oo = OUTCOME_INIT;
	int cst = 400;
	long total = conditional_search(app, type, &q, id, &oo, &cst); /* releases q */
	if (total < 0)
		send_outcome(req, resp, cst, &oo);
	outcome_release(&oo);
	return total;
}

/* The same for criteria given as a query string (If-None-Exist,
 * request.ifNoneExist). */
static long conditional_match(const struct app *app, const char *type, const char *qs, char id[STORE_ID_SIZE],
			      struct outcome *oo, int *status)
{
	struct query q;
	memset(&q, 0, sizeof q);
	if (query_from_string(&q, qs) != 0 || q.n == 0) {
		outcome_add(oo, OUTCOME_ERROR, "invalid", NULL, "conditional criteria '%.100s': %s", qs,
			    q.error[0] ? q.error : "no search parameter");
		query_release(&q);
		*status = 400;
		return -1;
	}
	return conditional_search(app, type, &q, id, oo, status);
}

static cJSON *read_body(const struct app *app, const struct http_request *req, struct http_response *resp,
			const char *type)
{
	cJSON *res = api_fhir_read_body(app, req, resp);
	if (!res)
		return NULL;
	struct outcome oo = OUTCOME_INIT;
	if (!check_resource(res, type, &oo)) {
		cJSON_Delete(res);
		send_outcome(req, resp, 400, &oo);
		return NULL;
	}
	outcome_release(&oo);
	return res;
}

static void post_create(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	const char *type = req->params[0];
	if (!check_type_id(req, resp, type, NULL) || pass_through(app, req, resp, type))
		return;
	bool fwd = forwards(app, type, false);
	if (fwd && outbox_refuses(app, resp))
		return;
	cJSON *res = read_body(app, req, resp, type);
	if (!res)
		return;
	struct outcome oo = OUTCOME_INIT;
	const char *ine = http_header(req, "If-None-Exist");
	if (ine) {
		char id[STORE_ID_SIZE] = "";
		int cst = 400;
		long n = conditional_match(app, type, ine, id, &oo, &cst);
		if (n != 0) {
			cJSON_Delete(res);
			if (n < 0) {
				send_outcome(req, resp, cst, &oo);
				return;
			}
			if (n > 1) {
				outcome_add(&oo, OUTCOME_ERROR, "duplicate", NULL, "If-None-Exist matches more than one resource");
				send_outcome(req, resp, 412, &oo);
				return;
			}
			outcome_release(&oo);
			cJSON *found = NULL;
			struct store_error err = {0};
			enum store_status st = store_read(app->store, type, id, &found, &err);
			if (st != STORE_OK)
				store_answer(req, resp, st, &err);
			else
				send_written(app, req, resp, 200, found, false);
			return;
		}
	}
	int hs = before_store(app, req, &res, &oo);
	if (hs) {
		cJSON_Delete(res);
		send_outcome(req, resp, hs, &oo);
		return;
	}
	outcome_release(&oo);
	cJSON *out = NULL;
	struct store_error err = {0};
	enum store_status st = fwd ? store_begin(app->store, &err) : STORE_OK;
	if (st == STORE_OK)
		st = store_create(app->store, type, res, NULL, &out, &err);
	if (st == STORE_OK && fwd)
		st = enqueue(app, out, false, &err);
	if (fwd)
		st = finish_txn(app, st, &err);
	cJSON_Delete(res);
	if (st != STORE_OK) {
		cJSON_Delete(out);
		store_answer(req, resp, st, &err);
		return;
	}
	send_written(app, req, resp, 201, out, true);
}

static enum store_status write_version(const struct app *app, const struct http_request *req,
				       struct http_response *resp, const char *type, const char *id, cJSON *res,
				       const char *if_match, bool quiet_mismatch);

static void put_update(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	const char *type = req->params[0];
	const char *id = req->nparams > 1 ? req->params[1] : NULL;
	if (!check_type_id(req, resp, type, id) || pass_through(app, req, resp, type))
		return;
	bool fwd = forwards(app, type, false);
	if (fwd && outbox_refuses(app, resp))
		return;
	cJSON *res = read_body(app, req, resp, type);
	if (!res)
		return;
	struct outcome oo = OUTCOME_INIT;
	char found[STORE_ID_SIZE] = "";
	if (!id) {
		/* conditional update: PUT /fhir/Type?criteria */
		long total = request_matches(app, req, resp, type, "update", found);
		if (total < 0) {
			cJSON_Delete(res);
			return;
		}
		if (total > 1) {
			cJSON_Delete(res);
			http_set_error(resp, 412, "duplicate", "the criteria match %ld resources", total);
			return;
		}
		const char *bid = str_member(res, "id");
		if (total == 1 && bid && strcmp(bid, found) != 0) {
			cJSON_Delete(res);
			http_set_error(resp, 400, "invalid", "the resource id '%.64s' is not the matched '%s'", bid, found);
			return;
		}
		if (total == 0) {
			if (bid && valid_id(bid))
				snprintf(found, sizeof found, "%s", bid);
			else if (store_new_id(found) != 0) {
				cJSON_Delete(res);
				http_set_error(resp, 500, "exception", "no id");
				return;
			}
		}
		id = found;
		cJSON_DeleteItemFromObjectCaseSensitive(res, "id");
		cJSON_AddStringToObject(res, "id", id);
	} else {
		const char *bid = str_member(res, "id");
		if (!bid || strcmp(bid, id) != 0) {
			cJSON_Delete(res);
			http_set_error(resp, 400, "invalid", "the resource id must be present and equal '%s' (the URL's)", id);
			return;
		}
	}
	outcome_release(&oo);
	write_version(app, req, resp, type, id, res, http_header(req, "If-Match"), false);
}

/* Stores res (consumed) as the new version of type/id — through the
 * before-store hooks, with its outbox record when the type is forwarded —
 * and answers. if_match: the expected current version, or NULL. With
 * quiet_mismatch a version mismatch is returned without an answer (the
 * caller retries); every other outcome is answered. */
static enum store_status write_version(const struct app *app, const struct http_request *req,
				       struct http_response *resp, const char *type, const char *id, cJSON *res,
				       const char *if_match, bool quiet_mismatch)
{
	struct outcome oo = OUTCOME_INIT;
	int hs = before_store(app, req, &res, &oo);
	if (hs) {
		cJSON_Delete(res);
		send_outcome(req, resp, hs, &oo);
		return STORE_INVALID;
	}
	outcome_release(&oo);
	bool fwd = forwards(app, type, false);
	bool created = false;
	cJSON *out = NULL;
	struct store_error err = {0};
	enum store_status st = fwd ? store_begin(app->store, &err) : STORE_OK;
	if (st == STORE_OK)
		st = store_update(app->store, type, id, res, if_match, &created, &out, &err);
	if (st == STORE_OK && fwd)
		st = enqueue(app, out, false, &err);
	if (fwd)
		st = finish_txn(app, st, &err);
	cJSON_Delete(res);
	if (st != STORE_OK) {
		cJSON_Delete(out);
		if (!(quiet_mismatch && st == STORE_VERSION_MISMATCH))
			store_answer(req, resp, st, &err);
		return st;
	}
	send_written(app, req, resp, created ? 201 : 200, out, created);
	return STORE_OK;
}

/* PATCH /fhir/Type/id with a JSON Patch (RFC 6902). The patch applies to
 * the current version and the result is stored as the next one, checked as
 * any update. Without If-Match a concurrent write between reading and
 * writing makes the patch apply again to the newer version (a few times);
 * with If-Match a different current version is 412. */
static void patch_resource(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	const char *type = req->params[0], *id = req->nparams > 1 ? req->params[1] : NULL;
	if (!check_type_id(req, resp, type, id) || pass_through(app, req, resp, type))
		return;
	char found[STORE_ID_SIZE] = "";
	if (!id) {
		/* conditional patch, PATCH /fhir/Type?criteria: exactly one match */
		long total = request_matches(app, req, resp, type, "patch", found);
		if (total < 0)
			return;
		if (total != 1) {
			http_set_error(resp, total ? 412 : 404, total ? "multiple-matches" : "not-found",
				       "the criteria match %ld resources; a conditional patch needs exactly one", total);
			return;
		}
		id = found;
	}
	const char *ct = http_header(req, "Content-Type");
	if (!ct || strncasecmp(ct, "application/json-patch+json", 27) != 0 ||
	    (ct[27] && ct[27] != ';' && ct[27] != ' ')) {
		http_set_error(resp, 415, "not-supported",
			       "PATCH takes a JSON Patch (Content-Type application/json-patch+json), not '%.80s'",
			       ct ? ct : "(none)");
		return;
	}
	if (forwards(app, type, false) && outbox_refuses(app, resp))
		return;
	struct fjson_limits lim;
	config_json_limits(app->cfg, &lim);
	struct fjson_error fe;
	cJSON *patch = req->body_len ? fjson_parse(req->body, req->body_len, &lim, &fe) : NULL;
	if (!patch) {
		http_set_error(resp, req->body_len ? fe.status : 400, req->body_len ? "structure" : "required", "%s",
			       req->body_len ? fe.message : "the request has no body");
		return;
	}
	const char *if_match = http_header(req, "If-Match");
	for (int attempt = 0; attempt < 5; attempt++) {
		cJSON *res = NULL;
		struct store_error err = {0};
		enum store_status st = store_read(app->store, type, id, &res, &err);
		if (st != STORE_OK) {
			store_answer(req, resp, st, &err);
			break;
		}
		char version[40];
		snprintf(version, sizeof version, "%s", meta_str(res, "versionId") ? meta_str(res, "versionId") : "");
		char msg[256];
		enum json_patch_status ps = json_patch_apply(res, patch, msg, sizeof msg);
		if (ps != JSON_PATCH_OK) {
			cJSON_Delete(res);
			http_set_error(resp, ps == JSON_PATCH_MALFORMED ? 400 : ps == JSON_PATCH_FAILED ? 422 : 500,
				       ps == JSON_PATCH_FAILED ? "processing" : ps == JSON_PATCH_MALFORMED ? "invalid" : "exception",
				       "the patch cannot be applied: %s", msg);
			break;
		}
		struct outcome oo = OUTCOME_INIT;
		const char *rid = str_member(res, "id");
		if (!rid || strcmp(rid, id) != 0) {
			outcome_add(&oo, OUTCOME_ERROR, "processing", "id", "a patch cannot change or remove the id");
		} else if (!check_resource(res, type, &oo)) {
			/* the patch was well formed; the resource it makes is not valid */
		} else {
			outcome_release(&oo);
			st = write_version(app, req, resp, type, id, res, if_match ? if_match : version, !if_match);
			if (st == STORE_VERSION_MISMATCH && !if_match)
				continue; /* written meanwhile: apply to the newer version */
			break;
		}
		cJSON_Delete(res);
		send_outcome(req, resp, 422, &oo);
		break;
	}
	if (!resp->status)
		http_set_error(resp, 409, "conflict", "the resource kept changing while the patch was applied; try again");
	cJSON_Delete(patch);
}

static void delete_resource(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	const char *type = req->params[0], *id = req->nparams > 1 ? req->params[1] : NULL;
	if (!check_type_id(req, resp, type, id) || pass_through(app, req, resp, type))
		return;
	bool fwd = forwards(app, type, false);
	if (fwd && outbox_refuses(app, resp))
		return;
	char found[STORE_ID_SIZE] = "";
	if (!id) {
		/* conditional delete, DELETE /fhir/Type?criteria: one match is
		 * deleted; none is not an error; several are 412 (one at a time) */
		long total = request_matches(app, req, resp, type, "delete", found);
		if (total < 0)
			return;
		if (total > 1) {
			http_set_error(resp, 412, "multiple-matches", "the criteria match %ld resources; delete them one by one",
				       total);
			return;
		}
		if (total == 0) {
			struct outcome oo = OUTCOME_INIT;
			outcome_add(&oo, OUTCOME_INFORMATION, "informational", NULL, "nothing matched: nothing was deleted");
			send_outcome(req, resp, 200, &oo);
			return;
		}
		id = found;
	}
	int64_t version = 0;
	struct store_error err = {0};
	enum store_status st = fwd ? store_begin(app->store, &err) : STORE_OK;
	if (st == STORE_OK)
		st = store_delete(app->store, type, id, &version, &err);
	bool gone = st == STORE_GONE;
	if (gone)
		st = STORE_OK; /* deleting twice is not an error */
	if (st == STORE_OK && fwd && !gone)
		st = store_outbox_add(app->store, type, id, version, true, &err);
	if (fwd)
		st = finish_txn(app, st, &err);
	if (st != STORE_OK) {
		store_answer(req, resp, st, &err);
		return;
	}
	if (version > 0) {
		char etag[64];
		snprintf(etag, sizeof etag, "W/\"%lld\"", (long long)version);
		add_header(resp, "ETag", etag);
	}
	struct outcome oo = OUTCOME_INIT;
	outcome_add(&oo, OUTCOME_INFORMATION, "informational", NULL, "%s/%s deleted", type, id);
	send_outcome(req, resp, 200, &oo);
}

/* ------------------------------------------------------------ batch, transaction */

struct entry_plan {
	const cJSON *entry;
	const char *method;
	char type[STORE_TYPE_SIZE];
	char id[STORE_ID_SIZE];
	char url[512];
	const char *query; /* after '?' in url, or NULL */
	cJSON *resource;   /* owned copy, references rewritten */
	cJSON *response;   /* the response entry */
	int order;
	bool upstream;     /* a pass-through type: goes to the upstream */
	bool written;      /* the store changed: outbox material */
	bool written_deleted;
	char written_id[STORE_ID_SIZE];
	int64_t written_version;
};

static int run_entry_write(const struct app *app, const struct http_request *req, struct entry_plan *p,
			   bool hooks_done, const char *base, struct outcome *oo);

struct urn_map {
	const char *urn;
	char ref[STORE_TYPE_SIZE + STORE_ID_SIZE + 2];
};

static void rewrite_refs(cJSON *node, const struct urn_map *map, size_t n)
{
	for (cJSON *c = node ? node->child : NULL; c; c = c->next) {
		if (cJSON_IsString(c) && c->string && !strcmp(c->string, "reference")) {
			for (size_t i = 0; i < n; i++) {
				if (map[i].urn && !strcmp(c->valuestring, map[i].urn)) {
					cJSON_SetValuestring(c, map[i].ref);
					break;
				}
			}
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			rewrite_refs(c, map, n);
		}
	}
}

static cJSON *response_entry(const char *status, const char *location, const cJSON *res, bool include_resource)
{
	cJSON *e = cJSON_CreateObject();
	cJSON *r = e ? cJSON_AddObjectToObject(e, "response") : NULL;
	if (!r)
		return e;
	cJSON_AddStringToObject(r, "status", status);
	if (location)
		cJSON_AddStringToObject(r, "location", location);
	if (res) {
		const char *vid = meta_str(res, "versionId"), *lu = meta_str(res, "lastUpdated");
		if (vid) {
			char etag[64];
			snprintf(etag, sizeof etag, "W/\"%s\"", vid);
			cJSON_AddStringToObject(r, "etag", etag);
		}
		if (lu)
			cJSON_AddStringToObject(r, "lastModified", lu);
		if (include_resource) {
			cJSON *copy = cJSON_Duplicate(res, 1);
			if (copy)
				cJSON_AddItemToObject(e, "resource", copy);
		}
	}
	return e;
}

/* A failed entry's response: its status and outcome (taken over). */
static cJSON *status_entry(int status, cJSON *outcome)
{
	char code[16];
	snprintf(code, sizeof code, "%d", status);
	cJSON *e = cJSON_CreateObject();
	cJSON *r = e ? cJSON_AddObjectToObject(e, "response") : NULL;
	if (r) {
		cJSON_AddStringToObject(r, "status", code);
		if (outcome && cJSON_AddItemToObject(r, "outcome", outcome))
			outcome = NULL;
	}
	cJSON_Delete(outcome);
	return e;
}

static cJSON *outcome_entry(int status, struct outcome *oo)
{
	return status_entry(status, outcome_to_json(oo));
}

static int method_order(const char *m)
{
	return !strcmp(m, "DELETE") ? 0 : !strcmp(m, "POST") ? 1 : !strcmp(m, "PUT") ? 2 : 3;
}

static bool known_method(const char *m)
{
	return m && (!strcmp(m, "GET") || !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "DELETE"));
}

/* An entry's request.url, without the gateway's own base when it names it. */
static const char *entry_url(const cJSON *entry, const char *base)
{
	const char *url = str_member(cJSON_GetObjectItemCaseSensitive(entry, "request"), "url");
	size_t bl = strlen(base);
	if (url && !strncmp(url, base, bl) && url[bl] == '/')
		url += bl + 1;
	return url;
}

/* The resource type a relative URL starts with, into type; false when it
 * names none. */
static bool url_type(const char *url, char type[STORE_TYPE_SIZE])
{
	size_t n = strcspn(url, "/?");
	if (n >= STORE_TYPE_SIZE)
		n = 0;
	memcpy(type, url, n);
	type[n] = '\0';
	return n && model_resource(type);
}

/* Readies an entry of a Bundle for the upstream, in place: request.url
 * without the gateway's base, a POST or PUT resource through upstream_ready.
 * Returns 0, or the status with issues in oo. */
static int ready_entry(const struct app *app, const struct http_request *req, cJSON *entry, const char *base,
		       struct outcome *oo)
{
	cJSON *rq = cJSON_GetObjectItemCaseSensitive(entry, "request");
	const char *method = str_member(rq, "method"), *url = str_member(rq, "url"), *rel = entry_url(entry, base);
	if (rel != url && !cJSON_ReplaceItemInObjectCaseSensitive(rq, "url", cJSON_CreateString(rel))) {
		outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		return 500;
	}
	if (strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0)
		return 0;
	cJSON *res = cJSON_DetachItemFromObjectCaseSensitive(entry, "resource");
	int st = upstream_ready(app, req, &res, oo);
	if (res)
		cJSON_AddItemToObject(entry, "resource", res);
	return st;
}

/* The entries of a batch for pass-through types go to the upstream together,
 * as one batch; each gets the upstream's answer to it, or its own refusal,
 * or the failure of the exchange as its response. */
static void upstream_batch(const struct app *app, const struct http_request *req, struct entry_plan *plans, size_t n,
			   const char *base)
{
	cJSON *sub = bundle_new("batch");
	cJSON *list = sub ? cJSON_AddArrayToObject(sub, "entry") : NULL;
	size_t sent = 0;
	for (size_t i = 0; i < n; i++) {
		struct entry_plan *p = &plans[i];
		if (!p->upstream)
			continue;
		struct outcome eo = OUTCOME_INIT;
		cJSON *copy = list ? cJSON_Duplicate(p->entry, 1) : NULL;
		int st = copy ? ready_entry(app, req, copy, base, &eo) : 500;
		if (!copy)
			outcome_add(&eo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		if (st) {
			cJSON_Delete(copy);
			p->response = outcome_entry(st, &eo);
		} else {
			cJSON_AddItemToArray(list, copy);
			sent++;
		}
		outcome_release(&eo);
	}
	size_t blen = 0;
	char *body = sent ? fjson_print(sub, false, &blen) : NULL;
	cJSON_Delete(sub);
	if (!sent)
		return;
	struct upstream_response ur = {0};
	struct outcome oo = OUTCOME_INIT;
	cJSON *tree = NULL;
	int st = body ? upstream_call(app, req, "POST", "", body, blen, "application/fhir+json", &ur, &tree, &oo) : 500;
	if (!body)
		outcome_add(&oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
	free(body);
	cJSON *answers = cJSON_GetObjectItemCaseSensitive(tree, "entry");
	cJSON *failure = NULL; /* the outcome each entry gets when the batch as a whole failed */
	const char *bt = str_member(tree, "type");
	if (st) {
		failure = outcome_to_json(&oo);
	} else if (ur.status != 200 || !bt || strcmp(bt, "batch-response") != 0 ||
		   (size_t)cJSON_GetArraySize(answers) != sent) {
		st = ur.status >= 400 ? (int)ur.status : 502;
		if (str_member(tree, "resourceType") && !strcmp(str_member(tree, "resourceType"), "OperationOutcome")) {
			failure = tree;
			tree = NULL;
		} else {
			outcome_add(&oo, OUTCOME_ERROR, st == 502 ? "transient" : "exception", NULL,
				    "the upstream answered %ld without a batch-response for the %zu entries sent", ur.status,
				    sent);
			failure = outcome_to_json(&oo);
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct entry_plan *p = &plans[i];
		if (!p->upstream || p->response)
			continue;
		p->response = st ? status_entry(st, cJSON_Duplicate(failure, 1)) : cJSON_DetachItemFromArray(answers, 0);
	}
	cJSON_Delete(failure);
	cJSON_Delete(tree);
	outcome_release(&oo);
	upstream_response_release(&ur);
}

/* Runs one planned entry. Returns 0 and fills p->response, or the HTTP
 * status of its failure with issues in oo. */
static int run_entry(const struct app *app, const struct http_request *req, struct entry_plan *p, bool hooks_done,
		     const char *base, struct outcome *oo)
{
	int st = run_entry_write(app, req, p, hooks_done, base, oo);
	if (st || !p->written || !forwards(app, p->type, hooks_done))
		return st;
	struct store_error err = {0};
	if (store_outbox_add(app->store, p->type, p->written_id, p->written_version, p->written_deleted, &err) !=
	    STORE_OK) {
		outcome_add(oo, OUTCOME_ERROR, "exception", NULL, "%s", err.message);
		return 500;
	}
	return 0;
}

static int run_entry_write(const struct app *app, const struct http_request *req, struct entry_plan *p,
			   bool hooks_done, const char *base, struct outcome *oo)
{
	struct store_error err = {0};
	enum store_status st;
	char loc[700];
	if (!strcmp(p->method, "GET")) {
		if (!p->id[0]) {
			outcome_add(oo, OUTCOME_ERROR, "not-supported", NULL, "GET entries read one resource (Type/id)");
			return 400;
		}
		cJSON *res = NULL;
		st = store_read(app->store, p->type, p->id, &res, &err);
		if (st != STORE_OK) {
			outcome_add(oo, OUTCOME_ERROR, "not-found", NULL, "%s", err.message);
			return store_status_http(st);
		}
		p->response = response_entry("200", NULL, res, true);
		cJSON_Delete(res);
		return 0;
	}
	if (!strcmp(p->method, "DELETE")) {
		int64_t v = 0;
		st = store_delete(app->store, p->type, p->id, &v, &err);
		if (st != STORE_OK && st != STORE_GONE && st != STORE_NOT_FOUND) {
			outcome_add(oo, OUTCOME_ERROR, "exception", NULL, "%s", err.message);
			return store_status_http(st);
		}
		if (st == STORE_OK) {
			p->written = p->written_deleted = true;
			snprintf(p->written_id, sizeof p->written_id, "%s", p->id);
			p->written_version = v;
		}
		p->response = response_entry("204", NULL, NULL, false);
		return 0;
	}
	if (!hooks_done) {
		int hs = before_store(app, req, &p->resource, oo);
		if (hs)
			return hs;
	}
	if (!check_resource(p->resource, p->type, oo))
		return 400;
	cJSON *out = NULL;
	bool created = true;
	if (!strcmp(p->method, "POST")) {
		const cJSON *rq = cJSON_GetObjectItemCaseSensitive(p->entry, "request");
		const char *ine = str_member(rq, "ifNoneExist");
		if (ine) {
			char found[STORE_ID_SIZE] = "";
			int cst = 400;
			long n = conditional_match(app, p->type, ine, found, oo, &cst);
			if (n < 0)
				return cst;
			if (n > 1) {
				outcome_add(oo, OUTCOME_ERROR, "duplicate", NULL, "ifNoneExist matches more than one resource");
				return 412;
			}
			if (n == 1) {
				cJSON *res = NULL;
				if (store_read(app->store, p->type, found, &res, &err) != STORE_OK) {
					outcome_add(oo, OUTCOME_ERROR, "exception", NULL, "%s", err.message);
					return 500;
				}
				snprintf(loc, sizeof loc, "%s/%s/%s/_history/%s", base, p->type, found, meta_str(res, "versionId"));
				p->response = response_entry("200", loc, res, false);
				cJSON_Delete(res);
				return 0;
			}
		}
		st = store_create(app->store, p->type, p->resource, p->id, &out, &err);
	} else {
		const cJSON *rq = cJSON_GetObjectItemCaseSensitive(p->entry, "request");
		st = store_update(app->store, p->type, p->id, p->resource, str_member(rq, "ifMatch"), &created, &out, &err);
	}
	if (st != STORE_OK) {
		outcome_add(oo, OUTCOME_ERROR, st == STORE_VERSION_MISMATCH ? "conflict" : "exception", NULL, "%s",
			    err.message);
		return store_status_http(st);
	}
	snprintf(loc, sizeof loc, "%s/%s/%s/_history/%s", base, p->type, str_member(out, "id"), meta_str(out, "versionId"));
	p->response = response_entry(created ? "201" : "200", loc, out, false);
	p->written = true;
	snprintf(p->written_id, sizeof p->written_id, "%s", str_member(out, "id"));
	p->written_version = strtoll(meta_str(out, "versionId") ? meta_str(out, "versionId") : "0", NULL, 10);
	cJSON_Delete(out);
	return 0;
}

static int plan_cmp(const void *a, const void *b)
{
	const struct entry_plan *x = a, *y = b;
	if (x->order != y->order)
		return x->order - y->order;
	return x < y ? -1 : x > y;
}

/* A batch or transaction, planned. */
struct bundle_plan {
	bool tx;
	size_t n, nmap, nup; /* entries, urn:uuid mappings, entries for pass-through types */
	struct entry_plan *plans;
	struct urn_map *map;
	char base[256];
};

static void plan_release(struct bundle_plan *bp)
{
	for (size_t i = 0; bp->plans && i < bp->n; i++) {
		cJSON_Delete(bp->plans[i].resource);
		cJSON_Delete(bp->plans[i].response);
	}
	free(bp->plans);
	free(bp->map);
	bp->plans = NULL;
	bp->map = NULL;
}

/* Plans a batch or transaction Bundle (not consumed; bp points into it):
 * each entry's method, type and id; a local write gets an owned copy of its
 * resource, its id now and its urn:uuid references resolved. Entries for
 * pass-through types are marked upstream (unless hooks_done: ingest stores
 * every type); a transaction cannot mix them with local ones. false with
 * issues in oo and *status set; bp is released by the caller either way. */
static bool plan_bundle(const struct app *app, const struct http_request *req, const cJSON *bundle, bool hooks_done,
			struct bundle_plan *bp, struct outcome *oo, int *status)
{
	memset(bp, 0, sizeof *bp);
	*status = 400;
	const char *btype = str_member(bundle, "type");
	bp->tx = btype && !strcmp(btype, "transaction");
	if (!btype || (!bp->tx && strcmp(btype, "batch") != 0)) {
		outcome_add(oo, OUTCOME_ERROR, "invalid", "Bundle.type", "POST /fhir takes a batch or transaction Bundle");
		return false;
	}
	const cJSON *entries = cJSON_GetObjectItemCaseSensitive(bundle, "entry");
	size_t n = (size_t)cJSON_GetArraySize(entries);
	bp->plans = calloc(n ? n : 1, sizeof *bp->plans);
	bp->map = calloc(n ? n : 1, sizeof *bp->map);
	if (!bp->plans || !bp->map) {
		*status = 500;
		outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		return false;
	}
	bp->n = n;
	struct entry_plan *plans = bp->plans;
	struct urn_map *map = bp->map;
	base_url(app, req, bp->base, sizeof bp->base);
	bool ok = true;
	size_t first_up = 0;
	/* plan: method, url, ids; urn:uuid fullUrls get their ids now */
	for (size_t i = 0; i < n && ok; i++) {
		struct entry_plan *p = &plans[i];
		p->entry = cJSON_GetArrayItem(entries, (int)i);
		p->method = str_member(cJSON_GetObjectItemCaseSensitive(p->entry, "request"), "method");
		const char *url = entry_url(p->entry, bp->base);
		char where[64];
		snprintf(where, sizeof where, "Bundle.entry[%zu].request", i);
		if (!known_method(p->method) || !url) {
			outcome_add(oo, OUTCOME_ERROR, "required", where, "each entry needs request.method (GET, POST, PUT, DELETE) and url");
			ok = false;
			break;
		}
		bool typed = url_type(url, p->type);
		p->upstream = typed && !hooks_done && routed_upstream(app, p->type);
		snprintf(p->url, sizeof p->url, "%s", url);
		char *qm = strchr(p->url, '?');
		if (qm) {
			*qm = '\0';
			p->query = qm + 1;
		}
		char *slash = strchr(p->url, '/');
		const char *id = slash ? slash + 1 : "";
		/* locally Type or Type/id; a pass-through entry may name whatever the
		 * upstream serves (searches, conditional writes) */
		if (!p->upstream && (!typed || (*id && !valid_id(id)))) {
			outcome_add(oo, OUTCOME_ERROR, "invalid", where, "request.url '%.100s' is not Type or Type/id", url);
			ok = false;
			break;
		}
		snprintf(p->id, sizeof p->id, "%s", id);
		if (!p->upstream && (!strcmp(p->method, "PUT") || !strcmp(p->method, "DELETE")) && !p->id[0]) {
			outcome_add(oo, OUTCOME_ERROR, "not-supported", where, "%s needs Type/id", p->method);
			ok = false;
			break;
		}
		p->order = method_order(p->method);
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(p->entry, "resource");
		if ((!strcmp(p->method, "POST") || !strcmp(p->method, "PUT")) && !cJSON_IsObject(res)) {
			outcome_add(oo, OUTCOME_ERROR, "required", where, "%s needs a resource", p->method);
			ok = false;
			break;
		}
		if (p->upstream) {
			if (!bp->nup++)
				first_up = i;
			continue;
		}
		if (!strcmp(p->method, "POST") || !strcmp(p->method, "PUT")) {
			p->resource = cJSON_Duplicate(res, 1);
			if (!p->resource) {
				*status = 500;
				ok = false;
				break;
			}
			if (!strcmp(p->method, "POST") && store_new_id(p->id) != 0) {
				*status = 500;
				ok = false;
				break;
			}
			if (!strcmp(p->method, "POST")) {
				cJSON_DeleteItemFromObjectCaseSensitive(p->resource, "id");
				cJSON_AddStringToObject(p->resource, "id", p->id);
			}
			const char *full = str_member(p->entry, "fullUrl");
			if (full && !strncmp(full, "urn:uuid:", 9)) {
				map[bp->nmap].urn = full;
				snprintf(map[bp->nmap].ref, sizeof map[bp->nmap].ref, "%s/%s", p->type, p->id);
				bp->nmap++;
			}
		}
	}
	if (ok && bp->tx && bp->nup && bp->nup < n) {
		char where[64];
		snprintf(where, sizeof where, "Bundle.entry[%zu].request", first_up);
		outcome_add(oo, OUTCOME_ERROR, "not-supported", where,
			    "%s is passed through to the upstream server, and a transaction cannot mix it with types stored "
			    "here: the two servers cannot commit atomically together. Send the pass-through entries as "
			    "their own transaction",
			    plans[first_up].type);
		ok = false;
	}
	for (size_t i = 0; ok && i < n; i++)
		if (plans[i].resource)
			rewrite_refs(plans[i].resource, map, bp->nmap);
	return ok;
}

/* Runs a planned batch or transaction: the local entries against the store
 * (a transaction atomically), a batch's pass-through entries on the upstream
 * (upstream_batch). Returns the response Bundle, or NULL with issues in oo
 * and *status set. */
static cJSON *run_plan(const struct app *app, const struct http_request *req, struct bundle_plan *bp, bool hooks_done,
		       struct outcome *oo, int *status)
{
	size_t n = bp->n;
	struct entry_plan *plans = bp->plans;
	bool tx = bp->tx, ok = true;
	const char *base = bp->base;
	cJSON *out = NULL;
	/* ifNoneExist matches resolve to existing ids: handled in run_entry */
	struct entry_plan **order = calloc(n ? n : 1, sizeof *order);
	if (!order) {
		ok = false;
		*status = 500;
	}
	for (size_t i = 0; ok && i < n; i++)
		order[i] = &plans[i];
	/* stable by method order */
	for (size_t i = 1; ok && i < n; i++)
		for (size_t j = i; j > 0 && plan_cmp(order[j - 1], order[j]) > 0; j--) {
			struct entry_plan *t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	struct store_error err = {0};
	if (ok && tx && store_begin(app->store, &err) != STORE_OK) {
		outcome_add(oo, OUTCOME_ERROR, "exception", NULL, "%s", err.message);
		*status = 500;
		ok = false;
	}
	for (size_t i = 0; ok && i < n; i++) {
		struct entry_plan *p = order[i];
		if (p->upstream)
			continue;
		struct outcome eo = OUTCOME_INIT;
		/* a batch entry that is delivered upstream commits with its outbox record */
		bool own = !tx && strcmp(p->method, "GET") != 0 && forwards(app, p->type, hooks_done);
		int st = 0;
		if (own && store_begin(app->store, &err) != STORE_OK) {
			outcome_add(&eo, OUTCOME_ERROR, "exception", NULL, "%s", err.message);
			st = 500;
		}
		if (!st)
			st = run_entry(app, req, p, hooks_done, base, tx ? oo : &eo);
		if (own && finish_txn(app, st ? STORE_IO : STORE_OK, &err) != STORE_OK && !st) {
			outcome_add(&eo, OUTCOME_ERROR, "exception", NULL, "commit failed: %s", err.message);
			st = 500;
		}
		if (st && tx) {
			char where[64];
			snprintf(where, sizeof where, "Bundle.entry[%zu]", (size_t)(p - plans));
			outcome_add(oo, OUTCOME_ERROR, "processing", where, "the transaction failed at this entry; nothing was stored");
			*status = st;
			ok = false;
		} else if (st) {
			p->response = outcome_entry(st, &eo);
		}
		outcome_release(&eo);
	}
	if (tx) {
		if (ok && store_commit(app->store, &err) != STORE_OK) {
			outcome_add(oo, OUTCOME_ERROR, "exception", NULL, "commit failed: %s", err.message);
			*status = 500;
			ok = false;
		}
		if (!ok)
			store_rollback(app->store, &err);
		else
			outbox_kick(app->outbox);
	}
	free(order);
	if (ok && bp->nup)
		upstream_batch(app, req, plans, n, base);
	if (ok) {
		out = bundle_new(tx ? "transaction-response" : "batch-response");
		cJSON *es = out ? cJSON_AddArrayToObject(out, "entry") : NULL;
		for (size_t i = 0; es && i < n; i++) {
			cJSON_AddItemToArray(es, plans[i].response ? plans[i].response : cJSON_CreateObject());
			plans[i].response = NULL;
		}
		if (!out) {
			*status = 500;
			outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		} else if (!n) {
			cJSON_DeleteItemFromObjectCaseSensitive(out, "entry");
		}
	}
	if (out)
		*status = 200;
	return out;
}

cJSON *api_rest_bundle(const struct app *app, const struct http_request *req, const cJSON *bundle, struct outcome *oo,
		       int *status)
{
	struct bundle_plan bp;
	cJSON *out = plan_bundle(app, req, bundle, true, &bp, oo, status) ? run_plan(app, req, &bp, true, oo, status) : NULL;
	plan_release(&bp);
	return out;
}

bool api_rest_outbox_full(const struct app *app, struct http_response *resp)
{
	return outbox_refuses(app, resp);
}

/* A batch or transaction whose every entry is for a pass-through type goes to
 * the upstream whole: each entry readied as a single write is (ready_entry),
 * then one POST to the upstream's base; its answer is the answer. A refused
 * entry refuses the Bundle, and nothing is sent. */
static void forward_bundle(const struct app *app, const struct http_request *req, struct http_response *resp,
			   cJSON *bundle, const char *base)
{
	struct outcome oo = OUTCOME_INIT;
	size_t i = 0;
	cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(bundle, "entry"))
	{
		int st = ready_entry(app, req, e, base, &oo);
		if (st) {
			char where[64];
			snprintf(where, sizeof where, "Bundle.entry[%zu]", i);
			outcome_add(&oo, OUTCOME_ERROR, "processing", where,
				    "this entry was refused; nothing was sent to the upstream server");
			send_outcome(req, resp, st, &oo);
			return;
		}
		i++;
	}
	outcome_release(&oo);
	size_t blen = 0;
	char *body = fjson_print(bundle, false, &blen);
	if (!body) {
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	upstream_answer(app, req, resp, "POST", "", body, blen, "application/fhir+json");
	free(body);
}

static void post_bundle(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	cJSON *b = api_fhir_read_body(app, req, resp);
	if (!b)
		return;
	struct outcome oo = OUTCOME_INIT;
	if (strcmp(str_member(b, "resourceType"), "Bundle") != 0) {
		outcome_add(&oo, OUTCOME_ERROR, "invalid", "resourceType", "POST /fhir takes a Bundle");
		cJSON_Delete(b);
		send_outcome(req, resp, 400, &oo);
		return;
	}
	struct bundle_plan bp;
	int status = 400;
	cJSON *out = NULL;
	if (!plan_bundle(app, req, b, false, &bp, &oo, &status))
		send_outcome(req, resp, status, &oo);
	else if (bp.n && bp.nup == bp.n)
		forward_bundle(app, req, resp, b, bp.base);
	else if (!(app->outbox && outbox_refuses(app, resp)) && !(out = run_plan(app, req, &bp, false, &oo, &status)))
		send_outcome(req, resp, status, &oo);
	if (out)
		api_fhir_send(req, resp, 200, out);
	outcome_release(&oo);
	plan_release(&bp);
	cJSON_Delete(b);
}

/* ------------------------------------------------------------ compartment */

static bool gather_add(cJSON *entries, const char *base, cJSON *res)
{
	const char *rt = str_member(res, "resourceType"), *id = str_member(res, "id");
	if (!rt || !id || bundle_has(entries, rt, id)) {
		cJSON_Delete(res);
		return false;
	}
	add_entry(entries, base, res, NULL);
	return true;
}

static void gather_refs(const struct app *app, cJSON *node, cJSON *entries, const char *base, size_t depth)
{
	if (depth > 64)
		return;
	for (cJSON *c = node ? node->child : NULL; c; c = c->next) {
		if (cJSON_IsString(c) && c->string && !strcmp(c->string, "reference")) {
			char rt[65], rid[65];
			if (!search_params_split_reference(c->valuestring, rt, sizeof rt, rid, sizeof rid))
				continue;
			if (!model_resource(rt) || bundle_has(entries, rt, rid))
				continue;
			cJSON *got = NULL;
			struct store_error err;
			if (store_read(app->store, rt, rid, &got, &err) == STORE_OK)
				gather_add(entries, base, got);
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			gather_refs(app, c, entries, base, depth + 1);
		}
	}
}

/* Adds every page of Type?param=value to entries. */
static void gather_search(const struct app *app, const char *type, const struct store_search_param *sp, size_t n,
			  cJSON *entries, const char *base)
{
	for (size_t offset = 0;; offset += STORE_MAX_COUNT) {
		struct store_search sq = {.params = sp, .n_params = n, .count = STORE_MAX_COUNT, .offset = offset};
		struct store_page page = {0};
		struct store_error err;
		if (store_search(app->store, type, &sq, &page, &err) != STORE_OK)
			return;
		for (size_t j = 0; j < page.n; j++) {
			cJSON *r = page.items[j].resource;
			page.items[j].resource = NULL;
			if (r)
				gather_add(entries, base, r);
		}
		size_t got = page.n, total = page.total;
		store_page_release(&page);
		if (got < STORE_MAX_COUNT || offset + got >= total)
			return;
	}
}

cJSON *api_rest_patient_bundle(const struct app *app, const char *patient_id, struct outcome *oo, int *status)
{
	*status = 400;
	if (!valid_id(patient_id)) {
		outcome_add(oo, OUTCOME_ERROR, "value", "patient", "'%.80s' is not a valid FHIR id", patient_id);
		return NULL;
	}
	cJSON *pat = NULL;
	struct store_error err = {0};
	enum store_status st = store_read(app->store, "Patient", patient_id, &pat, &err);
	if (st != STORE_OK) {
		*status = store_status_http(st);
		outcome_add(oo, OUTCOME_ERROR, st == STORE_GONE ? "deleted" : "not-found", "patient", "Patient/%s: %s",
			    patient_id, err.message);
		return NULL;
	}
	char base[256];
	base_url(app, NULL, base, sizeof base);
	cJSON *b = bundle_new("collection");
	cJSON *entries = b ? cJSON_AddArrayToObject(b, "entry") : NULL;
	if (!entries) {
		cJSON_Delete(pat);
		cJSON_Delete(b);
		*status = 500;
		outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		return NULL;
	}
	gather_add(entries, base, pat);
	char ref[128];
	snprintf(ref, sizeof ref, "Patient/%s", patient_id);
	/* every indexed type with a patient or subject parameter */
	const char *seen[64];
	size_t nseen = 0;
	for (size_t i = 0; i < search_params_count; i++) {
		const struct search_param_def *d = &search_params_data[i];
		if (d->kind != SEARCH_PARAM_REFERENCE || (strcmp(d->code, "patient") && strcmp(d->code, "subject")))
			continue;
		if (!model_resource(d->type))
			continue;
		bool dup = false;
		for (size_t k = 0; k < nseen; k++)
			if (!strcmp(seen[k], d->type))
				dup = true;
		if (dup || nseen == 64)
			continue;
		seen[nseen++] = d->type;
		for (int pass = 0; pass < 2; pass++) {
			struct store_search_param sp = {pass ? "subject" : "patient", NULL, ref};
			gather_search(app, d->type, &sp, 1, entries, base);
		}
	}
	size_t n = (size_t)cJSON_GetArraySize(entries);
	for (size_t i = 0; i < n; i++)
		gather_refs(app, cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, (int)i), "resource"), entries,
			    base, 0);
	*status = 200;
	return b;
}

cJSON *api_rest_encounter_bundle(const struct app *app, const char *const *ids, size_t n_ids, const char *from,
				 const char *to, const char *patient_id, struct outcome *oo, int *status)
{
	char base[256];
	base_url(app, NULL, base, sizeof base);
	cJSON *b = bundle_new("collection");
	cJSON *entries = b ? cJSON_AddArrayToObject(b, "entry") : NULL;
	if (!entries) {
		cJSON_Delete(b);
		*status = 500;
		outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n_ids; i++) {
		if (bundle_has(entries, "Encounter", ids[i]))
			continue;
		cJSON *enc = NULL;
		struct store_error err = {0};
		enum store_status st = store_read(app->store, "Encounter", ids[i], &enc, &err);
		if (st != STORE_OK) {
			*status = store_status_http(st);
			char where[48];
			snprintf(where, sizeof where, "encounter[%zu]", i);
			outcome_add(oo, OUTCOME_ERROR, st == STORE_GONE ? "deleted" : "not-found", where, "Encounter/%s: %s",
				    ids[i], err.message);
			cJSON_Delete(b);
			return NULL;
		}
		gather_add(entries, base, enc);
	}
	if (!n_ids) {
		char ge[64], le[64], subject[160];
		snprintf(ge, sizeof ge, "ge%s", from);
		snprintf(le, sizeof le, "le%s", to);
		snprintf(subject, sizeof subject, "Patient/%s", patient_id ? patient_id : "");
		struct store_search_param period[3] = {{"date", NULL, ge}, {"date", NULL, le}, {"subject", NULL, subject}};
		gather_search(app, "Encounter", period, patient_id ? 3 : 2, entries, base);
	}
	size_t nenc = (size_t)cJSON_GetArraySize(entries);
	/* per encounter: the Conditions recorded for it; per patient: Coverage */
	for (size_t i = 0; i < nenc; i++) {
		const cJSON *enc = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, (int)i), "resource");
		char ref[160];
		snprintf(ref, sizeof ref, "Encounter/%s", str_member(enc, "id"));
		struct store_search_param sp = {"encounter", NULL, ref};
		gather_search(app, "Condition", &sp, 1, entries, base);
		const char *subject = str_member(cJSON_GetObjectItemCaseSensitive(enc, "subject"), "reference");
		if (subject) {
			struct store_search_param cp = {"beneficiary", NULL, subject};
			gather_search(app, "Coverage", &cp, 1, entries, base);
		}
	}
	/* and what they reference (patients, practitioners, diagnoses, payers) */
	size_t n = (size_t)cJSON_GetArraySize(entries);
	for (size_t i = 0; i < n; i++)
		gather_refs(app, cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, (int)i), "resource"), entries,
			    base, 0);
	*status = 200;
	return b;
}

/* ------------------------------------------------------------ routes */

static const char *const interactions[] = {"read",   "vread",          "update",       "patch",  "delete",
					   "history-instance", "history-type", "create", "search-type", NULL};

static bool in_array_of_strings(const cJSON *arr, const char *s)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, arr)
	{
		if (cJSON_IsString(e) && !strcmp(e->valuestring, s))
			return true;
	}
	return false;
}

/* Adds "Type:param" to arr unless it is there already. */
static void add_include(cJSON *arr, const char *type, const char *code)
{
	char v[160];
	snprintf(v, sizeof v, "%s:%s", type, code);
	if (!in_array_of_strings(arr, v))
		cJSON_AddItemToArray(arr, cJSON_CreateString(v));
}

/* The search parameters of one indexed type (its own rows, then the
 * resource-level rows), as CapabilityStatement.rest.resource.searchParam. */
static void add_search_params(cJSON *res, const char *type)
{
	cJSON *sp = cJSON_AddArrayToObject(res, "searchParam");
	for (int pass = 0; sp && pass < 2; pass++) {
		const char *of = pass ? "Resource" : type;
		for (size_t i = 0; i < search_params_count; i++) {
			const struct search_param_def *d = &search_params_data[i];
			if (strcmp(d->type, of) != 0 || (i > 0 && !strcmp(search_params_data[i - 1].type, of) &&
							 !strcmp(search_params_data[i - 1].code, d->code)))
				continue;
			cJSON *o = cJSON_CreateObject();
			if (!o)
				return;
			cJSON_AddStringToObject(o, "name", d->code);
			cJSON_AddStringToObject(o, "definition", d->url);
			cJSON_AddStringToObject(o, "type", search_params_kind_name(d->kind));
			cJSON_AddItemToArray(sp, o);
		}
	}
}

/* CapabilityStatement detail for the types the store indexes: their search
 * parameters, and which _include and _revinclude values they accept. */
static void describe_search(void *ctx, cJSON *cs)
{
	(void)ctx;
	const cJSON *rest = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cs, "rest"), 0);
	cJSON *res;
	cJSON_ArrayForEach(res, cJSON_GetObjectItemCaseSensitive(rest, "resource"))
	{
		const char *type = str_member(res, "type");
		if (!type || !search_params_find(type, "_id", NULL) || !model_resource(type) ||
		    !cJSON_GetObjectItemCaseSensitive(res, "interaction"))
			continue;
		add_search_params(res, type);
		cJSON_AddBoolToObject(res, "updateCreate", true);
		cJSON_AddBoolToObject(res, "conditionalCreate", true);
		cJSON_AddBoolToObject(res, "conditionalUpdate", true);
		cJSON_AddStringToObject(res, "conditionalDelete", "single");
		cJSON *inc = cJSON_AddArrayToObject(res, "searchInclude");
		cJSON *rev = cJSON_AddArrayToObject(res, "searchRevInclude");
		for (size_t i = 0; inc && rev && i < search_params_count; i++) {
			const struct search_param_def *d = &search_params_data[i];
			if (d->kind != SEARCH_PARAM_REFERENCE || !model_resource(d->type))
				continue;
			if (!strcmp(d->type, type))
				add_include(inc, d->type, d->code);
			if (!d->target || !strcmp(d->target, type))
				add_include(rev, d->type, d->code);
		}
		/* FHIR has no empty arrays */
		if (!cJSON_GetArraySize(inc))
			cJSON_DeleteItemFromObjectCaseSensitive(res, "searchInclude");
		if (!cJSON_GetArraySize(rev))
			cJSON_DeleteItemFromObjectCaseSensitive(res, "searchRevInclude");
	}
}

int api_rest_register(struct app *app)
{
	int rc = 0;
	struct router *r = &app->router;
	rc |= router_add(r, "POST", "/fhir", post_bundle, app);
	rc |= router_add(r, "GET", "/fhir/_history", get_history_system, app);
	rc |= router_add(r, "GET", "/fhir/{type}", get_search, app);
	rc |= router_add(r, "POST", "/fhir/{type}", post_create, app);
	rc |= router_add(r, "PUT", "/fhir/{type}", put_update, app);
	rc |= router_add(r, "POST", "/fhir/{type}/_search", post_search, app);
	rc |= router_add(r, "GET", "/fhir/{type}/_history", get_history_type, app);
	rc |= router_add(r, "GET", "/fhir/{type}/{id}", get_read, app);
	rc |= router_add(r, "PUT", "/fhir/{type}/{id}", put_update, app);
	rc |= router_add(r, "DELETE", "/fhir/{type}/{id}", delete_resource, app);
	rc |= router_add(r, "DELETE", "/fhir/{type}", delete_resource, app);
	rc |= router_add(r, "PATCH", "/fhir/{type}/{id}", patch_resource, app);
	rc |= router_add(r, "PATCH", "/fhir/{type}", patch_resource, app);
	rc |= router_add(r, "GET", "/fhir/{type}/{id}/_history", get_history_instance, app);
	rc |= router_add(r, "GET", "/fhir/{type}/{id}/_history/{vid}", get_vread, app);
	/* batches and transactions, with what post_bundle does with pass-through types */
	static const struct {
		const char *code, *local, *upstream;
	} system[] = {
		{"transaction", "Atomic in the embedded store, resolving urn:uuid references.",
		 "Atomic in the embedded store, resolving urn:uuid references. A transaction of only pass-through types "
		 "is sent to the upstream server whole and answered by it; one that mixes pass-through and local types "
		 "is refused (400): the two servers cannot commit it atomically."},
		{"batch", "Each entry on its own, in the embedded store.",
		 "Each entry on its own. Entries for pass-through types are sent to the upstream server together as one "
		 "batch and its answers put back in place; the others run in the embedded store."},
	};
	for (size_t i = 0; i < sizeof system / sizeof *system; i++)
		rc |= capability_add_system_interaction(&app->cap, system[i].code,
							app->upstream ? system[i].upstream : system[i].local);
	/* the CapabilityStatement lists the types the store indexes */
	const char *types[64];
	size_t nt = 0;
	for (size_t i = 0; i < search_params_count; i++) {
		const char *t = search_params_data[i].type;
		if (!model_resource(t))
			continue;
		bool dup = false;
		for (size_t k = 0; k < nt; k++)
			if (!strcmp(types[k], t))
				dup = true;
		if (!dup && nt < 64)
			types[nt++] = t;
	}
	for (size_t i = 0; i < nt; i++) {
		struct capability_resource cr = {.type = types[i]};
		for (size_t k = 0; interactions[k]; k++)
			cr.interactions[k] = interactions[k];
		rc |= capability_add_resource(&app->cap, &cr);
	}
	rc |= capability_add_decorator(&app->cap, (struct capability_decorator){describe_search, NULL});
	return rc ? -1 : 0;
}
