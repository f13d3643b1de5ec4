/* gather — the exports' and $build's reading of the store: checks a query
 * (a person, a period, Encounters), resolves identifiers to ids, and builds
 * the collection Bundle with the REST layer's Bundle helpers (rest_int.h). */
#include "api/gather.h"

#include "api/rest_int.h"
#include "fhir/fhir_helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* gather_refs and gather_search leave out what is not stored; a resource
 * failing its integrity check is not left out silently: *bad gets it, and
 * the gathering answers that instead of an incomplete Bundle (bad_end). */
static void gather_refs(const struct app *app, cJSON *node, cJSON *entries, const char *base, size_t depth,
			struct store_error *bad)
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
			enum store_status st = store_read(app->store, rt, rid, &got, &err);
			if (st == STORE_OK)
				gather_add(entries, base, got);
			else if (st == STORE_CORRUPT)
				*bad = err;
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			gather_refs(app, c, entries, base, depth + 1, bad);
		}
	}
}

/* Adds every page of Type?param=value to entries. */
static void gather_search(const struct app *app, const char *type, const struct store_search_param *sp, size_t n,
			  cJSON *entries, const char *base, struct store_error *bad)
{
	for (size_t offset = 0;; offset += STORE_MAX_COUNT) {
		struct store_search sq = {.params = sp, .n_params = n, .count = STORE_MAX_COUNT, .offset = offset};
		struct store_page page = {0};
		struct store_error err;
		enum store_status st = store_search(app->store, type, &sq, &page, &err);
		if (st != STORE_OK) {
			if (st == STORE_CORRUPT)
				*bad = err;
			store_page_release(&page);
			return;
		}
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

/* The Bundle b, or NULL with the integrity failure in oo when bad holds one. */
static cJSON *bad_end(cJSON *b, const struct store_error *bad, struct outcome *oo, int *status)
{
	if (bad->status == STORE_OK) {
		*status = 200;
		return b;
	}
	cJSON_Delete(b);
	*status = store_status_http(bad->status);
	outcome_add(oo, OUTCOME_ERROR, "exception", NULL, "%s", bad->message);
	return NULL;
}

/* Everything stored about one patient: the Patient, every resource whose
 * patient or subject is that Patient, and the resources those reference (one
 * level). */
static cJSON *patient_bundle(const struct app *app, const char *patient_id, struct outcome *oo, int *status)
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
		outcome_add(oo, OUTCOME_ERROR,
			    st == STORE_GONE        ? "deleted"
			    : st == STORE_NOT_FOUND ? "not-found"
						    : "exception",
			    "patient", "Patient/%s: %s", patient_id, err.message);
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
	struct store_error bad = {0};
	char ref[128];
	snprintf(ref, sizeof ref, "Patient/%s", patient_id);
	/* every indexed type with a patient or subject parameter */
	const char *seen[256]; /* R4 has 146 resource types */
	size_t nseen = 0;
	for (size_t i = 0; i < search_params_count; i++) {
		const struct search_param_def *d = &search_params_data[i];
		if (d->kind != SEARCH_PARAM_REFERENCE || (strcmp(d->code, "patient") && strcmp(d->code, "subject")))
			continue;
		/* a Provenance is the gateway's record of a write, and names what
		 * others wrote in the same transaction; an AuditEvent its record of
		 * an access (api/audit.h): neither is the person's data */
		if (!model_resource(d->type) || !strcmp(d->type, "Provenance") || !strcmp(d->type, "AuditEvent"))
			continue;
		bool dup = false;
		for (size_t k = 0; k < nseen; k++)
			if (!strcmp(seen[k], d->type))
				dup = true;
		if (dup || nseen == sizeof seen / sizeof seen[0])
			continue;
		seen[nseen++] = d->type;
		for (int pass = 0; pass < 2; pass++) {
			struct store_search_param sp = {pass ? "subject" : "patient", NULL, ref};
			gather_search(app, d->type, &sp, 1, entries, base, &bad);
		}
	}
	size_t n = (size_t)cJSON_GetArraySize(entries);
	for (size_t i = 0; i < n; i++)
		gather_refs(app, cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, (int)i), "resource"),
			    entries, base, 0, &bad);
	return bad_end(b, &bad, oo, status);
}

/* Encounters and their context: the Encounters ids[0..n_ids) (each must be
 * stored: 404 or 410 otherwise), or else every Encounter whose period
 * overlaps [from, to] (dates checked by the caller) and, when patient_id is
 * not NULL, whose subject is that Patient; then the Conditions recorded for
 * each, the Coverage of each patient, and the resources those reference
 * (one level). */
