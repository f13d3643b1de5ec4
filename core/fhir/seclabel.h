/* seclabel — security labels (HL7 DS4P, Resource.meta.security) by rule.
 *
 * A rule table (profiles/security/labels.tsv; the format is in
 * docs/privacy.md) maps codes to labels: every Coding of a resource (an
 * object with a string system and code, anywhere but in meta) is looked up,
 * the first matching "code" line giving its labels ("-": none, an
 * exception). The table also names what a Part 2 program adds to what it
 * writes ("part2"), which referenced resources pass their labels on to the
 * resource that references them ("from") and which resources pass theirs
 * on to the resources they reference ("to"). Systems are compared after terminology_normalise_system, so the
 * HCPCS aliases match the HCPCS line.
 *
 * Labels are only ever added: a label already in meta.security (the same
 * system and code) is kept as it is, and nothing here removes one.
 *
 * Ownership: the rules own their strings (seclabel_free). Functions taking a
 * resource change it in place and keep no pointer into it. Threads: a rule
 * table is built once and only read after; reading it from many threads is
 * safe. */
#ifndef CW_SECLABEL_H
#define CW_SECLABEL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#define SECLABEL_ACTCODE "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#define SECLABEL_CONFIDENTIALITY "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
#define SECLABEL_PART2 "42CFRPart2"

/* Limits of one table: more is refused at load. */
#define SECLABEL_MAX_LABELS 32
#define SECLABEL_MAX_RULES 4096
#define SECLABEL_MAX_BYTES (1u << 20)

struct seclabel_rules;

/* Parses a table from text[0..len) (need not be NUL-terminated); source
 * names it in messages. NULL with "SOURCE: line N: reason" in err on a
 * malformed line, an unknown label name, a limit passed, or OOM. */
struct seclabel_rules *seclabel_parse(const char *text, size_t len, const char *source, char *err, size_t errlen);

/* Reads and parses the table at path (at most SECLABEL_MAX_BYTES). A
 * missing file gives an empty table (no labels by code, none for Part 2
 * programs); any other failure NULL with the reason in err. */
struct seclabel_rules *seclabel_load(const char *path, char *err, size_t errlen);

void seclabel_free(struct seclabel_rules *r);

/* "code" lines of the table. */
size_t seclabel_rule_count(const struct seclabel_rules *r);

/* The labels (names as the table spells them, ORed as bits 1 << index of
 * seclabel_label_at) one coding would bring; 0 for none. */
unsigned seclabel_code_mask(const struct seclabel_rules *r, const char *system, const char *code);

/* The labels of every Coding in res (meta excluded), as a mask. */
unsigned seclabel_scan(const struct seclabel_rules *r, const cJSON *res);

/* What a Part 2 program adds, as a mask. */
unsigned seclabel_part2_mask(const struct seclabel_rules *r);

/* Label i of the table: false past the last. */
bool seclabel_label_at(const struct seclabel_rules *r, size_t i, const char **system, const char **code,
		       const char **display);

/* Adds the labels of mask to res's meta.security (each once). Returns the
 * number added, or -1 on OOM (res then holds those added so far). */
int seclabel_add_mask(const struct seclabel_rules *r, cJSON *res, unsigned mask);

/* Adds one label (display may be NULL) unless res has it already. 1 added,
 * 0 present, -1 OOM or res not an object. */
int seclabel_add(cJSON *res, const char *system, const char *code, const char *display);

/* Adds every label of src's meta.security to dst's (a union). Returns the
 * number added, or -1 on OOM. */
int seclabel_merge(cJSON *dst, const cJSON *src);

/* True when res carries the label system|code. */
bool seclabel_has(const cJSON *res, const char *system, const char *code);

/* True when the labels of a resource of type referencing one of
 * source_type pass on to it (a "from" line). */
bool seclabel_inherits(const struct seclabel_rules *r, const char *type, const char *source_type);

/* True when a resource of type passes its labels on to the resources of
 * target_type it references (a "to" line); target_type "" asks whether it
 * passes them on to any. */
bool seclabel_passes(const struct seclabel_rules *r, const char *type, const char *target_type);

/* Labels res by the table: its codings' labels, plus the Part 2 program's
 * when part2 is set. Returns the number added, or -1 on OOM. */
int seclabel_apply(const struct seclabel_rules *r, cJSON *res, bool part2);

#endif
