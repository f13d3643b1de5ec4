#include "api/api_fhir.h"
#include "api/api_bulk.h"

#include <stdlib.h>
#include <string.h>

#include "api/purpose.h"
#include "fhir/fhir_io.h"
#include "fhir/format.h"
#include "fhir/model.h"
#include "fhir/profile.h"
#include "fhir/validate.h"

static bool is_fhir_path(const char *path) { return !strncmp(path, "/fhir", 5) && (path[5] == '/' || !path[5]); }

bool api_fhir_negotiate(struct http_request *req, struct http_response *resp)
{
	req->format = FORMAT_JSON;
	if (!is_fhir_path(req->path) || api_bulk_plain_path(req->path))
		return false;
	const char *pretty = http_query(req, "_pretty");
	req->pretty = pretty && !strcmp(pretty, "true");
	const char *fp = http_query(req, "_format");
	enum format f = format_negotiate(fp, http_header(req, "Accept"));
	if (f == FORMAT_NONE) {
		http_set_error(resp, 406, "not-supported",
			       fp ? "_format '%.80s' is not supported: use json, xml, application/fhir+json or "
				    "application/fhir+xml"
				  : "%sAccept names no format this server offers: application/fhir+json or application/fhir+xml",
			       fp ? fp : "");
		return true;
	}
	req->format = (int)f;
	return false;
}

static void send_text(struct http_response *resp, int status, enum format f, char *text, size_t len)
{
	http_set_body(resp, status, format_media_type(f), text, len);
}

void api_fhir_send(const struct http_request *req, struct http_response *resp, int status, cJSON *tree)
{
	/* a filtered client's answer is written in XML after its view (purpose.h) */
	enum format f = req->format == FORMAT_XML && !purpose_filters(req) ? FORMAT_XML : FORMAT_JSON;
	struct outcome oo = OUTCOME_INIT;
	int st = 500;
	size_t len = 0;
	char *text = tree ? fhir_io_write(f, tree, req->pretty, &len, &oo, &st) : NULL;
	cJSON_Delete(tree);
	if (text)
		send_text(resp, status, f, text, len);
	else
		http_set_outcome(resp, st, &oo);
	outcome_release(&oo);
}

/* Rewrites a FHIR JSON answer in the negotiated format. false (with the
 * reason in oo) when the resource cannot be written in it. */
static bool rewrite_answer(const struct http_request *req, struct http_response *resp, struct outcome *oo)
{
	if (req->format != FORMAT_XML && !req->pretty)
		return true;
	if (!resp->body || !resp->content_type || strncmp(resp->content_type, "application/fhir+json", 21) != 0)
		return true;
	struct outcome ignored = OUTCOME_INIT;
	int st = 0;
	cJSON *tree = fhir_io_read(FORMAT_JSON, resp->body, resp->body_len, NULL, &ignored, &st);
	outcome_release(&ignored);
	if (!tree)
		return true; /* not a resource: leave as it is */
	enum format f = req->format == FORMAT_XML ? FORMAT_XML : FORMAT_JSON;
	size_t len = 0;
	char *text = fhir_io_write(f, tree, req->pretty, &len, oo, &st);
	cJSON_Delete(tree);
	if (!text)
		return false;
	free(resp->body);
	resp->body = text;
	resp->body_len = len;
	resp->content_type = format_media_type(f);
	return true;
}

void api_fhir_finish(const struct http_request *req, struct http_response *resp)
{
	struct outcome oo = OUTCOME_INIT;
	if (!rewrite_answer(req, resp, &oo)) {
		/* an answer the server made but cannot write as asked is its own
		 * fault: say so, in the asked format, rather than send another */
		http_set_outcome(resp, 500, &oo);
		outcome_release(&oo);
		rewrite_answer(req, resp, &oo);
	}
	outcome_release(&oo);
}

cJSON *api_fhir_read_body(const struct app *app, const struct http_request *req, struct http_response *resp)
{
	const char *ct = http_header(req, "Content-Type");
	enum format f = format_of_body(ct, req->body, req->body_len);
	if (f == FORMAT_NONE) {
		http_set_error(resp, 415, "not-supported",
			       "Content-Type '%.80s' is not supported: send application/fhir+json or application/fhir+xml "
			       "(UTF-8)",
			       ct ? ct : "(none)");
		return NULL;
	}
	if (req->body_len == 0) {
		http_set_error(resp, 400, "required", "the request has no body");
		return NULL;
	}
	struct fjson_limits lim;
	config_json_limits(app->cfg, &lim);
	struct outcome oo = OUTCOME_INIT;
	int st = 400;
	cJSON *t = fhir_io_read(f, req->body, req->body_len, &lim, &oo, &st);
	if (!t)
		http_set_outcome(resp, st, &oo);
	outcome_release(&oo);
	return t;
}

static void post_convert(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	enum format in = format_of_body(http_header(req, "Content-Type"), req->body, req->body_len);
	/* the answer's format as api_fhir_send chooses it */
	enum format out = req->format == FORMAT_XML && !purpose_filters(req) ? FORMAT_XML : FORMAT_JSON;
	if (req->body_len &&
	    ((in == FORMAT_XML && out == FORMAT_JSON && !req->pretty) || (in == FORMAT_JSON && out == FORMAT_XML))) {
		/* straight through fhir_io_convert: XML to JSON text with no
		 * tree, JSON to XML through a tree only read (in an arena) */
		struct fjson_limits lim;
		config_json_limits(app->cfg, &lim);
		struct outcome oo = OUTCOME_INIT;
		int st = 400;
		size_t len = 0;
		char *text = fhir_io_convert_in(req->scratch, in, out, req->body, req->body_len, req->pretty, &lim,
						&len, &oo, &st);
		if (text)
			send_text(resp, 200, out, text, len);
		else
			http_set_outcome(resp, st, &oo);
		outcome_release(&oo);
		return;
	}
	cJSON *t = api_fhir_read_body(ctx, req, resp);
	if (t)
		api_fhir_send(req, resp, 200, t);
}

