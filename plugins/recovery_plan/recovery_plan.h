/* recovery_plan — internal interface of the recovery-plan plugin: the native
 * model the JSON reader fills and every writer reads, the code tables, and
 * the halves (native JSON in and out, FHIR in and out). Nothing here is
 * exported: the build hides every symbol but cw_plugin_entry. The format is
 * described in docs/formats/recovery-plan.md.
 *
 * Memory: everything in a struct rp_set lives in the call's arena
 * (host->alloc), so nothing is ever freed by the plugin. */
#ifndef RECOVERY_PLAN_H
#define RECOVERY_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include <crosswalk/plugin.h>

#include "plugkit.h"

#define RP_DEFAULT_BASE "https://crosswalk.example.org/fhir"
#define RP_FALLBACK_SYSTEM "urn:crosswalk:fhir-reference" /* identifiers of resources that had none */
#define RP_BCP47 "urn:ietf:bcp:47"
#define RP_GOAL_ACHIEVEMENT "http://terminology.hl7.org/CodeSystem/goal-achievement"
#define RP_PCO_DOMAINS "http://hl7.org/fhir/us/pco/CodeSystem/pco-goal-domains-temporary"
#define RP_SDOHCC "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
#define RP_NONE (-1)       /* an optional code that is absent, or an unknown one while reading */
#define RP_UNASSIGNED (-2) /* a goal's dimension: none of the four (a Goal from elsewhere) */
#define RP_UNASSIGNED_CODE "unassigned"
#define RP_GOAL_ACCEPTANCE "http://hl7.org/fhir/StructureDefinition/goal-acceptance"
#define RP_PCO_GAS "http://hl7.org/fhir/us/pco/StructureDefinition/pco-goal-attainment-scaling"
#define RP_LOINC "http://loinc.org"

/* SAMHSA's four dimensions of recovery, with the nearest SDOH/PCO category
 * (system NULL where none fits). */
struct rp_dimension {
	const char *code, *display;
	const char *near_system, *near_code, *near_display;
};
enum { RP_DIMENSION_COUNT = 4 };
extern const struct rp_dimension rp_dimensions[RP_DIMENSION_COUNT];

extern const struct pk_code rp_goal_status[];   /* Goal.lifecycleStatus (no entered-in-error) */
extern const size_t rp_goal_status_count;
extern const struct pk_code rp_progress[];      /* Goal.achievementStatus, goal-achievement */
extern const size_t rp_progress_count;
extern const struct pk_code rp_plan_status[];   /* CarePlan.status (request-status subset) */
extern const size_t rp_plan_status_count;
extern const struct pk_code rp_step_status[];   /* CarePlan.activity.detail.status subset */
extern const size_t rp_step_status_count;
/* Who expressed a goal: native code → the resource type of expressedBy
 * (self: the person's Patient; unknown: no expressedBy). */
enum { RP_BY_SELF = 0, RP_BY_PEER, RP_BY_PROVIDER, RP_BY_FAMILY, RP_BY_UNKNOWN };
extern const struct pk_code rp_expressed_by[];
extern const size_t rp_expressed_by_count;
extern const char *const rp_expressed_by_display[];
/* The person's acceptance of a goal (goal-acceptance status). */
extern const struct pk_code rp_acceptance[];
extern const size_t rp_acceptance_count;
/* Goal attainment scaling levels −2…+2: LOINC answers of LL6900-6. */
struct rp_gas_level {
	int level;
	const char *code, *display;
};
extern const struct rp_gas_level rp_gas_levels[5];

/* Supports: native kind → the resource type named in Reference.type. */
extern const struct pk_code rp_support_kind[];
extern const size_t rp_support_kind_count;

/* Lists the plan keeps as activities of their own kind (the sections of a
 * wellness recovery action plan); index = section, in the order the native
 * document writes them: those under plan, then those under plan.crisis_plan. */
enum rp_section {
	RP_WELLNESS,
	RP_DAILY,
	RP_TRIGGERS,
	RP_WARNING_SIGNS,
	RP_WHAT_HELPS,
	RP_CONTACTS,
	RP_POST_CRISIS,
	RP_SECTION_COUNT
};
struct rp_section_def {
	const char *key;    /* native member (under plan, or plan.crisis_plan) */
	const char *code, *display; /* activity code in {base}/CodeSystem/recovery-plan-activity */
	const char *status; /* the CarePlan.activity.detail.status written */
	bool crisis;        /* inside plan.crisis_plan */
};
extern const struct rp_section_def rp_sections[RP_SECTION_COUNT];
#define RP_STEP_CODE "step"
#define RP_STEP_DISPLAY "Step toward a goal"

struct rp_step {
	const char *text;
	int status; /* index into rp_step_status */
};

struct rp_support {
	int kind; /* index into rp_support_kind */
	const char *name;
};

struct rp_strings {
	const char **v;
	size_t n;
};

/* One goal attainment level the person set: level −2…+2 and its words. */
struct rp_level {
	int level;
	const char *text;
};

