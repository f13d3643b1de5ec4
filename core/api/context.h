/* context — struct app, the context every endpoint handler receives: the
 * configuration, the routes, the capability statement and the parts a
 * request may reach (terminology, plugins, store, upstream, outbox).
 *
 * It lives here, below core/app.h, so that the endpoint groups in core/api/
 * can read it without including the assembly that registers them (app.c
 * includes core/api/, never the other way round). app_init fills it,
 * app_release frees it (core/app.h).
 *
 * Threads: filled once before serving; handlers on many worker threads only
 * read it (draining is atomic). app_keep is for registration time only. */
#ifndef CW_API_CONTEXT_H
#define CW_API_CONTEXT_H

#include <stdatomic.h>
#include <stddef.h>

#include "auth/auth.h"
#include "config/config.h"
#include "fhir/capability.h"
#include "fhir/seclabel.h"
#include "fhir/terminology.h"
#include "http/http.h"
#include "http/router.h"
#include "plugin/plugin_host.h"
#include "store/store.h"
#include "upstream/outbox.h"
#include "upstream/upstream.h"

struct bulk;
struct audit;
struct series;
struct profile_set;
struct consent_wording;

struct app {
	const struct config *cfg;
	struct router router;
	struct capability cap;
	atomic_bool draining; /* set on SIGTERM: /healthz then answers 503 */
	struct terminology *terms;    /* code systems from cfg->profiles_dir */
	struct seclabel_rules *labels; /* security-label rules (api/privacy.h), never NULL once initialised */
	char *redisclosure;            /* the 42 CFR 2.32 notice (api/egress.h), kept in owned */
	/* the words explaining a permitting Consent's scope (api/egress.h), kept in owned */
	struct consent_wording *consent_words;
	struct plugin_host *plugins;  /* loaded from cfg->plugin_dir (+ cfg->plugin_dir_extra) */
	struct store *store;          /* the embedded store under cfg->data_dir */
	struct upstream *upstream;    /* the upstream FHIR server, or NULL */
	struct outbox *outbox;        /* delivery to the upstream, or NULL */
	char *metadata;               /* the CapabilityStatement as JSON text, built once after registration */
	size_t metadata_len;
	void **owned;                 /* allocations that live as long as the routes */
	size_t nowned;
	/* bulk export jobs (api/bulk.h) under cfg->data_dir/bulk */
	struct bulk *bulk;

	/* the console's time series of the counters (api/api_console.h) */
	struct series *series;

	/* identity and access (cfg->auth); always set, maybe disabled */
	struct auth *auth;

	/* the access record (api/audit.h); always set, maybe disabled */
	struct audit *audit;

	/* conformance resources (fhir/profile.h), sealed; never NULL once initialised */
	struct profile_set *profiles;
};

/* Keeps p (malloc'd) until app_release; returns p, or NULL (p freed) on OOM. */
void *app_keep(struct app *app, void *p);

#endif
