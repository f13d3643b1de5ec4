#include "api/api_rest.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/rest_int.h"
#include "fhir/profile.h"

/* ------------------------------------------------------------ helpers */

bool rest_valid_id(const char *id) { return id && validate_primitive_text("id", id); }

/* The base URL links and Locations use: the configured public one, else the
 * address the server listens on. Never the Host header, which the client
 * chooses. */
void rest_base_url(const struct app *app, const struct http_request *req, char *buf, size_t n)
{
	config_fhir_base(app->cfg, req ? req->authority : NULL, buf, n);
}

const char *rest_local_ref(const char *ref, const char *base)
{
	size_t bl = strlen(base);
	return !strncmp(ref, base, bl) && ref[bl] == '/' && ref[bl + 1] ? ref + bl + 1 : ref;
}

void rest_localize_refs(cJSON *node, const char *base, size_t depth)
{
	for (cJSON *c = node && depth < 64 ? node->child : NULL; c; c = c->next) {
		if (cJSON_IsString(c) && c->string && !strcmp(c->string, "reference")) {
			const char *rel = rest_local_ref(c->valuestring, base);
			if (rel != c->valuestring) {
				char *copy = strdup(rel);
				if (copy)
					cJSON_SetValuestring(c, copy);
				free(copy);
			}
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			rest_localize_refs(c, base, depth + 1);
		}
	}
}

void rest_add_header(struct http_response *resp, const char *name, const char *value)
{
	http_add_header(resp, name, value);
}

/* RFC 7231 date from a FHIR instant "YYYY-MM-DDThh:mm:ss(.sss)Z" (UTC, as
 * the store writes it), without the C library's time zone machinery. */
bool rest_http_date(const char *instant, char *out, size_t n)
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

