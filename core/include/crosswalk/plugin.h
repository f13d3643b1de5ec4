/* crosswalk/plugin.h — the Crosswalk plugin ABI. The one header a plugin
 * includes. Start from plugins/echo/echo.c and docs/plugins.md.
 *
 * SHAPE
 *   A plugin is a shared object that exports exactly one function,
 *
 *       const struct cw_plugin *cw_plugin_entry(void);
 *
 *   returning a pointer to a constant descriptor (static storage, never
 *   freed). The descriptor names the plugin and lists what it serves: native
 *   formats it maps to and from FHIR, hooks at fixed points of a request, and
 *   FHIR operations ($name). The core hands the plugin its services as a
 *   function table, struct cw_host, once, in init. A plugin links against
 *   libcjson and libc only; everything else comes through the table, so a
 *   unit test can hand a plugin a fake host.
 *
 * VERSIONING
 *   CW_PLUGIN_ABI_MAJOR changes when anything already published changes
 *   meaning or layout; the host refuses a plugin whose major differs. Both
 *   struct cw_plugin and struct cw_host start with (abi_major, struct_size)
 *   and grow at the end only. The host reads a descriptor member only when
 *   struct_size covers it. A plugin checks the host per member, not by
 *   size: in init, CW_HOST_REQUIRE(host, m) with m the newest member it
 *   calls (print_json when it calls ABI 1.0 members only), so a plugin built
 *   against 1.2 that needs only 1.0 members still loads on a 1.0 host; a
 *   member it uses only when present is tested with CW_HOST_HAS. The element structs (cw_format, cw_hook, cw_operation) are frozen
 *   for a major version. Enum numbers are never reused.
 *
 * OWNERSHIP
 *   Inputs are borrowed and const: valid for the duration of the call only.
 *   Outputs are either allocated from the per-call arena (host->alloc; freed
 *   by the core when the call's request ends — never free them) or handed
 *   over explicitly: a mapper's or operation's cJSON tree becomes the core's,
 *   which frees it with cJSON_Delete. Each function below says which.
 *
 * THREADS
 *   init and fini run once each, on one thread, before serving and at
 *   shutdown (fini in reverse load order). Mappers, hooks and operations run
 *   on many threads at once: whatever state the plugin keeps must be written
 *   in init and only read afterwards. Every host function may be called from
 *   any thread with the ctx the core passed to that call. A ctx must not be
 *   kept after the call returns, nor shared with other threads.
 *
 * ERRORS
 *   Functions return enum cw_status. Details go in issues (severity, IssueType
 *   code, location, message) reported with host->issue; the core turns them
 *   into a FHIR OperationOutcome. An issue of severity error or fatal fails
 *   the call even when the function returned CW_OK.
 *
 * RULES
 *   Never call curl_global_*, xmlInitParser/xmlCleanupParser or
 *   cJSON_InitHooks; never install signal handlers; never exit. Parse and
 *   print JSON that crosses the gateway with host->parse_json/print_json
 *   (strict, with the configured limits, decimal literals kept). Never log
 *   bodies or identifiers: the log is operational metadata only. */
#ifndef CROSSWALK_PLUGIN_H
#define CROSSWALK_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CW_PLUGIN_ABI_MAJOR 1u
/* Minor: members appended since the major began; informational only. */
#define CW_PLUGIN_ABI_MINOR 3u

/* Status codes: one list gives the enum and its text; numbers never reused. */
#define CW_STATUS_MAP(X)                                                 \
	X(OK, 0, "ok")                                                   \
	X(INVALID, 1, "the input is not valid")                          \
	X(UNSUPPORTED, 2, "not supported")                               \
	X(NOT_FOUND, 3, "not found")                                     \
	X(NOMEM, 4, "out of memory")                                     \
	X(TOO_LARGE, 5, "too large")                                     \
	X(FORBIDDEN, 6, "forbidden")                                     \
	X(CONFIG, 7, "bad plugin configuration")                         \
	X(INTERNAL, 8, "internal error")

