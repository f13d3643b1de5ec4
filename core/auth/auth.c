#include "auth/auth.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "auth/replay.h"
#include "auth/scope.h"
#include "base/crypto.h"
#include "base/fjson.h"
#include "base/log.h"
#include "base/metrics.h"
#include "fhir/compartment.h"
#include "http/wire.h"
#include "upstream/upstream.h"

#define CLOCK_SKEW_S 60     /* exp / nbf leeway */
#define ASSERTION_MAX_S 300 /* a client assertion's exp at most this far ahead */
#define TOKEN_CACHE_SLOTS 1024
#define TOKEN_CACHE_SCOPES 1024
#define JWKS_REFETCH_S 60 /* an unknown kid refetches a JWKS at most this often */
#define JWKS_MAX_BYTES (256 * 1024)
#define JWKS_TIMEOUT_MS 5000

/* A JWK Set fetched from a URL: refetched when a token names a kid it does
 * not hold, at most once per JWKS_REFETCH_S; the lock is held during the
 * fetch, so concurrent requests with unknown kids wait for that one fetch
 * instead of starting their own. */
struct remote_keys {
	const char *url; /* into cfg */
	pthread_mutex_t lock;
	struct keyset ks;
	long long last_fetch; /* 0: never */
};

static const char jwt_bearer[] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct auth_client {
	char *client_id;
	char *scopes;
	enum auth_purpose purpose;
	bool part2_program;
	const char *patient;       /* auth.clients[].patient: the launch context, into cfg, or NULL */
	char fingerprint[65];      /* lowercase hex without colons, or "" */
	const char *tls_subject;   /* into cfg, or NULL */
	const char *jwks_url;      /* into cfg, or NULL */
	struct keyset keys;        /* inline jwks (empty when none) */
	struct remote_keys remote; /* from jwks_url */
};

struct auth_issuer {
	const char *issuer, *audience; /* into cfg */
	enum auth_purpose purpose;
	const char *purpose_claim; /* into cfg, or NULL */
	struct remote_keys remote;
};

/* A verified access token: its hash, and what it grants until exp. */
struct cached_token {
	uint8_t h[CRYPTO_SHA256_LEN];
	long long exp; /* 0: empty */
	size_t client;
	int issuer; /* -1: a client's token; else the index of the external issuer */
	char scopes[TOKEN_CACHE_SCOPES + 1];
	char subject[256], patient[128], fhir_user[256];
	enum auth_purpose purpose; /* an external token's */
};

struct auth {
	const struct config *cfg;
	struct auth_client *clients;
	size_t nclients;
	struct auth_issuer *issuers;
	size_t nissuers;
	bool enabled;
	bool token_endpoint;
	struct crypto_key *signing; /* the gateway's own key, or NULL */
	enum crypto_alg signing_alg;
	char signing_kid[44];
	struct replay *replay;
	auth_replay_fn *shared_replay; /* auth_share_replay: the replay cache elsewhere, else NULL */
	void *shared_replay_ctx;
	pthread_mutex_t cache_lock;
	struct cached_token *cache; /* TOKEN_CACHE_SLOTS */
};

static long long now_s(void) { return (long long)time(NULL); }

/* The purpose named s; -1 for none or an unknown name. */
static int purpose_named(const char *s)
{
	static const char *const names[] = {"treatment", "operations", "billing", "recovery"};
	for (int i = 0; s && i < 4; i++)
		if (!strcmp(s, names[i]))
			return i; /* enum auth_purpose in the same order */
	return -1;
}

static enum auth_purpose purpose_of(const cJSON *entry)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(entry, "purpose");
	int v = purpose_named(cJSON_IsString(p) ? p->valuestring : NULL);
	return v < 0 ? AUTH_TREATMENT : (enum auth_purpose)v;
}

int auth_client_purpose(const struct config *cfg, const char *client_id)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, cfg->auth.clients)
	{
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "client_id");
		if (cJSON_IsString(id) && client_id && !strcmp(id->valuestring, client_id))
			return (int)purpose_of(e);
	}
	return -1;
}

