/* bl_analyse — one bl_enc per Encounter of a Bundle: the code to bill, its
 * units from the configured time rules, the diagnoses, the provider, the
 * place of service and the payer, or every reason it cannot be billed.
 * Reads only codes, dates, identifiers and references; never narrative. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"

struct index {
	const cJSON *entries;
	size_t n;
	const cJSON **res; /* entry[i].resource */
};

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static bool is_type(const cJSON *r, const char *type)
{
	const char *t = bl_str(r, "resourceType");
	return t && !strcmp(t, type);
}

/* "Type/id" of a reference, also from an absolute URL ending so. */
static bool ref_parts(const char *ref, const char *type, const char **id)
{
	if (!ref)
		return false;
	size_t tl = strlen(type);
	const char *p = ref;
	for (const char *q = strstr(ref, type); q; q = strstr(q + 1, type))
		if ((q == ref || q[-1] == '/') && q[tl] == '/')
			p = q;
	if (strncmp(p, type, tl) != 0 || p[tl] != '/' || !p[tl + 1] || strchr(p + tl + 1, '/'))
		return false;
	*id = p + tl + 1;
	return true;
}

static const cJSON *find(const struct index *ix, const char *type, const cJSON *reference)
{
	const char *id;
	if (!ref_parts(bl_str(reference, "reference"), type, &id))
		return NULL;
	for (size_t i = 0; i < ix->n; i++) {
		const char *rid = bl_str(ix->res[i], "id");
		if (rid && is_type(ix->res[i], type) && !strcmp(rid, id))
			return ix->res[i];
	}
	return NULL;
}

static bool same_ref(const cJSON *reference, const char *type, const char *id)
{
	const char *got;
	return id && ref_parts(bl_str(reference, "reference"), type, &got) && !strcmp(got, id);
}

static void reason(struct cw_ctx *ctx, struct bl_enc *e, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void reason(struct cw_ctx *ctx, struct bl_enc *e, const char *code, const char *fmt, ...)
{
	if (e->n_reasons >= BL_MAX_REASONS)
		return;
	for (size_t i = 0; i < e->n_reasons; i++)
		if (!strcmp(e->reasons[i].code, code))
			return; /* one entry per reason; the first detail says it */
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	e->reasons[e->n_reasons++] = (struct bl_reason){code, bl_host->copy_string(ctx, buf)};
}

/* ------------------------------------------------------------- time */

static long long day_number(int y, int m, int d)
{
	/* days since a fixed epoch (proleptic Gregorian, March-based years) */
	long long yy = y - (m <= 2);
	long long era = (yy >= 0 ? yy : yy - 399) / 400;
	long long yoe = yy - era * 400;
	long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy;
}

/* A FHIR dateTime with at least minutes and a zone, as absolute minutes. */
static bool abs_minutes(const char *s, long long *out)
{
	if (!s || strlen(s) < 17 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':')
		return false;
	int y = pk_digits(s, 4), mo = pk_digits(s + 5, 2), d = pk_digits(s + 8, 2), h = pk_digits(s + 11, 2),
	    mi = pk_digits(s + 14, 2);
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59)
		return false;
	const char *z = s + 16;
	if (*z == ':') { /* seconds and a fraction */
		if (pk_digits(z + 1, 2) < 0)
			return false;
		z += 3;
		if (*z == '.')
			for (z++; *z >= '0' && *z <= '9'; z++)
				;
	}
	int off = 0;
	if (*z == 'Z' && !z[1]) {
		off = 0;
	} else if ((*z == '+' || *z == '-') && strlen(z) == 6 && z[3] == ':' && pk_digits(z + 1, 2) >= 0 &&
		   pk_digits(z + 4, 2) >= 0) {
		off = (pk_digits(z + 1, 2) * 60 + pk_digits(z + 4, 2)) * (*z == '-' ? -1 : 1);
	} else {
		return false;
	}
	*out = day_number(y, mo, d) * 1440 + h * 60 + mi - off;
	return true;
}