enum cw_status {
#define CW_STATUS_ENUM_(name, num, text) CW_##name = num,
	CW_STATUS_MAP(CW_STATUS_ENUM_)
#undef CW_STATUS_ENUM_
};

static inline const char *cw_status_text(enum cw_status s)
{
	switch (s) {
#define CW_STATUS_TEXT_(name, num, text) \
	case CW_##name:                  \
		return text;
		CW_STATUS_MAP(CW_STATUS_TEXT_)
#undef CW_STATUS_TEXT_
	}
	return "unknown status";
}

/* The severities of FHIR OperationOutcome.issue.severity. */
enum cw_severity { CW_SEV_FATAL = 0, CW_SEV_ERROR = 1, CW_SEV_WARNING = 2, CW_SEV_INFORMATION = 3 };

enum cw_log_level { CW_LOG_DEBUG = 0, CW_LOG_INFO = 1, CW_LOG_WARN = 2, CW_LOG_ERROR = 3 };

/* Media types a native format comes in (a bit set in cw_format.media; one
 * value when passed to a mapper). JSON is application/json, CSV is text/csv
 * (RFC 4180, UTF-8, header row). */
enum cw_media { CW_MEDIA_JSON = 1u << 0, CW_MEDIA_CSV = 1u << 1 };

/* Opaque per-call context: identifies the plugin and the request, owns the
 * arena and the issues. Pass it to every host function. */
struct cw_ctx;

/* ------------------------------------------------------------- formats */

/* A native format the plugin maps. name is the {format} of
 * POST /ingest/{format} and GET /export/{format}; it must match
 * ^[a-z0-9_-]{1,64}$ and no two loaded plugins may claim the same name.
 * Either direction may be NULL (the format then maps one way only). */
struct cw_format {
	const char *name;
	const char *summary; /* one line, for listings; may be NULL */
	unsigned media;      /* enum cw_media bits: the media types accepted and produced */

	/* native → FHIR. data/len is the request body (borrowed; NUL-terminated
	 * at data[len] for convenience), in the given media. On CW_OK *out is
	 * either a transaction Bundle or a single resource (the core wraps it
	 * in a transaction Bundle with a POST entry); the tree is handed over:
	 * the core frees it with cJSON_Delete. On failure leave *out NULL (or
	 * set it; the core frees it either way) and report issues. */
	enum cw_status (*to_fhir)(struct cw_ctx *ctx, const char *data, size_t len, enum cw_media media,
				  cJSON **out);

	/* FHIR → native. bundle is a Bundle (searchset or collection) whose
	 * entry[].resource are the resources to map (borrowed, const). On CW_OK
	 * *out and *out_len are the native document in the given media, allocated
	 * with host->alloc (the arena; never freed by the plugin). */
	enum cw_status (*from_fhir)(struct cw_ctx *ctx, const cJSON *bundle, enum cw_media media, char **out,
				    size_t *out_len);
};

/* --------------------------------------------------------------- hooks */

/* Where a hook runs. Numbers never reused. */
enum cw_hook_point {
	CW_HOOK_ON_REQUEST = 0,      /* every HTTP request, before routing; resource is NULL */
	CW_HOOK_BEFORE_STORE = 1,    /* each resource about to be stored (ingest, create, update) */
	CW_HOOK_BEFORE_UPSTREAM = 2, /* each resource about to be sent to the upstream server */
	CW_HOOK_AFTER_RESPONSE = 3,  /* each resource that came back from the upstream server */
	CW_HOOK_BEFORE_EXPORT = 4,   /* each resource about to be mapped out by GET /export/{format} */
	/* ABI 1.2: once per export, before the before-export hooks; the
	 * resource is the whole Bundle (searchset or collection) about to be
	 * mapped out. A hook may change or remove entries in place; a
	 * replacement must be a Bundle. A 1.1 core refuses a plugin with this
	 * point ("hook point 5 is unknown"), so a plugin that must withhold
	 * resources never loads where it could not. */
	CW_HOOK_EXPORT_BUNDLE = 5,
	CW_HOOK_POINT_COUNT
};

