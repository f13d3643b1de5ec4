/* fold — text folded for string search: case and accents ignored.
 *
 * fold_text maps every code point through the generated table
 * (core/fhir/gen/fold_data.c, `make search-params` runs tools/gen_fold.py):
 * Unicode full case folding, then the nonspacing (combining) marks removed
 * from its canonical decomposition, composed again. "Zoë Núñez" becomes
 * "zoe nunez", "Straße" "strasse", "ΣΩΚΡΆΤΗΣ" "σωκρατησ"; a combining mark on
 * its own disappears, so a decomposed query matches a precomposed value.
 * Bytes that are not well-formed UTF-8 are copied unchanged.
 *
 * Pure functions over static data: safe from any thread. */
#ifndef CW_FOLD_H
#define CW_FOLD_H

#include <stddef.h>
#include <stdint.h>

/* The folded copy of s (NUL-terminated; caller frees), at most three times
 * as long; NULL on OOM. */
char *fold_text(const char *s);

/* The generated table, sorted by code point: one code point becomes one,
 * one becomes up to three (unused slots 0), ranges that become nothing. */
extern const uint32_t fold_single[][2];
extern const size_t fold_single_count;
extern const uint32_t fold_multi[][4];
extern const size_t fold_multi_count;
extern const uint32_t fold_drop[][2];
extern const size_t fold_drop_count;

#endif
