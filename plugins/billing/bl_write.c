/* bl_write — the billing extract (JSON, CSV) and the professional Claims of
 * Claim/$build, from analysed encounters. Only what billing needs leaves
 * here: codes, dates, identifiers, units, providers, payer data. Nothing is
 * copied from the input but those; docs/billing.md lists every element. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"

#define BL_CLAIM_NS BL_BASE "/billing/Claim"

static enum cw_status print(struct cw_ctx *ctx, cJSON *doc, char **out, size_t *len)
{
	if (!doc)
		return CW_NOMEM;
	*out = bl_host->print_json(ctx, doc, len);
	cJSON_Delete(doc);
	return *out ? CW_OK : CW_NOMEM;
}

static void add_str(cJSON *o, const char *k, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, k, v);
}

static cJSON *patient_json(const struct bl_enc *e)
{
	cJSON *p = cJSON_CreateObject();
	add_str(p, "system", e->patient_system);
	add_str(p, "value", e->patient_value);
	return p;
}

/* The Consents that permitted the disclosure, as the gateway cited them on
 * the input Bundle's meta: consents[] {reference, scope}. */
static void add_consents(cJSON *doc, const cJSON *bundle)
{
	cJSON *arr = NULL;
	const cJSON *x;
	cJSON_ArrayForEach(
		x, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(bundle, "meta"), "extension"))
	{
		const char *url = bl_str(x, "url");
		const cJSON *ref = cJSON_GetObjectItemCaseSensitive(x, "valueReference");
		if (!url || strcmp(url, BL_CONSENT_URL) != 0 || !bl_str(ref, "reference"))
			continue;
		if (!arr)
			arr = cJSON_AddArrayToObject(doc, "consents");
		cJSON *c = cJSON_CreateObject();
		add_str(c, "reference", bl_str(ref, "reference"));
		add_str(c, "scope", bl_str(ref, "display"));
		cJSON_AddItemToArray(arr, c);
	}
}

enum cw_status bl_write_json(struct cw_ctx *ctx, const struct bl_result *r, char **out, size_t *len)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddNumberToObject(doc, "version", 1);
	add_str(doc, "notice", r->notice);
	add_consents(doc, r->bundle);
	cJSON *lines = cJSON_AddArrayToObject(doc, "lines"), *nb = cJSON_AddArrayToObject(doc, "not_billed");
	for (size_t i = 0; i < r->n; i++) {
		const struct bl_enc *e = &r->enc[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddItemToArray(e->n_reasons ? nb : lines, o);
		add_str(o, "encounter", e->id);
		if (e->enc_value) {
			cJSON *ei = cJSON_AddObjectToObject(o, "encounter_identifier");
			add_str(ei, "system", e->enc_system);
			add_str(ei, "value", e->enc_value);
		}
		cJSON_AddItemToObject(o, "patient", patient_json(e));
		add_str(o, "service_date", e->date[0] ? e->date : NULL);
		if (e->n_reasons) {
			cJSON *rs = cJSON_AddArrayToObject(o, "reasons");
			for (size_t k = 0; k < e->n_reasons; k++) {
				cJSON *x = cJSON_CreateObject();
				cJSON_AddStringToObject(x, "reason", e->reasons[k].code);
				add_str(x, "detail", e->reasons[k].detail);
				cJSON_AddItemToArray(rs, x);
			}
			continue;
		}
		add_str(o, "provider_npi", e->npi);
		cJSON *code = cJSON_AddObjectToObject(o, "code");
		add_str(code, "system", e->code_system);
		add_str(code, "code", e->code);
		cJSON *mods = cJSON_AddArrayToObject(o, "modifiers");
		for (size_t k = 0; k < e->n_mods; k++)
			cJSON_AddItemToArray(mods, cJSON_CreateString(e->mods[k]));
		if (e->minutes >= 0)
			cJSON_AddNumberToObject(o, "minutes", (double)e->minutes);
		cJSON_AddNumberToObject(o, "units", (double)e->units);
		cJSON *dx = cJSON_AddArrayToObject(o, "diagnoses");
		for (size_t k = 0; k < e->n_dx; k++)
			cJSON_AddItemToArray(dx, cJSON_CreateString(e->dx[k]));
		add_str(o, "place_of_service", e->pos);
		cJSON *payer = cJSON_AddObjectToObject(o, "payer");
		add_str(payer, "id", e->payer_id);
		add_str(payer, "name", e->payer_name);
		add_str(payer, "member_id", e->member_id);
	}
	return print(ctx, doc, out, len);
}