static const char *string_of(const cJSON *entry, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(entry, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int load_signing_key(struct auth *a, char *err, size_t errlen)
{
	const struct config *cfg = a->cfg;
	char why[512], path[4200];
	if (cfg->auth.signing_key_file) {
		a->signing = crypto_key_load_private(cfg->auth.signing_key_file, why, sizeof why);
		if (!a->signing) {
			snprintf(err, errlen, "%s: auth.signing_key_file: %s", cfg->source ? cfg->source : "", why);
			return -1;
		}
	} else {
		snprintf(path, sizeof path, "%s/auth-signing-key.pem", cfg->data_dir);
		a->signing = access(path, F_OK) == 0 ? crypto_key_load_private(path, why, sizeof why)
						     : crypto_key_generate(path, why, sizeof why);
		if (!a->signing) {
			snprintf(err, errlen, "the token signing key: %s", why);
			return -1;
		}
	}
	a->signing_alg = crypto_key_default_alg(a->signing, true);
	if (crypto_key_thumbprint(a->signing, a->signing_kid) != 0) {
		snprintf(err, errlen, "the token signing key: cannot compute its thumbprint");
		return -1;
	}
	return 0;
}

struct auth *auth_new(const struct config *cfg, char *err, size_t errlen)
{
	struct auth *a = calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&a->cache_lock, NULL);
	a->cfg = cfg;
	a->enabled = config_auth_configured(cfg);
	a->token_endpoint = a->enabled && cfg->auth.token_endpoint;
	size_t n = cfg->auth.clients ? (size_t)cJSON_GetArraySize(cfg->auth.clients) : 0;
	a->clients = n ? calloc(n, sizeof *a->clients) : NULL;
	a->cache = a->enabled ? calloc(TOKEN_CACHE_SLOTS, sizeof *a->cache) : NULL;
	if ((n && !a->clients) || (a->enabled && !a->cache)) {
		snprintf(err, errlen, "out of memory");
		auth_free(a);
		return NULL;
	}
	size_t i = 0;
	for (const cJSON *e = n ? cfg->auth.clients->child : NULL; e; e = e->next, i++) {
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
		c->part2_program = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "part2_program"));
		const char *fp = string_of(e, "tls_fingerprint");
		size_t k = 0;
		for (; fp && *fp && k < 64; fp++)
			if (*fp != ':')
				c->fingerprint[k++] = (char)tolower((unsigned char)*fp);
		c->fingerprint[k] = '\0';
		c->tls_subject = string_of(e, "tls_subject");
		c->patient = string_of(e, "patient");
		c->jwks_url = string_of(e, "jwks_url");
		const cJSON *jwks = cJSON_GetObjectItemCaseSensitive(e, "jwks");
		char why[512];
		if (jwks && keyset_from_jwks(jwks, true, &c->keys, why, sizeof why) != 0) {
			snprintf(err, errlen, "%s: auth.clients[%zu].jwks: %s", cfg->source ? cfg->source : "", i, why);
			auth_free(a);
			return NULL;
		}
	}
	for (size_t j = 0; j < a->nclients; j++) {
		a->clients[j].remote.url = a->clients[j].jwks_url;
		pthread_mutex_init(&a->clients[j].remote.lock, NULL);
	}
	size_t ni = cfg->auth.issuers ? (size_t)cJSON_GetArraySize(cfg->auth.issuers) : 0;
	a->issuers = ni ? calloc(ni, sizeof *a->issuers) : NULL;
	if (ni && !a->issuers) {
		snprintf(err, errlen, "out of memory");
		auth_free(a);
		return NULL;
	}
	for (const cJSON *e = ni ? cfg->auth.issuers->child : NULL; e; e = e->next) {
		struct auth_issuer *is = &a->issuers[a->nissuers++];
		is->issuer = string_of(e, "issuer");
		is->audience = string_of(e, "audience");
		is->purpose = purpose_of(e);
		is->purpose_claim = string_of(e, "purpose_claim");
		is->remote.url = string_of(e, "jwks_url");
		pthread_mutex_init(&is->remote.lock, NULL);
	}
	if (a->token_endpoint) {
		char why[512];
		if (load_signing_key(a, err, errlen) != 0) {
			auth_free(a);
			return NULL;
		}
		if (!(a->replay = replay_open(cfg->data_dir, now_s(), why, sizeof why))) {
			snprintf(err, errlen, "the client assertion replay file: %s", why);
			auth_free(a);
			return NULL;
		}
	}
	return a;
}

void auth_share_replay(struct auth *a, auth_replay_fn *fn, void *ctx)
{
	a->shared_replay = fn;
	a->shared_replay_ctx = ctx;
	replay_close(a->replay);
	a->replay = NULL;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nclients; i++) {
		free(a->clients[i].client_id);
		free(a->clients[i].scopes);
		keyset_release(&a->clients[i].keys);
		keyset_release(&a->clients[i].remote.ks);
		pthread_mutex_destroy(&a->clients[i].remote.lock);
	}
	free(a->clients);
	for (size_t i = 0; i < a->nissuers; i++) {
		keyset_release(&a->issuers[i].remote.ks);
		pthread_mutex_destroy(&a->issuers[i].remote.lock);
	}
	free(a->issuers);
	crypto_key_free(a->signing);
	replay_close(a->replay);
	free(a->cache);
	pthread_mutex_destroy(&a->cache_lock);
	free(a);
}

bool auth_enabled(const struct auth *a) { return a && a->enabled; }

bool auth_token_endpoint_on(const struct auth *a) { return a && a->token_endpoint; }

/* ---------------------------------------------------------------- URLs */

