/* access — scope decisions inside the handlers (access.h). */
#include "api/access.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/metrics.h"
#include "fhir/compartment.h"
#include "fhir/search_params.h"

static const struct auth_principal *who_of(const struct http_request *req) { return req ? req->principal : NULL; }

bool access_may(const struct http_request *req, const char *type, unsigned perms)
{
	return auth_may(who_of(req), type, perms);
}

bool access_checked(const struct http_request *req)
{
	const struct auth_principal *who = who_of(req);
	return who && who->client_id;
}

void access_refuse_issue(struct outcome *oo, const char *where, const char *type, unsigned perms)
{
	char name[200];
	auth_scope_name(name, sizeof name, type, perms);
	metrics_auth_refused(METRICS_AUTH_INSUFFICIENT_SCOPE);
	outcome_add(oo, OUTCOME_ERROR, "forbidden", where, "this request needs the scope %s", name);
}

void access_left_out(void) { metrics_auth_refused(METRICS_AUTH_LEFT_OUT); }

bool access_may_read_all(const struct http_request *req, const cJSON *bundle, char *type, size_t n)
{
	if (!access_checked(req))
		return true;
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(bundle, "entry"))
	{
		const cJSON *rt = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "resource"),
								   "resourceType");
		const char *t = cJSON_IsString(rt) ? rt->valuestring : "*";
		if (!access_may(req, t, SCOPE_R | SCOPE_S)) {
			snprintf(type, n, "%s", t);
			return false;
		}
	}
	return true;
}

size_t access_granular(const struct http_request *req, const char *type, unsigned perms, const char **q, size_t *qlen,
		       size_t max)
{
	return auth_granular(who_of(req), type, perms, q, qlen, max);
}

const char *access_compartment(const struct http_request *req, const char *type, unsigned perms)
{
	return auth_compartment(who_of(req), type, perms);
}

/* Percent-decodes in[0..n) into out (cap bytes, '+' is a space); false when
 * it does not fit or holds a NUL. */
static bool decode(const char *in, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)in[i];
		if (c == '%' && i + 2 < n && isxdigit((unsigned char)in[i + 1]) && isxdigit((unsigned char)in[i + 2])) {
			char hex[3] = {in[i + 1], in[i + 2], '\0'};
			c = (int)strtol(hex, NULL, 16);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (!c || o + 1 >= cap)
			return false;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return true;
}

struct one_param {
	const char *name;
	enum search_param_kind kind;
	char *values; /* decoded, comma-separated */
	char *folded; /* string kind: each value folded, NULL otherwise */
};

static bool value_matches(const struct one_param *p, const char *want, const struct search_index_value *v)
{
	const char *bar = strchr(want, '|');
	switch (p->kind) {
	case SEARCH_PARAM_TOKEN:
		if (!bar)
			return v->val && !strcmp(v->val, want);
		if (bar == want) /* |code: a code without a system */
			return !v->sys && v->val && !strcmp(v->val, bar + 1);
		if (!v->sys || strlen(v->sys) != (size_t)(bar - want) ||
		    memcmp(v->sys, want, (size_t)(bar - want)) != 0)
			return false;
		return !bar[1] || (v->val && !strcmp(v->val, bar + 1));
	case SEARCH_PARAM_REFERENCE: {
		const char *slash = strchr(want, '/');
		if (!slash)
			return v->sys && v->val && !strcmp(v->val, want);
		return v->sys && v->val && strlen(v->sys) == (size_t)(slash - want) &&
		       !memcmp(v->sys, want, (size_t)(slash - want)) && !strcmp(v->val, slash + 1);
	}
	case SEARCH_PARAM_STRING:
		return v->val && !strncmp(v->val, want, strlen(want));
	case SEARCH_PARAM_URI:
		return v->val && !strcmp(v->val, want);
	default:
		return false;
	}
}

static int param_hit(void *ctx, const struct search_index_value *v)
{
	const struct one_param *p = ctx;
	if (strcmp(v->param, p->name) != 0 || v->kind != p->kind)
		return 0;
	const char *list = p->folded ? p->folded : p->values;
	for (const char *w = list; *w;) {
		size_t n = strcspn(w, ",");
		char want[512];
		if (n && n < sizeof want) {
			memcpy(want, w, n);
			want[n] = '\0';
			if (value_matches(p, want, v))
				return 1;
		}
		w += n;
		if (*w == ',')
			w++;
	}
	return 0;
}

bool access_query_matches(const char *type, const cJSON *res, const char *text, size_t len)
{
	if (!type || !res || !len)
		return false;
	for (size_t i = 0; i < len;) {
		size_t n = 0;
		while (i + n < len && text[i + n] != '&')
			n++;
		const char *eq = memchr(text + i, '=', n);
		char name[80], values[512];
		if (!eq || !decode(text + i, (size_t)(eq - (text + i)), name, sizeof name) ||
		    !decode(eq + 1, n - (size_t)(eq + 1 - (text + i)), values, sizeof values) || strchr(name, ':') ||
		    strchr(name, '.'))
			return false;
		size_t nrows = 0;
		const struct search_param_def *def = search_params_find(type, name, &nrows);
		if (!def || !values[0])
			return false;
		struct one_param p = {name, def->kind, values, NULL};
		if (def->kind == SEARCH_PARAM_STRING) {
			p.folded = search_params_normalize(values);
			if (!p.folded)
				return false;
		}
		bool hit = search_params_extract(type, res, param_hit, &p) == 1;
		free(p.folded);
		if (!hit)
			return false;
		i += n + 1;
	}
	return true;
}

bool access_holds(const struct http_request *req, const char *type, unsigned perms, const cJSON *res)
{
	const char *pid = access_compartment(req, type, perms);
	if (pid && !compartment_patient_has(type, res, pid))
		return false;
	const char *gq[8];
	size_t gl[8];
	size_t ng = access_granular(req, type, perms, gq, gl, 8);
	if (!ng)
		return true;
	for (size_t i = 0; i < ng && i < 8; i++)
		if (access_query_matches(type, res, gq[i], gl[i]))
			return true;
	return false;
}

void access_refuse_outside(struct http_response *resp, const char *type, unsigned perms)
{
	char name[200];
	auth_scope_name(name, sizeof name, type, perms);
	metrics_auth_refused(METRICS_AUTH_INSUFFICIENT_SCOPE);
	resp->route = "(forbidden)";
	http_set_error(resp, 403, "forbidden",
		       "this %s is outside what the client's scopes let it write (its patient's compartment or its "
		       "scopes' queries); writing it needs the scope %s",
		       type, name);
	http_add_header(resp, "WWW-Authenticate", "Bearer realm=\"crosswalk\", error=\"insufficient_scope\"");
}
