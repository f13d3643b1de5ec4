/* billing — the descriptor, the settings and small helpers. The settings
 * (plugins.billing) are tables: unit rules, timed codes, time bands, payer
 * rules, places of service, modifiers, code-set periods. A key left out
 * takes its default from bl_defaults below, which is itself such a table
 * read by the same code; unit_rules given are added to the default rules.
 * Any fault refuses the plugin at init (the gateway exits 2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"

const struct cw_host *bl_host; /* set in init; read-only afterwards */
struct bl_config bl_cfg;
static cJSON *defaults; /* parsed bl_defaults, kept until fini */

static const char bl_defaults[] =
	"{"
	"\"unit_rules\":{\"cms-8-minute\":{\"unit_minutes\":15,\"round_up_at\":8}},"
	"\"default_unit_rule\":\"cms-8-minute\","
	"\"timed_codes\":[\"H0004\",\"H0034\",\"H0036\",\"H0038\",\"H0039\",\"H2011\",\"H2014\",\"H2015\","
	"\"H2017\",\"H2019\",\"H2023\",\"H2025\",\"H2027\",\"T1016\",\"T1017\"],"
	"\"time_bands\":[{\"system\":\"" BL_CPT "\",\"bands\":["
	"{\"code\":\"90832\",\"from\":16,\"to\":37},{\"code\":\"90834\",\"from\":38,\"to\":52},"
	"{\"code\":\"90837\",\"from\":53}]}],"
	"\"payers\":{},"
	"\"place_of_service\":{\"AMB\":\"11\",\"FLD\":\"99\",\"HH\":\"12\",\"VR\":\"02\"},"
	"\"modifiers\":{\"group\":[\"HQ\"],\"telehealth\":[]},"
	"\"code_periods\":{},"
	"\"payer_rules\":{}"
	"}";

static const char *const keys[] = {
	"billing_provider", "unit_rules", "default_unit_rule", "timed_codes", "time_bands", "payers",
	"place_of_service", "modifiers",  "code_periods",      "payer_rules", NULL};

/* ------------------------------------------------------------ helpers */

const char *bl_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

bool bl_is_hcpcs(const char *s)
{
	return s && (!strcmp(s, BL_HCPCS) || !strcmp(s, "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets") ||
		     !strcmp(s, "http://terminology.hl7.org/CodeSystem/HCPCS-all-codes"));
}

/* ----------------------------------------------------------- settings */

struct cfgread {
	struct cw_ctx *ctx;
	bool ok;
};

static void bad(struct cfgread *c, const char *where, const char *why)
{
	/* the refusal line shows the message only: it names the key itself */
	bl_host->issue(c->ctx, CW_SEV_ERROR, "value", where, "%s: %s", where, why);
	c->ok = false;
}

/* Settings outlive init's arena: they are malloc'd, kept here, freed in
 * fini (or when init fails). */
static void *owned[64];
static size_t n_owned;

static void release_owned(void)
{
	for (size_t i = 0; i < n_owned; i++)
		free(owned[i]);
	n_owned = 0;
}

static void *grab(struct cfgread *c, size_t n, size_t size)
{
	void *p = n_owned < sizeof owned / sizeof owned[0] ? calloc(n ? n : 1, size) : NULL;
	if (!p)
		bad(c, "plugins.billing", "out of memory");
	else
		owned[n_owned++] = p;
	return p;
}

/* A whole number lo..hi; dflt when absent and optional. */
static long whole(struct cfgread *c, const cJSON *o, const char *key, long lo, long hi, long dflt, const char *where)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!v && dflt >= 0)
		return dflt;
	char w[160];
	snprintf(w, sizeof w, "%s.%s", where, key);
	if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long)v->valuedouble || v->valuedouble < (double)lo ||
	    v->valuedouble > (double)hi) {
		char why[96];
		snprintf(why, sizeof why, "must be a whole number from %ld to %ld", lo, hi);
		bad(c, w, why);
		return lo;
	}
	return (long)v->valuedouble;
}

static bool only_members(struct cfgread *c, const cJSON *o, const char *const *allowed, const char *where)
{
	const cJSON *m;
	bool ok = true;
	cJSON_ArrayForEach(m, o) {
		bool known = false;
		for (size_t i = 0; allowed[i]; i++)
			known |= !strcmp(m->string, allowed[i]);
		if (!known) {
			char w[160];
			snprintf(w, sizeof w, "%s.%s", where, m->string);
			bad(c, w, "unknown setting");
			ok = false;
		}
	}
	return ok;
}

