/* invariants — the R4 core invariants (FHIRPath constraints of the resource
 * definitions) checked on a resource with the FHIRPath engine.
 *
 * The table (core/fhir/gen/invariants_data.c, `make invariants`) holds the
 * error-severity constraints each resource type defines on its own elements,
 * plus DomainResource's dom-4 and dom-5 (tools/gen_invariants.py says what is
 * left out and why). Each constraint is evaluated on every element its path
 * names (the path is itself evaluated as FHIRPath); a false result is an
 * error issue naming the constraint key. A constraint the engine cannot
 * evaluate (memberOf() needs terminology, for example) is counted as
 * unchecked, never as a failure.
 *
 * Threads: reentrant; compiled expressions come from the FHIRPath cache.
 * Errors: issues go to oo with code "invariant" and the element path as the
 * expression. */
#ifndef CW_INVARIANTS_H
#define CW_INVARIANTS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "fhir/outcome.h"

struct invariant {
	const char *type;  /* resource type, or DomainResource for every domain resource */
	const char *path;  /* the element the constraint sits on */
	const char *key;   /* e.g. "pat-1" */
	const char *expr;  /* FHIRPath */
	const char *human; /* the definition's own wording */
};

extern const struct invariant invariants[];
extern const size_t invariants_n;

struct invariants_stats {
	size_t checked;   /* evaluations done */
	size_t failed;    /* evaluations that gave false */
	size_t unchecked; /* constraints the engine could not compile or evaluate */
};

/* Checks the invariants of resource's type (not those of contained or
 * Bundle-entry resources). Adds one error issue per failed constraint and
 * element; returns the number of failures. stats may be NULL. */
size_t invariants_check(const cJSON *resource, struct outcome *oo, struct invariants_stats *stats);

#endif
