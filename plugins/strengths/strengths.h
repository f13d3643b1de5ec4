/* strengths — internal interface of the strengths plugin: the strength (an
 * item of the plugkit record document that the native reader fills and
 * every writer reads), the record format (native JSON/CSV in and out) and
 * the FHIR halves. Nothing here is exported: the build hides every symbol
 * but cw_plugin_entry. The format is described in docs/formats/strengths.md.
 *
 * Memory: everything in a struct pk_doc lives in the call's arena
 * (host->alloc); the plugin frees nothing of it. */
#ifndef STRENGTHS_H
#define STRENGTHS_H

#include <stdbool.h>
#include <stddef.h>

#include <crosswalk/plugin.h>

#include "plugkit.h"

#define ST_DEFAULT_BASE "https://crosswalk.example.org/fhir"
#define ST_URL_SIZE 512 /* room for a configured base plus a path */
#define ST_CSV_COLUMNS 13

/* Vocabularies from outside the plugin (HL7 terminology, US Core, SDOH Clinical Care). */
#define ST_OBS_CATEGORY_SYSTEM "http://terminology.hl7.org/CodeSystem/observation-category"
#define ST_CLINICAL_SYSTEM "http://terminology.hl7.org/CodeSystem/condition-clinical"
#define ST_VERIFICATION_SYSTEM "http://terminology.hl7.org/CodeSystem/condition-ver-status"
#define ST_SDOHCC_SYSTEM "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
#define ST_USCORE_CONDCAT_SYSTEM "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
/* eLTSS "strength" codes, read but never written: both code-system URLs are
 * derived from the IG's canonical and the Ids in its sources. */
#define ST_ELTSS_SYSTEM_TEMP "http://hl7.org/fhir/us/eltss/CodeSystem/eltss-observation-codes-temporary"
#define ST_ELTSS_SYSTEM "http://hl7.org/fhir/us/eltss/CodeSystem/eltss-observation-code"

/* Who identified a strength; index = enum. */
enum st_role { ST_SELF, ST_PEER, ST_FAMILY, ST_PROVIDER, ST_ROLE_COUNT };
#define ST_NO_CATEGORY (-1)

extern const struct pk_code st_categories[];
extern const size_t st_category_count;
extern const struct pk_code st_roles[ST_ROLE_COUNT];
extern const char *const st_csv_header[ST_CSV_COLUMNS];

/* An item of the record format (plugkit's struct pk_doc holds them). */
struct st_strength {
	struct pk_item it; /* its person, and where it was read */
	const char *id;
	int category; /* index into st_categories */
	const char *description;
	enum st_role role;
	const char *by_name;  /* may be NULL; never for self */
	struct pk_ident by_id; /* both NULL when absent; never for self */
	const char *date;     /* YYYY-MM-DD */
	const char **goals;
	size_t n_goals;
};

/* Strength i of a document. */
static inline const struct st_strength *st_item(const struct pk_doc *doc, size_t i)
{
	return (const struct st_strength *)(const void *)pk_doc_item(doc, sizeof(struct st_strength), i);
}

/* Settings, read once in init. */
struct st_config {
	bool condition;                    /* "resource": "condition" */
	char base[ST_URL_SIZE];            /* canonical_base, without a trailing '/' */
	char strength_system[ST_URL_SIZE]; /* identifier system of strengths */
	char goal_system[ST_URL_SIZE];     /* identifier system of linked goals */
	char category_system[ST_URL_SIZE]; /* {base}/CodeSystem/strength-category */
	char code_system[ST_URL_SIZE];     /* {base}/CodeSystem/recovery-observation (the profile's) */
	char old_code_system[ST_URL_SIZE]; /* {base}/CodeSystem/strength-observation: read, no longer written */
	char role_url[ST_URL_SIZE];        /* {base}/StructureDefinition/strength-identified-by */
	char profile_obs[ST_URL_SIZE];     /* {base}/StructureDefinition/recovery-strength */
	char profile_cond[ST_URL_SIZE];    /* …/recovery-strength-condition */
	char profile_patient[ST_URL_SIZE]; /* …/recovery-strength-patient */
};

extern const struct cw_host *st_host;
extern struct st_config st_cfg;

/* --- helpers (strengths.c; the others are plugkit's) */
bool st_is_uri(const char *s);  /* pk_is_uri, in UTF-8 a FHIR string may hold */
bool st_is_text(const char *s); /* pk_is_text, likewise */
/* A calendar date written YYYY-MM-DD (years 1000–9999). */
bool st_is_date(struct cw_ctx *ctx, const char *s);

/* --- native JSON and CSV, in and out (st_native.c): a plugkit record
 * format; its documents hold struct st_strength items. */
extern const struct pk_records st_records;

/* --- FHIR (st_fhir.c) */
enum cw_status st_to_bundle(struct cw_ctx *ctx, const struct pk_doc *doc, cJSON **out);
enum cw_status st_from_bundle(struct cw_ctx *ctx, const cJSON *bundle, struct pk_doc *doc);
/* cw_plugin.upgrade: strengths of rule 1. */
enum cw_status st_upgrade(struct cw_ctx *ctx, const cJSON *resource, cJSON **out, cJSON **moved);

#endif
