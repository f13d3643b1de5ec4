#include "api/api_terminology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_fhir.h"

/* The input of either operation, borrowed from the query or the body. */
struct tx_args {
	const char *system, *code, *version, *display;
	bool coding;       /* given as a Coding */
	const char *alias; /* the system as the client wrote it */
};

enum tx_op { TX_LOOKUP, TX_VALIDATE };

/* ------------------------------------------------------------ input */

/* A string value[x] of a Parameters.parameter, or NULL. */
static const char *param_string(const cJSON *p)
{
	static const char *const keys[] = {"valueUri", "valueCode", "valueString", "valueCanonical", "valueUrl"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, keys[i]);
		if (cJSON_IsString(v))
			return v->valuestring;
	}
	return NULL;
}

static const char *member(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Fills a from a Parameters body. Returns 0, or -1 with a 400 answer. */
static int args_from_body(enum tx_op op, const cJSON *body, struct tx_args *a, struct http_response *resp)
{
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(body, "resourceType");
	if (!cJSON_IsString(rt) || strcmp(rt->valuestring, "Parameters") != 0) {
		http_set_error(resp, 400, "invalid", "the body must be a Parameters resource");
		return -1;
	}
	const char *sys_name = op == TX_LOOKUP ? "system" : "url";
	const char *code = NULL, *system = NULL, *version = NULL, *display = NULL;
	const cJSON *coding = NULL;
	const cJSON *p;
	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(body, "parameter"))
	{
		const char *name = member(p, "name");
		if (!name)
			continue;
		if (!strcmp(name, "codeSystem") || !strcmp(name, "codeableConcept")) {
			http_set_error(resp, 400, "not-supported",
				       "parameter '%s' is not supported: pass %s and code, or coding", name, sys_name);
			return -1;
		}
		if (!strcmp(name, "coding")) {
			coding = cJSON_GetObjectItemCaseSensitive(p, "valueCoding");
			if (!cJSON_IsObject(coding)) {
				http_set_error(resp, 400, "invalid", "parameter 'coding' must have a valueCoding");
				return -1;
			}
			continue;
		}
		const char **slot = !strcmp(name, "code")	? &code
				    : !strcmp(name, sys_name) || (op == TX_VALIDATE && !strcmp(name, "system")) ? &system
				    : !strcmp(name, "version") ? &version
				    : !strcmp(name, "display") && op == TX_VALIDATE ? &display
										     : NULL;
		if (!slot)
			continue; /* date, displayLanguage, property, abstract: answers do not depend on them */
		const char *v = param_string(p);
		if (!v) {
			http_set_error(resp, 400, "invalid", "parameter '%.40s' has no string value", name);
			return -1;
		}
		if (*slot && (slot != &system || strcmp(*slot, v) != 0)) {
			http_set_error(resp, 400, "invalid", "parameter '%.40s' is given twice", name);
			return -1;
		}
		*slot = v;
	}
	if (coding) {
		if (code) {
			http_set_error(resp, 400, "invalid", "give code and %s, or coding, not both", sys_name);
			return -1;
		}
		const char *cs = member(coding, "system");
		if (system && cs && strcmp(terminology_normalise_system(system), terminology_normalise_system(cs)) != 0) {
			http_set_error(resp, 400, "invalid", "coding.system '%.200s' differs from %s '%.200s'", cs,
				       sys_name, system);
			return -1;
		}
		a->coding = true;
		code = member(coding, "code");
		system = system ? system : cs;
		version = version ? version : member(coding, "version");
		display = display ? display : member(coding, "display");
	}
	a->code = code;
	a->system = system;
	a->version = version;
	a->display = op == TX_VALIDATE ? display : NULL;
	return 0;
}

static void args_from_query(enum tx_op op, const struct http_request *req, struct tx_args *a)
{
	a->code = http_query(req, "code");
	a->system = http_query(req, op == TX_LOOKUP ? "system" : "url");
	if (!a->system && op == TX_VALIDATE)
		a->system = http_query(req, "system");
	a->version = http_query(req, "version");
	a->display = op == TX_VALIDATE ? http_query(req, "display") : NULL;
}

/* ------------------------------------------------------------ output */

static cJSON *add_param(cJSON *list, const char *name)
{
	cJSON *p = cJSON_CreateObject();
	if (!p)
		return NULL;
	cJSON_AddItemToArray(list, p);
	return cJSON_AddStringToObject(p, "name", name) ? p : NULL;
}

