/* api_rest — the FHIR RESTful API over the store (core/store/store.h).
 *
 * Interactions (FHIR R4 http.html): read, vread, search (GET and POST
 * _search), create (with If-None-Exist), update (PUT, update-as-create with a
 * client id, conditional update), delete (then 410 on read), history
 * (instance, type, system), batch and transaction (POST /fhir with a Bundle;
 * a transaction is atomic in the store and resolves urn:uuid references).
 * Types routed pass-through go to the upstream server instead: each request
 * as it is; a batch or transaction of only such types as one request; the
 * pass-through entries of a mixed batch together as one batch, their answers
 * put back in place. A transaction mixing them with local types is refused
 * (400): the two servers cannot commit it atomically.
 * Headers: ETag W/"n", If-Match (412), If-None-Match (304), Location,
 * Last-Modified, Prefer: return=minimal|representation|OperationOutcome.
 * Every resource written passes the structural validation (400 otherwise)
 * and the plugins' before-store hooks (which may change it or stop it).
 *
 * Threads: handlers run on worker threads; the store gives each thread its
 * own connection, so a transaction stays on the thread that runs it. */
#ifndef CW_API_REST_H
#define CW_API_REST_H

#include <cjson/cJSON.h>

#include "api/context.h"
#include "fhir/outcome.h"

int api_rest_register(struct app *app);

/* Stores a batch or transaction Bundle made by ingest (not consumed) and
 * returns the response Bundle, or NULL with issues in oo and *status set.
 * The before-store hooks already ran over its entries; with an upstream
 * every write is also recorded for delivery, pass-through types included
 * (they are stored, then delivered by the outbox, not sent at once). */
cJSON *api_rest_bundle(const struct app *app, const struct http_request *req, const cJSON *bundle, struct outcome *oo,
		       int *status);
/* The same for the document src describes: a transaction's Provenance
 * names it as its source entity (api/provenance.h). */
struct provenance_source;
cJSON *api_rest_bundle_from(const struct app *app, const struct http_request *req, const cJSON *bundle,
			    const struct provenance_source *src, struct outcome *oo, int *status);

/* When pushes must wait (the outbox is over its high-water mark): answers
 * 503 with Retry-After and returns true. */
bool api_rest_outbox_full(const struct app *app, struct http_response *resp);

#endif
