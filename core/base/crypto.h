/* crypto — digests, name-based UUIDs, and checks of PEM certificate and key
 * files. The only module that includes OpenSSL.
 *
 * Pure functions: no global state, safe from any thread. */
#ifndef CW_CRYPTO_H
#define CW_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_SHA1_LEN 20
#define CRYPTO_SHA256_LEN 32
#define CRYPTO_UUID_TEXT 37 /* 36 characters + NUL */

/* Return 0, or -1 when the digest could not be computed (OpenSSL failure). */
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

/* The RFC 4122 namespaces. */
extern const uint8_t crypto_ns_dns[16];
extern const uint8_t crypto_ns_url[16];

#endif
