/* api_terminology — the terminology operations over the code systems the
 * core loaded (core/fhir/terminology.h: code packs and profile CodeSystems).
 *
 *   GET|POST /fhir/CodeSystem/$lookup
 *       system, code [, version] (or coding) → Parameters: name, version,
 *       display, and property billable (systems that record it, ICD-10-CM)
 *       and inactive (terminated codes).
 *   GET|POST /fhir/CodeSystem/$validate-code
 *       url (system is accepted too), code [, version, display] (or coding)
 *       → Parameters: result, message, display.
 *
 * POST takes a Parameters resource (JSON or XML); GET takes the same names
 * as query parameters. Answers in the negotiated format.
 *
 * Errors (OperationOutcome): a missing or conflicting parameter → 400; a
 * system the server does not have, or a version of it it does not have →
 * 404 not-found, naming the systems it has (the operation definitions
 * require the server to know the system: an unknown one is a resource not
 * found, not a malformed request). An unknown code → 404 not-found for
 * $lookup; for $validate-code it is an answer: 200 with result false.
 *
 * Threads: handlers only read the sealed registry. */
#ifndef CW_API_TERMINOLOGY_H
#define CW_API_TERMINOLOGY_H

#include "api/context.h"

int api_terminology_register(struct app *app);

#endif
