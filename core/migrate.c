/* migrate — see migrate.h. */
#include "migrate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/log.h"
#include "fhir/model.h"
#include "fhir/outcome.h"

/* ------------------------------------------------------------ the moves */

/* "Type/old-id" → "new-id", an open-addressing hash table. */
struct moves {
	char **key, **to;
	size_t n, cap; /* cap is 0 or a power of two */
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static const char *moves_find(const struct moves *m, const char *key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (!m->key[i])
			return NULL;
		if (strcmp(m->key[i], key) == 0)
			return m->to[i];
	}
}

static bool moves_put_at(char **keys, char **tos, size_t cap, char *key, char *to)
{
	size_t i = hash(key) & (cap - 1);
	while (keys[i])
		i = (i + 1) & (cap - 1);
	keys[i] = key;
	tos[i] = to;
	return true;
}

/* Adds key → to unless key is there already (the first move wins). */
static bool moves_add(struct moves *m, const char *key, const char *to)
{
	if (moves_find(m, key))
		return true;
	if ((m->n + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		char **keys = calloc(cap, sizeof *keys), **tos = calloc(cap, sizeof *tos);
		if (!keys || !tos) {
			free(keys);
			free(tos);
			return false;
		}
		for (size_t i = 0; i < m->cap; i++)
			if (m->key[i])
				moves_put_at(keys, tos, cap, m->key[i], m->to[i]);
		free(m->key);
		free(m->to);
		m->key = keys;
		m->to = tos;
		m->cap = cap;
	}
	char *k = strdup(key), *t = strdup(to);
	if (!k || !t) {
		free(k);
		free(t);
		return false;
	}
	moves_put_at(m->key, m->to, m->cap, k, t);
	m->n++;
	return true;
}

static void moves_free(struct moves *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->key[i]);
		free(m->to[i]);
	}
	free(m->key);
	free(m->to);
}

/* Rewrites every "reference": "Type/old" under node whose move is known
 * (with patients_only, only moves of Patients). True when one changed;
 * *oom set when memory ran out. */
static bool rewrite(cJSON *node, const struct moves *m, bool patients_only, bool *oom)
{
	bool changed = false;
	cJSON *c;
	cJSON_ArrayForEach(c, node) {
		if (cJSON_IsString(c) && c->string && strcmp(c->string, "reference") == 0) {
			const char *to = moves_find(m, c->valuestring);
			if (!to || (patients_only && strncmp(c->valuestring, "Patient/", 8) != 0))
				continue;
			size_t tl = strcspn(c->valuestring, "/");
			char buf[STORE_TYPE_SIZE + STORE_ID_SIZE + 1];
			snprintf(buf, sizeof buf, "%.*s/%s", (int)tl, c->valuestring, to);
			if (!cJSON_SetValuestring(c, buf))
				*oom = true;
			else
				changed = true;
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			changed |= rewrite(c, m, patients_only, oom);
		}
	}
	return changed;
}

/* ------------------------------------------------------------ the items */

struct item {
	char type[STORE_TYPE_SIZE];
	char id[STORE_ID_SIZE];
	cJSON *repl; /* what the upgrade made of it, or NULL */
};

struct run {
	struct store *s;
	const struct plugin_host *h;
	const struct plugin **plugins; /* those to run */
	size_t n_plugins;
	struct item *items;
	size_t n, cap;
	struct moves moves;
	bool (*forwards)(void *ud, const char *type);
	void *ud;
	char *err;
	size_t errlen;
};