/* ---------------------------------------------------------------- CSV */


static const char *joined(struct cw_ctx *ctx, const char *const *list, size_t n)
{
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		len += strlen(list[i]) + 1;
	char *s = bl_host->alloc(ctx, len);
	if (!s)
		return "";
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(s, ";");
		strcat(s, list[i]);
	}
	return s;
}

static const char csv_header[] = "status,encounter,encounter_identifier_system,encounter_identifier_value,"
				 "patient_system,patient_id,service_date,provider_npi,code_system,"
				 "code,modifiers,minutes,units,diagnoses,place_of_service,payer_id,payer_name,"
				 "member_id,reasons\n";

enum cw_status bl_write_csv(struct cw_ctx *ctx, const struct bl_result *r, char **out, size_t *len)
{
	struct pk_buf b = {.host = bl_host, .ctx = ctx, .in_arena = true};
	pk_put(&b, csv_header, sizeof csv_header - 1);
	for (size_t i = 0; i < r->n; i++) {
		const struct bl_enc *e = &r->enc[i];
		bool billed = !e->n_reasons;
		char minutes[24] = "", units[24] = "";
		if (billed && e->minutes >= 0)
			snprintf(minutes, sizeof minutes, "%ld", e->minutes);
		if (billed)
			snprintf(units, sizeof units, "%ld", e->units);
		const char *reasons[BL_MAX_REASONS];
		for (size_t k = 0; k < e->n_reasons; k++)
			reasons[k] = e->reasons[k].code;
		pk_csv_cell(&b, billed ? "billed" : "not-billed", false);
		pk_csv_cell(&b, e->id, false);
		pk_csv_cell(&b, e->enc_system, false);
		pk_csv_cell(&b, e->enc_value, false);
		pk_csv_cell(&b, e->patient_system, false);
		pk_csv_cell(&b, e->patient_value, false);
		pk_csv_cell(&b, e->date, false);
		pk_csv_cell(&b, billed ? e->npi : NULL, false);
		pk_csv_cell(&b, billed ? e->code_system : NULL, false);
		pk_csv_cell(&b, billed ? e->code : NULL, false);
		pk_csv_cell(&b, billed ? joined(ctx, e->mods, e->n_mods) : NULL, false);
		pk_csv_cell(&b, minutes, false);
		pk_csv_cell(&b, units, false);
		pk_csv_cell(&b, billed ? joined(ctx, e->dx, e->n_dx) : NULL, false);
		pk_csv_cell(&b, billed ? e->pos : NULL, false);
		pk_csv_cell(&b, billed ? e->payer_id : NULL, false);
		pk_csv_cell(&b, billed ? e->payer_name : NULL, false);
		pk_csv_cell(&b, billed ? e->member_id : NULL, false);
		pk_csv_cell(&b, joined(ctx, reasons, e->n_reasons), true);
	}
	return pk_buf_finish(&b, out, len) ? CW_OK : CW_NOMEM;
}

/* ------------------------------------------------------------- Claims */

static cJSON *concept(const char *system, const char *code, bool display)
{
	cJSON *cc = cJSON_CreateObject(), *cd = cJSON_CreateObject();
	cJSON_AddStringToObject(cd, "system", system);
	cJSON_AddStringToObject(cd, "code", code);
	(void)display;
	cJSON_AddItemToArray(cJSON_AddArrayToObject(cc, "coding"), cd);
	return cc;
}

static cJSON *reference(const char *type, const char *id)
{
	cJSON *r = cJSON_CreateObject();
	char buf[160];
	snprintf(buf, sizeof buf, "%s/%s", type, id);
	cJSON_AddStringToObject(r, "reference", buf);
	return r;
}

static cJSON *npi_identifier(const char *npi)
{
	cJSON *i = cJSON_CreateObject();
	cJSON_AddStringToObject(i, "system", BL_NPI);
	cJSON_AddStringToObject(i, "value", npi);
	return i;
}

/* Lines go on one Claim per person, rendering provider and Coverage, while
 * the Claim has room for their diagnoses and lines. */
struct claim {
	const struct bl_enc *first;
	const struct bl_enc **items;
	size_t n_items;
	const char *dx[BL_MAX_DX];
	size_t n_dx;
	char from[CW_DATE_SIZE], to[CW_DATE_SIZE];
};

static size_t dx_index(const struct claim *c, const char *code)
{
	for (size_t i = 0; i < c->n_dx; i++)
		if (!strcmp(c->dx[i], code))
			return i;
	return (size_t)-1;
}

