/* store_refs — what an outbox record must wait for: the resources its
 * version refers to (docs/delivery.md, "When and in what order").
 *
 * Both backends record them with the outbox row at write time; a record is
 * then not taken for delivery while an earlier record of one of them is
 * pending or in flight. Pure functions: any thread. */
#ifndef CW_STORE_REFS_H
#define CW_STORE_REFS_H

#include <stddef.h>

#include "store/store.h"

/* At most this many resources are recorded per outbox record; a version
 * referring to more is ordered after the first this many only. */
#define STORE_OUTBOX_MAX_REFS 256

/* Called once per distinct referenced resource (never type/id itself). */
typedef int store_ref_fn(void *ctx, const char *type, const char *id);

/* Parses body (a stored version's JSON text, len bytes) and calls fn for
 * every distinct resource its "reference" members name as "Type/id"
 * (relative, absolute or "/_history/n"; contained "#…" and "urn:" ones
 * are not resources of this store), other than type/id itself, up to
 * STORE_OUTBOX_MAX_REFS. Returns 0, fn's non-zero result, or -1 when body
 * is not JSON (nothing recorded). */
int store_refs_each(const char *body, size_t len, const char *type, const char *id, store_ref_fn *fn, void *ctx);

#endif
