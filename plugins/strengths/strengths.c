/* strengths — the "strengths" native format (version 1): the strengths and
 * assets a person names in recovery, as JSON or CSV, mapped to a FHIR R4
 * transaction Bundle (Patient, and one Observation per strength in the eLTSS
 * pattern, or one Condition with the SDOHCC protective-factor category) and
 * back. docs/formats/strengths.md is the format; this file holds the
 * descriptor, the settings and small helpers.
 *
 * Settings ({"plugins":{"strengths":{…}}}, all optional): canonical_base,
 * resource ("observation" | "condition"), strength_system, goal_system. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strengths.h"

const struct cw_host *st_host; /* set in init; read-only afterwards */
struct st_config st_cfg;

const struct pk_code st_categories[] = {
	{"personal", "Personal quality"},
	{"interpersonal", "Relationships and support"},
	{"community", "Community connection"},
	{"cultural-spiritual", "Culture, faith and spirituality"},
	{"skills-talents", "Skills and talents"},
	{"resources", "Resources and assets"},
};
const size_t st_category_count = sizeof st_categories / sizeof st_categories[0];

const struct pk_code st_roles[ST_ROLE_COUNT] = {
	[ST_SELF] = {"self", "The person"},
	[ST_PEER] = {"peer", "A peer supporter"},
	[ST_FAMILY] = {"family", "Family or a friend"},
	[ST_PROVIDER] = {"provider", "A provider"},
};

const char *const st_csv_header[ST_CSV_COLUMNS] = {
	"version",        "person_system",      "person_value",        "person_name",
	"strength_id",    "category",           "description",         "identified_by",
	"identified_by_name", "identified_by_system", "identified_by_value", "date",
	"goals"};

/* ------------------------------------------------------------ helpers */

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF) without control characters other than tab, CR and LF: what a
 * FHIR string may hold. */
static bool fhir_chars(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	while (*s) {
		unsigned c = *s;
		if (c < 0x80) {
			if (c < 0x20 && c != '\t' && c != '\r' && c != '\n')
				return false;
			s++;
			continue;
		}
		size_t n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
		if (n == 0 || c > 0xF4)
			return false;
		unsigned cp = c & (0x3Fu >> n);
		for (size_t i = 1; i <= n; i++) {
			if ((s[i] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i] & 0x3Fu);
		}
		static const unsigned min[] = {0, 0x80, 0x800, 0x10000};
		if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		s += n + 1;
	}
	return true;
}

bool st_is_text(const char *s) { return pk_is_text(s) && fhir_chars(s); }

/* The same rule as the host's identifier check: a scheme, ':', then no
 * control character or space. */
bool st_is_uri(const char *s) { return pk_is_uri(s, false) && fhir_chars(s); }

bool st_is_date(struct cw_ctx *ctx, const char *s)
{
	char out[CW_DATE_SIZE];
	if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	/* The host also reads YYYYMMDD and MM/DD/YYYY; the format keeps one
	 * spelling, so only the calendar check is borrowed. */
	return st_host->iso_date(ctx, s, out) == CW_OK && strcmp(out, s) == 0;
}

/* -------------------------------------------------------------- mappers */

static enum cw_status to_fhir(struct cw_ctx *ctx, const char *data, size_t len, enum cw_media media, cJSON **out)
{
	return pk_records_to_fhir(&st_records, st_host, ctx, data, len, media, out);
}

static enum cw_status from_fhir(struct cw_ctx *ctx, const cJSON *bundle, enum cw_media media, char **out,
				size_t *len)
{
	return pk_records_from_fhir(&st_records, st_host, ctx, bundle, media, out, len);
}

/* ---------------------------------------------------------- lifecycle */

static bool url(char *out, const char *base, const char *path)
{
	int n = snprintf(out, ST_URL_SIZE, "%s%s", base, path);
	return n > 0 && n < ST_URL_SIZE;
}

