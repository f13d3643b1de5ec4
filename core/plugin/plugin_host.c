/* The plugin host. Security model: the plugin directory is trusted only when
 * nobody but its owner can write to it or to the files in it, and a plugin
 * is opened by the real path that was checked; no code of a plugin runs
 * (dlopen runs constructors) before its name, path and permissions passed. */
#include "plugin/plugin_host.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "fhir/fhir_helpers.h"
#include "base/fjson.h"
#include "base/log.h"
#include "fhir/model_query.h"
#include "fhir/profile.h"

#define MAX_PLUGINS 256
#define MAX_ITEMS 64 /* formats, hooks or operations per plugin */

struct hook_ref {
	const struct plugin *plugin;
	const struct cw_hook *hook;
	size_t seq; /* load order, then position: ties in order keep it */
};

struct plugin_host {
	struct plugin *p[MAX_PLUGINS];
	size_t n;
	struct hook_ref *hooks[CW_HOOK_POINT_COUNT];
	size_t nhooks[CW_HOOK_POINT_COUNT];
	const cJSON *config_plugins; /* borrowed from the configuration */
	const char *config_source;
	cJSON *empty_config;
	const struct terminology *terms;
	struct fjson_limits limits;
	char dirs[1024]; /* directories scanned, for messages */
	char **owned;    /* strings made for capability registration */
	size_t nowned;
	bool started, stopped;
	plugin_host_gather_fn *gather; /* serves store_gather; NULL: no store */
	void *gather_ud;
	struct cw_host table;
	const cJSON *clients; /* auth.clients, borrowed from the configuration */
	struct client_config *client_cfg;
	size_t nclient_cfg;
};

/* A client's settings of one plugin (auth.clients[].plugins.NAME) merged
 * over the plugin's own: what host->config gives on that client's requests. */
struct client_config {
	const char *client_id; /* borrowed from the configuration */
	const struct plugin *plugin;
	cJSON *merged; /* owned */
};

/* ------------------------------------------------------------ helpers */

