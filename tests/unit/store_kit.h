/* Pieces the store unit tests share (test_store.c, test_store_check.c):
 * queued writes whose done counts its calls, appended access records
 * (store_write.append) submitted and waited for, and the number of
 * AuditEvents a search finds. Header-only; include it after cmocka.h and
 * store/store.h. Each helper fails the running test when the store does
 * not answer as it must. */
#ifndef CW_TESTS_UNIT_STORE_KIT_H
#define CW_TESTS_UNIT_STORE_KIT_H

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/fjson.h"
#include "store/store.h"

/* A queued write (store_submit) and the counter its done adds one to. */
struct sk_queued {
	struct store_write w;
	atomic_int *calls;
};

static inline void sk_queued_done(void *ctx)
{
	struct sk_queued *q = ctx;
	atomic_fetch_add(q->calls, 1);
}

/* Appends records q[from..to) (AuditEvents naming Patient/apN as agent) to
 * s and waits until each is answered (committed to the log, *calls reaches
 * to, within 10 s) with STORE_OK. The caller releases each q[i].w. */
static inline void sk_append_records(struct store *s, struct sk_queued *q, int from, int to, atomic_int *calls)
{
	for (int i = from; i < to; i++) {
		memset(&q[i], 0, sizeof q[i]);
		q[i].calls = calls;
		q[i].w.done = sk_queued_done;
		q[i].w.ctx = &q[i];
		q[i].w.kind = STORE_WRITE_CREATE;
		q[i].w.append = true;
		snprintf(q[i].w.type, sizeof q[i].w.type, "AuditEvent");
		char body[400];
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"AuditEvent\",\"type\":{\"system\":\"urn:t\",\"code\":\"rest\"},"
			 "\"recorded\":\"2026-01-02T03:04:05Z\",\"agent\":[{\"requestor\":true,"
			 "\"who\":{\"reference\":\"Patient/ap%d\"}}],\"source\":{\"observer\":{\"display\":\"gw\"}}}",
			 i);
		q[i].w.resource = fjson_parse(body, strlen(body), NULL, NULL);
		assert_non_null(q[i].w.resource);
		assert_int_equal(store_submit(s, &q[i].w, NULL), STORE_OK);
	}
	for (int i = 0; i < 5000 && atomic_load(calls) < to; i++)
		usleep(2000);
	assert_int_equal(atomic_load(calls), to);
	for (int i = from; i < to; i++)
		assert_int_equal(q[i].w.status, STORE_OK);
}

/* How many AuditEvents of s a search finds: all, or those whose agent is
 * agent (a reference) when it is not NULL. */
static inline size_t sk_audit_total(struct store *s, const char *agent)
{
	struct store_search_param p = {"agent", NULL, agent};
	struct store_search q = {.params = &p, .n_params = agent ? 1 : 0, .count = 0};
	struct store_page page;
	struct store_error err;
	assert_int_equal(store_search(s, "AuditEvent", &q, &page, &err), STORE_OK);
	size_t n = page.total;
	store_page_release(&page);
	return n;
}

#endif