enum cw_hook_result {
	CW_HOOK_CONTINUE = 0, /* nothing changed; the next hook runs */
	CW_HOOK_CHANGED = 1,  /* *resource was changed in place or replaced; the next hook runs */
	CW_HOOK_STOP = 2      /* refuse: the core answers an OperationOutcome from the issues
			       * reported (status from host->set_status, else 403 on request,
			       * 422 otherwise); later hooks do not run */
};

/* What the hook is looking at (borrowed, valid during the call). */
struct cw_hook_args {
	enum cw_hook_point point;
	const char *method; /* HTTP method of the request, NULL outside a request (CLI) */
	const char *path;   /* decoded request path, NULL outside a request */
	const char *format; /* native format for ingest/export, else NULL */
	const char *type;   /* resourceType of *resource, NULL when there is none */
};

/* *resource is the resource being processed (NULL for on-request). A hook
 * may change it in place, or replace it with a new tree it created (the core
 * then frees the old one and takes the new one); it must then return
 * CW_HOOK_CHANGED. It must never free *resource itself. */
typedef enum cw_hook_result cw_hook_fn(struct cw_ctx *ctx, const struct cw_hook_args *args, cJSON **resource);

/* Hooks at one point run in ascending order; equal orders run in load
 * order (plugin file name). */
struct cw_hook {
	enum cw_hook_point point;
	int order;
	cw_hook_fn *fn;
};

/* ---------------------------------------------------------- operations */

/* A FHIR operation: POST (or GET) /fhir/$name on the system, or
 * /fhir/{type}/$name on a resource type. name matches ^[a-z0-9_-]{1,64}$
 * without the "$"; no two plugins may claim the same (name, type). */
struct cw_operation {
	const char *name;
	const char *type;       /* resource type, or NULL for a system operation */
	const char *definition; /* canonical URL of its OperationDefinition; may be NULL */
	/* input is the parsed request body (a Parameters resource or any
	 * resource; NULL when there was none), borrowed. On CW_OK *output is the
	 * answer (a resource), handed over; NULL answers an informational
	 * OperationOutcome. */
	enum cw_status (*invoke)(struct cw_ctx *ctx, const char *type, const cJSON *input, cJSON **output);
};

/* ------------------------------------------------------------ the host */

struct cw_host;

/* --------------------------------------------------------- descriptor */

struct cw_plugin {
	uint32_t abi_major;  /* CW_PLUGIN_ABI_MAJOR */
	uint32_t struct_size; /* sizeof(struct cw_plugin) as the plugin was built */
	const char *name;    /* ^[a-z0-9_-]{1,64}$, equal to the file name without ".so" */
	const char *version; /* the plugin's own version, e.g. "1.0.0" */
	const char *summary; /* one line */
	/* Arrays terminated by an element whose name (formats, operations) or
	 * fn (hooks) is NULL. Each may be NULL when empty. */
	const struct cw_format *formats;
	const struct cw_hook *hooks;
	const struct cw_operation *operations;
	/* Called once before serving, with the host table (keep the pointer: it
	 * stays valid until after fini) and a ctx for config, logging and
	 * issues. Return CW_OK, or a failure with an issue saying why: the core
	 * then refuses the plugin and does not start. May be NULL. */
	enum cw_status (*init)(const struct cw_host *host, struct cw_ctx *ctx);
	/* Called once at shutdown, after serving stopped, if init succeeded.
	 * May be NULL. */
	void (*fini)(struct cw_ctx *ctx);
	/* ABI 1.0 ends here; later members are appended below. */

