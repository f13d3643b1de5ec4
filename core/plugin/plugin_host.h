/* plugin_host — loads plugins, checks them, hands them the host table, and
 * runs their mappers, hooks and operations.
 *
 * Loading (plugin_host_scan): every "*.so" in a directory, in name order. A
 * plugin is refused — recorded with its file and the reason, never loaded
 * further — when its file name is outside ^[a-z0-9_-]{1,64}$, its real path
 * leaves the directory, the file or the directory is writable by group or
 * others, dlopen fails, cw_plugin_entry is missing or returns NULL, the ABI
 * major differs, the descriptor is smaller than ABI 1.0's, the descriptor is
 * malformed (name differs from the file name, bad format or operation names,
 * hooks without a function), or it claims a plugin name, format or operation
 * that an earlier plugin already claimed. plugin_host_start then refuses
 * configuration for plugins that were not found, and calls every accepted
 * plugin's init in load order (a failing init is a refusal). A host with any
 * refusal must not serve (exit 2).
 *
 * Lifetime: new → scan/add_builtin → start → (serve) → stop → free. stop
 * calls fini in reverse init order, once. Plugins are never unloaded while
 * the host lives.
 *
 * Threads: loading, start and stop on one thread before/after serving; the
 * run/ingest/export/invoke functions and lookups are read-only on the host
 * and safe from many threads at once, each with its own struct cw_ctx. */
#ifndef CW_PLUGIN_HOST_H
#define CW_PLUGIN_HOST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "base/arena.h"
#include "fhir/capability.h"
#include "config/config.h"
#include "crosswalk/plugin.h"
#include "http/http.h"
#include "fhir/outcome.h"
#include "fhir/profile.h"
#include "fhir/terminology.h"

/* What calls into one plugin came to since start (shown by GET /plugins and
 * the console). Updated atomically by any thread. */
struct plugin_stats {
	atomic_ulong mapped;   /* documents mapped (ingest or export) and operations answered */
	atomic_ulong warnings; /* warnings those calls added */
	atomic_ulong refused;  /* calls refused for what was sent (a 4xx answer) */
	atomic_ulong failed;   /* calls that failed in the plugin (a 5xx answer) */
};

struct plugin {
	char *file;                   /* path as found: DIR/NAME.so (or a label) */
	char name[65];                /* from the file name ("" when invalid) */
	void *dl;                     /* dlopen handle, NULL for built-ins */
	const struct cw_plugin *desc; /* NULL when refused before it was read */
	char *refused;                /* why it was refused; NULL when accepted */
	bool initialised;             /* init succeeded; fini is owed */
	const cJSON *config;          /* its configuration object (never NULL once accepted) */
	size_t order;                 /* load order */
	struct plugin_stats stats;    /* counted by plugin_host_ingest, _export and _invoke */
};

/* Per-call context behind the plugin ABI's opaque struct cw_ctx. Set up with
 * plugin_host_ctx; one per request (or per call), one thread. */
struct cw_ctx {
	const struct plugin_host *host;
	const struct plugin *plugin; /* the plugin being called (set by the host) */
	struct arena *arena;
	struct outcome *oo;
	int status; /* HTTP status asked for with set_status; 0 = default */
	const struct http_request *req; /* NULL outside HTTP */
	/* Without req: the configured client the call is for (a bulk export's
	 * job), whose auth.clients[].plugins settings the plugins then see;
	 * NULL: nobody's (the global settings). */
	const char *client_id;
	/* Set by the caller (NULL: none): the check a resource must pass once a
	 * plugin made or changed it (the structural validation); false with
	 * the problems in its oo. plugin_host_run_hooks runs it after every
	 * hook that changes the resource, plugin_host_ingest over every
	 * resource the mapper makes; a failure stops the call with the plugin
	 * named (a hook's: status 500, the plugin is at fault; a mapper's: 422,
	 * what was sent maps to no valid resource). */
	bool (*check)(const cJSON *res, struct outcome *oo);
	/* Set by the caller with plugin_host_ctx_profiles (NULL: none): the
	 * profiles a mapper's output is held to (validation.ingest).
	 * plugin_host_ingest validates every resource of the Bundle it is about
	 * to hand back (after the before-store hooks) against the profiles the
	 * resource claims in meta.profile; an error refuses the call with 422,
	 * every issue naming the plugin, the format and the entry; with
	 * profiles_warn the errors are added as warnings and the call goes on.
	 * Warnings are added as warnings either way. */
	const struct profile_set *profiles;
	bool profiles_warn;
};

