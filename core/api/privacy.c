/* privacy — security labels on the way in (privacy.h). */
#include "api/privacy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "fhir/model.h"
#include "fhir/seclabel.h"
#include "store/store.h"

/* References followed per resource; the rest pass nothing on. */
#define PRIVACY_MAX_REFS 64

void privacy_writer_of(const struct app *app, const struct http_request *req, struct privacy_writer *w)
{
	(void)app;
	/* the authenticated client while the handler runs (core/auth); nobody
	 * identified (auth off, or outside a request): the local operator */
	const struct auth_principal *who = req ? req->principal : NULL;
	if (who && who->client_id)
		*w = (struct privacy_writer){.client_id = who->client_id, .part2_program = who->part2_program};
	else
		*w = (struct privacy_writer){.client_id = PRIVACY_LOCAL_OPERATOR, .part2_program = false};
}

struct walk {
	const struct app *app;
	cJSON *res;
	const char *type;
	const struct privacy_sibling *sib;
	size_t nsib, seen;
	int rc;
	struct store_error *err; /* passing on: the store's failure */
	enum store_status st;
};

/* type/id of a local reference "Type/id" or "Type/id/_history/v"; false
 * for anything else (contained, urn:, absolute URLs). */
static bool local_ref(const char *ref, char type[STORE_TYPE_SIZE], char id[STORE_ID_SIZE])
{
	const char *slash = strchr(ref, '/');
	if (!slash || slash == ref || (size_t)(slash - ref) >= STORE_TYPE_SIZE)
		return false;
	memcpy(type, ref, (size_t)(slash - ref));
	type[slash - ref] = '\0';
	if (!model_resource(type))
		return false;
	const char *end = strchr(slash + 1, '/');
	size_t len = end ? (size_t)(end - slash - 1) : strlen(slash + 1);
	if (!len || len >= STORE_ID_SIZE || (end && strncmp(end, "/_history/", 10) != 0))
		return false;
	memcpy(id, slash + 1, len);
	id[len] = '\0';
	return true;
}

static void pass_on(struct walk *w, const char *ref)
{
	char type[STORE_TYPE_SIZE], id[STORE_ID_SIZE];
	if (w->rc || !local_ref(ref, type, id) || !seclabel_inherits(w->app->labels, w->type, type))
		return;
	if (w->seen++ >= PRIVACY_MAX_REFS)
		return;
	for (size_t i = 0; i < w->nsib; i++) {
		const struct privacy_sibling *s = &w->sib[i];
		if (!s->resource || strcmp(s->type, type) != 0 || strcmp(s->id, id) != 0)
			continue;
		/* not labelled yet: its labels are what it has and its codes bring */
		if (seclabel_merge(w->res, s->resource) < 0 ||
		    seclabel_add_mask(w->app->labels, w->res, seclabel_scan(w->app->labels, s->resource)) < 0)
			w->rc = -1;
		return;
	}
	cJSON *stored = NULL;
	if (w->app->store && store_read(w->app->store, type, id, &stored, NULL) == STORE_OK &&
	    seclabel_merge(w->res, stored) < 0)
		w->rc = -1;
	cJSON_Delete(stored);
}

