#include "api/rest_int.h"
#include "fhir/fhir_helpers.h"

#include "api/access.h"
#include "api/provenance.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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
	unsigned confined; /* the permission only part of the type is given for (rest_confined), or 0 */
	bool written;      /* the store changed: outbox material */
	bool written_deleted;
	char written_id[STORE_ID_SIZE];
	int64_t written_version;
	struct bundle_plan *bp; /* the plan it is part of */
};

static int run_entry_write(const struct app *app, const struct http_request *req, struct entry_plan *p,
			   bool hooks_done, const char *base, struct outcome *oo);
static struct privacy_sibling *plan_siblings(struct bundle_plan *bp, size_t *n);

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

/* The first "reference" in res still naming a bundle-local identity
 * (urn:uuid: or urn:oid:) once the entries' fullUrls are resolved, or NULL:
 * no entry defines it, so it would be stored dangling. */
static const char *unresolved_urn(const cJSON *node)
{
	for (const cJSON *c = node ? node->child : NULL; c; c = c->next) {
		if (cJSON_IsString(c) && c->string && !strcmp(c->string, "reference")) {
			if (!strncmp(c->valuestring, "urn:uuid:", 9) || !strncmp(c->valuestring, "urn:oid:", 8))
				return c->valuestring;
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			const char *u = unresolved_urn(c);
			if (u)
				return u;
		}
	}
	return NULL;
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
		const char *vid = rest_meta_str(res, "versionId"), *lu = rest_meta_str(res, "lastUpdated");
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
	const char *url = rest_str_member(cJSON_GetObjectItemCaseSensitive(entry, "request"), "url");
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

/* The scope check of one entry of a Bundle: its interaction (method on
 * url) on its type; criteria reaching other types (a chain in a conditional
 * url or ifNoneExist) and what is no plain interaction need every
 * permission on every type. A read, create, update or delete of one
 * resource that granular or patient/ scopes give on part of the type only
 * is allowed here with *confined set to its permission: the entry is
 * confined when it runs, as the single interaction is. False with the scope
 * that is missing. */
static bool entry_allowed(const struct http_request *req, const cJSON *entry, const char *method, const char *url,
			  char type[80], unsigned *need, unsigned *confined)
{
	const char *ine = rest_str_member(cJSON_GetObjectItemCaseSensitive(entry, "request"), "ifNoneExist");
	const char *qm = strchr(url, '?');
	*need = auth_interaction(method, url, ine != NULL, type, 80);
	if (!*need || rest_criteria_reach_other_types(qm ? qm + 1 : NULL) || rest_criteria_reach_other_types(ine)) {
		snprintf(type, 80, "*");
		*need = SCOPE_C | SCOPE_R | SCOPE_U | SCOPE_D | SCOPE_S;
	}
	*confined = 0;
	if (access_may(req, type, *need))
		return true;
	bool one = *need == SCOPE_R || *need == SCOPE_C || *need == SCOPE_U || *need == SCOPE_D;
	if (one && !qm && !ine && rest_confined(req, type, *need))
		*confined = *need;
	return *confined != 0;
}

/* Confines a planned entry as the single interaction is (rest_confine.c):
 * a read or delete of what is outside the client's reach, or not stored,
 * answers 404; a write sending what is outside 403, replacing what is
 * outside 404. 0, or the status with the issue in oo. */
static int confine_entry(const struct app *app, const struct http_request *req, const struct entry_plan *p,
			 struct outcome *oo)
{
	int st = 0;
	if (!p->confined)
		return 0;
	if (p->confined == SCOPE_R || p->confined == SCOPE_D)
		st = p->id[0] && rest_confined_stored(app, req, p->type, p->id, NULL, p->confined) ? 0 : 404;
	else
		st = rest_write_reach(app, req, p->type, p->confined == SCOPE_U ? p->id : NULL, p->resource);
	if (st == 403)
		access_refuse_issue(oo, NULL, p->type, p->confined);
	else if (st)
		outcome_add(oo, OUTCOME_ERROR, "not-found", NULL, "no %s with id %s", p->type, p->id);
	return st;
}

/* Readies an entry of a Bundle for the upstream, in place: request.url
 * without the gateway's base, a POST or PUT resource through upstream_ready.
 * Returns 0, or the status with issues in oo. */
static int ready_entry(const struct app *app, const struct http_request *req, cJSON *entry, const char *base,
		       struct outcome *oo)
{
	cJSON *rq = cJSON_GetObjectItemCaseSensitive(entry, "request");
	const char *method = rest_str_member(rq, "method"), *url = rest_str_member(rq, "url"), *rel = entry_url(entry, base);
	if (rel != url && !cJSON_ReplaceItemInObjectCaseSensitive(rq, "url", cJSON_CreateString(rel))) {
		outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		return 500;
	}
	if (strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0)
		return 0;
	cJSON *res = cJSON_DetachItemFromObjectCaseSensitive(entry, "resource");
	int st = rest_upstream_ready(app, req, &res, oo);
	if (res)
		cJSON_AddItemToObject(entry, "resource", res);
	return st;
}

/* The entries of a batch for pass-through types go to the upstream together,
 * as one batch; each gets the upstream's answer to it, or its own refusal,
 * or the failure of the exchange as its response. This readies that batch:
 * an entry refused here gets its response now. Returns the body to send
 * (*sent entries) or NULL when none is left to send (or out of memory:
 * *oom). */
static char *upstream_batch_body(const struct app *app, const struct http_request *req, struct entry_plan *plans,
				 size_t n, const char *base, size_t *sent, size_t *blen, bool *oom)
{
	cJSON *sub = rest_bundle_new("batch");
	cJSON *list = sub ? cJSON_AddArrayToObject(sub, "entry") : NULL;
	*sent = 0;
	*oom = false;
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
			(*sent)++;
		}
		outcome_release(&eo);
	}
	char *body = *sent ? fjson_print(sub, false, blen) : NULL;
	cJSON_Delete(sub);
	*oom = *sent && !body;
	return body;
}

