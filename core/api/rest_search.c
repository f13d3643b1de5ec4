#include "api/rest_int.h"
#include "api/access.h"
#include "http/wire.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------ search */

int rest_summary_of(const char *value, enum summary *out)
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

static char *qkeep(struct query *q, const char *s, size_t n)
{
	if (q->nowned == sizeof q->owned / sizeof *q->owned)
		return NULL;
	char *c = strndup(s, n);
	if (c)
		q->owned[q->nowned++] = c;
	return c;
}

/* Frees what q owns; a second call does nothing. */
void rest_query_release(struct query *q)
{
	for (size_t i = 0; i < q->nowned; i++)
		free(q->owned[i]);
	q->nowned = 0;
}

int rest_query_add(void *ctx, const char *name, const char *value)
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
		else if (rest_summary_of(value, &q->summary) != 0) {
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
		/* The same decoding as the request target's query (wire.h), in
		 * place: a bad escape or an encoded NUL is refused, not cut. */
		char *eq = strchr(pair, '=');
		size_t nlen = eq ? (size_t)(eq - pair) : strlen(pair);
		long kn = wire_pct_decode(pair, nlen, pair, true);
		long vn = eq ? wire_pct_decode(eq + 1, strlen(eq + 1), eq + 1, true) : 0;
		if (kn < 0 || vn < 0 || memchr(pair, 0, (size_t)kn) || (eq && memchr(eq + 1, 0, (size_t)vn))) {
			snprintf(q->error, sizeof q->error, "a form parameter holds a bad %%-escape or an encoded NUL");
			rc = -1;
			break;
		}
		pair[kn] = '\0';
		if (eq)
			eq[1 + vn] = '\0';
		rc = rest_query_add(q, pair, eq ? eq + 1 : "");
	}
	free(copy);
	return rc;
}

/* Parses "a=b&c=d" (already in a URL) into q. */
int rest_query_from_string(struct query *q, const char *qs)
{
	return query_from_form(q, qs, strlen(qs));
}

bool rest_criteria_reach_other_types(const char *qs)
{
	if (!qs || !*qs)
		return false;
	struct query q;
	memset(&q, 0, sizeof q);
	bool reach = rest_query_from_string(&q, qs) != 0 || q.ninc || q.nrev;
	for (size_t i = 0; !reach && i < q.n; i++)
		reach = auth_reaches_other_types(q.params[i].name);
	rest_query_release(&q);
	return reach;
}

#define GRANULAR_MAX 8 /* granular scopes on one type and permission taken into account */

bool rest_granular_match(const struct app *app, const struct http_request *req, const char *type, const char *id)
{
	const char *gq[GRANULAR_MAX];
	size_t gl[GRANULAR_MAX];
	size_t ng = access_granular(req, type, SCOPE_R, gq, gl, GRANULAR_MAX);
	bool hit = ng == 0;
	for (size_t i = 0; !hit && i < ng && i < GRANULAR_MAX; i++) {
		char qs[512];
		snprintf(qs, sizeof qs, "%.*s", (int)gl[i], gq[i]);
		struct query q;
		memset(&q, 0, sizeof q);
		if (rest_query_from_string(&q, qs) == 0 && !q.ninc && !q.nrev &&
		    q.n < sizeof q.params / sizeof *q.params) {
			q.params[q.n++] = (struct store_search_param){"_id", NULL, id};
			struct store_search ss = {.params = q.params, .n_params = q.n, .count = 1, .no_total = true};
			struct store_page page = {0};
			struct store_error err = {0};
			hit = store_search(app->store, type, &ss, &page, &err) == STORE_OK && page.n > 0;
			store_page_release(&page);
		}
		rest_query_release(&q);
	}
	return hit;
}

/* Confines a search of type to what the client's granular scopes allow:
 * one scope's query is added to the criteria; several are joined when each
 * is one parameter, the same one (category=a and category=b search
 * category=a,b). false when they cannot be joined so (the search is then
 * refused). */
