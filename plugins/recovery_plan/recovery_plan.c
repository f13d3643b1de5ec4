/* recovery_plan — the "recovery-plan" native format (version 1): a person's
 * recovery plan in their own words (goals by SAMHSA dimension, steps,
 * supports, wellness tools, a crisis plan), mapped to a FHIR R4 transaction
 * Bundle (Patient, one Goal per goal, one CarePlan) and back.
 * docs/formats/recovery-plan.md is the format; this file holds the
 * descriptor, the code tables, the setting and small helpers.
 *
 * Setting ({"plugins":{"recovery_plan":{…}}}): canonical_base, an absolute
 * URI (default https://crosswalk.example.org/fhir) under which the local
 * profiles, extensions and code systems live. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recovery_plan.h"

const struct cw_host *rp_host; /* set in init; read-only afterwards */
struct rp_config rp_cfg;

const struct rp_dimension rp_dimensions[RP_DIMENSION_COUNT] = {
	{"health", "Health", RP_PCO_DOMAINS, "improving-health-and-wellness", "Improving Health and Wellness"},
	{"home", "Home", RP_PCO_DOMAINS, "housing", "Housing"},
	{"purpose", "Purpose", NULL, NULL, NULL},
	{"community", "Community", RP_SDOHCC, "social-connection", "Social Connection"},
};

const struct pk_code rp_goal_status[] = {
	{"proposed", "Proposed"}, {"planned", "Planned"},     {"accepted", "Accepted"},
	{"active", "Active"},     {"on-hold", "On Hold"},     {"completed", "Completed"},
	{"cancelled", "Cancelled"}, {"rejected", "Rejected"},
};
const size_t rp_goal_status_count = sizeof rp_goal_status / sizeof rp_goal_status[0];

const struct pk_code rp_progress[] = {
	{"in-progress", "In Progress"}, {"improving", "Improving"},       {"worsening", "Worsening"},
	{"no-change", "No Change"},     {"achieved", "Achieved"},         {"sustaining", "Sustaining"},
	{"not-achieved", "Not Achieved"}, {"no-progress", "No Progress"}, {"not-attainable", "Not Attainable"},
};
const size_t rp_progress_count = sizeof rp_progress / sizeof rp_progress[0];

const struct pk_code rp_plan_status[] = {
	{"draft", "Draft"}, {"active", "Active"}, {"on-hold", "On Hold"}, {"revoked", "Revoked"},
	{"completed", "Completed"},
};
const size_t rp_plan_status_count = sizeof rp_plan_status / sizeof rp_plan_status[0];

const struct pk_code rp_step_status[] = {
	{"not-started", "Not Started"}, {"scheduled", "Scheduled"}, {"in-progress", "In Progress"},
	{"on-hold", "On Hold"},         {"completed", "Completed"}, {"cancelled", "Cancelled"},
	{"stopped", "Stopped"},
};
const size_t rp_step_status_count = sizeof rp_step_status / sizeof rp_step_status[0];

const struct pk_code rp_support_kind[] = {
	{"person", "RelatedPerson"},
	{"peer", "PractitionerRole"},
	{"service", "HealthcareService"},
};
const size_t rp_support_kind_count = sizeof rp_support_kind / sizeof rp_support_kind[0];

const struct pk_code rp_expressed_by[] = {
	[RP_BY_SELF] = {"self", "Patient"},
	[RP_BY_PEER] = {"peer", "PractitionerRole"},
	[RP_BY_PROVIDER] = {"provider", "Practitioner"},
	[RP_BY_FAMILY] = {"family", "RelatedPerson"},
	[RP_BY_UNKNOWN] = {"unknown", NULL},
};
const size_t rp_expressed_by_count = sizeof rp_expressed_by / sizeof rp_expressed_by[0];
const char *const rp_expressed_by_display[] = {
	[RP_BY_SELF] = NULL,           [RP_BY_PEER] = "Peer specialist",
	[RP_BY_PROVIDER] = "Provider", [RP_BY_FAMILY] = "Family member",
	[RP_BY_UNKNOWN] = NULL,
};

const struct pk_code rp_acceptance[] = {
	{"agree", "Agree"},
	{"disagree", "Disagree"},
	{"pending", "Pending"},
};
const size_t rp_acceptance_count = sizeof rp_acceptance / sizeof rp_acceptance[0];