static void add_string(cJSON *list, const char *name, const char *key, const char *value)
{
	cJSON *p = add_param(list, name);
	if (p)
		cJSON_AddStringToObject(p, key, value);
}

static void add_property(cJSON *list, const char *code, bool value)
{
	cJSON *p = add_param(list, "property");
	cJSON *parts = p ? cJSON_AddArrayToObject(p, "part") : NULL;
	if (!parts)
		return;
	add_string(parts, "code", "valueCode", code);
	cJSON *v = add_param(parts, "value");
	if (v)
		cJSON_AddBoolToObject(v, "valueBoolean", value);
}

static cJSON *new_parameters(cJSON **list)
{
	cJSON *out = cJSON_CreateObject();
	if (!out)
		return NULL;
	cJSON_AddStringToObject(out, "resourceType", "Parameters");
	*list = cJSON_AddArrayToObject(out, "parameter");
	return out;
}

/* "url (name version), …" of every known system, into buf: the code packs
 * first (the large external systems a client most likely meant), then the
 * CodeSystems of profiles/, so that a cut list loses only local ones. */
static void known_systems(const struct terminology *t, char *buf, size_t cap)
{
	size_t pos = 0, n_systems = terminology_systems(t);
	buf[0] = '\0';
	struct terminology_system_info si;
	for (size_t k = 0; k < 2 * n_systems && pos + 1 < cap; k++) {
		if (!terminology_system_at(t, k % n_systems, &si) || si.pack != (k < n_systems))
			continue;
		int n = snprintf(buf + pos, cap - pos, "%s%s (%s%s%s)", pos ? ", " : "", si.url, si.name,
				 *si.version ? " " : "", si.version);
		if (n < 0 || (size_t)n >= cap - pos) {
			if (cap > 4)
				memcpy(buf + cap - 4, "...", 4);
			return;
		}
		pos += (size_t)n;
	}
	if (!pos)
		snprintf(buf, cap, "none");
}

static void system_not_found(const struct app *app, const struct tx_args *a, struct http_response *resp)
{
	char list[1536];
	known_systems(app->terms, list, sizeof list);
	http_set_error(resp, 404, "not-found",
		       "code system '%.200s' is not known to this server. Known: %s. HCPCS is also accepted as "
		       "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets and "
		       "http://terminology.hl7.org/CodeSystem/HCPCS-all-codes",
		       a->system, list);
}

/* ------------------------------------------------------------ operations */

/* Reads the arguments and resolves the system. Returns the body tree (or a
 * dummy non-NULL for GET) to free after answering, with a filled info; NULL
 * when an error answer is set. */
static bool resolve(const struct app *app, enum tx_op op, struct http_request *req, struct http_response *resp,
		    struct tx_args *a, cJSON **body, struct terminology_system_info *si)
{
	memset(a, 0, sizeof *a);
	*body = NULL;
	if (!strcmp(req->method, "POST")) {
		if (!(*body = api_fhir_read_body(app, req, resp)))
			return false;
		if (args_from_body(op, *body, a, resp) != 0)
			return false;
	} else {
		args_from_query(op, req, a);
	}
	const char *sys_name = op == TX_LOOKUP ? "system" : "url";
	if (!a->system || !*a->system) {
		http_set_error(resp, 400, "required", "%s is required (the code system URI)", sys_name);
		return false;
	}
	if (!a->code || !*a->code) {
		http_set_error(resp, 400, "required", "code is required");
		return false;
	}
	a->alias = a->system;
	a->system = terminology_normalise_system(a->system);
	if (!terminology_system_info(app->terms, a->system, si)) {
		system_not_found(app, a, resp);
		return false;
	}
	if (a->version && strcmp(a->version, si->version) != 0) {
		http_set_error(resp, 404, "not-found", "version '%.80s' of %.200s is not known to this server: it has %s%s",
			       a->version, si->url, *si->version ? "version " : "no version", si->version);
		return false;
	}
	return true;
}