bool plugin_host_valid_name(const char *s)
{
	size_t n = 0;
	for (; s && s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return n >= 1 && n <= 64;
}

const char *plugin_host_point_name(enum cw_hook_point p)
{
	static const char *const names[] = {"on-request", "before-store", "before-upstream", "after-response",
					    "before-export", "export-bundle"};
	return (unsigned)p < CW_HOOK_POINT_COUNT ? names[p] : "unknown";
}

enum cw_media plugin_host_guess_media(const char *name, const char *data, size_t len)
{
	const char *dot = name ? strrchr(name, '.') : NULL;
	if (dot && !strchr(dot, '/')) {
		if (strcasecmp(dot, ".json") == 0)
			return CW_MEDIA_JSON;
		if (strcasecmp(dot, ".csv") == 0)
			return CW_MEDIA_CSV;
	}
	size_t i = 0;
	while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
		i++;
	return i < len && (data[i] == '{' || data[i] == '[') ? CW_MEDIA_JSON : CW_MEDIA_CSV;
}

const char *plugin_host_media_name(enum cw_media m)
{
	switch (m) {
	case CW_MEDIA_JSON:
		return "application/json";
	case CW_MEDIA_CSV:
		return "text/csv";
	}
	return "unknown";
}

/* IssueType codes of FHIR R4, as static strings for struct outcome. */
static const char *issue_code(const char *code)
{
	static const char *const codes[] = {
		"invalid", "structure", "required", "value", "invariant", "security", "login", "unknown",
		"expired", "forbidden", "suppressed", "processing", "not-supported", "duplicate",
		"multiple-matches", "not-found", "deleted", "too-long", "code-invalid", "extension",
		"too-costly", "business-rule", "conflict", "transient", "lock-error", "no-store", "exception",
		"timeout", "incomplete", "throttled", "informational"};
	for (size_t i = 0; code && i < sizeof codes / sizeof codes[0]; i++)
		if (strcmp(code, codes[i]) == 0)
			return codes[i];
	return "processing";
}

static const char *plugin_label(const struct cw_ctx *ctx)
{
	return ctx && ctx->plugin ? ctx->plugin->name : "core";
}

/* ----------------------------------------------------- the host table */

static void host_log(struct cw_ctx *ctx, enum cw_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void host_log(struct cw_ctx *ctx, enum cw_log_level level, const char *fmt, ...)
{
	enum log_level l = level <= CW_LOG_DEBUG ? LOG_DEBUG
			   : level == CW_LOG_INFO ? LOG_INFO
			   : level == CW_LOG_WARN ? LOG_WARN
						  : LOG_ERROR;
	if (!log_enabled(l))
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt ? fmt : "", ap);
	va_end(ap);
	log_event(l, "plugin", msg, "plugin", plugin_label(ctx), "request_id",
		  ctx && ctx->req ? ctx->req->request_id : NULL, (const char *)NULL);
}

static void *host_alloc(struct cw_ctx *ctx, size_t size)
{
	return ctx && ctx->arena ? arena_alloc(ctx->arena, size) : NULL;
}

static char *host_copy_string(struct cw_ctx *ctx, const char *s)
{
	return ctx && ctx->arena ? arena_strdup(ctx->arena, s) : NULL;
}

static void add_issue(struct cw_ctx *ctx, enum cw_severity sev, const char *code, const char *location,
		      const char *msg)
{
	if (!ctx || !ctx->oo)
		return;
	enum outcome_severity s = sev == CW_SEV_FATAL	    ? OUTCOME_FATAL
				  : sev == CW_SEV_WARNING     ? OUTCOME_WARNING
				  : sev == CW_SEV_INFORMATION ? OUTCOME_INFORMATION
							      : OUTCOME_ERROR;
	outcome_add(ctx->oo, s, issue_code(code), location, "%s: %s", plugin_label(ctx), msg);
}

static void host_issue(struct cw_ctx *ctx, enum cw_severity sev, const char *code, const char *location,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void host_issue(struct cw_ctx *ctx, enum cw_severity sev, const char *code, const char *location,
		       const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt ? fmt : "", ap);
	va_end(ap);
	add_issue(ctx, sev, code, location, msg);
}

static void host_set_status(struct cw_ctx *ctx, int status)
{
	if (ctx && status >= 400 && status <= 599)
		ctx->status = status;
}

/* The settings of plugin p for client_id, merged; NULL when the client has none. */
static const cJSON *client_settings(const struct plugin_host *h, const struct plugin *p, const char *client_id)
{
	for (size_t i = 0; client_id && i < h->nclient_cfg; i++)
		if (h->client_cfg[i].plugin == p && !strcmp(h->client_cfg[i].client_id, client_id))
			return h->client_cfg[i].merged;
	return NULL;
}

static const cJSON *host_config(struct cw_ctx *ctx)
{
	const char *client = !ctx ? NULL : ctx->req ? ctx->req->client_id : ctx->client_id;
	const cJSON *own = ctx && ctx->host && ctx->plugin ? client_settings(ctx->host, ctx->plugin, client) : NULL;
	if (own)
		return own;
	if (ctx && ctx->plugin && ctx->plugin->config)
		return ctx->plugin->config;
	return ctx && ctx->host ? ctx->host->empty_config : NULL;
}

static const char *host_config_string(struct cw_ctx *ctx, const char *key, const char *dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(host_config(ctx), key);
	return cJSON_IsString(v) ? v->valuestring : dflt;
}

static const char *host_request_header(struct cw_ctx *ctx, const char *name)
{
	return ctx && ctx->req && name ? http_header(ctx->req, name) : NULL;
}

static const char *host_request_query(struct cw_ctx *ctx, const char *name)
{
	return ctx && ctx->req && name ? http_query(ctx->req, name) : NULL;
}

static int host_model_choice_types(struct cw_ctx *ctx, const char *path, const char **types, size_t max)
{
	(void)ctx;
	return model_query_choice_types(path, types, max);
}

static enum cw_status host_model_cardinality(struct cw_ctx *ctx, const char *path, uint32_t *min, uint32_t *max)
{
	(void)ctx;
	return model_query_cardinality(path, min, max) == 0 ? CW_OK : CW_NOT_FOUND;
}

static bool host_model_type_known(struct cw_ctx *ctx, const char *type)
{
	(void)ctx;
	return model_query_type_known(type);
}

static const char *host_code_display(struct cw_ctx *ctx, const char *system, const char *code)
{
	return ctx && ctx->host ? terminology_lookup(ctx->host->terms, system, code) : NULL;
}

static bool host_code_system_known(struct cw_ctx *ctx, const char *system)
{
	return ctx && ctx->host && terminology_system_known(ctx->host->terms, system);
}

static unsigned host_code_flags(struct cw_ctx *ctx, const char *system, const char *code)
{
	struct terminology_concept c;
	if (!ctx || !ctx->host || !system || !code ||
	    terminology_find(ctx->host->terms, system, code, &c) != TERMINOLOGY_FOUND)
		return 0;
	return CW_CODE_KNOWN | (c.billable_known ? CW_CODE_BILLABLE_KNOWN : 0u) | (c.billable ? CW_CODE_BILLABLE : 0u) |
	       (c.inactive ? CW_CODE_INACTIVE : 0u) | (c.modifier ? CW_CODE_MODIFIER : 0u);
}

static cJSON *built(struct cw_ctx *ctx, cJSON *made, const char *why)
{
	if (!made)
		add_issue(ctx, CW_SEV_ERROR, strstr(why, "memory") ? "exception" : "value", NULL, why);
	return made;
}

static cJSON *host_make_reference(struct cw_ctx *ctx, const char *type, const char *id, const char *display)
{
	char why[160] = "out of memory";
	if (type && !model_query_type_known(type)) {
		add_issue(ctx, CW_SEV_ERROR, "value", NULL, "reference: not a FHIR R4 resource type");
		return NULL;
	}
	return built(ctx, fhir_reference(type, id, display, why, sizeof why), why);
}

static cJSON *host_make_coding(struct cw_ctx *ctx, const char *system, const char *code, const char *display)
{
	char why[160] = "out of memory";
	if (!display)
		display = host_code_display(ctx, system, code);
	return built(ctx, fhir_coding(system, code, display, why, sizeof why), why);
}

static cJSON *host_make_identifier(struct cw_ctx *ctx, const char *system, const char *value)
{
	char why[160] = "out of memory";
	return built(ctx, fhir_identifier(system, value, why, sizeof why), why);
}

static enum cw_status host_make_id(struct cw_ctx *ctx, const char *ns, const char *key, char out[CW_ID_SIZE])
{
	(void)ctx;
	if (fhir_make_id(ns, key, out) != 0) {
		out[0] = '\0';
		return CW_INVALID;
	}
	return CW_OK;
}

static enum cw_status host_iso_date(struct cw_ctx *ctx, const char *text, char out[CW_DATE_SIZE])
{
	(void)ctx;
	if (fhir_iso_date(text, out) != 0) {
		out[0] = '\0';
		return CW_INVALID;
	}
	return CW_OK;
}

static cJSON *host_parse_json(struct cw_ctx *ctx, const char *data, size_t len)
{
	if (!ctx || !ctx->host || !data)
		return NULL;
	struct fjson_error err;
	memset(&err, 0, sizeof err);
	cJSON *t = fjson_parse(data, len, &ctx->host->limits, &err);
	if (!t) {
		char where[64];
		snprintf(where, sizeof where, "line %d, column %d", err.line, err.column);
		add_issue(ctx, CW_SEV_ERROR, err.status == 413 ? "too-costly" : "structure", where, err.message);
		/* Input the strict reader refuses is malformed (400) or too
		 * costly (413), not merely unmappable (422). */
		if (!ctx->status)
			ctx->status = err.status;
	}
	return t;
}

static char *host_print_json(struct cw_ctx *ctx, const cJSON *tree, size_t *len)
{
	if (!ctx || !ctx->arena || !tree)
		return NULL;
	size_t n = 0;
	char *text = fjson_print(tree, false, &n);
	if (!text)
		return NULL;
	char *copy = arena_strndup(ctx->arena, text, n);
	free(text);
	if (copy && len)
		*len = n;
	return copy;
}

static cJSON *host_store_gather(struct cw_ctx *ctx, const cJSON *parameters)
{
	if (!ctx || !ctx->host || !ctx->oo)
		return NULL;
	const struct plugin_host *h = ctx->host;
	if (!h->gather) {
		add_issue(ctx, CW_SEV_ERROR, "not-supported", NULL, "this gateway has no store to gather from");
		ctx->status = 501;
		return NULL;
	}
	int status = 500;
	cJSON *b = h->gather(h->gather_ud, ctx->req, parameters, ctx->oo, &status);
	if (!b)
		ctx->status = status;
	return b;
}

void plugin_host_set_gather(struct plugin_host *h, plugin_host_gather_fn *fn, void *ud)
{
	h->gather = fn;
	h->gather_ud = ud;
}

static void fill_table(struct cw_host *t)
{
	*t = (struct cw_host){
		.abi_major = CW_PLUGIN_ABI_MAJOR,
		.struct_size = (uint32_t)sizeof(struct cw_host),
		.core_version = CW_VERSION,
		.log = host_log,
		.alloc = host_alloc,
		.copy_string = host_copy_string,
		.issue = host_issue,
		.set_status = host_set_status,
		.config = host_config,
		.config_string = host_config_string,
		.request_header = host_request_header,
		.request_query = host_request_query,
		.model_choice_types = host_model_choice_types,
		.model_cardinality = host_model_cardinality,
		.model_type_known = host_model_type_known,
		.code_display = host_code_display,
		.code_system_known = host_code_system_known,
		.make_reference = host_make_reference,
		.make_coding = host_make_coding,
		.make_identifier = host_make_identifier,
		.make_id = host_make_id,
		.iso_date = host_iso_date,
		.parse_json = host_parse_json,
		.print_json = host_print_json,
		.code_flags = host_code_flags,
		.store_gather = host_store_gather,
	};
}

/* ------------------------------------------------------------ loading */

struct plugin_host *plugin_host_new(const struct config *cfg, const struct terminology *terms)
{
	struct plugin_host *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->empty_config = cJSON_CreateObject();
	if (!h->empty_config) {
		free(h);
		return NULL;
	}
	h->terms = terms;
	config_json_limits(cfg, &h->limits);
	if (cfg) {
		h->config_plugins = cfg->plugins;
		h->config_source = cfg->source;
		h->clients = cfg->auth.clients;
	}
	fill_table(&h->table);
	return h;
}

static struct plugin *new_entry(struct plugin_host *h, const char *file, const char *name)
{
	if (h->n >= MAX_PLUGINS)
		return NULL;
	struct plugin *p = calloc(1, sizeof *p);
	if (!p || !(p->file = strdup(file))) {
		free(p);
		return NULL;
	}
	snprintf(p->name, sizeof p->name, "%s", name && plugin_host_valid_name(name) ? name : "");
	p->order = h->n;
	h->p[h->n++] = p;
	return p;
}

static int refuse(struct plugin_host *h, struct plugin *p, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int refuse(struct plugin_host *h, struct plugin *p, const char *fmt, ...)
{
	(void)h;
	char why[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	free(p->refused);
	p->refused = strdup(why);
	if (!p->refused)
		p->refused = strdup("out of memory");
	if (p->dl && !p->initialised) {
		dlclose(p->dl);
		p->dl = NULL;
	}
	p->desc = NULL;
	log_event(LOG_ERROR, "plugin_refused", why, "file", p->file, (const char *)NULL);
	return -1;
}

/* Records a refusal without a plugin file (a directory, a configuration key). */
static int refuse_path(struct plugin_host *h, const char *file, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int refuse_path(struct plugin_host *h, const char *file, const char *fmt, ...)
{
	char why[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	struct plugin *p = new_entry(h, file, NULL);
	if (!p)
		return -1;
	return refuse(h, p, "%s", why);
}

static bool same_op(const struct cw_operation *a, const struct cw_operation *b)
{
	if (strcmp(a->name, b->name) != 0)
		return false;
	if (!a->type || !b->type)
		return !a->type && !b->type;
	return strcmp(a->type, b->type) == 0;
}

/* Checks a descriptor's contents and its claims against accepted plugins. */
static int check_descriptor(struct plugin_host *h, struct plugin *p)
{
	const struct cw_plugin *d = p->desc;
	if (d->abi_major != CW_PLUGIN_ABI_MAJOR)
		return refuse(h, p, "ABI major %u, but this core speaks %u", (unsigned)d->abi_major,
			      (unsigned)CW_PLUGIN_ABI_MAJOR);
	if (d->struct_size < CW_PLUGIN_SIZE_1_0)
		return refuse(h, p, "descriptor is %u bytes, smaller than the %zu bytes of ABI 1.0",
			      (unsigned)d->struct_size, (size_t)CW_PLUGIN_SIZE_1_0);
	if (!plugin_host_valid_name(d->name))
		return refuse(h, p, "descriptor name is not ^[a-z0-9_-]{1,64}$");
	if (strcmp(d->name, p->name) != 0)
		return refuse(h, p, "descriptor name '%s' differs from the file name '%s'", d->name, p->name);
	if (!d->version || !*d->version)
		return refuse(h, p, "descriptor has no version");
	size_t nf = 0, nh = 0, no = 0;
	for (const struct cw_format *f = d->formats; f && f->name; f++, nf++) {
		if (nf >= MAX_ITEMS)
			return refuse(h, p, "more than %d formats", MAX_ITEMS);
		if (!plugin_host_valid_name(f->name))
			return refuse(h, p, "format name '%.80s' is not ^[a-z0-9_-]{1,64}$", f->name);
		if (!f->media || (f->media & ~(unsigned)(CW_MEDIA_JSON | CW_MEDIA_CSV)))
			return refuse(h, p, "format '%s': media must be JSON and/or CSV", f->name);
		if (!f->to_fhir && !f->from_fhir)
			return refuse(h, p, "format '%s' maps in neither direction", f->name);
	}
	for (const struct cw_hook *k = d->hooks; k && k->fn; k++, nh++) {
		if (nh >= MAX_ITEMS)
			return refuse(h, p, "more than %d hooks", MAX_ITEMS);
		if ((unsigned)k->point >= CW_HOOK_POINT_COUNT)
			return refuse(h, p, "hook point %d is unknown to this core", (int)k->point);
	}
	for (const struct cw_operation *o = d->operations; o && o->name; o++, no++) {
		if (no >= MAX_ITEMS)
			return refuse(h, p, "more than %d operations", MAX_ITEMS);
		if (!plugin_host_valid_name(o->name))
			return refuse(h, p, "operation name '%.80s' is not ^[a-z0-9_-]{1,64}$", o->name);
		if (o->type && !fhir_is_type_name(o->type))
			return refuse(h, p, "operation $%s: '%.80s' is not a resource type", o->name, o->type);
		if (!o->invoke)
			return refuse(h, p, "operation $%s has no invoke function", o->name);
	}
	for (size_t i = 0; i < h->n; i++) {
		const struct plugin *q = h->p[i];
		if (q == p || q->refused || !q->desc)
			continue;
		if (strcmp(q->desc->name, d->name) == 0)
			return refuse(h, p, "plugin name '%s' is already taken by %s", d->name, q->file);
		for (const struct cw_format *f = d->formats; f && f->name; f++)
			for (const struct cw_format *g = q->desc->formats; g && g->name; g++)
				if (strcmp(f->name, g->name) == 0)
					return refuse(h, p, "format '%s' is already claimed by plugin '%s' (%s)",
						      f->name, q->name, q->file);
		for (const struct cw_operation *o = d->operations; o && o->name; o++)
			for (const struct cw_operation *r = q->desc->operations; r && r->name; r++)
				if (same_op(o, r))
					return refuse(h, p, "operation $%s%s%s is already claimed by plugin '%s' (%s)",
						      o->name, o->type ? " on " : "", o->type ? o->type : "", q->name,
						      q->file);
	}
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(h->config_plugins, d->name);
	p->config = cJSON_IsObject(c) ? c : h->empty_config;
	return 0;
}

static int load_one(struct plugin_host *h, const char *rdir, const char *fname)
{
	char stem[256];
	size_t fl = strlen(fname);
	snprintf(stem, sizeof stem, "%.*s", (int)(fl - 3), fname);
	char path[PATH_MAX + 256];
	snprintf(path, sizeof path, "%s/%s", rdir, fname);
	struct plugin *p = new_entry(h, path, stem);
	if (!p)
		return -1;
	if (!plugin_host_valid_name(stem))
		return refuse(h, p, "plugin name '%.80s' is not ^[a-z0-9_-]{1,64}$", stem);
	char real[PATH_MAX];
	if (!realpath(path, real))
		return refuse(h, p, "cannot resolve: %s", strerror(errno));
	size_t dl = strlen(rdir);
	if (strncmp(real, rdir, dl) != 0 || real[dl] != '/' || strchr(real + dl + 1, '/'))
		return refuse(h, p, "real path %s leaves the plugin directory %s", real, rdir);
	struct stat st;
	if (stat(real, &st) != 0)
		return refuse(h, p, "cannot stat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return refuse(h, p, "not a regular file");
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return refuse(h, p, "file is writable by group or others (mode %04o)", (unsigned)(st.st_mode & 07777));
	dlerror();
	p->dl = dlopen(real, RTLD_NOW | RTLD_LOCAL);
	if (!p->dl) {
		const char *e = dlerror();
		return refuse(h, p, "cannot load: %s", e ? e : "dlopen failed");
	}
	dlerror();
	void *sym = dlsym(p->dl, "cw_plugin_entry");
	if (!sym)
		return refuse(h, p, "missing entry point cw_plugin_entry: not a Crosswalk plugin");
	const struct cw_plugin *(*entry)(void);
	memcpy(&entry, &sym, sizeof entry);
	p->desc = entry();
	if (!p->desc)
		return refuse(h, p, "cw_plugin_entry returned no descriptor");
	return check_descriptor(h, p);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int plugin_host_scan(struct plugin_host *h, const char *dir)
{
	size_t pos = strlen(h->dirs);
	snprintf(h->dirs + pos, sizeof h->dirs - pos, "%s%s", pos ? ", " : "", dir);
	char rdir[PATH_MAX];
	if (!realpath(dir, rdir))
		return refuse_path(h, dir, "plugin directory: %s", strerror(errno)), 1;
	struct stat st;
	if (stat(rdir, &st) != 0 || !S_ISDIR(st.st_mode))
		return refuse_path(h, dir, "plugin directory: not a directory"), 1;
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return refuse_path(h, dir, "plugin directory is writable by group or others (mode %04o)",
				   (unsigned)(st.st_mode & 07777)),
		       1;
	/* A world-writable parent without the sticky bit lets anyone rename
	 * the plugin directory away and put their own in its place. */
	char up[PATH_MAX];
	snprintf(up, sizeof up, "%s", rdir);
	for (char *slash = strrchr(up, '/'); slash; slash = strrchr(up, '/')) {
		slash[slash == up ? 1 : 0] = '\0';
		struct stat ps;
		if (stat(up, &ps) == 0 && (ps.st_mode & S_IWOTH) && !(ps.st_mode & S_ISVTX))
			return refuse_path(h, dir,
					   "plugin directory is inside %s, which is writable by others without the "
					   "sticky bit (mode %04o); move the plugins elsewhere or chmod o-w %s",
					   up, (unsigned)(ps.st_mode & 07777), up),
			       1;
		if (slash == up)
			break;
	}
	DIR *d = opendir(rdir);
	if (!d)
		return refuse_path(h, dir, "plugin directory: %s", strerror(errno)), 1;
	char *names[MAX_PLUGINS];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < MAX_PLUGINS) {
		size_t l = strlen(e->d_name);
		if (e->d_name[0] == '.' || l < 4 || strcmp(e->d_name + l - 3, ".so") != 0)
			continue;
		if (!(names[n] = strdup(e->d_name)))
			break;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp_names);
	int refused = 0;
	for (size_t i = 0; i < n; i++) {
		if (load_one(h, rdir, names[i]) != 0)
			refused++;
		free(names[i]);
	}
	return refused;
}

int plugin_host_add_builtin(struct plugin_host *h, const struct cw_plugin *desc, const char *label)
{
	struct plugin *p = new_entry(h, label, desc && desc->abi_major == CW_PLUGIN_ABI_MAJOR &&
							desc->struct_size >= CW_PLUGIN_SIZE_1_0
						? desc->name
						: NULL);
	if (!p)
		return -1;
	if (!desc)
		return refuse(h, p, "no descriptor");
	p->desc = desc;
	if (desc->abi_major == CW_PLUGIN_ABI_MAJOR && desc->struct_size >= CW_PLUGIN_SIZE_1_0 &&
	    !plugin_host_valid_name(desc->name))
		return refuse(h, p, "descriptor name is not ^[a-z0-9_-]{1,64}$");
	return check_descriptor(h, p);
}

static int cmp_hooks(const void *a, const void *b)
{
	const struct hook_ref *x = a, *y = b;
	if (x->hook->order != y->hook->order)
		return x->hook->order < y->hook->order ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool name_scanned(const struct plugin_host *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->p[i]->name, name) == 0)
			return true;
	return false;
}

/* Builds the per-client settings (auth.clients[].plugins): each client's
 * object for a plugin, member by member over the plugin's own settings. A
 * plugin that was not found is a refusal, as in the top-level plugins. */
static void merge_client_settings(struct plugin_host *h)
{
	size_t n = 0, i = 0;
	for (const cJSON *c = h->clients ? h->clients->child : NULL; c; c = c->next)
		n += (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(c, "plugins"));
	h->client_cfg = n ? calloc(n, sizeof *h->client_cfg) : NULL;
	if (n && !h->client_cfg) {
		refuse_path(h, "plugin host", "out of memory");
		return;
	}
	for (const cJSON *c = h->clients ? h->clients->child : NULL; c; c = c->next, i++) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "client_id");
		const cJSON *ps = cJSON_GetObjectItemCaseSensitive(c, "plugins");
		for (const cJSON *m = cJSON_IsString(id) && cJSON_IsObject(ps) ? ps->child : NULL; m; m = m->next) {
			const struct plugin *p = NULL;
			for (size_t k = 0; k < h->n && !p; k++)
				if (!h->p[k]->refused && h->p[k]->desc && !strcmp(h->p[k]->name, m->string))
					p = h->p[k];
			if (!p || !cJSON_IsObject(m)) {
				refuse_path(h, h->config_source ? h->config_source : "configuration",
					    "auth.clients[%zu].plugins.%s: %s", i, m->string,
					    p ? "must be an object" : "no such plugin was loaded");
				continue;
			}
			cJSON *merged = cJSON_Duplicate(p->config, 1);
			for (const cJSON *s = m->child; merged && s; s = s->next) {
				cJSON *copy = cJSON_Duplicate(s, 1);
				if (!copy || !cJSON_ReplaceItemInObjectCaseSensitive(merged, s->string, copy)) {
					if (copy && !cJSON_GetObjectItemCaseSensitive(merged, s->string))
						cJSON_AddItemToObject(merged, s->string, copy);
					else
						cJSON_Delete(copy);
				}
			}
			if (!merged) {
				refuse_path(h, "plugin host", "out of memory");
				return;
			}
			h->client_cfg[h->nclient_cfg++] = (struct client_config){id->valuestring, p, merged};
		}
	}
}

int plugin_host_start(struct plugin_host *h)
{
	if (h->started)
		return (int)plugin_host_refusals(h);
	h->started = true;
	for (const cJSON *c = h->config_plugins ? h->config_plugins->child : NULL; c; c = c->next)
		if (!name_scanned(h, c->string))
			refuse_path(h, h->config_source ? h->config_source : "configuration",
				    "plugins.%s: no plugin named '%s' was found in %s", c->string, c->string,
				    *h->dirs ? h->dirs : "(no plugin directory)");
	merge_client_settings(h);
	size_t n = h->n;
	for (size_t i = 0; i < n; i++) {
		struct plugin *p = h->p[i];
		if (p->refused || !p->desc)
			continue;
		if (!p->desc->init) {
			p->initialised = true;
			continue;
		}
		struct arena arena;
		struct outcome oo = OUTCOME_INIT;
		struct cw_ctx ctx;
		arena_init(&arena, 0);
		plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
		ctx.plugin = p;
		enum cw_status st = p->desc->init(&h->table, &ctx);
		if (st == CW_OK && outcome_errors(&oo) == 0) {
			p->initialised = true;
		} else {
			const char *why = NULL;
			for (size_t k = 0; k < oo.n && !why; k++)
				if (oo.issues[k].severity <= OUTCOME_ERROR)
					why = oo.issues[k].diagnostics;
			refuse(h, p, "init failed: %s%s%s", cw_status_text(st), why ? ": " : "", why ? why : "");
		}
		outcome_release(&oo);
		arena_release(&arena);
	}
	for (int pt = 0; pt < CW_HOOK_POINT_COUNT; pt++) {
		size_t count = 0, seq = 0;
		for (size_t i = 0; i < h->n; i++)
			for (const struct cw_hook *k = h->p[i]->initialised ? h->p[i]->desc->hooks : NULL; k && k->fn; k++)
				if ((int)k->point == pt)
					count++;
		if (!count)
			continue;
		h->hooks[pt] = calloc(count, sizeof *h->hooks[pt]);
		if (!h->hooks[pt])
			return refuse_path(h, "plugin host", "out of memory"), (int)plugin_host_refusals(h);
		for (size_t i = 0; i < h->n; i++)
			for (const struct cw_hook *k = h->p[i]->initialised ? h->p[i]->desc->hooks : NULL; k && k->fn; k++, seq++)
				if ((int)k->point == pt)
					h->hooks[pt][h->nhooks[pt]++] = (struct hook_ref){h->p[i], k, seq};
		qsort(h->hooks[pt], h->nhooks[pt], sizeof *h->hooks[pt], cmp_hooks);
	}
	return (int)plugin_host_refusals(h);
}

void plugin_host_stop(struct plugin_host *h)
{
	if (!h || h->stopped)
		return;
	h->stopped = true;
	for (size_t i = h->n; i-- > 0;) {
		struct plugin *p = h->p[i];
		if (!p->initialised)
			continue;
		p->initialised = false;
		if (p->desc && p->desc->fini) {
			struct arena arena;
			struct outcome oo = OUTCOME_INIT;
			struct cw_ctx ctx;
			arena_init(&arena, 0);
			plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
			ctx.plugin = p;
			p->desc->fini(&ctx);
			outcome_release(&oo);
			arena_release(&arena);
		}
	}
}

void plugin_host_free(struct plugin_host *h)
{
	if (!h)
		return;
	plugin_host_stop(h);
	for (size_t i = 0; i < h->n; i++) {
		if (h->p[i]->dl)
			dlclose(h->p[i]->dl);
		free(h->p[i]->file);
		free(h->p[i]->refused);
		free(h->p[i]);
	}
	for (int pt = 0; pt < CW_HOOK_POINT_COUNT; pt++)
		free(h->hooks[pt]);
	for (size_t i = 0; i < h->nowned; i++)
		free(h->owned[i]);
	free(h->owned);
	cJSON_Delete(h->empty_config);
	for (size_t i = 0; i < h->nclient_cfg; i++)
		cJSON_Delete(h->client_cfg[i].merged);
	free(h->client_cfg);
	free(h);
}

/* ------------------------------------------------------------ queries */

size_t plugin_host_count(const struct plugin_host *h) { return h ? h->n : 0; }

const struct plugin *plugin_host_at(const struct plugin_host *h, size_t i)
{
	return h && i < h->n ? h->p[i] : NULL;
}

size_t plugin_host_refusals(const struct plugin_host *h)
{
	size_t n = 0;
	for (size_t i = 0; h && i < h->n; i++)
		n += h->p[i]->refused != NULL;
	return n;
}

void plugin_host_print_refusals(const struct plugin_host *h, FILE *f)
{
	for (size_t i = 0; h && i < h->n; i++)
		if (h->p[i]->refused)
			fprintf(f, "crosswalk: plugin refused: %s: %s\n", h->p[i]->file, h->p[i]->refused);
}

static bool accepted(const struct plugin *p) { return p && !p->refused && p->desc; }

const struct cw_format *plugin_host_format(const struct plugin_host *h, const char *name,
					   const struct plugin **owner)
{
	for (size_t i = 0; h && name && i < h->n; i++) {
		if (!accepted(h->p[i]))
			continue;
		for (const struct cw_format *f = h->p[i]->desc->formats; f && f->name; f++)
			if (strcmp(f->name, name) == 0) {
				if (owner)
					*owner = h->p[i];
				return f;
			}
	}
	return NULL;
}

const struct cw_operation *plugin_host_operation(const struct plugin_host *h, const char *name,
						 const char *type, const struct plugin **owner)
{
	struct cw_operation want = {.name = name, .type = type};
	for (size_t i = 0; h && name && i < h->n; i++) {
		if (!accepted(h->p[i]))
			continue;
		for (const struct cw_operation *o = h->p[i]->desc->operations; o && o->name; o++)
			if (same_op(o, &want)) {
				if (owner)
					*owner = h->p[i];
				return o;
			}
	}
	return NULL;
}

void plugin_host_each_operation(const struct plugin_host *h,
				void (*fn)(void *ud, const struct plugin *p, const struct cw_operation *op), void *ud)
{
	for (size_t i = 0; h && i < h->n; i++)
		for (const struct cw_operation *o = accepted(h->p[i]) ? h->p[i]->desc->operations : NULL; o && o->name;
		     o++)
			fn(ud, h->p[i], o);
}

size_t plugin_host_hook_count(const struct plugin_host *h, enum cw_hook_point point)
{
	return h && (unsigned)point < CW_HOOK_POINT_COUNT ? h->nhooks[point] : 0;
}

const struct cw_host *plugin_host_table(const struct plugin_host *h) { return &h->table; }

static cJSON *describe_one(const struct plugin *p)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	if (p->refused) {
		if (*p->name)
			cJSON_AddStringToObject(o, "name", p->name);
		cJSON_AddStringToObject(o, "file", p->file);
		cJSON_AddStringToObject(o, "refused", p->refused);
		return o;
	}
	const struct cw_plugin *d = p->desc;
	cJSON_AddStringToObject(o, "name", d->name);
	cJSON_AddStringToObject(o, "version", d->version);
	if (d->summary)
		cJSON_AddStringToObject(o, "summary", d->summary);
	cJSON_AddStringToObject(o, "file", p->file);
	cJSON *fs = cJSON_AddArrayToObject(o, "formats");
	for (const struct cw_format *f = d->formats; fs && f && f->name; f++) {
		cJSON *x = cJSON_CreateObject();
		if (!x)
			break;
		cJSON_AddItemToArray(fs, x);
		cJSON_AddStringToObject(x, "name", f->name);
		if (f->summary)
			cJSON_AddStringToObject(x, "summary", f->summary);
		cJSON *m = cJSON_AddArrayToObject(x, "media");
		if (m && (f->media & CW_MEDIA_JSON))
			cJSON_AddItemToArray(m, cJSON_CreateString(plugin_host_media_name(CW_MEDIA_JSON)));
		if (m && (f->media & CW_MEDIA_CSV))
			cJSON_AddItemToArray(m, cJSON_CreateString(plugin_host_media_name(CW_MEDIA_CSV)));
		cJSON_AddBoolToObject(x, "to_fhir", f->to_fhir != NULL);
		cJSON_AddBoolToObject(x, "from_fhir", f->from_fhir != NULL);
	}
	cJSON *hs = cJSON_AddArrayToObject(o, "hooks");
	for (const struct cw_hook *k = d->hooks; hs && k && k->fn; k++) {
		cJSON *x = cJSON_CreateObject();
		if (!x)
			break;
		cJSON_AddItemToArray(hs, x);
		cJSON_AddStringToObject(x, "point", plugin_host_point_name(k->point));
		cJSON_AddNumberToObject(x, "order", k->order);
	}
	cJSON *cs = cJSON_AddObjectToObject(o, "counters");
	if (cs) {
		cJSON_AddNumberToObject(cs, "documents_mapped", (double)atomic_load(&p->stats.mapped));
		cJSON_AddNumberToObject(cs, "warnings", (double)atomic_load(&p->stats.warnings));
		cJSON_AddNumberToObject(cs, "refusals", (double)atomic_load(&p->stats.refused));
		cJSON_AddNumberToObject(cs, "failures", (double)atomic_load(&p->stats.failed));
	}
	cJSON *os = cJSON_AddArrayToObject(o, "operations");
	for (const struct cw_operation *op = d->operations; os && op && op->name; op++) {
		cJSON *x = cJSON_CreateObject();
		if (!x)
			break;
		cJSON_AddItemToArray(os, x);
		char name[80];
		snprintf(name, sizeof name, "$%s", op->name);
		cJSON_AddStringToObject(x, "name", name);
		if (op->type)
			cJSON_AddStringToObject(x, "type", op->type);
		else
			cJSON_AddStringToObject(x, "level", "system");
		if (op->definition)
			cJSON_AddStringToObject(x, "definition", op->definition);
	}
	return o;
}

cJSON *plugin_host_describe(const struct plugin_host *h)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *arr = root ? cJSON_AddArrayToObject(root, "plugins") : NULL;
	if (!arr) {
		cJSON_Delete(root);
		return NULL;
	}
	for (size_t i = 0; h && i < h->n; i++) {
		cJSON *o = describe_one(h->p[i]);
		if (!o) {
			cJSON_Delete(root);
			return NULL;
		}
		cJSON_AddItemToArray(arr, o);
	}
	return root;
}

static const char *keep(struct plugin_host *h, char *s)
{
	if (!s)
		return NULL;
	char **n = realloc(h->owned, (h->nowned + 1) * sizeof *n);
	if (!n) {
		free(s);
		return NULL;
	}
	h->owned = n;
	h->owned[h->nowned++] = s;
	return s;
}

int plugin_host_register_capabilities(const struct plugin_host *ch, struct capability *cap)
{
	struct plugin_host *h = (struct plugin_host *)ch; /* only to keep generated strings */
	int rc = 0;
	for (size_t i = 0; i < h->n; i++) {
		const struct plugin *p = h->p[i];
		if (!accepted(p))
			continue;
		for (const struct cw_format *f = p->desc->formats; f && f->name; f++)
			rc |= capability_add_native_format(cap, f->name);
		for (const struct cw_operation *o = p->desc->operations; o && o->name; o++) {
			const char *def = o->definition;
			if (!def) {
				char buf[256];
				snprintf(buf, sizeof buf, "urn:crosswalk:plugin:%s:OperationDefinition:%s", p->name,
					 o->name);
				def = keep(h, strdup(buf));
				if (!def)
					return -1;
			}
			rc |= capability_add_operation(
				cap, (struct capability_operation){o->name, def, o->type, p->desc->name});
		}
	}
	return rc ? -1 : 0;
}

/* ------------------------------------------------------------ running */

void plugin_host_ctx(struct cw_ctx *ctx, const struct plugin_host *h, struct arena *arena, struct outcome *oo,
		     const struct http_request *req)
{
	*ctx = (struct cw_ctx){.host = h, .arena = arena, .oo = oo, .req = req};
}

void plugin_host_ctx_profiles(struct cw_ctx *ctx, const struct profile_set *ps, const char *mode)
{
	bool off = mode && !strcmp(mode, "off");
	ctx->profiles = off ? NULL : ps;
	ctx->profiles_warn = mode && !strcmp(mode, "warn");
}

static const char *type_of(const cJSON *res)
{
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(res, "resourceType");
	return cJSON_IsString(rt) ? rt->valuestring : NULL;
}

/* Runs ctx->check over res, which the plugin ctx->plugin just made (as
 * "the WHAT of its ROLE"); on failure its issues go to ctx->oo, each
 * naming the plugin. */
static bool checked(struct cw_ctx *ctx, const cJSON *res, const char *role, const char *what)
{
	struct outcome found = OUTCOME_INIT;
	bool ok = res && ctx->check(res, &found);
	if (!res)
		outcome_add(&found, OUTCOME_ERROR, "required", NULL, "no resource");
	for (size_t i = 0; !ok && i < found.n; i++) {
		const struct outcome_issue *is = &found.issues[i];
		if (is->severity > OUTCOME_ERROR)
			continue;
		outcome_add(ctx->oo, is->severity, is->code, is->expression,
			    "plugin %s: its %s %s made a resource that is not valid FHIR, refused: %s", plugin_label(ctx),
			    what, role, is->diagnostics ? is->diagnostics : "");
	}
	outcome_release(&found);
	return ok;
}

enum cw_hook_result plugin_host_run_hooks(const struct plugin_host *h, struct cw_ctx *ctx,
					  const struct cw_hook_args *args, cJSON **resource)
{
	if (!h || (unsigned)args->point >= CW_HOOK_POINT_COUNT)
		return CW_HOOK_CONTINUE;
	const struct plugin *saved = ctx->plugin;
	enum cw_hook_result result = CW_HOOK_CONTINUE;
	cJSON *none = NULL;
	cJSON **res = resource ? resource : &none;
	for (size_t i = 0; i < h->nhooks[args->point]; i++) {
		const struct hook_ref *ref = &h->hooks[args->point][i];
		struct cw_hook_args a = *args;
		a.type = type_of(*res);
		ctx->plugin = ref->plugin;
		size_t errs = outcome_errors(ctx->oo), nissues = ctx->oo->n;
		cJSON *before = *res;
		enum cw_hook_result r = ref->hook->fn(ctx, &a, res);
		if (*res != before) {
			cJSON_Delete(before);
			r = r == CW_HOOK_STOP ? r : CW_HOOK_CHANGED;
		}
		if (r == CW_HOOK_STOP || outcome_errors(ctx->oo) > errs) {
			if (ctx->oo->n == nissues)
				add_issue(ctx, CW_SEV_ERROR, args->point == CW_HOOK_ON_REQUEST ? "forbidden" : "processing",
					  NULL, "stopped by hook");
			ctx->plugin = saved;
			return CW_HOOK_STOP;
		}
		if (r == CW_HOOK_CHANGED) {
			result = CW_HOOK_CHANGED;
			if (ctx->check && !checked(ctx, *res, "hook", plugin_host_point_name(args->point))) {
				ctx->status = 500;
				ctx->plugin = saved;
				return CW_HOOK_STOP;
			}
		}
	}
	ctx->plugin = saved;
	return result;
}

int plugin_host_http_status(const struct cw_ctx *ctx, enum cw_status st)
{
	if (ctx && ctx->status)
		return ctx->status;
	switch (st) {
	case CW_OK:
	case CW_INVALID:
		return 422;
	case CW_UNSUPPORTED:
		return 415;
	case CW_NOT_FOUND:
		return 404;
	case CW_TOO_LARGE:
		return 413;
	case CW_FORBIDDEN:
		return 403;
	case CW_NOMEM:
		return 503;
	case CW_CONFIG:
	case CW_INTERNAL:
		break;
	}
	return 500;
}

/* A failed plugin call: make sure the outcome says why, pick the status. */
static int failed(struct cw_ctx *ctx, enum cw_status st, size_t errs_before, const char *what)
{
	if (outcome_errors(ctx->oo) == errs_before)
		host_issue(ctx, st == CW_NOMEM || st == CW_INTERNAL ? CW_SEV_FATAL : CW_SEV_ERROR,
			   st == CW_INVALID ? "invalid" : st == CW_NOT_FOUND ? "not-found" : "processing", NULL,
			   "%s: %s", what, cw_status_text(st == CW_OK ? CW_INVALID : st));
	int status = plugin_host_http_status(ctx, st);
	ctx->plugin = NULL;
	return status;
}

static int core_error(struct cw_ctx *ctx, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int core_error(struct cw_ctx *ctx, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	outcome_add(ctx->oo, status >= 500 ? OUTCOME_FATAL : OUTCOME_ERROR, code, NULL, "%s", msg);
	return status;
}

/* Runs the hooks of point over every entry.resource of bundle. */
static int hooks_over_entries(const struct plugin_host *h, struct cw_ctx *ctx, enum cw_hook_point point, cJSON *bundle,
			      const char *format, const char *method, const char *path, bool *changed)
{
	if (!h->nhooks[point])
		return 0;
	cJSON *entries = cJSON_GetObjectItemCaseSensitive(bundle, "entry");
	for (cJSON *e = cJSON_IsArray(entries) ? entries->child : NULL; e; e = e->next) {
		cJSON *res = cJSON_DetachItemFromObjectCaseSensitive(e, "resource");
		if (!res)
			continue;
		struct cw_hook_args args = {.point = point, .method = method, .path = path, .format = format};
		enum cw_hook_result r = plugin_host_run_hooks(h, ctx, &args, &res);
		if (changed && r == CW_HOOK_CHANGED)
			*changed = true;
		/* Keep the conventional member order: fullUrl, resource, request. */
		cJSON *req = cJSON_DetachItemFromObjectCaseSensitive(e, "request");
		cJSON *resp = cJSON_DetachItemFromObjectCaseSensitive(e, "response");
		if (res)
			cJSON_AddItemToObject(e, "resource", res);
		if (req)
			cJSON_AddItemToObject(e, "request", req);
		if (resp)
			cJSON_AddItemToObject(e, "response", resp);
		if (r == CW_HOOK_STOP)
			return -1;
	}
	return 0;
}

static cJSON *wrap(cJSON *res, const char *bundle_type, bool with_request)
{
	cJSON *b = cJSON_CreateObject(), *entries = NULL, *e = NULL;
	if (b && cJSON_AddStringToObject(b, "resourceType", "Bundle") &&
	    cJSON_AddStringToObject(b, "type", bundle_type) && (entries = cJSON_AddArrayToObject(b, "entry")) &&
	    (e = cJSON_CreateObject()) && cJSON_AddItemToArray(entries, e)) {
		const char *type = type_of(res);
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(res, "id");
		char url[200];
		bool has_id = cJSON_IsString(id) && fhir_is_id(id->valuestring);
		if (has_id)
			snprintf(url, sizeof url, "%s/%s", type ? type : "Resource", id->valuestring);
		else
			snprintf(url, sizeof url, "%s", type ? type : "Resource");
		cJSON_AddItemToObject(e, "resource", res);
		cJSON *rq = with_request ? cJSON_AddObjectToObject(e, "request") : NULL;
		if (rq) {
			cJSON_AddStringToObject(rq, "method", has_id ? "PUT" : "POST");
			cJSON_AddStringToObject(rq, "url", url);
		}
		return b;
	}
	cJSON_Delete(b);
	cJSON_Delete(res);
	return NULL;
}

/* Counts one call into p that answered status, with the issues its outcome
 * gained from index `before` on. The counters are the one thing a call
 * changes in a loaded plugin's record. */
static void tally(const struct plugin *p, const struct outcome *oo, size_t before, int status)
{
	if (!p)
		return;
	struct plugin_stats *st = &((struct plugin *)p)->stats;
	unsigned long warnings = 0;
	for (size_t i = before; i < oo->n; i++)
		warnings += oo->issues[i].severity == OUTCOME_WARNING;
	if (warnings)
		atomic_fetch_add_explicit(&st->warnings, warnings, memory_order_relaxed);
	atomic_ulong *counter = &st->mapped;
	if (status >= 500)
		counter = &st->failed;
	else if (status >= 400)
		counter = &st->refused;
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

/* Validates every entry resource of bundle, which the mapper of owner made
 * for format, against the profiles it claims (ctx->profiles); the errors
 * and warnings go to ctx->oo naming the plugin, the format and the entry
 * (errors as warnings with ctx->profiles_warn). False when an error stays
 * one. */
static bool meets_claims(struct cw_ctx *ctx, const struct plugin *owner, const char *format, const cJSON *bundle)
{
	size_t errors = 0, i = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(bundle, "entry"))
	{
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "resource");
		if (!cJSON_IsObject(res)) {
			i++;
			continue;
		}
		struct outcome found = OUTCOME_INIT;
		profile_validate(ctx->profiles, res, NULL, &found, NULL);
		const cJSON *fu = cJSON_GetObjectItemCaseSensitive(e, "fullUrl");
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(res, "id");
		const char *type = type_of(res);
		const char *name = cJSON_IsString(fu) ? fu->valuestring : cJSON_IsString(id) ? id->valuestring : "";
		for (size_t k = 0; k < found.n; k++) {
			const struct outcome_issue *is = &found.issues[k];
			if (is->severity > OUTCOME_WARNING)
				continue;
			bool error = is->severity <= OUTCOME_ERROR && !ctx->profiles_warn;
			errors += error;
			outcome_add_id(ctx->oo, error ? OUTCOME_ERROR : OUTCOME_WARNING, is->code, is->message_id,
				       is->expression, "plugin %s: the %s mapper's entry %zu (%s %.200s)%s: %s",
				       owner ? owner->name : "?", format, i, type ? type : "?", name,
				       error ? " does not meet a profile it claims, refused"
					     : ", against a profile it claims",
				       is->diagnostics ? is->diagnostics : "");
		}
		outcome_release(&found);
		i++;
	}
	return errors == 0;
}

static int ingest(const struct plugin_host *h, struct cw_ctx *ctx, const char *format, enum cw_media media,
		  const char *data, size_t len, const char *method, const char *path, cJSON **bundle)
{
	*bundle = NULL;
	const struct plugin *owner = NULL;
	const struct cw_format *f = plugin_host_format(h, format, &owner);
	if (!f)
		return core_error(ctx, 404, "not-found", "no plugin maps the format '%s'", format);
	if (!f->to_fhir)
		return core_error(ctx, 405, "not-supported", "format '%s' maps from FHIR only; it cannot be ingested",
				  format);
	if (!(f->media & media))
		return core_error(ctx, 415, "not-supported", "format '%s' does not come as %s", format,
				  plugin_host_media_name(media));
	ctx->plugin = owner;
	size_t errs = outcome_errors(ctx->oo);
	cJSON *out = NULL;
	enum cw_status st = f->to_fhir(ctx, data, len, media, &out);
	if (st != CW_OK || outcome_errors(ctx->oo) > errs) {
		cJSON_Delete(out);
		return failed(ctx, st, errs, "mapping to FHIR failed");
	}
	if (!type_of(out)) {
		cJSON_Delete(out);
		return failed(ctx, CW_INTERNAL, errs, "the mapper returned no resource");
	}
	ctx->plugin = NULL;
	if (strcmp(type_of(out), "Bundle") == 0) {
		const cJSON *bt = cJSON_GetObjectItemCaseSensitive(out, "type");
		if (!cJSON_IsString(bt) || strcmp(bt->valuestring, "transaction") != 0) {
			cJSON_Delete(out);
			ctx->plugin = owner;
			return failed(ctx, CW_INTERNAL, errs, "the mapper returned a Bundle that is not a transaction");
		}
	} else if (!(out = wrap(out, "transaction", true))) {
		return core_error(ctx, 503, "exception", "out of memory");
	}
	const cJSON *e, *mapped = ctx->check ? cJSON_GetObjectItemCaseSensitive(out, "entry") : NULL;
	cJSON_ArrayForEach(e, mapped)
	{
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "resource");
		const cJSON *method_of = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "request"),
									  "method");
		if (!res && cJSON_IsString(method_of) && strcmp(method_of->valuestring, "POST") != 0 &&
		    strcmp(method_of->valuestring, "PUT") != 0)
			continue; /* GET, DELETE carry none */
		ctx->plugin = owner;
		bool ok = checked(ctx, res, "mapper", format);
		ctx->plugin = NULL;
		if (!ok) {
			cJSON_Delete(out);
			return 422;
		}
	}
	if (hooks_over_entries(h, ctx, CW_HOOK_BEFORE_STORE, out, format, method, path, NULL) != 0) {
		cJSON_Delete(out);
		return ctx->status ? ctx->status : 422;
	}
	if (ctx->profiles && !meets_claims(ctx, owner, format, out)) {
		cJSON_Delete(out);
		return 422;
	}
	*bundle = out;
	return 200;
}

