/* jwt — compact JWS tokens (RFC 7515/7519) for core/auth: split and decode
 * one, pick its key from a key set by kid and the key's own algorithm, make
 * one signed by the gateway's key.
 *
 * Ownership: struct jwt owns its decoded header and claims (jwt_release);
 * a keyset owns its keys (keyset_release). Threads: a keyset is immutable
 * once built; everything else is per call. */
#ifndef CW_AUTH_JWT_H
#define CW_AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/crypto.h"
#include "base/metrics.h"

#define JWT_MAX_LEN 8192 /* longer tokens are refused before anything is decoded */

struct jwt {
	cJSON *header;       /* owned */
	cJSON *claims;       /* owned */
	enum crypto_alg alg; /* from the header: one of the four, or the token was refused */
	const char *kid;     /* into header, or NULL */
	const char *typ;     /* into header, or NULL */
	const char *input;   /* "HEADER.PAYLOAD" (into the token given to jwt_parse) */
	size_t input_len;
	uint8_t sig[1024];
	size_t sig_len;
};

/* Splits and decodes token (NUL-terminated; it must outlive the jwt). 0, or
 * -1 with the refusal reason in *why (METRICS_AUTH_MALFORMED, or
 * METRICS_AUTH_BAD_ALG for "none", HMAC and every other algorithm, and for
 * a "crit" header). */
int jwt_parse(const char *token, struct jwt *out, enum metrics_auth_refusal *why);
void jwt_release(struct jwt *t);

/* A numeric claim (NumericDate) as whole seconds; false when absent or not a number. */
bool jwt_time(const struct jwt *t, const char *name, long long *out);
/* A string claim, or NULL. */
const char *jwt_string(const struct jwt *t, const char *name);
/* True when the "aud" claim is want, or an array holding it. */
bool jwt_audience_is(const struct jwt *t, const char *want);

struct keyset_entry {
	char *kid; /* may be NULL */
	struct crypto_key *key;
};

struct keyset {
	struct keyset_entry *v;
	size_t n;
};

/* Builds a key set from a JWK Set ({"keys":[...]}). strict: every key must be
 * usable (configuration); else keys of other types or uses are skipped (a
 * provider's published set). 0, or -1 with why. */
int keyset_from_jwks(const cJSON *jwks, bool strict, struct keyset *out, char *why, size_t whylen);
void keyset_release(struct keyset *ks);
/* The key for a token: the one with kid (any kid-less key when kid is NULL
 * and it is the only key), and only when alg fits that key. NULL otherwise;
 * *kid_known tells an unknown kid from a key that does not take alg. */
const struct crypto_key *keyset_find(const struct keyset *ks, const char *kid, enum crypto_alg alg, bool *kid_known);

/* Verifies t's signature with k. 0 or -1. */
int jwt_verify(const struct jwt *t, const struct crypto_key *k);

/* A signed compact JWS of claims with k: header {"alg","kid","typ"}.
 * malloc'd, or NULL. */
char *jwt_sign(const struct crypto_key *k, enum crypto_alg alg, const char *kid, const char *typ, const cJSON *claims);

#endif
