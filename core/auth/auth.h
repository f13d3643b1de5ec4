/* auth — who a request comes from, and whether it may come at all.
 *
 * Built once from the configuration's auth section (config/config.h): the
 * configured clients (auth.clients) with their scopes and purpose, and the
 * way each one proves who it is: a client certificate over mutual TLS
 * (tls_fingerprint, tls_subject), or a bearer token. When auth is configured
 * every request must authenticate, except the public routes (/healthz,
 * /fhir/metadata, /fhir/.well-known/..., /auth/token); /metrics and /outbox
 * are also open to a loopback peer (the operator on the machine). A refusal
 * is a 401 OperationOutcome with WWW-Authenticate: Bearer (error="invalid_token"
 * when a token was sent), counted in crosswalk_auth_refused_total by reason;
 * no credential is ever logged.
 *
 * Ownership: auth owns its tables; a principal points into them (valid while
 * the auth lives). Threads: built before serving, read-only after;
 * auth_authenticate is safe from many threads. */
#ifndef CW_AUTH_H
#define CW_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "http/http.h"

/* What a client's answers are for (auth.clients[].purpose). */
enum auth_purpose { AUTH_TREATMENT, AUTH_OPERATIONS, AUTH_BILLING, AUTH_RECOVERY };

/* The authenticated party of one request. */
struct auth_principal {
	const char *client_id; /* configured client id, or the token's subject for an external issuer */
	const char *scopes;    /* space-separated granted scopes */
	enum auth_purpose purpose;
	const char *via; /* "mtls", "token", or "loopback" (an open route from a loopback peer) */
};

struct auth;

/* Builds the tables from cfg (which must outlive the auth). NULL with a
 * reason in err ("auth.clients[0].purpose: ..."). */
struct auth *auth_new(const struct config *cfg, char *err, size_t errlen);
void auth_free(struct auth *a);

/* True when auth.clients or auth.issuers is configured. */
bool auth_enabled(const struct auth *a);

/* Decides who sends req. Returns true with *out filled when the request may
 * proceed (also when auth is off or the route is public: out->client_id is
 * then NULL); false after setting the 401 on resp. */
bool auth_authenticate(const struct auth *a, const struct http_request *req, struct http_response *resp,
		       struct auth_principal *out);

#endif