static void op_lookup(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	struct tx_args a;
	struct terminology_system_info si;
	cJSON *body = NULL;
	if (!resolve(app, TX_LOOKUP, req, resp, &a, &body, &si)) {
		cJSON_Delete(body);
		return;
	}
	struct terminology_concept c;
	if (terminology_find(app->terms, a.system, a.code, &c) != TERMINOLOGY_FOUND) {
		http_set_error(resp, 404, "not-found", "code '%.80s' is not in %.200s%s%s", a.code, si.url,
			       *si.version ? " version " : "", si.version);
		cJSON_Delete(body);
		return;
	}
	cJSON *list = NULL;
	cJSON *out = new_parameters(&list);
	if (list) {
		add_string(list, "name", "valueString", si.name);
		if (*c.version)
			add_string(list, "version", "valueString", c.version);
		add_string(list, "display", "valueString", *c.display ? c.display : c.code);
		if (c.billable_known)
			add_property(list, "billable", c.billable);
		if (c.inactive)
			add_property(list, "inactive", true);
	}
	cJSON_Delete(body);
	if (!list) {
		cJSON_Delete(out);
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	api_fhir_send(req, resp, 200, out);
}

static void op_validate(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	struct tx_args a;
	struct terminology_system_info si;
	cJSON *body = NULL;
	if (!resolve(app, TX_VALIDATE, req, resp, &a, &body, &si)) {
		cJSON_Delete(body);
		return;
	}
	struct terminology_concept c;
	bool found = terminology_find(app->terms, a.system, a.code, &c) == TERMINOLOGY_FOUND;
	const char *display = found ? (*c.display ? c.display : c.code) : NULL;
	bool result = found;
	char msg[1024] = "";
	size_t pos = 0;
#define NOTE(...)                                                                                          \
	do {                                                                                               \
		if (pos < sizeof msg) {                                                                    \
			int n_ = snprintf(msg + pos, sizeof msg - pos, "%s", pos ? "; " : "");             \
			pos += n_ > 0 ? (size_t)n_ : 0;                                                    \
		}                                                                                          \
		if (pos < sizeof msg) {                                                                    \
			int n_ = snprintf(msg + pos, sizeof msg - pos, __VA_ARGS__);                       \
			pos += n_ > 0 ? (size_t)n_ : 0;                                                    \
		}                                                                                          \
	} while (0)
	if (!found) {
		NOTE("unknown code '%.80s' in %.200s%s%s", a.code, si.url, *si.version ? " version " : "", si.version);
	} else {
		if (a.display && strcasecmp(a.display, display) != 0) {
			result = false;
			NOTE("wrong display '%.200s' for %.200s#%.80s: it should be '%.300s'", a.display, si.url, a.code,
			     display);
		}
		if (c.billable_known && !c.billable)
			NOTE("%.80s is a valid %.80s code but not billable (a category header): claims need a more "
			     "specific code",
			     a.code, si.name);
		if (c.inactive)
			NOTE("%.80s is inactive (terminated) in %.80s %.40s", a.code, si.name, si.version);
	}
	if (strcmp(a.alias, a.system) != 0)
		NOTE("system '%.200s' read as %.200s", a.alias, a.system);
#undef NOTE
	cJSON *list = NULL;
	cJSON *out = new_parameters(&list);
	if (list) {
		cJSON *p = add_param(list, "result");
		if (p)
			cJSON_AddBoolToObject(p, "valueBoolean", result);
		if (*msg)
			add_string(list, "message", "valueString", msg);
		if (display)
			add_string(list, "display", "valueString", display);
	}
	cJSON_Delete(body);
	if (!list) {
		cJSON_Delete(out);
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	api_fhir_send(req, resp, 200, out);
}

int api_terminology_register(struct app *app)
{
	int rc = 0;
	rc |= router_add(&app->router, "GET", "/fhir/CodeSystem/$lookup", op_lookup, app);
	rc |= router_add(&app->router, "POST", "/fhir/CodeSystem/$lookup", op_lookup, app);
	rc |= router_add(&app->router, "GET", "/fhir/CodeSystem/$validate-code", op_validate, app);
	rc |= router_add(&app->router, "POST", "/fhir/CodeSystem/$validate-code", op_validate, app);
	rc |= capability_add_operation(&app->cap, (struct capability_operation){
						   "lookup", "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup",
						   "CodeSystem", "core"});
	rc |= capability_add_operation(&app->cap,
				       (struct capability_operation){
					       "validate-code",
					       "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code",
					       "CodeSystem", "core"});
	return rc ? -1 : 0;
}