static bool granular_confine(const struct http_request *req, const char *type, struct query *q)
{
	const char *gq[GRANULAR_MAX];
	size_t gl[GRANULAR_MAX];
	size_t ng = access_granular(req, type, SCOPE_S, gq, gl, GRANULAR_MAX);
	if (!ng)
		return true;
	if (ng > GRANULAR_MAX)
		return false;
	char qs[1024];
	size_t o = 0, name_len = strcspn(gq[0], "=");
	for (size_t i = 0; i < ng; i++) {
		size_t nl = strcspn(gq[i], "=");
		bool one = memchr(gq[i], '&', gl[i]) == NULL && nl < gl[i];
		if (ng > 1 && (!one || nl != name_len || memcmp(gq[i], gq[0], nl) != 0))
			return false;
		int w = i == 0 ? snprintf(qs + o, sizeof qs - o, "%.*s", (int)gl[i], gq[i])
			       : snprintf(qs + o, sizeof qs - o, ",%.*s", (int)(gl[i] - nl - 1), gq[i] + nl + 1);
		if (w < 0 || (size_t)w >= sizeof qs - o)
			return false;
		o += (size_t)w;
	}
	size_t nbefore = q->n;
	if (rest_query_from_string(q, qs) != 0 || q->ninc > 8 || q->nrev > 8)
		return false;
	for (size_t i = nbefore; i < q->n; i++)
		if (auth_reaches_other_types(q->params[i].name))
			return false;
	return true;
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
cJSON *rest_summary_only(cJSON *res, enum summary mode)
{
	if (mode == SUMMARY_FALSE)
		return res;
	const struct model_type *t = model_resource(rest_str_member(res, "resourceType"));
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

/* Whether name[0..len) is an element of resource type t for _elements: a
 * JSON property name (valueQuantity) or a choice's name (value). */
static bool elements_known(const struct model_type *t, const char *name, size_t len)
{
	if (len == 12 && !strncmp(name, "resourceType", 12))
		return true;
	if (model_find_elem(t, name, len, NULL))
		return true;
	for (size_t i = 0; t && i < t->nelems; i++) {
		const struct model_elem *e = &model_elems[t->elems + i];
		if ((e->flags & MODEL_F_CHOICE) && e->namelen == len && !memcmp(e->name, name, len))
			return true;
	}
	return false;
}

bool rest_elements_check(const char *type, char *elements, bool lenient, struct outcome *oo)
{
	const struct model_type *t = model_resource(type);
	char *w = elements;
	for (const char *e = elements; *e;) {
		size_t n = strcspn(e, ",");
		if (n && !elements_known(t, e, n)) {
			outcome_add(oo, lenient ? OUTCOME_WARNING : OUTCOME_ERROR, "not-supported", NULL,
				    "_elements: '%.*s' is not an element of %s%s", (int)(n > 64 ? 64 : n), e, type,
				    lenient ? " and was left out" : "");
			if (!lenient)
				return false;
		} else if (n) {
			if (w != elements)
				*w++ = ',';
			memmove(w, e, n);
			w += n;
		}
		e += n;
		if (*e == ',')
			e++;
	}
	*w = '\0';
	return true;
}

cJSON *rest_elements_only(cJSON *res, const char *elements)
{
	cJSON *keep = cJSON_CreateObject();
	if (!keep)
		return res;
	const struct model_type *t = model_resource(rest_str_member(res, "resourceType") ? rest_str_member(res, "resourceType") : "");
	for (cJSON *m = res->child; m;) {
		cJSON *next = m->next;
		const char *k = m->string;
		const char *base = k[0] == '_' ? k + 1 : k;
		bool wanted = !strcmp(k, "resourceType") || !strcmp(k, "id") || !strcmp(k, "meta");
		/* a choice (valueQuantity) is also asked for by its name (value) */
		const struct model_elem *el = model_find_elem(t, base, strlen(base), NULL);
		size_t chl = el && (el->flags & MODEL_F_CHOICE) ? el->namelen : 0;
		for (const char *e = elements; !wanted && e && *e;) {
			size_t n = strcspn(e, ",");
			if ((n == strlen(base) && !strncmp(e, base, n)) || (chl && n == chl && !strncmp(e, el->name, n)))
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

cJSON *rest_bundle_new(const char *type)
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

void rest_add_link(cJSON *links, const char *rel, const char *url)
{
	cJSON *l = cJSON_CreateObject();
	if (!l)
		return;
	cJSON_AddStringToObject(l, "relation", rel);
	cJSON_AddStringToObject(l, "url", url);
	cJSON_AddItemToArray(links, l);
}

bool rest_bundle_has(const cJSON *entries, const char *type, const char *id)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, entries)
	{
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "resource");
		const char *rt = rest_str_member(r, "resourceType"), *rid = rest_str_member(r, "id");
		if (rt && rid && !strcmp(rt, type) && !strcmp(rid, id))
			return true;
	}
	return false;
}

void rest_add_entry(cJSON *entries, const char *base, cJSON *res, const char *mode)
{
	cJSON *e = cJSON_CreateObject();
	if (!e) {
		cJSON_Delete(res);
		return;
	}
	char url[512];
	snprintf(url, sizeof url, "%s/%s/%s", base, rest_str_member(res, "resourceType"), rest_str_member(res, "id"));
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
	/* sys NULL: an absolute reference, another server's resource */
	if (v->kind != SEARCH_PARAM_REFERENCE || strcmp(v->param, rc->param) != 0 || rc->n == 64 || !v->val || !v->sys)
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

/* Whether an _include/_revinclude value names a reference parameter of a
 * resource type (and, when given, a resource type as target); else false
 * with the reason in oo (an error, or a note when lenient). */
static bool include_known(const char *name, const char *text, bool lenient, struct outcome *oo)
{
	char buf[160];
	const char *type = NULL, *param = NULL, *target = NULL;
	const struct search_param_def *def = NULL;
	const char *why = NULL;
	if (!text || strlen(text) >= sizeof buf || !include_spec(text, buf, sizeof buf, &type, &param, &target))
		why = "is not Type:parameter[:TargetType] with a resource type";
	else if (!(def = search_params_find(type, param, NULL)))
		why = "names no search parameter of the type";
	else if (def->kind != SEARCH_PARAM_REFERENCE)
		why = "names a search parameter that is not a reference";
	else if (search_params_embedded(def))
		why = "names a resource inside the resource (chain into it instead)";
	else if (target && !model_resource(target))
		why = "names a target that is not a resource type";
	else if (target && !search_params_targets_has(def, target))
		why = "names a target type the parameter cannot point at";
	if (!why)
		return true;
	outcome_add(oo, lenient ? OUTCOME_WARNING : OUTCOME_ERROR, "not-supported", NULL, "%s=%.100s %s%s", name,
		    text ? text : "", why, lenient ? " and was left out" : "");
	return false;
}

/* Checks q's _include, _revinclude and _elements values: an unknown one is
 * refused (false, issues in oo) unless lenient, then it is left out with a
 * note in oo. */
static bool result_params_check(const char *type, struct query *q, bool lenient, struct outcome *oo)
{
	size_t keep = 0;
	for (size_t i = 0; i < q->ninc; i++) {
		if (!include_known("_include", q->includes[i], lenient, oo)) {
			if (!lenient)
				return false;
			continue;
		}
		q->inc_iterate[keep] = q->inc_iterate[i];
		q->includes[keep++] = q->includes[i];
	}
	q->ninc = keep;
	keep = 0;
	for (size_t i = 0; i < q->nrev; i++) {
		if (!include_known("_revinclude", q->revincludes[i], lenient, oo)) {
			if (!lenient)
				return false;
			continue;
		}
		q->rev_iterate[keep] = q->rev_iterate[i];
		q->revincludes[keep++] = q->revincludes[i];
	}
	q->nrev = keep;
	if (q->elements && !rest_elements_check(type, q->elements, lenient, oo))
		return false;
	if (q->elements && !*q->elements)
		q->elements = NULL; /* every name was left out */
	return true;
}

#define INCLUDE_MAX 1000 /* resources _include/_revinclude may add to one page */
#define INCLUDE_ROUNDS 8 /* rounds of :iterate */

/* _include=Type:param[:Target] for the entries [from, to) of Type: the
 * resources they reference. Returns false when INCLUDE_MAX was reached or a
 * resource to include failed its integrity check (*bad set: the search then
 * answers that, not a page without it). */
static bool include_round(const struct app *app, const struct http_request *req, const char *text, cJSON *entries,
			  const char *base, size_t from, size_t to, size_t *added, size_t *left_out,
			  struct store_error *bad)
{
	char buf[160];
	const char *type, *param, *target;
	if (!include_spec(text, buf, sizeof buf, &type, &param, &target))
		return true;
	for (size_t i = from; i < to; i++) {
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, (int)i), "resource");
		if (strcmp(rest_str_member(res, "resourceType") ? rest_str_member(res, "resourceType") : "", type) != 0)
			continue;
		struct ref_collect rc = {.param = param};
		search_params_extract(type, res, collect_ref, &rc);
		for (size_t j = 0; j < rc.n; j++) {
			char rt[65], rid[65];
			if (!search_params_split_reference(rc.refs[j], rt, sizeof rt, rid, sizeof rid))
				continue;
			if ((target && strcmp(rt, target) != 0) || rest_bundle_has(entries, rt, rid))
				continue;
			if (!access_may(req, rt, SCOPE_R)) {
				(*left_out)++; /* a type the client may not read */
				continue;
			}
			if (*added >= INCLUDE_MAX)
				return false;
			cJSON *got = NULL;
			struct store_error err;
			enum store_status st = store_read(app->store, rt, rid, &got, &err);
			if (st == STORE_OK) {
				rest_add_entry(entries, base, got, "include");
				(*added)++;
			} else if (st == STORE_CORRUPT) {
				*bad = err;
				return false;
			}
		}
	}
	return true;
}

/* _revinclude=Type:param[:Target] for the entries [from, to): the
 * resources of Type whose param references one of them. */
static bool revinclude_round(const struct app *app, const struct http_request *req, const char *text, cJSON *entries,
			     const char *base, size_t from, size_t to, size_t *added, size_t *left_out,
			     struct store_error *bad)
{
	char buf[160];
	const char *type, *param, *target;
	if (!include_spec(text, buf, sizeof buf, &type, &param, &target))
		return true;
	if (!access_may(req, type, SCOPE_R)) {
		(*left_out)++; /* a type the client may not read: not even looked for */
		return true;
	}
	for (size_t i = from; i < to; i++) {
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, (int)i), "resource");
		const char *rt = rest_str_member(res, "resourceType"), *rid = rest_str_member(res, "id");
		if (!rt || !rid || (target && strcmp(rt, target) != 0))
			continue;
		char ref[200];
		snprintf(ref, sizeof ref, "%s/%s", rt, rid);
		struct store_search_param sp = {param, NULL, ref};
		struct store_search sq = {.params = &sp, .n_params = 1, .count = STORE_MAX_COUNT, .no_total = true};
		struct store_page page = {0};
		struct store_error err;
		enum store_status st = store_search(app->store, type, &sq, &page, &err);
		if (st == STORE_CORRUPT) {
			*bad = err;
			store_page_release(&page);
			return false;
		}
		if (st != STORE_OK) {
			store_page_release(&page);
			continue;
		}
		bool room = true;
		for (size_t j = 0; j < page.n && room; j++) {
			cJSON *r = page.items[j].resource;
			if (!r || rest_bundle_has(entries, type, page.items[j].id))
				continue;
			if (*added >= INCLUDE_MAX) {
				room = false;
				break;
			}
			page.items[j].resource = NULL;
			rest_add_entry(entries, base, r, "include");
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
static void do_includes(const struct app *app, const struct http_request *req, const struct query *q, cJSON *entries,
			const char *base, size_t *left_out, struct outcome *oo, struct store_error *bad)
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
				room = include_round(app, req, q->includes[k], entries, base, from, to, &added,
						     left_out, bad);
		for (size_t k = 0; room && k < q->nrev; k++)
			if (round == 0 || q->rev_iterate[k])
				room = revinclude_round(app, req, q->revincludes[k], entries, base, from, to, &added,
							left_out, bad);
		from = to;
		to = (size_t)cJSON_GetArraySize(entries);
	}
	if (!room && bad->status == STORE_OK)
		outcome_add(oo, OUTCOME_WARNING, "too-costly", NULL,
			    "_include and _revinclude stopped at %d added resources", INCLUDE_MAX);
}