/* The origin (scheme://host[:port]) of the FHIR base clients reach. */
static void origin(const struct auth *a, const struct http_request *req, char *buf, size_t n)
{
	config_fhir_base(a->cfg, req->authority, buf, n);
	char *p = strstr(buf, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	if (p)
		*p = '\0';
}

static void token_url(const struct auth *a, const struct http_request *req, char *buf, size_t n)
{
	char o[512];
	origin(a, req, o, sizeof o);
	snprintf(buf, n, "%s/auth/token", o);
}

/* The iss of the gateway's own tokens. */
static void issuer(const struct auth *a, const struct http_request *req, char *buf, size_t n)
{
	char o[512];
	origin(a, req, o, sizeof o);
	snprintf(buf, n, "%s/auth", o);
}

/* ----------------------------------------------------------- the gate */

static bool route_public(const char *path)
{
	if (!strncmp(path, "/console", 8) && (!path[8] || (path[8] == '/' && strncmp(path + 9, "api/", 4) != 0)))
		return true; /* the console's files: no data in them */
	return !strcmp(path, "/healthz") || !strcmp(path, "/fhir/metadata") ||
	       !strncmp(path, "/fhir/.well-known/", 18) || !strcmp(path, "/auth/token") || !strcmp(path, "/auth/jwks");
}

static bool route_open_to_loopback(const char *path)
{
	return !strcmp(path, "/metrics") || !strcmp(path, "/outbox") || !strncmp(path, "/outbox/", 8) ||
	       !strncmp(path, "/console/api/", 13);
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

static const struct auth_client *client_by_id(const struct auth *a, const char *id)
{
	for (size_t i = 0; id && i < a->nclients; i++)
		if (!strcmp(a->clients[i].client_id, id))
			return &a->clients[i];
	return NULL;
}

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

static void set_principal(struct auth_principal *out, const struct auth_client *c, const char *scopes, const char *via)
{
	out->client_id = c->client_id;
	out->purpose = c->purpose;
	out->configured = true;
	out->part2_program = c->part2_program;
	out->via = via;
	snprintf(out->scopes, sizeof out->scopes, "%s", scopes);
	snprintf(out->patient, sizeof out->patient, "%s", c->patient ? c->patient : "");
}

static bool cache_lookup(const struct auth *a, const uint8_t h[CRYPTO_SHA256_LEN], long long now,
			 struct auth_principal *out)
{
	struct auth *m = (struct auth *)a; /* the cache is the one mutable part, under its lock */
	struct cached_token *e = &m->cache[((size_t)h[0] | (size_t)h[1] << 8) % TOKEN_CACHE_SLOTS];
	bool hit = false;
	pthread_mutex_lock(&m->cache_lock);
	if (e->exp && !memcmp(e->h, h, sizeof e->h) && e->exp > now - CLOCK_SKEW_S) {
		if (e->issuer < 0) {
			set_principal(out, &a->clients[e->client], e->scopes, "token");
		} else {
			snprintf(out->scopes, sizeof out->scopes, "%s", e->scopes);
			snprintf(out->subject, sizeof out->subject, "%s", e->subject);
			snprintf(out->patient, sizeof out->patient, "%s", e->patient);
			snprintf(out->fhir_user, sizeof out->fhir_user, "%s", e->fhir_user);
			out->client_id = out->subject;
			out->purpose = e->purpose;
			out->via = "token";
		}
		hit = true;
	}
	pthread_mutex_unlock(&m->cache_lock);
	return hit;
}

static void cache_store(const struct auth *a, const uint8_t h[CRYPTO_SHA256_LEN], long long exp, size_t client,
			const char *scopes)
{
	if (strlen(scopes) > TOKEN_CACHE_SCOPES)
		return;
	struct auth *m = (struct auth *)a;
	struct cached_token *e = &m->cache[((size_t)h[0] | (size_t)h[1] << 8) % TOKEN_CACHE_SLOTS];
	pthread_mutex_lock(&m->cache_lock);
	memcpy(e->h, h, sizeof e->h);
	e->exp = exp;
	e->client = client;
	e->issuer = -1;
	snprintf(e->scopes, sizeof e->scopes, "%s", scopes);
	pthread_mutex_unlock(&m->cache_lock);
}

/* Verifies t with the key of its kid in rk, fetching the set first when it
 * was never fetched, and again (at most once per JWKS_REFETCH_S) when the
 * kid is unknown. 0, or -1 with the reason. */
static int remote_verify(struct remote_keys *rk, const struct jwt *t, enum metrics_auth_refusal *why)
{
	pthread_mutex_lock(&rk->lock);
	bool known = false;
	const struct crypto_key *k = rk->ks.n ? keyset_find(&rk->ks, t->kid, t->alg, &known) : NULL;
	long long now = now_s();
	if (!k && !known && (!rk->last_fetch || now - rk->last_fetch >= JWKS_REFETCH_S)) {
		rk->last_fetch = now;
		struct upstream_response r;
		char why_text[256] = "";
		if (upstream_fetch(rk->url, NULL, JWKS_MAX_BYTES, JWKS_TIMEOUT_MS, &r) == 0) {
			struct fjson_limits lim;
			fjson_limits_default(&lim);
			struct fjson_error jerr;
			cJSON *j = r.body ? fjson_parse(r.body, r.len, &lim, &jerr) : NULL;
			struct keyset fresh;
			if (j && keyset_from_jwks(j, false, &fresh, why_text, sizeof why_text) == 0) {
				keyset_release(&rk->ks);
				rk->ks = fresh;
			} else if (!why_text[0]) {
				snprintf(why_text, sizeof why_text, "not a JWK Set");
			}
			cJSON_Delete(j);
		} else {
			snprintf(why_text, sizeof why_text, "%s",
				 r.answered ? "the server did not answer 2xx" : r.error);
		}
		upstream_response_release(&r);
		if (why_text[0])
			log_event(LOG_WARN, "jwks_fetch_failed", why_text, "url", rk->url, (const char *)NULL);
		else
			log_event(LOG_INFO, "jwks_fetched", "JWK Set fetched", "url", rk->url, (const char *)NULL);
		k = rk->ks.n ? keyset_find(&rk->ks, t->kid, t->alg, &known) : NULL;
	}
	int rc = -1;
	if (!k)
		*why = known ? METRICS_AUTH_BAD_ALG : METRICS_AUTH_UNKNOWN_KID;
	else if (jwt_verify(t, k) != 0)
		*why = METRICS_AUTH_BAD_SIGNATURE;
	else
		rc = 0;
	pthread_mutex_unlock(&rk->lock);
	return rc;
}

static void copy_claim(const struct jwt *t, const char *name, char *out, size_t cap)
{
	const char *v = jwt_string(t, name);
	snprintf(out, cap, "%s", v ? v : "");
}

/* The scopes of an external token: "scope" (space-separated) or "scp" (an
 * array of strings, or one string). false when they do not fit. */
static bool external_scopes(const struct jwt *t, char *out, size_t cap)
{
	const char *scope = jwt_string(t, "scope");
	if (scope)
		return (size_t)snprintf(out, cap, "%s", scope) < cap;
	const cJSON *scp = cJSON_GetObjectItemCaseSensitive(t->claims, "scp");
	if (cJSON_IsString(scp))
		return (size_t)snprintf(out, cap, "%s", scp->valuestring) < cap;
	size_t o = 0;
	out[0] = '\0';
	for (const cJSON *s = cJSON_IsArray(scp) ? scp->child : NULL; s; s = s->next) {
		if (!cJSON_IsString(s))
			continue;
		int n = snprintf(out + o, cap - o, "%s%s", o ? " " : "", s->valuestring);
		if (n < 0 || (size_t)n >= cap - o)
			return false;
		o += (size_t)n;
	}
	return true;
}

/* A token of an external issuer: keys from its jwks_url, the algorithm of
 * the key, iss, aud, exp/nbf with CLOCK_SKEW_S. */
static bool verify_external_token(const struct auth *a, struct auth_issuer *is, const struct jwt *t, const char *token,
				  struct auth_principal *out, enum metrics_auth_refusal *why)
{
	long long now = now_s(), exp = 0, nbf = 0;
	if (remote_verify(&is->remote, t, why) != 0)
		return false;
	*why = METRICS_AUTH_BAD_AUDIENCE;
	if (!jwt_audience_is(t, is->audience))
		return false;
	*why = METRICS_AUTH_EXPIRED;
	if (!jwt_time(t, "exp", &exp) || exp <= now - CLOCK_SKEW_S)
		return false;
	*why = METRICS_AUTH_NOT_YET_VALID;
	if (jwt_time(t, "nbf", &nbf) && nbf > now + CLOCK_SKEW_S)
		return false;
	*why = METRICS_AUTH_MALFORMED;
	if (!external_scopes(t, out->scopes, sizeof out->scopes))
		return false;
	const char *who = jwt_string(t, "client_id");
	if (!who)
		who = jwt_string(t, "azp");
	if (!who)
		who = jwt_string(t, "sub");
	snprintf(out->subject, sizeof out->subject, "%s", who ? who : is->issuer);
	copy_claim(t, "patient", out->patient, sizeof out->patient);
	copy_claim(t, "fhirUser", out->fhir_user, sizeof out->fhir_user);
	out->client_id = out->subject;
	out->purpose = is->purpose;
	if (is->purpose_claim) {
		/* the claim mapping: a token that names a purpose gets that one;
		 * one naming an unknown purpose is refused rather than guessed */
		const cJSON *pc = cJSON_GetObjectItemCaseSensitive(t->claims, is->purpose_claim);
		int v = pc ? purpose_named(cJSON_IsString(pc) ? pc->valuestring : NULL) : (int)is->purpose;
		if (v < 0)
			return false;
		out->purpose = (enum auth_purpose)v;
	}
	out->via = "token";
	uint8_t h[CRYPTO_SHA256_LEN];
	if (strlen(out->scopes) <= TOKEN_CACHE_SCOPES && crypto_sha256(token, strlen(token), h) == 0) {
		struct auth *m = (struct auth *)a;
		struct cached_token *e = &m->cache[((size_t)h[0] | (size_t)h[1] << 8) % TOKEN_CACHE_SLOTS];
		pthread_mutex_lock(&m->cache_lock);
		memcpy(e->h, h, sizeof e->h);
		e->exp = exp;
		e->issuer = (int)(is - a->issuers);
		memcpy(e->scopes, out->scopes, strlen(out->scopes) + 1); /* fits: checked above */
		snprintf(e->subject, sizeof e->subject, "%s", out->subject);
		snprintf(e->patient, sizeof e->patient, "%s", out->patient);
		snprintf(e->fhir_user, sizeof e->fhir_user, "%s", out->fhir_user);
		e->purpose = out->purpose;
		pthread_mutex_unlock(&m->cache_lock);
	}
	return true;
}

/* Verifies a bearer token issued by this gateway. true with *out filled,
 * or false with the reason. */
static bool verify_own_token(const struct auth *a, const struct http_request *req, const char *token, struct jwt *tp,
			     struct auth_principal *out, enum metrics_auth_refusal *why)
{
	struct jwt t = *tp;
	bool ok = false;
	long long now = now_s(), exp = 0, nbf = 0;
	char want[600];
	const char *cid = jwt_string(&t, "client_id");
	const struct auth_client *c = client_by_id(a, cid);
	const char *scope = jwt_string(&t, "scope");
	issuer(a, req, want, sizeof want);
	*why = METRICS_AUTH_BAD_ISSUER;
	const char *iss = jwt_string(&t, "iss");
	if (!iss || strcmp(iss, want) != 0)
		goto out;
	*why = METRICS_AUTH_MALFORMED;
	if (!t.typ || strcasecmp(t.typ, "at+jwt") != 0) /* a client assertion or an ID token is no access token */
		goto out;
	*why = METRICS_AUTH_UNKNOWN_KID;
	if (!a->signing || !t.kid || strcmp(t.kid, a->signing_kid) != 0)
		goto out;
	*why = METRICS_AUTH_BAD_ALG;
	if (t.alg != a->signing_alg)
		goto out;
	*why = METRICS_AUTH_BAD_SIGNATURE;
	if (jwt_verify(&t, a->signing) != 0)
		goto out;
	config_fhir_base(a->cfg, req->authority, want, sizeof want);
	*why = METRICS_AUTH_BAD_AUDIENCE;
	if (!jwt_audience_is(&t, want))
		goto out;
	*why = METRICS_AUTH_EXPIRED;
	if (!jwt_time(&t, "exp", &exp) || exp <= now - CLOCK_SKEW_S)
		goto out;
	*why = METRICS_AUTH_NOT_YET_VALID;
	if (jwt_time(&t, "nbf", &nbf) && nbf > now + CLOCK_SKEW_S)
		goto out;
	*why = METRICS_AUTH_UNKNOWN_CLIENT;
	if (!c || !scope)
		goto out;
	set_principal(out, c, scope, "token");
	uint8_t h[CRYPTO_SHA256_LEN];
	if (crypto_sha256(token, strlen(token), h) == 0)
		cache_store(a, h, exp, (size_t)(c - a->clients), scope);
	ok = true;
out:
	return ok;
}

bool auth_authenticate(const struct auth *a, const struct http_request *req, struct http_response *resp,
		       struct auth_principal *out)
{
	out->client_id = NULL;
	out->via = NULL;
	out->purpose = AUTH_TREATMENT;
	out->configured = out->part2_program = false;
	out->scopes[0] = '\0';
	out->subject[0] = out->patient[0] = out->fhir_user[0] = '\0';
	if (!auth_enabled(a) || route_public(req->path))
		return true;
	const struct auth_client *c = client_by_certificate(a, req);
	const char *authz = http_header(req, "Authorization");
	bool token_sent = authz && !strncasecmp(authz, "Bearer ", 7);
	if (token_sent) {
		const char *token = authz + 7;
		while (*token == ' ')
			token++;
		uint8_t h[CRYPTO_SHA256_LEN];
		long long now = now_s();
		if (crypto_sha256(token, strlen(token), h) == 0 && cache_lookup(a, h, now, out))
			return true;
		enum metrics_auth_refusal why = METRICS_AUTH_MALFORMED;
		struct jwt t;
		if (jwt_parse(token, &t, &why) != 0)
			return unauthorized(resp, why, true, "the bearer token could not be verified");
		const char *iss = jwt_string(&t, "iss");
		struct auth_issuer *ext = NULL;
		for (size_t i = 0; iss && i < a->nissuers && !ext; i++)
			if (!strcmp(a->issuers[i].issuer, iss))
				ext = &a->issuers[i];
		bool ok = ext ? verify_external_token(a, ext, &t, token, out, &why)
			      : verify_own_token(a, req, token, &t, out, &why);
		jwt_release(&t);
		if (ok) {
			if (c && out->client_id != c->client_id) {
				/* the certificate names one client, the token another */
				return unauthorized(resp, METRICS_AUTH_UNKNOWN_CLIENT, true,
						    "the bearer token belongs to another client than the certificate");
			}
			return true;
		}
		return unauthorized(resp, why, true, "the bearer token could not be verified");
	}
	if (c) {
		set_principal(out, c, c->scopes, "mtls");
		return true;
	}
	if (route_open_to_loopback(req->path) && config_host_is_loopback(req->client)) {
		out->via = "loopback";
		return true;
	}
	if (req->tls_client_sha256)
		return unauthorized(resp, METRICS_AUTH_UNKNOWN_CLIENT, false,
				    "the client certificate belongs to no configured client (auth.clients)");
	return unauthorized(resp, METRICS_AUTH_NO_CREDENTIALS, false,
			    "authentication required: send a bearer token (Authorization: Bearer ...)");
}

/* ----------------------------------------------------- token endpoint */

static void oauth_error(struct http_response *resp, int status, enum metrics_auth_refusal why, const char *error,
			const char *description)
{
	metrics_auth_refused(why);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "error", error);
	cJSON_AddStringToObject(o, "error_description", description);
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	http_set_body(resp, status, "application/json", text, text ? strlen(text) : 0);
	http_add_header(resp, "Pragma", "no-cache");
}

struct form {
	char *grant_type, *assertion_type, *assertion, *scope;
	bool repeated;
};

/* Decodes an application/x-www-form-urlencoded body; false when malformed. */
static bool parse_form(const char *body, size_t len, struct form *f)
{
	for (const char *p = body, *end = body + len; p < end;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		if (eq) {
			size_t nl = (size_t)(eq - p), vl = (size_t)(stop - eq - 1);
			char **slot = nl == 10 && !memcmp(p, "grant_type", 10)              ? &f->grant_type
				      : nl == 21 && !memcmp(p, "client_assertion_type", 21) ? &f->assertion_type
				      : nl == 16 && !memcmp(p, "client_assertion", 16)      ? &f->assertion
				      : nl == 5 && !memcmp(p, "scope", 5)                   ? &f->scope
											    : NULL;
			if (slot) {
				if (*slot)
					f->repeated = true;
				char *v = malloc(vl + 1);
				long n = v ? wire_pct_decode(eq + 1, vl, v, true) : -1;
				if (n < 0) {
					free(v);
					return false;
				}
				v[n] = '\0';
				free(*slot);
				*slot = v;
			}
		}
		p = stop + 1;
	}
	return true;
}

static void form_release(struct form *f)
{
	free(f->grant_type);
	free(f->assertion_type);
	free(f->assertion);
	free(f->scope);
}

/* Verifies a client assertion with the client's keys: inline, or from its
 * jwks_url. 0, or -1 with the reason. */
static int client_verify(const struct auth_client *c, const struct jwt *t, enum metrics_auth_refusal *why)
{
	if (c->jwks_url)
		return remote_verify((struct remote_keys *)&c->remote, t, why);
	bool known = false;
	const struct crypto_key *key = keyset_find(&c->keys, t->kid, t->alg, &known);
	*why = !key ? (known ? METRICS_AUTH_BAD_ALG : METRICS_AUTH_UNKNOWN_KID) : METRICS_AUTH_BAD_SIGNATURE;
	return key && jwt_verify(t, key) == 0 ? 0 : -1;
}

void auth_token(const struct auth *a, const struct http_request *req, struct http_response *resp)
{
	if (!auth_token_endpoint_on(a)) {
		http_set_error(resp, 404, "not-found", "the token endpoint is off (auth.token_endpoint)");
		return;
	}
	const char *ct = http_header(req, "Content-Type");
	struct form f = {0};
	if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 ||
	    !parse_form(req->body, req->body_len, &f) || f.repeated) {
		oauth_error(resp, 400, METRICS_AUTH_BAD_REQUEST, "invalid_request",
			    "send an application/x-www-form-urlencoded body, each parameter once");
		goto done;
	}
	if (!f.grant_type || strcmp(f.grant_type, "client_credentials") != 0) {
		oauth_error(resp, 400, METRICS_AUTH_BAD_REQUEST, "unsupported_grant_type",
			    "grant_type must be client_credentials");
		goto done;
	}
	if (!f.assertion_type || strcmp(f.assertion_type, jwt_bearer) != 0 || !f.assertion) {
		oauth_error(resp, 400, METRICS_AUTH_BAD_REQUEST, "invalid_request",
			    "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer, "
			    "with a client_assertion");
		goto done;
	}
	struct jwt t;
	enum metrics_auth_refusal why;
	if (jwt_parse(f.assertion, &t, &why) != 0) {
		oauth_error(resp, 401, why, "invalid_client",
			    "the client assertion is not a signed JWT of RS384, ES384, RS256 or ES256");
		goto done;
	}
	char url[600], scopes[AUTH_SCOPES_MAX + 1];
	long long now = now_s(), exp = 0, nbf = 0;
	const char *iss = jwt_string(&t, "iss"), *sub = jwt_string(&t, "sub"), *jti = jwt_string(&t, "jti");
	const struct auth_client *c = client_by_id(a, iss);
	const cJSON *jku = cJSON_GetObjectItemCaseSensitive(t.header, "jku");
	token_url(a, req, url, sizeof url);
	if (!c || !sub || strcmp(iss, sub) != 0)
		oauth_error(resp, 401, METRICS_AUTH_UNKNOWN_CLIENT, "invalid_client",
			    "iss and sub must both be the client_id of a configured client");
	else if (jku && !(cJSON_IsString(jku) && c->jwks_url && !strcmp(jku->valuestring, c->jwks_url)))
		oauth_error(resp, 401, METRICS_AUTH_UNKNOWN_KID, "invalid_client",
			    "jku is not the client's registered jwks_url");
	else if (client_verify(c, &t, &why) != 0)
		oauth_error(resp, 401, why, "invalid_client",
			    why == METRICS_AUTH_UNKNOWN_KID ? "no key of the client has that kid"
			    : why == METRICS_AUTH_BAD_ALG   ? "the key of that kid does not sign with that alg"
							    : "the signature does not verify");
	else if (!jwt_audience_is(&t, url))
		oauth_error(resp, 401, METRICS_AUTH_BAD_AUDIENCE, "invalid_client",
			    "aud must be the token endpoint URL");
	else if (!jwt_time(&t, "exp", &exp) || exp <= now - CLOCK_SKEW_S)
		oauth_error(resp, 401, METRICS_AUTH_EXPIRED, "invalid_client", "the assertion has expired (exp)");
	else if (exp > now + ASSERTION_MAX_S + CLOCK_SKEW_S)
		oauth_error(resp, 401, METRICS_AUTH_EXPIRED, "invalid_client", "exp may be at most 5 minutes ahead");
	else if (jwt_time(&t, "nbf", &nbf) && nbf > now + CLOCK_SKEW_S)
		oauth_error(resp, 401, METRICS_AUTH_NOT_YET_VALID, "invalid_client",
			    "the assertion is not valid yet (nbf)");
	else if (!jti || !*jti || strlen(jti) > 256)
		oauth_error(resp, 401, METRICS_AUTH_MALFORMED, "invalid_client",
			    "jti is required (at most 256 characters)");
	else {
		long granted = scope_intersect(c->scopes, f.scope ? f.scope : "", scopes, sizeof scopes);
		int fresh;
		if (granted <= 0)
			oauth_error(resp, 400, METRICS_AUTH_BAD_SCOPE, "invalid_scope",
				    "none of the scopes asked for is allowed to this client");
		else if ((fresh = a->shared_replay
					  ? a->shared_replay(a->shared_replay_ctx, iss, jti, exp + CLOCK_SKEW_S, now)
					  : replay_record(a->replay, iss, jti, exp + CLOCK_SKEW_S, now)) == 0)
			oauth_error(resp, 401, METRICS_AUTH_REPLAYED, "invalid_client",
				    "this assertion (jti) was used before");
		else if (fresh < 0)
			oauth_error(resp, 503, METRICS_AUTH_BAD_REQUEST, "temporarily_unavailable",
				    "the assertion cannot be recorded against replay now; retry");
		else {
			char base[600], iss_own[600], jti_own[40];
			uint8_t rnd[16];
			config_fhir_base(a->cfg, req->authority, base, sizeof base);
			issuer(a, req, iss_own, sizeof iss_own);
			crypto_random(rnd, sizeof rnd);
			crypto_b64url_encode(rnd, sizeof rnd, jti_own, sizeof jti_own);
			long long life = (long long)a->cfg->auth.token_lifetime_s;
			cJSON *claims = cJSON_CreateObject();
			cJSON_AddStringToObject(claims, "iss", iss_own);
			cJSON_AddStringToObject(claims, "sub", c->client_id);
			cJSON_AddStringToObject(claims, "aud", base);
			cJSON_AddStringToObject(claims, "client_id", c->client_id);
			cJSON_AddStringToObject(claims, "scope", scopes);
			if (c->patient) /* the launch context (SMART): the client's patient */
				cJSON_AddStringToObject(claims, "patient", c->patient);
			cJSON_AddNumberToObject(claims, "iat", (double)now);
			cJSON_AddNumberToObject(claims, "exp", (double)(now + life));
			cJSON_AddStringToObject(claims, "jti", jti_own);
			char *token = jwt_sign(a->signing, a->signing_alg, a->signing_kid, "at+jwt", claims);
			cJSON_Delete(claims);
			cJSON *o = token ? cJSON_CreateObject() : NULL;
			cJSON_AddStringToObject(o, "access_token", token);
			cJSON_AddStringToObject(o, "token_type", "bearer");
			cJSON_AddNumberToObject(o, "expires_in", (double)life);
			cJSON_AddStringToObject(o, "scope", scopes);
			if (c->patient)
				cJSON_AddStringToObject(o, "patient", c->patient);
			char *text = o ? cJSON_PrintUnformatted(o) : NULL;
			cJSON_Delete(o);
			if (token)
				explicit_bzero(token, strlen(token));
			free(token);
			if (text) {
				http_set_body(resp, 200, "application/json", text, strlen(text));
				http_add_header(resp, "Pragma", "no-cache");
				log_event(LOG_INFO, "token_issued", "access token issued", "client_id", c->client_id,
					  (const char *)NULL);
			} else {
				http_set_error(resp, 500, "exception", "out of memory");
			}
		}
	}
	jwt_release(&t);
done:
	if (f.assertion)
		explicit_bzero(f.assertion, strlen(f.assertion));
	form_release(&f);
}

