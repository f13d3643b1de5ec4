#include "api/rest_int.h"

#include "base/log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------ upstream */

static bool url_safe(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == ',' || c == '|' || c == '/';
}

void rest_url_encode(char *out, size_t n, size_t *pos, const char *s)
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

void rest_url_encode_sb(struct strbuf *b, const char *s) { strbuf_add_pct(b, s); }

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
	rest_url_encode(q->buf, sizeof q->buf, &q->pos, name);
	q->buf[q->pos++] = '=';
	rest_url_encode(q->buf, sizeof q->buf, &q->pos, value ? value : "");
	return 0;
}

/* The headers of a request to the upstream. */
struct up_headers {
	char lines[8][1100];
	const char *h[10 + UPSTREAM_MAX_LINES]; /* and what a disclosure carries */
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
int rest_upstream_ready(const struct app *app, const struct http_request *req, cJSON **res, struct outcome *oo)
{
	if (validate_resource(*res, oo) != 0)
		return 400;
	int st = rest_run_hooks(app, req, CW_HOOK_BEFORE_UPSTREAM, res, oo);
	if (st)
		return st;
	/* a write passed through is labelled as a stored one is */
	struct privacy_writer writer;
	privacy_writer_of(app, req, &writer);
	if (privacy_label_write(app, &writer, *res, NULL, 0) != 0) {
		outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		return 500;
	}
	/* the upstream is a recipient like any other */
	if (egress_upstream_refuses(app, *res)) {
		outcome_add(oo, OUTCOME_ERROR, "security", NULL,
			    "%s: this is 42 CFR Part 2 data and no Consent permits its disclosure to the upstream",
			    EGRESS_NO_PART2_CONSENT);
		return 403;
	}
	return 0;
}

/* What came back from one exchange with the upstream: a JSON answer parsed,
 * the upstream's own text scrubbed from its OperationOutcomes, its URLs
 * rewritten to the gateway's and the after-response hooks run over it.
 * Returns 0 with *tree the answer (NULL when empty), or the status to answer
 * with issues in oo: 503 when too many calls were in flight, 502 or 504 when
 * the upstream did not answer, 502 when its body is not FHIR JSON, a hook's.
 * The caller releases ur either way. */
int rest_upstream_received(const struct app *app, const struct http_request *req, struct upstream_response *ur,
			     cJSON **tree, struct outcome *oo)
{
	*tree = NULL;
	if (ur->busy) {
		outcome_add(oo, OUTCOME_ERROR, "transient", NULL,
			    "%u calls to the upstream FHIR server are in flight, the most allowed; try again later",
			    (unsigned)app->cfg->upstream.max_concurrent);
		return 503;
	}
	if (!ur->answered) {
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
	upstream_scrub_outcomes(*tree, ur->status);
	/* an upstream's narrative reaches clients only if it is basic XHTML */
	size_t withheld = validate_neutralise_narrative(*tree);
	if (withheld)
		log_msgf(LOG_WARN, "upstream_narrative_withheld",
			 "%zu narrative div(s) in an upstream answer broke txt-1/txt-2 and were withheld", withheld);
	char base[256];
	rest_base_url(app, req, base, sizeof base);
	upstream_rewrite_urls(app->upstream, *tree, base);
	int hs = rest_after_response(app, req, tree, oo);
	if (hs) {
		cJSON_Delete(*tree);
		*tree = NULL;
	}
	return hs;
}

/* The Retry-After of a 503 for too many calls in flight. */
#define BUSY_RETRY_AFTER "1"

static void pending_done(void *ctx)
{
	struct rest_pending *pd = ctx;
	http_wake(pd->req);
}

static void pending_resume(void *ctx, struct http_request *req, struct http_response *resp)
{
	struct rest_pending *pd = ctx;
	pd->answer(pd, req, resp);
	upstream_response_release(&pd->ur);
	free(pd);
}

/* Sends body (NULL: none) as content_type to method path and defers the
 * request: answer makes its answer from pd->ur once it is in (also when the
 * call could not start: pd->ur says why). Returns false (nothing deferred,
 * data untouched) only when out of memory. */
bool rest_upstream_defer(const struct app *app, struct http_request *req, const char *method, const char *path,
			   const char *body, size_t blen, const char *content_type,
			   void (*answer)(struct rest_pending *, struct http_request *, struct http_response *), void *data)
{
	struct rest_pending *pd = calloc(1, sizeof *pd);
	if (!pd)
		return false;
	*pd = (struct rest_pending){.app = app, .req = req, .answer = answer, .data = data};
	struct up_headers uh;
	upstream_headers(req, content_type, &uh);
	/* the upstream is a recipient like any other: what a resource's
	 * disclosure carries goes with it (api/egress.h) */
	struct upstream_lines extra = {0};
	char *owned = NULL;
	if (content_type && !strcmp(content_type, "application/fhir+json"))
		egress_upstream_body(app, &body, &blen, &owned, &extra);
	for (size_t i = 0; i < extra.n && uh.n < sizeof uh.h / sizeof uh.h[0] - 1; i++)
		uh.h[uh.n++] = extra.line[i];
	uh.h[uh.n] = NULL;
	http_defer(req, pending_resume, pd);
	if (upstream_start(app->upstream, method, path, uh.h, body, blen, &pd->ur, pending_done, pd) != 0)
		http_wake(req); /* answered at once from pd->ur */
	/* upstream_start copied them */
	upstream_lines_release(&extra);
	free(owned);
	return true;
}

/* The answer method rel (a path after the base, no query) must give. */
static void expect_of(const char *method, const char *rel, struct rest_expect *x)
{
	memset(x, 0, sizeof *x);
	char seg[4][STORE_ID_SIZE];
	size_t n = 0;
	for (const char *p = rel; *p && n < 4; n++) {
		size_t l = strcspn(p, "/");
		if (l >= sizeof seg[0] || p[0] == '$')
			return; /* an operation answers what it likes */
		memcpy(seg[n], p, l);
		seg[n][l] = '\0';
		p += l;
		p += *p == '/';
	}
	bool get = !strcmp(method, "GET");
	bool bundle = (n == 1 && get) || (n == 2 && (!strcmp(seg[1], "_search") || !strcmp(seg[1], "_history"))) ||
		      (n == 3 && !strcmp(seg[2], "_history")) || (n == 0 && get);
	if (bundle) {
		snprintf(x->type, sizeof x->type, "Bundle");
		return;
	}
	if (n == 1 && !strcmp(method, "POST"))
		snprintf(x->type, sizeof x->type, "%s", seg[0]); /* create */
	else if ((n == 2 && strcmp(method, "DELETE") != 0) || (n == 4 && get && !strcmp(seg[2], "_history"))) {
		snprintf(x->type, sizeof x->type, "%s", seg[0]); /* read, vread, update, patch */
		snprintf(x->id, sizeof x->id, "%s", seg[1]);
	}
}

/* 0 when tree is what x asks for, else 502 with the issue in oo. */
static int expected(const struct rest_expect *x, const struct upstream_response *ur, const cJSON *tree, struct outcome *oo)
{
	if (!x || !tree || ur->status < 200 || ur->status >= 300)
		return 0;
	const char *rt = rest_str_member(tree, "resourceType"), *id = rest_str_member(tree, "id");
	if (rt && !strcmp(rt, "OperationOutcome"))
		return 0;
	if ((x->type[0] && (!rt || strcmp(rt, x->type) != 0)) || (x->id[0] && (!id || strcmp(id, x->id) != 0))) {
		outcome_add(oo, OUTCOME_ERROR, "processing", NULL,
			    "the upstream answered %ld with a %.64s%s%.64s where a %s%s%s was asked for", ur->status,
			    rt ? rt : "body without resourceType", id ? "/" : "", id ? id : "", x->type, x->id[0] ? "/" : "",
			    x->id);
		return 502;
	}
	return 0;
}

/* Answers with the upstream's answer: its status, its body (see
 * upstream_received; of the shape pd->data, a struct rest_expect, asks for, else
 * 502) and its ETag, Last-Modified, Location and Retry-After. */
static void answer_upstream(struct rest_pending *pd, struct http_request *req, struct http_response *resp)
{
	const struct app *app = pd->app;
	struct upstream_response *ur = &pd->ur;
	struct outcome oo = OUTCOME_INIT;
	cJSON *tree = NULL;
	int st = rest_upstream_received(app, req, ur, &tree, &oo);
	if (!st && (st = expected(pd->data, ur, tree, &oo)) != 0) {
		cJSON_Delete(tree);
		tree = NULL;
	}
	free(pd->data);
	if (st) {
		rest_send_outcome(req, resp, st, &oo);
		if (ur->busy)
			rest_add_header(resp, "Retry-After", BUSY_RETRY_AFTER);
		return;
	}
	outcome_release(&oo);
	if (tree)
		http_set_json(resp, (int)ur->status, tree);
	else
		http_set_body(resp, (int)ur->status, NULL, NULL, 0);
	char base[256], url[1200];
	rest_base_url(app, req, base, sizeof base);
	if (ur->etag[0])
		rest_add_header(resp, "ETag", ur->etag);
	if (ur->last_modified[0])
		rest_add_header(resp, "Last-Modified", ur->last_modified);
	const char *loc = ur->location[0] ? upstream_rewrite_location(app->upstream, ur->location, base, url, sizeof url)
					  : NULL;
	if (loc) /* one on another host is not passed on */
		rest_add_header(resp, "Location", loc);
	if (ur->retry_after_ms >= 0) {
		char ra[24];
		snprintf(ra, sizeof ra, "%lld", (long long)((ur->retry_after_ms + 999) / 1000));
		rest_add_header(resp, "Retry-After", ra);
	}
}

/* Defers the request until the upstream answers method path (see
 * answer_upstream), whose answer must be as x asks (copied). */
void rest_upstream_answer(const struct app *app, struct http_request *req, struct http_response *resp,
			    const char *method, const char *path, const char *body, size_t blen,
			    const char *content_type, const struct rest_expect *x)
{
	struct rest_expect *copy = malloc(sizeof *copy);
	if (copy)
		*copy = *x;
	if (!copy || !rest_upstream_defer(app, req, method, path, body, blen, content_type, answer_upstream, copy)) {
		free(copy);
		http_set_error(resp, 500, "exception", "out of memory");
	}
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
		int st = rest_upstream_ready(app, req, &res, &oo);
		if (st) {
			cJSON_Delete(res);
			rest_send_outcome(req, resp, st, &oo);
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
	struct rest_expect x;
	expect_of(req->method, rel, &x);
	rest_upstream_answer(app, req, resp, req->method, path, body, blen, ct, &x);
	free(body);
}

/* Types whose every request goes to the upstream as it is. */
bool rest_routed_upstream(const struct app *app, const char *type)
{
	return app->upstream && !strcmp(config_route(app->cfg, type), "pass-through");
}

/* Pass-through types go upstream; true when the request was answered. */
bool rest_pass_through(const struct app *app, struct http_request *req, struct http_response *resp,
			 const char *type)
{
	if (!rest_routed_upstream(app, type))
		return false;
	forward(app, req, resp);
	return true;
}

/* Stored writes of this type are recorded for delivery upstream
 * (config_delivers: the same rule for REST writes, /ingest and the id
 * upgrade). */
bool rest_forwards(const struct app *app, const char *type)
{
	return app->outbox && config_delivers(app->cfg, type);
}

/* 503 with Retry-After when the outbox is over its high-water mark. */
bool rest_outbox_refuses(const struct app *app, struct http_response *resp)
{
	long ra = 0;
	if (!outbox_full(app->outbox, &ra))
		return false;
	char v[24];
	snprintf(v, sizeof v, "%ld", ra);
	http_set_error(resp, 503, "transient", "the delivery queue to the upstream is full; try again later");
	rest_add_header(resp, "Retry-After", v);
	return true;
}
