/* gather — the exports: everything stored about one patient, or the
 * resources of a period (what billing reads), as collection Bundles built
 * from the store. GET /export and $export-style plugin operations
 * (api_plugins) and `crosswalk billing` use it; the REST layer lends it its
 * Bundle helpers (rest_int.h) and holds no gathering of its own.
 *
 * Errors: NULL with issues in oo and *status set (400 for bad input, 404 or
 * 410 for a patient not stored, 500 when out of memory).
 * Threads: any; reads the store only and keeps no state. */
#ifndef CW_GATHER_H
#define CW_GATHER_H

#include <cjson/cJSON.h>

#include "api/context.h"
#include "fhir/outcome.h"

/* A collection Bundle of everything stored about one patient: the Patient,
 * every resource whose patient or subject is that Patient, and the
 * resources those reference (one level). NULL with issues in oo. */
cJSON *gather_patient_bundle(const struct app *app, const char *patient_id, struct outcome *oo, int *status);

/* A collection Bundle for a period: every Encounter whose period overlaps
 * [from, to] (FHIR dates), the Conditions recorded for each, the Coverage of
 * each patient, and the resources those reference (one level). NULL with
 * issues in oo. */
cJSON *gather_period_bundle(const struct app *app, const char *from, const char *to, struct outcome *oo, int *status);

#endif