/* ------------------------------------------------------------ discovery */

static void add_strings(cJSON *o, const char *name, const char *const *v, size_t n)
{
	cJSON *arr = cJSON_AddArrayToObject(o, name);
	for (size_t i = 0; arr && i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(v[i]));
}

void auth_smart_configuration(const struct auth *a, const struct http_request *req, struct http_response *resp)
{
	char url[600], iss[600], jwks[700];
	token_url(a, req, url, sizeof url);
	issuer(a, req, iss, sizeof iss);
	snprintf(jwks, sizeof jwks, "%s/jwks", iss);
	cJSON *o = cJSON_CreateObject();
	if (auth_token_endpoint_on(a)) {
		cJSON_AddStringToObject(o, "issuer", iss);
		cJSON_AddStringToObject(o, "jwks_uri", jwks);
		cJSON_AddStringToObject(o, "token_endpoint", url);
	}
	static const char *const methods[] = {"private_key_jwt"};
	static const char *const algs[] = {"RS384", "ES384", "RS256", "ES256"};
	static const char *const grants[] = {"client_credentials"};
	static const char *const caps[] = {"client-confidential-asymmetric", "permission-v1", "permission-v2"};
	add_strings(o, "token_endpoint_auth_methods_supported", methods, 1);
	add_strings(o, "token_endpoint_auth_signing_alg_values_supported", algs, 4);
	add_strings(o, "grant_types_supported", grants, 1);
	cJSON *scopes = cJSON_AddArrayToObject(o, "scopes_supported");
	/* every distinct scope some client may be given */
	for (size_t i = 0; scopes && i < a->nclients; i++) {
		for (const char *p = a->clients[i].scopes; *p;) {
			while (*p == ' ')
				p++;
			size_t n = strcspn(p, " ");
			if (!n)
				break;
			char one[512];
			snprintf(one, sizeof one, "%.*s", (int)n, p);
			bool seen = false;
			for (const cJSON *s = scopes->child; s && !seen; s = s->next)
				seen = !strcmp(s->valuestring, one);
			if (!seen)
				cJSON_AddItemToArray(scopes, cJSON_CreateString(one));
			p += n;
		}
	}
	add_strings(o, "capabilities", caps, 3);
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	if (text)
		http_set_body(resp, 200, "application/json", text, strlen(text));
	else
		http_set_error(resp, 500, "exception", "out of memory");
}

