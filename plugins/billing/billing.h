/* billing — claim lines from encounters: the "billing" export format (JSON,
 * CSV) and the operation Claim/$build. docs/billing.md describes the rules
 * and the settings, docs/formats/billing.md the extract.
 *
 * Module layout: billing.c holds the descriptor and the settings (every unit
 * rule is a table of plugins.billing, checked in init); bl_analyse.c reads a
 * Bundle into one bl_enc per Encounter (billed, or not billed with every
 * reason); bl_write.c writes the extract and the Claims from those. State is
 * written in init only; mappers and the operation only read it. */
#ifndef CW_BILLING_H
#define CW_BILLING_H

#include <stdbool.h>
#include <stddef.h>

#include <crosswalk/plugin.h>

#include "plugkit.h"

#define BL_BASE "https://crosswalk.example.org/fhir"
#define BL_WITHHELD_URL BL_BASE "/StructureDefinition/withheld" /* a stub the gateway withheld (docs/privacy.md) */
#define BL_NOTICE_URL BL_BASE "/StructureDefinition/redisclosure-notice" /* on Bundle.meta (docs/privacy.md) */
#define BL_CONSENT_URL BL_BASE "/StructureDefinition/disclosure-consent" /* a permitting Consent, on Bundle.meta */
#define BL_ICD10CM "http://hl7.org/fhir/sid/icd-10-cm"
#define BL_HCPCS "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
#define BL_CPT "http://www.ama-assn.org/go/cpt"
#define BL_NPI "http://hl7.org/fhir/sid/us-npi"
#define BL_POS "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
#define BL_MODE_SYSTEM BL_BASE "/CodeSystem/peer-support-mode"

#define BL_MAX_DX 12       /* diagnoses on one professional claim */
#define BL_MAX_DX_PTR 4    /* diagnosis pointers on one line */
#define BL_MAX_ITEMS 50    /* lines on one claim */
#define BL_MAX_MODS 4      /* modifiers on one line */
#define BL_MAX_REASONS 16

/* A unit rule: units = minutes / unit_minutes, plus one when the remainder
 * is at least round_up_at; nothing below min_minutes; at most
 * max_units_per_day (0: no cap) per person, code and service date. */
struct bl_rule {
	const char *name;
	long unit_minutes, round_up_at, min_minutes, max_units_per_day;
};

/* A time band: code billed for from..to minutes (to 0: no upper end). */
struct bl_band {
	const char *code;
	long from, to;
};

/* A family of time-banded codes of one system (e.g. 90832/90834/90837). */
struct bl_bands {
	const char *system;
	struct bl_band *band;
	size_t n;
};

/* A payer's own rule for one timed code. */
struct bl_payer_rule {
	const char *payer, *code;
	const struct bl_rule *rule;
};

/* A payer's rules for billable peer support (plugins.billing.payer_rules):
 * what a line of that payer needs, and the modifiers it adds. */
struct bl_payer_policy {
	const char *payer;
	bool supervisor, credential, plan_of_care; /* required */
	const char **dx_prefixes;                  /* a diagnosis must begin with one (none: any) */
	size_t n_dx_prefixes;
	const char **mods; /* HCPCS modifiers added to each line */
	size_t n_mods;
	long units_before_authorization; /* per person, code and period; 0: no limit */
	bool per_plan;                   /* the period is the plan of care (an episode), not a year */
	int year_month, year_day;        /* the first day of the counting year */
};

struct bl_map {
	const char *key, *value;
};

struct bl_period {
	const char *system;
	char from[CW_DATE_SIZE], to[CW_DATE_SIZE];
};

struct bl_config {
	const char *provider_npi, *provider_name; /* billing provider; NULL: the rendering one */
	struct bl_rule *rules;
	size_t n_rules;
	const struct bl_rule *default_rule;
	const char **timed;
	size_t n_timed;
	struct bl_bands *bands;
	size_t n_bands;
	struct bl_payer_rule *payer_rules;
	size_t n_payer_rules;
	struct bl_map *pos; /* Encounter.class code → place of service */
	size_t n_pos;
	const char **group_mods, **tele_mods;
	size_t n_group_mods, n_tele_mods;
	struct bl_period *periods;
	size_t n_periods;
	struct bl_payer_policy *policies;
	size_t n_policies;
};

/* The payer's rules, or NULL. */
const struct bl_payer_policy *bl_policy(const char *payer);

extern const struct cw_host *bl_host;
extern struct bl_config bl_cfg;

struct bl_reason {
	const char *code;   /* one of the reason codes of docs/billing.md */
	const char *detail; /* codes and numbers only, never narrative */
};

/* One Encounter of the input, analysed. Strings are borrowed from the input
 * Bundle or the arena. */
struct bl_enc {
	size_t entry;              /* index in Bundle.entry */
	const char *id;            /* Encounter.id */
	const char *enc_system, *enc_value; /* its first identifier with a value (the program's own) */
	const char *start;         /* period.start as written (sorting) */
	long long start_min;       /* absolute minutes of start, for sorting */
	const char *patient_ref;   /* "Patient/id" */
	const char *patient_system, *patient_value;
	char date[CW_DATE_SIZE];   /* service date, "" when unknown */
	long minutes;              /* -1 when unknown */
	const char *practitioner_id, *npi;
	const char *code_system, *code;
	const char *mods[BL_MAX_MODS];
	size_t n_mods;
	long units;
	const char *dx[BL_MAX_DX];
	size_t n_dx;
	const char *pos;
	const char *coverage_id, *payer_id, *payer_name, *payer_org_id, *member_id;
	const char *supervisor_id; /* the participant typed supervisor (a Practitioner) */
	const char *cert_expiry;   /* the rendering practitioner's latest qualification period.end */
	bool plan_of_care;         /* the Encounter names a plan of care */
	const char *plan_key;      /* its reference, else identifier value ("" when none) */
	const char *prior_auth;    /* the prior authorization number, or NULL */
	struct bl_reason reasons[BL_MAX_REASONS];
	size_t n_reasons;
};

struct bl_result {
	struct bl_enc *enc; /* sorted: service start, then id */
	size_t n;
	bool gathered;      /* the input was gathered from the store, not posted */
	/* the redisclosure notice the gateway put on the input Bundle (42 CFR
	 * 2.32), borrowed from it, or NULL: the extract carries it */
	const char *notice;
	/* the input Bundle (borrowed): the Consents the gateway cited on its
	 * meta (BL_CONSENT_URL) go with the extract */
	const cJSON *bundle;
};

/* Reads the Bundle (borrowed). CW_INVALID with an issue when it is not a
 * Bundle; CW_NOMEM when the arena ran out. */
enum cw_status bl_analyse(struct cw_ctx *ctx, const cJSON *bundle, struct bl_result *out);

/* The extract, in the arena. */
enum cw_status bl_write_json(struct cw_ctx *ctx, const struct bl_result *r, char **out, size_t *len);
enum cw_status bl_write_csv(struct cw_ctx *ctx, const struct bl_result *r, char **out, size_t *len);
/* A collection Bundle of Claims and one OperationOutcome (handed over). */
enum cw_status bl_build_claims(struct cw_ctx *ctx, const struct bl_result *r, cJSON **out);

/* Helpers shared by the files (and plugkit's). */
bool bl_is_hcpcs(const char *system);
const char *bl_str(const cJSON *o, const char *key);
/* The redisclosure notice on bundle's meta (BL_NOTICE_URL), or NULL. */
const char *bl_bundle_notice(const cJSON *bundle);

#endif