/* One name=value pair of a link, URL-encoded, with its '&'. */
static void link_param(struct strbuf *b, const char *name, const char *modifier, const char *value)
{
	rest_url_encode_sb(b, name);
	if (modifier) {
		strbuf_addc(b, ':');
		rest_url_encode_sb(b, modifier);
	}
	strbuf_addc(b, '=');
	rest_url_encode_sb(b, value);
	strbuf_addc(b, '&');
}

/* The link to the page of q's search at offset: every parameter that shapes
 * the answer (criteria, _sort, _include, _revinclude, _elements, _summary,
 * _total) with _count and _offset, so that following it continues the same
 * search. Returns a new string (caller frees), NULL on OOM. */
static char *page_link(const char *base, const char *type, const struct query *q, size_t offset)
{
	static const char *const summaries[] = {"false", "true", "text", "data"};
	struct strbuf b = STRBUF_INIT;
	strbuf_adds(&b, base);
	strbuf_addc(&b, '/');
	strbuf_adds(&b, type);
	strbuf_addc(&b, '?');
	for (size_t i = 0; i < q->n; i++)
		link_param(&b, q->params[i].name, q->params[i].modifier, q->params[i].value);
	if (q->sort)
		link_param(&b, "_sort", NULL, q->sort);
	for (size_t i = 0; i < q->ninc; i++)
		link_param(&b, "_include", q->inc_iterate[i] ? "iterate" : NULL, q->includes[i]);
	for (size_t i = 0; i < q->nrev; i++)
		link_param(&b, "_revinclude", q->rev_iterate[i] ? "iterate" : NULL, q->revincludes[i]);
	if (q->elements)
		link_param(&b, "_elements", NULL, q->elements);
	if (q->summary_count)
		link_param(&b, "_summary", NULL, "count");
	else if (q->summary != SUMMARY_FALSE)
		link_param(&b, "_summary", NULL, summaries[q->summary]);
	if (q->no_total)
		link_param(&b, "_total", NULL, "none");
	char tail[64];
	snprintf(tail, sizeof tail, "_count=%zu&_offset=%zu", q->count, offset);
	strbuf_adds(&b, tail);
	return strbuf_take(&b, NULL);
}

