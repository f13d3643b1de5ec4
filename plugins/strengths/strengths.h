/* strengths — internal interface of the strengths plugin: the native model
 * that the readers fill and the writers read, and the four halves (native
 * JSON/CSV in and out, FHIR in and out). Nothing here is exported: the build
 * hides every symbol but cw_plugin_entry. The format is described in
 * docs/formats/strengths.md.
 *
 * Memory: everything in a struct st_doc lives in the call's arena
 * (host->alloc); the plugin frees nothing of it. */
#ifndef STRENGTHS_H
#define STRENGTHS_H

#include <stdbool.h>
#include <stddef.h>

#include <crosswalk/plugin.h>

#define ST_DEFAULT_BASE "https://crosswalk.example.org/fhir"
#define ST_URL_SIZE 512 /* room for a configured base plus a path */
#define ST_CSV_COLUMNS 13

/* Vocabularies from outside the plugin (domain reference §1.2, §3.9). */
#define ST_OBS_CATEGORY_SYSTEM "http://terminology.hl7.org/CodeSystem/observation-category"
#define ST_CLINICAL_SYSTEM "http://terminology.hl7.org/CodeSystem/condition-clinical"
#define ST_VERIFICATION_SYSTEM "http://terminology.hl7.org/CodeSystem/condition-ver-status"
#define ST_SDOHCC_SYSTEM "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
#define ST_USCORE_CONDCAT_SYSTEM "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
#define ST_PERTAINS_TO_GOAL "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal"
/* eLTSS "strength" codes, read but never written: both code-system URLs are
 * derived from the IG's canonical and the Ids in its sources. */
#define ST_ELTSS_SYSTEM_TEMP "http://hl7.org/fhir/us/eltss/CodeSystem/eltss-observation-codes-temporary"
#define ST_ELTSS_SYSTEM "http://hl7.org/fhir/us/eltss/CodeSystem/eltss-observation-code"

/* Who identified a strength; index = enum. */
enum st_role { ST_SELF, ST_PEER, ST_FAMILY, ST_PROVIDER, ST_ROLE_COUNT };
#define ST_NO_CATEGORY (-1)

struct st_code {
	const char *code, *display;
};
extern const struct st_code st_categories[];
extern const size_t st_category_count;
extern const struct st_code st_roles[ST_ROLE_COUNT];
extern const char *const st_csv_header[ST_CSV_COLUMNS];

struct st_ident {
	const char *system, *value;
};

struct st_person {
	struct st_ident id;
	const char *name;  /* may be NULL */
	const char *where; /* where it was first read; NULL from FHIR */
};

struct st_strength {
	size_t person; /* index into st_doc.people */
	const char *id;
	int category; /* index into st_categories */
	const char *description;
	enum st_role role;
	const char *by_name;  /* may be NULL; never for self */
	struct st_ident by_id; /* both NULL when absent; never for self */
	const char *date;     /* YYYY-MM-DD */
	const char **goals;
	size_t n_goals;
	const char *where; /* JSON pointer or "line N"; NULL from FHIR */
};

struct st_doc {
	struct st_person *people;
	size_t n_people, cap_people;
	struct st_strength *items;
	size_t n_items, cap_items;
	bool array; /* the JSON document was an array of records */
};

/* Settings, read once in init. */
struct st_config {
	bool condition;                    /* "resource": "condition" */
	char base[ST_URL_SIZE];            /* canonical_base, without a trailing '/' */
	char strength_system[ST_URL_SIZE]; /* identifier system of strengths */
	char goal_system[ST_URL_SIZE];     /* identifier system of linked goals */
	char category_system[ST_URL_SIZE]; /* {base}/CodeSystem/strength-category */
	char code_system[ST_URL_SIZE];     /* {base}/CodeSystem/strength-observation */
	char role_url[ST_URL_SIZE];        /* {base}/StructureDefinition/strength-identified-by */
	char profile_obs[ST_URL_SIZE];     /* {base}/StructureDefinition/recovery-strength */
	char profile_cond[ST_URL_SIZE];    /* …/recovery-strength-condition */
	char profile_patient[ST_URL_SIZE]; /* …/recovery-strength-patient */
};

extern const struct cw_host *st_host;
extern struct st_config st_cfg;

/* --- helpers (strengths.c) */
void *st_grow(struct cw_ctx *ctx, void *old, size_t n, size_t *cap, size_t size);
struct st_person *st_add_person(struct cw_ctx *ctx, struct st_doc *doc);
struct st_strength *st_add_strength(struct cw_ctx *ctx, struct st_doc *doc);
int st_lookup(const struct st_code *list, size_t n, const char *code);
bool st_is_uri(const char *s);
bool st_is_text(const char *s); /* non-empty, no white space at either end */
/* A calendar date written YYYY-MM-DD (years 1000–9999). */
bool st_is_date(struct cw_ctx *ctx, const char *s);

/* --- native in (st_native.c): report every problem; CW_OK only when none. */
enum cw_status st_read_json(struct cw_ctx *ctx, const char *data, size_t len, struct st_doc *doc);
enum cw_status st_read_csv(struct cw_ctx *ctx, const char *data, size_t len, struct st_doc *doc);
/* --- native out (st_native.c): text in the arena. */
enum cw_status st_write_json(struct cw_ctx *ctx, const struct st_doc *doc, char **out, size_t *len);
enum cw_status st_write_csv(struct cw_ctx *ctx, const struct st_doc *doc, char **out, size_t *len);

/* --- FHIR (st_fhir.c) */
enum cw_status st_to_bundle(struct cw_ctx *ctx, const struct st_doc *doc, cJSON **out);
enum cw_status st_from_bundle(struct cw_ctx *ctx, const cJSON *bundle, struct st_doc *doc);

#endif