struct rp_goal {
	struct pk_ident id;
	int dimension, status, progress; /* progress may be RP_NONE; dimension RP_UNASSIGNED */
	int expressed_by;                /* index into rp_expressed_by (RP_BY_SELF when absent) */
	int acceptance;                  /* index into rp_acceptance, or RP_NONE */
	const char *words, *why, *target, *set_with, *start;
	struct rp_level levels[5];
	size_t n_levels;
	struct rp_strings addresses;
	struct rp_step *steps;
	size_t n_steps;
	struct rp_support *supports;
	size_t n_supports;
	const char *where; /* JSON pointer it was read at; NULL from FHIR */
};

/* A crisis contact beyond its words: what it is and how to reach it. Kept
 * parallel to plan.items[RP_CONTACTS] (one per contact); kind RP_NONE is a
 * contact given as text alone. */
extern const struct pk_code rp_contact_kind[]; /* person → RelatedPerson, service → HealthcareService */
extern const size_t rp_contact_kind_count;
struct rp_contact {
	int kind;          /* index into rp_contact_kind, or RP_NONE */
	const char *phone; /* may be NULL */
};

/* The person's advance directive, linked from the crisis plan. */
struct rp_directive {
	const char *title, *url, *date; /* date may be NULL */
};
#define RP_LOINC_ADVANCE_DIRECTIVE "42348-3"
#define RP_LOINC_PHQ9_ITEM9 "44260-8" /* PHQ-9 item 9, thoughts of self-harm */
#define RP_CONTAINED_DIRECTIVE "advance-directive"

struct rp_plan {
	struct pk_ident id;
	const char *title, *created;
	int status;
	struct rp_strings items[RP_SECTION_COUNT];
	struct rp_contact *contacts; /* items[RP_CONTACTS].n of them (NULL when none has details) */
	size_t cap_contacts;
	bool has_directive;
	struct rp_directive directive;
};

/* A safety flag the plan shows: a PHQ-9 item 9 (thoughts of self-harm)
 * answer above 0 on a date (an Observation LOINC 44260-8). */
extern const struct pk_code rp_flag_source[]; /* phq-9-item-9 */
extern const size_t rp_flag_source_count;
struct rp_flag {
	int source; /* index into rp_flag_source */
	const char *date;
	int answer; /* 1..3 */
};

/* The person's own words for a diagnosis, by its code. */
struct rp_word {
	const char *code, *text;
};

/* How the person wants their diagnoses named in exports (person.
 * diagnosis_language; the diagnosis-language extension the person_first
 * plugin honours). */
extern const struct pk_code rp_lang_style[]; /* person-first, identity-first */
extern const size_t rp_lang_style_count;

struct rp_doc {
	struct pk_ident person;
	const char *name, *pronouns, *language, *identity;
	bool has_lang;  /* diagnosis_language given */
	int lang_style; /* index into rp_lang_style, or RP_NONE */
	struct rp_word *words;
	size_t n_words;
	struct rp_flag *flags; /* in date order, a (source, date) once */
	size_t n_flags, cap_flags;
	bool has_plan;
	struct rp_plan plan;
	struct rp_goal *goals;
	size_t n_goals, cap_goals;
	const char *where;
};

struct rp_set {
	struct rp_doc *docs;
	size_t n, cap;
	bool array; /* the document was an array of plans */
};

/* Settings, read once in init. */
struct rp_config {
	char base[256];
	char profile_patient[320], profile_goal[320], profile_plan[320];
	char ext_pronouns[320], ext_identity[320], ext_set_with[320], ext_support_for[320];
	char ext_diagnosis_language[320];
	char cs_dimension[320], cs_activity[320];
	char ns_flag[320]; /* {base}/NamingSystem/recovery-flag: identifiers of flag Observations */
};

extern const struct cw_host *rp_host;
extern struct rp_config rp_cfg;

/* --- helpers (recovery_plan.c; the others are plugkit's) */
struct rp_doc *rp_add_doc(struct cw_ctx *ctx, struct rp_set *set);
struct rp_goal *rp_add_goal(struct cw_ctx *ctx, struct rp_doc *doc);
int rp_dimension(const char *code);
bool rp_is_date(const char *s); /* YYYY-MM-DD, a real calendar date */
bool rp_is_language(const char *s); /* a BCP 47 tag, by its shape */
bool rp_is_code(const char *s);     /* a diagnosis code: 1–32 of [A-Za-z0-9.-] */

/* --- native (rp_native.c): read reports every problem, CW_OK only when
 * none was found; write gives text in the arena. */
enum cw_status rp_read_json(struct cw_ctx *ctx, const char *data, size_t len, struct rp_set *set);
enum cw_status rp_write_json(struct cw_ctx *ctx, const struct rp_set *set, char **out, size_t *len);

/* --- FHIR (rp_fhir.c) */
enum cw_status rp_to_bundle(struct cw_ctx *ctx, const struct rp_set *set, cJSON **out);
enum cw_status rp_from_bundle(struct cw_ctx *ctx, const cJSON *bundle, struct rp_set *set);

#endif