int plugin_host_ingest(const struct plugin_host *h, struct cw_ctx *ctx, const char *format, enum cw_media media,
		       const char *data, size_t len, const char *method, const char *path, cJSON **bundle)
{
	const struct plugin *owner = NULL;
	size_t before = ctx->oo->n;
	int status = ingest(h, ctx, format, media, data, len, method, path, bundle);
	if (plugin_host_format(h, format, &owner))
		tally(owner, ctx->oo, before, status);
	return status;
}

int plugin_host_export_hooks(const struct plugin_host *h, struct cw_ctx *ctx, const char *format, const char *method,
			     const char *path, cJSON **bundle, bool *changed)
{
	bool any = false;
	if (h->nhooks[CW_HOOK_EXPORT_BUNDLE]) {
		struct cw_hook_args args = {
			.point = CW_HOOK_EXPORT_BUNDLE, .method = method, .path = path, .format = format};
		enum cw_hook_result r = plugin_host_run_hooks(h, ctx, &args, bundle);
		if (r == CW_HOOK_STOP)
			return ctx->status ? ctx->status : 422;
		const char *bt = type_of(*bundle);
		if (!bt || strcmp(bt, "Bundle") != 0)
			return core_error(ctx, 500, "exception",
					  "an export-bundle hook replaced the Bundle with no Bundle");
		any = r == CW_HOOK_CHANGED;
	}
	if (hooks_over_entries(h, ctx, CW_HOOK_BEFORE_EXPORT, *bundle, format, method, path, &any) != 0)
		return ctx->status ? ctx->status : 422;
	if (changed)
		*changed = any;
	return 200;
}