const struct rp_gas_level rp_gas_levels[5] = {
	{-2, "LA34484-8", "Much less than expected"},  {-1, "LA34483-0", "Less than expected"},
	{0, "LA34481-4", "Expected outcome"},          {1, "LA34480-6", "Better than expected"},
	{2, "LA34479-8", "Much better than expected"},
};

const struct pk_code rp_lang_style[] = {
	{"person-first", "Person-first language (\"person living with …\")"},
	{"identity-first", "Identity-first language (the condition named, the person's words for themselves)"},
};
const size_t rp_lang_style_count = sizeof rp_lang_style / sizeof rp_lang_style[0];

const struct rp_section_def rp_sections[RP_SECTION_COUNT] = {
	[RP_WELLNESS] = {"wellness_tools", "wellness-tool", "Wellness tool", "in-progress", false},
	[RP_DAILY] = {"daily_maintenance", "daily-maintenance", "Daily maintenance", "in-progress", false},
	[RP_TRIGGERS] = {"triggers", "trigger", "Trigger and what to do", "not-started", false},
	[RP_WARNING_SIGNS] = {"warning_signs", "crisis-warning-sign", "Crisis plan: warning sign", "not-started", true},
	[RP_WHAT_HELPS] = {"what_helps", "crisis-what-helps", "Crisis plan: what helps", "not-started", true},
	[RP_CONTACTS] = {"contacts", "crisis-contact", "Crisis plan: who to contact", "not-started", true},
	[RP_POST_CRISIS] = {"post_crisis", "post-crisis", "Post-crisis plan", "not-started", true},
};

const struct pk_code rp_contact_kind[] = {
	{"person", "RelatedPerson"},
	{"service", "HealthcareService"},
};
const size_t rp_contact_kind_count = sizeof rp_contact_kind / sizeof rp_contact_kind[0];

const struct pk_code rp_flag_source[] = {
	{"phq-9-item-9", "PHQ-9 item 9 (thoughts of self-harm) answered above 0"},
};
const size_t rp_flag_source_count = sizeof rp_flag_source / sizeof rp_flag_source[0];

/* ------------------------------------------------------------ helpers */

struct rp_doc *rp_add_doc(struct cw_ctx *ctx, struct rp_set *set)
{
	return pk_append(rp_host, ctx, &set->docs, &set->n, &set->cap, sizeof *set->docs);
}

struct rp_goal *rp_add_goal(struct cw_ctx *ctx, struct rp_doc *doc)
{
	struct rp_goal *g = pk_append(rp_host, ctx, &doc->goals, &doc->n_goals, &doc->cap_goals, sizeof *doc->goals);
	if (g)
		g->progress = RP_NONE;
	return g;
}

int rp_dimension(const char *code)
{
	for (int i = 0; code && i < RP_DIMENSION_COUNT; i++)
		if (strcmp(rp_dimensions[i].code, code) == 0)
			return i;
	return RP_NONE;
}

bool rp_is_date(const char *s)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	int y = pk_digits(s, 4), m = pk_digits(s + 5, 2), d = pk_digits(s + 8, 2);
	if (y < 1900 || m < 1 || m > 12 || d < 1)
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return d <= (m == 2 && leap ? 29 : days[m - 1]);
}

static bool alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool alnum(char c) { return alpha(c) || (c >= '0' && c <= '9'); }

bool rp_is_language(const char *s)
{
	if (!s)
		return false;
	size_t n = 0;
	while (alpha(s[n]))
		n++;
	if (n < 2 || n > 8)
		return false;
	s += n;
	while (*s == '-') {
		s++;
		for (n = 0; alnum(s[n]); n++)
			;
		if (n < 1 || n > 8)
			return false;
		s += n;
	}
	return *s == '\0';
}

bool rp_is_code(const char *s)
{
	size_t n = 0;
	for (; s && s[n]; n++)
		if (!alnum(s[n]) && s[n] != '.' && s[n] != '-')
			return false;
	return n >= 1 && n <= 32;
}

/* -------------------------------------------------------------- mappers */

static enum cw_status to_fhir(struct cw_ctx *ctx, const char *data, size_t len, enum cw_media media, cJSON **out)
{
	(void)media;
	struct rp_set set;
	memset(&set, 0, sizeof set);
	enum cw_status st = rp_read_json(ctx, data, len, &set);
	if (st != CW_OK)
		return st;
	return rp_to_bundle(ctx, &set, out);
}