cJSON *auth_capability_security(const struct auth *a, const struct http_request *req)
{
	if (!auth_enabled(a))
		return NULL;
	cJSON *sec = cJSON_CreateObject();
	if (auth_token_endpoint_on(a)) {
		char url[600];
		token_url(a, req, url, sizeof url);
		cJSON *ext = cJSON_CreateObject();
		cJSON_AddStringToObject(ext, "url",
					"http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris");
		cJSON *token = cJSON_CreateObject();
		cJSON_AddStringToObject(token, "url", "token");
		cJSON_AddStringToObject(token, "valueUri", url);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(ext, "extension"), token);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(sec, "extension"), ext);
	}
	cJSON *service = cJSON_CreateObject();
	cJSON *coding = cJSON_CreateObject();
	cJSON_AddStringToObject(coding, "system", "http://terminology.hl7.org/CodeSystem/restful-security-service");
	cJSON_AddStringToObject(coding, "code", "SMART-on-FHIR");
	cJSON_AddItemToArray(cJSON_AddArrayToObject(service, "coding"), coding);
	cJSON_AddStringToObject(service, "text", "OAuth2 bearer tokens, SMART Backend Services");
	cJSON_AddItemToArray(cJSON_AddArrayToObject(sec, "service"), service);
	cJSON_AddStringToObject(
		sec, "description",
		"Every request needs a bearer token (SMART Backend Services client credentials at the token "
		"endpoint, or a trusted issuer's) or a configured client certificate; discovery at "
		".well-known/smart-configuration.");
	return sec;
}