static int export(const struct plugin_host *h, struct cw_ctx *ctx, const char *format, enum cw_media media,
		  cJSON *input, const char *method, const char *path, char **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	const struct plugin *owner = NULL;
	const struct cw_format *f = plugin_host_format(h, format, &owner);
	if (!f) {
		cJSON_Delete(input);
		return core_error(ctx, 404, "not-found", "no plugin maps the format '%s'", format);
	}
	if (!f->from_fhir) {
		cJSON_Delete(input);
		return core_error(ctx, 405, "not-supported", "format '%s' maps to FHIR only; it cannot be exported",
				  format);
	}
	if (!(f->media & media)) {
		cJSON_Delete(input);
		return core_error(ctx, 406, "not-supported", "format '%s' does not come as %s", format,
				  plugin_host_media_name(media));
	}
	const char *type = type_of(input);
	if (!type) {
		cJSON_Delete(input);
		return core_error(ctx, 422, "invalid", "the input is not a FHIR resource");
	}
	cJSON *bundle = strcmp(type, "Bundle") == 0 ? input : wrap(input, "collection", false);
	if (!bundle)
		return core_error(ctx, 503, "exception", "out of memory");
	int hs = plugin_host_export_hooks(h, ctx, format, method, path, &bundle, NULL);
	if (hs != 200) {
		cJSON_Delete(bundle);
		return hs;
	}
	ctx->plugin = owner;
	size_t errs = outcome_errors(ctx->oo);
	enum cw_status st = f->from_fhir(ctx, bundle, media, out, out_len);
	cJSON_Delete(bundle);
	if (st != CW_OK || outcome_errors(ctx->oo) > errs || !*out) {
		*out = NULL;
		*out_len = 0;
		return failed(ctx, st == CW_OK ? CW_INTERNAL : st, errs, "mapping from FHIR failed");
	}
	ctx->plugin = NULL;
	return 200;
}

