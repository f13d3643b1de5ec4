/* api_outbox — inspecting and resending the outbox (core/upstream/outbox.h).
 *
 * GET /outbox[?state=pending|dead&_count=N&_offset=N] answers JSON: counts and
 * the records (oldest first) with their attempts, next attempt and last
 * error. POST /outbox/{oid}/$retry puts a dead letter (or a waiting record)
 * back in line for an immediate attempt. Without an upstream both answer 404.
 *
 * Threads: handlers run on worker threads; the store serialises access. */
#ifndef CW_API_OUTBOX_H
#define CW_API_OUTBOX_H

#include "api/context.h"

int api_outbox_register(struct app *app);

#endif