static bool uri_setting(struct cw_ctx *ctx, const char *key, const char *dflt, char *into)
{
	const char *v = st_host->config_string(ctx, key, dflt);
	char where[64];
	snprintf(where, sizeof where, "plugins.strengths.%s", key);
	if (!st_is_uri(v) || strlen(v) >= ST_URL_SIZE) {
		st_host->issue(ctx, CW_SEV_ERROR, "value", where, "%s must be an absolute URI of at most %d characters",
			       key, ST_URL_SIZE - 1);
		return false;
	}
	memcpy(into, v, strlen(v) + 1);
	return true;
}

static enum cw_status init(const struct cw_host *h, struct cw_ctx *ctx)
{
	CW_HOST_REQUIRE(h, print_json); /* ABI 1.0 members only */
	st_host = h;
	memset(&st_cfg, 0, sizeof st_cfg);
	static const char *const known[] = {"canonical_base", "resource", "strength_system", "goal_system", NULL};
	bool ok = pk_settings(h, ctx, "strengths", known, true);
	const char *res = h->config_string(ctx, "resource", "observation");
	if (strcmp(res, "condition") == 0) {
		st_cfg.condition = true;
	} else if (strcmp(res, "observation") != 0) {
		h->issue(ctx, CW_SEV_ERROR, "value", "plugins.strengths.resource",
			 "resource is \"observation\" (the default) or \"condition\"");
		ok = false;
	}

	/* The base, without trailing '/', leaves room for the longest path. */
	char base[ST_URL_SIZE];
	if (uri_setting(ctx, "canonical_base", ST_DEFAULT_BASE, base)) {
		size_t n = strlen(base);
		while (n > 0 && base[n - 1] == '/')
			base[--n] = '\0';
		if (n + 64 >= ST_URL_SIZE || !st_is_uri(base)) {
			h->issue(ctx, CW_SEV_ERROR, "value", "plugins.strengths.canonical_base",
				 "canonical_base must be an absolute URI of at most %d characters", ST_URL_SIZE - 65);
			ok = false;
		}
	} else {
		ok = false;
	}
	if (!ok)
		return CW_CONFIG;
	memcpy(st_cfg.base, base, strlen(base) + 1);
	char dflt[ST_URL_SIZE];
	ok &= url(dflt, base, "/NamingSystem/recovery-strength") &&
	      uri_setting(ctx, "strength_system", dflt, st_cfg.strength_system);
	ok &= url(dflt, base, "/NamingSystem/recovery-goal") &&
	      uri_setting(ctx, "goal_system", dflt, st_cfg.goal_system);
	ok &= url(st_cfg.category_system, base, "/CodeSystem/strength-category");
	ok &= url(st_cfg.code_system, base, "/CodeSystem/recovery-observation");
	ok &= url(st_cfg.old_code_system, base, "/CodeSystem/strength-observation");
	ok &= url(st_cfg.role_url, base, "/StructureDefinition/strength-identified-by");
	ok &= url(st_cfg.profile_obs, base, "/StructureDefinition/recovery-strength");
	ok &= url(st_cfg.profile_cond, base, "/StructureDefinition/recovery-strength-condition");
	ok &= url(st_cfg.profile_patient, base, "/StructureDefinition/recovery-strength-patient");
	return ok ? CW_OK : CW_CONFIG;
}

static const struct cw_format formats[] = {
	{.name = "strengths",
	 .summary = "a person's strengths and assets (v1) as Observation (eLTSS) or protective-factor Condition, Patient",
	 .media = CW_MEDIA_JSON | CW_MEDIA_CSV,
	 .to_fhir = to_fhir,
	 .from_fhir = from_fhir},
	{0}};

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,
	.name = "strengths",
	.version = "1.0.0",
	.summary = "Recovery strengths and assets (JSON, CSV) to and from FHIR R4",
	.formats = formats,
	.hooks = NULL,
	.operations = NULL,
	.init = init,
	.fini = NULL,
	.id_rule = PK_ID_RULE,
	.upgrade = st_upgrade,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