static cJSON *encounter_bundle(const struct app *app, const char *const *ids, size_t n_ids, const char *from,
			       const char *to, const char *patient_id, struct outcome *oo, int *status)
{
	char base[256];
	rest_base_url(app, NULL, base, sizeof base);
	cJSON *b = rest_bundle_new("collection");
	cJSON *entries = b ? cJSON_AddArrayToObject(b, "entry") : NULL;
	if (!entries) {
		cJSON_Delete(b);
		*status = 500;
		outcome_add(oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		return NULL;
	}
	struct store_error bad = {0};
	for (size_t i = 0; i < n_ids; i++) {
		if (rest_bundle_has(entries, "Encounter", ids[i]))
			continue;
		cJSON *enc = NULL;
		struct store_error err = {0};
		enum store_status st = store_read(app->store, "Encounter", ids[i], &enc, &err);
		if (st != STORE_OK) {
			*status = store_status_http(st);
			char where[48];
			snprintf(where, sizeof where, "encounter[%zu]", i);
			outcome_add(oo, OUTCOME_ERROR,
				    st == STORE_GONE        ? "deleted"
				    : st == STORE_NOT_FOUND ? "not-found"
							    : "exception",
				    where, "Encounter/%s: %s", ids[i], err.message);
			cJSON_Delete(b);
			return NULL;
		}
		gather_add(entries, base, enc);
	}
	if (!n_ids) {
		char ge[64], le[64], subject[160];
		snprintf(ge, sizeof ge, "ge%s", from);
		snprintf(le, sizeof le, "le%s", to);
		snprintf(subject, sizeof subject, "Patient/%s", patient_id ? patient_id : "");
		struct store_search_param period[3] = {{"date", NULL, ge}, {"date", NULL, le}, {"subject", NULL, subject}};
		gather_search(app, "Encounter", period, patient_id ? 3 : 2, entries, base, &bad);
	}
	size_t nenc = (size_t)cJSON_GetArraySize(entries);
	/* per encounter: the Conditions recorded for it; per patient: Coverage */
	for (size_t i = 0; i < nenc; i++) {
		const cJSON *enc = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, (int)i), "resource");
		char ref[160];
		snprintf(ref, sizeof ref, "Encounter/%s", rest_str_member(enc, "id"));
		struct store_search_param sp = {"encounter", NULL, ref};
		gather_search(app, "Condition", &sp, 1, entries, base, &bad);
		const char *subject = rest_str_member(cJSON_GetObjectItemCaseSensitive(enc, "subject"), "reference");
		if (subject) {
			struct store_search_param cp = {"beneficiary", NULL, subject};
			gather_search(app, "Coverage", &cp, 1, entries, base, &bad);
		}
	}
	/* and what they reference (patients, practitioners, diagnoses, payers) */
	size_t n = (size_t)cJSON_GetArraySize(entries);
	for (size_t i = 0; i < n; i++)
		gather_refs(app, cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, (int)i), "resource"),
			    entries, base, 0, &bad);
	return bad_end(b, &bad, oo, status);
}

/* ------------------------------------------------------------ queries */

static cJSON *refuse(struct outcome *oo, int *status, int http, const char *code, const char *where, const char *msg)
{
	*status = http;
	outcome_add(oo, OUTCOME_ERROR, code, where, "%s", msg);
	return NULL;
}

/* s[0..len) with the search escapes of FHIR (\ , | $) into out; false when
 * it does not fit. */
static bool escape_token(const char *s, size_t len, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (strchr("\\,|$", s[i])) {
			if (o + 1 >= cap)
				return false;
			out[o++] = '\\';
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = s[i];
	}
	out[o] = '\0';
	return true;
}

/* Reads "Type/id", "id" or "system|value" into r; false when it is neither.
 * type may be NULL (then only the identifier form is read). */
static bool read_ref_text(const char *text, const char *type, struct gather_ref *r)
{
	memset(r, 0, sizeof *r);
	const char *bar = text ? strchr(text, '|') : NULL;
	if (bar) {
		r->system = text;
		r->system_len = (size_t)(bar - text);
		r->value = bar + 1;
		return *r->value != '\0';
	}
	if (!text || !type)
		return false;
	size_t tl = strlen(type);
	if (!strncmp(text, type, tl) && text[tl] == '/')
		text += tl + 1;
	r->id = text;
	return fhir_is_id(text);
}

/* r names an id, or an identifier of the sizes allowed. */
static bool ref_fits(const struct gather_ref *r)
{
	if (r->id)
		return fhir_is_id(r->id);
	return r->value && *r->value && strlen(r->value) <= GATHER_MAX_TEXT && r->system_len <= GATHER_MAX_TEXT;
}

