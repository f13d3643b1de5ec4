#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/file.h"
#include "base/fjson.h"
#include "config/paths.h"
#include "fhir/model.h"

enum key_type {
	KEY_STRING,
	KEY_UINT,
	KEY_OBJECT,
	KEY_LEVEL,
	KEY_LISTEN,
	KEY_ROUTES,
	KEY_BOOL,
	KEY_CLIENTS,
	KEY_ISSUERS,
	KEY_URIS,
	KEY_TYPE_URLS /* object: resource type → canonical URL */
};

struct key {
	const char *name;
	enum key_type type;
	size_t offset; /* into struct config */
	uint64_t min, max;
	const struct key *children; /* for KEY_OBJECT with a fixed schema */
};

#define LIM(field) offsetof(struct config, limits) + offsetof(struct config_limits, field)

static const struct key limit_keys[] = {
	{"max_body_bytes", KEY_UINT, LIM(max_body_bytes), 1024, 1ULL << 30, NULL},
	{"max_header_bytes", KEY_UINT, LIM(max_header_bytes), 4096, 1ULL << 20, NULL},
	{"max_connections", KEY_UINT, LIM(max_connections), 1, 65536, NULL},
	{"max_connections_per_ip", KEY_UINT, LIM(max_connections_per_ip), 1, 65536, NULL},
	{"header_timeout_ms", KEY_UINT, LIM(header_timeout_ms), 100, 600000, NULL},
	{"request_timeout_ms", KEY_UINT, LIM(request_timeout_ms), 100, 3600000, NULL},
	{"shutdown_grace_ms", KEY_UINT, LIM(shutdown_grace_ms), 0, 600000, NULL},
	{"json_max_depth", KEY_UINT, LIM(json_max_depth), 8, 1000, NULL},
	{"json_max_members", KEY_UINT, LIM(json_max_members), 16, 1000000, NULL},
	{"json_max_array_items", KEY_UINT, LIM(json_max_array_items), 16, 10000000, NULL},
	{"json_memory_budget_bytes", KEY_UINT, LIM(json_memory_budget_bytes), 1ULL << 20, 1ULL << 34, NULL},
	{"read_cache_bytes", KEY_UINT, LIM(read_cache_bytes), 0, 1ULL << 34, NULL},
	{"max_file_bytes", KEY_UINT, LIM(max_file_bytes), 1024, 1ULL << 40, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

#define UP(field) offsetof(struct config, upstream) + offsetof(struct config_upstream, field)

static const struct key upstream_keys[] = {
	{"base_url", KEY_STRING, UP(base_url), 8, 2048, NULL},
	{"bearer_token_env", KEY_STRING, UP(bearer_token_env), 1, 128, NULL},
	{"basic_user", KEY_STRING, UP(basic_user), 1, 256, NULL},
	{"basic_password_env", KEY_STRING, UP(basic_password_env), 1, 128, NULL},
	{"ca_file", KEY_STRING, UP(ca_file), 1, 4096, NULL},
	{"client_cert", KEY_STRING, UP(client_cert), 1, 4096, NULL},
	{"client_key", KEY_STRING, UP(client_key), 1, 4096, NULL},
	{"connect_timeout_ms", KEY_UINT, UP(connect_timeout_ms), 100, 600000, NULL},
	{"timeout_ms", KEY_UINT, UP(timeout_ms), 100, 3600000, NULL},
	{"max_response_bytes", KEY_UINT, UP(max_response_bytes), 1024, 1ULL << 32, NULL},
	{"max_concurrent", KEY_UINT, UP(max_concurrent), 1, 10000, NULL},
	{"routes", KEY_ROUTES, UP(routes), 0, 0, NULL},
	{"max_attempts", KEY_UINT, UP(max_attempts), 1, 1000, NULL},
	{"retry_base_ms", KEY_UINT, UP(retry_base_ms), 1, 3600000, NULL},
	{"retry_max_ms", KEY_UINT, UP(retry_max_ms), 1, 86400000, NULL},
	{"high_water", KEY_UINT, UP(high_water), 1, 100000000, NULL},
	{"delivery_workers", KEY_UINT, UP(delivery_workers), 1, 64, NULL},
	{"match_identifier_systems", KEY_URIS, UP(match_systems), 1, 16, NULL},
	{"organization", KEY_STRING, UP(organization), 1, 256, NULL},
	{"purpose_of_use", KEY_STRING, UP(purpose_of_use), 1, 32, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

static const char *const route_names[] = {"local", "pass-through", "store-and-forward"};

/* A base URL: http(s)://host[:port][/path], no credentials, query, fragment
 * or whitespace. The host goes to host (for the loopback rule). */
static bool base_url_ok(const char *url, bool *http, char host[256], char *why, size_t whylen)
{
	bool https = !strncmp(url, "https://", 8);
	*http = !strncmp(url, "http://", 7);
	if (!https && !*http) {
		snprintf(why, whylen, "must start with https:// (or http:// for a loopback address)");
		return false;
	}
	const char *h = url + (https ? 8 : 7);
	size_t n;
	if (*h == '[') {
		n = strcspn(h + 1, "]");
		if (h[1 + n] != ']' || n == 0 || n >= 256) {
			snprintf(why, whylen, "bad IPv6 host");
			return false;
		}
		memcpy(host, h + 1, n);
	} else {
		n = strcspn(h, ":/?#");
		if (n == 0 || n >= 256) {
			snprintf(why, whylen, "no host");
			return false;
		}
		memcpy(host, h, n);
	}
	host[n] = '\0';
	if (strpbrk(url, " \t\r\n\\@?#")) {
		snprintf(why, whylen, "must be a plain base URL without credentials, query or fragment");
		return false;
	}
	return true;
}

bool config_upstream_url_ok(const char *url, char *why, size_t whylen)
{
	bool http;
	char host[256];
	if (!base_url_ok(url, &http, host, why, whylen))
		return false;
	if (http && !config_host_is_loopback(host)) {
		snprintf(why, whylen, "plain http is allowed only to a loopback address; use https for %s", host);
		return false;
	}
	return true;
}

bool config_public_url_ok(const char *url, char *why, size_t whylen)
{
	bool http;
	char host[256];
	if (!base_url_ok(url, &http, host, why, whylen))
		return false;
	for (const char *p = url; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '<' || *p == '>') {
			snprintf(why, whylen, "must be printable ASCII without quotes or angle brackets");
			return false;
		}
	if (url[strlen(url) - 1] == '/') {
		snprintf(why, whylen, "must not end with '/' (links are written as BASE/Type/id)");
		return false;
	}
	return true;
}

const char *config_route(const struct config *cfg, const char *type)
{
	if (!cfg->upstream.base_url || !cfg->upstream.routes)
		return route_names[0];
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(cfg->upstream.routes, type);
	if (!cJSON_IsString(r))
		r = cJSON_GetObjectItemCaseSensitive(cfg->upstream.routes, "*");
	for (size_t i = 0; cJSON_IsString(r) && i < 3; i++)
		if (!strcmp(r->valuestring, route_names[i]))
			return route_names[i];
	return route_names[0];
}

bool config_delivers(const struct config *cfg, const char *type)
{
	return cfg->upstream.base_url && strcmp(config_route(cfg, type), "local") != 0;
}

#define BULK(field) offsetof(struct config, bulk) + offsetof(struct config_bulk, field)

static const struct key bulk_keys[] = {
	{"expiry_seconds", KEY_UINT, BULK(expiry_s), 1, 31536000, NULL},
	{"file_max_bytes", KEY_UINT, BULK(file_max_bytes), 1024, 1ULL << 40, NULL},
	{"max_jobs", KEY_UINT, BULK(max_jobs), 1, 10000, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

#define AUDIT(field) offsetof(struct config, audit) + offsetof(struct config_audit, field)

#define VAL(field) offsetof(struct config, validation) + offsetof(struct config_validation, field)

static const struct key validation_keys[] = {
	{"on_write", KEY_STRING, VAL(on_write), 8, 10, NULL},
	{"ingest", KEY_STRING, VAL(ingest), 3, 5, NULL},
	{"profiles", KEY_TYPE_URLS, VAL(profiles), 0, 0, NULL},
	{"packages_dir", KEY_STRING, VAL(packages_dir), 1, 4096, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

static const struct key audit_keys[] = {
	{"enabled", KEY_BOOL, AUDIT(enabled), 0, 0, NULL},
	{"durability", KEY_STRING, AUDIT(durability), 5, 7, NULL},
	{"flush_ms", KEY_UINT, AUDIT(flush_ms), 1, 60000, NULL},
	{"batch_max", KEY_UINT, AUDIT(batch_max), 1, 1000000, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

#define PRIV(field) offsetof(struct config, privacy) + offsetof(struct config_privacy, field)

static const struct key restricted_keys[] = {
	{"default", KEY_STRING, PRIV(restricted_default), 4, 6, NULL},
	{"TREAT", KEY_STRING, PRIV(restricted_treat), 4, 6, NULL},
	{"HPAYMT", KEY_STRING, PRIV(restricted_payment), 4, 6, NULL},
	{"HOPERAT", KEY_STRING, PRIV(restricted_ops), 4, 6, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

static const struct key privacy_keys[] = {
	{"restricted", KEY_OBJECT, 0, 0, 0, restricted_keys},
	{NULL, 0, 0, 0, 0, NULL},
};

#define STORE(field) offsetof(struct config, store) + offsetof(struct config_store, field)

static const struct key store_pg_keys[] = {
	{"conninfo", KEY_STRING, STORE(pg_conninfo), 1, 4096, NULL},
	{"statement_timeout_ms", KEY_UINT, STORE(pg_statement_timeout_ms), 100, 3600000, NULL},
	{"lease_ms", KEY_UINT, STORE(pg_lease_ms), 1000, 86400000, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

static const struct key store_keys[] = {
	{"backend", KEY_STRING, STORE(backend), 1, 32, NULL},
	{"postgresql", KEY_OBJECT, 0, 0, 0, store_pg_keys},
	{NULL, 0, 0, 0, 0, NULL},
};

static const struct key codes_keys[] = {
	{"cpt_file", KEY_STRING, offsetof(struct config, cpt_file), 1, 4096, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

static int fail(char *err, size_t errlen, const char *file, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#define TLS(field) offsetof(struct config, tls) + offsetof(struct config_tls, field)

static const struct key tls_keys[] = {
	{"cert_file", KEY_STRING, TLS(cert_file), 1, 4096, NULL},
	{"key_file", KEY_STRING, TLS(key_file), 1, 4096, NULL},
	{"client_ca_file", KEY_STRING, TLS(client_ca_file), 1, 4096, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

#define AUTH(field) offsetof(struct config, auth) + offsetof(struct config_auth, field)

static const struct key auth_keys[] = {
	{"token_endpoint", KEY_BOOL, AUTH(token_endpoint), 0, 0, NULL},
	{"signing_key_file", KEY_STRING, AUTH(signing_key_file), 1, 4096, NULL},
	{"token_lifetime_s", KEY_UINT, AUTH(token_lifetime_s), 10, 3600, NULL},
	{"clients", KEY_CLIENTS, AUTH(clients), 0, 0, NULL},
	{"issuers", KEY_ISSUERS, AUTH(issuers), 0, 0, NULL},
	{NULL, 0, 0, 0, 0, NULL},
};

static const char *const purpose_names[] = {"treatment", "operations", "billing", "recovery"};

/* A member of an auth.clients / auth.issuers entry. */
struct member_rule {
	const char *name;
	int type;   /* cJSON_String, cJSON_Object or cJSON_True (a boolean) */
	size_t max; /* strings: longest length */
};

static const struct member_rule client_members[] = {
	{"client_id", cJSON_String, 128},
	{"jwks", cJSON_Object, 0},
	{"jwks_url", cJSON_String, 2048},
	{"scopes", cJSON_String, 8192},
	{"purpose", cJSON_String, 32},
	{"tls_fingerprint", cJSON_String, 128},
	{"tls_subject", cJSON_String, 1024},
	{"plugins", cJSON_Object, 0},
	{"organization", cJSON_String, 256},
	{"part2_program", cJSON_True, 0},
	{"patient", cJSON_String, 64}, /* a Patient id: the launch context of its tokens */
	{NULL, 0, 0},
};

static const struct member_rule issuer_members[] = {
	{"issuer", cJSON_String, 2048}, {"jwks_url", cJSON_String, 2048},     {"audience", cJSON_String, 2048},
	{"purpose", cJSON_String, 32},  {"purpose_claim", cJSON_String, 128}, {NULL, 0, 0},
};

/* Checks one entry's members against rules; NULL or the reason (member in *which). */
static const char *entry_members_ok(const cJSON *e, const struct member_rule *rules, const char **which)
{
	for (const cJSON *m = e->child; m; m = m->next) {
		*which = m->string;
		const struct member_rule *r = rules;
		while (r->name && strcmp(r->name, m->string) != 0)
			r++;
		if (!r->name)
			return "unknown key";
		if (r->type == cJSON_String &&
		    (!cJSON_IsString(m) || !*m->valuestring || strlen(m->valuestring) > r->max))
			return "must be a non-empty string";
		if (r->type == cJSON_String && strpbrk(m->valuestring, "\r\n\t\"\\"))
			return "must not hold control characters, quotes or backslashes";
		if (r->type == cJSON_Object && !cJSON_IsObject(m))
			return "must be an object";
		if (r->type == cJSON_True && !cJSON_IsBool(m))
			return "must be true or false";
		if (!strcmp(m->string, "purpose")) {
			bool known = false;
			for (size_t i = 0; i < 4; i++)
				known |= !strcmp(m->valuestring, purpose_names[i]);
			if (!known)
				return "must be treatment, operations, billing or recovery";
		}
		if (!strcmp(m->string, "jwks_url") || !strcmp(m->string, "issuer")) {
			char w[256];
			if (!config_upstream_url_ok(m->valuestring, w, sizeof w))
				return "must be an https:// URL (http:// only to a loopback address)";
		}
		if (!strcmp(m->string, "tls_fingerprint")) {
			size_t hex = 0;
			for (const char *p = m->valuestring; *p; p++) {
				if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F'))
					hex++;
				else if (*p != ':')
					return "must be the SHA-256 fingerprint in hex (colons allowed)";
			}
			if (hex != 64)
				return "must be the SHA-256 fingerprint in hex: 64 digits";
		}
		if (!strcmp(m->string, "jwks")) {
			const cJSON *keys = cJSON_GetObjectItemCaseSensitive(m, "keys");
			if (!cJSON_IsArray(keys) || !cJSON_GetArraySize(keys))
				return "must be a JWK Set: {\"keys\":[...]} with at least one key";
		}
	}
	*which = NULL;
	return NULL;
}

/* auth.clients / auth.issuers: an array of entries, each checked. */
static int entries_ok(const cJSON *m, bool clients, const char *file, const char *key, char *err, size_t errlen)
{
	if (!cJSON_IsArray(m))
		return fail(err, errlen, file, key, "must be an array of objects");
	size_t i = 0;
	for (const cJSON *e = m->child; e; e = e->next, i++) {
		char sub[320];
		if (!cJSON_IsObject(e)) {
			snprintf(sub, sizeof sub, "%s[%zu]", key, i);
			return fail(err, errlen, file, sub, "must be an object");
		}
		const char *which = NULL;
		const char *why = entry_members_ok(e, clients ? client_members : issuer_members, &which);
		if (why) {
			snprintf(sub, sizeof sub, "%s[%zu].%s", key, i, which);
			return fail(err, errlen, file, sub, "%s", why);
		}
		const char *id_key = clients ? "client_id" : "issuer";
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, id_key);
		snprintf(sub, sizeof sub, "%s[%zu].%s", key, i, id_key);
		if (!id)
			return fail(err, errlen, file, sub, "is required");
		for (const cJSON *o = m->child; o != e; o = o->next)
			if (!strcmp(cJSON_GetObjectItemCaseSensitive(o, id_key)->valuestring, id->valuestring))
				return fail(err, errlen, file, sub, "\"%s\" is given twice", id->valuestring);
		bool jwks = cJSON_GetObjectItemCaseSensitive(e, "jwks") != NULL;
		bool url = cJSON_GetObjectItemCaseSensitive(e, "jwks_url") != NULL;
		snprintf(sub, sizeof sub, "%s[%zu]", key, i);
		if (clients && jwks && url)
			return fail(err, errlen, file, sub, "give jwks or jwks_url, not both");
		if (clients && !jwks && !url && !cJSON_GetObjectItemCaseSensitive(e, "tls_fingerprint") &&
		    !cJSON_GetObjectItemCaseSensitive(e, "tls_subject"))
			return fail(err, errlen, file, sub,
				    "needs a way to authenticate: jwks, jwks_url, tls_fingerprint or tls_subject");
		static const char id_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.";
		const cJSON *pt = clients ? cJSON_GetObjectItemCaseSensitive(e, "patient") : NULL;
		if (pt && (!pt->valuestring[0] || strspn(pt->valuestring, id_chars) != strlen(pt->valuestring))) {
			snprintf(sub, sizeof sub, "%s[%zu].patient", key, i);
			return fail(err, errlen, file, sub, "is not a Patient id (letters, digits, '-' and '.')");
		}
		if (!clients && !url)
			return fail(err, errlen, file, sub, "jwks_url is required");
		if (!clients && !cJSON_GetObjectItemCaseSensitive(e, "audience"))
			return fail(err, errlen, file, sub, "audience is required");
	}
	return 0;
}

static const struct key top_keys[] = {
	{"listen", KEY_LISTEN, offsetof(struct config, listen), 0, 0, NULL},
	{"data_dir", KEY_STRING, offsetof(struct config, data_dir), 1, 4096, NULL},
	{"plugin_dir", KEY_STRING, offsetof(struct config, plugin_dir), 1, 4096, NULL},
	{"profiles_dir", KEY_STRING, offsetof(struct config, profiles_dir), 1, 4096, NULL},
	{"threads", KEY_UINT, offsetof(struct config, threads), 0, 256, NULL},
	{"public_base_url", KEY_STRING, offsetof(struct config, public_base_url), 8, 200, NULL},
	{"log_level", KEY_LEVEL, offsetof(struct config, log_level), 0, 0, NULL},
	{"limits", KEY_OBJECT, 0, 0, 0, limit_keys},
	{"codes", KEY_OBJECT, 0, 0, 0, codes_keys},
	{"plugins", KEY_OBJECT, offsetof(struct config, plugins), 0, 0, NULL},
	{"upstream", KEY_OBJECT, 0, 0, 0, upstream_keys},
	{"bulk", KEY_OBJECT, 0, 0, 0, bulk_keys},
	{"store", KEY_OBJECT, 0, 0, 0, store_keys},
	{"tls", KEY_OBJECT, 0, 0, 0, tls_keys},
	{"auth", KEY_OBJECT, 0, 0, 0, auth_keys},
	{"audit", KEY_OBJECT, 0, 0, 0, audit_keys},
	{"privacy", KEY_OBJECT, 0, 0, 0, privacy_keys},
	{"validation", KEY_OBJECT, 0, 0, 0, validation_keys},
	{NULL, 0, 0, 0, 0, NULL},
};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->listen = strdup("127.0.0.1:8080");
	const struct cw_paths *paths = paths_default();
	cfg->data_dir = strdup(paths->data_dir);
	cfg->plugin_dir = strdup(paths->plugin_dir);
	cfg->profiles_dir = strdup(paths->profiles_dir);
	cfg->plugins = cJSON_CreateObject();
	cfg->log_level = LOG_INFO;
	cfg->limits = (struct config_limits){
		.max_body_bytes = 16ULL << 20,
		.max_header_bytes = 32768,
		.max_connections = 512,
		.max_connections_per_ip = 64,
		.header_timeout_ms = 10000,
		.request_timeout_ms = 30000,
		.shutdown_grace_ms = 10000,
		.json_max_depth = 1000,
		.json_max_members = 10000,
		.json_max_array_items = 100000,
		.json_memory_budget_bytes = 64ULL << 20,
		.read_cache_bytes = 64ULL << 20, /* STORE_CACHE_DEFAULT_BYTES */
		.max_file_bytes = 2ULL << 30,
	};
	cfg->upstream = (struct config_upstream){
		.connect_timeout_ms = 5000,
		.timeout_ms = 30000,
		.max_response_bytes = 64ULL << 20,
		.max_concurrent = 64,
		.max_attempts = 12,
		.retry_base_ms = 500,
		.retry_max_ms = 300000,
		.high_water = 100000,
		.delivery_workers = 4,
	};
	cfg->bulk = (struct config_bulk){
		.expiry_s = 7 * 86400,
		.file_max_bytes = 256ULL << 20,
		.max_jobs = 64,
	};
	cfg->auth.token_lifetime_s = 300;
	cfg->audit = (struct config_audit){
		.enabled = true, .durability = strdup("durable"), .flush_ms = 50, .batch_max = 10000};
	if (!cfg->audit.durability || !cfg->listen || !cfg->data_dir || !cfg->plugin_dir || !cfg->profiles_dir ||
	    !cfg->plugins)
		return -1;
	char err[64];
	return config_set_listen(cfg, cfg->listen, err, sizeof err);
}

bool config_host_is_loopback(const char *host)
{
	if (strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0)
		return true;
	struct in_addr a;
	if (inet_pton(AF_INET, host, &a) == 1)
		return (ntohl(a.s_addr) >> 24) == 127;
	return false;
}

int config_set_listen(struct config *cfg, const char *value, char *err, size_t errlen)
{
	const char *colon;
	char host[256];
	bool v6 = false;
	if (value[0] == '[') {
		const char *close = strchr(value, ']');
		if (!close || close[1] != ':') {
			snprintf(err, errlen, "expected \"[ipv6]:port\"");
			return -1;
		}
		size_t hl = (size_t)(close - value - 1);
		if (hl == 0 || hl >= sizeof host) {
			snprintf(err, errlen, "bad IPv6 address");
			return -1;
		}
		memcpy(host, value + 1, hl);
		host[hl] = '\0';
		colon = close + 1;
		v6 = true;
		struct in6_addr a6;
		if (inet_pton(AF_INET6, host, &a6) != 1) {
			snprintf(err, errlen, "\"%s\" is not an IPv6 address", host);
			return -1;
		}
	} else {
		colon = strrchr(value, ':');
		if (!colon || colon == value || (size_t)(colon - value) >= sizeof host) {
			snprintf(err, errlen, "expected \"host:port\"");
			return -1;
		}
		memcpy(host, value, (size_t)(colon - value));
		host[colon - value] = '\0';
		struct in_addr a;
		if (strcmp(host, "localhost") != 0 && inet_pton(AF_INET, host, &a) != 1) {
			snprintf(err, errlen, "\"%s\" is not an IPv4 address or localhost", host);
			return -1;
		}
	}
	const char *ps = colon + 1;
	char *end;
	errno = 0;
	unsigned long port = strtoul(ps, &end, 10);
	if (!*ps || *end || errno || port > 65535 || *ps == '-' || *ps == '+') {
		snprintf(err, errlen, "port must be a number from 0 to 65535");
		return -1;
	}
	snprintf(cfg->listen_host, sizeof cfg->listen_host, "%s",
		 strcmp(host, "localhost") == 0 ? "127.0.0.1" : host);
	cfg->listen_port = (unsigned)port;
	cfg->listen_ipv6 = v6;
	if (cfg->listen != value) {
		char *dup = strdup(value);
		if (!dup) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		free(cfg->listen);
		cfg->listen = dup;
	}
	return 0;
}

static int fail(char *err, size_t errlen, const char *file, const char *key, const char *fmt, ...)
{
	char reason[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: %s: %s", file, key, reason);
	return -1;
}

static int apply(struct config *cfg, const struct key *schema, const cJSON *obj, const char *prefix,
		 const char *file, char *err, size_t errlen)
{
	for (const cJSON *m = obj->child; m; m = m->next) {
		char key[256];
		snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", m->string);
		const struct key *k = schema;
		while (k->name && strcmp(k->name, m->string) != 0)
			k++;
		if (!k->name)
			return fail(err, errlen, file, key, "unknown key");
		char *base = (char *)cfg + k->offset;
		switch (k->type) {
		case KEY_STRING: {
			if (!cJSON_IsString(m))
				return fail(err, errlen, file, key, "must be a string");
			size_t len = strlen(m->valuestring);
			if (len < k->min || len > k->max)
				return fail(err, errlen, file, key, "must be %llu to %llu characters",
					    (unsigned long long)k->min, (unsigned long long)k->max);
			char *dup = strdup(m->valuestring);
			if (!dup)
				return fail(err, errlen, file, key, "out of memory");
			free(*(char **)base);
			*(char **)base = dup;
			break;
		}
		case KEY_LISTEN: {
			if (!cJSON_IsString(m))
				return fail(err, errlen, file, key, "must be a string \"host:port\"");
			char why[256];
			if (config_set_listen(cfg, m->valuestring, why, sizeof why) != 0)
				return fail(err, errlen, file, key, "%s", why);
			break;
		}
		case KEY_UINT: {
			const char *lit = fjson_number_literal(m);
			if (!cJSON_IsNumber(m) || !lit || strpbrk(lit, ".eE-"))
				return fail(err, errlen, file, key, "must be a whole number from %llu to %llu",
					    (unsigned long long)k->min, (unsigned long long)k->max);
			errno = 0;
			unsigned long long v = strtoull(lit, NULL, 10);
			if (errno || v < k->min || v > k->max)
				return fail(err, errlen, file, key, "must be a whole number from %llu to %llu",
					    (unsigned long long)k->min, (unsigned long long)k->max);
			if (k->offset == offsetof(struct config, threads))
				*(unsigned *)base = (unsigned)v;
			else
				*(uint64_t *)base = v;
			break;
		}
		case KEY_LEVEL: {
			int found = -1;
			for (int i = 0; cJSON_IsString(m) && i < 4; i++)
				if (strcmp(m->valuestring, level_names[i]) == 0)
					found = i;
			if (found < 0)
				return fail(err, errlen, file, key, "must be one of debug, info, warn, error");
			*(enum log_level *)base = (enum log_level)found;
			break;
		}
		case KEY_ROUTES: {
			if (!cJSON_IsObject(m))
				return fail(err, errlen, file, key, "must be an object: resource type or \"*\" → route");
			for (const cJSON *c = m->child; c; c = c->next) {
				char sub[320];
				snprintf(sub, sizeof sub, "%s.%s", key, c->string);
				if (strcmp(c->string, "*") != 0 && !model_resource(c->string))
					return fail(err, errlen, file, sub, "not a FHIR R4 resource type (or \"*\")");
				bool known = false;
				for (size_t i = 0; cJSON_IsString(c) && i < 3; i++)
					known |= !strcmp(c->valuestring, route_names[i]);
				if (!known)
					return fail(err, errlen, file, sub, "must be local, pass-through or store-and-forward");
			}
			cJSON *dup = cJSON_Duplicate(m, 1);
			if (!dup)
				return fail(err, errlen, file, key, "out of memory");
			cJSON_Delete(*(cJSON **)base);
			*(cJSON **)base = dup;
			break;
		}
		case KEY_BOOL:
			if (!cJSON_IsBool(m))
				return fail(err, errlen, file, key, "must be true or false");
			*(bool *)base = cJSON_IsTrue(m);
			if (k->offset == AUTH(token_endpoint))
				cfg->auth.token_endpoint_set = true;
			break;
		case KEY_URIS: {
			if (!cJSON_IsArray(m) || (uint64_t)cJSON_GetArraySize(m) < k->min ||
			    (uint64_t)cJSON_GetArraySize(m) > k->max)
				return fail(err, errlen, file, key, "must be an array of %llu to %llu absolute URIs",
					    (unsigned long long)k->min, (unsigned long long)k->max);
			for (const cJSON *c = m->child; c; c = c->next) {
				const char *v = cJSON_IsString(c) ? c->valuestring : NULL;
				size_t scheme =
					v ? strspn(v,
						   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
					  : 0;
				if (!v || scheme == 0 || v[scheme] != ':' || !v[scheme + 1] || strlen(v) > 1024 ||
				    strpbrk(v, " \t\r\n|"))
					return fail(err, errlen, file, key,
						    "each entry must be an absolute URI (no white space or '|')");
				for (const cJSON *o = m->child; o != c; o = o->next)
					if (!strcmp(o->valuestring, v))
						return fail(err, errlen, file, key, "\"%s\" is given twice", v);
			}
			cJSON *dup = cJSON_Duplicate(m, 1);
			if (!dup)
				return fail(err, errlen, file, key, "out of memory");
			cJSON_Delete(*(cJSON **)base);
			*(cJSON **)base = dup;
			break;
		}
		case KEY_TYPE_URLS: {
			if (!cJSON_IsObject(m))
				return fail(err, errlen, file, key, "must be an object: resource type → profile URL");
			for (const cJSON *c = m->child; c; c = c->next) {
				char sub[320];
				snprintf(sub, sizeof sub, "%s.%s", key, c->string);
				if (!model_resource(c->string))
					return fail(err, errlen, file, sub, "not a FHIR R4 resource type");
				if (!cJSON_IsString(c) || !strchr(c->valuestring, ':') || strlen(c->valuestring) > 1024)
					return fail(err, errlen, file, sub, "must be a profile's canonical URL");
			}
			cJSON *dup = cJSON_Duplicate(m, 1);
			if (!dup)
				return fail(err, errlen, file, key, "out of memory");
			cJSON_Delete(*(cJSON **)base);
			*(cJSON **)base = dup;
			break;
		}
		case KEY_CLIENTS:
		case KEY_ISSUERS: {
			if (entries_ok(m, k->type == KEY_CLIENTS, file, key, err, errlen) != 0)
				return -1;
			cJSON *dup = cJSON_Duplicate(m, 1);
			if (!dup)
				return fail(err, errlen, file, key, "out of memory");
			cJSON_Delete(*(cJSON **)base);
			*(cJSON **)base = dup;
			break;
		}
		case KEY_OBJECT:
			if (!cJSON_IsObject(m))
				return fail(err, errlen, file, key, "must be an object");
			if (k->children) {
				if (apply(cfg, k->children, m, key, file, err, errlen) != 0)
					return -1;
			} else {
				for (const cJSON *c = m->child; c; c = c->next)
					if (!cJSON_IsObject(c)) {
						char sub[320];
						snprintf(sub, sizeof sub, "%s.%s", key, c->string);
						return fail(err, errlen, file, sub, "must be an object");
					}
				cJSON *dup = cJSON_Duplicate(m, 1);
				if (!dup)
					return fail(err, errlen, file, key, "out of memory");
				cJSON_Delete(*(cJSON **)base);
				*(cJSON **)base = dup;
			}
			break;
		}
	}
	return 0;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	if (config_defaults(cfg) != 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		config_release(cfg);
		return -1;
	}
	free(cfg->source);
	cfg->source = strdup(path);
	size_t len = 0;
	char why[256];
	char *text = file_read_all(path, 1 << 20, &len, why, sizeof why);
	if (!text) {
		snprintf(err, errlen, "%s: cannot read: %s", path, why);
		config_release(cfg);
		return -1;
	}
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	struct fjson_error jerr;
	cJSON *root = fjson_parse(text, len, &lim, &jerr);
	free(text);
	if (!root) {
		snprintf(err, errlen, "%s: line %d column %d: %s", path, jerr.line, jerr.column, jerr.message);
		config_release(cfg);
		return -1;
	}
	int rc = 0;
	if (!cJSON_IsObject(root))
		rc = fail(err, errlen, path, "(top level)", "must be a JSON object");
	else
		rc = apply(cfg, top_keys, root, "", path, err, errlen);
	cJSON_Delete(root);
	const char *env = getenv("CROSSWALK_LISTEN");
	if (rc == 0 && env && config_set_listen(cfg, env, why, sizeof why) != 0)
		rc = fail(err, errlen, "environment", "CROSSWALK_LISTEN", "%s", why);
	const char *up = getenv("CROSSWALK_UPSTREAM");
	if (rc == 0 && up && *up) {
		char *dup = strdup(up);
		if (!dup)
			rc = fail(err, errlen, "environment", "CROSSWALK_UPSTREAM", "out of memory");
		free(cfg->upstream.base_url);
		cfg->upstream.base_url = dup;
	}
	if (rc == 0 && cfg->upstream.base_url && !config_upstream_url_ok(cfg->upstream.base_url, why, sizeof why))
		rc = fail(err, errlen, up && *up ? "environment" : path, up && *up ? "CROSSWALK_UPSTREAM" : "upstream.base_url",
			  "%s", why);
	if (rc == 0 && cfg->public_base_url && !config_public_url_ok(cfg->public_base_url, why, sizeof why))
		rc = fail(err, errlen, path, "public_base_url", "%s", why);
	const struct config_store *sc = &cfg->store;
	if (rc == 0 && sc->backend && strcmp(sc->backend, "sqlite") != 0 && strcmp(sc->backend, "postgresql") != 0)
		rc = fail(err, errlen, path, "store.backend", "must be \"sqlite\" or \"postgresql\"");
	if (rc == 0 && sc->backend && strcmp(sc->backend, "postgresql") == 0 && !sc->pg_conninfo)
		rc = fail(err, errlen, path, "store.postgresql.conninfo",
			  "is required with store.backend \"postgresql\"");
	struct config_tls *t = &cfg->tls;
	if (rc == 0 && !t->cert_file != !t->key_file)
		rc = fail(err, errlen, path, t->cert_file ? "tls.key_file" : "tls.cert_file",
			  "is required with %s (TLS needs both a certificate and its key)",
			  t->cert_file ? "tls.cert_file" : "tls.key_file");
	if (rc == 0 && t->client_ca_file && !t->cert_file)
		rc = fail(err, errlen, path, "tls.client_ca_file",
			  "needs tls.cert_file and tls.key_file (mutual TLS is TLS)");
	if (rc == 0 && strcmp(cfg->audit.durability, "durable") != 0 && strcmp(cfg->audit.durability, "batch") != 0)
		rc = fail(err, errlen, path, "audit.durability", "must be durable or batch");
	const struct {
		const char *key, *value;
	} restricted[] = {{"privacy.restricted.default", cfg->privacy.restricted_default},
			  {"privacy.restricted.TREAT", cfg->privacy.restricted_treat},
			  {"privacy.restricted.HPAYMT", cfg->privacy.restricted_payment},
			  {"privacy.restricted.HOPERAT", cfg->privacy.restricted_ops}};
	for (size_t i = 0; rc == 0 && i < sizeof restricted / sizeof restricted[0]; i++)
		if (restricted[i].value && strcmp(restricted[i].value, "permit") != 0 &&
		    strcmp(restricted[i].value, "deny") != 0)
			rc = fail(err, errlen, path, restricted[i].key, "must be permit or deny");
	if (rc == 0 && cfg->validation.on_write && strcmp(cfg->validation.on_write, "structural") != 0 &&
	    strcmp(cfg->validation.on_write, "profiles") != 0)
		rc = fail(err, errlen, path, "validation.on_write", "must be structural or profiles");
	if (rc == 0 && cfg->validation.ingest && strcmp(cfg->validation.ingest, "error") != 0 &&
	    strcmp(cfg->validation.ingest, "warn") != 0 && strcmp(cfg->validation.ingest, "off") != 0)
		rc = fail(err, errlen, path, "validation.ingest", "must be error, warn or off");
	if (rc == 0 && !cfg->auth.token_endpoint_set)
		cfg->auth.token_endpoint = cfg->auth.clients && cJSON_GetArraySize(cfg->auth.clients) > 0;
	if (rc != 0)
		config_release(cfg);
	return rc;
}

void config_fhir_base(const struct config *cfg, const char *authority, char *buf, size_t n)
{
	if (cfg->public_base_url)
		snprintf(buf, n, "%s", cfg->public_base_url);
	else
		snprintf(buf, n, "%s://%s/fhir", cfg->tls.cert_file ? "https" : "http",
			 authority ? authority : cfg->listen);
}

bool config_auth_configured(const struct config *cfg)
{
	return (cfg->auth.clients && cJSON_GetArraySize(cfg->auth.clients) > 0) ||
	       (cfg->auth.issuers && cJSON_GetArraySize(cfg->auth.issuers) > 0);
}

int config_check_exposure(const struct config *cfg, char *err, size_t errlen)
{
	if (config_host_is_loopback(cfg->listen_host))
		return 0;
	const char *src = cfg->source ? cfg->source : "(defaults)";
	bool auth = config_auth_configured(cfg), tls = cfg->tls.cert_file != NULL;
	if (!auth || !tls)
		return fail(err, errlen, src, "listen",
			    "%s is not a loopback address; serving beyond loopback requires %s%s%s", cfg->listen,
			    auth ? "" : "authentication (auth.clients or auth.issuers)", !auth && !tls ? " and " : "",
			    tls ? "" : "TLS (tls.cert_file and tls.key_file)");
	return 0;
}

void config_json_limits(const struct config *cfg, struct fjson_limits *out)
{
	fjson_limits_default(out);
	if (!cfg)
		return;
	out->max_depth = (size_t)cfg->limits.json_max_depth;
	out->max_members = (size_t)cfg->limits.json_max_members;
	out->max_array_items = (size_t)cfg->limits.json_max_array_items;
	out->memory_budget = (size_t)cfg->limits.json_memory_budget_bytes;
}

void config_release(struct config *cfg)
{
	free(cfg->source);
	free(cfg->listen);
	free(cfg->public_base_url);
	free(cfg->data_dir);
	free(cfg->plugin_dir);
	free(cfg->plugin_dir_extra);
	free(cfg->profiles_dir);
	free(cfg->cpt_file);
	cJSON_Delete(cfg->plugins);
	struct config_upstream *u = &cfg->upstream;
	free(u->base_url);
	free(u->bearer_token_env);
	free(u->basic_user);
	free(u->basic_password_env);
	free(u->ca_file);
	free(u->client_cert);
	free(u->client_key);
	free(u->organization);
	free(u->purpose_of_use);
	cJSON_Delete(u->routes);
	cJSON_Delete(u->match_systems);
	free(cfg->store.backend);
	free(cfg->store.pg_conninfo);
	free(cfg->tls.cert_file);
	free(cfg->tls.key_file);
	free(cfg->tls.client_ca_file);
	free(cfg->auth.signing_key_file);
	cJSON_Delete(cfg->auth.clients);
	cJSON_Delete(cfg->auth.issuers);
	free(cfg->audit.durability);
	free(cfg->privacy.restricted_default);
	free(cfg->privacy.restricted_treat);
	free(cfg->privacy.restricted_payment);
	free(cfg->privacy.restricted_ops);
	free(cfg->validation.on_write);
	free(cfg->validation.ingest);
	free(cfg->validation.packages_dir);
	cJSON_Delete(cfg->validation.profiles);
	memset(cfg, 0, sizeof *cfg);
}