static bool is_date(const char *s, char out[CW_DATE_SIZE], struct cw_ctx *ctx)
{
	return s && strlen(s) == 10 && s[4] == '-' && bl_host->iso_date(ctx, s, out) == CW_OK;
}

static const struct bl_rule *find_rule(const char *name)
{
	for (size_t i = 0; name && i < bl_cfg.n_rules; i++)
		if (!strcmp(bl_cfg.rules[i].name, name))
			return &bl_cfg.rules[i];
	return NULL;
}

static const cJSON *pick(const cJSON *conf, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(conf, key);
	return v ? v : cJSON_GetObjectItemCaseSensitive(defaults, key);
}

static void read_rules(struct cfgread *c, const cJSON *conf)
{
	static const char *const members[] = {"unit_minutes", "round_up_at", "min_minutes", "max_units_per_day",
					      NULL};
	const cJSON *given = cJSON_GetObjectItemCaseSensitive(conf, "unit_rules");
	const cJSON *dflt = cJSON_GetObjectItemCaseSensitive(defaults, "unit_rules");
	if (given && !cJSON_IsObject(given)) {
		bad(c, "plugins.billing.unit_rules", "must be an object of rules by name");
		return;
	}
	size_t cap = (size_t)cJSON_GetArraySize(given) + (size_t)cJSON_GetArraySize(dflt);
	if (!(bl_cfg.rules = grab(c, cap, sizeof *bl_cfg.rules)))
		return;
	const cJSON *sets[2] = {given, dflt}, *r;
	for (int s = 0; s < 2; s++) {
		cJSON_ArrayForEach(r, sets[s]) {
			if (find_rule(r->string))
				continue; /* a rule given replaces the default of that name */
			char where[160];
			snprintf(where, sizeof where, "plugins.billing.unit_rules.%s", r->string);
			if (!cJSON_IsObject(r)) {
				bad(c, where, "must be an object");
				continue;
			}
			if (!only_members(c, r, members, where))
				continue;
			struct bl_rule *u = &bl_cfg.rules[bl_cfg.n_rules++];
			u->name = r->string;
			u->unit_minutes = whole(c, r, "unit_minutes", 1, 1440, -1, where);
			u->round_up_at = whole(c, r, "round_up_at", 1, u->unit_minutes, u->unit_minutes, where);
			u->min_minutes = whole(c, r, "min_minutes", 0, 1440, 0, where);
			u->max_units_per_day = whole(c, r, "max_units_per_day", 1, 1000, 0, where);
		}
	}
	const char *name = bl_str(conf, "default_unit_rule");
	if (!name && cJSON_GetObjectItemCaseSensitive(conf, "default_unit_rule"))
		bad(c, "plugins.billing.default_unit_rule", "must name a rule of unit_rules");
	if (!name)
		name = bl_str(defaults, "default_unit_rule");
	if (!(bl_cfg.default_rule = find_rule(name)))
		bad(c, "plugins.billing.default_unit_rule", "must name a rule of unit_rules");
}

/* A HCPCS code the pack has, of the kind wanted (a modifier or not); when
 * no HCPCS pack is loaded the code cannot be checked and is taken. */
static void check_hcpcs(struct cfgread *c, const char *code, bool modifier, const char *where)
{
	if (!bl_host->code_system_known(c->ctx, BL_HCPCS))
		return;
	unsigned f = bl_host->code_flags(c->ctx, BL_HCPCS, code);
	if (!(f & CW_CODE_KNOWN))
		bad(c, where, "not a code of the loaded HCPCS pack");
	else if (!!(f & CW_CODE_MODIFIER) != modifier)
		bad(c, where, modifier ? "not a HCPCS modifier" : "a HCPCS modifier, not a procedure code");
}