/* Minutes from Encounter.length (min or h), else period end − start. */
static long minutes_of(const cJSON *enc)
{
	const cJSON *len = get(enc, "length"), *v = get(len, "value");
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 100000) {
		const char *unit = bl_str(len, "code");
		if (!unit)
			unit = bl_str(len, "unit");
		if (unit && (!strcmp(unit, "min") || !strcmp(unit, "minutes")))
			return (long)v->valuedouble;
		if (unit && (!strcmp(unit, "h") || !strcmp(unit, "hours")))
			return (long)(v->valuedouble * 60);
	}
	long long a, b;
	const cJSON *period = get(enc, "period");
	if (abs_minutes(bl_str(period, "start"), &a) && abs_minutes(bl_str(period, "end"), &b) && b >= a &&
	    b - a <= 100000)
		return (long)(b - a);
	return -1;
}

/* ------------------------------------------------------------ pieces */

const char *bl_bundle_notice(const cJSON *bundle)
{
	const cJSON *x;
	cJSON_ArrayForEach(
		x, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(bundle, "meta"), "extension"))
	{
		const char *url = bl_str(x, "url");
		if (url && !strcmp(url, BL_NOTICE_URL))
			return bl_str(x, "valueString");
	}
	return NULL;
}

/* The gateway's stub of an Encounter its client may not see (the extension
 * https://crosswalk.example.org/fhir/StructureDefinition/withheld). */
static bool withheld(const cJSON *enc)
{
	const cJSON *x;
	cJSON_ArrayForEach(x, get(enc, "extension"))
	{
		if (bl_str(x, "url") && !strcmp(bl_str(x, "url"), BL_WITHHELD_URL) && bl_str(x, "valueCode") &&
		    !strcmp(bl_str(x, "valueCode"), "no-part2-consent"))
			return true;
	}
	return false;
}

static void patient_of(struct cw_ctx *ctx, const struct index *ix, const cJSON *enc, struct bl_enc *e)
{
	const cJSON *subj = get(enc, "subject");
	const cJSON *pat = find(ix, "Patient", subj);
	const char *pid;
	if (ref_parts(bl_str(subj, "reference"), "Patient", &pid))
		e->patient_ref = bl_str(subj, "reference");
	const cJSON *idf;
	cJSON_ArrayForEach(idf, get(pat, "identifier")) {
		if (bl_str(idf, "system") && bl_str(idf, "value")) {
			e->patient_system = bl_str(idf, "system");
			e->patient_value = bl_str(idf, "value");
			break;
		}
	}
	if (!e->patient_ref)
		reason(ctx, e, "no-patient", "the Encounter has no subject Patient");
	else if (!pat)
		reason(ctx, e, "no-patient", "the subject Patient is not in the Bundle");
	else if (!e->patient_value)
		reason(ctx, e, "no-patient", "the Patient has no identifier");
}

static const char *npi_of(const cJSON *r)
{
	const cJSON *idf;
	cJSON_ArrayForEach(idf, get(r, "identifier")) {
		const char *sys = bl_str(idf, "system");
		if (sys && !strcmp(sys, BL_NPI))
			return bl_str(idf, "value");
	}
	return NULL;
}

static void provider_of(struct cw_ctx *ctx, const struct index *ix, const cJSON *enc, struct bl_enc *e)
{
	const cJSON *p;
	bool bad_npi = false;
	cJSON_ArrayForEach(p, get(enc, "participant")) {
		const cJSON *ind = get(p, "individual");
		const cJSON *pr = find(ix, "Practitioner", ind);
		if (!pr) { /* a PractitionerRole names its Practitioner */
			const cJSON *role = find(ix, "PractitionerRole", ind);
			pr = role ? find(ix, "Practitioner", get(role, "practitioner")) : NULL;
		}
		const char *npi = npi_of(pr);
		if (npi && pk_npi_valid(npi)) {
			e->practitioner_id = bl_str(pr, "id");
			e->npi = npi;
			return;
		}
		bad_npi |= npi != NULL;
	}
	if (bad_npi)
		reason(ctx, e, "no-provider-npi", "the practitioner's NPI fails its check digit");
	else
		reason(ctx, e, "no-provider-npi", "no participating Practitioner in the Bundle has an NPI");
}