int plugin_host_export(const struct plugin_host *h, struct cw_ctx *ctx, const char *format, enum cw_media media,
		       cJSON *input, const char *method, const char *path, char **out, size_t *out_len)
{
	const struct plugin *owner = NULL;
	size_t before = ctx->oo->n;
	int status = export(h, ctx, format, media, input, method, path, out, out_len);
	if (plugin_host_format(h, format, &owner))
		tally(owner, ctx->oo, before, status);
	return status;
}

static int invoke(struct cw_ctx *ctx, const struct cw_operation *op, const struct plugin *owner, const char *type,
		  const cJSON *input, cJSON **output)
{
	*output = NULL;
	ctx->plugin = owner;
	size_t errs = outcome_errors(ctx->oo);
	cJSON *res = NULL;
	enum cw_status st = op->invoke(ctx, type, input, &res);
	if (st != CW_OK || outcome_errors(ctx->oo) > errs) {
		cJSON_Delete(res);
		char what[100];
		snprintf(what, sizeof what, "$%s failed", op->name);
		return failed(ctx, st, errs, what);
	}
	ctx->plugin = NULL;
	*output = res;
	return 200;
}

int plugin_host_invoke(const struct plugin_host *h, struct cw_ctx *ctx, const struct cw_operation *op,
		       const struct plugin *owner, const char *type, const cJSON *input, cJSON **output)
{
	(void)h;
	size_t before = ctx->oo->n;
	int status = invoke(ctx, op, owner, type, input, output);
	tally(owner, ctx->oo, before, status);
	return status;
}

