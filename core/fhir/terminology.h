/* terminology — an in-memory registry of code systems: which systems are
 * known, and what a code means in one.
 *
 * Sources: FHIR CodeSystem resources (terminology_add, or every CodeSystem
 * found under a profiles directory by terminology_load_dir), code added code
 * by code (terminology_add_code), and code packs: the compact TSV files of
 * profiles/codes/ (ICD-10-CM, HCPCS Level II; a site's own CPT file), whose
 * format profiles/codes/README.md defines. Concepts nested in a hierarchy are
 * flattened.
 *
 * System URIs: every function taking a system normalises it first
 * (terminology_normalise_system): the three HCPCS URIs seen in the wild name
 * one system, http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets.
 * Codes are compared exactly (case-sensitive, dots significant).
 *
 * Lifetime and threads: fill before serving, then terminology_seal (sorts for
 * binary search); after that every lookup is read-only, allocates nothing and
 * is safe from any thread. Returned strings live until terminology_free.
 * Ownership: strings added are copied; a pack's text is read once into one
 * buffer that the registry owns and its concepts point into.
 *
 * Errors: loaders return -1 with "FILE: line N: reason" (or "FILE: reason")
 * in err; a failed load may leave systems registered before the fault, so the
 * caller treats it as fatal (the gateway refuses to start). */
#ifndef CW_TERMINOLOGY_H
#define CW_TERMINOLOGY_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#define TERMINOLOGY_ICD10CM "http://hl7.org/fhir/sid/icd-10-cm"
#define TERMINOLOGY_HCPCS "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
#define TERMINOLOGY_CPT "http://www.ama-assn.org/go/cpt"

/* Largest pack file accepted, and longest code. */
#define TERMINOLOGY_MAX_PACK_BYTES ((size_t)64 << 20)
#define TERMINOLOGY_MAX_CODE 64

struct terminology;

/* What is known about one code. Strings borrowed from the registry. */
struct terminology_concept {
	const char *system;  /* normalised system URI */
	const char *version; /* of the system; "" when it has none */
	const char *code;
	const char *display; /* "" when the code has none */
	bool billable_known; /* the system records billability (ICD-10-CM) */
	bool billable;       /* valid for claims; false when !billable_known */
	bool inactive;       /* terminated (HCPCS with a termination date) */
	bool modifier;       /* a modifier rather than a procedure (HCPCS) */
};

/* What is known about one system. Strings borrowed from the registry. */
struct terminology_system_info {
	const char *url;     /* normalised */
	const char *name;    /* the pack's #name, or CodeSystem.title/name, or url */
	const char *version; /* "" when none */
	const char *source;  /* pack file or "" (CodeSystems) */
	size_t count;        /* codes */
	bool billable_known;
	bool pack;           /* loaded from a code pack */
};

enum terminology_result { TERMINOLOGY_FOUND = 0, TERMINOLOGY_NO_SYSTEM = 1, TERMINOLOGY_NO_CODE = 2 };

/* NULL on OOM. */
struct terminology *terminology_new(void);
void terminology_free(struct terminology *t);

/* The preferred URI for system (a static string) when system is one of its
 * known aliases, else system itself. NULL stays NULL. */
const char *terminology_normalise_system(const char *system);

/* Registers a CodeSystem resource (borrowed). Concepts of a system already
 * registered under the same url are added to it. -1 with a reason in err
 * when cs is not a CodeSystem with a url, or on OOM. */
int terminology_add(struct terminology *t, const cJSON *cs, char *err, size_t errlen);

/* Adds one code (display may be NULL). -1 on OOM or empty system/code. */
int terminology_add_code(struct terminology *t, const char *system, const char *code, const char *display);

/* Registers every CodeSystem in the *.json files under dir (recursively, at
 * most 4 levels): a file named CodeSystem-*.json must be a valid CodeSystem;
 * other files are registered when they are one and skipped otherwise. A
 * missing dir is not an error (returns 0). Returns the number of systems
 * registered, or -1 with "FILE: reason" in err. */
int terminology_load_dir(struct terminology *t, const char *dir, char *err, size_t errlen);

/* Registers the code pack in data[0..len) (copied; need not be
 * NUL-terminated); source names it in messages. With want_system non-NULL the
 * pack must be of that system, and a pack without a #system line is taken
 * as one (a site's CPT file). A system may come from one pack only. Returns
 * 0, or -1 with "SOURCE: line N: reason" in err (nothing registered then). */
int terminology_add_pack(struct terminology *t, const char *data, size_t len, const char *source,
			 const char *want_system, char *err, size_t errlen);
/* Reads the pack file at path (at most TERMINOLOGY_MAX_PACK_BYTES) and
 * registers it as terminology_add_pack does. */
int terminology_load_pack(struct terminology *t, const char *path, const char *want_system, char *err,
			  size_t errlen);
/* Registers every *.tsv pack in dir (not recursive), in name order. A
 * missing dir is not an error. Returns the number of packs, or -1. */
int terminology_load_packs(struct terminology *t, const char *dir, char *err, size_t errlen);

/* Sorts for lookup. Call once after the last add, before sharing. */
void terminology_seal(struct terminology *t);

/* Fills *out (when non-NULL) for code in system. */
enum terminology_result terminology_find(const struct terminology *t, const char *system, const char *code,
					 struct terminology_concept *out);

/* The display of code in system; "" when the code is known without one;
 * NULL when unknown. */
const char *terminology_lookup(const struct terminology *t, const char *system, const char *code);
bool terminology_system_known(const struct terminology *t, const char *system);
/* Fills *out for system; false when unknown. */
bool terminology_system_info(const struct terminology *t, const char *system, struct terminology_system_info *out);
/* Number of systems, and the i-th (0 ≤ i < count) in registration order. */
size_t terminology_systems(const struct terminology *t);
bool terminology_system_at(const struct terminology *t, size_t i, struct terminology_system_info *out);

#endif
