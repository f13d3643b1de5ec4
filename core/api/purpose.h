/* purpose — what a client's answers are for, applied to what it gets
 * (docs/security.md, "Purpose").
 *
 * Each configured client (auth.clients[].purpose) and each external issuer
 * (auth.issuers[].purpose, or the token's claim named by purpose_claim) has
 * a purpose: treatment, operations, billing or recovery. A billing client
 * gets the minimum-necessary view of the billing work (docs/billing.md,
 * "Never included") on every answer: REST reads and vreads, searches with
 * their includes, history, batch answers, operation answers, the answers
 * passed through from the upstream, GET /export/{format} (the gathered
 * Bundle before the plugin maps it) and bulk export files. The other
 * purposes see what their scopes allow; a recovery client's diagnosis
 * display is its per-client plugin setting (plugin_host, the person_first
 * plugin). The view is one table in purpose.c.
 *
 * Where it applies: app_dispatch marks the request (purpose_mark) with its
 * client and purpose, which stay on the request for a deferred answer;
 * app_finish calls purpose_answer over every answer before it is sent,
 * api_fhir_send writes such a client's answers as JSON first (the finish
 * step writes XML after the view), the export routes call purpose_filter on
 * their input, and bulk export records the purpose in the job
 * (purpose_note_job) and filters each resource (purpose_filter_text).
 *
 * Threads: any; nothing here keeps state. */
#ifndef CW_API_PURPOSE_H
#define CW_API_PURPOSE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "auth/auth.h"
#include "http/http.h"

/* Records who's client id (a configured client only) and purpose on req. */
void purpose_mark(struct http_request *req, const struct auth_principal *who);

/* True when answers to req are filtered (a billing client). */
bool purpose_filters(const struct http_request *req);

/* Applies the view of purpose (enum auth_purpose) to res in place: a
 * resource, its contained resources, and each entry's resource of a Bundle
 * (nested Bundles too). Nothing changes for a purpose without a view. */
void purpose_filter(int purpose, cJSON *res);

/* The view of req's purpose over resp when it is a FHIR JSON answer
 * (application/fhir+json); other answers are left as they are. An answer
 * that cannot be read back or written again becomes a 500: nothing leaves
 * unfiltered. */
void purpose_answer(const struct http_request *req, struct http_response *resp);

/* Bulk export: records req's purpose in the job's description desc
 * ("purpose"), and filters one exported resource by the purpose recorded
 * in the job's record rec: 0 with *text and *len left as they are (nothing to
 * remove) or pointing to *owned (malloc'd, the caller frees it); -1 when the
 * resource cannot be read or written (out of memory): it is then not
 * exported. */
void purpose_note_job(const struct http_request *req, cJSON *desc);
int purpose_filter_text(const cJSON *rec, const char **text, size_t *len, char **owned);
/* The same for a parsed resource res, changed in place; and whether the
 * purpose recorded in rec has a view at all. A configured client's id is
 * recorded too ("configured_client"): its own plugin settings apply to the
 * job's export hooks (bulk.h). */
void purpose_filter_job(const cJSON *rec, cJSON *res);
bool purpose_filters_job(const cJSON *rec);

#endif
