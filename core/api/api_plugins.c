#include "api/api_plugins.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/access.h"
#include "api/api_rest.h"
#include "api/egress.h"
#include "api/gather.h"
#include "api/privacy.h"
#include "api/provenance.h"
#include "api/purpose.h"
#include "base/fjson.h"
#include "fhir/validate.h"

/* One request's plugin context: arena and issues, released together. */
struct call {
	struct arena arena;
	struct outcome oo;
	struct cw_ctx ctx;
};

static void call_begin(struct call *c, const struct app *app, const struct http_request *req)
{
	arena_init(&c->arena, 0);
	c->oo = (struct outcome)OUTCOME_INIT;
	plugin_host_ctx(&c->ctx, app->plugins, &c->arena, &c->oo, req);
}

static void call_end(struct call *c)
{
	outcome_release(&c->oo);
	arena_release(&c->arena);
}

bool api_plugins_on_request(const struct app *app, struct http_request *req, struct http_response *resp)
{
	struct call c;
	call_begin(&c, app, req);
	struct cw_hook_args args = {.point = CW_HOOK_ON_REQUEST, .method = req->method, .path = req->path};
	bool stopped = plugin_host_run_hooks(app->plugins, &c.ctx, &args, NULL) == CW_HOOK_STOP;
	if (stopped) {
		http_set_outcome(resp, c.ctx.status ? c.ctx.status : 403, &c.oo);
		resp->route = "(on-request hook)";
	}
	call_end(&c);
	return stopped;
}