/* The id of the one resource of type with the identifier of r (r->id when
 * it names an id). */
static bool resolve(const struct app *app, const char *type, const struct gather_ref *r, const char *where,
		    char id[STORE_ID_SIZE], struct outcome *oo, int *status)
{
	if (r->id) {
		snprintf(id, STORE_ID_SIZE, "%s", r->id);
		return true;
	}
	size_t vlen = strlen(r->value);
	char token[2 * (2 * GATHER_MAX_TEXT + 1) + 2];
	if (!escape_token(r->system ? r->system : "", r->system_len, token, sizeof token)) {
		refuse(oo, status, 400, "value", where, "an identifier is system|value, each at most 1024 characters");
		return false;
	}
	size_t n = strlen(token);
	token[n++] = '|';
	escape_token(r->value, vlen, token + n, sizeof token - n);
	struct store_search_param sp = {"identifier", NULL, token};
	struct store_search sq = {.params = &sp, .n_params = 1, .count = 2};
	struct store_page page = {0};
	struct store_error err = {0};
	enum store_status st = store_search(app->store, type, &sq, &page, &err);
	bool ok = false;
	if (st != STORE_OK) {
		*status = store_status_http(st);
		outcome_add(oo, OUTCOME_ERROR, st == STORE_INVALID ? "value" : "exception", where, "%s: %s", type,
			    err.message);
	} else if (page.n == 0) {
		*status = 404;
		outcome_add(oo, OUTCOME_ERROR, "not-found", where, "no %s in the store has that identifier", type);
	} else if (page.n > 1) {
		*status = 400;
		outcome_add(oo, OUTCOME_ERROR, "multiple-matches", where,
			    "%zu %ss in the store have that identifier; name the %s by its id", page.total, type, type);
	} else {
		snprintf(id, STORE_ID_SIZE, "%s", page.items[0].id);
		ok = true;
	}
	store_page_release(&page);
	return ok;
}

