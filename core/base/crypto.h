/* crypto — digests, name-based UUIDs, checks of PEM certificate and key
 * files, and the JWS/JWK primitives of bearer tokens (RFC 7515/7517/7518/
 * 7638). The only module that includes OpenSSL.
 *
 * Pure functions: no global state, safe from any thread. A struct
 * crypto_key is immutable once made and may be shared between threads. */
#ifndef CW_CRYPTO_H
#define CW_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define CRYPTO_SHA1_LEN 20
#define CRYPTO_SHA256_LEN 32
#define CRYPTO_UUID_TEXT 37 /* 36 characters + NUL */

/* Return 0, or -1 when the digest could not be computed (OpenSSL failure). */
/* Initialises the crypto library once (any thread, idempotent): 0 or -1.
 * The library frees each thread's state from an exit handler of its own,
 * registered here; a program that stops threads using crypto from its own
 * exit handler must call this first, so that the library's handler runs
 * after its own (exit handlers run in reverse order). */
int crypto_init(void);

int crypto_sha1(const void *data, size_t len, uint8_t out[CRYPTO_SHA1_LEN]);
int crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN]);
/* The SHA-256 of a followed by b (blen may be 0), without joining them. */
int crypto_sha256_pair(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[CRYPTO_SHA256_LEN]);

/* RFC 4122 version-5 UUID of name (len bytes) in namespace ns. */
int crypto_uuid5(const uint8_t ns[16], const void *name, size_t len, uint8_t out[16]);

/* Text form, lowercase "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx". */
void crypto_uuid_format(const uint8_t uuid[16], char out[CRYPTO_UUID_TEXT]);
/* Parses the text form (either case); false when text is not a UUID. */
bool crypto_uuid_parse(const char *text, uint8_t out[16]);

/* 0 when file holds a PEM certificate; else -1 with why ("cannot read F: …",
 * "F holds no PEM certificate"). */
int crypto_check_certificate(const char *file, char *why, size_t whylen);
/* 0 when key_file holds an unencrypted PEM private key matching the first
 * certificate in cert_file; else -1 with why. Never asks for a passphrase. */
int crypto_check_private_key(const char *cert_file, const char *key_file, char *why, size_t whylen);

/* The identity of a DER certificate: its SHA-256 fingerprint as 64
 * lowercase hex digits and its subject in RFC 2253 form ("CN=a,O=b").
 * 0, or -1 when der is no certificate. */
int crypto_cert_identity(const void *der, size_t len, char sha256_hex[65], char *subject, size_t subjectlen);

/* ------------------------------------------------------------------ JWS */

/* base64url without padding (RFC 7515 §2). encode writes a NUL-terminated
 * string and returns its length, or 0 when cap is too small (needs
 * 4*ceil(len/3)+1). decode returns the byte count, or -1 when text is not
 * strict base64url (padding, other characters, bits left over) or does not
 * fit in cap. */
size_t crypto_b64url_encode(const void *in, size_t len, char *out, size_t cap);
long crypto_b64url_decode(const char *text, size_t len, uint8_t *out, size_t cap);
/* base64 with padding (RFC 4648 §4), as FHIR's base64Binary: returns the
 * length written (NUL-terminated), or 0 when cap is below 4*ceil(len/3)+1. */
size_t crypto_b64_encode(const void *in, size_t len, char *out, size_t cap);

/* The signature algorithms accepted: asymmetric only. "none" and the HMAC
 * algorithms have no value here, so a token cannot ask for them. */
enum crypto_alg { CRYPTO_ALG_INVALID = 0, CRYPTO_RS256, CRYPTO_RS384, CRYPTO_ES256, CRYPTO_ES384 };
/* CRYPTO_ALG_INVALID for anything but the four names (exact case). */
enum crypto_alg crypto_alg_parse(const char *name);
const char *crypto_alg_name(enum crypto_alg alg);

/* A public key (for verifying), or a key pair (for signing too). */
struct crypto_key;

/* From a JWK (RFC 7517): kty "RSA" (n, e; at least 2048 bits) or "EC" (crv
 * P-256 or P-384, x, y on the curve). A "d" member is refused: a JWK Set in
 * the configuration holds public keys only. NULL with why. */
struct crypto_key *crypto_key_from_jwk(const cJSON *jwk, char *why, size_t whylen);
/* A private key from an unencrypted PEM file (RSA ≥ 2048 bits, or EC P-256/
 * P-384). NULL with why naming the file. */
struct crypto_key *crypto_key_load_private(const char *file, char *why, size_t whylen);
/* Makes a new EC P-256 key pair and writes it to file (PEM, mode 0600,
 * created exclusively: an existing file is an error). NULL with why. */
struct crypto_key *crypto_key_generate(const char *file, char *why, size_t whylen);
void crypto_key_free(struct crypto_key *k);

/* The one algorithm a key signs with: RS256 for RSA keys unless rsa384,
 * ES256 for P-256, ES384 for P-384. */
enum crypto_alg crypto_key_default_alg(const struct crypto_key *k, bool rsa384);
/* True when alg may be used with k (RS* with RSA; ES256 with P-256; ES384
 * with P-384): the algorithm is taken from the key, never from a token alone. */
bool crypto_key_fits(const struct crypto_key *k, enum crypto_alg alg);
bool crypto_key_is_private(const struct crypto_key *k);

/* The public JWK of k (kty and its members, plus "kid" and "alg" when given;
 * NULL on OOM). Caller frees with cJSON_Delete. */
cJSON *crypto_key_to_jwk(const struct crypto_key *k, const char *kid, enum crypto_alg alg);
/* RFC 7638 thumbprint: base64url of the SHA-256 of the key's canonical JWK
 * (43 characters + NUL). 0, or -1. */
int crypto_key_thumbprint(const struct crypto_key *k, char out[44]);

/* Verifies a JWS signature (raw R||S for ES*, PKCS#1 v1.5 for RS*) over
 * input with k and alg. 0 when it verifies; -1 when it does not, or alg
 * does not fit k. */
int crypto_jws_verify(const struct crypto_key *k, enum crypto_alg alg, const void *input, size_t len,
		      const uint8_t *sig, size_t siglen);
/* Signs input with k's private key; writes the JWS signature (at most
 * 512 bytes for a 4096-bit RSA key) into sig. Returns its length, or -1. */
long crypto_jws_sign(const struct crypto_key *k, enum crypto_alg alg, const void *input, size_t len, uint8_t *sig,
		     size_t cap);

/* Random bytes from the operating system; 0 or -1. */
int crypto_random(void *out, size_t len);

/* The RFC 4122 namespaces. */
extern const uint8_t crypto_ns_dns[16];
extern const uint8_t crypto_ns_url[16];

#endif