const char *rest_meta_str(const cJSON *res, const char *key)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(res, "meta");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *rest_str_member(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

void rest_set_version_headers(struct http_response *resp, const cJSON *res)
{
	const char *vid = rest_meta_str(res, "versionId");
	char buf[128];
	if (vid) {
		snprintf(buf, sizeof buf, "W/\"%s\"", vid);
		rest_add_header(resp, "ETag", buf);
	}
	if (rest_http_date(rest_meta_str(res, "lastUpdated"), buf, sizeof buf))
		rest_add_header(resp, "Last-Modified", buf);
}

void rest_store_answer(const struct http_request *req, struct http_response *resp, enum store_status st,
			 const struct store_error *err)
{
	struct outcome oo = OUTCOME_INIT;
	const char *code = st == STORE_NOT_FOUND ? "not-found"
			   : st == STORE_GONE ? "deleted"
			   : st == STORE_VERSION_MISMATCH || st == STORE_CONFLICT ? "conflict"
			   : st == STORE_INVALID ? "invalid"
			   : st == STORE_BUSY || st == STORE_FULL ? "transient"
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
void rest_send_written(const struct app *app, const struct http_request *req, struct http_response *resp,
			 int status, cJSON *res, bool location)
{
	char loc[512], base[256];
	rest_base_url(app, req, base, sizeof base);
	if (location)
		snprintf(loc, sizeof loc, "%s/%s/%s/_history/%s", base, rest_str_member(res, "resourceType"),
			 rest_str_member(res, "id"), rest_meta_str(res, "versionId") ? rest_meta_str(res, "versionId") : "1");
	enum prefer pf = prefer_of(req);
	if (pf == PREFER_MINIMAL) {
		http_set_body(resp, status, NULL, NULL, 0);
	} else if (pf == PREFER_OUTCOME) {
		struct outcome oo = OUTCOME_INIT;
		outcome_add(&oo, OUTCOME_INFORMATION, "informational", NULL, "%s/%s version %s stored",
			    rest_str_member(res, "resourceType"), rest_str_member(res, "id"), rest_meta_str(res, "versionId"));
		api_fhir_send(req, resp, status, outcome_to_json(&oo));
		outcome_release(&oo);
	}
	rest_set_version_headers(resp, res);
	if (location)
		rest_add_header(resp, "Location", loc);
	if (pf == PREFER_REPRESENTATION)
		api_fhir_send(req, resp, status, res);
	else
		cJSON_Delete(res);
}

/* Validates res structurally and against the URL's type. */
bool rest_check_resource(const cJSON *res, const char *type, struct outcome *oo)
{
	const char *rt = rest_str_member(res, "resourceType");
	if (type && (!rt || strcmp(rt, type) != 0)) {
		outcome_add(oo, OUTCOME_ERROR, "invalid", "resourceType", "the resource is a %.64s, not a %.64s",
			    rt ? rt : "(none)", type);
		return false;
	}
	return validate_resource(res, oo) == 0;
}

int rest_check_profiles(const struct app *app, const cJSON *res, struct outcome *oo)
{
	const char *mode = app->cfg->validation.on_write;
	if (!mode || strcmp(mode, "profiles") != 0)
		return 0;
	size_t errors = profile_validate(app->profiles, res, NULL, oo, NULL);
	const char *rt = rest_str_member(res, "resourceType");
	const cJSON *url = rt ? cJSON_GetObjectItemCaseSensitive(app->cfg->validation.profiles, rt) : NULL;
	if (cJSON_IsString(url))
		errors += profile_validate(app->profiles, res, url->valuestring, oo, NULL);
	return errors ? 422 : 0;
}

/* Runs the before-store hooks over *res. Returns 0, or the HTTP status to
 * answer with the hooks' issues in oo. */
int rest_run_hooks(const struct app *app, const struct http_request *req, enum cw_hook_point point, cJSON **res,
		     struct outcome *oo)
{
	if (!plugin_host_hook_count(app->plugins, point))
		return 0;
	struct arena arena;
	arena_init(&arena, 0);
	struct cw_ctx ctx;
	plugin_host_ctx(&ctx, app->plugins, &arena, oo, req);
	if (point == CW_HOOK_BEFORE_STORE)
		ctx.check = validate_ok; /* what a hook hands on is valid FHIR, or refused */
	struct cw_hook_args args = {.point = point,
				    .method = req ? req->method : NULL,
				    .path = req ? req->path : NULL,
				    .type = rest_str_member(*res, "resourceType")};
	enum cw_hook_result r = plugin_host_run_hooks(app->plugins, &ctx, &args, res);
	int status = r == CW_HOOK_STOP ? (ctx.status ? ctx.status : 422) : 0;
	arena_release(&arena);
	return status;
}

int rest_before_store(const struct app *app, const struct http_request *req, cJSON **res, struct outcome *oo)
{
	return rest_run_hooks(app, req, CW_HOOK_BEFORE_STORE, res, oo);
}

/* after-response hooks over what came back: the resource, or each entry of a
 * Bundle; the resources of a batch or transaction response are answers in
 * turn (a search's Bundle among them: each of its entries). Returns 0 or the
 * status of a hook that stopped. */
int rest_after_response(const struct app *app, const struct http_request *req, cJSON **tree, struct outcome *oo)
{
	if (!plugin_host_hook_count(app->plugins, CW_HOOK_AFTER_RESPONSE) || !rest_str_member(*tree, "resourceType"))
		return 0;
	if (strcmp(rest_str_member(*tree, "resourceType"), "Bundle") != 0)
		return rest_run_hooks(app, req, CW_HOOK_AFTER_RESPONSE, tree, oo);
	const char *bt = rest_str_member(*tree, "type");
	bool answers = bt && (!strcmp(bt, "batch-response") || !strcmp(bt, "transaction-response"));
	cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(*tree, "entry"))
	{
		if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(e, "resource")))
			continue;
		/* detached while the hooks run: a hook may replace (and the host free) it */
		cJSON *cur = cJSON_DetachItemFromObjectCaseSensitive(e, "resource");
		int st = answers ? rest_after_response(app, req, &cur, oo) : rest_run_hooks(app, req, CW_HOOK_AFTER_RESPONSE, &cur, oo);
		if (cur)
			cJSON_AddItemToObject(e, "resource", cur);
		if (st)
			return st;
	}
	return 0;
}

