/* outbox — durable delivery of stored writes to the upstream FHIR server.
 *
 * A write that must reach the upstream is committed in the store together
 * with an outbox record (store_outbox_add in the same transaction), and only
 * then acknowledged. upstream.delivery_workers threads deliver the records:
 * the recorded version with PUT {type}/{id} (ids are the gateway's or the
 * client's, so a repeated delivery overwrites rather than duplicates), or
 * DELETE; related records in the order they were written (store.h's outbox
 * contract: the versions of one resource in order, and a resource before
 * what refers to it and what it refers to before it, also after an outage;
 * nothing related goes while an earlier one waits for a retry), unrelated
 * ones in parallel, also by other instances on a shared store; on a 5xx, 408, timeout or refused connection it retries with
 * capped exponential backoff and jitter (retry_base_ms doubling up to
 * retry_max_ms), on 429/503 with Retry-After it waits as told; another 4xx,
 * or max_attempts used up, makes the record a dead letter with the last
 * error. Dead letters stay until POST /outbox/{oid}/$retry puts them back.
 * Nothing is lost across a crash: records leave the store only once the
 * upstream answered 2xx.
 *
 * Threads: outbox_kick and outbox_full are safe from any thread; filter,
 * the plugins' hooks and the observer of attempts are called from every
 * delivery thread at once. */
#ifndef CW_OUTBOX_H
#define CW_OUTBOX_H

#include <stdbool.h>

#include "config/config.h"
#include "plugin/plugin_host.h"
#include "store/store.h"
#include "upstream/upstream.h"

struct outbox;

/* The recipient's rules: NULL when res (the stored version, labels and
 * all) may go to the upstream, else why not (a reason code such as
 * "no-part2-consent"): the record becomes a dead letter with that reason
 * and waits for POST /outbox/{oid}/$retry, which decides again. When it
 * may go, the filter may add to lines (empty at the call) the header lines
 * that go with it (the redisclosure notice, the permitting Consents); the
 * outbox sends them with the PUT and frees them. */
typedef const char *outbox_filter_fn(void *ud, const cJSON *res, struct upstream_lines *lines);

/* Starts the delivery threads; NULL on failure. Each resource is first decided by
 * filter (NULL: none; ud is passed back), then runs through the plugins'
 * before-upstream hooks (plugins may be NULL) before it is sent; a hook
 * that stops it makes the record a dead letter with the hook's message. */
struct outbox *outbox_start(struct store *st, struct upstream *up, const struct config *cfg,
			    const struct plugin_host *plugins, outbox_filter_fn *filter, void *ud);
/* Stops the delivery threads (attempts in flight finish first) and frees. */
void outbox_stop(struct outbox *o);
/* Called by the worker after each exchange with the upstream for it: the
 * status the upstream answered (a DELETE of what is already gone there
 * counts as 200), or 0 with error when none came. Runs on the delivery
 * thread, several at once; must not call back into the outbox. */
typedef void outbox_attempt_fn(void *ctx, const struct outbox_item *it, int http_status, const char *error);
/* Sets (fn NULL: clears) the observer of attempts; any thread. */
void outbox_on_attempt(struct outbox *o, outbox_attempt_fn *fn, void *ctx);
/* Wakes the worker after a commit that added records. */
void outbox_kick(struct outbox *o);
/* True when pending records reached the high-water mark: new pushes are
 * answered 503 with Retry-After *retry_after_s. */
bool outbox_full(struct outbox *o, long *retry_after_s);

#endif
