/* person_match — finding the person at the upstream before the gateway's
 * Patient goes there (upstream.match_identifier_systems).
 *
 * The EHR behind the gateway often has the person already, under its own
 * id. Before a Patient is delivered, the upstream is searched by each of the
 * Patient's identifiers in the configured systems (GET Patient?identifier=
 * system|value). No match, or only the gateway's own Patient: the Patient
 * is delivered as usual. Exactly one other Patient: the person is linked to
 * it — the gateway's Patient is not delivered (the EHR's record is not
 * overwritten) and every reference Patient/{local id} in what is delivered
 * afterwards names the upstream's Patient instead. More than one: the
 * person cannot be matched unambiguously; the Patient and everything that
 * refers to it wait as dead letters with the reason, never as duplicates.
 *
 * The upstream is asked again after a restart (links are kept in memory
 * only, up to PMATCH_CACHE people; beyond that the upstream is asked
 * again), so a duplicate the EHR merges is picked up by a retry.
 *
 * Threads: one struct pmatch per thread (the outbox's worker). */
#ifndef CW_PERSON_MATCH_H
#define CW_PERSON_MATCH_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "store/store.h"
#include "upstream/upstream.h"

#define PMATCH_CACHE 4096

enum pmatch_result {
	PMATCH_OWN,       /* deliver as it is: no match, or the gateway's own Patient */
	PMATCH_LINKED,    /* the person is another Patient at the upstream */
	PMATCH_AMBIGUOUS, /* several Patients at the upstream: a dead letter (why says which) */
	PMATCH_RETRY,     /* the upstream did not answer the search: try again later (why) */
	PMATCH_NOMEM
};

struct pmatch;

/* A matcher searching up by the identifier systems of systems (an array of
 * strings, borrowed: it must outlive the matcher), reading local Patients
 * from st. NULL when out of memory. */
struct pmatch *pmatch_new(struct store *st, struct upstream *up, const cJSON *systems);
void pmatch_free(struct pmatch *m);

/* The upstream Patient for the local Patient local_id, whose resource is
 * patient (borrowed). PMATCH_LINKED fills upstream_id. */
enum pmatch_result pmatch_patient(struct pmatch *m, const char *local_id, const cJSON *patient,
				  char upstream_id[STORE_ID_SIZE], char *why, size_t whylen);

/* Rewrites, in res, every "reference": "Patient/{id}" whose Patient is
 * linked to another at the upstream. PMATCH_OWN when all is ready to go
 * (rewritten or not); PMATCH_AMBIGUOUS or PMATCH_RETRY (why) when one of
 * the Patients it refers to cannot be matched now. */
enum pmatch_result pmatch_rewrite(struct pmatch *m, cJSON *res, char *why, size_t whylen);

#endif