static bool fits(const struct claim *c, const struct bl_enc *e)
{
	if (!pk_eq(c->first->patient_ref, e->patient_ref) || !pk_eq(c->first->npi, e->npi) ||
	    !pk_eq(c->first->coverage_id, e->coverage_id) || c->n_items >= BL_MAX_ITEMS)
		return false;
	size_t extra = 0;
	for (size_t i = 0; i < e->n_dx; i++)
		extra += dx_index(c, e->dx[i]) == (size_t)-1;
	return c->n_dx + extra <= BL_MAX_DX;
}

static void take(struct claim *c, const struct bl_enc *e)
{
	c->items[c->n_items++] = e;
	for (size_t i = 0; i < e->n_dx; i++)
		if (dx_index(c, e->dx[i]) == (size_t)-1)
			c->dx[c->n_dx++] = e->dx[i];
	if (!c->from[0] || strcmp(e->date, c->from) < 0)
		memcpy(c->from, e->date, CW_DATE_SIZE);
	if (!c->to[0] || strcmp(e->date, c->to) > 0)
		memcpy(c->to, e->date, CW_DATE_SIZE);
}

static cJSON *claim_json(struct cw_ctx *ctx, const struct claim *c, const char *today)
{
	const struct bl_enc *f = c->first;
	/* the id: from the encounters on the claim, so a rebuild gives the same id */
	size_t keylen = 1;
	for (size_t i = 0; i < c->n_items; i++)
		keylen += strlen(c->items[i]->id) + 1;
	char *key = bl_host->alloc(ctx, keylen), id[CW_ID_SIZE];
	if (!key)
		return NULL;
	for (size_t i = 0; i < c->n_items; i++) {
		strcat(key, c->items[i]->id);
		strcat(key, "|");
	}
	if (bl_host->make_id(ctx, BL_CLAIM_NS, key, id) != CW_OK)
		return NULL;
	cJSON *cl = cJSON_CreateObject();
	cJSON_AddStringToObject(cl, "resourceType", "Claim");
	cJSON_AddStringToObject(cl, "id", id);
	cJSON_AddStringToObject(cl, "status", "active");
	cJSON_AddItemToObject(cl, "type", concept("http://terminology.hl7.org/CodeSystem/claim-type", "professional", false));
	cJSON_AddStringToObject(cl, "use", "claim");
	const char *pid = strchr(f->patient_ref, '/') + 1;
	cJSON *pat = reference("Patient", pid);
	cJSON *pidf = cJSON_AddObjectToObject(pat, "identifier");
	cJSON_AddStringToObject(pidf, "system", f->patient_system);
	cJSON_AddStringToObject(pidf, "value", f->patient_value);
	cJSON_AddItemToObject(cl, "patient", pat);
	cJSON *bp = cJSON_AddObjectToObject(cl, "billablePeriod");
	cJSON_AddStringToObject(bp, "start", c->from);
	cJSON_AddStringToObject(bp, "end", c->to);
	cJSON_AddStringToObject(cl, "created", today);
	if (f->payer_org_id)
		cJSON_AddItemToObject(cl, "insurer", reference("Organization", f->payer_org_id));
	cJSON *prov;
	if (bl_cfg.provider_npi) { /* the billing provider of the settings */
		prov = cJSON_CreateObject();
		cJSON_AddStringToObject(prov, "type", "Organization");
		cJSON_AddItemToObject(prov, "identifier", npi_identifier(bl_cfg.provider_npi));
		add_str(prov, "display", bl_cfg.provider_name);
	} else {
		prov = reference("Practitioner", f->practitioner_id);
		cJSON_AddItemToObject(prov, "identifier", npi_identifier(f->npi));
	}
	cJSON_AddItemToObject(cl, "provider", prov);
	cJSON_AddItemToObject(cl, "priority",
			      concept("http://terminology.hl7.org/CodeSystem/processpriority", "normal", false));
	cJSON *team = cJSON_CreateObject();
	cJSON_AddNumberToObject(team, "sequence", 1);
	cJSON *rend = reference("Practitioner", f->practitioner_id);
	cJSON_AddItemToObject(rend, "identifier", npi_identifier(f->npi));
	cJSON_AddItemToObject(team, "provider", rend);
	cJSON_AddItemToObject(team, "role",
			      concept("http://terminology.hl7.org/CodeSystem/claimcareteamrole", "primary", false));
	cJSON *teams = cJSON_AddArrayToObject(cl, "careTeam");
	cJSON_AddItemToArray(teams, team);
	/* the supervisors of the lines (peer-support version 2), each once */
	for (size_t i = 0; i < c->n_items; i++) {
		const char *sup = c->items[i]->supervisor_id;
		bool seen = !sup;
		for (size_t k = 0; k < i && !seen; k++)
			seen = c->items[k]->supervisor_id && !strcmp(c->items[k]->supervisor_id, sup);
		if (seen)
			continue;
		cJSON *st = cJSON_CreateObject();
		cJSON_AddNumberToObject(st, "sequence", (double)cJSON_GetArraySize(teams) + 1);
		cJSON_AddItemToObject(st, "provider", reference("Practitioner", sup));
		cJSON_AddItemToObject(
			st, "role",
			concept("http://terminology.hl7.org/CodeSystem/claimcareteamrole", "supervisor", false));
		cJSON_AddItemToArray(teams, st);
	}
	cJSON *dxs = cJSON_AddArrayToObject(cl, "diagnosis");
	for (size_t i = 0; i < c->n_dx; i++) {
		cJSON *d = cJSON_CreateObject();
		cJSON_AddNumberToObject(d, "sequence", (double)(i + 1));
		cJSON_AddItemToObject(d, "diagnosisCodeableConcept", concept(BL_ICD10CM, c->dx[i], false));
		cJSON_AddItemToArray(dxs, d);
	}
	cJSON *ins = cJSON_CreateObject();
	cJSON_AddNumberToObject(ins, "sequence", 1);
	cJSON_AddTrueToObject(ins, "focal");
	cJSON_AddItemToObject(ins, "coverage", reference("Coverage", f->coverage_id));
	cJSON *pre = NULL; /* the prior authorizations of the lines, each once */
	for (size_t i = 0; i < c->n_items; i++) {
		const char *pa = c->items[i]->prior_auth;
		bool seen = !pa;
		for (size_t k = 0; k < i && !seen; k++)
			seen = c->items[k]->prior_auth && !strcmp(c->items[k]->prior_auth, pa);
		if (!seen) {
			if (!pre)
				pre = cJSON_AddArrayToObject(ins, "preAuthRef");
			cJSON_AddItemToArray(pre, cJSON_CreateString(pa));
		}
	}
	cJSON_AddItemToArray(cJSON_AddArrayToObject(cl, "insurance"), ins);
	cJSON *items = cJSON_AddArrayToObject(cl, "item");
	for (size_t i = 0; i < c->n_items; i++) {
		const struct bl_enc *e = c->items[i];
		cJSON *it = cJSON_CreateObject();
		cJSON_AddNumberToObject(it, "sequence", (double)(i + 1));
		cJSON *cts = cJSON_AddArrayToObject(it, "careTeamSequence");
		cJSON_AddItemToArray(cts, cJSON_CreateNumber(1));
		cJSON *ptr = cJSON_AddArrayToObject(it, "diagnosisSequence");
		for (size_t k = 0; k < e->n_dx && k < BL_MAX_DX_PTR; k++)
			cJSON_AddItemToArray(ptr, cJSON_CreateNumber((double)(dx_index(c, e->dx[k]) + 1)));
		cJSON_AddItemToObject(it, "productOrService", concept(e->code_system, e->code, false));
		if (e->n_mods) {
			cJSON *mods = cJSON_AddArrayToObject(it, "modifier");
			for (size_t k = 0; k < e->n_mods; k++)
				cJSON_AddItemToArray(mods, concept(BL_HCPCS, e->mods[k], false));
		}
		cJSON_AddStringToObject(it, "servicedDate", e->date);
		cJSON_AddItemToObject(it, "locationCodeableConcept", concept(BL_POS, e->pos, false));
		cJSON *q = cJSON_AddObjectToObject(it, "quantity");
		cJSON_AddNumberToObject(q, "value", (double)e->units);
		cJSON *er = reference("Encounter", e->id);
		if (e->enc_value) {
			cJSON *ei = cJSON_AddObjectToObject(er, "identifier");
			add_str(ei, "system", e->enc_system);
			add_str(ei, "value", e->enc_value);
		}
		cJSON_AddItemToArray(cJSON_AddArrayToObject(it, "encounter"), er);
		cJSON_AddItemToArray(items, it);
	}
	return cl;
}

