/* egress — the one consent filter every way out of the gateway calls
 * (docs/privacy.md#consent-at-every-egress).
 *
 * Before a stored resource leaves — a REST answer (read, vread, search,
 * history, includes), an export's gathered Bundle (GET /export/{format},
 * the billing extract, Claim/$build), a bulk export file, an outbox
 * delivery or a write passed through to the upstream — it is decided for
 * its recipient by consent_decide (fhir/consent.h) over the Consents of its
 * Patient, read from the store. The recipient of a request is its client
 * (req->principal: the client id, its auth.clients[].organization, its
 * fhirUser, and its purpose as a v3-ActReason code: treatment TREAT,
 * operations HOPERAT, billing HPAYMT, recovery TREAT), or the local
 * operator when auth is off; the upstream is a recipient like any other
 * (client id "upstream", upstream.organization, upstream.purpose_of_use).
 *
 * What is withheld is left out (a direct read answers 404); an Encounter
 * withheld from an export becomes a stub (its id, status, class, subject
 * and period) carrying the extension EGRESS_WITHHELD_URL with the code
 * EGRESS_NO_PART2_CONSENT, so that the extract lists it as not billed for
 * that reason instead of dropping it silently. A disclosure of 42CFRPart2
 * data carries the redisclosure notice (profiles/security/redisclosure.txt,
 * app->redisclosure): the header X-Redisclosure-Notice, and in a Bundle the
 * extension EGRESS_NOTICE_URL on Bundle.meta.
 *
 * Every call site is one line. Threads: any; one struct egress belongs to
 * one thread (one answer) at a time. */
#ifndef CW_API_EGRESS_H
#define CW_API_EGRESS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "api/context.h"
#include "fhir/consent.h"
#include "store/store.h"
#include "upstream/upstream.h"

#define EGRESS_NO_PART2_CONSENT "no-part2-consent"
#define EGRESS_WITHHELD_URL "https://crosswalk.example.org/fhir/StructureDefinition/withheld"
#define EGRESS_NOTICE_URL "https://crosswalk.example.org/fhir/StructureDefinition/redisclosure-notice"
#define EGRESS_NOTICE_HEADER "X-Redisclosure-Notice"
#define EGRESS_UPSTREAM "upstream"
#define EGRESS_NOTICE_SHORT "42 CFR part 2 prohibits unauthorized use or disclosure of these records."
#define EGRESS_CACHE 8 /* Patients whose Consents one answer keeps */
#define EGRESS_CONSENT_URL "https://crosswalk.example.org/fhir/StructureDefinition/disclosure-consent"
#define EGRESS_CONSENT_HEADER "X-Disclosure-Consent"
#define EGRESS_MAX_CITED 8   /* permitting Consents one answer names */
#define EGRESS_SCOPE_MAX 512 /* longest explanation of one Consent's scope */

/* A Consent that permitted part of the disclosure, and what it permits. */
struct egress_cited {
	char ref[STORE_ID_SIZE + 16]; /* "Consent/id" */
	char scope[EGRESS_SCOPE_MAX]; /* consent_explain with app->consent_words */
};

struct egress_patient {
	char ref[STORE_ID_SIZE + 16]; /* "Patient/id" */
	struct store_page page;       /* its Consents */
	const cJSON **consents;
	size_t n;
};

/* One answer's decisions: the recipient, the Consents read so far, and
 * what was disclosed. */
struct egress {
	struct store *store;
	const char *notice; /* app->redisclosure */
	struct consent_policy policy;
	struct consent_recipient r;
	char when[32];
	struct egress_patient cache[EGRESS_CACHE];
	size_t ncache, next;
	bool part2;                     /* a 42CFRPart2 resource was disclosed: the notice goes with it */
	size_t withheld;                /* resources left out */
	const struct http_request *req; /* whose answer (its access record names what is withheld), or NULL */
	bool refuse_part2;              /* no 42CFRPart2 data at all (a command run for nobody named) */
	/* called for each resource withheld (besides req's access record), or NULL */
	void (*on_withheld)(void *ud, const char *type, const char *id, const char *reason);
	void *ud;
	/* the Consents that permitted what was disclosed (42 CFR 2.32(b)) */
	const struct consent_wording *words; /* app->consent_words, or NULL: nothing cited */
	struct egress_cited cited[EGRESS_MAX_CITED];
	size_t ncited;
};

/* Starts the decisions for the answer to req (NULL: the upstream). */
void egress_begin(struct egress *eg, const struct app *app, const struct http_request *req);
/* The same for a configured client by id (NULL: the local operator), as a
 * bulk export's job records it; no notice header. */
void egress_begin_client(struct egress *eg, struct store *store, const struct config *cfg, const char *client_id);
/* The same for a command that discloses beside the gateway (crosswalk
 * billing): client_id names the configured client the disclosure is for
 * (its organization and purpose decide, as for its requests); NULL names
 * nobody, and then no 42CFRPart2 data is disclosed whatever the Consents
 * say (R/V data follows the site's table for TREAT). Disclosures carry
 * app->redisclosure. */
void egress_begin_command(struct egress *eg, const struct app *app, const char *client_id);
/* False when text (a resource's JSON) certainly carries no label that
 * needs consent: no need to parse it. */
