/* validate_bundle — the Bundle rules of structural validation (part of
 * validate, declared apart so the tree walk stays in validate.c).
 *
 * Rules, each issue an error whose diagnostics start with its stable id:
 *  - bundle-fullurl-syntax: an entry's fullUrl is an absolute URI; a urn:uuid
 *    one is a lower-case UUID, a urn:oid one an OID (the R4 uuid and oid
 *    types);
 *  - bundle-fullurl-match: a RESTful fullUrl (…/{type}/{id}) names the
 *    entry's resource: the same resource type and, when the resource has an
 *    id, the same id;
 *  - bundle-fullurl-required: every entry with a resource has a fullUrl in a
 *    document or a message (their references resolve through it);
 *  - bundle-ref-resolves: in every Bundle but a searchset or history, a
 *    reference to a urn:uuid: or urn:oid: URL names an entry's fullUrl
 *    (such URLs mean nothing outside the Bundle); in a document, a relative
 *    reference ({type}/{id}) made by the Composition (the first entry: R4
 *    says what it refers to travels with it) also resolves within the Bundle, against the
 *    base of the referring entry's fullUrl or to an entry of that type and id.
 * fullUrl uniqueness is bdl-7 and version-specific fullUrls bdl-8, both R4
 * core invariants (invariants.h). Nested Bundles (a Bundle as an entry's
 * resource) are checked on their own when the walk reaches them; their
 * references are not followed from the outer Bundle.
 *
 * Threads: reentrant. */
#ifndef CW_VALIDATE_BUNDLE_H
#define CW_VALIDATE_BUNDLE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "fhir/outcome.h"

/* Checks the rules above on bundle (a Bundle resource the structural walk
 * accepted so far), whose location is path ("Bundle", or the FHIRPath of a
 * nested one; NULL or "" for "Bundle"). Adds at most budget issues to oo and
 * returns the number of problems found (which may exceed budget). */
size_t validate_bundle_rules(const cJSON *bundle, const char *path, struct outcome *oo, size_t budget);

#endif