static bool in_period(const char *system, const char *date, const struct bl_period **which)
{
	for (size_t i = 0; i < bl_cfg.n_periods; i++) {
		const struct bl_period *p = &bl_cfg.periods[i];
		if (strcmp(p->system, bl_is_hcpcs(system) ? BL_HCPCS : system) != 0)
			continue;
		*which = p;
		return strcmp(date, p->from) >= 0 && strcmp(date, p->to) <= 0;
	}
	return true;
}

static void date_check(struct cw_ctx *ctx, struct bl_enc *e, const char *system, const char *code)
{
	const struct bl_period *p = NULL;
	if (e->date[0] && !in_period(system, e->date, &p))
		reason(ctx, e, "code-not-valid-on-date", "%.20s is coded with a code set valid %s to %s, not on %s",
		       code, p->from, p->to, e->date);
}

static bool condition_counts(const cJSON *c)
{
	const cJSON *cd;
	cJSON_ArrayForEach(cd, get(get(c, "verificationStatus"), "coding")) {
		const char *v = bl_str(cd, "code");
		if (v && (!strcmp(v, "refuted") || !strcmp(v, "entered-in-error")))
			return false;
	}
	return true;
}

static bool is_encounter_dx(const cJSON *c)
{
	const cJSON *cat, *cd;
	cJSON_ArrayForEach(cat, get(c, "category")) cJSON_ArrayForEach(cd, get(cat, "coding"))
	{
		const char *code = bl_str(cd, "code");
		if (code && !strcmp(code, "encounter-diagnosis"))
			return true;
	}
	return false;
}

static void add_dx(struct cw_ctx *ctx, struct bl_enc *e, const cJSON *cond, bool *had_condition)
{
	if (!cond || !condition_counts(cond))
		return;
	*had_condition = true;
	const cJSON *cd;
	cJSON_ArrayForEach(cd, get(get(cond, "code"), "coding")) {
		const char *sys = bl_str(cd, "system"), *code = bl_str(cd, "code");
		if (!sys || strcmp(sys, BL_ICD10CM) != 0 || !code)
			continue;
		unsigned f = bl_host->code_flags(ctx, BL_ICD10CM, code);
		if (!(f & CW_CODE_KNOWN)) {
			reason(ctx, e, "unknown-diagnosis-code", "%.20s is not an ICD-10-CM code", code);
			return;
		}
		if ((f & CW_CODE_BILLABLE_KNOWN) && !(f & CW_CODE_BILLABLE)) {
			reason(ctx, e, "diagnosis-not-billable",
			       "%.20s is an ICD-10-CM category, not billable: a more specific code is needed", code);
			return;
		}
		date_check(ctx, e, BL_ICD10CM, code);
		for (size_t i = 0; i < e->n_dx; i++)
			if (!strcmp(e->dx[i], code))
				return;
		if (e->n_dx < BL_MAX_DX)
			e->dx[e->n_dx++] = code;
		return; /* one ICD-10-CM code per Condition */
	}
}

struct ranked {
	const cJSON *cond;
	long rank;
	size_t order;
	const char *recorded;
};

