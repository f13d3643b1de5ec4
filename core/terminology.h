/* terminology — an in-memory registry of code systems: which systems are
 * known, and the display of a code in one.
 *
 * Sources: FHIR CodeSystem resources (terminology_add, or every CodeSystem
 * found under a profiles directory by terminology_load_dir) and code packs
 * added code by code (terminology_add_code). Concepts nested in a hierarchy
 * are flattened.
 *
 * Lifetime and threads: fill before serving, then terminology_seal (sorts for
 * binary search); after that lookups are read-only and safe from any thread.
 * Returned strings live until terminology_free. Ownership: every string added
 * is copied. */
#ifndef CW_TERMINOLOGY_H
#define CW_TERMINOLOGY_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

struct terminology;

/* NULL on OOM. */
struct terminology *terminology_new(void);
void terminology_free(struct terminology *t);

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

/* Sorts for lookup. Call once after the last add, before sharing. */
void terminology_seal(struct terminology *t);

/* The display of code in system; "" when the code is known without one;
 * NULL when unknown. */
const char *terminology_lookup(const struct terminology *t, const char *system, const char *code);
bool terminology_system_known(const struct terminology *t, const char *system);
size_t terminology_systems(const struct terminology *t);

#endif
