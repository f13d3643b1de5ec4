/* person_match — the person looked up at the upstream by identifier before
 * the gateway's Patient is delivered; references rewritten to the Patient
 * found. See person_match.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "base/log.h"
#include "base/strbuf.h"
#include "upstream/person_match.h"

struct link {
	char local[STORE_ID_SIZE], remote[STORE_ID_SIZE]; /* remote "" : the person is the gateway's own */
};

struct pmatch {
	struct store *st;
	struct upstream *up;
	const cJSON *systems;
	struct link *links;
	size_t n;
};

struct pmatch *pmatch_new(struct store *st, struct upstream *up, const cJSON *systems)
{
	struct pmatch *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->links = calloc(PMATCH_CACHE, sizeof *m->links);
	if (!m->links) {
		free(m);
		return NULL;
	}
	m->st = st;
	m->up = up;
	m->systems = systems;
	return m;
}

void pmatch_free(struct pmatch *m)
{
	if (!m)
		return;
	free(m->links);
	free(m);
}

static const struct link *cached(const struct pmatch *m, const char *local)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->links[i].local, local))
			return &m->links[i];
	return NULL;
}

static void remember(struct pmatch *m, const char *local, const char *remote)
{
	if (m->n == PMATCH_CACHE)
		m->n = 0; /* start over: the upstream is asked again */
	struct link *l = &m->links[m->n++];
	snprintf(l->local, sizeof l->local, "%s", local);
	snprintf(l->remote, sizeof l->remote, "%s", remote ? remote : "");
}

static bool configured(const struct pmatch *m, const char *system)
{
	const cJSON *s;
	cJSON_ArrayForEach(s,
			   m->systems) if (cJSON_IsString(s) && system && !strcmp(s->valuestring, system)) return true;
	return false;
}

/* Adds the ids of the Patients of a searchset (the first `cap`) to ids,
 * each once. False when the answer is not a searchset Bundle. */
static bool collect(const char *body, char (*ids)[STORE_ID_SIZE], size_t *n, size_t cap)
{
	cJSON *b = body ? cJSON_Parse(body) : NULL;
	const cJSON *e;
	if (!b || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(b, "entry"))) {
		bool empty = b && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(b, "resourceType")) &&
			     !strcmp(cJSON_GetObjectItemCaseSensitive(b, "resourceType")->valuestring, "Bundle");
		cJSON_Delete(b);
		return empty; /* a Bundle without entries: no match */
	}
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(b, "entry"))
	{
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "resource");
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(r, "resourceType");
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "id");
		if (!cJSON_IsString(t) || strcmp(t->valuestring, "Patient") || !cJSON_IsString(id) ||
		    strlen(id->valuestring) >= STORE_ID_SIZE)
			continue;
		bool seen = false;
		for (size_t i = 0; i < *n; i++)
			seen |= !strcmp(ids[i], id->valuestring);
		if (!seen && *n < cap)
			snprintf(ids[(*n)++], STORE_ID_SIZE, "%s", id->valuestring);
	}
	cJSON_Delete(b);
	return true;
}