static cJSON *outcome_json(struct cw_ctx *ctx, const struct bl_result *r, size_t billed)
{
	cJSON *oo = cJSON_CreateObject();
	cJSON_AddStringToObject(oo, "resourceType", "OperationOutcome");
	char id[CW_ID_SIZE], key[64];
	snprintf(key, sizeof key, "outcome|%zu|%zu", r->n, billed);
	if (bl_host->make_id(ctx, BL_CLAIM_NS, key, id) == CW_OK)
		cJSON_AddStringToObject(oo, "id", id);
	cJSON *issues = cJSON_AddArrayToObject(oo, "issue");
	for (size_t i = 0; i < r->n; i++) {
		const struct bl_enc *e = &r->enc[i];
		for (size_t k = 0; k < e->n_reasons; k++) {
			cJSON *is = cJSON_CreateObject();
			cJSON_AddStringToObject(is, "severity", "warning");
			cJSON_AddStringToObject(is, "code", "business-rule");
			cJSON *details = cJSON_AddObjectToObject(is, "details");
			cJSON *cd = cJSON_CreateObject();
			cJSON_AddStringToObject(cd, "system", BL_BASE "/CodeSystem/billing-not-billed");
			cJSON_AddStringToObject(cd, "code", e->reasons[k].code);
			cJSON_AddItemToArray(cJSON_AddArrayToObject(details, "coding"), cd);
			char text[400];
			snprintf(text, sizeof text, "Encounter/%s not billed: %s", e->id, e->reasons[k].detail);
			cJSON_AddStringToObject(is, "diagnostics", text);
			if (!r->gathered) { /* a place in the Bundle the client sent */
				char where[64];
				snprintf(where, sizeof where, "Bundle.entry[%zu].resource", e->entry);
				cJSON_AddItemToArray(cJSON_AddArrayToObject(is, "expression"), cJSON_CreateString(where));
			}
			cJSON_AddItemToArray(issues, is);
		}
	}
	if (!cJSON_GetArraySize(issues)) {
		cJSON *is = cJSON_CreateObject();
		cJSON_AddStringToObject(is, "severity", "information");
		cJSON_AddStringToObject(is, "code", "informational");
		char text[96];
		snprintf(text, sizeof text, "every encounter is billed (%zu)", billed);
		cJSON_AddStringToObject(is, "diagnostics", text);
		cJSON_AddItemToArray(issues, is);
	}
	return oo;
}