cJSON *gather_bundle(const struct app *app, const struct gather_query *q, struct outcome *oo, int *status)
{
	const char *wp = q->where_patient ? q->where_patient : "patient";
	const char *wf = q->where_from ? q->where_from : "from", *wt = q->where_to ? q->where_to : "to";
	*status = 400;
	bool period = q->from || q->to, person = q->patient || q->patient_ref;
	if (q->n_encounters && (period || person))
		return refuse(oo, status, 400, "invalid", NULL,
			      "name Encounters, or a person and/or a period, not both");
	if (q->n_encounters > GATHER_MAX_ENCOUNTERS)
		return refuse(oo, status, 400, "too-costly", NULL, "at most 1000 Encounters at once");
	if (!q->n_encounters && !period && !person)
		return refuse(oo, status, 400, "required", NULL,
			      "name a person (patient), a period (from and to) or Encounters");
	if (period) {
		if (!q->from || !q->to)
			return refuse(oo, status, 400, "required", q->from ? wt : wf, "from and to go together");
		if (!fhir_is_date(q->from))
			return refuse(oo, status, 400, "value", wf, "from must be a date written YYYY-MM-DD");
		if (!fhir_is_date(q->to))
			return refuse(oo, status, 400, "value", wt, "to must be a date written YYYY-MM-DD");
		if (strcmp(q->from, q->to) > 0)
			return refuse(oo, status, 400, "value", wf, "from is after to");
	}
	struct gather_ref r = {0};
	if (q->patient_ref)
		r = *q->patient_ref;
	if ((q->patient && !read_ref_text(q->patient, "Patient", &r)) || (person && !ref_fits(&r)))
		return refuse(oo, status, 400, "value", wp,
			      "patient is a Patient id or the person's identifier system|value (each at most 1024 "
			      "characters)");
	for (size_t i = 0; i < q->n_encounters; i++) {
		if (!ref_fits(&q->encounters[i])) {
			char where[48];
			snprintf(where, sizeof where, "encounter[%zu]", i);
			return refuse(oo, status, 400, "value", where,
				      "an encounter is an id or an identifier of at most 1024 characters each");
		}
	}
	/* the query is well formed; from here on it is read */
	if (!app->store)
		return refuse(oo, status, 501, "not-supported", NULL, "no store is configured");
	char pid[STORE_ID_SIZE];
	if (person) {
		if (!resolve(app, "Patient", &r, wp, pid, oo, status))
			return NULL;
		if (!period)
			return patient_bundle(app, pid, oo, status);
	}
	if (period)
		return encounter_bundle(app, NULL, 0, q->from, q->to, person ? pid : NULL, oo, status);
	char(*ids)[STORE_ID_SIZE] = calloc(q->n_encounters, sizeof *ids);
	const char **idp = calloc(q->n_encounters, sizeof *idp);
	cJSON *b = NULL;
	if (!ids || !idp) {
		refuse(oo, status, 500, "exception", NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < q->n_encounters; i++) {
		char where[48];
		snprintf(where, sizeof where, "encounter[%zu]", i);
		if (!resolve(app, "Encounter", &q->encounters[i], where, ids[i], oo, status))
			goto out;
		idp[i] = ids[i];
	}
	b = encounter_bundle(app, idp, q->n_encounters, NULL, NULL, NULL, oo, status);
out:
	free(ids);
	free(idp);
	return b;
}

/* ------------------------------------------------------------ Parameters */

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A Reference naming a resource of type by reference or by identifier. */
static bool read_reference(const cJSON *ref, const char *type, struct gather_ref *r)
{
	const cJSON *idf = cJSON_GetObjectItemCaseSensitive(ref, "identifier");
	const char *text = str(ref, "reference");
	if (text && !idf)
		return !strchr(text, '|') && read_ref_text(text, type, r) && r->id != text;
	if (idf && !text) {
		memset(r, 0, sizeof *r);
		r->system = str(idf, "system");
		r->system_len = r->system ? strlen(r->system) : 0;
		r->value = str(idf, "value");
		return r->value && *r->value;
	}
	return false;
}

cJSON *gather_parameters(const struct app *app, const cJSON *parameters, struct outcome *oo, int *status)
{
	*status = 400;
	const char *rt = str(parameters, "resourceType");
	if (!rt || strcmp(rt, "Parameters") != 0)
		return refuse(oo, status, 400, "invalid", "resourceType", "expected a Parameters resource");
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(parameters, "parameter");
	size_t n = (size_t)cJSON_GetArraySize(list);
	struct gather_ref *enc = calloc(n ? n : 1, sizeof *enc), patient_ref;
	struct gather_query q = {.encounters = enc};
	char where[64], wpatient[64], wfrom[64], wto[64];
	cJSON *b = NULL;
	if (!enc)
		return refuse(oo, status, 500, "exception", NULL, "out of memory");
	size_t i = 0;
	const cJSON *p;
	cJSON_ArrayForEach(p, list)
	{
		snprintf(where, sizeof where, "Parameters.parameter[%zu]", i++);
		const char *name = str(p, "name");
		const cJSON *vref = cJSON_GetObjectItemCaseSensitive(p, "valueReference");
		const char *vdate = str(p, "valueDate"), *vstr = str(p, "valueString");
		bool two = cJSON_GetArraySize(p) == 2; /* name and one value */
		if (!name) {
			refuse(oo, status, 400, "required", where, "a parameter needs a name");
			goto out;
		}
		if (!strcmp(name, "encounter")) {
			if (!two || !read_reference(vref, "Encounter", &enc[q.n_encounters])) {
				refuse(oo, status, 400, "value", where,
				       "encounter is a valueReference: {\"reference\": \"Encounter/id\"} or "
				       "{\"identifier\": {\"system\", \"value\"}}");
				goto out;
			}
			q.n_encounters++;
		} else if (!strcmp(name, "patient")) {
			if (q.patient || q.patient_ref) {
				refuse(oo, status, 400, "invalid", where, "patient is given more than once");
				goto out;
			}
			snprintf(wpatient, sizeof wpatient, "%s", where);
			q.where_patient = wpatient;
			if (two && vstr)
				q.patient = vstr;
			else if (two && read_reference(vref, "Patient", &patient_ref))
				q.patient_ref = &patient_ref;
			else {
				refuse(oo, status, 400, "value", where,
				       "patient is a valueString (a Patient id or system|value) or a valueReference");
				goto out;
			}
		} else if (!strcmp(name, "from") || !strcmp(name, "to")) {
			bool from = name[0] == 'f';
			if (from ? q.from != NULL : q.to != NULL) {
				refuse(oo, status, 400, "invalid", where,
				       from ? "from is given more than once" : "to is given more than once");
				goto out;
			}
			if (!two || !vdate) {
				refuse(oo, status, 400, "value", where, "from and to are valueDate (YYYY-MM-DD)");
				goto out;
			}
			snprintf(from ? wfrom : wto, sizeof wfrom, "%s", where);
			*(from ? &q.where_from : &q.where_to) = from ? wfrom : wto;
			*(from ? &q.from : &q.to) = vdate;
		} else {
			refuse(oo, status, 400, "not-supported", where,
			       "unknown parameter (known: encounter, patient, from, to)");
			goto out;
		}
	}
	b = gather_bundle(app, &q, oo, status);
out:
	free(enc);
	return b;
}
