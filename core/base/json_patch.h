/* json_patch — JSON Patch (RFC 6902) over cJSON trees, with JSON Pointer
 * (RFC 6901) paths, for the FHIR patch interaction.
 *
 * json_patch_apply applies every operation of patch (a JSON array of
 * operation objects: add, remove, replace, move, copy, test) to doc in
 * order; it either applies all of them or leaves doc unchanged (it works on
 * a copy and swaps it in at the end). Numbers compare by value in "test"
 * (1.0 equals 1), objects regardless of member order.
 *
 * Errors: JSON_PATCH_MALFORMED when the patch document itself is not a
 * valid JSON Patch (not an array, an unknown op, a missing or mistyped
 * member, a pointer that is not a JSON Pointer, a move into its own child);
 * JSON_PATCH_FAILED when it is valid but cannot apply to this document (a
 * path that does not exist, an array index out of range, a failed "test");
 * JSON_PATCH_NO_MEMORY. message says which operation (by index) and why,
 * without document content.
 *
 * Threads: reentrant. Ownership: doc stays the caller's (its root object is
 * modified in place); patch is only read. */
#ifndef CW_JSON_PATCH_H
#define CW_JSON_PATCH_H

#include <stddef.h>

#include <cjson/cJSON.h>

enum json_patch_status { JSON_PATCH_OK, JSON_PATCH_MALFORMED, JSON_PATCH_FAILED, JSON_PATCH_NO_MEMORY };

/* The most operations one patch may hold. */
#define JSON_PATCH_MAX_OPS 10000

enum json_patch_status json_patch_apply(cJSON *doc, const cJSON *patch, char *message, size_t msglen);

#endif