/* Gives res's labels to the resource ref names, when it takes them. */
static void give(struct walk *w, const char *ref)
{
	char type[STORE_TYPE_SIZE], id[STORE_ID_SIZE];
	if (w->st != STORE_OK || !local_ref(ref, type, id) || !seclabel_passes(w->app->labels, w->type, type))
		return;
	if (w->seen++ >= PRIVACY_MAX_REFS)
		return;
	for (size_t i = 0; i < w->nsib; i++) {
		const struct privacy_sibling *s = &w->sib[i];
		if (!s->resource || s->written || strcmp(s->type, type) != 0 || strcmp(s->id, id) != 0)
			continue;
		if (seclabel_merge(s->resource, w->res) < 0)
			w->st = store_fail(w->err, STORE_NO_MEMORY, "out of memory");
		return;
	}
	cJSON *stored = NULL, *out = NULL;
	if (store_read(w->app->store, type, id, &stored, NULL) != STORE_OK)
		return; /* not there (yet): nothing to label */
	int added = seclabel_merge(stored, w->res);
	const char *vid = NULL;
	if (added < 0) {
		w->st = store_fail(w->err, STORE_NO_MEMORY, "out of memory");
	} else if (added > 0) {
		const cJSON *meta = cJSON_GetObjectItemCaseSensitive(stored, "meta");
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, "versionId");
		char if_match[32];
		snprintf(if_match, sizeof if_match, "%s", cJSON_IsString(v) ? v->valuestring : "");
		w->st = store_update(w->app->store, type, id, stored, if_match[0] ? if_match : NULL, NULL, &out,
				     w->err);
		v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(out, "meta"), "versionId");
		vid = cJSON_IsString(v) ? v->valuestring : NULL;
		if (w->st == STORE_OK && vid && config_delivers(w->app->cfg, type))
			w->st = store_outbox_add(w->app->store, type, id, strtoll(vid, NULL, 10), false, w->err);
	}
	cJSON_Delete(out);
	cJSON_Delete(stored);
}

static void walk_refs(struct walk *w, const cJSON *node, size_t depth, bool giving)
{
	if (depth > 128 || w->rc || w->st != STORE_OK)
		return;
	const cJSON *c;
	cJSON_ArrayForEach(c, node)
	{
		if (c->string && !strcmp(c->string, "meta") && depth == 0)
			continue;
		if (c->string && !strcmp(c->string, "reference") && cJSON_IsString(c)) {
			if (giving)
				give(w, c->valuestring);
			else
				pass_on(w, c->valuestring);
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			walk_refs(w, c, depth + 1, giving);
		}
	}
}

bool privacy_passes_on(const struct app *app, const char *type)
{
	return app->labels && type && seclabel_passes(app->labels, type, "");
}

enum store_status privacy_pass_on(const struct app *app, const cJSON *res, struct privacy_sibling *siblings, size_t n,
				  struct store_error *err)
{
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(res, "resourceType");
	const cJSON *sec = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "meta"), "security");
	if (!app->labels || !app->store || !cJSON_IsString(rt) || !privacy_passes_on(app, rt->valuestring) ||
	    !cJSON_GetArraySize(sec))
		return STORE_OK;
	struct walk wk = {.app = app,
			  .res = (cJSON *)res, /* only read: give merges from it */
			  .type = rt->valuestring,
			  .sib = siblings,
			  .nsib = n,
			  .err = err,
			  .st = STORE_OK};
	walk_refs(&wk, res, 0, true);
	return wk.st;
}

/* The writer tag of res (system PRIVACY_WRITER_SYSTEM), or NULL. */
static cJSON *writer_tag(const cJSON *res)
{
	cJSON *t;
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "meta"), "tag"))
	{
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(t, "system");
		if (cJSON_IsString(s) && !strcmp(s->valuestring, PRIVACY_WRITER_SYSTEM))
			return t;
	}
	return NULL;
}

/* A new version keeps the labels of the one it replaces (a client cannot
 * drop a label by updating) and its writer; Part 2 data records who wrote
 * it, the gateway's tag replacing one the client sent. -1 on OOM. */