void auth_jwks(const struct auth *a, const struct http_request *req, struct http_response *resp)
{
	(void)req;
	if (!a->signing) {
		http_set_error(resp, 404, "not-found", "the gateway issues no tokens (auth.token_endpoint is off)");
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON *keys = cJSON_AddArrayToObject(o, "keys");
	cJSON *k = crypto_key_to_jwk(a->signing, a->signing_kid, a->signing_alg);
	if (keys && k)
		cJSON_AddItemToArray(keys, k);
	else
		cJSON_Delete(k);
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	if (text)
		http_set_body(resp, 200, "application/json", text, strlen(text));
	else
		http_set_error(resp, 500, "exception", "out of memory");
}

/* ------------------------------------------------------------- scopes */

void auth_scope_name(char *buf, size_t n, const char *type, unsigned perms)
{
	static const char letters[] = "cruds";
	char p[8];
	size_t k = 0;
	for (unsigned i = 0; i < 5; i++)
		if (perms & (1u << i))
			p[k++] = letters[i];
	p[k] = '\0';
	snprintf(buf, n, "system/%s.%s (or user/%s.%s)", type, p, type, p);
}

bool auth_forbid(struct http_response *resp, const char *type, unsigned perms)
{
	char name[200];
	auth_scope_name(name, sizeof name, type, perms);
	metrics_auth_refused(METRICS_AUTH_INSUFFICIENT_SCOPE);
	resp->route = "(forbidden)";
	http_set_error(resp, 403, "forbidden", "this request needs the scope %s", name);
	http_add_header(resp, "WWW-Authenticate", "Bearer realm=\"crosswalk\", error=\"insufficient_scope\"");
	return false;
}

bool auth_may(const struct auth_principal *who, const char *type, unsigned perms)
{
	return !who || !who->client_id || scope_allows(who->scopes, type, perms);
}

const char *auth_compartment(const struct auth_principal *who, const char *type, unsigned perms)
{
	if (auth_may(who, type, perms) || !who->patient[0] || !compartment_patient_type(type))
		return NULL;
	return scope_reach(who->scopes, type, perms, true) == SCOPE_REACH_PATIENT ? who->patient : NULL;
}

size_t auth_granular(const struct auth_principal *who, const char *type, unsigned perms, const char **q, size_t *qlen,
		     size_t max)
{
	if (auth_may(who, type, perms))
		return 0;
	return scope_queries(who->scopes, type, perms, q, qlen, max);
}

/* True when the query asks for more than the type of the path: includes,
 * chains and reverse chains. */
static int reaches_other_types(void *ctx, const char *name, const char *value)
{
	(void)ctx;
	(void)value;
	return auth_reaches_other_types(name);
}

bool auth_reaches_other_types(const char *name)
{
	return !strncmp(name, "_include", 8) || !strncmp(name, "_revinclude", 11) || !strcmp(name, "_has") ||
	       !strncmp(name, "_has:", 5) || strchr(name, '.') != NULL;
}

unsigned auth_interaction(const char *method, const char *rel, bool if_none_exist, char *type, size_t typelen)
{
	/* SEG1[/SEG2[/SEG3[/SEG4]]][?query] */
	char seg[4][80] = {"", "", "", ""};
	size_t nseg = 0;
	size_t end = strcspn(rel, "?");
	for (const char *p = rel; p < rel + end && nseg < 5;) {
		size_t n = strcspn(p, "/?");
		if (nseg < 4)
			snprintf(seg[nseg], sizeof seg[nseg], "%.*s", (int)(n < 79 ? n : 79), p);
		nseg++;
		p += n;
		if (*p == '/')
			p++;
	}
	snprintf(type, typelen, "%s", seg[0]);
	if (!nseg || seg[0][0] == '$' || seg[0][0] == '_' || seg[1][0] == '$' || seg[2][0] == '$' || nseg > 4)
		return 0;
	const char *m = method;
	bool get = !strcmp(m, "GET") || !strcmp(m, "HEAD");
	if (nseg == 1 && get)
		return SCOPE_S; /* search */
	if (nseg == 1 && !strcmp(m, "POST"))
		return SCOPE_C | (if_none_exist ? SCOPE_S : 0);
	if (nseg == 1 && (!strcmp(m, "PUT") || !strcmp(m, "PATCH")))
		return SCOPE_U | SCOPE_S; /* conditional update or patch */
	if (nseg == 1 && !strcmp(m, "DELETE"))
		return SCOPE_D | SCOPE_S; /* conditional delete */
	if (nseg == 2 && !strcmp(seg[1], "_search") && !strcmp(m, "POST"))
		return SCOPE_S;
	if (nseg == 2 && !strcmp(seg[1], "_history") && get)
		return SCOPE_S;
	if (nseg == 2 && get)
		return SCOPE_R;
	if (nseg == 2 && (!strcmp(m, "PUT") || !strcmp(m, "PATCH")))
		return SCOPE_U;
	if (nseg == 2 && !strcmp(m, "DELETE"))
		return SCOPE_D;
	if ((nseg == 3 || nseg == 4) && !strcmp(seg[2], "_history") && get)
		return SCOPE_R;
	return 0;
}

bool auth_authorize(const struct auth *a, const struct auth_principal *who, const struct http_request *req,
		    struct http_response *resp)
{
	const char *path = req->path;
	if (!auth_enabled(a) || !who->client_id || route_public(path))
		return true; /* auth off, a public route, or the loopback operator */
	const char *scopes = who->scopes;
	if (route_open_to_loopback(path)) {
		for (const char *s = scopes; (s = strstr(s, "system/crosswalk.admin")); s += 22)
			if ((s == scopes || s[-1] == ' ') && (s[22] == ' ' || s[22] == '\0'))
				return true;
		metrics_auth_refused(METRICS_AUTH_INSUFFICIENT_SCOPE);
		resp->route = "(forbidden)";
		http_set_error(resp, 403, "forbidden", "this request needs the scope system/crosswalk.admin");
		return false;
	}
	const unsigned all = SCOPE_C | SCOPE_R | SCOPE_U | SCOPE_D | SCOPE_S;
	const char *m = req->method;
	/* decided inside their handlers, type by type or entry by entry: a
	 * Bundle's entries (rest_bundle), what /ingest writes and what
	 * /export reads (api_plugins) */
	if ((!strcmp(path, "/fhir") && !strcmp(m, "POST")) || (!strncmp(path, "/ingest/", 8) && !strcmp(m, "POST")) ||
	    (!strncmp(path, "/export/", 8) && (!strcmp(m, "GET") || !strcmp(m, "POST"))))
		return true;
	if (strncmp(path, "/fhir/", 6) != 0)
		return scope_allows(scopes, "*", all) || auth_forbid(resp, "*", all); /* /plugins */
	const char *rel = path + 6;
	const char *last = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
	/* operations that touch no stored resource: any valid token */
	if (!strcmp(last, "$validate") || !strcmp(last, "$convert") || !strcmp(rel, "CodeSystem/$lookup") ||
	    !strcmp(rel, "CodeSystem/$validate-code"))
		return true;
	/* bulk export: the kick-off needs some type the token may read and
	 * search (which types and how far is decided there, api/api_bulk.c);
	 * the status and files of an export are the kicking-off client's
	 * (checked there): any valid token may ask */
	if (!strncmp(rel, "bulk-status/", 12) || !strncmp(rel, "bulk-files/", 11))
		return true;
	const char *gid_end = !strncmp(rel, "Group/", 6) ? strchr(rel + 6, '/') : NULL;
	bool group_export = gid_end && gid_end > rel + 6 && !strcmp(gid_end, "/$export");
	if (!strcmp(rel, "$export") || !strcmp(rel, "Patient/$export") || group_export)
		return scope_reach(scopes, NULL, SCOPE_R | SCOPE_S, who->patient[0] != '\0') != SCOPE_REACH_NONE ||
		       auth_forbid(resp,
				   group_export    ? "Group"
				   : rel[0] == '$' ? "*"
						   : "Patient",
				   SCOPE_R | SCOPE_S);
	bool more_types = http_query_each(req, reaches_other_types, NULL) != 0;
	char type[80];
	unsigned need = auth_interaction(m, rel, http_header(req, "If-None-Exist") != NULL, type, sizeof type);
	/* a search's includes, chains and _has are checked type by type by the
	 * search itself (rest_search); elsewhere they need every permission */
	const char *slash = strchr(rel, '/');
	bool search = need == SCOPE_S && ((!slash && (!strcmp(m, "GET") || !strcmp(m, "HEAD"))) ||
					  (slash && !strcmp(slash, "/_search") && !strcmp(m, "POST")));
	if (more_types && !search)
		need = 0;
	if (!need && !strcmp(rel, "_history") && (!strcmp(m, "GET") || !strcmp(m, "HEAD")) && !more_types) {
		snprintf(type, sizeof type, "*");
		need = SCOPE_S;
	}
	/* an interaction on one resource (read, vread, its history, update,
	 * patch, delete), a create without If-None-Exist, or a search (GET
	 * Type, POST Type/_search) that granular scopes allow on part of the
	 * type, or a patient/ scope on its patient's compartment: the handler
	 * confines it to what their queries match, or to the compartment (a
	 * search's includes too, and its chains need search on their types) */
	bool one = slash && strcmp(slash, "/_history") != 0 && strcmp(slash, "/_search") != 0 &&
		   (need == SCOPE_R || need == SCOPE_U || need == SCOPE_D);
	bool create = !slash && need == SCOPE_C;
	if ((((one || create) && !more_types) || search) && !scope_allows(scopes, type, need) &&
	    (scope_queries(scopes, type, need, NULL, NULL, 0) || auth_compartment(who, type, need)))
		return true;
	if (!need) {
		/* other operations: not yet checked type by type, so they need
		 * every permission on every type */
		snprintf(type, sizeof type, "*");
		need = all;
	}
	return scope_allows(scopes, type, need) || auth_forbid(resp, type, need);
}