static int by_rank(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	const char *rx = x->recorded ? x->recorded : "", *ry = y->recorded ? y->recorded : "";
	int c = strcmp(rx, ry);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void diagnoses_of(struct cw_ctx *ctx, const struct index *ix, const cJSON *enc, struct bl_enc *e)
{
	size_t cap = (size_t)cJSON_GetArraySize(get(enc, "diagnosis")) + ix->n, n = 0;
	struct ranked *list = bl_host->alloc(ctx, (cap ? cap : 1) * sizeof *list);
	if (!list)
		return;
	const cJSON *d;
	cJSON_ArrayForEach(d, get(enc, "diagnosis")) {
		const cJSON *cond = find(ix, "Condition", get(d, "condition")), *rank = get(d, "rank");
		if (cond)
			list[n++] = (struct ranked){cond, cJSON_IsNumber(rank) ? (long)rank->valuedouble : 1000000, n,
						    NULL};
	}
	if (!n) /* no Encounter.diagnosis: the encounter-diagnosis Conditions recorded for it */
		for (size_t i = 0; i < ix->n; i++)
			if (is_type(ix->res[i], "Condition") && is_encounter_dx(ix->res[i]) &&
			    same_ref(get(ix->res[i], "encounter"), "Encounter", e->id))
				list[n++] = (struct ranked){ix->res[i], 0, i, bl_str(ix->res[i], "recordedDate")};
	qsort(list, n, sizeof *list, by_rank);
	bool had = false;
	for (size_t i = 0; i < n; i++)
		add_dx(ctx, e, list[i].cond, &had);
	bool dx_reason = false;
	for (size_t i = 0; i < e->n_reasons; i++)
		dx_reason |= strstr(e->reasons[i].code, "diagnosis") != NULL;
	if (!e->n_dx && !dx_reason)
		reason(ctx, e, "no-diagnosis",
		       had ? "no diagnosis of the encounter has an ICD-10-CM code"
			   : "no diagnosis is recorded for the encounter");
}

static bool active_on(const cJSON *cov, const char *date)
{
	const char *st = bl_str(cov, "status");
	if (st && strcmp(st, "active") != 0)
		return false;
	const cJSON *p = get(cov, "period");
	const char *from = bl_str(p, "start"), *to = bl_str(p, "end");
	if (date[0] && from && strncmp(date, from, 10) < 0)
		return false;
	if (date[0] && to && strncmp(date, to, 10) > 0)
		return false;
	return true;
}

static void coverage_of(struct cw_ctx *ctx, const struct index *ix, struct bl_enc *e)
{
	const char *pid = NULL;
	if (!e->patient_ref || !ref_parts(e->patient_ref, "Patient", &pid))
		return;
	const cJSON *best = NULL;
	long best_order = 0;
	for (size_t i = 0; i < ix->n; i++) {
		const cJSON *c = ix->res[i], *ord;
		if (!is_type(c, "Coverage") || !same_ref(get(c, "beneficiary"), "Patient", pid) || !active_on(c, e->date) ||
		    !bl_str(c, "id"))
			continue;
		ord = get(c, "order");
		long o = cJSON_IsNumber(ord) ? (long)ord->valuedouble : 1000000;
		if (!best || o < best_order) {
			best = c;
			best_order = o;
		}
	}
	if (!best) {
		reason(ctx, e, "no-coverage", "no active Coverage of the patient on the service date");
		return;
	}
	e->coverage_id = bl_str(best, "id");
	e->member_id = bl_str(best, "subscriberId");
	if (!e->member_id)
		e->member_id = bl_str(cJSON_GetArrayItem(get(best, "identifier"), 0), "value");
	const cJSON *payor = cJSON_GetArrayItem(get(best, "payor"), 0);
	const cJSON *org = find(ix, "Organization", payor);
	if (org) {
		e->payer_org_id = bl_str(org, "id");
		e->payer_id = bl_str(cJSON_GetArrayItem(get(org, "identifier"), 0), "value");
		e->payer_name = bl_str(org, "name");
	}
	if (!e->payer_id)
		e->payer_id = bl_str(get(payor, "identifier"), "value");
	if (!e->payer_name)
		e->payer_name = bl_str(payor, "display");
	if (!e->payer_id)
		reason(ctx, e, "no-coverage", "the Coverage names no payer identifier");
}

static bool listed(const char *const *list, size_t n, const char *code)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], code))
			return true;
	return false;
}

static void add_mod(struct bl_enc *e, const char *m)
{
	if (e->n_mods < BL_MAX_MODS && !listed(e->mods, e->n_mods, m))
		e->mods[e->n_mods++] = m;
}

/* The code to bill: the first HCPCS or CPT procedure code of Encounter.type;
 * HCPCS modifiers there, group mode and telehealth add modifiers. */