static enum cw_status from_fhir(struct cw_ctx *ctx, const cJSON *bundle, enum cw_media media, char **out,
				size_t *len)
{
	(void)media;
	struct rp_set set;
	memset(&set, 0, sizeof set);
	enum cw_status st = rp_from_bundle(ctx, bundle, &set);
	if (st != CW_OK)
		return st;
	return rp_write_json(ctx, &set, out, len);
}

/* ---------------------------------------------------------- lifecycle */

static bool url(char *out, size_t cap, const char *kind, const char *name)
{
	int n = snprintf(out, cap, "%s/%s/%s", rp_cfg.base, kind, name);
	return n > 0 && (size_t)n < cap;
}

static enum cw_status init(const struct cw_host *h, struct cw_ctx *ctx)
{
	CW_HOST_REQUIRE(h, print_json); /* ABI 1.0 members only */
	rp_host = h;
	static const char *const known[] = {"canonical_base", NULL};
	bool ok = pk_settings(h, ctx, "recovery_plan", known, false);
	const char *b = h->config_string(ctx, "canonical_base", RP_DEFAULT_BASE);
	size_t n = strlen(b);
	while (n > 0 && b[n - 1] == '/')
		n--;
	if (!pk_is_uri(b, false) || n == 0 || n >= sizeof rp_cfg.base) {
		h->issue(ctx, CW_SEV_ERROR, "value", "plugins.recovery_plan.canonical_base",
			 "canonical_base must be an absolute URI of at most %zu characters", sizeof rp_cfg.base - 1);
		return CW_CONFIG;
	}
	memcpy(rp_cfg.base, b, n);
	rp_cfg.base[n] = '\0';
	ok &= url(rp_cfg.profile_patient, sizeof rp_cfg.profile_patient, "StructureDefinition", "recovery-patient");
	ok &= url(rp_cfg.profile_goal, sizeof rp_cfg.profile_goal, "StructureDefinition", "recovery-goal");
	ok &= url(rp_cfg.profile_plan, sizeof rp_cfg.profile_plan, "StructureDefinition", "recovery-plan");
	ok &= url(rp_cfg.ext_pronouns, sizeof rp_cfg.ext_pronouns, "StructureDefinition", "recovery-pronouns");
	ok &= url(rp_cfg.ext_identity, sizeof rp_cfg.ext_identity, "StructureDefinition", "recovery-identity");
	ok &= url(rp_cfg.ext_set_with, sizeof rp_cfg.ext_set_with, "StructureDefinition", "recovery-goal-set-with");
	ok &= url(rp_cfg.ext_support_for, sizeof rp_cfg.ext_support_for, "StructureDefinition",
		  "recovery-support-for");
	ok &= url(rp_cfg.ext_diagnosis_language, sizeof rp_cfg.ext_diagnosis_language, "StructureDefinition",
		  "diagnosis-language");
	ok &= url(rp_cfg.cs_dimension, sizeof rp_cfg.cs_dimension, "CodeSystem", "recovery-dimension");
	ok &= url(rp_cfg.cs_activity, sizeof rp_cfg.cs_activity, "CodeSystem", "recovery-plan-activity");
	ok &= url(rp_cfg.ns_flag, sizeof rp_cfg.ns_flag, "NamingSystem", "recovery-flag");
	return ok ? CW_OK : CW_CONFIG;
}

static const struct cw_format formats[] = {
	{.name = "recovery-plan",
	 .summary = "a person's recovery plan (v1): goals by SAMHSA dimension, steps, supports, crisis plan, "
		    "as Patient, Goal, CarePlan",
	 .media = CW_MEDIA_JSON,
	 .to_fhir = to_fhir,
	 .from_fhir = from_fhir},
	{0}};

/* Goals and plans stored under rule 1 (uuid5 of their identifier alone)
 * move to their Patient's ids (plugkit). */
static enum cw_status upgrade(struct cw_ctx *ctx, const cJSON *resource, cJSON **out, cJSON **moved)
{
	static const char *const types[] = {"Goal", "CarePlan", NULL};
	(void)moved;
	return pk_upgrade_item(rp_host, ctx, resource, types, NULL, out);
}

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,
	.name = "recovery_plan",
	.version = "1.0.0",
	.summary = "The recovery-plan document (JSON) to and from FHIR R4",
	.formats = formats,
	.hooks = NULL,
	.operations = NULL,
	.init = init,
	.fini = NULL,
	.id_rule = PK_ID_RULE,
	.upgrade = upgrade,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
