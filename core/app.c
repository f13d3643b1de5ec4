#include "app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_bulk.h"
#include "api/api_console.h"
#include "api/api_auth.h"
#include "api/audit.h"
#include "api/audit_spool.h"
#include "api/api_fhir.h"
#include "api/api_outbox.h"
#include "api/api_plugins.h"
#include "api/api_rest.h"
#include "api/api_system.h"
#include "api/api_terminology.h"
#include "api/bulk.h"
#include "api/egress.h"
#include "api/purpose.h"
#include "base/fjson.h"
#include "base/log.h"
#include "base/series.h"
#include "fhir/profile.h"
#include "fhir/seclabel.h"
#include "migrate.h"

static int load_plugins(struct app *app, const struct config *cfg, char *err, size_t errlen)
{
	if (!(app->terms = app_load_terminology(cfg, err, errlen)))
		return -1;
	struct terminology_system_info si;
	for (size_t i = 0; terminology_system_at(app->terms, i, &si); i++) {
		char count[32];
		snprintf(count, sizeof count, "%zu", si.count);
		if (si.pack)
			log_event(LOG_INFO, "codes", "code pack loaded", "system", si.url, "version", si.version, "codes",
				  count, "file", si.source, (const char *)NULL);
	}
	app->plugins = plugin_host_new(cfg, app->terms);
	if (!app->plugins) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	plugin_host_scan(app->plugins, cfg->plugin_dir);
	if (cfg->plugin_dir_extra)
		plugin_host_scan(app->plugins, cfg->plugin_dir_extra);
	if (plugin_host_start(app->plugins) == 0)
		return 0;
	size_t pos = 0;
	err[0] = '\0';
	for (size_t i = 0; i < plugin_host_count(app->plugins) && pos + 1 < errlen; i++) {
		const struct plugin *p = plugin_host_at(app->plugins, i);
		if (p->refused)
			pos += (size_t)snprintf(err + pos, errlen - pos, "%splugin refused: %s: %s", pos ? "\ncrosswalk: " : "",
						p->file, p->refused);
	}
	return -1;
}

/* The security-label rules of profiles_dir/security/labels.tsv (none
 * without a profiles directory or that file). */
static int load_labels(struct app *app, const struct config *cfg, char *err, size_t errlen)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/security/labels.tsv", cfg->profiles_dir ? cfg->profiles_dir : "/nonexistent");
	if (!(app->labels = seclabel_load(path, err, errlen)))
		return -1;
	char count[32];
	snprintf(count, sizeof count, "%zu", seclabel_rule_count(app->labels));
	log_event(LOG_INFO, "labels", "security-label rules loaded", "rules", count, "file", path, (const char *)NULL);
	return 0;
}

int app_load_privacy(struct app *app, const struct config *cfg, char *err, size_t errlen)
{
	return load_labels(app, cfg, err, errlen) != 0 || egress_load_notice(app, err, errlen) != 0 ||
			       egress_load_wording(app, err, errlen) != 0
		       ? -1
		       : 0;
}

/* Every delivery attempt of the outbox is on the access record. */
/* auth_replay_fn over the store's shared replay cache. */
static int replay_in_store(void *ctx, const char *iss, const char *jti, long long exp, long long now)
{
	switch (store_replay_claim(ctx, iss, jti, exp, now, NULL)) {
	case STORE_OK:
		return 1;
	case STORE_CONFLICT:
		return 0;
	default:
		return -1;
	}
}

static void audit_outbox_attempt(void *ctx, const struct outbox_item *it, int http_status, const char *error)
{
	audit_delivery(ctx, it->type, it->id, it->version, it->deleted, http_status, error);
}

/* The migration's writes of type are delivered upstream by the same rule
 * as every other stored write (config_delivers). */
static bool forwarded(void *ud, const char *type)
{
	return config_delivers(ud, type);
}