/* Each type a chained criterion (name, modifier) of type passes through
 * needs s on it, level by level as the store resolves them (subject.name
 * through subject's one target type, subject:Patient.name through Patient).
 * A level the store cannot resolve is left to it (it refuses the search).
 * false with the type refused into refused. */
static bool chain_allowed(const struct http_request *req, const char *type, const char *name, const char *modifier,
			  int depth, char refused[STORE_TYPE_SIZE])
{
	char ref[65], target[STORE_TYPE_SIZE] = "", inner[130];
	const char *dot_mod = modifier ? strchr(modifier, '.') : NULL;
	const char *dot = strchr(name, '.');
	if (!dot_mod && !dot)
		return true;
	if (depth > 8) {
		snprintf(refused, STORE_TYPE_SIZE, "*");
		return false;
	}
	if (dot_mod && !dot) { /* a type on the first level; a later level's is the inner one's */
		snprintf(ref, sizeof ref, "%s", name);
		snprintf(target, sizeof target, "%.*s", (int)(dot_mod - modifier), modifier);
		snprintf(inner, sizeof inner, "%s", dot_mod + 1);
	} else {
		snprintf(ref, sizeof ref, "%.*s", (int)(dot - name), name);
		snprintf(inner, sizeof inner, "%s%s%s", dot + 1, modifier ? ":" : "", modifier ? modifier : "");
	}
	const struct search_param_def *def = search_params_find(type, ref, NULL);
	if (!def || def->kind != SEARCH_PARAM_REFERENCE)
		return true;
	if (!target[0] && search_params_targets_count(def) == 1)
		snprintf(target, sizeof target, "%s", def->targets);
	if (!target[0] || !model_resource(target))
		return true;
	if (!access_may(req, target, SCOPE_S)) {
		snprintf(refused, STORE_TYPE_SIZE, "%s", target);
		return false;
	}
	char *colon = strchr(inner, ':'), *idot = strchr(inner, '.');
	if (colon && (!idot || colon < idot))
		*colon++ = '\0';
	else
		colon = NULL;
	return chain_allowed(req, target, inner, colon, depth + 1, refused);
}