/* Gives each entry sent (upstream_batch_body) its answer from the
 * upstream's batch-response, or the failure of the exchange (st, with oo). */
static void upstream_batch_answers(struct entry_plan *plans, size_t n, size_t sent, int st,
				   const struct upstream_response *ur, cJSON *tree, struct outcome *oo)
{
	cJSON *answers = cJSON_GetObjectItemCaseSensitive(tree, "entry");
	cJSON *failure = NULL; /* the outcome each entry gets when the batch as a whole failed */
	const char *bt = rest_str_member(tree, "type");
	if (st) {
		failure = outcome_to_json(oo);
	} else if (ur->status != 200 || !bt || strcmp(bt, "batch-response") != 0 ||
		   (size_t)cJSON_GetArraySize(answers) != sent) {
		st = ur->status >= 400 ? (int)ur->status : 502;
		if (rest_str_member(tree, "resourceType") && !strcmp(rest_str_member(tree, "resourceType"), "OperationOutcome")) {
			failure = cJSON_Duplicate(tree, 1);
		} else {
			outcome_add(oo, OUTCOME_ERROR, st == 502 ? "transient" : "exception", NULL,
				    "the upstream answered %ld without a batch-response for the %zu entries sent", ur->status,
				    sent);
			failure = outcome_to_json(oo);
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct entry_plan *p = &plans[i];
		if (!p->upstream || p->response)
			continue;
		p->response = st ? status_entry(st, cJSON_Duplicate(failure, 1)) : cJSON_DetachItemFromArray(answers, 0);
	}
	cJSON_Delete(failure);
}

/* Runs one planned entry. Returns 0 and fills p->response, or the HTTP
 * status of its failure with issues in oo. */
static int run_entry(const struct app *app, const struct http_request *req, struct entry_plan *p, bool hooks_done,
		     const char *base, struct outcome *oo)
{
	int st = run_entry_write(app, req, p, hooks_done, base, oo);
	if (st || !p->written || !rest_forwards(app, p->type))
		return st;
	struct store_error err = {0};
	if (store_outbox_add(app->store, p->type, p->written_id, p->written_version, p->written_deleted, &err) !=
	    STORE_OK) {
		outcome_add(oo, OUTCOME_ERROR, "exception", NULL, "%s", err.message);
		return 500;
	}
	return 0;
}

/* r as compact text without the meta the store stamps (versionId,
 * lastUpdated; meta itself when nothing else is in it); NULL on OOM. */
static char *unstamped_text(const cJSON *r)
{
	cJSON *c = cJSON_Duplicate(r, true);
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(c, "meta");
	if (cJSON_IsObject(meta)) {
		cJSON_DeleteItemFromObjectCaseSensitive(meta, "versionId");
		cJSON_DeleteItemFromObjectCaseSensitive(meta, "lastUpdated");
		if (!meta->child)
			cJSON_DeleteItemFromObjectCaseSensitive(c, "meta");
	}
	char *text = c ? fjson_print(c, false, NULL) : NULL;
	cJSON_Delete(c);
	return text;
}

/* The current version of type/id (the caller frees it) when it is live and
 * equals resource but for the stamped meta, the same JSON text to the byte
 * (so a decimal written 1.10 instead of 1.1 is a change); else NULL. */
static cJSON *unchanged(const struct app *app, const char *type, const char *id, const cJSON *resource)
{
	cJSON *cur = NULL;
	if (store_read(app->store, type, id, &cur, NULL) != STORE_OK)
		return NULL;
	char *a = unstamped_text(cur), *b = unstamped_text(resource);
	bool same = a && b && strcmp(a, b) == 0;
	free(a);
	free(b);
	if (!same) {
		cJSON_Delete(cur);
		cur = NULL;
	}
	return cur;
}

/* An ingested Patient joins the stored one element by element
 * (fhir_merge_elements): one person pushed through several formats keeps
 * what each format said, a thin record never erasing a richer one. 0, or
 * 500 with the issue when memory ran out. */
static int merge_stored(const struct app *app, struct entry_plan *p, struct outcome *oo)
{
	cJSON *cur = NULL;
	if (store_read(app->store, p->type, p->id, &cur, NULL) != STORE_OK)
		return 0; /* nothing live to keep */
	int rc = fhir_merge_elements(p->resource, cur);
	cJSON_Delete(cur);
	if (rc) {
		outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
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
	if (strcmp(p->method, "POST") != 0 && strcmp(p->method, "PUT") != 0) {
		int reach = confine_entry(app, req, p, oo);
		if (reach)
			return reach;
	}
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
		int hs = rest_before_store(app, req, &p->resource, oo);
		if (hs)
			return hs;
	}
	if (hooks_done && !strcmp(p->method, "PUT") && !strcmp(p->type, "Patient")) {
		int ms = merge_stored(app, p, oo);
		if (ms)
			return ms;
	}
	struct privacy_writer writer;
	privacy_writer_of(app, req, &writer);
	size_t nsib = 0;
	struct privacy_sibling *sib = plan_siblings(p->bp, &nsib);
	if (privacy_label_write(app, &writer, p->resource, sib, nsib) != 0) {
		outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		return 500;
	}
	if (!rest_check_resource(p->resource, p->type, oo))
		return 400;
	int reach = confine_entry(app, req, p, oo);
	if (reach)
		return reach;
	int pst = rest_check_profiles(app, p->resource, oo);
	if (pst)
		return pst;
	const char *urn = unresolved_urn(p->resource);
	if (urn) {
		outcome_add(oo, OUTCOME_ERROR, "invalid", NULL,
			    "the reference '%.100s' names no entry of the Bundle (no entry has it as fullUrl)", urn);
		return 400;
	}
	cJSON *out = NULL;
	bool created = true;
	if (!strcmp(p->method, "POST")) {
		const cJSON *rq = cJSON_GetObjectItemCaseSensitive(p->entry, "request");
		const char *ine = rest_str_member(rq, "ifNoneExist");
		if (ine) {
			char found[STORE_ID_SIZE] = "";
			int cst = 400;
			long n = rest_conditional_match(app, p->type, ine, found, oo, &cst);
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
				snprintf(loc, sizeof loc, "%s/%s/%s/_history/%s", base, p->type, found, rest_meta_str(res, "versionId"));
				p->response = response_entry("200", loc, res, false);
				cJSON_Delete(res);
				return 0;
			}
		}
		st = store_create(app->store, p->type, p->resource, p->id, &out, &err);
	} else {
		const cJSON *rq = cJSON_GetObjectItemCaseSensitive(p->entry, "request");
		const char *if_match = rest_str_member(rq, "ifMatch");
		if (hooks_done && !if_match && (out = unchanged(app, p->type, p->id, p->resource))) {
			/* a push of what is stored already: no version, nothing to deliver */
			snprintf(loc, sizeof loc, "%s/%s/%s/_history/%s", base, p->type, p->id,
				 rest_meta_str(out, "versionId"));
			p->response = response_entry("200", loc, out, false);
			cJSON_Delete(out);
			return 0;
		}
		st = store_update(app->store, p->type, p->id, p->resource, if_match, &created, &out, &err);
	}
	if (st != STORE_OK) {
		outcome_add(oo, OUTCOME_ERROR, st == STORE_VERSION_MISMATCH ? "conflict" : "exception", NULL, "%s",
			    err.message);
		return store_status_http(st);
	}
	st = privacy_pass_on(app, out, plan_siblings(p->bp, &nsib), nsib, &err);
	if (st != STORE_OK) {
		cJSON_Delete(out);
		outcome_add(oo, OUTCOME_ERROR, "exception", NULL, "%s", err.message);
		return store_status_http(st);
	}
	snprintf(loc, sizeof loc, "%s/%s/%s/_history/%s", base, p->type, rest_str_member(out, "id"), rest_meta_str(out, "versionId"));
	p->response = response_entry(created ? "201" : "200", loc, out, false);
	p->written = true;
	snprintf(p->written_id, sizeof p->written_id, "%s", rest_str_member(out, "id"));
	p->written_version = strtoll(rest_meta_str(out, "versionId") ? rest_meta_str(out, "versionId") : "0", NULL, 10);
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
	struct privacy_sibling *sib;         /* the entries' resources, for the labels they pass on */
	const struct provenance_source *src; /* the ingested document, or NULL */
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
	free(bp->sib);
	bp->plans = NULL;
	bp->map = NULL;
	bp->sib = NULL;
}

