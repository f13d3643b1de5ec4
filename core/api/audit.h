/* audit — one AuditEvent per access, in the shape of the IHE Basic Audit Log
 * Patterns (BALP): who (the client, its fhirUser, the source address), what
 * (the resources answered, the query), when, the outcome and the purpose of
 * use. docs/audit.md lists the shapes and the configuration (cfg->audit).
 *
 * Every request the gateway answers is recorded, but for the public
 * discovery and health routes (/healthz, /metrics, /fhir/metadata,
 * /fhir/.well-known/..., /auth/jwks). The record is a stored AuditEvent,
 * written through the store's commit queue (store_submit), so that records
 * of requests in flight at once share one durable commit:
 *   durable (the default)  the answer is held (http_defer from finish) until
 *                          the commit holding its record is on disk; when it
 *                          cannot be written the answer becomes a 503 and
 *                          nothing of the first answer leaves
 *   batch                  records wait in memory up to flush_ms and the
 *                          answer does not wait: a crash loses at most that
 *                          window
 * Outbox deliveries are recorded by audit_delivery; a consent decision that
 * withheld data by audit_withheld, which adds a second AuditEvent to the
 * request's record.
 *
 * Ownership: the per-request record belongs to the request (req->app, freed
 * by the HTTP layer when the request is done). Threads: audit_request_* run
 * on the request's thread; audit_delivery from any thread. */
#ifndef CW_API_AUDIT_H
#define CW_API_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "auth/auth.h"
#include "config/config.h"
#include "http/http.h"
#include "store/store.h"

struct audit;

/* Starts the writer of cfg->audit over st (both outlive it); NULL on
 * failure with the reason in err. A disabled audit still returns a writer
 * (whose calls do nothing). */
struct audit *audit_start(struct store *st, const struct config *cfg, char *err, size_t errlen);
/* Writes what batch mode still holds; called before store_drain. */
void audit_drain(struct audit *a);
/* Stops the batch thread and frees (NULL is fine). */
void audit_stop(struct audit *a);

/* Opens the record of req (before authentication, so that a refusal is on
 * the record too). Does nothing for the routes not audited. */
void audit_request_begin(struct audit *a, struct http_request *req);
/* Who sent it, once authenticated (copied). */
void audit_request_who(struct http_request *req, const struct auth_principal *who);
/* The consent hook: type/id was left out of req's answer for reason
 * (e.g. "no-part2-consent"). The request's record then gets a second
 * AuditEvent naming every withheld resource with its reason. */
void audit_withheld(struct http_request *req, const char *type, const char *id, const char *reason);
/* Builds req's AuditEvent(s) from the request, its record and the answer in
 * resp, and submits them; in durable mode holds the answer until they are
 * committed (see above). Called from the dispatcher's finish. */
void audit_request_finish(struct audit *a, struct http_request *req, struct http_response *resp);

/* The record of req refused before dispatch by the HTTP layer's framing
 * checks (http_dispatch.refused: an encoded '/' or '\\' in the path, a
 * header field, Host or length not accepted), from the refusal in resp:
 * nobody identified, what was asked for as sent. Submitted without holding
 * the answer (nothing was read or written: the refusal waits for no disk);
 * in batch mode it joins the batch. Does nothing for the routes not
 * audited. Threads: any. */
void audit_request_refused(struct audit *a, const struct http_request *req, const struct http_response *resp);

/* An outbox delivery of type/id/_history/version (deleted: a DELETE) that
 * the upstream answered with http_status (0: no answer; error says why).
 * Deliveries of AuditEvents themselves are not recorded again. */
void audit_delivery(struct audit *a, const char *type, const char *id, int64_t version, bool deleted, int http_status,
		    const char *error);

/* The access record of a disclosure a command made beside the gateway
 * (crosswalk billing; docs/audit.md, "Commands"): what it disclosed to
 * whom, with a second event naming what consent withheld, as a request's. */
struct audit_disclosure {
	const char *subtype;         /* the event's urn:crosswalk:audit subtype, e.g. "billing-extract" */
	const char *run_id;          /* this run's id (the transaction entity, as X-Request-Id is) */
	const char *client_id;       /* the recipient, a configured client; NULL: the local operator */
	enum auth_purpose purpose;   /* its purpose of use */
	const char *query;           /* what was asked, as a query string ("from=...&to=..."), or NULL */
	const cJSON *disclosed;      /* the Bundle whose entries left (borrowed), or NULL */
	int status;                  /* 200, or the HTTP-like status of the failure */
	const char *const *withheld; /* "Type/id" of what consent withheld, nwithheld of them */
	size_t nwithheld;
	const char *reason; /* why they were withheld (e.g. "no-part2-consent") */
};
/* Builds d's AuditEvent(s) into evs (the caller's; evs[1] NULL when nothing
 * was withheld). Returns how many (0 when out of memory). Threads: any. */
size_t audit_disclosure_events(const struct audit_disclosure *d, cJSON *evs[2]);

/* Whether who may read AuditEvents: auth is off, a loopback operator, or
 * the scope system/crosswalk.admin (audit_scopes_admit on who->scopes).
 * Everywhere else AuditEvents are left out of what leaves: a system
 * history's and an _include's entries (api/egress.h), a bulk export. */
bool audit_may_read(const struct auth *auth, const struct auth_principal *who);
/* Whether a space-separated scope list holds system/crosswalk.admin. */
bool audit_scopes_admit(const char *scopes);

/* The AuditEvent type is read-only over REST and readable with the
 * scope system/crosswalk.admin only (when auth is on): true when req was
 * refused here (405 for a write, 403 without that scope). */
bool audit_guard(const struct auth *auth, const struct auth_principal *who, const struct http_request *req,
		 struct http_response *resp);

#endif
