/* store_version — stamping, checksums and parsing of stored versions,
 * shared by the backends (see store_version.h). */
#include "store/store_version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/crypto.h"
#include "base/fjson.h"

/* Moves every member of src to the end of dst, names kept. (cJSON's
 * InsertItemInArray refuses objects, so order is built by appending.) */
static void move_members(cJSON *dst, cJSON *src)
{
	while (src->child)
		cJSON_AddItemToArray(dst, cJSON_DetachItemViaPointer(src, src->child));
}

static bool add_member(cJSON *obj, const char *name, cJSON *item)
{
	if (!item)
		return false;
	if (!cJSON_AddItemToObject(obj, name, item)) {
		cJSON_Delete(item);
		return false;
	}
	return true;
}

/* A copy of resource with id and meta.versionId / meta.lastUpdated set, in
 * the order a reader expects: resourceType, id, meta, the rest. */
enum store_status sver_stamp(const cJSON *resource, const char *id, int64_t version, const char *when, cJSON **out,
			     struct store_error *err)
{
	cJSON *copy = cJSON_Duplicate(resource, true);
	if (!copy)
		return store_fail(err, STORE_NO_MEMORY, "out of memory");
	return sver_stamp_take(copy, id, version, when, out, err);
}

enum store_status sver_stamp_take(cJSON *copy, const char *id, int64_t version, const char *when, cJSON **out,
				  struct store_error *err)
{
	char vtext[24];
	snprintf(vtext, sizeof vtext, "%lld", (long long)version);
	cJSON *res = cJSON_CreateObject(), *meta = cJSON_CreateObject();
	if (!copy || !res || !meta)
		goto oom;
	cJSON_DeleteItemFromObjectCaseSensitive(copy, "id");
	cJSON *rt = cJSON_DetachItemFromObjectCaseSensitive(copy, "resourceType");
	if (rt)
		cJSON_AddItemToArray(res, rt);
	if (!add_member(res, "id", cJSON_CreateString(id)) ||
	    !add_member(meta, "versionId", cJSON_CreateString(vtext)) ||
	    !add_member(meta, "lastUpdated", cJSON_CreateString(when)))
		goto oom;
	cJSON *old = cJSON_DetachItemFromObjectCaseSensitive(copy, "meta");
	if (old) {
		cJSON_DeleteItemFromObjectCaseSensitive(old, "versionId");
		cJSON_DeleteItemFromObjectCaseSensitive(old, "lastUpdated");
		move_members(meta, old);
		cJSON_Delete(old);
	}
	if (!add_member(res, "meta", meta)) {
		meta = NULL; /* freed by add_member */
		goto oom;
	}
	move_members(res, copy);
	cJSON_Delete(copy);
	*out = res;
	return STORE_OK;
oom:
	cJSON_Delete(copy);
	cJSON_Delete(res);
	cJSON_Delete(meta);
	return store_fail(err, STORE_NO_MEMORY, "out of memory");
}

char *sver_stamp_text(const char *text, const char *type, const char *id, int64_t version, const char *when,
		      size_t *out_len)
{
	/* {"resourceType":"T" then ',' or '}' (store_submit checked it) */
	size_t head = strlen("{\"resourceType\":\"") + strlen(type) + 1, len = strlen(text);
	char stamp[STORE_ID_SIZE + STORE_TIME_SIZE + 80];
	/* an id and a time hold nothing JSON escapes */
	int n = snprintf(stamp, sizeof stamp, ",\"id\":\"%s\",\"meta\":{\"versionId\":\"%lld\",\"lastUpdated\":\"%s\"}",
			 id, (long long)version, when);
	if (n < 0 || (size_t)n >= sizeof stamp || len < head)
		return NULL;
	char *out = malloc(len + (size_t)n + 1);
	if (!out)
		return NULL;
	memcpy(out, text, head);
	memcpy(out + head, stamp, (size_t)n);
	memcpy(out + head + (size_t)n, text + head, len - head + 1);
	*out_len = len + (size_t)n;
	return out;
}

int sver_sum(const char *type, const char *id, int64_t version, const char *last_updated, const char *body, size_t len,
	     uint8_t out[SVER_SUM_LEN])
{
	/* '/' occurs in none of the header's parts: the header is unambiguous */
	char head[STORE_TYPE_SIZE + STORE_ID_SIZE + STORE_TIME_SIZE + 40];
	int n = snprintf(head, sizeof head, "%s/%s/%lld/%s/%c", type, id, (long long)version,
			 last_updated ? last_updated : "", body ? 'B' : 'D');
	if (n < 0 || (size_t)n >= sizeof head)
		return -1;
	return crypto_sha256_pair(head, (size_t)n, body, body ? len : 0, out);
}

enum store_status sver_parse(const char *text, size_t len, cJSON **out, struct store_error *err)
{
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	/* It was accepted once under the configured limits; only depth stays
	 * bounded, as cJSON frees recursively. */
	lim.max_members = lim.max_array_items = lim.memory_budget = SIZE_MAX;
	struct fjson_error fe;
	*out = fjson_parse(text, len, &lim, &fe);
	if (!*out)
		return store_fail(err, fe.code == FJSON_NO_MEMORY ? STORE_NO_MEMORY : STORE_IO,
				  "a stored resource cannot be read back: %s", fjson_code_text(fe.code));
	return STORE_OK;
}

enum store_status sver_grow(struct store_page *p, size_t *cap, struct store_error *err)
{
	if (p->n < *cap)
		return STORE_OK;
	size_t ncap = *cap ? *cap * 2 : 16;
	struct store_entry *n = realloc(p->items, ncap * sizeof *n);
	if (!n)
		return store_fail(err, STORE_NO_MEMORY, "out of memory");
	p->items = n;
	*cap = ncap;
	return STORE_OK;
}

