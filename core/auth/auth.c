#include "auth/auth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/metrics.h"

struct auth_client {
	char *client_id;
	char *scopes;
	enum auth_purpose purpose;
	char fingerprint[65];    /* lowercase hex without colons, or "" */
	const char *tls_subject; /* into cfg, or NULL */
};

struct auth {
	const struct config *cfg;
	struct auth_client *clients;
	size_t nclients;
	bool enabled;
};

static enum auth_purpose purpose_of(const cJSON *entry)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(entry, "purpose");
	if (!cJSON_IsString(p))
		return AUTH_TREATMENT;
	if (!strcmp(p->valuestring, "operations"))
		return AUTH_OPERATIONS;
	if (!strcmp(p->valuestring, "billing"))
		return AUTH_BILLING;
	if (!strcmp(p->valuestring, "recovery"))
		return AUTH_RECOVERY;
	return AUTH_TREATMENT;
}

static const char *string_of(const cJSON *entry, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(entry, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

struct auth *auth_new(const struct config *cfg, char *err, size_t errlen)
{
	struct auth *a = calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->cfg = cfg;
	a->enabled = config_auth_configured(cfg);
	size_t n = cfg->auth.clients ? (size_t)cJSON_GetArraySize(cfg->auth.clients) : 0;
	a->clients = n ? calloc(n, sizeof *a->clients) : NULL;
	if (n && !a->clients) {
		snprintf(err, errlen, "out of memory");
		auth_free(a);
		return NULL;
	}
	for (const cJSON *e = n ? cfg->auth.clients->child : NULL; e; e = e->next) {
		struct auth_client *c = &a->clients[a->nclients++];
		const char *scopes = string_of(e, "scopes");
		c->client_id = strdup(string_of(e, "client_id"));
		c->scopes = strdup(scopes ? scopes : "");
		if (!c->client_id || !c->scopes) {
			snprintf(err, errlen, "out of memory");
			auth_free(a);
			return NULL;
		}
		c->purpose = purpose_of(e);
		const char *fp = string_of(e, "tls_fingerprint");
		size_t k = 0;
		for (; fp && *fp && k < 64; fp++)
			if (*fp != ':')
				c->fingerprint[k++] = (char)tolower((unsigned char)*fp);
		c->fingerprint[k] = '\0';
		c->tls_subject = string_of(e, "tls_subject");
	}
	return a;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nclients; i++) {
		free(a->clients[i].client_id);
		free(a->clients[i].scopes);
	}
	free(a->clients);
	free(a);
}

bool auth_enabled(const struct auth *a) { return a && a->enabled; }

/* Routes anyone may call: liveness, the CapabilityStatement, SMART
 * discovery and the token endpoint (which authenticates the client itself). */
static bool route_public(const char *path)
{
	return !strcmp(path, "/healthz") || !strcmp(path, "/fhir/metadata") ||
	       !strncmp(path, "/fhir/.well-known/", 18) || !strcmp(path, "/auth/token");
}

/* Routes the operator on the machine may call without credentials. */
static bool route_open_to_loopback(const char *path)
{
	return !strcmp(path, "/metrics") || !strcmp(path, "/outbox") || !strncmp(path, "/outbox/", 8);
}

static const struct auth_client *client_by_certificate(const struct auth *a, const struct http_request *req)
{
	if (!req->tls_client_sha256)
		return NULL;
	for (size_t i = 0; i < a->nclients; i++)
		if (a->clients[i].fingerprint[0] && !strcmp(a->clients[i].fingerprint, req->tls_client_sha256))
			return &a->clients[i];
	for (size_t i = 0; i < a->nclients; i++)
		if (a->clients[i].tls_subject && req->tls_client_subject &&
		    !strcmp(a->clients[i].tls_subject, req->tls_client_subject))
			return &a->clients[i];
	return NULL;
}

/* The 401: an OperationOutcome and the challenge. */
static bool unauthorized(struct http_response *resp, enum metrics_auth_refusal why, bool token_sent, const char *diag)
{
	metrics_auth_refused(why);
	resp->route = "(unauthenticated)";
	http_set_error(resp, 401, "login", "%s", diag);
	http_add_header(resp, "WWW-Authenticate",
			token_sent ? "Bearer realm=\"crosswalk\", error=\"invalid_token\""
				   : "Bearer realm=\"crosswalk\"");
	return false;
}

bool auth_authenticate(const struct auth *a, const struct http_request *req, struct http_response *resp,
		       struct auth_principal *out)
{
	memset(out, 0, sizeof *out);
	if (!auth_enabled(a) || route_public(req->path))
		return true;
	const struct auth_client *c = client_by_certificate(a, req);
	const char *authz = http_header(req, "Authorization");
	bool token_sent = authz && !strncasecmp(authz, "Bearer ", 7);
	if (c && !token_sent) {
		*out = (struct auth_principal){c->client_id, c->scopes, c->purpose, "mtls"};
		return true;
	}
	if (!token_sent && route_open_to_loopback(req->path) && config_host_is_loopback(req->client)) {
		out->via = "loopback";
		return true;
	}
	if (token_sent)
		return unauthorized(resp, METRICS_AUTH_MALFORMED, true, "the bearer token could not be verified");
	if (req->tls_client_sha256)
		return unauthorized(resp, METRICS_AUTH_UNKNOWN_CLIENT, false,
				    "the client certificate belongs to no configured client (auth.clients)");
	return unauthorized(resp, METRICS_AUTH_NO_CREDENTIALS, false,
			    "authentication required: send a bearer token (Authorization: Bearer ...)");
}
