#include "fhir/validate_bundle.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fhir/model.h"
#include "fhir/validate.h"

struct vb {
	const cJSON *bundle;
	const char *path; /* the Bundle's location */
	struct outcome *oo;
	size_t budget, found;
};

static void problem(struct vb *b, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void problem(struct vb *b, const char *where, const char *fmt, ...)
{
	if (b->found++ >= b->budget)
		return;
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char expr[600];
	snprintf(expr, sizeof expr, "%s.%s", b->path, where);
	outcome_add(b->oo, OUTCOME_ERROR, "invalid", expr, "%s", msg);
}

static const char *sget(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool is_absolute(const char *u)
{
	const char *colon = strchr(u, ':');
	if (!colon || colon == u)
		return false;
	for (const char *p = u; p < colon; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (p > u && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'))))
			return false;
	return true;
}

/* Splits a RESTful URL ending in {type}/{id} (a version suffix
 * /_history/{v} allowed): the type's and id's starts and lengths, and the
 * length of the base before "/{type}". False when the URL is not one. */
static bool restful(const char *u, size_t *base_len, const char **type, size_t *type_len, const char **id,
		    size_t *id_len)
{
	char buf[1024];
	size_t n = strlen(u);
	if (n == 0 || n >= sizeof buf)
		return false;
	const char *h = strstr(u, "/_history/");
	if (h)
		n = (size_t)(h - u);
	memcpy(buf, u, n);
	buf[n] = '\0';
	char *slash_id = strrchr(buf, '/');
	if (!slash_id || slash_id == buf || !slash_id[1])
		return false;
	*slash_id = '\0';
	char *slash_type = strrchr(buf, '/');
	const char *t = slash_type ? slash_type + 1 : buf;
	if (!model_resource(t) || !validate_primitive_text("id", slash_id + 1))
		return false;
	*type = u + (t - buf);
	*type_len = strlen(t);
	*id = u + (slash_id + 1 - buf);
	*id_len = strlen(slash_id + 1);
	*base_len = slash_type ? (size_t)(slash_type - buf) : 0;
	return true;
}

static void check_full_url(struct vb *b, const cJSON *entry, long i, bool required)
{
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(entry, "resource");
	const char *fu = sget(entry, "fullUrl");
	char where[64];
	snprintf(where, sizeof where, "entry[%ld].fullUrl", i);
	if (!fu) {
		if (required && cJSON_IsObject(res))
			problem(b, where,
				"bundle-fullurl-required: every entry of a %s needs a fullUrl (its references resolve "
				"through it)",
				sget(b->bundle, "type"));
		return;
	}
	if (strncmp(fu, "urn:uuid:", 9) == 0) {
		if (!validate_primitive_text("uuid", fu))
			problem(b, where,
				"bundle-fullurl-syntax: '%.100s' is not a urn:uuid: URL with a lower-case UUID", fu);
		return;
	}
	if (strncmp(fu, "urn:oid:", 8) == 0) {
		if (!validate_primitive_text("oid", fu))
			problem(b, where, "bundle-fullurl-syntax: '%.100s' is not a urn:oid: URL with a valid OID", fu);
		return;
	}
	if (!is_absolute(fu)) {
		problem(b, where, "bundle-fullurl-syntax: '%.100s' is not an absolute URI", fu);
		return;
	}
	size_t base_len, tl, il;
	const char *t, *id;
	if (!cJSON_IsObject(res) || !restful(fu, &base_len, &t, &tl, &id, &il))
		return;
	const char *rt = sget(res, "resourceType"), *rid = sget(res, "id");
	if (rt && (strlen(rt) != tl || strncmp(rt, t, tl) != 0))
		problem(b, where, "bundle-fullurl-match: the fullUrl '%.100s' names a %.*s, the entry holds a %.64s",
			fu, (int)tl, t, rt);
	else if (rid && (strlen(rid) != il || strncmp(rid, id, il) != 0))
		problem(b, where,
			"bundle-fullurl-match: the fullUrl '%.100s' names id '%.*s', the resource's id is '%.64s'", fu,
			(int)il, id, rid);
}

/* Whether ref (seen in entry `from`) names an entry of the Bundle. */
static bool resolves(const struct vb *b, const cJSON *from, const char *ref)
{
	char want[1200] = "", rel[300] = "";
	const char *ffu = sget(from, "fullUrl");
	size_t base_len, tl, il;
	const char *t, *id;
	bool relative = !is_absolute(ref);
	if (relative) {
		const char *h = strstr(ref, "/_history/");
		snprintf(rel, sizeof rel, "%.*s", h ? (int)(h - ref) : (int)strlen(ref), ref);
		if (ffu && restful(ffu, &base_len, &t, &tl, &id, &il))
			snprintf(want, sizeof want, "%.*s/%s", (int)base_len, ffu, rel);
	}
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(b->bundle, "entry"))
	{
		const char *fu = sget(e, "fullUrl");
		if (!relative) {
			if (fu && strcmp(fu, ref) == 0)
				return true;
			continue;
		}
		if (want[0] && fu && strcmp(fu, want) == 0)
			return true;
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "resource");
		const char *rt = sget(r, "resourceType"), *rid = sget(r, "id");
		size_t n = rt ? strlen(rt) : 0;
		if (rt && rid && strncmp(rel, rt, n) == 0 && rel[n] == '/' && strcmp(rel + n + 1, rid) == 0)
			return true;
	}
	return false;
}

/* Every Reference.reference below node (not into nested Bundles). */
static void check_refs(struct vb *b, const cJSON *entry, const cJSON *node, char *path, size_t len, size_t cap,
		       bool document, size_t depth)
{
	if (depth > 64)
		return;
	if (cJSON_IsArray(node)) {
		long i = 0;
		for (const cJSON *c = node->child; c; c = c->next, i++) {
			int n = snprintf(path + len, cap - len, "[%ld]", i);
			if (n > 0 && (size_t)n < cap - len)
				check_refs(b, entry, c, path, len + (size_t)n, cap, document, depth + 1);
			path[len] = '\0';
		}
		return;
	}
	if (!cJSON_IsObject(node))
		return;
	if (sget(node, "resourceType") && strcmp(sget(node, "resourceType"), "Bundle") == 0)
		return; /* a nested Bundle: checked on its own */
	const char *ref = sget(node, "reference");
	if (ref && ref[0] != '#') {
		bool urn = strncmp(ref, "urn:uuid:", 9) == 0 || strncmp(ref, "urn:oid:", 8) == 0;
		if ((urn || (document && !is_absolute(ref))) && !resolves(b, entry, ref))
			problem(b, path,
				"bundle-ref-resolves: the reference '%.120s' names no entry of this %s Bundle%s", ref,
				sget(b->bundle, "type"),
				urn ? " (a urn: reference means nothing outside it)"
				    : " (a document carries every resource its Composition refers to)");
	}
	for (const cJSON *m = node->child; m; m = m->next) {
		if (!m->string || cJSON_IsString(m) || cJSON_IsNumber(m) || cJSON_IsBool(m))
			continue;
		int n = snprintf(path + len, cap - len, ".%s", m->string);
		if (n > 0 && (size_t)n < cap - len) {
			if (cJSON_IsArray(m) || cJSON_IsObject(m))
				check_refs(b, entry, m, path, len + (size_t)n, cap, document, depth + 1);
		}
		path[len] = '\0';
	}
}

size_t validate_bundle_rules(const cJSON *bundle, const char *path, struct outcome *oo, size_t budget)
{
	struct vb b = {.bundle = bundle, .path = path && *path ? path : "Bundle", .oo = oo, .budget = budget};
	const char *type = sget(bundle, "type");
	if (!type)
		return 0;
	bool document = strcmp(type, "document") == 0;
	bool required = document || strcmp(type, "message") == 0;
	bool refs = strcmp(type, "searchset") != 0 && strcmp(type, "history") != 0;
	long i = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(bundle, "entry"))
	{
		check_full_url(&b, e, i, required);
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "resource");
		if (refs && cJSON_IsObject(res)) {
			char where[700];
			int n = snprintf(where, sizeof where, "entry[%ld].resource", i);
			if (n > 0 && (size_t)n < sizeof where)
				check_refs(&b, e, res, where, (size_t)n, sizeof where, document && i == 0, 0);
		}
		i++;
	}
	return b.found;
}