struct plugin_host;

/* cfg (borrowed, may be NULL for tests) gives per-plugin configuration and
 * the configuration file's name; terms (borrowed, may be NULL) serves code
 * lookups. Both must outlive the host. NULL on OOM. */
struct plugin_host *plugin_host_new(const struct config *cfg, const struct terminology *terms);

/* Loads every *.so in dir. Returns the number of plugins refused (0 when all
 * were accepted); a directory that cannot be used is itself one refusal. */
int plugin_host_scan(struct plugin_host *h, const char *dir);

/* Adds a descriptor linked into the executable (tests, fuzzing) under label,
 * with the same checks as a loaded one. Returns 0, or -1 when refused. */
int plugin_host_add_builtin(struct plugin_host *h, const struct cw_plugin *desc, const char *label);

/* Checks the configuration names and initialises every accepted plugin.
 * Returns the total number of refusals (0 means: ready to serve). */
int plugin_host_start(struct plugin_host *h);

/* Calls fini of every initialised plugin in reverse order; idempotent. */
void plugin_host_stop(struct plugin_host *h);

/* stop, then unload and free everything. NULL is allowed. */
void plugin_host_free(struct plugin_host *h);

size_t plugin_host_count(const struct plugin_host *h);
const struct plugin *plugin_host_at(const struct plugin_host *h, size_t i);
size_t plugin_host_refusals(const struct plugin_host *h);
/* Writes one line per refusal: "crosswalk: plugin refused: FILE: REASON". */
void plugin_host_print_refusals(const struct plugin_host *h, FILE *f);

/* {"plugins":[{name, version, summary, file, formats:[…], hooks:[…],
 * operations:[…]} | {file, name, refused}]} — what `crosswalk plugins
 * --json` prints and GET /plugins answers. NULL on OOM. */
cJSON *plugin_host_describe(const struct plugin_host *h);

/* Adds the accepted plugins' formats and operations to cap. */
int plugin_host_register_capabilities(const struct plugin_host *h, struct capability *cap);

/* Lookups (NULL when absent). */
const struct cw_format *plugin_host_format(const struct plugin_host *h, const char *name,
					   const struct plugin **owner);
const struct cw_operation *plugin_host_operation(const struct plugin_host *h, const char *name,
						 const char *type, const struct plugin **owner);
size_t plugin_host_hook_count(const struct plugin_host *h, enum cw_hook_point point);
/* Calls fn for every operation of every accepted plugin. */
void plugin_host_each_operation(const struct plugin_host *h,
				void (*fn)(void *ud, const struct plugin *p, const struct cw_operation *op), void *ud);

/* What serves host->store_gather (ABI 1.3): fn returns a collection Bundle
 * for a FHIR Parameters resource, or NULL with issues in oo and *status set
 * (core/api/gather.h, gather_parameters). Set once before serving; ud is passed
 * back, with the request the plugin is serving (ctx->req, NULL outside
 * HTTP): what is gathered is for its client. Without one, store_gather answers 501. */
typedef cJSON *plugin_host_gather_fn(void *ud, const struct http_request *req, const cJSON *parameters,
				     struct outcome *oo, int *status);
void plugin_host_set_gather(struct plugin_host *h, plugin_host_gather_fn *fn, void *ud);

/* The host table handed to plugins. */
const struct cw_host *plugin_host_table(const struct plugin_host *h);

/* Prepares ctx for one request or call; arena and oo are the caller's. */
void plugin_host_ctx(struct cw_ctx *ctx, const struct plugin_host *h, struct arena *arena, struct outcome *oo,
		     const struct http_request *req);
/* Holds the mappers of ctx to their claimed profiles in ps (borrowed, may be
 * NULL: none) as mode, the value of validation.ingest, says: "error" (also
 * NULL, the default), "warn", or "off". */