/* The scope check of a search's criteria beyond its own type: chains and
 * _has (_has:Type:param:... needs s on Type, and again for a nested _has).
 * false after answering 403 naming the first type refused. */
static bool criteria_allowed(const struct http_request *req, struct http_response *resp, const char *type,
			     const struct query *q)
{
	char refused[STORE_TYPE_SIZE] = "";
	for (size_t i = 0; i < q->n && !refused[0]; i++) {
		const struct store_search_param *p = &q->params[i];
		if (!strcmp(p->name, "_has")) {
			/* _has:Type:param:(_has:Type:param:)*criterion */
			const char *t = p->modifier ? p->modifier : "";
			while (*t) {
				size_t n = strcspn(t, ":");
				snprintf(refused, sizeof refused, "%.*s",
					 (int)(n < STORE_TYPE_SIZE - 1 ? n : STORE_TYPE_SIZE - 1), t);
				if (!access_may(req, refused, SCOPE_S))
					break;
				refused[0] = '\0';
				const char *next = strstr(t, ":_has:");
				t = next ? next + 6 : "";
			}
		} else {
			chain_allowed(req, type, p->name, p->modifier, 0, refused);
		}
	}
	return !refused[0] || auth_forbid(resp, refused, SCOPE_S);
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
				    "the search parameter '%.64s' is not supported for %s and was left out",
				    q->params[i].name, type);
		}
		q->n = keep;
	}
	if (!criteria_allowed(req, resp, type, q)) {
		outcome_release(&notes);
		return;
	}
	if (!granular_confine(req, type, q)) {
		outcome_release(&notes);
		auth_forbid(resp, type, SCOPE_S);
		return;
	}
	char own[256];
	rest_base_url(app, req, own, sizeof own);
	for (size_t i = 0; i < q->n; i++) {
		/* a search for BASE/Type/id is one for the local Type/id */
		const struct search_param_def *def = search_params_find(type, q->params[i].name, NULL);
		if (def && def->kind == SEARCH_PARAM_REFERENCE && strchr(q->params[i].value, '/') &&
		    !strchr(q->params[i].value, ',') && rest_local_ref(q->params[i].value, own) != q->params[i].value)
			q->params[i].value = rest_local_ref(q->params[i].value, own);
	}
	if (!result_params_check(type, q, prefer && strstr(prefer, "handling=lenient"), &notes)) {
		rest_send_outcome(req, resp, 400, &notes);
		return;
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
		store_page_release(&page); /* a page may be partly filled */
		rest_store_answer(req, resp, st, &err);
		return;
	}
	char base[256];
	rest_base_url(app, req, base, sizeof base);
	cJSON *b = rest_bundle_new("searchset");
	if (!b) {
		outcome_release(&notes);
		store_page_release(&page);
		http_set_error(resp, 500, "exception", "out of memory");
		return;
	}
	if (page.total != STORE_NO_TOTAL)
		cJSON_AddNumberToObject(b, "total", (double)page.total);
	cJSON *links = cJSON_AddArrayToObject(b, "link");
	/* without a total, a full page may have more behind it */
	bool more = page.total == STORE_NO_TOTAL ? page.n == q->count && q->count > 0 : q->offset + page.n < page.total;
	struct {
		const char *rel;
		bool want;
		size_t offset;
	} rels[] = {
		{"self", true, q->offset},
		{"next", !q->summary_count && more, q->offset + q->count},
		{"previous", !q->summary_count && q->offset > 0, q->offset > q->count ? q->offset - q->count : 0},
	};
	for (size_t i = 0; i < sizeof rels / sizeof rels[0]; i++) {
		char *url = rels[i].want ? page_link(base, type, q, rels[i].offset) : NULL;
		if (url)
			rest_add_link(links, rels[i].rel, url);
		free(url);
	}
	if (!q->summary_count) {
		cJSON *entries = cJSON_AddArrayToObject(b, "entry");
		for (size_t i = 0; i < page.n; i++) {
			cJSON *r = page.items[i].resource;
			if (!r)
				continue;
			page.items[i].resource = NULL;
			rest_add_entry(entries, base, r, "match");
		}
		/* includes follow the matches' references before _elements or
		 * _summary leave them out */
		struct store_error bad = {0};
		egress_bundle(app, req, resp, b); /* the matches: what is withheld includes nothing */
		size_t left_out = 0;
		do_includes(app, req, q, entries, base, &left_out, &notes, &bad);
		if (left_out) {
			/* what was left out is not said, nor how much there is */
			access_left_out();
			cJSON_DeleteItemFromObjectCaseSensitive(b, "total");
		}
		if (bad.status != STORE_OK) {
			outcome_release(&notes);
			store_page_release(&page);
			cJSON_Delete(b);
			rest_store_answer(req, resp, bad.status, &bad);
			return;
		}
		egress_bundle(app, req, resp, b);
		cJSON *me;
		cJSON_ArrayForEach(me, entries)
		{
			const char *mode = rest_str_member(cJSON_GetObjectItemCaseSensitive(me, "search"), "mode");
			cJSON *r = cJSON_GetObjectItemCaseSensitive(me, "resource");
			if (!mode || strcmp(mode, "match") != 0)
				continue;
			if (q->elements)
				rest_elements_only(r, q->elements);
			else
				rest_summary_only(r, q->summary);
		}
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
	store_page_release(&page);
	api_fhir_send(req, resp, 200, b);
}

