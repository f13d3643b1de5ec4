/* api_plugins — the endpoints plugins serve:
 *
 *   GET  /plugins                 the loaded plugins, as `crosswalk plugins --json`
 *   POST /ingest/{format}         native document → the plugin's mapping →
 *                                 before-store hooks → the transaction Bundle
 *                                 stored (201 with the transaction-response;
 *                                 ?preview=true, or no store, answers 200 with the Bundle
 *                                 and stores nothing; 422 OperationOutcome
 *                                 on mapping errors; 503 while the outbox is
 *                                 full)
 *   GET  /export/{format}         the stored resources of one person
 *                                 (?patient=, a Patient id or identifier
 *                                 system|value), one period (?from=&to=,
 *                                 YYYY-MM-DD) or both, gathered by
 *                                 api/gather → before-export hooks → native
 *                                 document; with _format, each parameter at
 *                                 most once and nothing else (400 otherwise)
 *   POST /export/{format}         the same for a FHIR resource or Bundle sent
 *                                 in the body (stateless conversion); only
 *                                 _format, at most once.
 *   GET|POST /fhir/$op, /fhir/{Type}/$op   plugin operations
 *
 * The media type of a native document is chosen by Content-Type (ingest) or
 * _format / Accept (export): application/json or text/csv.
 *
 * Registering also serves the plugins' host->store_gather (gather_parameters
 * over app's store).
 *
 * Scopes (docs/security.md): /ingest needs, on every type the mapped
 * transaction writes, the permission of its entry (POST c, PUT u; one
 * missing refuses the document whole, 403); /export, and what a plugin
 * (an operation among them) gathers through store_gather, need r and s on
 * every type gathered (403 naming the first missing). A plugin operation
 * itself needs any valid token: the store is open to it only through
 * store_gather.
 *
 * Threads: handlers run on many worker threads; each request has its own
 * arena, outcome and plugin context. */
#ifndef CW_API_PLUGINS_H
#define CW_API_PLUGINS_H

#include <stdbool.h>

#include "api/context.h"

int api_plugins_register(struct app *app);

/* True when method path is a plugin operation's route (its scopes are
 * checked on what it gathers, not before routing). */
bool api_plugins_operation_at(const struct app *app, const char *method, const char *path);

/* Runs the on-request hooks; true when one stopped the request (resp then
 * holds its OperationOutcome). */
bool api_plugins_on_request(const struct app *app, struct http_request *req, struct http_response *resp);

#endif
