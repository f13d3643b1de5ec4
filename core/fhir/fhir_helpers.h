/* fhir_helpers — small FHIR R4 building blocks shared by the core and, via
 * the plugin host table, by plugins: ids, dates, References, Codings,
 * Identifiers, and deterministic ids.
 *
 * Pure functions: no global state, safe from any thread. The builders return
 * a new cJSON tree the caller owns, or NULL on invalid input (with the reason
 * in why) or OOM. */
#ifndef CW_FHIR_HELPERS_H
#define CW_FHIR_HELPERS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#define FHIR_ID_SIZE 37   /* UUID text + NUL */
#define FHIR_DATE_SIZE 11 /* YYYY-MM-DD + NUL */

/* FHIR id: [A-Za-z0-9\-\.]{1,64}. */
bool fhir_is_id(const char *s);
/* A name shaped like a FHIR type ([A-Z][A-Za-z0-9]{0,63}); with the model
 * loaded, use model queries for "is it really one". */
bool fhir_is_type_name(const char *s);
/* An absolute URI: scheme ":" rest, no whitespace. */
bool fhir_is_absolute_uri(const char *s);

/* Deterministic id: RFC 4122 version-5 UUID of key in namespace ns, where ns
 * is a UUID in text or else is itself turned into one with the RFC's URL
 * namespace (uuid5(NS_URL, ns)). Returns 0, or -1 on bad input/failure. */
int fhir_make_id(const char *ns, const char *key, char out[FHIR_ID_SIZE]);

/* A FHIR date from YYYY-MM-DD, YYYYMMDD or MM/DD/YYYY (a real calendar date
 * from year 1000 to 9999), or today in UTC when text is NULL. 0 or -1. */
int fhir_iso_date(const char *text, char out[FHIR_DATE_SIZE]);
/* True when s is exactly YYYY-MM-DD and a real calendar date (as above). */
bool fhir_is_date(const char *s);

cJSON *fhir_reference(const char *type, const char *id, const char *display, char *why, size_t whylen);
cJSON *fhir_coding(const char *system, const char *code, const char *display, char *why, size_t whylen);
cJSON *fhir_identifier(const char *system, const char *value, char *why, size_t whylen);

/* Merges, element by element, what a stored version of a resource holds
 * into a new one about to replace it, so that a write carrying fewer
 * elements never erases what another writer put there:
 *   - a top-level element only the stored version has is kept (id, meta's
 *     versionId and lastUpdated, and text — the narrative of the stored
 *     elements, which the new ones may contradict — excepted);
 *   - identifier and telecom are united by system and value, extension and
 *     modifierExtension by url (the new one wins for a url both have),
 *     communication by its language code, meta.profile, meta.tag and
 *     meta.security by their value;
 *   - a name list whose every name is text alone, each the text of a stored
 *     name (or of its given and family names), gives way to the stored
 *     names, which say the same with more;
 *   - any other element both have is the new one's.
 * into is changed in place (stored is borrowed). Returns 0, or -1 when
 * memory ran out (into then holds part of the merge: discard it). */
int fhir_merge_elements(cJSON *into, const cJSON *stored);

#endif