int app_init(struct app *app, const struct config *cfg, char *err, size_t errlen)
{
	memset(app, 0, sizeof *app);
	app->cfg = cfg;
	capability_init(&app->cap, CW_VERSION);
	capability_add_format(&app->cap, "application/fhir+json");
	if (load_plugins(app, cfg, err, errlen) != 0)
		return -1;
	if (!(app->profiles = app_load_profiles(cfg, app->terms, err, errlen)))
		return -1;
	if (app_load_privacy(app, cfg, err, errlen) != 0)
		return -1;
	if (plugin_host_register_capabilities(app->plugins, &app->cap) != 0) {
		snprintf(err, errlen, "too many plugin operations or formats for the CapabilityStatement");
		return -1;
	}
	if (cfg->store.backend && strcmp(cfg->store.backend, "postgresql") == 0) {
		struct store_pg_options po = {
			.statement_timeout_ms = (int)cfg->store.pg_statement_timeout_ms,
			.lease_ms = (int64_t)cfg->store.pg_lease_ms,
			.cache_bytes = (size_t)cfg->limits.read_cache_bytes,
		};
		if (store_open_pg(cfg->store.pg_conninfo, &po, &app->store, err, errlen) != 0)
			return -1;
	} else if (store_open_sqlite(cfg->data_dir, 0, (size_t)cfg->limits.read_cache_bytes, &app->store, err,
				     errlen) != 0) {
		return -1;
	}
	/* before anything is served or delivered: ids of an older plugin rule */
	if (migrate_plugin_ids(app->store, app->plugins, forwarded, (void *)cfg, NULL, err, errlen) != 0)
		return -1;
	/* the access records commands spooled while this store was held */
	if (audit_spool_import(app->store, cfg->data_dir, err, errlen) < 0)
		return -1;
	char bulk_dir[4200];
	snprintf(bulk_dir, sizeof bulk_dir, "%s/bulk", cfg->data_dir);
	if (!(app->bulk = bulk_start(app->store, cfg, bulk_dir, err, errlen)))
		return -1;
	bulk_set_wording(app->bulk, app->consent_words);
	bulk_set_plugins(app->bulk, app->plugins);
	if (!(app->auth = auth_new(cfg, err, errlen)))
		return -1;
	if (store_replay_shared(app->store)) /* several gateways: one replay cache */
		auth_share_replay(app->auth, replay_in_store, app->store);
	if (!(app->audit = audit_start(app->store, cfg, err, errlen)))
		return -1;
	if (cfg->upstream.base_url) {
		app->upstream = upstream_new(cfg, err, errlen);
		if (!app->upstream)
			return -1;
		app->outbox = outbox_start(app->store, app->upstream, cfg, app->plugins, egress_outbox_filter, app);
		if (!app->outbox) {
			snprintf(err, errlen, "cannot start the outbox worker");
			return -1;
		}
	}
	outbox_on_attempt(app->outbox, audit_outbox_attempt, app->audit);
	if (api_system_register(app) != 0 || api_auth_register(app) != 0 || api_fhir_register(app) != 0 ||
	    api_plugins_register(app) != 0 || api_terminology_register(app) != 0 || api_rest_register(app) != 0 ||
	    api_outbox_register(app) != 0 || api_bulk_register(app) != 0 || api_console_register(app) != 0) {
		snprintf(err, errlen, "cannot register the endpoints (routing table full?)");
		return -1;
	}
	/* everything is registered: the CapabilityStatement no longer changes */
	cJSON *cs = capability_build(&app->cap);
	app->metadata = cs ? fjson_print(cs, false, &app->metadata_len) : NULL;
	cJSON_Delete(cs);
	if (!app->metadata) {
		snprintf(err, errlen, "out of memory building the CapabilityStatement");
		return -1;
	}
	return 0;
}

void app_dispatch(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	audit_request_begin(app->audit, req);
	if (api_fhir_negotiate(req, resp))
		return;
	struct auth_principal who;
	if (!auth_authenticate(app->auth, req, resp, &who))
		return;
	audit_request_who(req, &who);
	/* a plugin operation's scopes are checked on what it gathers */
	if (audit_guard(app->auth, &who, req, resp) ||
	    (!api_plugins_operation_at(app, req->method, req->path) && !auth_authorize(app->auth, &who, req, resp)))
		return;
	/* handlers decide on it while they run; a deferred answer decides nothing more */
	req->principal = &who;
	purpose_mark(req, &who);
	if (!(plugin_host_hook_count(app->plugins, CW_HOOK_ON_REQUEST) && api_plugins_on_request(app, req, resp)))
		router_dispatch(&app->router, req, resp);
	req->principal = NULL;
}

void app_finish(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	/* the client's purpose shapes the answer first (api/purpose.h) */
	purpose_answer(req, resp);
	/* recorded from the answer as the handler made it (JSON), then written
	 * in the asked format; a durable record holds the answer until it is
	 * on disk */
	audit_request_finish(app->audit, req, resp);
	api_fhir_finish(req, resp);
}

void app_refused(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	audit_request_refused(app->audit, req, resp);
}

void app_stop_calls(struct app *app)
{
	upstream_shutdown(app->upstream);
	/* batched access records join the queue, then every write waiting in
	 * it is committed and answered */
	audit_drain(app->audit);
	store_drain(app->store);
}

void app_release(struct app *app)
{
	/* the sampler reads the outbox's gauges: stop it before the outbox goes */
	series_stop(app->series);
	/* the delivery worker runs the plugins' hooks: stop it before they go */
	outbox_stop(app->outbox);
	bulk_stop(app->bulk);
	plugin_host_free(app->plugins);
	free(app->metadata);
	upstream_free(app->upstream);
	auth_free(app->auth);
	audit_stop(app->audit);
	if (app->store)
		store_close(app->store);
	profile_set_free(app->profiles);
	terminology_free(app->terms);
	seclabel_free(app->labels);
	for (size_t i = 0; i < app->nowned; i++)
		free(app->owned[i]);
	free(app->owned);
	memset(app, 0, sizeof *app);
}
