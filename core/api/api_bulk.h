/* api_bulk — the Bulk Data Access 2.0 endpoints over the jobs of bulk.h.
 *
 *   GET|POST /fhir/$export               every resource (system level)
 *   GET|POST /fhir/Patient/$export       the Patient compartment of every Patient
 *   GET|POST /fhir/Group/{id}/$export    the compartments of the Group's Patient members
 *   GET      /fhir/bulk-status/{job}     202 + X-Progress + Retry-After while running,
 *                                        200 + the manifest when done, 500 when failed
 *   DELETE   /fhir/bulk-status/{job}     cancels or releases: 202
 *   GET      /fhir/bulk-files/{job}/{f}  an output file, application/fhir+ndjson
 *
 * Kick-off needs Prefer: respond-async and answers 202 with Content-Location
 * (the status URL). Parameters come from the query (GET) or a Parameters
 * body (POST; the query when the body is empty): _outputFormat
 * (application/fhir+ndjson, application/ndjson, ndjson), _since (an
 * instant), _type, _typeFilter (repeating), _elements, patient (Patient
 * and Group level). Any other parameter, or an includeAssociatedData value
 * this server does not produce, is 400 unless Prefer holds handling=lenient
 * (then it is left out). The status and file paths are answered as JSON
 * and NDJSON whatever the request's Accept says.
 *
 * Threads: handlers run on worker threads; the jobs are bulk.h's. */
#ifndef CW_API_BULK_H_
#define CW_API_BULK_H_

#include <stdbool.h>

#include "api/context.h"

int api_bulk_register(struct app *app);

/* Whether path is a status or file path (answered without content
 * negotiation). */
bool api_bulk_plain_path(const char *path);

#endif