/* A list of codes, each once; HCPCS ones (hcpcs) checked against the pack. */
static const char **code_list(struct cfgread *c, const cJSON *arr, size_t *n, size_t max_len, bool modifiers,
			      bool hcpcs, const char *where)
{
	*n = 0;
	if (!cJSON_IsArray(arr)) {
		bad(c, where, "must be an array of codes");
		return NULL;
	}
	const char **out = grab(c, (size_t)cJSON_GetArraySize(arr), sizeof *out);
	const cJSON *v;
	size_t i = 0;
	cJSON_ArrayForEach(v, arr) {
		char w[160];
		snprintf(w, sizeof w, "%s[%zu]", where, i++);
		if (!out)
			return NULL;
		if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > max_len ||
		    strpbrk(v->valuestring, " ,;\"\t\r\n")) {
			bad(c, w, "must be a code (no spaces, commas or semicolons)");
			continue;
		}
		for (size_t k = 0; k < *n; k++)
			if (!strcmp(out[k], v->valuestring))
				bad(c, w, "listed twice");
		if (hcpcs)
			check_hcpcs(c, v->valuestring, modifiers, w);
		out[(*n)++] = v->valuestring;
	}
	return out;
}

static const char **strings(struct cfgread *c, const cJSON *arr, size_t *n, size_t max_len, bool modifiers,
			    const char *where)
{
	return code_list(c, arr, n, max_len, modifiers, true, where);
}

static void read_bands(struct cfgread *c, const cJSON *arr)
{
	const char *where = "plugins.billing.time_bands";
	if (!cJSON_IsArray(arr)) {
		bad(c, where, "must be an array of band families");
		return;
	}
	if (!(bl_cfg.bands = grab(c, (size_t)cJSON_GetArraySize(arr), sizeof *bl_cfg.bands)))
		return;
	static const char *const fam_members[] = {"system", "bands", NULL};
	static const char *const band_members[] = {"code", "from", "to", NULL};
	const cJSON *fam;
	size_t fi = 0;
	cJSON_ArrayForEach(fam, arr) {
		char w[160];
		snprintf(w, sizeof w, "%s[%zu]", where, fi++);
		if (!cJSON_IsObject(fam) || !only_members(c, fam, fam_members, w)) {
			bad(c, w, "must be an object with system and bands");
			continue;
		}
		const char *sys = bl_str(fam, "system");
		const cJSON *bands = cJSON_GetObjectItemCaseSensitive(fam, "bands");
		if (!sys || !strchr(sys, ':') || strpbrk(sys, " \t\r\n")) {
			bad(c, w, "system must be an absolute URI");
			continue;
		}
		if (!cJSON_IsArray(bands) || !cJSON_GetArraySize(bands)) {
			bad(c, w, "bands must be an array of at least one band");
			continue;
		}
		struct bl_bands *b = &bl_cfg.bands[bl_cfg.n_bands++];
		b->system = bl_is_hcpcs(sys) ? BL_HCPCS : sys;
		if (!(b->band = grab(c, (size_t)cJSON_GetArraySize(bands), sizeof *b->band)))
			return;
		const cJSON *x;
		size_t bi = 0;
		cJSON_ArrayForEach(x, bands) {
			char bw[200];
			snprintf(bw, sizeof bw, "%s.bands[%zu]", w, bi++);
			if (!cJSON_IsObject(x) || !only_members(c, x, band_members, bw) || !bl_str(x, "code")) {
				bad(c, bw, "must be an object with code, from and an optional to");
				continue;
			}
			struct bl_band *band = &b->band[b->n];
			band->code = bl_str(x, "code");
			band->from = whole(c, x, "from", 1, 1440, -1, bw);
			band->to = whole(c, x, "to", band->from, 1440, 0, bw);
			if (b->n) {
				const struct bl_band *prev = &b->band[b->n - 1];
				if (!prev->to || band->from <= prev->to)
					bad(c, bw, "bands must ascend without overlapping (only the last may lack to)");
			}
			if (b->system == (const char *)BL_HCPCS)
				check_hcpcs(c, band->code, false, bw);
			b->n++;
		}
	}
}

static void read_payers(struct cfgread *c, const cJSON *o)
{
	const char *where = "plugins.billing.payers";
	if (!cJSON_IsObject(o)) {
		bad(c, where, "must be an object: payer id → {code: rule name}");
		return;
	}
	size_t cap = 0;
	const cJSON *p, *r;
	cJSON_ArrayForEach(p, o) cap += (size_t)cJSON_GetArraySize(p);
	if (!(bl_cfg.payer_rules = grab(c, cap, sizeof *bl_cfg.payer_rules)))
		return;
	cJSON_ArrayForEach(p, o) {
		char w[200];
		snprintf(w, sizeof w, "%s.%s", where, p->string);
		if (!cJSON_IsObject(p) || !p->string[0]) {
			bad(c, w, "must be an object: timed code → rule name");
			continue;
		}
		cJSON_ArrayForEach(r, p) {
			char rw[300];
			snprintf(rw, sizeof rw, "%s.%s", w, r->string);
			const struct bl_rule *rule = cJSON_IsString(r) ? find_rule(r->valuestring) : NULL;
			bool timed = false;
			for (size_t i = 0; i < bl_cfg.n_timed; i++)
				timed |= !strcmp(bl_cfg.timed[i], r->string);
			if (!rule)
				bad(c, rw, "must name a rule of unit_rules");
			else if (!timed)
				bad(c, rw, "not one of timed_codes");
			else
				bl_cfg.payer_rules[bl_cfg.n_payer_rules++] =
					(struct bl_payer_rule){.payer = p->string, .code = r->string, .rule = rule};
		}
	}
}