/* A descriptor member the plugin's descriptor is large enough to have. */
#define DESC_HAS(d, member) ((d)->struct_size >= offsetof(struct cw_plugin, member) + sizeof((d)->member))

uint32_t plugin_host_id_rule(const struct plugin *p)
{
	if (!p || !p->initialised || !p->desc || !DESC_HAS(p->desc, upgrade) || !p->desc->upgrade)
		return 0;
	return p->desc->id_rule;
}

enum cw_status plugin_host_upgrade(struct cw_ctx *ctx, const struct plugin *p, const cJSON *resource, cJSON **out,
				   cJSON **moved)
{
	*out = *moved = NULL;
	if (!plugin_host_id_rule(p))
		return CW_OK;
	ctx->plugin = p;
	size_t errs = outcome_errors(ctx->oo);
	enum cw_status st = p->desc->upgrade(ctx, resource, out, moved);
	ctx->plugin = NULL;
	if (st == CW_OK && outcome_errors(ctx->oo) > errs)
		st = CW_INTERNAL;
	if (st != CW_OK || (*out && !cJSON_IsObject(*out)) || (*moved && !cJSON_IsObject(*moved))) {
		cJSON_Delete(*out);
		cJSON_Delete(*moved);
		*out = *moved = NULL;
		if (st == CW_OK)
			st = CW_INTERNAL;
	}
	return st;
}