bool egress_may_need(const char *text, size_t len);
/* True when res may go to the recipient (and notes a Part 2 disclosure). */
bool egress_allows(struct egress *eg, const cJSON *res);
/* Adds the notice header to resp (NULL: none) when Part 2 data was
 * disclosed; frees what eg read. */
void egress_end(struct egress *eg, struct http_response *resp);

/* Loads app->redisclosure from profiles_dir/security/redisclosure.txt (one
 * paragraph, printable ASCII, at most 4 KiB; shipped: the statement of 42
 * CFR 2.32(a)(1) as amended in 2024). Without the file the abbreviated
 * statement of 2.32(a)(2) is used: 42CFRPart2 data never leaves without a
 * notice. 0, or -1 with the reason in err (a malformed file). */
int egress_load_notice(struct app *app, char *err, size_t errlen);

/* Loads app->consent_words: the shipped defaults (consent_wording_default)
 * with the lines "key: text" of profiles_dir/security/consent-scope.txt
 * over them (keys scope, any-recipient, any-purpose, any-period,
 * any-class, any-label, from, until; '#' starts a comment; printable ASCII,
 * lines of at most 4 KiB). 0, or -1 with the reason in err. */
int egress_load_wording(struct app *app, char *err, size_t errlen);

/* A permitting Consent as the header EGRESS_CONSENT_HEADER ("Consent/id;
 * SCOPE", printable ASCII) on resp, and as the Bundle.meta (or bulk
 * manifest) extension EGRESS_CONSENT_URL: valueReference with the
 * reference and the scope as display (NULL when out of memory). */
void egress_consent_header(struct http_response *resp, const struct egress_cited *c);
cJSON *egress_consent_extension(const struct egress_cited *c);

/* Adds eg's permitting Consents to list (*n of them, at most
 * EGRESS_MAX_CITED), each once: what one answer gathered by several
 * decisions (the files of a bulk export, the gathering of an operation)
 * names. */
void egress_cite_into(struct egress_cited *list, size_t *n, const struct egress *eg);
/* Names the n permitting Consents of list where a disclosure carries them:
 * the header on resp (NULL: none) and the extension on res's meta (a
 * Bundle's, or a single resource's; NULL: none). */
void egress_cite_on(struct http_response *resp, cJSON *res, const struct egress_cited *list, size_t n);

/* --- the call sites (one line each) --- */

/* A read's stored text: true (answered 404, *text freed and NULL) when it is
 * withheld from req's client; else adds the notice header when needed. */
bool egress_withholds_text(const struct app *app, const struct http_request *req, struct http_response *resp,
			   char **text, size_t len);
/* The same for a parsed resource (*res freed and NULL when withheld). */
bool egress_withholds(const struct app *app, const struct http_request *req, struct http_response *resp, cJSON **res);
/* A searchset or history Bundle: withheld entries are removed (a
 * searchset's total lessened by them), the notice added to Bundle.meta and
 * resp when Part 2 data remains. Bundle.entry stays (maybe empty) for the
 * caller to finish. */
void egress_bundle(const struct app *app, const struct http_request *req, struct http_response *resp, cJSON *bundle);
/* A gathered collection Bundle (exports, $build): as egress_bundle, but a
 * withheld Encounter becomes its stub and Bundle.meta.security holds
 * the labels of what remains; resp may be NULL. Returns the number
 * withheld. */
size_t egress_gathered(const struct app *app, const struct http_request *req, struct http_response *resp,
		       cJSON *bundle);
/* egress_gathered with decisions begun by the caller (egress_begin_command),
 * who ends them with egress_end; eg->part2 then tells whether the notice
 * went with it. */
size_t egress_gathered_with(const struct app *app, struct egress *eg, cJSON *bundle);
/* What an operation built from what the egress let through (Claim/$build's
 * answer): the notice (header, and Bundle.meta when a Bundle) when it or an
 * entry carries 42CFRPart2, or when from_part2 (what was gathered for it
 * held 42CFRPart2 data: what is derived from it is disclosed with it). */
void egress_notice(const struct app *app, struct http_response *resp, cJSON *res, bool from_part2);
/* A resource going to the upstream (outbox, pass-through): NULL when it may
 * go, else the reason it is withheld (EGRESS_NO_PART2_CONSENT). */
const char *egress_upstream_refuses(const struct app *app, const cJSON *res);
/* The same, and when it may go, what goes with it added to lines (NULL:
 * nothing): the header EGRESS_NOTICE_HEADER when it is 42CFRPart2 data, and
 * EGRESS_CONSENT_HEADER for each Consent that permitted it. */
const char *egress_upstream_decide(const struct app *app, const cJSON *res, struct upstream_lines *lines);
/* A body passed through to the upstream (application/fhir+json text, *len
 * bytes), decided already (egress_upstream_refuses on each resource): what
 * goes with it added to lines as egress_upstream_decide does, and when it is
 * a Bundle, the notice and the permitting Consents also on its Bundle.meta:
 * *body is then replaced by a new malloc'd text (*owned, which the caller
 * frees; NULL when body stays). Text that needs no consent is not parsed. */
void egress_upstream_body(const struct app *app, const char **body, size_t *len, char **owned,
			  struct upstream_lines *lines);

/* egress_upstream_decide as the outbox's filter (upstream/outbox.h); app
 * is the struct app. */
const char *egress_outbox_filter(void *app, const cJSON *res, struct upstream_lines *lines);

#endif