const struct bl_payer_policy *bl_policy(const char *payer)
{
	for (size_t i = 0; payer && i < bl_cfg.n_policies; i++)
		if (!strcmp(bl_cfg.policies[i].payer, payer))
			return &bl_cfg.policies[i];
	return NULL;
}

static bool flag(struct cfgread *c, const cJSON *o, const char *key, const char *where)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (v && !cJSON_IsBool(v)) {
		char w[300];
		snprintf(w, sizeof w, "%s.%s", where, key);
		bad(c, w, "must be true or false");
	}
	return cJSON_IsTrue(v);
}

/* payer_rules: payer id → {supervisor_required, credential_required,
 * plan_of_care_required, diagnosis_prefixes, modifiers,
 * units_before_authorization, authorization_per "year" | "plan_of_care",
 * year_start "MM-DD"}. */
static void read_payer_rules(struct cfgread *c, const cJSON *o)
{
	static const char *const allowed[] = {
		"supervisor_required", "credential_required", "plan_of_care_required",
		"diagnosis_prefixes",  "modifiers",           "units_before_authorization",
		"authorization_per",   "year_start",          NULL};
	const char *where = "plugins.billing.payer_rules";
	if (!cJSON_IsObject(o)) {
		bad(c, where, "must be an object: payer id → rules");
		return;
	}
	if (!(bl_cfg.policies = grab(c, (size_t)cJSON_GetArraySize(o), sizeof *bl_cfg.policies)))
		return;
	const cJSON *p;
	cJSON_ArrayForEach(p, o)
	{
		char w[200], kw[260];
		snprintf(w, sizeof w, "%s.%s", where, p->string);
		if (!cJSON_IsObject(p) || !p->string[0]) {
			bad(c, w, "must be an object of rules");
			continue;
		}
		only_members(c, p, allowed, w);
		struct bl_payer_policy *pol = &bl_cfg.policies[bl_cfg.n_policies++];
		pol->payer = p->string;
		pol->supervisor = flag(c, p, "supervisor_required", w);
		pol->credential = flag(c, p, "credential_required", w);
		pol->plan_of_care = flag(c, p, "plan_of_care_required", w);
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, "diagnosis_prefixes");
		if (v) {
			snprintf(kw, sizeof kw, "%s.diagnosis_prefixes", w);
			pol->dx_prefixes = code_list(c, v, &pol->n_dx_prefixes, 8, false, false, kw);
		}
		if ((v = cJSON_GetObjectItemCaseSensitive(p, "modifiers"))) {
			snprintf(kw, sizeof kw, "%s.modifiers", w);
			pol->mods = strings(c, v, &pol->n_mods, 2, true, kw);
			if (pol->n_mods > 2)
				bad(c, kw, "at most two modifiers (a line carries four)");
		}
		pol->units_before_authorization = whole(c, p, "units_before_authorization", 1, 100000, 0, w);
		if (cJSON_GetObjectItemCaseSensitive(p, "authorization_per")) {
			const char *per = bl_str(p, "authorization_per");
			pol->per_plan = per && !strcmp(per, "plan_of_care");
			if (!per || (!pol->per_plan && strcmp(per, "year") != 0)) {
				snprintf(kw, sizeof kw, "%s.authorization_per", w);
				bad(c, kw, "must be year or plan_of_care");
			}
		}
		const char *ys = cJSON_GetObjectItemCaseSensitive(p, "year_start") ? bl_str(p, "year_start") : "01-01";
		char d[CW_DATE_SIZE], full[16];
		snprintf(full, sizeof full, "2000-%.5s", ys ? ys : "");
		if (!ys || strlen(ys) != 5 || !is_date(full, d, c->ctx)) {
			snprintf(kw, sizeof kw, "%s.year_start", w);
			bad(c, kw, "must be a day of the year MM-DD");
		} else {
			pol->year_month = (ys[0] - '0') * 10 + (ys[1] - '0');
			pol->year_day = (ys[3] - '0') * 10 + (ys[4] - '0');
		}
	}
}

