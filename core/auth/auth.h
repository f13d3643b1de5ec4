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

/* What a client's answers are for (auth.clients[].purpose; for an external
 * issuer auth.issuers[].purpose, or the token's claim named by
 * auth.issuers[].purpose_claim when it carries one). */
enum auth_purpose { AUTH_TREATMENT, AUTH_OPERATIONS, AUTH_BILLING, AUTH_RECOVERY };

/* The purpose (enum auth_purpose) of the configured client client_id
 * (auth.clients), or -1 when no configured client has that id. */
int auth_client_purpose(const struct config *cfg, const char *client_id);

#define AUTH_SCOPES_MAX 8192

/* The authenticated party of one request. */
struct auth_principal {
	const char *client_id; /* configured client id (into the auth), or NULL */
	enum auth_purpose purpose;
	bool configured;                  /* client_id is one of auth.clients (else an external subject or NULL) */
	bool part2_program;               /* auth.clients[].part2_program: a 42 CFR Part 2 program */
	const char *via;                  /* "mtls", "token", or "loopback" (an open route from a loopback peer) */
	char scopes[AUTH_SCOPES_MAX + 1]; /* space-separated granted scopes */
	/* a token of an external issuer (auth.issuers): client_id points to
	 * subject (its client_id, azp or sub claim); launch context from its
	 * patient and fhirUser claims ("" when absent) */
	char subject[256];
	char patient[128];
	char fhir_user[256];
};

struct auth;

/* Builds the tables from cfg (which must outlive the auth): the clients'
 * keys, and with the token endpoint on, the signing key (auth.signing_key_file,
 * or DATA_DIR/auth-signing-key.pem, generated mode 0600 at the first start)
 * and the jti replay file (DATA_DIR/auth-jti). NULL with a reason in err
 * ("auth.clients[0].jwks: keys[1]: ..."). */
struct auth *auth_new(const struct config *cfg, char *err, size_t errlen);
void auth_free(struct auth *a);

/* Keeps the replay cache of client assertions elsewhere from now on: in a
 * store several gateways share, so that an assertion taken by one gateway
 * is refused by every other. fn answers as replay_record (auth/replay.h):
 * 1 new, 0 taken before, -1 cannot record (the token request then answers
 * 503). The file DATA_DIR/auth-jti is closed and no longer written. Call it
 * once after auth_new, before serving; fn and ctx must outlive a; fn is
 * called from any thread. */
typedef int auth_replay_fn(void *ctx, const char *iss, const char *jti, long long exp, long long now);
void auth_share_replay(struct auth *a, auth_replay_fn *fn, void *ctx);

/* True when auth.clients or auth.issuers is configured. */
bool auth_enabled(const struct auth *a);

/* Decides who sends req. Returns true with *out filled when the request may
 * proceed (also when auth is off or the route is public: out->client_id is
 * then NULL); false after setting the 401 on resp. */
bool auth_authenticate(const struct auth *a, const struct http_request *req, struct http_response *resp,
		       struct auth_principal *out);

/* Decides whether who may make req (after auth_authenticate): the
 * interaction its method and path are (auth_interaction) on its type;
 * /metrics and /outbox need system/crosswalk.admin (or a loopback peer
 * without credentials); $validate, $convert and the terminology operations
 * any valid token; a bulk export kick-off ($export) some scope that reads
 * and searches (rs) some type (api_bulk decides type by type), its status
 * and files any valid token (they are the kicking-off client's: api_bulk
 * checks). Left to their handlers, which decide type by type or
 * entry by entry with auth_may: POST /fhir (each entry of a batch or
 * transaction), POST /ingest/{format} (each type written), GET and POST
 * /export/{format} (each type read), and a search's _include, _revinclude,
 * chains and _has (the search needs s on its own type here), and an
 * interaction on one resource (read, vread, its history, update, patch,
 * delete), a create without If-None-Exist or a search that only granular
 * scopes (with a query) or a patient/ scope on its patient's compartment
 * (auth_compartment) allow: the handler confines it to what their queries
 * match, or to the compartment. What is not
 * checked type by type yet (/plugins, other operations, includes or chains
 * outside a search) needs a scope on every type with every permission.
 * true, or false after setting a 403 OperationOutcome naming the missing
 * scope. */