static int carry(const struct app *app, const struct privacy_writer *w, cJSON *res)
{
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(res, "resourceType");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(res, "id");
	cJSON *stored = NULL;
	if (app->store && cJSON_IsString(rt) && cJSON_IsString(id) && model_resource(rt->valuestring) &&
	    strlen(rt->valuestring) < STORE_TYPE_SIZE && strlen(id->valuestring) < STORE_ID_SIZE &&
	    store_read(app->store, rt->valuestring, id->valuestring, &stored, NULL) == STORE_OK &&
	    seclabel_merge(res, stored) < 0) {
		cJSON_Delete(stored);
		return -1;
	}
	cJSON *sent = writer_tag(res);
	const cJSON *before = writer_tag(stored);
	const cJSON *code = before ? cJSON_GetObjectItemCaseSensitive(before, "code") : NULL;
	const char *writer = cJSON_IsString(code) ? code->valuestring : w->client_id;
	int rc = 0;
	if (sent) {
		cJSON *tags = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "meta"), "tag");
		cJSON_Delete(cJSON_DetachItemViaPointer(tags, sent));
		if (!cJSON_GetArraySize(tags))
			cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "meta"), "tag");
	}
	if (writer && seclabel_has(res, SECLABEL_ACTCODE, SECLABEL_PART2)) {
		cJSON *meta = cJSON_GetObjectItemCaseSensitive(res, "meta");
		cJSON *tags = cJSON_GetObjectItemCaseSensitive(meta, "tag");
		if (!tags)
			tags = cJSON_AddArrayToObject(meta, "tag");
		cJSON *t = cJSON_CreateObject();
		if (!tags || !cJSON_IsArray(tags) || !t ||
		    !cJSON_AddStringToObject(t, "system", PRIVACY_WRITER_SYSTEM) ||
		    !cJSON_AddStringToObject(t, "code", writer)) {
			cJSON_Delete(t);
			rc = -1;
		} else {
			cJSON_AddItemToArray(tags, t);
		}
	}
	cJSON_Delete(stored);
	return rc;
}

int privacy_label_write(const struct app *app, const struct privacy_writer *w, cJSON *res,
			const struct privacy_sibling *siblings, size_t n)
{
	if (!app->labels || !cJSON_IsObject(res))
		return 0;
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(res, "meta");
	const cJSON *sec = cJSON_GetObjectItemCaseSensitive(meta, "security");
	if ((meta && !cJSON_IsObject(meta)) || (sec && !cJSON_IsArray(sec)))
		return 0; /* not FHIR: validation refuses it */
	if (seclabel_apply(app->labels, res, w && w->part2_program) < 0 || (w && carry(app, w, res) < 0))
		return -1;
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(res, "resourceType");
	struct walk wk = {.app = app,
			  .res = res,
			  .type = cJSON_IsString(rt) ? rt->valuestring : "",
			  .sib = siblings,
			  .nsib = n,
			  .st = STORE_OK};
	/* the references are read from a copy: labels are added to res as we go */
	cJSON *copy = cJSON_Duplicate(res, true);
	if (!copy)
		return -1;
	walk_refs(&wk, copy, 0, false);
	cJSON_Delete(copy);
	return wk.rc;
}

int privacy_label_derived(const struct app *app, cJSON *res)
{
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(res, "resourceType");
	if (!cJSON_IsString(rt) || strcmp(rt->valuestring, "Bundle") != 0)
		return privacy_label_write(app, NULL, res, NULL, 0);
	cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(res, "entry"))
	{
		cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "resource");
		if (!cJSON_IsObject(r))
			continue;
		if (privacy_label_derived(app, r) < 0 || seclabel_merge(res, r) < 0)
			return -1;
	}
	return 0;
}

void privacy_labels_text(const cJSON *res, char *out, size_t n)
{
	size_t pos = 0;
	if (n)
		out[0] = '\0';
	const cJSON *c;
	cJSON_ArrayForEach(c,
			   cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "meta"), "security"))
	{
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(c, "system");
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(c, "code");
		if (!cJSON_IsString(s) || !cJSON_IsString(k))
			continue;
		int w = snprintf(out + pos, n - pos, "%s%s|%s", pos ? ", " : "", s->valuestring, k->valuestring);
		if (w < 0 || (size_t)w >= n - pos) {
			out[pos] = '\0';
			return;
		}
		for (size_t i = pos; i < pos + (size_t)w; i++)
			if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
				out[i] = ' '; /* a header value holds no control character */
		pos += (size_t)w;
	}
}