static void set_json_text(struct http_response *resp, int status, cJSON *tree)
{
	size_t len = 0;
	char *text = tree ? fjson_print(tree, false, &len) : NULL;
	cJSON_Delete(tree);
	if (!text) {
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	http_set_body(resp, status, "application/json", text, len);
}

static void get_plugins(void *ctx, struct http_request *req, struct http_response *resp)
{
	(void)req;
	const struct app *app = ctx;
	set_json_text(resp, 200, plugin_host_describe(app->plugins));
}

/* The media of an ingested document; 0 when Content-Type names another. */
static enum cw_media body_media(const struct http_request *req, unsigned accepted)
{
	const char *ct = http_header(req, "Content-Type");
	if (ct && *ct) {
		size_t n = strcspn(ct, "; \t");
		if ((n == 16 && strncasecmp(ct, "application/json", n) == 0) ||
		    (n == 21 && strncasecmp(ct, "application/fhir+json", n) == 0))
			return CW_MEDIA_JSON;
		if (n == 8 && strncasecmp(ct, "text/csv", n) == 0)
			return CW_MEDIA_CSV;
		return 0;
	}
	if (accepted == CW_MEDIA_JSON || accepted == CW_MEDIA_CSV)
		return (enum cw_media)accepted;
	return plugin_host_guess_media(NULL, req->body, req->body_len);
}

/* The media an export should answer in; 0 when the client accepts none the
 * format produces. */
static enum cw_media answer_media(const struct http_request *req, unsigned produced)
{
	const char *f = http_query(req, "_format");
	if (f) {
		if (strcmp(f, "json") == 0 || strcmp(f, "application/json") == 0)
			return produced & CW_MEDIA_JSON ? CW_MEDIA_JSON : 0;
		if (strcmp(f, "csv") == 0 || strcmp(f, "text/csv") == 0)
			return produced & CW_MEDIA_CSV ? CW_MEDIA_CSV : 0;
		return 0;
	}
	enum cw_media first = produced & CW_MEDIA_JSON ? CW_MEDIA_JSON : CW_MEDIA_CSV;
	const char *acc = http_header(req, "Accept");
	if (!acc || !*acc || strstr(acc, "*/*"))
		return first;
	bool json = strcasestr(acc, "application/json") != NULL, csv = strcasestr(acc, "text/csv") != NULL;
	if (json && (produced & CW_MEDIA_JSON))
		return CW_MEDIA_JSON;
	if (csv && (produced & CW_MEDIA_CSV))
		return CW_MEDIA_CSV;
	if (strcasestr(acc, "text/*") && (produced & CW_MEDIA_CSV))
		return CW_MEDIA_CSV;
	if (strcasestr(acc, "application/*") && (produced & CW_MEDIA_JSON))
		return CW_MEDIA_JSON;
	return 0;
}

static void warning_headers(struct http_response *resp, const struct outcome *oo);

static void post_ingest(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	const char *format = req->params[0];
	const struct cw_format *f = plugin_host_format(app->plugins, format, NULL);
	if (!f) {
		http_set_error(resp, 404, "not-found", "no plugin maps the format '%s'", format);
		return;
	}
	enum cw_media media = body_media(req, f->media);
	if (!media) {
		http_set_error(resp, 415, "not-supported", "send application/json or text/csv");
		return;
	}
	const char *preview = http_query(req, "preview");
	bool storing = app->store && !(preview && !strcmp(preview, "true"));
	if (storing && api_rest_outbox_full(app, resp))
		return;
	struct call c;
	call_begin(&c, app, req);
	c.ctx.check = validate_ok; /* the mapper's and the hooks' resources are valid FHIR, or refused */
	plugin_host_ctx_profiles(&c.ctx, app->profiles, app->cfg->validation.ingest);
	cJSON *bundle = NULL;
	int status = plugin_host_ingest(app->plugins, &c.ctx, format, media, req->body, req->body_len, req->method,
					req->path, &bundle);
	if (status == 200 && !storing) {
		http_set_json(resp, 200, bundle);
		warning_headers(resp, &c.oo);
	} else if (status == 200) {
		/* store the transaction; the hooks already ran inside ingest */
		int st = 500;
		struct provenance_source src = {.format = format};
		cJSON *result = NULL;
		if (crypto_sha256(req->body, req->body_len, src.sha256) != 0)
			outcome_add(&c.oo, OUTCOME_FATAL, "exception", NULL, "the document's SHA-256 failed");
		else
			result = api_rest_bundle_from(app, req, bundle, &src, &c.oo, &st);
		cJSON_Delete(bundle);
		if (result) {
			http_set_json(resp, 201, result);
			warning_headers(resp, &c.oo);
		} else {
			http_set_outcome(resp, st, &c.oo);
		}
	} else {
		http_set_outcome(resp, status, &c.oo);
	}
	call_end(&c);
}

/* Warnings of a successful export or ingest travel in headers: a count, and
 * the first few as "location: text". */
static void warning_headers(struct http_response *resp, const struct outcome *oo)
{
	size_t n = 0;
	for (size_t i = 0; i < oo->n; i++)
		if (oo->issues[i].severity == OUTCOME_WARNING)
			n++;
	if (!n)
		return;
	char buf[512];
	snprintf(buf, sizeof buf, "%zu", n);
	http_add_header(resp, "X-Crosswalk-Warnings", buf);
	size_t shown = 0;
	for (size_t i = 0; i < oo->n && shown < 8; i++) {
		const struct outcome_issue *is = &oo->issues[i];
		if (is->severity != OUTCOME_WARNING)
			continue;
		snprintf(buf, sizeof buf, "%s: %s", is->expression ? is->expression : "-", is->diagnostics ? is->diagnostics : "");
		for (char *p = buf; *p; p++)
			if (*p == '\r' || *p == '\n' || (unsigned char)*p < 0x20)
				*p = ' ';
		if (http_add_header(resp, "X-Crosswalk-Warning", buf))
			shown++;
	}
}

struct query_check {
	const char *const *known;
	unsigned seen; /* bit i: known[i] was given */
	const char *bad, *why;
};

static int check_query_arg(void *ctx, const char *name, const char *value)
{
	(void)value;
	struct query_check *qc = ctx;
	for (unsigned i = 0; qc->known[i]; i++) {
		if (strcmp(name, qc->known[i]) != 0)
			continue;
		if (qc->seen & (1u << i)) {
			qc->bad = qc->known[i];
			qc->why = "is given more than once";
			return 1;
		}
		qc->seen |= 1u << i;
		return 0;
	}
	qc->bad = name;
	qc->why = "is not a parameter of this endpoint";
	return 1;
}

/* Every query parameter known (NULL-terminated list) and given at most once;
 * else answers 400 naming it and returns false. */
static bool query_strict(const struct http_request *req, struct http_response *resp, const char *const *known)
{
	struct query_check qc = {.known = known};
	if (!http_query_each(req, check_query_arg, &qc))
		return true;
	struct outcome oo = OUTCOME_INIT;
	outcome_add(&oo, OUTCOME_ERROR, strstr(qc.why, "once") ? "invalid" : "not-supported", qc.bad,
		    "the parameter '%.64s' %s", qc.bad, qc.why);
	http_set_outcome(resp, 400, &oo);
	outcome_release(&oo);
	return false;
}

static void export_common(const struct app *app, struct http_request *req, struct http_response *resp,
			  cJSON *input)
{
	const char *format = req->params[0];
	const struct cw_format *f = plugin_host_format(app->plugins, format, NULL);
	if (!f) {
		cJSON_Delete(input);
		http_set_error(resp, 404, "not-found", "no plugin maps the format '%s'", format);
		return;
	}
	enum cw_media media = answer_media(req, f->media);
	if (!media) {
		cJSON_Delete(input);
		http_set_error(resp, 406, "not-supported", "format '%s' cannot answer in the media type asked for",
			       format);
		return;
	}
	struct call c;
	call_begin(&c, app, req);
	purpose_filter(req->purpose, input);
	char *out = NULL;
	size_t len = 0;
	int status =
		plugin_host_export(app->plugins, &c.ctx, format, media, input, req->method, req->path, &out, &len);
	if (status == 200) {
		char *copy = malloc(len + 1);
		if (copy) {
			memcpy(copy, out, len);
			copy[len] = '\0';
			http_set_body(resp, 200,
				      media == CW_MEDIA_CSV ? "text/csv; charset=utf-8" : "application/json; charset=utf-8",
				      copy, len);
			warning_headers(resp, &c.oo);
		} else {
			http_set_error(resp, 503, "exception", "out of memory");
		}
	} else {
		http_set_outcome(resp, status, &c.oo);
	}
	call_end(&c);
}

static void get_export(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	const struct cw_format *f = plugin_host_format(app->plugins, req->params[0], NULL);
	if (!f) {
		http_set_error(resp, 404, "not-found", "no plugin maps the format '%s'", req->params[0]);
		return;
	}
	if (!f->from_fhir) {
		http_set_error(resp, 405, "not-supported", "format '%s' maps to FHIR only; it cannot be exported",
			       req->params[0]);
		return;
	}
	static const char *const known[] = {"patient", "from", "to", "_format", NULL};
	if (!query_strict(req, resp, known))
		return;
	if (!answer_media(req, f->media)) {
		http_set_error(resp, 406, "not-supported", "format '%s' cannot answer in the media type asked for",
			       req->params[0]);
		return;
	}
	struct gather_query q = {.patient = http_query(req, "patient"),
				 .from = http_query(req, "from"),
				 .to = http_query(req, "to")};
	if (!q.patient && !q.from && !q.to) {
		http_set_error(resp, 400, "required",
			       "name the person (GET /export/%s?patient=ID, a Patient id in the store, or the person's "
			       "identifier system|value) or a period (?from=YYYY-MM-DD&to=YYYY-MM-DD)",
			       req->params[0]);
		return;
	}
	struct outcome oo = OUTCOME_INIT;
	int status = 500;
	cJSON *input = gather_bundle(app, &q, &oo, &status);
	if (!input) {
		http_set_outcome(resp, status, &oo);
		outcome_release(&oo);
		return;
	}
	outcome_release(&oo);
	char refused[STORE_TYPE_SIZE];
	if (!access_may_read_all(req, input, refused, sizeof refused)) {
		/* an export needs read on every type it gathered */
		cJSON_Delete(input);
		auth_forbid(resp, refused, SCOPE_R | SCOPE_S);
		return;
	}
	/* the gathered Bundle carries the labels of what it holds, and so does
	 * the answer (a native document has no meta of its own) */
	char labels[1024];
	if (privacy_label_derived(app, input) != 0) {
		cJSON_Delete(input);
		http_set_error(resp, 503, "exception", "out of memory");
		return;
	}
	egress_gathered(app, req, resp, input);
	privacy_labels_text(input, labels, sizeof labels);
	export_common(ctx, req, resp, input);
	if (resp->status == 200 && labels[0])
		http_add_header(resp, "X-Security-Labels", labels);
}

static cJSON *parse_body(const struct app *app, const struct http_request *req, struct http_response *resp)
{
	struct fjson_limits lim;
	config_json_limits(app->cfg, &lim);
	struct fjson_error err;
	memset(&err, 0, sizeof err);
	cJSON *t = fjson_parse(req->body, req->body_len, &lim, &err);
	if (!t)
		http_set_error(resp, err.status == 413 ? 413 : 400, err.status == 413 ? "too-costly" : "structure",
			       "body is not valid JSON: %s", err.message);
	else if (!cJSON_IsObject(t)) {
		cJSON_Delete(t);
		t = NULL;
		http_set_error(resp, 422, "invalid", "body is not a FHIR resource");
	}
	return t;
}

static void post_export(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	static const char *const known[] = {"_format", NULL};
	if (!query_strict(req, resp, known))
		return;
	cJSON *input = parse_body(app, req, resp);
	if (input)
		export_common(app, req, resp, input);
}

struct op_route {
	const struct app *app;
	const struct cw_operation *op;
	const struct plugin *owner;
	char pattern[160];
};

/* The Consents that permitted what was gathered for the operation this
 * thread runs (gather_for_plugins, called from within the plugin's
 * invoke): its answer names them (42 CFR 2.32(b)). NULL outside one. */
struct op_cited {
	struct egress_cited cited[EGRESS_MAX_CITED];
	size_t n;
	bool part2; /* 42CFRPart2 data was gathered: the answer carries the notice */
};
static _Thread_local struct op_cited *op_cited;

static void invoke_op(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct op_route *r = ctx;
	cJSON *input = NULL;
	if (req->body_len > 0 && !(input = parse_body(r->app, req, resp)))
		return;
	struct call c;
	call_begin(&c, r->app, req);
	cJSON *output = NULL;
	struct op_cited cited = {.n = 0, .part2 = false};
	op_cited = &cited;
	int status = plugin_host_invoke(r->app->plugins, &c.ctx, r->op, r->owner, r->op->type, input, &output);
	op_cited = NULL;
	cJSON_Delete(input);
	if (status == 200 && output && !validate_ok(output, &c.oo)) {
		/* an operation answers FHIR: anything else is the plugin's fault */
		outcome_add(&c.oo, OUTCOME_ERROR, "exception", NULL,
			    "plugin %s: its operation $%s answered something that is not a valid FHIR resource, refused",
			    r->owner->name, r->op->name);
		cJSON_Delete(output);
		output = NULL;
		status = 500;
	}
	if (status == 200 && output && privacy_label_derived(r->app, output) != 0) {
		/* what an operation builds from labelled data carries their labels */
		cJSON_Delete(output);
		output = NULL;
		outcome_add(&c.oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		status = 500;
	}
	if (status == 200 && output) {
		/* built from what egress let through: the notice, and the Consents
		 * that permitted what it was built from */
		egress_notice(r->app, resp, output, cited.part2);
		egress_cite_on(resp, output, cited.cited, cited.n);
	}
	if (status != 200)
		http_set_outcome(resp, status, &c.oo);
	else if (output)
		http_set_json(resp, 200, output);
	else
		http_set_json(resp, 200, outcome_single(OUTCOME_INFORMATION, "informational", "done", NULL));
	call_end(&c);
}

struct reg {
	struct app *app;
	int rc;
};

static void register_op(void *ud, const struct plugin *p, const struct cw_operation *op)
{
	struct reg *g = ud;
	struct op_route *r = app_keep(g->app, calloc(1, sizeof *r));
	if (!r) {
		g->rc = -1;
		return;
	}
	*r = (struct op_route){.app = g->app, .op = op, .owner = p};
	if (op->type)
		snprintf(r->pattern, sizeof r->pattern, "/fhir/%s/$%s", op->type, op->name);
	else
		snprintf(r->pattern, sizeof r->pattern, "/fhir/$%s", op->name);
	g->rc |= router_add(&g->app->router, "POST", r->pattern, invoke_op, r);
	g->rc |= router_add(&g->app->router, "GET", r->pattern, invoke_op, r);
}

struct op_lookup {
	const char *path;
	bool found;
};

static void match_op(void *ud, const struct plugin *p, const struct cw_operation *op)
{
	(void)p;
	struct op_lookup *l = ud;
	char pattern[160];
	if (op->type)
		snprintf(pattern, sizeof pattern, "/fhir/%s/$%s", op->type, op->name);
	else
		snprintf(pattern, sizeof pattern, "/fhir/$%s", op->name);
	l->found |= !strcmp(pattern, l->path);
}

bool api_plugins_operation_at(const struct app *app, const char *method, const char *path)
{
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		return false;
	const char *dollar = strrchr(path, '$');
	if (!dollar || dollar[-1] != '/' || !strcmp(dollar, "$export"))
		return false; /* bulk export decides before routing */
	struct op_lookup l = {.path = path};
	plugin_host_each_operation(app->plugins, match_op, &l);
	return l.found;
}

/* host->store_gather: the plugins gather as the exports do. */
static cJSON *gather_for_plugins(void *ud, const struct http_request *req, const cJSON *parameters, struct outcome *oo,
				 int *status)
{
	cJSON *b = gather_parameters(ud, parameters, oo, status);
	char type[STORE_TYPE_SIZE];
	if (b && !access_may_read_all(req, b, type, sizeof type)) {
		/* the client may not read all that was gathered for it */
		cJSON_Delete(b);
		access_refuse_issue(oo, NULL, type, SCOPE_R | SCOPE_S);
		*status = 403;
		return NULL;
	}
	if (b && privacy_label_derived(ud, b) == 0) {
		/* what the client may not see is withheld, and said so */
		struct egress eg;
		egress_begin(&eg, ud, req);
		egress_gathered_with(ud, &eg, b);
		if (op_cited) {
			egress_cite_into(op_cited->cited, &op_cited->n, &eg);
			op_cited->part2 |= eg.part2;
		}
		egress_end(&eg, NULL);
	}
	return b;
}

int api_plugins_register(struct app *app)
{
	int rc = 0;
	plugin_host_set_gather(app->plugins, gather_for_plugins, app);
	rc |= router_add(&app->router, "GET", "/plugins", get_plugins, app);
	rc |= router_add(&app->router, "POST", "/ingest/{format}", post_ingest, app);
	rc |= router_add(&app->router, "GET", "/export/{format}", get_export, app);
	rc |= router_add(&app->router, "POST", "/export/{format}", post_export, app);
	struct reg g = {app, 0};
	plugin_host_each_operation(app->plugins, register_op, &g);
	return rc || g.rc ? -1 : 0;
}
