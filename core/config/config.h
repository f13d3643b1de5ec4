/* config — the gateway's configuration: load, check, override.
 *
 * The file is JSON (conf/crosswalk.json is the embedded default). Every key is
 * declared in a table in config.c with its type and range; an unknown key, a
 * wrong type or an out-of-range value is refused with the file, the key and
 * the reason. Relative paths are taken relative to the working directory.
 * Absent keys take their defaults; the directories' defaults are config/paths.h's
 * (the source tree's, or the installed prefix's).
 *
 * Environment overrides (applied by config_load after the file):
 *   CROSSWALK_LISTEN   replaces "listen" (host:port)
 *   CROSSWALK_UPSTREAM replaces "upstream.base_url"
 * (CROSSWALK_CONFIG, the file to load, is read by the CLI.)
 *
 * Ownership: struct config owns all its strings and the plugins tree; release
 * with config_release. Threads: loaded once before serving, read-only after. */
#ifndef CW_CONFIG_H
#define CW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/log.h"

struct config_limits {
	uint64_t max_body_bytes;      /* request body; larger → 413 */
	uint64_t max_header_bytes;    /* per-connection header memory; larger → 431 */
	uint64_t max_connections;     /* total open connections */
	uint64_t max_connections_per_ip;
	uint64_t header_timeout_ms;   /* absolute: accept (or end of last reply) → headers complete */
	uint64_t request_timeout_ms;  /* absolute: request start → body complete; also reply send */
	uint64_t shutdown_grace_ms;   /* SIGTERM: how long in-flight requests may finish */
	uint64_t json_max_depth;
	uint64_t json_max_members;
	uint64_t json_max_array_items;
	uint64_t json_memory_budget_bytes;
	uint64_t read_cache_bytes;    /* current versions kept in memory for reads; 0 = none */
	/* the command line: one local document (convert, map); not the HTTP limit */
	uint64_t max_file_bytes;
};

/* The upstream FHIR server and how resource types reach it (core/upstream/upstream.h,
 * core/upstream/outbox.h). Absent base_url: no upstream, everything is local. */
struct config_upstream {
	char *base_url;           /* https://…, or http:// on a loopback address only */
	char *bearer_token_env;   /* name of the environment variable holding a bearer token */
	char *basic_user;         /* HTTP basic user; the password comes from basic_password_env */
	char *basic_password_env;
	char *ca_file;            /* extra CA bundle for verifying the server (verification is always on) */
	char *client_cert;        /* PEM client certificate and key for mutual TLS */
	char *client_key;
	uint64_t connect_timeout_ms;
	uint64_t timeout_ms;          /* whole request, including the body */
	uint64_t max_response_bytes;  /* larger answers are cut off: 502 */
	uint64_t max_concurrent;      /* pass-through calls in flight at once; more get 503 + Retry-After */
	cJSON *routes;            /* object: resource type or "*" → "local" | "pass-through" | "store-and-forward" (owned) */
	uint64_t max_attempts;    /* outbox: attempts before a record becomes a dead letter */
	uint64_t retry_base_ms;   /* outbox: first retry delay; doubles per attempt, with jitter */
	uint64_t retry_max_ms;    /* outbox: cap of the delay */
	uint64_t high_water;      /* outbox: pending records above which pushes get 503 */
	uint64_t delivery_workers; /* outbox: records delivered at once by this instance (one thread each) */
	/* identifier systems a person is looked up by at the upstream before a
	 * Patient is delivered (array of absolute URIs, owned), or NULL */
	cJSON *match_systems;

	/* the upstream as a consent recipient (api/egress.h): its organization
	 * ("Organization/id") and purpose of use (a v3-ActReason code; NULL: TREAT) */
	char *organization;
	char *purpose_of_use;
};

/* Bulk export (core/api/bulk.h). */
struct config_bulk {
	uint64_t expiry_s;       /* a finished export's files are removed this long after it finished */
	uint64_t file_max_bytes; /* an output file is split into the next one past this size */
	uint64_t max_jobs;       /* exports kept at once (queued, running or finished); more: 429 */
};

