/* store_version — what every backend does the same to a version it stores
 * or reads back: stamping id and meta, the checksum a version carries, the
 * parse of its stored text, and growing a page. Internal to core/store.
 * Threads: no shared state. */
#ifndef CW_STORE_VERSION_H
#define CW_STORE_VERSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "store/store.h"

/* A copy of resource (*out, the caller's) with id and meta.versionId /
 * meta.lastUpdated set, in the order a reader expects: resourceType, id,
 * meta, the rest. STORE_NO_MEMORY otherwise. */
enum store_status sver_stamp(const cJSON *resource, const char *id, int64_t version, const char *when, cJSON **out,
			     struct store_error *err);
/* sver_stamp of resource itself, which it takes (freed, also on failure):
 * no copy is made. */
enum store_status sver_stamp_take(cJSON *resource, const char *id, int64_t version, const char *when, cJSON **out,
				  struct store_error *err);
/* The same stamp on an appended record's text (store_write.text, its
 * opening checked by store_submit): resourceType, then id and meta, then the
 * rest of text. A new string (*out_len its length), NULL when out of memory. */
char *sver_stamp_text(const char *text, const char *type, const char *id, int64_t version, const char *when,
		      size_t *out_len);

/* The checksum a version row carries: the SHA-256 of its type, id, version,
 * lastUpdated and body text (NULL for a deletion). -1 when the digest could
 * not be computed. */
#define SVER_SUM_LEN 32
int sver_sum(const char *type, const char *id, int64_t version, const char *last_updated, const char *body, size_t len,
	     uint8_t out[SVER_SUM_LEN]);

/* What a single write does, whichever backend stores it. */
enum sver_kind { SVER_CREATE, SVER_UPDATE, SVER_DELETE };

/* The rules a write meets against its resource's row (exists; then its
 * deleted flag and current version cur): creating a live resource is
 * STORE_CONFLICT; an update with if_match (0: none) must name cur
 * (STORE_VERSION_MISMATCH); deleting an unknown resource is
 * STORE_NOT_FOUND, and deleting a deleted one writes nothing (*skip, with
 * *version cur). Otherwise *version is cur + 1 and *created says whether
 * no live resource was there. */
enum store_status sver_check(enum sver_kind kind, const char *type, const char *id, int64_t if_match, bool exists,
			     bool deleted, int64_t cur, int64_t *version, bool *created, bool *skip,
			     struct store_error *err);

/* The stored form of a version: resource (NULL for a deletion) stamped
 * into *stored (replacing what was there), printed into *text (malloc'd,
 * the caller's; NULL for a deletion) and the checksum of both. On failure
 * *stored and *text are NULL. */
enum store_status sver_content(const char *type, const char *id, const cJSON *resource, int64_t version,
			       const char *when, cJSON **stored, char **text, uint8_t sum[SVER_SUM_LEN],
			       struct store_error *err);

/* A single write as every backend takes it: what it asks, and what it
 * answers (created, version, stored: the stamped version, the caller's
 * once the write succeeded). */
struct sver_write {
	enum sver_kind kind;
	const char *type, *id;
	const cJSON *resource; /* NULL for SVER_DELETE */
	int64_t if_match;      /* 0 = none */
	enum store_op op;
	bool fresh;      /* a new random id: no row can exist */
	bool created;    /* out: no live resource was there */
	int64_t version; /* out */
	cJSON *stored;   /* out */
};

/* A backend's run of one write (w->stored NULL on failure). */
typedef enum store_status sver_run_fn(struct store *s, struct sver_write *w, struct store_error *err);

/* store_ops' create, update and delete over a backend's run: a create
 * without id gets a new one (fresh), the stored version goes to *out (may
 * be NULL: dropped), *created and *version as store.h says. */
enum store_status sver_create(struct store *s, sver_run_fn *run, const char *type, const cJSON *resource,
			      const char *id, cJSON **out, struct store_error *err);
enum store_status sver_update(struct store *s, sver_run_fn *run, const char *type, const char *id,
			      const cJSON *resource, int64_t if_match, bool *created, cJSON **out,
			      struct store_error *err);
enum store_status sver_delete(struct store *s, sver_run_fn *run, const char *type, const char *id, int64_t *version,
			      struct store_error *err);

/* A queued write as a backend runs it (*w, pointing into sw); a create
 * with no id ("") gets a new one (w->fresh). STORE_IO when no randomness
 * was to be had. */
enum store_status sver_queued(struct store_write *sw, struct sver_write *w);
/* The end of a queued write, on the backend's committer: its outcome st
 * and what w answered go to sw (w->stored becomes sw's, or is freed on
 * failure, when a create of a new id leaves sw->id "" again, as a refused
 * submission does), then store_write_finished(s, sw) runs sw's done. w may
 * be freed before: it is read first. */
void sver_queued_done(struct store *s, struct store_write *sw, enum store_status st, const struct sver_write *w);

/* Parses stored text (len bytes) back into *out (the caller's). */
enum store_status sver_parse(const char *text, size_t len, cJSON **out, struct store_error *err);

/* Room for one more entry in p (capacity *cap). */
enum store_status sver_grow(struct store_page *p, size_t *cap, struct store_error *err);

#endif