static void code_of(struct cw_ctx *ctx, const cJSON *enc, struct bl_enc *e)
{
	const cJSON *t, *cd;
	bool group = false;
	cJSON_ArrayForEach(t, get(enc, "type")) cJSON_ArrayForEach(cd, get(t, "coding"))
	{
		const char *sys = bl_str(cd, "system"), *code = bl_str(cd, "code");
		if (!sys || !code)
			continue;
		if (!strcmp(sys, BL_MODE_SYSTEM) && !strcmp(code, "group"))
			group = true;
		bool hcpcs = bl_is_hcpcs(sys), cpt = !strcmp(sys, BL_CPT);
		if (!hcpcs && !cpt)
			continue;
		unsigned f = bl_host->code_flags(ctx, hcpcs ? BL_HCPCS : BL_CPT, code);
		if (hcpcs && (f & CW_CODE_MODIFIER)) {
			add_mod(e, code);
			continue;
		}
		if (e->code)
			continue; /* one line per encounter: the first procedure code */
		e->code_system = hcpcs ? BL_HCPCS : BL_CPT;
		e->code = code;
		bool checkable = bl_host->code_system_known(ctx, e->code_system);
		if (checkable && !(f & CW_CODE_KNOWN))
			reason(ctx, e, "unknown-procedure-code", "%.20s is not a code of the loaded %s code set", code,
			       hcpcs ? "HCPCS" : "CPT");
		else if (!checkable && hcpcs)
			reason(ctx, e, "unknown-procedure-code", "no HCPCS code pack is loaded to check %.20s", code);
		else if (f & CW_CODE_INACTIVE)
			reason(ctx, e, "procedure-code-inactive", "%.20s is terminated in the loaded HCPCS code set",
			       code);
	}
	if (!e->code) {
		reason(ctx, e, "no-billing-code", "the Encounter type carries no HCPCS or CPT code");
		return;
	}
	if (group)
		for (size_t i = 0; i < bl_cfg.n_group_mods; i++)
			add_mod(e, bl_cfg.group_mods[i]);
	const char *cls = bl_str(get(enc, "class"), "code");
	if (cls && !strcmp(cls, "VR"))
		for (size_t i = 0; i < bl_cfg.n_tele_mods; i++)
			add_mod(e, bl_cfg.tele_mods[i]);
}

#define BL_PLAN_URL BL_BASE "/StructureDefinition/peer-support-plan-of-care"
#define BL_PRIOR_AUTH_URL BL_BASE "/StructureDefinition/peer-support-prior-authorization"
#define BL_CARETEAM_ROLE "http://terminology.hl7.org/CodeSystem/claimcareteamrole"

/* What the payer rules read: the supervising participant, the rendering
 * practitioner's certification, the plan of care and the prior
 * authorization (peer-support version 2 writes them; docs/billing.md). */
static void peer_context_of(const struct index *ix, const cJSON *enc, struct bl_enc *e)
{
	const cJSON *p, *t, *c, *x;
	cJSON_ArrayForEach(p, get(enc, "participant")) cJSON_ArrayForEach(t, get(p, "type")) cJSON_ArrayForEach(
		c, get(t, "coding")) if (!e->supervisor_id && bl_str(c, "system") &&
					 !strcmp(bl_str(c, "system"), BL_CARETEAM_ROLE) && bl_str(c, "code") &&
					 !strcmp(bl_str(c, "code"), "supervisor"))
	{
		const cJSON *pr = find(ix, "Practitioner", get(p, "individual"));
		e->supervisor_id = pr ? bl_str(pr, "id") : NULL;
	}
	cJSON_ArrayForEach(x, get(enc, "extension"))
	{
		const char *url = bl_str(x, "url");
		if (url && !strcmp(url, BL_PLAN_URL) && get(x, "valueReference")) {
			const cJSON *ref = get(x, "valueReference");
			e->plan_of_care = true;
			e->plan_key = bl_str(ref, "reference") ? bl_str(ref, "reference")
							       : bl_str(get(ref, "identifier"), "value");
		} else if (url && !strcmp(url, BL_PRIOR_AUTH_URL) && bl_str(x, "valueString"))
			e->prior_auth = bl_str(x, "valueString");
	}
	const cJSON *pr = NULL;
	for (size_t i = 0; e->practitioner_id && i < ix->n && !pr; i++)
		if (is_type(ix->res[i], "Practitioner") && bl_str(ix->res[i], "id") &&
		    !strcmp(bl_str(ix->res[i], "id"), e->practitioner_id))
			pr = ix->res[i];
	cJSON_ArrayForEach(c, get(pr, "qualification"))
	{
		const char *end = bl_str(get(c, "period"), "end");
		if (end && strlen(end) >= 10 && (!e->cert_expiry || strncmp(end, e->cert_expiry, 10) > 0))
			e->cert_expiry = end;
	}
}