	/* --- ABI 1.3: moving what an older version of the plugin stored under
	 * ids it no longer derives (docs/plugins.md, "Deterministic ids").
	 * id_rule numbers the plugin's rule for ids (0: it derives none, or
	 * has never changed it). The store records, per plugin name, the rule
	 * its resources were last upgraded to; when a plugin's id_rule is
	 * higher, `crosswalk serve` runs upgrade over every live resource of
	 * the store once, before it listens, and records the new rule.
	 *
	 * upgrade: resource is the current version of one live resource
	 * (borrowed), as stored except that references to Patients that moved
	 * are already rewritten (Patients are upgraded first, then the rest).
	 * On CW_OK with *out set, *out (handed over) is the resource as the
	 * plugin writes it now: when its id differs, the core moves it (the
	 * old id gets a deletion, its history kept; the new id gets the
	 * resource, unless a live one is there already, which is kept), and
	 * references "Type/old" anywhere in the store are rewritten to the new
	 * id. *moved (may be set, handed over) is a JSON object
	 * {"Type/old-id": "new-id", …} of further resources derived from this
	 * one that move with it (the core moves the ones it finds). CW_OK with
	 * both left NULL: nothing to change (not the plugin's, or already
	 * current). A failure stops the upgrade: the store is left as it was
	 * and the gateway does not start. May be NULL. */
	uint32_t id_rule;
	enum cw_status (*upgrade)(struct cw_ctx *ctx, const cJSON *resource, cJSON **out, cJSON **moved);
};

/* The size of the ABI 1.0 descriptor: the smallest the host accepts. */
#define CW_PLUGIN_SIZE_1_0 (offsetof(struct cw_plugin, fini) + sizeof(void (*)(struct cw_ctx *)))

/* Start every descriptor with this: designated initializers after it. */
#define CW_PLUGIN_HEADER .abi_major = CW_PLUGIN_ABI_MAJOR, .struct_size = (uint32_t)sizeof(struct cw_plugin)

#define CW_PLUGIN_EXPORT __attribute__((visibility("default")))

/* The one exported symbol. */
CW_PLUGIN_EXPORT const struct cw_plugin *cw_plugin_entry(void);

/* Sizes of the fixed buffers some host functions fill. */
#define CW_ID_SIZE 37   /* a UUID in text, 36 characters + NUL */
#define CW_DATE_SIZE 11 /* YYYY-MM-DD + NUL */

/* The core's services. Every function takes the ctx the core passed to the
 * current call; every pointer argument is borrowed and may be freed by the
 * caller after the call unless said otherwise. */
struct cw_host {
	uint32_t abi_major;   /* CW_PLUGIN_ABI_MAJOR */
	uint32_t struct_size; /* sizeof(struct cw_host) in the running core */
	const char *core_version;