/* The entries' resources as they are now (a hook may have replaced one);
 * NULL when there are none. */
static struct privacy_sibling *plan_siblings(struct bundle_plan *bp, size_t *n)
{
	*n = 0;
	if (!bp || !bp->sib)
		return NULL;
	*n = bp->n;
	for (size_t i = 0; i < bp->n; i++)
		bp->sib[i] = (struct privacy_sibling){.type = bp->plans[i].type,
						      .id = bp->plans[i].id,
						      .resource = bp->plans[i].resource,
						      .written = bp->plans[i].written};
	return bp->sib;
}

/* One entry's key for finding duplicates: its fullUrl, or the resource a
 * write touches ("Type/id"). */
struct entry_key {
	char key[STORE_TYPE_SIZE + STORE_ID_SIZE + 520];
	size_t entry;
};

static int entry_key_cmp(const void *a, const void *b)
{
	const struct entry_key *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : (x->entry > y->entry) - (x->entry < y->entry);
}

/* A transaction names each entry once (fullUrl) and touches each resource
 * once (DELETE, POST, PUT: FHIR R4 http 3.1.0.11.2): false with the issue
 * in oo when two entries share a fullUrl or write the same Type/id. */
static bool tx_distinct(const struct bundle_plan *bp, struct outcome *oo)
{
	struct entry_key *keys = calloc(bp->n ? 2 * bp->n : 1, sizeof *keys);
	if (!keys) {
		outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		return false;
	}
	size_t k = 0;
	for (size_t i = 0; i < bp->n; i++) {
		const struct entry_plan *p = &bp->plans[i];
		const char *full = rest_str_member(p->entry, "fullUrl");
		if (full) {
			snprintf(keys[k].key, sizeof keys[k].key, "F%s", full);
			keys[k++].entry = i;
		}
		if (strcmp(p->method, "GET") != 0 && p->id[0]) {
			snprintf(keys[k].key, sizeof keys[k].key, "R%s/%s", p->type, p->id);
			keys[k++].entry = i;
		}
	}
	qsort(keys, k, sizeof *keys, entry_key_cmp);
	bool ok = true;
	for (size_t i = 1; ok && i < k; i++) {
		if (strcmp(keys[i].key, keys[i - 1].key) != 0)
			continue;
		char where[64];
		bool full = keys[i].key[0] == 'F';
		snprintf(where, sizeof where, "Bundle.entry[%zu]%s", keys[i].entry, full ? ".fullUrl" : ".request");
		if (full)
			outcome_add(oo, OUTCOME_ERROR, "invalid", where,
				    "fullUrl '%.200s' is also entry %zu's: a transaction names each entry once", keys[i].key + 1,
				    keys[i - 1].entry);
		else
			outcome_add(oo, OUTCOME_ERROR, "invalid", where,
				    "entry %zu writes %.140s too: a transaction touches each resource once",
				    keys[i - 1].entry, keys[i].key + 1);
		ok = false;
	}
	free(keys);
	return ok;
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
	const char *btype = rest_str_member(bundle, "type");
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
	rest_base_url(app, req, bp->base, sizeof bp->base);
	bool ok = true;
	size_t first_up = 0;
	/* plan: method, url, ids; urn:uuid fullUrls get their ids now */
	for (size_t i = 0; i < n && ok; i++) {
		struct entry_plan *p = &plans[i];
		p->entry = cJSON_GetArrayItem(entries, (int)i);
		p->method = rest_str_member(cJSON_GetObjectItemCaseSensitive(p->entry, "request"), "method");
		const char *url = entry_url(p->entry, bp->base);
		char where[64];
		snprintf(where, sizeof where, "Bundle.entry[%zu].request", i);
		if (!known_method(p->method) || !url) {
			outcome_add(oo, OUTCOME_ERROR, "required", where, "each entry needs request.method (GET, POST, PUT, DELETE) and url");
			ok = false;
			break;
		}
		bool typed = url_type(url, p->type);
		p->upstream = typed && !hooks_done && rest_routed_upstream(app, p->type);
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
		if (!p->upstream && (!typed || (*id && !rest_valid_id(id)))) {
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
		char stype[80];
		unsigned need = 0;
		if (!entry_allowed(req, p->entry, p->method, url, stype, &need, &p->confined) ||
		    (p->confined && p->upstream)) {
			/* a confined entry for a pass-through type: the upstream's
			 * answer cannot be confined here (rest_confine_local) */
			/* a batch entry answers its own refusal; a transaction, or
			 * what an ingested document writes, is refused whole */
			snprintf(where, sizeof where, "Bundle.entry[%zu]", i);
			if (bp->tx || hooks_done) {
				access_refuse_issue(oo, where, stype, need);
				outcome_add(oo, OUTCOME_ERROR, "forbidden", where,
					    "this entry is not allowed to the client; nothing was stored");
				*status = 403;
				ok = false;
				break;
			}
			struct outcome eo = OUTCOME_INIT;
			access_refuse_issue(&eo, where, stype, need);
			p->response = outcome_entry(403, &eo);
			outcome_release(&eo);
			p->upstream = false;
			continue;
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
			const char *full = rest_str_member(p->entry, "fullUrl");
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
	if (ok && bp->tx && !tx_distinct(bp, oo))
		ok = false;
	for (size_t i = 0; ok && i < n; i++)
		if (plans[i].resource) {
			rewrite_refs(plans[i].resource, map, bp->nmap);
			rest_localize_refs(plans[i].resource, bp->base, 0);
		}
	for (size_t i = 0; i < n; i++)
		plans[i].bp = bp;
	if (ok && n && !(bp->sib = calloc(n, sizeof *bp->sib))) {
		*status = 500;
		outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		ok = false;
	}
	return ok;
}

static int64_t version_of(const cJSON *res)
{
	const char *v = rest_meta_str(res, "versionId");
	return v ? strtoll(v, NULL, 10) : 0;
}

/* The gateway's Provenances go upstream only when upstream.routes names
 * the type itself (not through "*"): they are its own record, and their
 * targets name its own versions. */
static bool provenance_delivered(const struct app *app)
{
	return cJSON_GetObjectItemCaseSensitive(app->cfg->upstream.routes, "Provenance") &&
	       rest_forwards(app, "Provenance");
}

/* Stores the Provenance of a transaction inside its store transaction:
 * every entry written is a target (api/provenance.h). Returns 0 (also when
 * nothing was written), or the status to answer with issues in oo. */
static int write_provenance(const struct app *app, const struct http_request *req, struct bundle_plan *bp,
			    struct outcome *oo)
{
	size_t n = 0;
	for (size_t i = 0; i < bp->n; i++)
		n += bp->plans[i].written;
	if (!n)
		return 0;
	struct provenance_target *t = calloc(n, sizeof *t);
	if (!t) {
		outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		return 500;
	}
	n = 0;
	for (size_t i = 0; i < bp->n; i++)
		if (bp->plans[i].written)
			t[n++] = (struct provenance_target){.type = bp->plans[i].type,
							    .id = bp->plans[i].written_id,
							    .version = bp->plans[i].written_version};
	struct privacy_writer writer;
	privacy_writer_of(app, req, &writer);
	char now[STORE_TIME_SIZE];
	store_now(now, NULL);
	cJSON *prov = provenance_new(&writer, t, n, bp->src, now);
	free(t);
	size_t nsib = 0;
	struct store_error err = {0};
	cJSON *out = NULL;
	int status = 0;
	/* labelled with what it names (privacy: "from Provenance *") */
	if (!prov || privacy_label_write(app, &writer, prov, plan_siblings(bp, &nsib), nsib) != 0) {
		outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		status = 500;
	} else if (store_create(app->store, "Provenance", prov, NULL, &out, &err) != STORE_OK ||
		   (provenance_delivered(app) && store_outbox_add(app->store, "Provenance", rest_str_member(out, "id"),
								  version_of(out), false, &err) != STORE_OK)) {
		outcome_add(oo, OUTCOME_ERROR, "exception", NULL, "%s", err.message);
		status = store_status_http(err.status);
	}
	cJSON_Delete(out);
	cJSON_Delete(prov);
	return status;
}

/* Runs the local entries of a planned batch or transaction against the store
 * (a transaction atomically); a batch's pass-through entries are the
 * caller's (upstream_batch_body). Returns true, or false with issues in oo
 * and *status set. */
static bool run_plan(const struct app *app, const struct http_request *req, struct bundle_plan *bp, bool hooks_done,
		     struct outcome *oo, int *status)
{
	size_t n = bp->n;
	struct entry_plan *plans = bp->plans;
	bool tx = bp->tx, ok = true;
	const char *base = bp->base;
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
		if (p->upstream || p->response)
			continue; /* a pass-through entry, or one refused when planned */
		struct outcome eo = OUTCOME_INIT;
		/* a batch entry that is delivered upstream commits with its outbox
		 * record; a conditional create decides inside its transaction */
		bool own = !tx && strcmp(p->method, "GET") != 0 &&
			   (rest_forwards(app, p->type) || privacy_passes_on(app, p->type) ||
			    rest_str_member(cJSON_GetObjectItemCaseSensitive(p->entry, "request"), "ifNoneExist"));
		int st = 0;
		if (own && store_begin(app->store, &err) != STORE_OK) {
			outcome_add(&eo, OUTCOME_ERROR, "exception", NULL, "%s", err.message);
			st = 500;
		}
		if (!st)
			st = run_entry(app, req, p, hooks_done, base, tx ? oo : &eo);
		if (own && rest_finish_txn(app, st ? STORE_IO : STORE_OK, &err) != STORE_OK && !st) {
			outcome_add(&eo, OUTCOME_ERROR, "exception", NULL, "commit failed: %s", err.message);
			st = store_status_http(err.status);
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
	if (tx && ok) {
		int pst = write_provenance(app, req, bp, oo);
		if (pst) {
			outcome_add(oo, OUTCOME_ERROR, "processing", NULL,
				    "the transaction's Provenance could not be stored; nothing was stored");
			*status = pst;
			ok = false;
		}
	}
	if (tx) {
		if (ok && store_commit(app->store, &err) != STORE_OK) {
			outcome_add(oo, OUTCOME_ERROR, "exception", NULL, "commit failed: %s", err.message);
			*status = store_status_http(err.status);
			ok = false;
		}
		if (!ok)
			store_rollback(app->store, &err);
		else
			outbox_kick(app->outbox);
	}
	free(order);
	return ok;
}

/* The response Bundle of a planned batch or transaction whose entries all
 * have their responses. NULL with issues in oo and *status set. */
static cJSON *plan_answer(struct bundle_plan *bp, struct outcome *oo, int *status)
{
	size_t n = bp->n;
	struct entry_plan *plans = bp->plans;
	cJSON *out = rest_bundle_new(bp->tx ? "transaction-response" : "batch-response");
	cJSON *es = out ? cJSON_AddArrayToObject(out, "entry") : NULL;
	for (size_t i = 0; es && i < n; i++) {
		cJSON_AddItemToArray(es, plans[i].response ? plans[i].response : cJSON_CreateObject());
		plans[i].response = NULL;
	}
	if (!out) {
		*status = 500;
		outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
	} else {
		if (!n)
			cJSON_DeleteItemFromObjectCaseSensitive(out, "entry");
		*status = 200;
	}
	return out;
}

cJSON *api_rest_bundle_from(const struct app *app, const struct http_request *req, const cJSON *bundle,
			    const struct provenance_source *src, struct outcome *oo, int *status)
{
	struct bundle_plan bp;
	/* hooks_done: no entry is planned for the upstream */
	bool planned = plan_bundle(app, req, bundle, true, &bp, oo, status);
	bp.src = src;
	cJSON *out = planned && run_plan(app, req, &bp, true, oo, status) ? plan_answer(&bp, oo, status) : NULL;
	plan_release(&bp);
	return out;
}

cJSON *api_rest_bundle(const struct app *app, const struct http_request *req, const cJSON *bundle, struct outcome *oo,
		       int *status)
{
	return api_rest_bundle_from(app, req, bundle, NULL, oo, status);
}

bool api_rest_outbox_full(const struct app *app, struct http_response *resp)
{
	return rest_outbox_refuses(app, resp);
}

/* A batch or transaction whose every entry is for a pass-through type goes to
 * the upstream whole: each entry readied as a single write is (ready_entry),
 * then one POST to the upstream's base; its answer is the answer. A refused
 * entry refuses the Bundle, and nothing is sent. */
static void forward_bundle(const struct app *app, struct http_request *req, struct http_response *resp,
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
			rest_send_outcome(req, resp, st, &oo);
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
	struct rest_expect x = {.type = "Bundle"};
	rest_upstream_answer(app, req, resp, "POST", "", body, blen, "application/fhir+json", &x);
	free(body);
}

/* A batch mixing local and pass-through entries, its local entries run,
 * waiting for the upstream's answer to its pass-through ones. */
struct batch_wait {
	cJSON *bundle; /* the request's Bundle: the plans point into it */
	struct bundle_plan bp;
	size_t sent;
};

static void answer_batch(struct rest_pending *pd, struct http_request *req, struct http_response *resp)
{
	struct batch_wait *bw = pd->data;
	struct outcome oo = OUTCOME_INIT;
	cJSON *tree = NULL;
	int st = rest_upstream_received(pd->app, req, &pd->ur, &tree, &oo);
	upstream_batch_answers(bw->bp.plans, bw->bp.n, bw->sent, st, &pd->ur, tree, &oo);
	cJSON_Delete(tree);
	outcome_release(&oo);
	int status = 500;
	cJSON *out = plan_answer(&bw->bp, &oo, &status);
	if (out)
		api_fhir_send(req, resp, 200, out);
	else
		rest_send_outcome(req, resp, status, &oo);
	outcome_release(&oo);
	plan_release(&bw->bp);
	cJSON_Delete(bw->bundle);
	free(bw);
}

void rest_post_bundle(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	cJSON *b = api_fhir_read_body(app, req, resp);
	if (!b)
		return;
	struct outcome oo = OUTCOME_INIT;
	if (strcmp(rest_str_member(b, "resourceType"), "Bundle") != 0) {
		outcome_add(&oo, OUTCOME_ERROR, "invalid", "resourceType", "POST /fhir takes a Bundle");
		cJSON_Delete(b);
		rest_send_outcome(req, resp, 400, &oo);
		return;
	}
	struct bundle_plan bp;
	int status = 400;
	cJSON *out = NULL;
	if (!plan_bundle(app, req, b, false, &bp, &oo, &status)) {
		rest_send_outcome(req, resp, status, &oo);
	} else if (bp.n && bp.nup == bp.n) {
		forward_bundle(app, req, resp, b, bp.base);
	} else if (app->outbox && rest_outbox_refuses(app, resp)) {
		/* answered */
	} else if (!run_plan(app, req, &bp, false, &oo, &status)) {
		rest_send_outcome(req, resp, status, &oo);
	} else if (bp.nup) {
		/* the local entries are done; the pass-through ones go to the
		 * upstream as one batch while the request waits, deferred */
		size_t sent = 0, blen = 0;
		bool oom = false;
		char *body = upstream_batch_body(app, req, bp.plans, bp.n, bp.base, &sent, &blen, &oom);
		struct batch_wait *bw = body ? malloc(sizeof *bw) : NULL;
		bool deferred = false;
		if (bw) {
			*bw = (struct batch_wait){.bundle = b, .bp = bp, .sent = sent};
			deferred = rest_upstream_defer(app, req, "POST", "", body, blen, "application/fhir+json", answer_batch, bw);
			if (!deferred)
				free(bw);
		}
		bool had_body = body != NULL;
		free(body);
		if (deferred) {
			outcome_release(&oo);
			return; /* b and bp are bw's now */
		}
		if (oom || had_body) {
			http_set_error(resp, 500, "exception", "out of memory");
		} else if ((out = plan_answer(&bp, &oo, &status)) == NULL) {
			rest_send_outcome(req, resp, status, &oo);
		}
	} else if (!(out = plan_answer(&bp, &oo, &status))) {
		rest_send_outcome(req, resp, status, &oo);
	}
	if (out)
		api_fhir_send(req, resp, 200, out);
	outcome_release(&oo);
	plan_release(&bp);
	cJSON_Delete(b);
}
