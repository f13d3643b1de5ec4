/* peer_support — internal interface of the peer-support plugin: the native
 * model every reader fills and every writer reads, and the four halves
 * (native JSON/CSV in and out, FHIR in and out). Nothing here is exported:
 * the build hides every symbol but cw_plugin_entry. The format is described
 * in docs/formats/peer-support.md.
 *
 * Memory: everything in a struct ps_doc lives in the call's arena
 * (host->alloc), so nothing is ever freed by the plugin. */
#ifndef PEER_SUPPORT_H
#define PEER_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

#include <crosswalk/plugin.h>

#define PS_BASE "https://crosswalk.example.org/fhir"
#define PS_ACTIVITY_SYSTEM PS_BASE "/CodeSystem/peer-support-activity"
#define PS_MODE_SYSTEM PS_BASE "/CodeSystem/peer-support-mode"
#define PS_NOTE_URL PS_BASE "/StructureDefinition/peer-support-note"
/* R4 core extension linking any resource to the goals it serves (Goal is no
 * target of Encounter.reasonReference) */
#define PS_PERTAINS_TO_GOAL "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal"
#define PS_PROFILE(name) PS_BASE "/StructureDefinition/peer-support-" name
#define PS_NPI_SYSTEM "http://hl7.org/fhir/sid/us-npi"
#define PS_NUCC_SYSTEM "http://nucc.org/provider-taxonomy"
#define PS_NUCC_PEER "175T00000X"
#define PS_ACTCODE_SYSTEM "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#define PS_UCUM "http://unitsofmeasure.org"
#define PS_H0038 "H0038"
#define PS_MAX_MINUTES 1440 /* one day: longer is a data-entry error */
#define PS_CSV_COLUMNS 18
#define PS_NO_ACTIVITY ((size_t)-1) /* an unknown activity while reading */

/* Settings the format knows, with their Encounter.class; index = enum. */
enum ps_setting { PS_CLINIC, PS_COMMUNITY, PS_HOME, PS_TELEHEALTH, PS_SETTING_COUNT };
enum ps_mode { PS_INDIVIDUAL, PS_GROUP, PS_MODE_COUNT };

struct ps_code {
	const char *code, *display;
};
extern const struct ps_code ps_settings[PS_SETTING_COUNT]; /* code = setting, display = class code */
extern const struct ps_code ps_class_display[PS_SETTING_COUNT];
extern const struct ps_code ps_modes[PS_MODE_COUNT];
extern const struct ps_code ps_activities[];
extern const size_t ps_activity_count;
extern const char *const ps_csv_header[PS_CSV_COLUMNS];

struct ps_ident {
	const char *system, *value;
};

struct ps_person {
	struct ps_ident id;
	const char *name; /* may be NULL */
	const char *where; /* where it was first read (for conflicts); NULL from FHIR */
};

struct ps_specialist {
	struct ps_ident id;
	const char *name;
	const char *credential; /* may be NULL */
	const char *npi;        /* may be NULL */
};

struct ps_encounter {
	size_t person; /* index into ps_doc.people */
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
	const char *where; /* JSON pointer or "line N" it came from; NULL from FHIR */
};

struct ps_doc {
	struct ps_person *people;
	size_t n_people, cap_people;
	struct ps_encounter *encs;
	size_t n_encs, cap_encs;
	bool array; /* the JSON document was an array of logs */
};

/* The plugin's settings, read once in init. */
struct ps_config {
	const char *encounter_system; /* Encounter.identifier.system */
	const char *goal_system;      /* Goal identifiers of linked goals */
	const char *hcpcs_system;     /* system emitted for H0038 */
};

extern const struct cw_host *ps_host;
extern struct ps_config ps_cfg;

/* --- shared helpers (peer_support.c) */
void *ps_grow(struct cw_ctx *ctx, void *old, size_t n, size_t *cap, size_t size);
struct ps_person *ps_add_person(struct cw_ctx *ctx, struct ps_doc *doc);
struct ps_encounter *ps_add_encounter(struct cw_ctx *ctx, struct ps_doc *doc);
int ps_lookup(const struct ps_code *list, size_t n, const char *code);
bool ps_is_uri(const char *s);
bool ps_is_token(const char *s); /* non-empty, no leading/trailing whitespace */
bool ps_npi_valid(const char *s);
/* Parses YYYY-MM-DDThh:mm:ss(Z|±hh:mm); *abs is minutes since 0000-03-01
 * in UTC (seconds in *sec), *offset the zone offset in minutes. */
bool ps_datetime(const char *s, long long *abs_min, int *sec, int *offset);
/* start + minutes, in start's own zone, written into out (>= 26 bytes). */
bool ps_add_minutes(const char *start, long minutes, char *out, size_t cap);

/* --- native in (ps_native.c): report every problem, return CW_OK only
 * when none was found. */
enum cw_status ps_read_json(struct cw_ctx *ctx, const char *data, size_t len, struct ps_doc *doc);
enum cw_status ps_read_csv(struct cw_ctx *ctx, const char *data, size_t len, struct ps_doc *doc);
/* --- native out (ps_native.c): text in the arena. */
enum cw_status ps_write_json(struct cw_ctx *ctx, const struct ps_doc *doc, char **out, size_t *len);
enum cw_status ps_write_csv(struct cw_ctx *ctx, const struct ps_doc *doc, char **out, size_t *len);

/* --- FHIR (ps_fhir.c) */
enum cw_status ps_to_bundle(struct cw_ctx *ctx, const struct ps_doc *doc, cJSON **out);
enum cw_status ps_from_bundle(struct cw_ctx *ctx, const cJSON *bundle, struct ps_doc *doc);

#endif