	/* --- logging: one structured line (with plugin name and request id)
	 * on the gateway's log; never pass bodies, tokens or identifiers. */
	void (*log)(struct cw_ctx *ctx, enum cw_log_level level, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

	/* --- arena: memory freed by the core when the call's request (or init)
	 * ends. alloc returns zeroed memory aligned for any type, or NULL when
	 * the arena's budget is spent (report CW_NOMEM). copy_string copies s
	 * (NULL → NULL). Never free what these return. */
	void *(*alloc)(struct cw_ctx *ctx, size_t size);
	char *(*copy_string)(struct cw_ctx *ctx, const char *s);

	/* --- issues: adds one issue to the call's outcome. code is a FHIR
	 * IssueType code ("invalid", "required", "value", "code-invalid",
	 * "not-supported", "forbidden", "processing", …; unknown → "processing").
	 * location is a FHIRPath-style expression or a native location such as
	 * "line 3, column team" (may be NULL). Strings are copied. */
	void (*issue)(struct cw_ctx *ctx, enum cw_severity severity, const char *code, const char *location,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
	/* The HTTP status (400–599) the core answers when this call fails or a
	 * hook stops. Out-of-range values are ignored. */
	void (*set_status)(struct cw_ctx *ctx, int http_status);

	/* --- configuration: the plugin's object from the "plugins" member of
	 * the configuration file ({} when absent). On a request of a client
	 * with its own settings of the plugin (auth.clients[].plugins.NAME),
	 * that object merged member by member over the plugin's (a different
	 * pointer from the one init saw). Borrowed, read-only, valid until fini
	 * returns. */
	const cJSON *(*config)(struct cw_ctx *ctx);
	/* A string member of that object, or dflt when absent or not a string. */
	const char *(*config_string)(struct cw_ctx *ctx, const char *key, const char *dflt);

	/* --- the request being served (NULL/empty outside a request). Values
	 * borrowed for the call. Header names are case-insensitive. */
	const char *(*request_header)(struct cw_ctx *ctx, const char *name);
	const char *(*request_query)(struct cw_ctx *ctx, const char *name);

	/* --- the FHIR R4 model. path is "Type.element[.element…]".
	 * model_choice_types: when path names a choice element ("Observation.
	 * value" or "Observation.value[x]"), stores up to max type codes
	 * (static strings) in types and returns how many the element allows;
	 * returns 0 when the path is not a choice, -1 when it is unknown.
	 * model_cardinality: stores min and max (UINT32_MAX for "*"); returns
	 * CW_NOT_FOUND for an unknown path. model_type_known: a resource or data
	 * type name of FHIR R4. */
	int (*model_choice_types)(struct cw_ctx *ctx, const char *path, const char **types, size_t max);
	enum cw_status (*model_cardinality)(struct cw_ctx *ctx, const char *path, uint32_t *min, uint32_t *max);
	bool (*model_type_known)(struct cw_ctx *ctx, const char *type);

	/* --- code systems loaded by the core (CodeSystem resources under the
	 * configured profiles_dir, and the code packs of profiles_dir/codes and
	 * codes.cpt_file: ICD-10-CM, HCPCS Level II, a site's CPT). code_display
	 * returns the display of code in system (a string valid until fini), or
	 * NULL when the code is unknown. Both accept the HCPCS URI aliases
	 * (https://www.cms.gov/…, terminology.hl7.org HCPCS-all-codes). */
	const char *(*code_display)(struct cw_ctx *ctx, const char *system, const char *code);
	bool (*code_system_known)(struct cw_ctx *ctx, const char *system);

	/* --- FHIR helpers. The make_* functions return a new cJSON tree the
	 * caller owns (normally it is added straight into the caller's own
	 * tree), or NULL with an issue reported when an argument is invalid or
	 * memory ran out. */
	/* {"reference":"Type/id","display":…}; display may be NULL. type must be
	 * a FHIR R4 resource type, id a valid FHIR id. */
	cJSON *(*make_reference)(struct cw_ctx *ctx, const char *type, const char *id, const char *display);
	/* {"system","code","display"}; with display NULL the display comes from
	 * the loaded code systems when known. */
	cJSON *(*make_coding)(struct cw_ctx *ctx, const char *system, const char *code, const char *display);
	/* {"system","value"}; system must be an absolute URI. */
	cJSON *(*make_identifier)(struct cw_ctx *ctx, const char *system, const char *value);
	/* A deterministic FHIR id from a namespace and a key: the same pair
	 * always gives the same id, on every run and every host. It is a
	 * name-based UUID (RFC 4122 version 5, SHA-1): when ns is a UUID in
	 * text it is the namespace; otherwise the namespace is the version-5
	 * UUID of ns in the RFC's URL namespace. Writes 36 lowercase characters
	 * and a NUL into out. */
	enum cw_status (*make_id)(struct cw_ctx *ctx, const char *ns, const char *key, char out[CW_ID_SIZE]);
	/* A FHIR date (YYYY-MM-DD) from text in the form YYYY-MM-DD, YYYYMMDD or
	 * MM/DD/YYYY (checked as a calendar date), or today's date (UTC) when
	 * text is NULL. CW_INVALID when the text is not such a date. */
	enum cw_status (*iso_date)(struct cw_ctx *ctx, const char *text, char out[CW_DATE_SIZE]);
	/* Strict JSON (duplicate keys, bad UTF-8, trailing bytes refused;
	 * decimal literals kept) with the gateway's limits. Returns a new tree
	 * the caller owns (cJSON_Delete), or NULL with an issue (location
	 * "line L, column C"). */
	cJSON *(*parse_json)(struct cw_ctx *ctx, const char *data, size_t len);
	/* Compact JSON text of tree in the arena (decimal literals kept), its
	 * length in *len (may be NULL). NULL when memory ran out. */
	char *(*print_json)(struct cw_ctx *ctx, const cJSON *tree, size_t *len);

	/* ABI 1.0 ends here; later members are appended below. */

	/* --- ABI 1.1: what the loaded code systems record about one code, as
	 * CW_CODE_* bits (0 when the code or its system is unknown). Billing
	 * reads CW_CODE_BILLABLE only when CW_CODE_BILLABLE_KNOWN is set (the
	 * ICD-10-CM pack records it; a category header such as Z59.0 is known
	 * but not billable). Accepts the HCPCS URI aliases as code_display does.
	 * Check CW_HOST_HAS(host, code_flags) before calling. */
	unsigned (*code_flags)(struct cw_ctx *ctx, const char *system, const char *code);

	/* --- ABI 1.3: resources from the gateway's store, gathered as
	 * GET /export/{format} gathers them. parameters is a FHIR Parameters
	 * resource (borrowed) naming either Encounters — "encounter",
	 * valueReference {"reference": "Encounter/id"} or {"identifier":
	 * {system, value}}, repeating, at most 1000 — or a period, "from" and
	 * "to" (valueDate, YYYY-MM-DD, from not after to), with or without a
	 * person, "patient" (valueString: a Patient id or the person's
	 * identifier "system|value"; or a valueReference), or a person alone.
	 * Returns a collection Bundle the caller owns (cJSON_Delete): for
	 * Encounters or a period, the Encounters with the Conditions recorded
	 * for them, their patients' Coverage and the resources those reference;
	 * for a person alone, everything stored about that Patient. NULL with
	 * issues reported and the HTTP status set (400 bad parameters — unknown,
	 * repeated or malformed —, 404 or 410 for a person or Encounter not
	 * stored, 501 where the core has no store). Check
	 * CW_HOST_HAS(host, store_gather) before calling. */
	cJSON *(*store_gather)(struct cw_ctx *ctx, const cJSON *parameters);
};

/* Bits of cw_host.code_flags. Numbers never reused. */
#define CW_CODE_KNOWN (1u << 0)          /* the code is in the system */
#define CW_CODE_BILLABLE_KNOWN (1u << 1) /* the system records billability */
#define CW_CODE_BILLABLE (1u << 2)       /* valid for claims (with BILLABLE_KNOWN) */
#define CW_CODE_INACTIVE (1u << 3)       /* terminated (HCPCS with a termination date) */
#define CW_CODE_MODIFIER (1u << 4)       /* a modifier rather than a procedure (HCPCS) */

/* True when the running host provides member (a member of struct cw_host). */
#define CW_HOST_HAS(host, member) \
	((host)->struct_size >= offsetof(struct cw_host, member) + sizeof((host)->member))

/* The size of the ABI 1.0 host table (print_json is its last member). */
#define CW_HOST_SIZE_1_0 (offsetof(struct cw_host, print_json) + sizeof(void (*)(void)))

/* For init: returns CW_UNSUPPORTED (the host then refuses the plugin as
 * needing a newer core) unless the running host provides member. Name the
 * newest member the plugin calls:
 *	CW_HOST_REQUIRE(h, print_json);   (ABI 1.0 members only)
 *	CW_HOST_REQUIRE(h, code_flags);   (ABI 1.1) */
#define CW_HOST_REQUIRE(host, member)              \
	do {                                       \
		if (!CW_HOST_HAS(host, member))    \
			return CW_UNSUPPORTED;     \
	} while (0)

#ifdef __cplusplus
}
#endif

#endif