/* A search of a pass-through type reaching other types (includes, chains,
 * _has, in the URL or the form body) is answered by the upstream and
 * cannot be filtered here: for a client whose scopes are checked it needs
 * every permission on every type. false after answering 403. */
static bool upstream_search_allowed(const struct app *app, const struct http_request *req, struct http_response *resp,
				    const char *type, bool form)
{
	if (!access_checked(req) || !rest_routed_upstream(app, type))
		return true;
	const char *gq[1];
	size_t gl[1];
	if (access_granular(req, type, SCOPE_S, gq, gl, 1))
		return auth_forbid(resp, type, SCOPE_S); /* the upstream's answer cannot be confined here */
	struct query q;
	memset(&q, 0, sizeof q);
	bool reach = http_query_each(req, rest_query_add, &q) != 0 ||
		     (form && query_from_form(&q, req->body, req->body_len) != 0) || q.ninc || q.nrev;
	for (size_t i = 0; !reach && i < q.n; i++)
		reach = auth_reaches_other_types(q.params[i].name) ||
			(q.params[i].modifier && strchr(q.params[i].modifier, '.'));
	rest_query_release(&q);
	const unsigned all = SCOPE_C | SCOPE_R | SCOPE_U | SCOPE_D | SCOPE_S;
	return !reach || access_may(req, "*", all) || auth_forbid(resp, "*", all);
}

