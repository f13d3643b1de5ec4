/* provenance — the Provenance of a transaction (docs/privacy.md#provenance).
 *
 * Every transaction that writes something (POST /fhir with a transaction
 * Bundle, and every /ingest) stores one Provenance in the same store
 * transaction as its writes: target lists every resource written (its
 * version: Type/id/_history/n, deletions included), agent is the writing
 * client (privacy_writer_of: the local operator until clients are
 * authenticated) with the gateway itself as the assembler, and for /ingest
 * the source document is an entity named by its SHA-256 (RFC 6920
 * "ni:///sha-256;…" URI), with the format it came in.
 *
 * Threads: any; nothing is kept. */
#ifndef CW_API_PROVENANCE_H
#define CW_API_PROVENANCE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "api/privacy.h"
#include "base/crypto.h"

#define PROVENANCE_CLIENT_SYSTEM "https://crosswalk.example.org/fhir/NamingSystem/client"

/* The source document of an ingest. */
struct provenance_source {
	const char *format;                /* the native format's name */
	uint8_t sha256[CRYPTO_SHA256_LEN]; /* of the document as received */
};

struct provenance_target {
	const char *type, *id;
	int64_t version;
};

/* A new Provenance (the caller frees it; NULL on OOM) for n targets (n > 0)
 * written by w at recorded (a FHIR instant), from src (NULL: none). */
cJSON *provenance_new(const struct privacy_writer *w, const struct provenance_target *t, size_t n,
		      const struct provenance_source *src, const char *recorded);

/* The RFC 6920 URI of a SHA-256 digest, "ni:///sha-256;" + base64url
 * without padding, into out (at least PROVENANCE_NI_SIZE bytes). */
#define PROVENANCE_NI_SIZE 64
void provenance_ni(const uint8_t sha256[CRYPTO_SHA256_LEN], char out[PROVENANCE_NI_SIZE]);

#endif
