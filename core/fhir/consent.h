/* consent — may a labelled resource go to a recipient? The decision over a
 * Patient's R4 Consents (docs/privacy.md#consent-decisions).
 *
 * A resource needs consent when it carries the policy label 42CFRPart2
 * (v3-ActCode) or the confidentiality R or V (v3-Confidentiality); anything
 * else is permitted. What needs consent is permitted when the recipient is
 * the program that wrote it (a 42CFRPart2 resource) or, failing that, when
 * the Patient's Consents permit it and none denies it (deny overrides);
 * when no Consent speaks to it, the policy's default for its kind decides
 * (42CFRPart2: deny unless configured otherwise; R or V alone: the site's
 * choice).
 *
 * A Consent speaks when it is active, of scope patient-privacy, and its
 * root provision matches; then the deepest nested provision that matches
 * (each an exception to its parent) gives its type (permit or deny; a
 * provision without a type takes its parent's). A provision matches when
 * each of its constraints that is present holds: period (the time of the
 * request inside it, compared on the precision both have: a period of
 * days holds every instant of its last day), actor (one
 * actor's reference is the recipient's or the recipient's organization's),
 * purpose (the request's purpose, a v3-ActReason code, is one of them),
 * securityLabel (the resource carries one of them, system and code), class
 * (one class code is the resource's type). Consent.provision.data and
 * dataPeriod are not evaluated: a provision that has them never matches,
 * so it cannot permit more than it says (and a deny with them does not
 * apply either; sites that need them are told so in the docs).
 *
 * Pure: no I/O, no allocation. Threads: any. */
#ifndef CW_CONSENT_H
#define CW_CONSENT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

enum consent_default { CONSENT_DEFAULT_DENY = 0, CONSENT_DEFAULT_PERMIT = 1 };

struct consent_policy {
	enum consent_default part2;      /* 42CFRPart2 data no Consent speaks to (safe: deny) */
	enum consent_default restricted; /* R or V data without 42CFRPart2 (the site's table) */
};

/* Who receives and why. Strings are references as FHIR writes them
 * ("Organization/payer-1") and codes; NULL: unknown (an unknown actor or
 * purpose matches no provision that names actors or purposes). */
struct consent_recipient {
	const char *actor;        /* the recipient itself */
	const char *organization; /* its organization, or NULL */
	const char *purpose;      /* v3-ActReason code: TREAT, HPAYMT, HOPERAT, … */
	const char *client;       /* its client id: the writing program when it equals the writer */
};

enum consent_reason {
	CONSENT_NOT_LABELLED, /* permitted: nothing needs consent */
	CONSENT_WRITER,       /* permitted: the recipient wrote it */
	CONSENT_PERMITTED,    /* permitted by a Consent */
	CONSENT_DENIED,       /* denied by a Consent */
	CONSENT_DEFAULT,      /* no Consent speaks: the policy's default */
};

#define CONSENT_MAX_CITED 4

struct consent_decision {
	bool permit;
	enum consent_reason reason;
	bool part2; /* the resource carries 42CFRPart2: a disclosure carries the notice */
	/* CONSENT_PERMITTED: the Consents that permitted it (indices into
	 * consents, in order; the first CONSENT_MAX_CITED of them) */
	size_t cited[CONSENT_MAX_CITED];
	size_t ncited;
};

/* Decides for resource (its meta.security and resourceType) going to r at
 * when (a FHIR date, dateTime or instant), given the Patient's Consents
 * (n of them, any order; NULL entries and non-Consents are skipped) and
 * the resource's writer (the client id, or NULL when unknown). */
struct consent_decision consent_decide(const struct consent_policy *policy, const struct consent_recipient *r,
				       const char *when, const cJSON *resource, const char *writer,
				       const cJSON *const *consents, size_t n);

/* The words of an explanation of a Consent's scope (42 CFR 2.32(b) as
 * amended in 2024: a disclosure made with consent carries a copy of the
 * consent or a clear explanation of its scope). The site's wording is
 * profiles_dir/security/consent-scope.txt (api/egress.h); these are the
 * shipped defaults. */
struct consent_wording {
	/* {consent} "Consent/id", {recipient}, {purpose}, {period}, {classes},
	 * {labels}: the Consent's root provision, each value or its any_ word */
	const char *scope;
	const char *any_recipient, *any_purpose, *any_period, *any_class, *any_label;
	const char *from, *until; /* a period's bounds, with {start} and {end} */
};
extern const struct consent_wording consent_wording_default;

/* Writes the explanation of consent's scope into out (n bytes, always
 * NUL-terminated; cut with "..." when longer): w->scope with its
 * placeholders replaced by what the root provision says — its actors
 * (display, else reference), purposes (display, else code), period, class
 * codes and security label codes, "; "-separated — or the any_ words when
 * it says nothing. Returns the length written. Pure. */
size_t consent_explain(const cJSON *consent, const struct consent_wording *w, char *out, size_t n);

#endif