void rest_get_search(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	const char *type = req->params[0];
	if (!rest_check_type_id(req, resp, type, NULL) || !upstream_search_allowed(app, req, resp, type, false) ||
	    rest_pass_through(app, req, resp, type))
		return;
	struct query q;
	memset(&q, 0, sizeof q);
	if (http_query_each(req, rest_query_add, &q) != 0) {
		http_set_error(resp, 400, "invalid", "%s", q.error[0] ? q.error : "bad query");
		rest_query_release(&q);
		return;
	}
	run_search(app, req, resp, type, &q);
	rest_query_release(&q);
}

void rest_post_search(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	const char *type = req->params[0];
	if (!rest_check_type_id(req, resp, type, NULL) || !upstream_search_allowed(app, req, resp, type, true) ||
	    rest_pass_through(app, req, resp, type))
		return;
	const char *ct = http_header(req, "Content-Type");
	if (req->body_len && (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0)) {
		http_set_error(resp, 415, "not-supported", "_search takes application/x-www-form-urlencoded");
		return;
	}
	struct query q;
	memset(&q, 0, sizeof q);
	if (http_query_each(req, rest_query_add, &q) != 0 || query_from_form(&q, req->body, req->body_len) != 0) {
		http_set_error(resp, 400, "invalid", "%s", q.error[0] ? q.error : "bad query");
		rest_query_release(&q);
		return;
	}
	run_search(app, req, resp, type, &q);
	rest_query_release(&q);
}