/* Where the resources are stored (core/store/store.h). backend NULL or
 * "sqlite": the embedded store in data_dir, one gateway per directory;
 * "postgresql": a PostgreSQL database several gateways may share
 * (pg_conninfo is a libpq connection string; its password comes from
 * PGPASSWORD or a passfile, never from this file's logs). */
struct config_store {
	char *backend;
	char *pg_conninfo;
	uint64_t pg_statement_timeout_ms; /* 0: the backend's default (30 s) */
	uint64_t pg_lease_ms;             /* outbox lease; 0: the backend's default (120 s) */
};

/* HTTPS on the front door (core/http/http.c): TLS 1.2 and 1.3 only. All
 * NULL: plain HTTP, allowed on a loopback address only. client_ca_file asks
 * clients for a certificate signed by that CA (mutual TLS); a verified one is
 * mapped to a configured client (auth.clients[].tls_fingerprint / tls_subject). */
struct config_tls {
	char *cert_file;      /* PEM certificate (chain) the gateway presents */
	char *key_file;       /* its unencrypted PEM private key */
	char *client_ca_file; /* PEM CA(s) client certificates must chain to, or NULL */
};

/* Identity and access (core/auth/). Configured when clients or issuers are
 * given: every /fhir (but metadata and .well-known), /ingest, /export,
 * /outbox and /metrics request must then authenticate. The arrays are kept
 * as checked JSON; core/auth/ builds its tables from them. */
struct config_auth {
	bool token_endpoint;     /* POST /auth/token served (default on when clients are configured) */
	bool token_endpoint_set; /* token_endpoint was written in the file */
	char *signing_key_file;  /* the gateway's token signing key (PEM), or NULL: generated into data_dir */
	uint64_t token_lifetime_s;
	cJSON *clients; /* array of client objects (owned), or NULL */
	cJSON *issuers; /* array of issuer objects (owned), or NULL */
};

/* Audit (core/api/audit.h): one AuditEvent (IHE BALP) per access. */
struct config_audit {
	bool enabled;      /* default true */
	char *durability;  /* "durable" (default): the record is on disk before the answer leaves;
			     * "batch": records are written every flush_ms, the answer does not wait */
	uint64_t flush_ms; /* batch: the longest a record waits in memory */
	/* batch: the most records held in memory; beyond, a request's record
	 * is written as a durable one (its answer waits for it) */
	uint64_t batch_max;
};

/* The site's policy for data labelled R or V without 42CFRPart2 that no
 * Consent speaks to (docs/privacy.md): "permit" or "deny" by the
 * recipient's purpose of use (v3-ActReason), NULL: the default's. */
struct config_privacy {
	char *restricted_default; /* default "permit" */
	char *restricted_treat;   /* TREAT (treatment, recovery, the local operator) */
	char *restricted_payment; /* HPAYMT (billing) */
	char *restricted_ops;     /* HOPERAT (operations) */
};

/* Validation (core/fhir/profile.h). on_write "structural" (the default,
 * NULL) checks every write against the R4 model; "profiles" also against
 * the profiles the resource claims in meta.profile and the one profiles
 * names for its type, refusing a write with an error (422). ingest holds
 * what the plugins' mappers make (/ingest, `crosswalk map --from`) to the
 * profiles it claims: "error" (the default) refuses it with 422, "warn"
 * reports the errors as warnings, "off" does not check. Conformance
 * resources come from profiles_dir and the unpacked FHIR packages under
 * packages_dir. */
struct config_validation {
	char *on_write;     /* "structural" | "profiles", or NULL (structural) */
	char *ingest;       /* what a plugin's mapper makes, against the profiles it claims:
			       "error" | "warn" | "off", or NULL (error); see plugin_host_ctx_profiles */
	cJSON *profiles;    /* object: resource type → profile URL (owned), or NULL */
	char *packages_dir; /* folder of FHIR packages (unpacked or .tgz), or one .tgz; or NULL */
};

