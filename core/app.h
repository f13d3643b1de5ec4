/* app — assembles the gateway: configuration, routes, capability statement,
 * and the dispatch function the HTTP front door calls.
 *
 * Lifetime: app_init once before serving, app_release once after the server
 * has stopped. Threads: app_dispatch runs on many worker threads at once and
 * only reads the app. */
#ifndef CW_APP_H
#define CW_APP_H

#include <stdatomic.h>

#include "capability.h"
#include "config.h"
#include "http.h"
#include "plugin_host.h"
#include "router.h"
#include "outbox.h"
#include "store.h"
#include "upstream.h"
#include "terminology.h"

struct app {
	const struct config *cfg;
	struct router router;
	struct capability cap;
	atomic_bool draining; /* set on SIGTERM: /healthz then answers 503 */
	struct terminology *terms;    /* code systems from cfg->profiles_dir */
	struct plugin_host *plugins;  /* loaded from cfg->plugin_dir (+ cfg->plugin_dir_extra) */
	struct store *store;          /* the embedded store under cfg->data_dir */
	struct upstream *upstream;    /* the upstream FHIR server, or NULL */
	struct outbox *outbox;        /* delivery to the upstream, or NULL */
	char *metadata;               /* the CapabilityStatement as JSON text, built once after registration */
	size_t metadata_len;
	void **owned;                 /* allocations that live as long as the routes */
	size_t nowned;
};

/* Loads code systems and plugins (every plugin's init runs here, once), then
 * registers routes and capabilities. Returns 0, or -1 with a reason in err
 * (plugin refusals: one "plugin refused: FILE: REASON" line each; the caller
 * exits 2). */
int app_init(struct app *app, const struct config *cfg, char *err, size_t errlen);
/* The code systems of cfg: CodeSystems under profiles_dir, the code packs of
 * profiles_dir/codes and codes.cpt_file; sealed. NULL with "FILE: reason"
 * in err. Caller frees with terminology_free. */
struct terminology *app_load_terminology(const struct config *cfg, char *err, size_t errlen);
/* Runs the on-request hooks, then routes. */
void app_dispatch(void *ctx, struct http_request *req, struct http_response *resp);
/* Calls every plugin's fini (reverse order) and frees. After serving only. */
void app_release(struct app *app);
/* Keeps p (malloc'd) until app_release; returns p, or NULL (p freed) on OOM. */
void *app_keep(struct app *app, void *p);

#endif