void plugin_host_ctx_profiles(struct cw_ctx *ctx, const struct profile_set *ps, const char *mode);

/* Runs the hooks of args->point in order over *resource (which they may
 * change or replace; the caller owns whatever *resource is afterwards).
 * Returns CW_HOOK_STOP when one stopped (its issues are in ctx->oo and
 * ctx->status may hold its HTTP status), else CW_HOOK_CHANGED when any
 * changed it, else CW_HOOK_CONTINUE. A hook that reports an error issue
 * without stopping stops as well. */
enum cw_hook_result plugin_host_run_hooks(const struct plugin_host *h, struct cw_ctx *ctx,
					  const struct cw_hook_args *args, cJSON **resource);

/* The HTTP status for a failed call: ctx->status when a plugin set one,
 * else one derived from st (INVALID 422, UNSUPPORTED 415, NOT_FOUND 404,
 * TOO_LARGE 413, FORBIDDEN 403, NOMEM 503, otherwise 500). */
int plugin_host_http_status(const struct cw_ctx *ctx, enum cw_status st);

/* native → FHIR through format: maps data, wraps a single resource into a
 * transaction Bundle, then runs the before-store hooks over every entry.
 * Returns 200 with the Bundle in *bundle (caller frees), or an error status
 * with the issues in ctx->oo. method/path describe the request (may be NULL). */
int plugin_host_ingest(const struct plugin_host *h, struct cw_ctx *ctx, const char *format, enum cw_media media,
		       const char *data, size_t len, const char *method, const char *path, cJSON **bundle);

/* FHIR → native through format: input (consumed) is a Bundle or a single
 * resource (wrapped in a collection Bundle); runs the before-export hooks
 * over every entry, then maps. Returns 200 with *out and *out_len in ctx's
 * arena, or an error status with the issues in ctx->oo. */
int plugin_host_export(const struct plugin_host *h, struct cw_ctx *ctx, const char *format, enum cw_media media,
		       cJSON *input, const char *method, const char *path, char **out, size_t *out_len);

/* The hooks an export runs over the Bundle it maps, as plugin_host_export
 * runs them: the export-bundle hooks over *bundle (which they may replace
 * with another Bundle; the caller owns whatever *bundle is afterwards), then
 * the before-export hooks over each entry. format is the export's format
 * (NULL: FHIR itself, a bulk export's files). Returns 200, with *changed
 * (may be NULL) false when no hook can have changed anything, or the error
 * status with the issues in ctx->oo (a hook refused). */
int plugin_host_export_hooks(const struct plugin_host *h, struct cw_ctx *ctx, const char *format, const char *method,
			     const char *path, cJSON **bundle, bool *changed);

/* Invokes an operation. Returns 200 with *output (caller frees; NULL allowed)
 * or an error status with the issues in ctx->oo. */
int plugin_host_invoke(const struct plugin_host *h, struct cw_ctx *ctx, const struct cw_operation *op,
		       const struct plugin *owner, const char *type, const cJSON *input, cJSON **output);

/* The id rule of an initialised plugin whose descriptor has the ABI 1.3
 * upgrade members and an upgrade function; 0 otherwise (nothing to run). */
uint32_t plugin_host_id_rule(const struct plugin *p);
/* Runs p's upgrade over resource (see struct cw_plugin): CW_OK with *out
 * and *moved (each may stay NULL; the caller frees them), or the failure
 * with its issues in ctx->oo. Only for a plugin with an id rule. */
enum cw_status plugin_host_upgrade(struct cw_ctx *ctx, const struct plugin *p, const cJSON *resource, cJSON **out,
				   cJSON **moved);

/* ^[a-z0-9_-]{1,64}$ */
bool plugin_host_valid_name(const char *s);

const char *plugin_host_point_name(enum cw_hook_point p);
const char *plugin_host_media_name(enum cw_media m);
/* The media of a native document nothing else names: by the file name's
 * extension (.json, .csv, any case) when name has one of them, else by its
 * first byte after white space ('{' or '[': JSON, anything else CSV). name
 * may be NULL; data need not be terminated. */
enum cw_media plugin_host_guess_media(const char *name, const char *data, size_t len);

#endif