static void read_pos(struct cfgread *c, const cJSON *o)
{
	const char *where = "plugins.billing.place_of_service";
	if (!cJSON_IsObject(o)) {
		bad(c, where, "must be an object: Encounter.class code → place of service");
		return;
	}
	if (!(bl_cfg.pos = grab(c, (size_t)cJSON_GetArraySize(o), sizeof *bl_cfg.pos)))
		return;
	const cJSON *m;
	cJSON_ArrayForEach(m, o) {
		const char *v = cJSON_IsString(m) ? m->valuestring : "";
		if (strlen(v) != 2 || v[0] < '0' || v[0] > '9' || v[1] < '0' || v[1] > '9') {
			char w[200];
			snprintf(w, sizeof w, "%s.%s", where, m->string);
			bad(c, w, "must be a two-digit place of service code");
			continue;
		}
		bl_cfg.pos[bl_cfg.n_pos++] = (struct bl_map){m->string, v};
	}
}

static void read_modifiers(struct cfgread *c, const cJSON *o)
{
	static const char *const members[] = {"group", "telehealth", NULL};
	const char *where = "plugins.billing.modifiers";
	if (!cJSON_IsObject(o) || !only_members(c, o, members, where)) {
		bad(c, where, "must be an object with group and telehealth lists");
		return;
	}
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(o, "group"), *t = cJSON_GetObjectItemCaseSensitive(o, "telehealth");
	if (g)
		bl_cfg.group_mods = strings(c, g, &bl_cfg.n_group_mods, 2, true, "plugins.billing.modifiers.group");
	if (t)
		bl_cfg.tele_mods = strings(c, t, &bl_cfg.n_tele_mods, 2, true, "plugins.billing.modifiers.telehealth");
	if (bl_cfg.n_group_mods > 2 || bl_cfg.n_tele_mods > 2)
		bad(c, where, "at most two modifiers each (a line carries four)");
}

static void read_periods(struct cfgread *c, const cJSON *o)
{
	static const char *const members[] = {"from", "to", NULL};
	const char *where = "plugins.billing.code_periods";
	if (!cJSON_IsObject(o)) {
		bad(c, where, "must be an object: system → {from, to}");
		return;
	}
	if (!(bl_cfg.periods = grab(c, (size_t)cJSON_GetArraySize(o), sizeof *bl_cfg.periods)))
		return;
	const cJSON *m;
	cJSON_ArrayForEach(m, o) {
		char w[300];
		snprintf(w, sizeof w, "%s.%s", where, m->string);
		struct bl_period *p = &bl_cfg.periods[bl_cfg.n_periods];
		if (!cJSON_IsObject(m) || !only_members(c, m, members, w) || !is_date(bl_str(m, "from"), p->from, c->ctx) ||
		    !is_date(bl_str(m, "to"), p->to, c->ctx) || strcmp(p->from, p->to) > 0) {
			bad(c, w, "must be {\"from\": YYYY-MM-DD, \"to\": YYYY-MM-DD} with from not after to");
			continue;
		}
		p->system = bl_is_hcpcs(m->string) ? BL_HCPCS : m->string;
		bl_cfg.n_periods++;
	}
}

static void read_provider(struct cfgread *c, const cJSON *o)
{
	static const char *const members[] = {"npi", "name", NULL};
	const char *where = "plugins.billing.billing_provider";
	if (!o)
		return;
	if (!cJSON_IsObject(o) || !only_members(c, o, members, where) || !pk_npi_valid(bl_str(o, "npi"))) {
		bad(c, where, "must be {\"npi\": a valid 10-digit NPI, \"name\": optional text}");
		return;
	}
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
	if (name && !bl_str(o, "name")) {
		bad(c, where, "name must be text");
		return;
	}
	bl_cfg.provider_npi = bl_str(o, "npi");
	bl_cfg.provider_name = bl_str(o, "name");
}

