/* store_version — what every backend does the same to a version it stores
 * or reads back: stamping id and meta, the checksum a version carries, the
 * parse of its stored text, and growing a page. Internal to core/store.
 * Threads: no shared state. */
#ifndef CW_STORE_VERSION_H
#define CW_STORE_VERSION_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "store/store.h"

/* A copy of resource (*out, the caller's) with id and meta.versionId /
 * meta.lastUpdated set, in the order a reader expects: resourceType, id,
 * meta, the rest. STORE_NO_MEMORY otherwise. */
enum store_status sver_stamp(const cJSON *resource, const char *id, int64_t version, const char *when, cJSON **out,
			     struct store_error *err);

/* The checksum a version row carries: the SHA-256 of its type, id, version,
 * lastUpdated and body text (NULL for a deletion). -1 when the digest could
 * not be computed. */
#define SVER_SUM_LEN 32
int sver_sum(const char *type, const char *id, int64_t version, const char *last_updated, const char *body, size_t len,
	     uint8_t out[SVER_SUM_LEN]);

/* Parses stored text (len bytes) back into *out (the caller's). */
enum store_status sver_parse(const char *text, size_t len, cJSON **out, struct store_error *err);

/* Room for one more entry in p (capacity *cap). */
enum store_status sver_grow(struct store_page *p, size_t *cap, struct store_error *err);

#endif
