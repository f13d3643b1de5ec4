/* app — assembles the gateway: configuration, routes, capability statement,
 * and the dispatch function the HTTP front door calls. struct app, the context
 * the endpoint handlers receive, and app_keep are in core/api/context.h.
 *
 * Lifetime: app_init once before serving, app_release once after the server
 * has stopped. Threads: app_dispatch runs on many worker threads at once and
 * only reads the app. */
#ifndef CW_APP_H
#define CW_APP_H

#include "api/context.h"

/* Loads code systems and plugins (every plugin's init runs here, once), then
 * registers routes and capabilities. Returns 0, or -1 with a reason in err
 * (plugin refusals: one "plugin refused: FILE: REASON" line each; the caller
 * exits 2). */
int app_init(struct app *app, const struct config *cfg, char *err, size_t errlen);
/* The code systems of cfg: CodeSystems under profiles_dir, the code packs of
 * profiles_dir/codes and codes.cpt_file; sealed. NULL with "FILE: reason"
 * in err. Caller frees with terminology_free. */
struct terminology *app_load_terminology(const struct config *cfg, char *err, size_t errlen);
/* The conformance resources of cfg (core/fhir/profile.h): profiles_dir and
 * the packages under validation.packages_dir, sealed; every profile
 * validation.profiles names must be among them. terms (borrowed) must
 * outlive the set. NULL with "FILE: reason" in err. Caller frees with
 * profile_set_free. */
struct profile_set *app_load_profiles(const struct config *cfg, const struct terminology *terms, char *err,
				      size_t errlen);
/* The security-label rules (app->labels) and the redisclosure notice
 * (app->redisclosure) of cfg, as app_init loads them: for a command that
 * discloses without app_init (crosswalk billing). 0, or -1 with the reason
 * in err. */
int app_load_privacy(struct app *app, const struct config *cfg, char *err, size_t errlen);
/* Runs the on-request hooks, then routes. */
void app_dispatch(void *ctx, struct http_request *req, struct http_response *resp);
/* Over every answer, deferred ones too: the negotiated format. */
void app_finish(void *ctx, struct http_request *req, struct http_response *resp);
/* Over the answer to a request the HTTP layer refused before dispatch
 * (http_dispatch.refused): its access record. */
void app_refused(void *ctx, struct http_request *req, struct http_response *resp);
/* Ends the calls to the upstream still in flight (their requests answer at
 * once) and refuses new ones, and commits the writes still queued in the
 * store (their requests answer; new ones are refused): before the HTTP
 * server stops. */
void app_stop_calls(struct app *app);
/* Calls every plugin's fini (reverse order) and frees. After serving only. */
void app_release(struct app *app);

#endif