/* The payer's rules for the line: supervisor, certification valid on the
 * service date, plan of care, a diagnosis of the kinds it covers; its
 * modifiers. */
static void payer_rules_of(struct cw_ctx *ctx, struct bl_enc *e)
{
	const struct bl_payer_policy *pol = bl_policy(e->payer_id);
	if (!pol)
		return;
	if (pol->supervisor && !e->supervisor_id)
		reason(ctx, e, "no-supervisor", "payer %.40s requires a supervisor taking part", e->payer_id);
	if (pol->credential && !e->cert_expiry)
		reason(ctx, e, "no-credential", "payer %.40s requires the practitioner's certification", e->payer_id);
	else if (pol->credential && e->date[0] && strncmp(e->cert_expiry, e->date, 10) < 0)
		reason(ctx, e, "credential-expired", "the certification expired %.10s, before the service date %s",
		       e->cert_expiry, e->date);
	if (pol->plan_of_care && !e->plan_of_care)
		reason(ctx, e, "no-plan-of-care", "payer %.40s requires a plan of care", e->payer_id);
	bool covered = !pol->n_dx_prefixes || !e->n_dx;
	for (size_t i = 0; i < e->n_dx && !covered; i++)
		for (size_t k = 0; k < pol->n_dx_prefixes && !covered; k++)
			covered = !strncmp(e->dx[i], pol->dx_prefixes[k], strlen(pol->dx_prefixes[k]));
	if (!covered)
		reason(ctx, e, "diagnosis-not-covered", "payer %.40s covers diagnoses beginning %.8s%s", e->payer_id,
		       pol->dx_prefixes[0], pol->n_dx_prefixes > 1 ? " and others of its list" : "");
	for (size_t i = 0; e->code && i < pol->n_mods; i++)
		add_mod(e, pol->mods[i]);
}

/* The counting year of a payer that holds date (its first day's number). */
static long long year_of(const struct bl_payer_policy *pol, const char *date)
{
	int y = atoi(date), m = atoi(date + 5), d = atoi(date + 8);
	if (m < pol->year_month || (m == pol->year_month && d < pol->year_day))
		y--;
	return y;
}

/* Whether two lines of a payer fall in one counting period: the same plan
 * of care (an episode) or the same counting year. */
static bool same_period(const struct bl_payer_policy *pol, const struct bl_enc *a, const struct bl_enc *b)
{
	if (pol->per_plan)
		return !strcmp(a->plan_key ? a->plan_key : "", b->plan_key ? b->plan_key : "");
	return year_of(pol, a->date) == year_of(pol, b->date);
}

/* Units beyond a payer's units_before_authorization (per person, code and
 * counting period, in service order) need a prior authorization. */
static void apply_authorizations(struct cw_ctx *ctx, struct bl_result *r)
{
	for (size_t i = 0; i < r->n; i++) {
		struct bl_enc *e = &r->enc[i];
		const struct bl_payer_policy *pol = bl_policy(e->payer_id);
		if (e->n_reasons || !e->units || !pol || !pol->units_before_authorization || e->prior_auth)
			continue;
		long used = 0;
		for (size_t k = 0; k < i; k++) {
			const struct bl_enc *o = &r->enc[k];
			if (!o->n_reasons && !strcmp(o->patient_ref, e->patient_ref) && !strcmp(o->code, e->code) &&
			    !strcmp(o->payer_id, e->payer_id) && same_period(pol, o, e))
				used += o->units;
		}
		if (used + e->units > pol->units_before_authorization) {
			reason(ctx, e, "authorization-exceeded",
			       "%ld units of %.20s already billed to %.40s this %s; %ld more need a prior "
			       "authorization (limit %ld)",
			       used, e->code, e->payer_id, pol->per_plan ? "plan of care" : "year", e->units,
			       pol->units_before_authorization);
			e->units = 0;
		}
	}
}

