/* api_fhir — what every /fhir endpoint shares, and the core operations.
 *
 * Content negotiation (FHIR R4 http.html#mime-type): before routing a /fhir
 * request, api_fhir_negotiate picks the response format from `_format`, else
 * `Accept` (JSON when neither asks), and answers 406 when nothing acceptable
 * is offered; after routing, api_fhir_finish rewrites a FHIR JSON body
 * (resource or OperationOutcome) into XML when XML was negotiated, so every
 * endpoint and every error speaks both formats. `_pretty=true` indents.
 *
 * Endpoints: POST /fhir/$convert answers the posted resource (JSON or XML by
 * Content-Type, 415 otherwise) in the negotiated format; POST /fhir/$validate
 * and /fhir/{type}/$validate answer 200 with an OperationOutcome listing the
 * structural problems (core/fhir/validate.h), the body being the resource or a
 * Parameters with a "resource" parameter.
 *
 * Threads: handlers run on worker threads and share only the read-only app. */
#ifndef CW_API_FHIR_H
#define CW_API_FHIR_H

#include <stdbool.h>

#include "api/context.h"

int api_fhir_register(struct app *app);

/* Sets req->format and req->pretty; returns true (with a 406 answer in resp)
 * when the request cannot be answered in any format it accepts. */
bool api_fhir_negotiate(struct http_request *req, struct http_response *resp);

/* Converts a FHIR JSON body to XML when req->format asks for XML. */
void api_fhir_finish(const struct http_request *req, struct http_response *resp);

/* Reads the request body as a FHIR resource in the format its Content-Type
 * names (415 when neither), with the configured JSON limits; on failure sets
 * the error answer (400/413/415) and returns NULL. Caller frees the tree. */
cJSON *api_fhir_read_body(const struct app *app, const struct http_request *req, struct http_response *resp);

/* Answers tree (taken over) in the negotiated format. */
void api_fhir_send(const struct http_request *req, struct http_response *resp, int status, cJSON *tree);

#endif
