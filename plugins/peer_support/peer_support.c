/* peer_support — the "peer-support" native format (versions 1 and 2): encounter
 * logs of certified peer specialists, as JSON or CSV, mapped to a FHIR R4
 * transaction Bundle (Patient, Practitioner, PractitionerRole, Encounter,
 * one Procedure per activity) and back. docs/formats/peer-support.md is the
 * format; this file holds the descriptor, the settings and small helpers.
 *
 * Settings ({"plugins":{"peer_support":{…}}}, all optional): absolute URIs
 * encounter_system, goal_system, hcpcs_system; notes_upstream "withhold"
 * (default) or "send" — whether the encounter's free-text note (the
 * peer-support-note extension) leaves for the upstream server. Withheld, the
 * note stays in the gateway's store and its exports; the before-upstream
 * hook takes it out of the copy sent (docs/delivery.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer_support.h"

const struct cw_host *ps_host; /* set in init; read-only afterwards */
struct ps_config ps_cfg;

const struct pk_code ps_settings[PS_SETTING_COUNT] = {
	[PS_CLINIC] = {"clinic", "AMB"},
	[PS_COMMUNITY] = {"community", "FLD"},
	[PS_HOME] = {"home", "HH"},
	[PS_TELEHEALTH] = {"telehealth", "VR"},
};
const struct pk_code ps_class_display[PS_SETTING_COUNT] = {
	[PS_CLINIC] = {"AMB", "ambulatory"},
	[PS_COMMUNITY] = {"FLD", "field"},
	[PS_HOME] = {"HH", "home health"},
	[PS_TELEHEALTH] = {"VR", "virtual"},
};
const struct pk_code ps_modes[PS_MODE_COUNT] = {
	[PS_INDIVIDUAL] = {"individual", "Individual peer support"},
	[PS_GROUP] = {"group", "Group peer support"},
};
const struct pk_code ps_activities[] = {
	{"goal-planning", "Goal planning"},
	{"system-navigation", "System navigation"},
	{"crisis-support", "Crisis support"},
	{"community-connection", "Community connection"},
	{"wellness-tools", "Wellness tools"},
	{"advocacy", "Advocacy"},
	{"recovery-story", "Sharing recovery experience"},
	{"skill-building", "Skill building"},
	{"group-facilitation", "Group facilitation"},
	{"follow-up", "Follow-up contact"},
};
const size_t ps_activity_count = sizeof ps_activities / sizeof ps_activities[0];

const struct pk_code ps_areas[PS_AREA_COUNT] = {
	[PS_AREA_MH] = {"mh", "Mental health"},
	[PS_AREA_SUD] = {"sud", "Substance use"},
	[PS_AREA_YOUTH] = {"youth", "Youth"},
	[PS_AREA_FAMILY] = {"family", "Family"},
};

/* Version 1's 18 columns, then version 2's optional trailing ones. */
const char *const ps_csv_header[PS_CSV_COLUMNS_V2] = {"version",
						      "person_system",
						      "person_value",
						      "person_name",
						      "encounter_id",
						      "specialist_system",
						      "specialist_value",
						      "specialist_name",
						      "credential",
						      "npi",
						      "start",
						      "duration_minutes",
						      "mode",
						      "setting",
						      "activities",
						      "goals",
						      "billable",
						      "notes",
						      "diagnoses",
						      "payer",
						      "member_id",
						      "prior_authorization",
						      "supervisor_system",
						      "supervisor_value",
						      "supervisor_name",
						      "cert_issuer",
						      "cert_number",
						      "cert_expiry",
						      "cert_area",
						      "plan_of_care"};

/* ------------------------------------------------------------ helpers */

bool ps_is_uri(const char *s) { return pk_is_uri(s, true); }

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int month_days(int y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && leap(y) ? 29 : d[m - 1];
}

/* Days since 0000-03-01 (proleptic Gregorian), and back. */
static long long days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	long long era = y / 400;
	int yoe = y - (int)era * 400;
	int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe;
}

static void civil_from_days(long long z, int *y, int *m, int *d)
{
	long long era = (z >= 0 ? z : z - 146096) / 146097;
	int doe = (int)(z - era * 146097);
	int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)(yoe + era * 400) + (*m <= 2);
}

bool ps_datetime(const char *s, long long *abs_min, int *sec, int *offset)
{
	/* 0123456789012345678 */
	/* YYYY-MM-DDThh:mm:ss then Z or ±hh:mm */
	if (!s)
		return false;
	size_t n = strlen(s);
	if ((n != 20 && n != 25) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return false;
	int y = pk_digits(s, 4), mo = pk_digits(s + 5, 2), d = pk_digits(s + 8, 2);
	int h = pk_digits(s + 11, 2), mi = pk_digits(s + 14, 2), se = pk_digits(s + 17, 2);
	if (y < 1900 || mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h < 0 || h > 23 || mi < 0 ||
	    mi > 59 || se < 0 || se > 59)
		return false;
	int off = 0;
	if (n == 20) {
		if (s[19] != 'Z')
			return false;
	} else {
		int oh = pk_digits(s + 20, 2), om = pk_digits(s + 23, 2);
		if ((s[19] != '+' && s[19] != '-') || s[22] != ':' || oh < 0 || om < 0 || om > 59 || oh > 14 ||
		    (oh == 14 && om != 0))
			return false;
		off = (oh * 60 + om) * (s[19] == '-' ? -1 : 1);
	}
	if (abs_min)
		*abs_min = days_from_civil(y, mo, d) * 1440 + h * 60 + mi - off;
	if (sec)
		*sec = se;
	if (offset)
		*offset = off;
	return true;
}

bool ps_add_minutes(const char *start, long minutes, char *out, size_t cap)
{
	long long abs;
	int sec, off;
	if (!ps_datetime(start, &abs, &sec, &off) || cap < 26)
		return false;
	long long local = abs + off + minutes;
	long long days = local >= 0 ? local / 1440 : (local - 1439) / 1440;
	int mod = (int)(local - days * 1440);
	int y, m, d;
	civil_from_days(days, &y, &m, &d);
	if (y > 9999)
		return false;
	int w = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d%s", y, m, d, mod / 60, mod % 60, sec,
			 start + 19);
	return w > 0 && (size_t)w < cap;
}

