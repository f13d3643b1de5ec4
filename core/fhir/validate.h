/* validate — structural validation of a FHIR R4 resource against the model.
 *
 * Checks, at every level including contained resources and resources inside
 * Bundle entries and Parameters: a known resourceType; no unknown elements; no
 * "_name" sibling except for primitives; arrays exactly where the element
 * repeats and none where the maximum is 0 (every R4 element allows 0, 1 or
 * any number of values, which tools/gen_model.py enforces; the one max 0 is
 * xhtml.extension: no extension on a narrative div); minimum cardinality; one
 * type per choice element and
 * only a type the choice allows; no empty object, array or string; no null
 * except as an array placeholder aligned with a "_name" entry; each primitive
 * value of the right JSON kind and matching its type: date, dateTime,
 * instant, time, integer, unsignedInt, positiveInt, decimal, boolean, oid and
 * uuid by the regex the specification gives (core/fhir/model.h, POSIX ERE), with
 * 32-bit ranges for the integer types; id, code, string, markdown, uri, url,
 * canonical and base64Binary by equivalent hand-written checks (the R4
 * regexes for those use \s and \S, which POSIX lacks); the narrative div as
 * well-formed XHTML rooted at <div> that keeps the narrative rules txt-1
 * (basic XHTML only, by allow-list: no active content) and txt-2 (some
 * content), see fhir_xml_check_div; no control character (U+0001..U+001F
 * but tab, CR, LF) in any primitive; decimals within IEEE double range;
 * date, dateTime and instant on real calendar days (the search parser's
 * check); contained resources by dom-2 and dom-3, and every "#id"
 * reference naming one; an Attachment's size and hash against its data
 * (att-size, att-hash); in a Bundle, its fullUrls and the references within
 * it (core/fhir/validate_bundle.h).
 *
 * When the structure is sound, the R4 core invariants of the resource's type
 * are checked too (core/fhir/invariants.h: FHIRPath constraints, each failure
 * an error naming its key). The bindings R4 sets on core elements are
 * checked with the built-in core ValueSets (fhir/valueset.h): a code,
 * Coding or CodeableConcept outside a `required` binding's ValueSet is an
 * error (message id "binding-required"), outside an `extensible` one a
 * warning unless a code is of a system the ValueSet holds no code of
 * ("binding-extensible"; at most VALIDATE_MAX_ISSUES of them); a
 * ValueSet that is not built in is not judged. Profiles are not checked
 * here; the profile validator builds on this.
 *
 * Threads: reentrant (compiled regexes are shared read-only after a
 * pthread_once). Errors: issues go to oo with FHIRPath-style locations
 * ("Patient.name[0].given[1]"); at most VALIDATE_MAX_ISSUES are reported, then
 * one more saying the list was cut. */
#ifndef CW_VALIDATE_H
#define CW_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "fhir/outcome.h"

#define VALIDATE_MAX_ISSUES 100

/* Validates resource; returns the number of errors found (0: valid). */
size_t validate_resource(const cJSON *resource, struct outcome *oo);
/* The same as a yes/no check (the shape of struct cw_ctx's check): true
 * when resource is valid, else false with the problems in oo. */
bool validate_ok(const cJSON *resource, struct outcome *oo);

/* Checks one primitive value given as text against its type name ("date",
 * "id", …). Returns true when it conforms. */
bool validate_primitive_text(const char *type, const char *text);

/* Neutralises, in a tree that came from elsewhere (an upstream answer), every
 * narrative div ("text": {"div": …}, at any depth) that breaks txt-1 or
 * txt-2: the div is replaced by a fixed one saying it was withheld, and the
 * narrative status becomes "empty". Nothing else changes. Returns the number
 * of divs replaced. Not thread-safe on the same tree. */
size_t validate_neutralise_narrative(cJSON *tree);

#endif