/* The resource to validate: the body, or the "resource" parameter of a
 * Parameters body. */
static const cJSON *validation_target(const cJSON *body)
{
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(body, "resourceType");
	if (!cJSON_IsString(rt) || strcmp(rt->valuestring, "Parameters") != 0)
		return body;
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(body, "parameter");
	const cJSON *p;
	cJSON_ArrayForEach(p, params)
	{
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(p, "name");
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(p, "resource");
		if (cJSON_IsString(name) && !strcmp(name->valuestring, "resource") && cJSON_IsObject(res))
			return res;
	}
	return body;
}

/* A string parameter of $validate: the query's, or the Parameters body's
 * (valueUri, valueCanonical, valueCode or valueString). */
static const char *validation_param(const struct http_request *req, const cJSON *body, const char *name)
{
	const char *q = http_query(req, name);
	if (q)
		return q;
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(body, "resourceType");
	if (!cJSON_IsString(rt) || strcmp(rt->valuestring, "Parameters") != 0)
		return NULL;
	const cJSON *p;
	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(body, "parameter"))
	{
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(p, "name");
		if (!cJSON_IsString(n) || strcmp(n->valuestring, name) != 0)
			continue;
		static const char *const kinds[] = {"valueUri", "valueCanonical", "valueCode", "valueString"};
		for (size_t i = 0; i < 4; i++) {
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, kinds[i]);
			if (cJSON_IsString(v))
				return v->valuestring;
		}
	}
	return NULL;
}

/* $validate: structural validation, then the profile asked for (the
 * "profile" parameter), or else the profiles the resource claims in
 * meta.profile (whatever validation.on_write says). mode
 * "delete" checks nothing of the content (there is none to check here);
 * "create", "update" and "profile" validate as without a mode. */
static void post_validate(void *ctx, struct http_request *req, struct http_response *resp)
{
	struct app *app = ctx;
	cJSON *body = api_fhir_read_body(ctx, req, resp);
	if (!body)
		return;
	const cJSON *target = validation_target(body);
	struct outcome oo = OUTCOME_INIT;
	const char *type = req->nparams ? req->params[0] : NULL;
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(target, "resourceType");
	const char *mode = validation_param(req, body, "mode");
	const char *profile = validation_param(req, body, "profile");
	if (type && !model_resource(type)) {
		http_set_error(resp, 404, "not-found", "'%.64s' is not a FHIR R4 resource type", type);
		cJSON_Delete(body);
		return;
	}
	if (mode && strcmp(mode, "create") != 0 && strcmp(mode, "update") != 0 && strcmp(mode, "delete") != 0 &&
	    strcmp(mode, "profile") != 0) {
		http_set_error(resp, 400, "invalid", "mode '%.64s' is not one of create, update, delete, profile",
			       mode);
		cJSON_Delete(body);
		return;
	}
	if (profile && !profile_known(app->profiles, profile)) {
		http_set_error(resp, 400, "not-supported", "the profile '%.200s' is not loaded on this server",
			       profile);
		cJSON_Delete(body);
		return;
	}
	if (mode && !strcmp(mode, "delete")) {
		cJSON_Delete(body);
		api_fhir_send(req, resp, 200, outcome_to_json(&oo));
		return;
	}
	if (type && cJSON_IsString(rt) && strcmp(type, rt->valuestring) != 0)
		outcome_add(&oo, OUTCOME_ERROR, "invalid", "resourceType", "the resource is a %.64s, not a %s",
			    rt->valuestring, type);
	if (validate_resource(target, &oo) == 0 || profile)
		profile_validate(app->profiles, target, profile, &oo, NULL);
	cJSON_Delete(body);
	cJSON *out = outcome_to_json(&oo);
	outcome_release(&oo);
	api_fhir_send(req, resp, 200, out);
}

/* The CapabilityStatement's rest.resource[].supportedProfile: every loaded
 * profile of a resource type the statement lists. */
static void add_supported_profiles(void *ctx, cJSON *statement)
{
	const struct app *app = ctx;
	const cJSON *rest = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(statement, "rest"), 0);
	cJSON *r;
	cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(rest, "resource"))
	{
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(r, "type");
		const char *url, *ptype;
		cJSON *list = NULL;
		for (size_t i = 0; cJSON_IsString(type) && profile_at(app->profiles, i, &url, &ptype); i++) {
			if (strcmp(ptype, type->valuestring) != 0)
				continue;
			if (!list && !(list = cJSON_AddArrayToObject(r, "supportedProfile")))
				return;
			cJSON_AddItemToArray(list, cJSON_CreateString(url));
		}
	}
}

int api_fhir_register(struct app *app)
{
	int rc = 0;
	rc |= router_add(&app->router, "POST", "/fhir/$convert", post_convert, app);
	rc |= router_add(&app->router, "POST", "/fhir/$validate", post_validate, app);
	rc |= capability_add_decorator(&app->cap, (struct capability_decorator){add_supported_profiles, app});
	rc |= router_add(&app->router, "POST", "/fhir/{type}/$validate", post_validate, app);
	rc |= capability_add_operation(&app->cap, (struct capability_operation){
						   "convert", "http://hl7.org/fhir/OperationDefinition/Resource-convert",
						   NULL, "core"});
	rc |= capability_add_operation(&app->cap, (struct capability_operation){
						   "validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate",
						   NULL, "core"});
	rc |= capability_add_format(&app->cap, "application/fhir+xml");
	return rc ? -1 : 0;
}