static const struct bl_rule *rule_for(const char *payer, const char *code)
{
	for (size_t i = 0; payer && i < bl_cfg.n_payer_rules; i++)
		if (!strcmp(bl_cfg.payer_rules[i].payer, payer) && !strcmp(bl_cfg.payer_rules[i].code, code))
			return bl_cfg.payer_rules[i].rule;
	return bl_cfg.default_rule;
}

/* Units (before daily caps), and the banded code chosen from minutes. */
static void units_of(struct cw_ctx *ctx, struct bl_enc *e)
{
	e->units = 1;
	for (size_t i = 0; i < bl_cfg.n_bands; i++) {
		const struct bl_bands *b = &bl_cfg.bands[i];
		bool member = false;
		for (size_t k = 0; k < b->n; k++)
			member |= !strcmp(b->system, e->code_system) && !strcmp(b->band[k].code, e->code);
		if (!member)
			continue;
		if (e->minutes < 0) {
			reason(ctx, e, "no-duration", "%.20s is billed by time and the Encounter has no duration", e->code);
			return;
		}
		for (size_t k = 0; k < b->n; k++)
			if (e->minutes >= b->band[k].from && (!b->band[k].to || e->minutes <= b->band[k].to)) {
				e->code = b->band[k].code;
				return;
			}
		e->units = 0;
		reason(ctx, e, "below-one-unit", "%ld minutes is below the shortest time band of %.20s (%ld minutes)",
		       e->minutes, e->code, b->band[0].from);
		return;
	}
	if (strcmp(e->code_system, BL_HCPCS) != 0 || !listed(bl_cfg.timed, bl_cfg.n_timed, e->code))
		return; /* untimed: one unit */
	if (e->minutes < 0) {
		e->units = 0;
		reason(ctx, e, "no-duration", "%.20s is billed per unit of time and the Encounter has no duration",
		       e->code);
		return;
	}
	const struct bl_rule *r = rule_for(e->payer_id, e->code);
	long m = e->minutes;
	e->units = m < r->min_minutes ? 0 : m / r->unit_minutes + (m % r->unit_minutes >= r->round_up_at ? 1 : 0);
	if (!e->units)
		reason(ctx, e, "below-one-unit", "%ld minutes is below one unit under the rule %.40s", m, r->name);
}

static void pos_of(struct cw_ctx *ctx, const cJSON *enc, struct bl_enc *e)
{
	const char *cls = bl_str(get(enc, "class"), "code");
	for (size_t i = 0; cls && i < bl_cfg.n_pos; i++)
		if (!strcmp(bl_cfg.pos[i].key, cls)) {
			e->pos = bl_cfg.pos[i].value;
			return;
		}
	reason(ctx, e, "no-place-of-service", "Encounter.class %.20s has no place of service in the settings",
	       cls ? cls : "(none)");
}