static enum cw_status init(const struct cw_host *h, struct cw_ctx *ctx)
{
	CW_HOST_REQUIRE(h, code_flags); /* ABI 1.1: the code packs' flags */
	bl_host = h;
	memset(&bl_cfg, 0, sizeof bl_cfg);
	defaults = h->parse_json(ctx, bl_defaults, sizeof bl_defaults - 1);
	if (!defaults)
		return CW_INTERNAL;
	struct cfgread c = {ctx, true};
	const cJSON *conf = h->config(ctx);
	only_members(&c, conf, keys, "plugins.billing");
	read_provider(&c, cJSON_GetObjectItemCaseSensitive(conf, "billing_provider"));
	read_rules(&c, conf);
	bl_cfg.timed = strings(&c, pick(conf, "timed_codes"), &bl_cfg.n_timed, 16, false, "plugins.billing.timed_codes");
	read_bands(&c, pick(conf, "time_bands"));
	read_payers(&c, pick(conf, "payers"));
	read_pos(&c, pick(conf, "place_of_service"));
	read_modifiers(&c, pick(conf, "modifiers"));
	read_periods(&c, pick(conf, "code_periods"));
	read_payer_rules(&c, pick(conf, "payer_rules"));
	if (!c.ok) {
		release_owned();
		cJSON_Delete(defaults);
		defaults = NULL;
		return CW_CONFIG;
	}
	return CW_OK;
}

static void fini(struct cw_ctx *ctx)
{
	(void)ctx;
	release_owned();
	cJSON_Delete(defaults);
	defaults = NULL;
}

/* -------------------------------------------------------------- mappers */

static enum cw_status from_fhir(struct cw_ctx *ctx, const cJSON *bundle, enum cw_media media, char **out,
				size_t *len)
{
	struct bl_result r;
	enum cw_status st = bl_analyse(ctx, bundle, &r);
	if (st != CW_OK)
		return st;
	r.notice = bl_bundle_notice(bundle);
	r.bundle = bundle;
	return media == CW_MEDIA_CSV ? bl_write_csv(ctx, &r, out, len) : bl_write_json(ctx, &r, out, len);
}

/* Claim/$build: a Bundle of Encounters and their context, or a Parameters
 * naming stored Encounters (or a period, or a person and a period) that the
 * core gathers from its store as GET /export/billing does. */
static enum cw_status build(struct cw_ctx *ctx, const char *type, const cJSON *input, cJSON **output)
{
	(void)type;
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(input, "resourceType");
	bool params = cJSON_IsString(rt) && !strcmp(rt->valuestring, "Parameters");
	if (!params && !(cJSON_IsString(rt) && !strcmp(rt->valuestring, "Bundle"))) {
		bl_host->issue(ctx, CW_SEV_ERROR, "required", NULL,
			       "post a Bundle (collection) of Encounters and their context (Patient, Practitioner, "
			       "Condition, Coverage, Organization), or a Parameters naming stored Encounters "
			       "(encounter) or a period (from, to, and optionally patient)");
		bl_host->set_status(ctx, 400);
		return CW_INVALID;
	}
	cJSON *gathered = NULL;
	if (params) {
		if (!CW_HOST_HAS(bl_host, store_gather)) {
			bl_host->issue(ctx, CW_SEV_ERROR, "not-supported", NULL,
				       "this gateway cannot gather from its store (ABI 1.3); post a Bundle");
			bl_host->set_status(ctx, 501);
			return CW_UNSUPPORTED;
		}
		if (!(gathered = bl_host->store_gather(ctx, input)))
			return CW_INVALID; /* the host reported why and set the status */
	}
	struct bl_result r;
	enum cw_status st = bl_analyse(ctx, gathered ? gathered : input, &r);
	r.gathered = gathered != NULL;
	if (st == CW_OK)
		st = bl_build_claims(ctx, &r, output); /* copies what it keeps */
	cJSON_Delete(gathered);
	return st;
}

static const struct cw_format formats[] = {
	{.name = "billing",
	 .summary = "billing extract: claim lines (codes, units, diagnoses, provider, payer) and encounters not billed",
	 .media = CW_MEDIA_JSON | CW_MEDIA_CSV,
	 .to_fhir = NULL,
	 .from_fhir = from_fhir},
	{0}};

static const struct cw_operation operations[] = {
	{.name = "build",
	 .type = "Claim",
	 .definition = BL_BASE "/OperationDefinition/Claim-build",
	 .invoke = build},
	{0}};

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,
	.name = "billing",
	.version = "1.0.0",
	.summary = "Claim lines and professional Claims from encounters, with units from configured time rules",
	.formats = formats,
	.hooks = NULL,
	.operations = operations,
	.init = init,
	.fini = fini,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