enum pmatch_result pmatch_patient(struct pmatch *m, const char *local_id, const cJSON *patient,
				  char upstream_id[STORE_ID_SIZE], char *why, size_t whylen)
{
	const struct link *l = cached(m, local_id);
	if (l) {
		if (!l->remote[0])
			return PMATCH_OWN;
		snprintf(upstream_id, STORE_ID_SIZE, "%s", l->remote);
		return PMATCH_LINKED;
	}
	enum { CAP = 4 };
	char ids[CAP][STORE_ID_SIZE];
	size_t n = 0;
	const cJSON *ident;
	char first[300] = "";
	cJSON_ArrayForEach(ident, cJSON_GetObjectItemCaseSensitive(patient, "identifier"))
	{
		const cJSON *sys = cJSON_GetObjectItemCaseSensitive(ident, "system");
		const cJSON *val = cJSON_GetObjectItemCaseSensitive(ident, "value");
		if (!cJSON_IsString(sys) || !cJSON_IsString(val) || !configured(m, sys->valuestring))
			continue;
		struct strbuf q = STRBUF_INIT;
		strbuf_adds(&q, "Patient?_count=4&identifier=");
		strbuf_add_pct(&q, sys->valuestring);
		strbuf_addc(&q, '|');
		strbuf_add_pct(&q, val->valuestring);
		char *path = strbuf_take(&q, NULL);
		if (!path)
			return PMATCH_NOMEM;
		const char *h[] = {"Accept: application/fhir+json", NULL};
		struct upstream_response r;
		int rc = upstream_request(m->up, "GET", path, h, NULL, 0, &r);
		free(path);
		if (rc != 0 || r.status != 200 || !collect(r.body, ids, &n, CAP)) {
			char d[256];
			if (rc != 0)
				snprintf(d, sizeof d, "%s", r.error);
			else
				upstream_describe(&r, d, sizeof d);
			snprintf(why, whylen, "the person could not be looked up at the upstream by %s|%s: %s",
				 sys->valuestring, val->valuestring, d);
			upstream_response_release(&r);
			return PMATCH_RETRY;
		}
		upstream_response_release(&r);
		if (!first[0])
			snprintf(first, sizeof first, "%s|%s", sys->valuestring, val->valuestring);
	}
	/* the gateway's own Patient, delivered before, is no other person */
	size_t others = 0;
	const char *other = NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(ids[i], local_id)) {
			others++;
			other = ids[i];
		}
	if (others == 0) {
		remember(m, local_id, NULL);
		return PMATCH_OWN;
	}
	if (n > 1) {
		snprintf(why, whylen,
			 "the person matches %s%zu Patients at the upstream by %s; it is not delivered until one "
			 "remains",
			 n == CAP ? "at least " : "", n, first);
		return PMATCH_AMBIGUOUS;
	}
	remember(m, local_id, other);
	size_t len = strnlen(other, STORE_ID_SIZE - 1);
	memcpy(upstream_id, other, len);
	upstream_id[len] = '\0';
	log_msgf(LOG_INFO, "outbox", "Patient/%s is the upstream's Patient/%s (by %s)", local_id, other, first);
	return PMATCH_LINKED;
}

/* Walks node: every reference to a linked Patient is rewritten. */
static enum pmatch_result rewrite_node(struct pmatch *m, cJSON *node, char *why, size_t whylen)
{
	cJSON *c;
	for (c = node ? node->child : NULL; c; c = c->next) {
		if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			enum pmatch_result r = rewrite_node(m, c, why, whylen);
			if (r != PMATCH_OWN)
				return r;
			continue;
		}
		if (!cJSON_IsString(c) || !c->string || strcmp(c->string, "reference") ||
		    strncmp(c->valuestring, "Patient/", 8))
			continue;
		const char *local = c->valuestring + 8;
		if (!*local || strchr(local, '/') || strlen(local) >= STORE_ID_SIZE)
			continue;
		char remote[STORE_ID_SIZE];
		const struct link *l = cached(m, local);
		enum pmatch_result r;
		if (l) {
			if (!l->remote[0])
				continue;
			snprintf(remote, sizeof remote, "%s", l->remote);
			r = PMATCH_LINKED;
		} else {
			cJSON *patient = NULL;
			struct store_error err;
			if (store_read(m->st, "Patient", local, &patient, &err) != STORE_OK)
				continue; /* not one of the gateway's Patients */
			r = pmatch_patient(m, local, patient, remote, why, whylen);
			cJSON_Delete(patient);
		}
		if (r == PMATCH_OWN)
			continue;
		if (r != PMATCH_LINKED)
			return r;
		char buf[8 + STORE_ID_SIZE];
		snprintf(buf, sizeof buf, "Patient/%s", remote);
		if (!cJSON_SetValuestring(c, buf))
			return PMATCH_NOMEM;
	}
	return PMATCH_OWN;
}

enum pmatch_result pmatch_rewrite(struct pmatch *m, cJSON *res, char *why, size_t whylen)
{
	return rewrite_node(m, res, why, whylen);
}
