/* peer_support — internal interface of the peer-support plugin: the
 * encounter (an item of the plugkit record document that the native reader
 * fills and every writer reads), the record format (native JSON/CSV in and
 * out) and the FHIR halves. Nothing here is exported: the build hides every
 * symbol but cw_plugin_entry. The format is described in
 * docs/formats/peer-support.md.
 *
 * Memory: everything in a struct pk_doc lives in the call's arena
 * (host->alloc), so nothing is ever freed by the plugin. */
#ifndef PEER_SUPPORT_H
#define PEER_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

#include <crosswalk/plugin.h>

#include "plugkit.h"

#define PS_BASE "https://crosswalk.example.org/fhir"
#define PS_ACTIVITY_SYSTEM PS_BASE "/CodeSystem/peer-support-activity"
#define PS_MODE_SYSTEM PS_BASE "/CodeSystem/peer-support-mode"
#define PS_NOTE_URL PS_BASE "/StructureDefinition/peer-support-note"
/* Goals an encounter served: PK_PERTAINS_TO_GOAL (Goal is no target of
 * Encounter.reasonReference). */
#define PS_PROFILE(name) PS_BASE "/StructureDefinition/peer-support-" name
#define PS_NPI_SYSTEM "http://hl7.org/fhir/sid/us-npi"
#define PS_NUCC_SYSTEM "http://nucc.org/provider-taxonomy"
#define PS_NUCC_PEER "175T00000X"
#define PS_ACTCODE_SYSTEM "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#define PS_UCUM "http://unitsofmeasure.org"
#define PS_H0038 "H0038"
#define PS_MAX_MINUTES 1440  /* one day: longer is a data-entry error */
#define PS_CSV_COLUMNS 18    /* version 1 */
#define PS_CSV_COLUMNS_V2 30 /* version 2: 12 optional trailing columns */
#define PS_VERSION 2         /* the newest version read and written */
#define PS_PRIOR_AUTH_URL PS_BASE "/StructureDefinition/peer-support-prior-authorization"
#define PS_COVERAGE_URL PS_BASE "/StructureDefinition/peer-support-coverage"
#define PS_PLAN_URL PS_BASE "/StructureDefinition/peer-support-plan-of-care"
#define PS_AREA_SYSTEM PS_BASE "/CodeSystem/peer-support-certification-area"
#define PS_ICD10CM "http://hl7.org/fhir/sid/icd-10-cm"
#define PS_CARETEAM_SYSTEM "http://terminology.hl7.org/CodeSystem/claimcareteamrole"
#define PS_MAX_DIAGNOSES 12         /* diagnoses of one professional claim */
#define PS_NO_ACTIVITY ((size_t)-1) /* an unknown activity while reading */

/* Settings the format knows, with their Encounter.class; index = enum. */
enum ps_setting { PS_CLINIC, PS_COMMUNITY, PS_HOME, PS_TELEHEALTH, PS_SETTING_COUNT };
enum ps_mode { PS_INDIVIDUAL, PS_GROUP, PS_MODE_COUNT };
enum ps_area { PS_AREA_MH, PS_AREA_SUD, PS_AREA_YOUTH, PS_AREA_FAMILY, PS_AREA_COUNT };

extern const struct pk_code ps_settings[PS_SETTING_COUNT]; /* code = setting, display = class code */
extern const struct pk_code ps_class_display[PS_SETTING_COUNT];
extern const struct pk_code ps_modes[PS_MODE_COUNT];
extern const struct pk_code ps_activities[];
extern const size_t ps_activity_count;
extern const struct pk_code ps_areas[PS_AREA_COUNT];
extern const char *const ps_csv_header[PS_CSV_COLUMNS_V2];

/* A peer specialist's certification (version 2); number NULL: none. */
struct ps_cert {
	const char *issuer, *number;
	const char *expiry; /* YYYY-MM-DD */
	const char *area;   /* a code of ps_areas, or NULL */
};

struct ps_specialist {
	struct pk_ident id;
	const char *name;
	const char *credential; /* may be NULL */
	const char *npi;        /* may be NULL */
	struct ps_cert cert;    /* version 2 */
};

/* An item of the record format (plugkit's struct pk_doc holds them). */
struct ps_encounter {
	struct pk_item it; /* its person, and where it was read */
	const char *id;
	struct ps_specialist sp;
	const char *start; /* YYYY-MM-DDThh:mm:ss(Z|±hh:mm), kept verbatim */
	long minutes;
	enum ps_mode mode;
	enum ps_setting setting;
	size_t *acts; /* indexes into ps_activities */
	size_t n_acts;
	const char **goals;
	size_t n_goals;
	bool billable;
	const char *notes; /* may be NULL */
	/* version 2; each NULL (0) when not given */
	const char **diagnoses; /* ICD-10-CM codes, billing rank order */
	size_t n_diagnoses;
	const char *payer, *member_id, *prior_auth; /* coverage: payer and member_id together */
	struct pk_ident supervisor;                 /* value NULL: none */
	const char *supervisor_name;
	const char *plan; /* the recovery plan's identifier value (plan_system) */
};

/* The last CSV column (0-based, past the version 1 ones) an encounter
 * fills, or 0 when it uses no version 2 field. */
size_t ps_v2_last_column(const struct ps_encounter *e);

/* Encounter i of a document. */
static inline const struct ps_encounter *ps_enc(const struct pk_doc *doc, size_t i)
{
	return (const struct ps_encounter *)(const void *)pk_doc_item(doc, sizeof(struct ps_encounter), i);
}

/* The plugin's settings, read once in init. */
struct ps_config {
	const char *encounter_system; /* Encounter.identifier.system */
	const char *goal_system;      /* Goal identifiers of linked goals */
	const char *hcpcs_system;     /* system emitted for H0038 */
	const char *plan_system;      /* identifiers of recovery plans (plan_of_care) */
	const char *payer_system;     /* Coverage.payor identifiers (payer) */
	bool notes_upstream;          /* notes_upstream: "send"; default "withhold" */
};

extern const struct cw_host *ps_host;
extern struct ps_config ps_cfg;

/* --- shared helpers (peer_support.c; the others are plugkit's) */
/* An absolute URI (pk_is_uri; the format lets DEL through). */
bool ps_is_uri(const char *s);
/* Parses YYYY-MM-DDThh:mm:ss(Z|±hh:mm); *abs is minutes since 0000-03-01
 * in UTC (seconds in *sec), *offset the zone offset in minutes. */
bool ps_datetime(const char *s, long long *abs_min, int *sec, int *offset);
/* start + minutes, in start's own zone, written into out (>= 26 bytes). */
bool ps_add_minutes(const char *start, long minutes, char *out, size_t cap);

/* --- native JSON and CSV, in and out (ps_native.c): a plugkit record
 * format; its documents hold struct ps_encounter items. */
extern const struct pk_records ps_records;

/* --- FHIR (ps_fhir.c) */
enum cw_status ps_to_bundle(struct cw_ctx *ctx, const struct pk_doc *doc, cJSON **out);
enum cw_status ps_from_bundle(struct cw_ctx *ctx, const cJSON *bundle, struct pk_doc *doc);
/* cw_plugin.upgrade: Encounters (and their Procedures) of rule 1. */
enum cw_status ps_upgrade(struct cw_ctx *ctx, const cJSON *resource, cJSON **out, cJSON **moved);

#endif