/* -------------------------------------------------------------- mappers */

static enum cw_status to_fhir(struct cw_ctx *ctx, const char *data, size_t len, enum cw_media media, cJSON **out)
{
	return pk_records_to_fhir(&ps_records, ps_host, ctx, data, len, media, out);
}

static enum cw_status from_fhir(struct cw_ctx *ctx, const cJSON *bundle, enum cw_media media, char **out,
				size_t *len)
{
	return pk_records_from_fhir(&ps_records, ps_host, ctx, bundle, media, out, len);
}

/* ---------------------------------------------------------- lifecycle */

static bool setting(struct cw_ctx *ctx, const char *key, const char *dflt, const char **into)
{
	*into = ps_host->config_string(ctx, key, dflt);
	if (ps_is_uri(*into))
		return true;
	char where[64];
	snprintf(where, sizeof where, "plugins.peer_support.%s", key);
	ps_host->issue(ctx, CW_SEV_ERROR, "value", where, "must be an absolute URI");
	return false;
}

static enum cw_status init(const struct cw_host *h, struct cw_ctx *ctx)
{
	CW_HOST_REQUIRE(h, print_json); /* ABI 1.0 members only */
	ps_host = h;
	static const char *const known[] = {
		"encounter_system", "goal_system", "hcpcs_system", "plan_system", "payer_system",
		"notes_upstream",   NULL};
	bool ok = pk_settings(h, ctx, "peer_support", known, false);
	ok &= setting(ctx, "encounter_system", PS_BASE "/NamingSystem/peer-support-encounter",
		      &ps_cfg.encounter_system);
	ok &= setting(ctx, "goal_system", PS_BASE "/NamingSystem/recovery-goal", &ps_cfg.goal_system);
	ok &= setting(ctx, "hcpcs_system", "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
		      &ps_cfg.hcpcs_system);
	ok &= setting(ctx, "plan_system", PS_BASE "/NamingSystem/recovery-plan", &ps_cfg.plan_system);
	ok &= setting(ctx, "payer_system", PS_BASE "/NamingSystem/payer", &ps_cfg.payer_system);
	const char *notes = h->config_string(ctx, "notes_upstream", "withhold");
	ps_cfg.notes_upstream = notes && !strcmp(notes, "send");
	if (!notes || (!ps_cfg.notes_upstream && strcmp(notes, "withhold") != 0)) {
		h->issue(ctx, CW_SEV_ERROR, "value", "plugins.peer_support.notes_upstream",
			 "must be \"withhold\" or \"send\"");
		ok = false;
	}
	return ok ? CW_OK : CW_CONFIG;
}

/* Before-upstream: the copy of an Encounter sent upstream loses its
 * free-text notes unless notes_upstream is "send" (the stored one keeps
 * them). Runs for every Encounter, whichever format wrote it. */
static enum cw_hook_result before_upstream(struct cw_ctx *ctx, const struct cw_hook_args *args, cJSON **res)
{
	(void)ctx;
	if (ps_cfg.notes_upstream || !*res || !args->type || strcmp(args->type, "Encounter") != 0)
		return CW_HOOK_CONTINUE;
	cJSON *ext = cJSON_GetObjectItemCaseSensitive(*res, "extension");
	bool changed = false;
	for (cJSON *x = cJSON_IsArray(ext) ? ext->child : NULL, *next; x; x = next) {
		next = x->next;
		const cJSON *url = cJSON_GetObjectItemCaseSensitive(x, "url");
		if (cJSON_IsString(url) && !strcmp(url->valuestring, PS_NOTE_URL)) {
			cJSON_Delete(cJSON_DetachItemViaPointer(ext, x));
			changed = true;
		}
	}
	if (changed && !ext->child)
		cJSON_DeleteItemFromObjectCaseSensitive(*res, "extension");
	return changed ? CW_HOOK_CHANGED : CW_HOOK_CONTINUE;
}

static const struct cw_hook hooks[] = {
	/* early: nothing another hook does with the Encounter sees the note */
	{.point = CW_HOOK_BEFORE_UPSTREAM, .order = 10, .fn = before_upstream},
	{0}};

static const struct cw_format formats[] = {{.name = "peer-support",
					    .summary = "certified peer specialist encounter log (v1, v2) as Encounter, "
						       "Procedure, Practitioner(Role), Patient, "
						       "Condition, Coverage",
					    .media = CW_MEDIA_JSON | CW_MEDIA_CSV,
					    .to_fhir = to_fhir,
					    .from_fhir = from_fhir},
					   {0}};

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,      .name = "peer_support",
	.version = "1.1.0",    .summary = "The peer-support encounter log (JSON, CSV) to and from FHIR R4",
	.formats = formats,    .hooks = hooks,
	.operations = NULL,    .init = init,
	.fini = NULL,          .id_rule = PK_ID_RULE,
	.upgrade = ps_upgrade,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
