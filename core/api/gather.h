/* gather — what the exports (api_plugins), `crosswalk billing` (cmd/) and
 * the plugins' store_gather read from the store, asked for strictly, as
 * collection Bundles. The REST layer lends it its Bundle helpers
 * (rest_int.h) and holds no gathering of its own.
 *
 * A query names one of:
 *   - a person: patient is a Patient id, "Patient/id", or the person's
 *     identifier "system|value" (the first '|' separates them; "|value" is
 *     an identifier without a system). The answer is everything stored
 *     about that Patient: the Patient, every resource whose patient or
 *     subject is that Patient, and the resources those reference;
 *   - a period: from and to, both YYYY-MM-DD exactly (a real calendar date),
 *     from not after to; with patient, only that person's Encounters. The
 *     answer is the Encounters whose period overlaps it with their context:
 *     the Conditions recorded for each, the Coverage of each patient, and
 *     the resources those reference (one level);
 *   - Encounters: up to GATHER_MAX_ENCOUNTERS, each by id ("Encounter/id")
 *     or by the program's own identifier (system|value); not with a person
 *     or a period. The answer is those Encounters with their context.
 * An identifier must match exactly one stored resource: none is 404, more
 * than one 400 (multiple-matches).
 *
 * Errors: NULL with issues in oo and *status set (400 for a bad query, 404
 * or 410 for a person or encounter not stored, 500/503 for the store). The
 * whole query is checked before the store is read: with no store (app->store
 * NULL) a well-formed query is 501, a malformed one 400.
 * Outcomes never repeat identifier values.
 *
 * Threads: any; reads the store only. The module keeps no state. */
#ifndef CW_GATHER_H
#define CW_GATHER_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "api/context.h"
#include "fhir/outcome.h"

#define GATHER_MAX_ENCOUNTERS 1000
#define GATHER_MAX_TEXT 1024 /* longest identifier system or value */

/* A resource named by id (id set) or by identifier (value set; system may be
 * NULL or "" for none; system_len is its length). Borrowed strings. */
struct gather_ref {
	const char *id;
	const char *system;
	size_t system_len;
	const char *value;
};

struct gather_query {
	const char *patient;          /* as written (see above); NULL: none */
	const struct gather_ref *patient_ref; /* or this, instead of patient */
	const char *from, *to;        /* as written; NULL: none */
	const struct gather_ref *encounters;
	size_t n_encounters;
	const char *where_patient;    /* locations for issues: "patient" by */
	const char *where_from;       /* default (the query parameter names) */
	const char *where_to;
};

/* Reads what q asks for from app->store. q's strings are checked here. */
cJSON *gather_bundle(const struct app *app, const struct gather_query *q, struct outcome *oo, int *status);

/* The same from a FHIR Parameters resource (borrowed): parameters
 * encounter (valueReference with reference "Encounter/id" or identifier,
 * repeating), patient (valueString as above, or valueReference with
 * reference "Patient/id" or identifier), from and to (valueDate). Any other
 * parameter, a repeated patient, from or to, or a value of another type is
 * 400. */
cJSON *gather_parameters(const struct app *app, const cJSON *parameters, struct outcome *oo, int *status);

#endif
