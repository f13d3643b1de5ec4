#include "api/gather.h"

#include "api/rest_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------ compartment */

static bool gather_add(cJSON *entries, const char *base, cJSON *res)
{
	const char *rt = rest_str_member(res, "resourceType"), *id = rest_str_member(res, "id");
	if (!rt || !id || rest_bundle_has(entries, rt, id)) {
		cJSON_Delete(res);
		return false;
	}
	rest_add_entry(entries, base, res, NULL);
	return true;
}

static void gather_refs(const struct app *app, cJSON *node, cJSON *entries, const char *base, size_t depth)
{
	if (depth > 64)
		return;
	for (cJSON *c = node ? node->child : NULL; c; c = c->next) {
		if (cJSON_IsString(c) && c->string && !strcmp(c->string, "reference")) {
			char rt[65], rid[65];
			if (search_params_reference_absolute(c->valuestring) ||
			    !search_params_split_reference(c->valuestring, rt, sizeof rt, rid, sizeof rid))
				continue; /* another server's, or no Type/id */
			if (!model_resource(rt) || rest_bundle_has(entries, rt, rid))
				continue;
			cJSON *got = NULL;
			struct store_error err;
			if (store_read(app->store, rt, rid, &got, &err) == STORE_OK)
				gather_add(entries, base, got);
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			gather_refs(app, c, entries, base, depth + 1);
		}
	}
}

/* Adds every page of Type?param=value to entries. */
static void gather_search(const struct app *app, const char *type, const struct store_search_param *sp, size_t n,
			  cJSON *entries, const char *base)
{
	for (size_t offset = 0;; offset += STORE_MAX_COUNT) {
		struct store_search sq = {.params = sp, .n_params = n, .count = STORE_MAX_COUNT, .offset = offset};
		struct store_page page = {0};
		struct store_error err;
		if (store_search(app->store, type, &sq, &page, &err) != STORE_OK)
			return;
		for (size_t j = 0; j < page.n; j++) {
			cJSON *r = page.items[j].resource;
			page.items[j].resource = NULL;
			if (r)
				gather_add(entries, base, r);
		}
		size_t got = page.n, total = page.total;
		store_page_release(&page);
		if (got < STORE_MAX_COUNT || offset + got >= total)
			return;
	}
}

cJSON *gather_patient_bundle(const struct app *app, const char *patient_id, struct outcome *oo, int *status)
{
	*status = 400;
	if (!rest_valid_id(patient_id)) {
		outcome_add(oo, OUTCOME_ERROR, "value", "patient", "'%.80s' is not a valid FHIR id", patient_id);
		return NULL;
	}
	cJSON *pat = NULL;
	struct store_error err = {0};
	enum store_status st = store_read(app->store, "Patient", patient_id, &pat, &err);
	if (st != STORE_OK) {
		*status = store_status_http(st);
		outcome_add(oo, OUTCOME_ERROR, st == STORE_GONE ? "deleted" : "not-found", "patient", "Patient/%s: %s",
			    patient_id, err.message);
		return NULL;
	}
	char base[256];
	rest_base_url(app, NULL, base, sizeof base);
	cJSON *b = rest_bundle_new("collection");
	cJSON *entries = b ? cJSON_AddArrayToObject(b, "entry") : NULL;
	if (!entries) {
		cJSON_Delete(pat);
		cJSON_Delete(b);
		*status = 500;
		outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		return NULL;
	}
	gather_add(entries, base, pat);
	char ref[128];
	snprintf(ref, sizeof ref, "Patient/%s", patient_id);
	/* every indexed type with a patient or subject parameter */
	const char *seen[64];
	size_t nseen = 0;
	for (size_t i = 0; i < search_params_count; i++) {
		const struct search_param_def *d = &search_params_data[i];
		if (d->kind != SEARCH_PARAM_REFERENCE || (strcmp(d->code, "patient") && strcmp(d->code, "subject")))
			continue;
		if (!model_resource(d->type))
			continue;
		bool dup = false;
		for (size_t k = 0; k < nseen; k++)
			if (!strcmp(seen[k], d->type))
				dup = true;
		if (dup || nseen == 64)
			continue;
		seen[nseen++] = d->type;
		for (int pass = 0; pass < 2; pass++) {
			struct store_search_param sp = {pass ? "subject" : "patient", NULL, ref};
			gather_search(app, d->type, &sp, 1, entries, base);
		}
	}
	size_t n = (size_t)cJSON_GetArraySize(entries);
	for (size_t i = 0; i < n; i++)
		gather_refs(app, cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, (int)i), "resource"), entries,
			    base, 0);
	*status = 200;
	return b;
}

cJSON *gather_period_bundle(const struct app *app, const char *from, const char *to, struct outcome *oo,
			      int *status)
{
	*status = 400;
	int64_t lo, hi;
	if (!from || !to || !search_params_date_range(from, &lo, &hi) || !search_params_date_range(to, &lo, &hi)) {
		outcome_add(oo, OUTCOME_ERROR, "value", NULL, "from and to must be FHIR dates (YYYY-MM-DD)");
		return NULL;
	}
	char ge[64], le[64], base[256];
	snprintf(ge, sizeof ge, "ge%s", from);
	snprintf(le, sizeof le, "le%s", to);
	rest_base_url(app, NULL, base, sizeof base);
	cJSON *b = rest_bundle_new("collection");
	cJSON *entries = b ? cJSON_AddArrayToObject(b, "entry") : NULL;
	if (!entries) {
		cJSON_Delete(b);
		*status = 500;
		outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		return NULL;
	}
	struct store_search_param period[2] = {{"date", NULL, ge}, {"date", NULL, le}};
	gather_search(app, "Encounter", period, 2, entries, base);
	size_t nenc = (size_t)cJSON_GetArraySize(entries);
	/* per encounter: the Conditions recorded for it; per patient: Coverage */
	for (size_t i = 0; i < nenc; i++) {
		const cJSON *enc = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, (int)i), "resource");
		char ref[160];
		snprintf(ref, sizeof ref, "Encounter/%s", rest_str_member(enc, "id"));
		struct store_search_param sp = {"encounter", NULL, ref};
		gather_search(app, "Condition", &sp, 1, entries, base);
		const char *subject = rest_str_member(cJSON_GetObjectItemCaseSensitive(enc, "subject"), "reference");
		if (subject) {
			struct store_search_param cp = {"beneficiary", NULL, subject};
			gather_search(app, "Coverage", &cp, 1, entries, base);
		}
	}
	/* and what they reference (patients, practitioners, diagnoses, payers) */
	size_t n = (size_t)cJSON_GetArraySize(entries);
	for (size_t i = 0; i < n; i++)
		gather_refs(app, cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, (int)i), "resource"), entries,
			    base, 0);
	*status = 200;
	return b;
}