enum store_status sver_check(enum sver_kind kind, const char *type, const char *id, int64_t if_match, bool exists,
			     bool deleted, int64_t cur, int64_t *version, bool *created, bool *skip,
			     struct store_error *err)
{
	*skip = false;
	switch (kind) {
	case SVER_CREATE:
		if (exists && !deleted)
			return store_fail(err, STORE_CONFLICT, "%s/%s already exists", type, id);
		break;
	case SVER_UPDATE:
		if (if_match && !exists)
			return store_fail(err, STORE_VERSION_MISMATCH,
					  "%s/%s: expected version %lld, but it does not exist", type, id,
					  (long long)if_match);
		if (if_match && cur != if_match)
			return store_fail(err, STORE_VERSION_MISMATCH,
					  "%s/%s: expected version %lld, the current version is %lld", type, id,
					  (long long)if_match, (long long)cur);
		break;
	case SVER_DELETE:
		if (!exists)
			return store_fail(err, STORE_NOT_FOUND, "no %s with that id", type);
		if (deleted) {
			*version = cur;
			*skip = true;
			return STORE_OK;
		}
		break;
	}
	*created = !exists || deleted;
	*version = cur + 1;
	return STORE_OK;
}

enum store_status sver_content(const char *type, const char *id, const cJSON *resource, int64_t version,
			       const char *when, cJSON **stored, char **text, uint8_t sum[SVER_SUM_LEN],
			       struct store_error *err)
{
	cJSON_Delete(*stored);
	*stored = NULL;
	*text = NULL;
	if (resource) {
		enum store_status st = sver_stamp(resource, id, version, when, stored, err);
		if (st != STORE_OK)
			return st;
		if (!(*text = fjson_print(*stored, false, NULL))) {
			cJSON_Delete(*stored);
			*stored = NULL;
			return store_fail(err, STORE_NO_MEMORY, "out of memory");
		}
	}
	if (sver_sum(type, id, version, when, *text, *text ? strlen(*text) : 0, sum) != 0) {
		free(*text);
		*text = NULL;
		cJSON_Delete(*stored);
		*stored = NULL;
		return store_fail(err, STORE_NO_MEMORY, "the checksum of the stored content could not be computed");
	}
	return STORE_OK;
}

enum store_status sver_queued(struct store_write *sw, struct sver_write *w)
{
	bool fresh = sw->kind == STORE_WRITE_CREATE && !sw->id[0];
	if (fresh && (sw->append ? store_new_ordered_id(sw->id) : store_new_id(sw->id)) != 0)
		return store_fail(&sw->err, STORE_IO, "no randomness for a new id");
	*w = (struct sver_write){
		.kind = SVER_DELETE,
		.type = sw->type,
		.id = sw->id,
		.resource = sw->resource,
		.if_match = sw->if_match_version,
		.op = STORE_OP_DELETE,
		.fresh = fresh,
	};
	if (sw->kind == STORE_WRITE_CREATE) {
		w->kind = SVER_CREATE;
		w->op = fresh ? STORE_OP_CREATE : STORE_OP_UPDATE;
	} else if (sw->kind == STORE_WRITE_UPDATE) {
		w->kind = SVER_UPDATE;
		w->op = STORE_OP_UPDATE;
	}
	return STORE_OK;
}

void sver_queued_done(struct store *s, struct store_write *sw, enum store_status st, const struct sver_write *w)
{
	sw->status = st;
	if (st == STORE_OK) {
		sw->stored = w->stored;
		sw->created = w->created;
		sw->version = w->version;
	} else {
		cJSON_Delete(w->stored);
		if (w->fresh)
			sw->id[0] = '\0';
	}
	store_write_finished(s, sw);
}

enum store_status sver_create(struct store *s, sver_run_fn *run, const char *type, const cJSON *resource,
			      const char *id, cJSON **out, struct store_error *err)
{
	char fresh[STORE_ID_SIZE];
	if (!id) {
		if (store_new_id(fresh) != 0)
			return store_fail(err, STORE_IO, "no randomness for a new id");
		id = fresh;
	}
	struct sver_write w = {
		.kind = SVER_CREATE,
		.type = type,
		.id = id,
		.resource = resource,
		.op = id == fresh ? STORE_OP_CREATE : STORE_OP_UPDATE,
		.fresh = id == fresh,
	};
	enum store_status st = run(s, &w, err);
	if (out)
		*out = w.stored;
	else
		cJSON_Delete(w.stored);
	return st;
}

enum store_status sver_update(struct store *s, sver_run_fn *run, const char *type, const char *id,
			      const cJSON *resource, int64_t if_match, bool *created, cJSON **out,
			      struct store_error *err)
{
	struct sver_write w = {
		.kind = SVER_UPDATE,
		.type = type,
		.id = id,
		.resource = resource,
		.if_match = if_match,
		.op = STORE_OP_UPDATE,
	};
	enum store_status st = run(s, &w, err);
	if (created)
		*created = st == STORE_OK && w.created;
	if (out)
		*out = w.stored;
	else
		cJSON_Delete(w.stored);
	return st;
}

enum store_status sver_delete(struct store *s, sver_run_fn *run, const char *type, const char *id, int64_t *version,
			      struct store_error *err)
{
	struct sver_write w = {.kind = SVER_DELETE, .type = type, .id = id, .op = STORE_OP_DELETE};
	enum store_status st = run(s, &w, err);
	if (version && st == STORE_OK)
		*version = w.version;
	return st;
}