static void add_entry(cJSON *entries, cJSON *res)
{
	cJSON *ent = cJSON_CreateObject();
	const char *id = bl_str(res, "id");
	char url[80];
	snprintf(url, sizeof url, "urn:uuid:%s", id ? id : "");
	if (id)
		cJSON_AddStringToObject(ent, "fullUrl", url);
	cJSON_AddItemToObject(ent, "resource", res);
	cJSON_AddItemToArray(entries, ent);
}

enum cw_status bl_build_claims(struct cw_ctx *ctx, const struct bl_result *r, cJSON **out)
{
	char today[CW_DATE_SIZE];
	if (bl_host->iso_date(ctx, NULL, today) != CW_OK)
		return CW_INTERNAL;
	struct claim *claims = bl_host->alloc(ctx, (r->n ? r->n : 1) * sizeof *claims);
	if (!claims)
		return CW_NOMEM;
	size_t n = 0, billed = 0, room = r->n < BL_MAX_ITEMS ? r->n : BL_MAX_ITEMS;
	for (size_t i = 0; i < r->n; i++) {
		const struct bl_enc *e = &r->enc[i];
		if (e->n_reasons)
			continue;
		billed++;
		struct claim *c = NULL;
		for (size_t k = 0; k < n && !c; k++)
			if (fits(&claims[k], e))
				c = &claims[k];
		if (!c) {
			c = &claims[n++];
			memset(c, 0, sizeof *c);
			c->first = e;
			if (!(c->items = bl_host->alloc(ctx, room * sizeof *c->items)))
				return CW_NOMEM;
		}
		take(c, e);
	}
	cJSON *b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "resourceType", "Bundle");
	cJSON_AddStringToObject(b, "type", "collection");
	cJSON *entries = cJSON_AddArrayToObject(b, "entry");
	for (size_t k = 0; k < n; k++) {
		cJSON *cl = claim_json(ctx, &claims[k], today);
		if (!cl) {
			cJSON_Delete(b);
			return CW_NOMEM;
		}
		add_entry(entries, cl);
	}
	add_entry(entries, outcome_json(ctx, r, billed));
	*out = b;
	return CW_OK;
}