bool auth_authorize(const struct auth *a, const struct auth_principal *who, const struct http_request *req,
		    struct http_response *resp);

/* The permissions (enum scope_perm bits) one FHIR interaction needs: method
 * on rel, a path below the FHIR base ("Type", "Type/id",
 * "Type/id/_history[/vid]", "Type/_search", "Type/_history", with or
 * without "?query"): read, vread, instance history r; search, type history
 * s; create c (with if_none_exist also s); update, patch u; delete d;
 * conditional forms (on "Type") also s. Its type into type (typelen bytes).
 * 0 for anything else (operations, the system level). Pure. */
unsigned auth_interaction(const char *method, const char *rel, bool if_none_exist, char *type, size_t typelen);

/* True when who may do perms on type: no principal or no client (auth off,
 * the loopback operator) may do everything; a client as its scopes say
 * (scope_allows). Pure. */
bool auth_may(const struct auth_principal *who, const char *type, unsigned perms);

/* The Patient (its id, into who) whose compartment (fhir/compartment.h)
 * confines who for perms on type: who may do them only through a patient/
 * scope (without a query), the token names its patient (the launch context:
 * the patient claim of an external issuer's token, auth.clients[].patient
 * for a configured client) and type is in the Patient compartment. NULL
 * when who may do perms whole (auth_may), or not at all. Pure. */
const char *auth_compartment(const struct auth_principal *who, const char *type, unsigned perms);

/* The granular scopes that give who perms on type (scope_queries), for a
 * client none of whose scopes gives them whole: up to max queries into
 * q/qlen, their count returned; 0 when who may do perms whole (auth_may)
 * or has no granular scope for them. Pure. */
size_t auth_granular(const struct auth_principal *who, const char *type, unsigned perms, const char **q, size_t *qlen,
		     size_t max);

/* The scope a refusal names, "system/T.letters (or user/T.letters)". */
void auth_scope_name(char *buf, size_t n, const char *type, unsigned perms);

/* Answers 403 (OperationOutcome code forbidden naming the scope,
 * WWW-Authenticate error="insufficient_scope") and counts it as
 * insufficient_scope. Returns false. */
bool auth_forbid(struct http_response *resp, const char *type, unsigned perms);

/* True when a search parameter's name reaches other types than the
 * searched one: _include, _revinclude, _has, a chain (a '.'). */
bool auth_reaches_other_types(const char *name);

/* POST /auth/token: SMART Backend Services client_credentials with a
 * jwt-bearer client assertion (RFC 7523), answered with an access token
 * signed by the gateway's key, or an RFC 6749 JSON error (invalid_client
 * 401; invalid_request, unsupported_grant_type, invalid_grant,
 * invalid_scope 400). 404 when the token endpoint is off. */
void auth_token(const struct auth *a, const struct http_request *req, struct http_response *resp);

/* GET /fhir/.well-known/smart-configuration: the SMART discovery document. */
void auth_smart_configuration(const struct auth *a, const struct http_request *req, struct http_response *resp);

/* The CapabilityStatement's rest.security for req (the SMART way of
 * declaring it): service SMART-on-FHIR and, with the token endpoint on, the
 * oauth-uris extension naming the token endpoint smart-configuration
 * announces. NULL when auth is off. Caller frees. */
cJSON *auth_capability_security(const struct auth *a, const struct http_request *req);

/* GET /auth/jwks: the public key of the gateway's tokens (a JWK Set). */
void auth_jwks(const struct auth *a, const struct http_request *req, struct http_response *resp);

/* True when the token endpoint is served. */
bool auth_token_endpoint_on(const struct auth *a);

#endif
