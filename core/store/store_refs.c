/* The resources an outbox record waits for (store_refs.h). */
#include "store/store_refs.h"

#include <stdlib.h>
#include <string.h>

#include "fhir/search_params.h"
#include "store/store_version.h"

struct refs_walk {
	const char *type, *id;
	store_ref_fn *fn;
	void *ctx;
	/* distinct "Type/id" keys seen, for the duplicates check */
	char keys[STORE_OUTBOX_MAX_REFS][STORE_TYPE_SIZE + STORE_ID_SIZE];
	size_t n;
};

static int refs_one(struct refs_walk *w, const char *ref)
{
	char type[STORE_TYPE_SIZE], id[STORE_ID_SIZE];
	if (w->n >= STORE_OUTBOX_MAX_REFS || !search_params_split_reference(ref, type, sizeof type, id, sizeof id))
		return 0;
	if (!strcmp(type, w->type) && !strcmp(id, w->id))
		return 0;
	char key[STORE_TYPE_SIZE + STORE_ID_SIZE];
	size_t tl = strlen(type), il = strlen(id);
	memcpy(key, type, tl);
	key[tl] = '/';
	memcpy(key + tl + 1, id, il + 1);
	for (size_t i = 0; i < w->n; i++)
		if (!strcmp(w->keys[i], key))
			return 0;
	memcpy(w->keys[w->n++], key, tl + il + 2);
	return w->fn(w->ctx, type, id);
}

static int refs_walk(struct refs_walk *w, const cJSON *node)
{
	for (const cJSON *c = node ? node->child : NULL; c; c = c->next) {
		int rc = 0;
		if (cJSON_IsString(c) && c->string && !strcmp(c->string, "reference"))
			rc = refs_one(w, c->valuestring);
		else if (cJSON_IsObject(c) || cJSON_IsArray(c))
			rc = refs_walk(w, c);
		if (rc)
			return rc;
	}
	return 0;
}

int store_refs_each(const char *body, size_t len, const char *type, const char *id, store_ref_fn *fn, void *ctx)
{
	cJSON *root = NULL;
	struct store_error err;
	if (sver_parse(body, len, &root, &err) != STORE_OK)
		return -1;
	struct refs_walk *w = malloc(sizeof *w);
	int rc = -1;
	if (w) {
		w->type = type;
		w->id = id;
		w->fn = fn;
		w->ctx = ctx;
		w->n = 0;
		rc = refs_walk(w, root);
		free(w);
	}
	cJSON_Delete(root);
	return rc;
}