void rest_send_outcome(const struct http_request *req, struct http_response *resp, int status,
			 struct outcome *oo)
{
	api_fhir_send(req, resp, status, outcome_to_json(oo));
	outcome_release(oo);
}

bool rest_check_type_id(const struct http_request *req, struct http_response *resp, const char *type,
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
	if (id && !rest_valid_id(id)) {
		http_set_error(resp, 400, "value", "'%.80s' is not a valid FHIR id ([A-Za-z0-9-.]{1,64})", id);
		return false;
	}
	(void)req;
	return true;
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
			if (strcmp(d->type, of) != 0 ||
			    (i > 0 && !strcmp(search_params_data[i - 1].type, of) &&
			     !strcmp(search_params_data[i - 1].code, d->code)) ||
			    !search_params_offered(d))
				continue;
			cJSON *o = cJSON_CreateObject();
			if (!o)
				return;
			cJSON_AddStringToObject(o, "name", d->code);
			cJSON_AddStringToObject(o, "definition", d->url);
			cJSON_AddStringToObject(o, "type", search_params_kind_name(d->kind));
			const char *embedded = search_params_embedded(d);
			if (embedded) {
				char doc[200];
				snprintf(doc, sizeof doc,
					 "The first entry's resource when it is a %s: its own parameters are "
					 "searched by chaining (%s.parameter=value)",
					 embedded, d->code);
				cJSON_AddStringToObject(o, "documentation", doc);
			}
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
		const char *type = rest_str_member(res, "type");
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
			/* an embedded resource is in the resource already */
			if (d->kind != SEARCH_PARAM_REFERENCE || !model_resource(d->type) || search_params_embedded(d))
				continue;
			if (!strcmp(d->type, type))
				add_include(inc, d->type, d->code);
			if (search_params_targets_has(d, type))
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
	rc |= router_add(r, "POST", "/fhir", rest_post_bundle, app);
	rc |= router_add(r, "GET", "/fhir/_history", rest_get_history_system, app);
	rc |= router_add(r, "GET", "/fhir/{type}", rest_get_search, app);
	rc |= router_add(r, "POST", "/fhir/{type}", rest_post_create, app);
	rc |= router_add(r, "PUT", "/fhir/{type}", rest_put_update, app);
	rc |= router_add(r, "POST", "/fhir/{type}/_search", rest_post_search, app);
	rc |= router_add(r, "GET", "/fhir/{type}/_history", rest_get_history_type, app);
	rc |= router_add(r, "GET", "/fhir/{type}/{id}", rest_get_read, app);
	rc |= router_add(r, "PUT", "/fhir/{type}/{id}", rest_put_update, app);
	rc |= router_add(r, "DELETE", "/fhir/{type}/{id}", rest_delete_resource, app);
	rc |= router_add(r, "DELETE", "/fhir/{type}", rest_delete_resource, app);
	rc |= router_add(r, "PATCH", "/fhir/{type}/{id}", rest_patch_resource, app);
	rc |= router_add(r, "PATCH", "/fhir/{type}", rest_patch_resource, app);
	rc |= router_add(r, "GET", "/fhir/{type}/{id}/_history", rest_get_history_instance, app);
	rc |= router_add(r, "GET", "/fhir/{type}/{id}/_history/{vid}", rest_get_vread, app);
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
	/* the CapabilityStatement lists every R4 resource type: the store keeps
	 * and searches them all (each by its own parameters and the
	 * resource-level ones) */
	for (size_t i = 0; i < model_ntypes; i++) {
		const struct model_type *t = &model_types[i];
		if (t->kind != MODEL_RESOURCE || t->abstract)
			continue;
		struct capability_resource cr = {.type = t->name};
		for (size_t k = 0; interactions[k]; k++)
			cr.interactions[k] = interactions[k];
		rc |= capability_add_resource(&app->cap, &cr);
	}
	rc |= capability_add_decorator(&app->cap, (struct capability_decorator){describe_search, NULL});
	return rc ? -1 : 0;
}