struct config {
	char *source;         /* file the configuration came from */
	char *listen;         /* as written, "host:port" */
	char listen_host[256];
	unsigned listen_port; /* 0 = ephemeral, reported in the "listening" log line */
	bool listen_ipv6;
	char *public_base_url; /* the FHIR base clients reach ("https://host/fhir"): links, Location and
				* fullUrl start with it; NULL: http://LISTEN-ADDRESS/fhir. Never taken from Host */
	char *data_dir;
	char *plugin_dir;
	char *plugin_dir_extra; /* --plugins DIR from the command line, or NULL (not a file key) */
	char *profiles_dir;     /* CodeSystems etc. loaded at start when it exists */
	char *cpt_file;         /* codes.cpt_file: the site's CPT code pack, or NULL */
	unsigned threads;     /* HTTP worker threads; 0 in the file = one per core */
	enum log_level log_level;
	struct config_limits limits;
	cJSON *plugins;       /* object: plugin name → its own settings (owned) */
	struct config_upstream upstream;
	struct config_bulk bulk;
	struct config_store store;
	struct config_tls tls;
	struct config_auth auth;
	struct config_audit audit;
	struct config_privacy privacy;
	struct config_validation validation;
};

/* The FHIR base clients reach: public_base_url, else SCHEME://AUTHORITY/fhir
 * (https with TLS on; authority the bound "host:port", or listen when NULL).
 * Never taken from the Host header. */
void config_fhir_base(const struct config *cfg, const char *authority, char *buf, size_t n);

/* True when auth.clients or auth.issuers holds an entry. */
bool config_auth_configured(const struct config *cfg);

/* Checks the TLS files at start: the certificate, that the key matches it,
 * the client CA. 0, or -1 with "FILE: tls.KEY: reason" in err (naming the
 * offending file). */
int config_check_tls_files(const struct config *cfg, char *err, size_t errlen);

/* The rule for listening beyond loopback: auth configured and TLS on.
 * 0, or -1 with the reason in err. */
int config_check_exposure(const struct config *cfg, char *err, size_t errlen);

/* An upstream base URL is https://host[:port]/path, or http:// with a
 * loopback host; no credentials, query or fragment. */
bool config_upstream_url_ok(const char *url, char *why, size_t whylen);

/* A public base URL is http(s)://host[:port][/path], printable, without
 * credentials, query, fragment or a trailing '/'. */
bool config_public_url_ok(const char *url, char *why, size_t whylen);

/* The route of a resource type: "local", "pass-through" or
 * "store-and-forward" (a static string). "local" without an upstream. */
const char *config_route(const struct config *cfg, const char *type);

/* The one delivery rule: a write of type that is stored here is recorded
 * for delivery upstream only when an upstream is configured and the type is
 * not routed "local" — whichever way it was written (REST, /ingest, the
 * plugin id upgrade). ("pass-through" writes reach the store only through
 * /ingest and the upgrade; REST sends them upstream at once.) */
bool config_delivers(const struct config *cfg, const char *type);

/* Loads path into cfg (which it initialises). On error returns -1 and writes
 * "FILE: KEY: REASON" into err; cfg is then released. */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* Fills cfg with the built-in defaults (no file). Returns -1 on OOM. */
int config_defaults(struct config *cfg);

/* True when host is a loopback address (127.0.0.0/8, ::1, localhost). */
bool config_host_is_loopback(const char *host);

/* Parses "host:port" / "[v6]:port" into cfg's listen fields; -1 with reason. */
int config_set_listen(struct config *cfg, const char *value, char *err, size_t errlen);

/* The JSON limits of cfg->limits (defaults when cfg is NULL), as the strict
 * JSON reader takes them. */
struct fjson_limits;
void config_json_limits(const struct config *cfg, struct fjson_limits *out);

void config_release(struct config *cfg);

#endif