static int by_start(const void *a, const void *b)
{
	const struct bl_enc *x = a, *y = b;
	if (x->start_min != y->start_min)
		return x->start_min < y->start_min ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Daily caps: per person, code and service date, in service order. */
static void apply_caps(struct cw_ctx *ctx, struct bl_result *r)
{
	for (size_t i = 0; i < r->n; i++) {
		struct bl_enc *e = &r->enc[i];
		if (e->n_reasons || !e->units || strcmp(e->code_system, BL_HCPCS) != 0 ||
		    !listed(bl_cfg.timed, bl_cfg.n_timed, e->code))
			continue;
		const struct bl_rule *rule = rule_for(e->payer_id, e->code);
		if (!rule->max_units_per_day)
			continue;
		long used = 0;
		for (size_t k = 0; k < i; k++) {
			const struct bl_enc *o = &r->enc[k];
			if (!o->n_reasons && !strcmp(o->patient_ref, e->patient_ref) && !strcmp(o->code, e->code) &&
			    !strcmp(o->date, e->date))
				used += o->units;
		}
		long left = rule->max_units_per_day - used;
		if (left <= 0) {
			e->units = 0;
			reason(ctx, e, "daily-cap-reached", "%ld units of %.20s already billed on %s (rule %.40s)", used,
			       e->code, e->date, rule->name);
		} else if (e->units > left) {
			e->units = left;
		}
	}
}

enum cw_status bl_analyse(struct cw_ctx *ctx, const cJSON *bundle, struct bl_result *out)
{
	memset(out, 0, sizeof *out);
	if (!is_type(bundle, "Bundle")) {
		bl_host->issue(ctx, CW_SEV_ERROR, "invalid", NULL, "the input is not a Bundle");
		return CW_INVALID;
	}
	struct index ix = {.entries = get(bundle, "entry")};
	ix.n = (size_t)cJSON_GetArraySize(ix.entries);
	ix.res = bl_host->alloc(ctx, (ix.n ? ix.n : 1) * sizeof *ix.res);
	out->enc = bl_host->alloc(ctx, (ix.n ? ix.n : 1) * sizeof *out->enc);
	if (!ix.res || !out->enc)
		return CW_NOMEM;
	size_t i = 0;
	const cJSON *ent;
	cJSON_ArrayForEach(ent, ix.entries) {
		const cJSON *r = get(ent, "resource");
		ix.res[i++] = cJSON_IsObject(r) ? r : NULL;
	}
	for (i = 0; i < ix.n; i++) {
		const cJSON *enc = ix.res[i];
		if (!is_type(enc, "Encounter"))
			continue;
		struct bl_enc *e = &out->enc[out->n++];
		memset(e, 0, sizeof *e);
		e->entry = i;
		e->id = bl_str(enc, "id") ? bl_str(enc, "id") : "";
		const cJSON *idf;
		cJSON_ArrayForEach(idf, get(enc, "identifier")) {
			if (bl_str(idf, "value")) {
				e->enc_system = bl_str(idf, "system");
				e->enc_value = bl_str(idf, "value");
				break;
			}
		}
		e->start = bl_str(get(enc, "period"), "start");
		if (!abs_minutes(e->start, &e->start_min))
			e->start_min = 0;
		e->minutes = minutes_of(enc);
		if (e->start && strlen(e->start) >= 10) {
			char d[CW_DATE_SIZE];
			memcpy(d, e->start, 10);
			d[10] = '\0';
			if (d[4] == '-' && bl_host->iso_date(ctx, d, e->date) != CW_OK)
				e->date[0] = '\0';
		}
		if (withheld(enc)) {
			/* the gateway withheld it from this client: listed, never billed from a stub */
			patient_of(ctx, &ix, enc, e);
			reason(ctx, e, "no-part2-consent",
			       "the Encounter is 42 CFR Part 2 data; no Consent permits its disclosure here");
			continue;
		}
		if (!e->id[0])
			reason(ctx, e, "no-encounter-id", "the Encounter has no id");
		const char *status = bl_str(enc, "status");
		if (!status || strcmp(status, "finished") != 0)
			reason(ctx, e, "not-finished", "the Encounter status is %.20s, not finished",
			       status ? status : "(none)");
		if (!e->date[0])
			reason(ctx, e, "no-service-date", "the Encounter has no period.start date");
		patient_of(ctx, &ix, enc, e);
		code_of(ctx, enc, e);
		if (e->code)
			date_check(ctx, e, e->code_system, e->code);
		diagnoses_of(ctx, &ix, enc, e);
		provider_of(ctx, &ix, enc, e);
		coverage_of(ctx, &ix, e);
		peer_context_of(&ix, enc, e);
		payer_rules_of(ctx, e);
		pos_of(ctx, enc, e);
		if (e->code)
			units_of(ctx, e);
	}
	qsort(out->enc, out->n, sizeof *out->enc, by_start);
	apply_caps(ctx, out);
	apply_authorizations(ctx, out);
	return CW_OK;
}