static int fail(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct run *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, r->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Lists the live resources of type. */
static int collect(struct run *r, const char *type)
{
	for (size_t offset = 0;;) {
		struct store_search q = {.count = STORE_MAX_COUNT, .offset = offset, .no_total = true};
		struct store_page page = {0};
		struct store_error se;
		if (store_search(r->s, type, &q, &page, &se) != STORE_OK) {
			store_page_release(&page);
			return fail(r, "listing %s: %s", type, se.message);
		}
		for (size_t i = 0; i < page.n; i++) {
			if (r->n == r->cap) {
				size_t cap = r->cap ? r->cap * 2 : 256;
				struct item *v = realloc(r->items, cap * sizeof *v);
				if (!v) {
					store_page_release(&page);
					return fail(r, "out of memory");
				}
				r->items = v;
				r->cap = cap;
			}
			struct item *it = &r->items[r->n++];
			memset(it, 0, sizeof *it);
			snprintf(it->type, sizeof it->type, "%s", page.items[i].type);
			snprintf(it->id, sizeof it->id, "%s", page.items[i].id);
		}
		size_t got = page.n;
		store_page_release(&page);
		if (got < STORE_MAX_COUNT)
			return 0;
		offset += got;
	}
}

/* Runs the plugins' upgrades over item it; Patients' moves are applied
 * first unless it is one. */
static int upgrade_one(struct run *r, struct item *it)
{
	struct store_error se;
	cJSON *res = NULL;
	if (store_read(r->s, it->type, it->id, &res, &se) != STORE_OK)
		return fail(r, "reading %s/%s: %s", it->type, it->id, se.message);
	bool oom = false;
	if (strcmp(it->type, "Patient") != 0)
		rewrite(res, &r->moves, true, &oom);
	for (size_t k = 0; k < r->n_plugins && !oom; k++) {
		struct arena arena;
		struct outcome oo = OUTCOME_INIT;
		struct cw_ctx ctx;
		arena_init(&arena, 0);
		plugin_host_ctx(&ctx, r->h, &arena, &oo, NULL);
		cJSON *out = NULL, *moved = NULL;
		enum cw_status st = plugin_host_upgrade(&ctx, r->plugins[k], res, &out, &moved);
		if (st != CW_OK) {
			fail(r, "plugin %s could not upgrade %s/%s: %s", r->plugins[k]->name, it->type, it->id,
			     oo.n ? oo.issues[0].diagnostics : cw_status_text(st));
			outcome_release(&oo);
			arena_release(&arena);
			cJSON_Delete(res);
			return -1;
		}
		outcome_release(&oo);
		arena_release(&arena);
		const cJSON *m;
		cJSON_ArrayForEach(m, moved) {
			if (cJSON_IsString(m) && !moves_add(&r->moves, m->string, m->valuestring))
				oom = true;
		}
		cJSON_Delete(moved);
		if (!out)
			continue;
		const cJSON *nid = cJSON_GetObjectItemCaseSensitive(out, "id");
		const cJSON *ntype = cJSON_GetObjectItemCaseSensitive(out, "resourceType");
		if (!cJSON_IsString(nid) || !cJSON_IsString(ntype) || strcmp(ntype->valuestring, it->type) != 0 ||
		    strlen(nid->valuestring) >= STORE_ID_SIZE) {
			cJSON_Delete(out);
			cJSON_Delete(res);
			return fail(r, "plugin %s upgraded %s/%s into something else", r->plugins[k]->name, it->type,
				    it->id);
		}
		if (strcmp(nid->valuestring, it->id) != 0) {
			char key[STORE_TYPE_SIZE + STORE_ID_SIZE + 1];
			snprintf(key, sizeof key, "%s/%s", it->type, it->id);
			oom |= !moves_add(&r->moves, key, nid->valuestring);
		}
		it->repl = out;
		break;
	}
	cJSON_Delete(res);
	return oom ? fail(r, "out of memory") : 0;
}

static int enqueue(struct run *r, const char *type, const char *id, const cJSON *written, int64_t version,
		   bool deleted)
{
	if (!r->forwards || !r->forwards(r->ud, type))
		return 0;
	if (written) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(written, "meta"),
								  "versionId");
		version = cJSON_IsString(v) ? strtoll(v->valuestring, NULL, 10) : 0;
	}
	struct store_error se;
	if (version < 1 || store_outbox_add(r->s, type, id, version, deleted, &se) != STORE_OK)
		return fail(r, "recording %s/%s for delivery failed", type, id);
	return 0;
}

/* Writes item it: moved, rewritten, or left alone. */
static int apply_one(struct run *r, struct item *it, struct migrate_counts *counts)
{
	struct store_error se;
	cJSON *res = it->repl;
	it->repl = NULL;
	bool changed = res != NULL, oom = false;
	if (!res && store_read(r->s, it->type, it->id, &res, &se) != STORE_OK)
		return fail(r, "reading %s/%s: %s", it->type, it->id, se.message);
	changed |= rewrite(res, &r->moves, false, &oom);
	char key[STORE_TYPE_SIZE + STORE_ID_SIZE + 1];
	snprintf(key, sizeof key, "%s/%s", it->type, it->id);
	const char *to = moves_find(&r->moves, key);
	int rc = 0;
	if (oom) {
		rc = fail(r, "out of memory");
	} else if (to && strcmp(to, it->id) != 0) {
		cJSON *live = NULL;
		enum store_status st = store_read(r->s, it->type, to, &live, &se);
		cJSON_Delete(live);
		if (st != STORE_OK) { /* a live resource at the new id is kept */
			cJSON *out = NULL;
			cJSON_ReplaceItemInObjectCaseSensitive(res, "id", cJSON_CreateString(to));
			if (store_update(r->s, it->type, to, res, NULL, NULL, &out, &se) != STORE_OK)
				rc = fail(r, "writing %s/%s: %s", it->type, to, se.message);
			else
				rc = enqueue(r, it->type, to, out, 0, false);
			cJSON_Delete(out);
		}
		int64_t version = 0;
		if (rc == 0 && store_delete(r->s, it->type, it->id, &version, &se) != STORE_OK)
			rc = fail(r, "deleting %s/%s: %s", it->type, it->id, se.message);
		if (rc == 0)
			rc = enqueue(r, it->type, it->id, NULL, version, true);
		counts->moved += rc == 0;
	} else if (changed) {
		cJSON *out = NULL;
		if (store_update(r->s, it->type, it->id, res, NULL, NULL, &out, &se) != STORE_OK)
			rc = fail(r, "writing %s/%s: %s", it->type, it->id, se.message);
		else
			rc = enqueue(r, it->type, it->id, out, 0, false);
		cJSON_Delete(out);
		counts->rewritten += rc == 0;
	}
	cJSON_Delete(res);
	return rc;
}

