/* api_outbox — inspecting and resending the outbox (core/upstream/outbox.h).
 *
 * GET /outbox[?state=pending|dead&_count=N&_offset=N] answers JSON: counts and
 * the records (oldest first) with their attempts, next attempt and last
 * error. POST /outbox/{oid}/$retry puts a dead letter (or a waiting record)
 * back in line for an immediate attempt. POST
 * /outbox/$retry[?type=T&error=TEXT&since=TIME&until=TIME] does so for every
 * dead letter matching all the filters given (none: every dead letter) and
 * answers {"retried":N,"pending":N,"dead":N}; an unknown, repeated or empty
 * filter, a type that is not a resource type or a malformed time is 400.
 * Without an upstream all answer 404.
 *
 * Threads: handlers run on worker threads; the store serialises access. */
#ifndef CW_API_OUTBOX_H
#define CW_API_OUTBOX_H

#include "api/context.h"

int api_outbox_register(struct app *app);

#endif