static int run_all(struct run *r, struct migrate_counts *counts)
{
	if (collect(r, "Patient") != 0)
		return -1;
	for (size_t t = 0; t < model_ntypes; t++) {
		const struct model_type *mt = &model_types[t];
		if (mt->kind == MODEL_RESOURCE && !mt->abstract && strcmp(mt->name, "Patient") != 0 &&
		    collect(r, mt->name) != 0)
			return -1;
	}
	for (size_t i = 0; i < r->n; i++) /* Patients come first in the list */
		if (upgrade_one(r, &r->items[i]) != 0)
			return -1;
	if (r->moves.n == 0)
		return 0;
	for (size_t i = 0; i < r->n; i++)
		if (apply_one(r, &r->items[i], counts) != 0)
			return -1;
	return 0;
}

int migrate_plugin_ids(struct store *s, const struct plugin_host *h, bool (*forwards)(void *ud, const char *type),
		       void *ud, struct migrate_counts *counts, char *err, size_t errlen)
{
	struct migrate_counts none = {0};
	if (!counts)
		counts = &none;
	*counts = none;
	struct run r = {.s = s, .h = h, .forwards = forwards, .ud = ud, .err = err, .errlen = errlen};
	size_t np = plugin_host_count(h);
	r.plugins = calloc(np + 1, sizeof *r.plugins);
	if (!r.plugins)
		return fail(&r, "out of memory");
	struct store_error se;
	for (size_t i = 0; i < np; i++) {
		const struct plugin *p = plugin_host_at(h, i);
		uint32_t rule = plugin_host_id_rule(p);
		char mark[100];
		snprintf(mark, sizeof mark, "ids:%s", p->name);
		int64_t have = 0;
		if (!rule)
			continue;
		enum store_status st = store_mark_get(s, mark, &have, &se);
		if (st != STORE_OK && st != STORE_NOT_FOUND) {
			free(r.plugins);
			return fail(&r, "reading the store's marks: %s", se.message);
		}
		if (st == STORE_NOT_FOUND || have < (int64_t)rule)
			r.plugins[r.n_plugins++] = p;
	}
	if (r.n_plugins == 0) {
		free(r.plugins);
		return 0;
	}
	int rc = -1;
	if (store_begin(s, &se) != STORE_OK) {
		fail(&r, "starting the upgrade: %s", se.message);
	} else {
		rc = run_all(&r, counts);
		for (size_t i = 0; i < r.n_plugins && rc == 0; i++) {
			char mark[100];
			snprintf(mark, sizeof mark, "ids:%s", r.plugins[i]->name);
			if (store_mark_set(s, mark, (int64_t)plugin_host_id_rule(r.plugins[i]), &se) != STORE_OK)
				rc = fail(&r, "recording the upgrade: %s", se.message);
		}
		if (rc == 0 && store_commit(s, &se) != STORE_OK)
			rc = fail(&r, "committing the upgrade: %s", se.message);
		else if (rc != 0)
			store_rollback(s, &se);
	}
	for (size_t i = 0; i < r.n; i++)
		cJSON_Delete(r.items[i].repl);
	free(r.items);
	moves_free(&r.moves);
	free(r.plugins);
	if (rc == 0 && (counts->moved || counts->rewritten)) {
		char moved[32], rewritten[32];
		snprintf(moved, sizeof moved, "%zu", counts->moved);
		snprintf(rewritten, sizeof rewritten, "%zu", counts->rewritten);
		log_event(LOG_INFO, "ids-upgraded", "resources stored under older plugin ids were moved", "moved", moved,
			  "references_rewritten", rewritten, (const char *)NULL);
	}
	return rc;
}
