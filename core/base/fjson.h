/* fjson — strict FHIR JSON: a reader and a writer over cJSON trees.
 *
 * cJSON's own parser is unfit for FHIR (measured on Debian 12's 1.7.15): it
 * accepts duplicate property names, truncates strings at \u0000, passes
 * invalid UTF-8, accepts trailing bytes and loses decimal precision. This
 * module parses in one non-recursive pass and builds an ordinary cJSON tree:
 *
 *  - numbers are cJSON_Number nodes (valuedouble/valueint set, so plugins use
 *    them as usual) whose valuestring holds the exact source literal, so
 *    1.10 stays 1.10, 1e2 stays 1e2 and a 20-digit integer survives.
 *    cJSON_Delete frees that literal and cJSON_Duplicate copies it;
 *  - duplicate property names, invalid UTF-8 (overlong forms, UTF-16
 *    surrogates, above U+10FFFF), \u0000 and raw control characters in
 *    strings, lone surrogate escapes, trailing bytes, empty input are
 *    refused (status 400);
 *  - nesting depth, members per object and items per array are bounded;
 *  - the memory a parse may take is bounded (status 413).
 *  A leading UTF-8 byte order mark is skipped.
 *
 * The writer prints compact or pretty (2-space indent) JSON without
 * recursion; it writes a number's literal when it still equals valuedouble
 * (a plugin that changed the value with cJSON_SetNumberValue gets the new
 * value printed), and cJSON_Raw nodes verbatim.
 *
 * Threads: all functions are reentrant; no global state, and cJSON's global
 * hooks are never changed. Ownership: fjson_parse returns a tree the caller
 * frees with cJSON_Delete; fjson_print returns a buffer the caller frees with
 * free(). */
#ifndef CW_FJSON_H
#define CW_FJSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/arena.h"

struct fjson_limits {
	size_t max_depth;       /* containers nested; default 1000 */
	size_t max_members;     /* members in one object; default 10,000 */
	size_t max_array_items; /* items in one array; default 100,000 */
	size_t memory_budget;   /* bytes a parsed tree may take; default 64 MiB */
};

/* Error codes; numbers are never reused. */
#define FJSON_ERRORS(X)                                                   \
	X(FJSON_OK, 0, "ok")                                              \
	X(FJSON_SYNTAX, 1, "syntax error")                                \
	X(FJSON_DUPLICATE_KEY, 2, "duplicate property name")              \
	X(FJSON_INVALID_UTF8, 3, "invalid UTF-8")                         \
	X(FJSON_NUL_CHAR, 4, "NUL character in a string")                 \
	X(FJSON_DEPTH, 5, "nesting too deep")                             \
	X(FJSON_TOO_MANY_MEMBERS, 6, "too many members in an object")     \
	X(FJSON_TOO_MANY_ITEMS, 7, "too many items in an array")          \
	X(FJSON_BUDGET, 8, "document needs more memory than allowed")     \
	X(FJSON_TRAILING_DATA, 9, "data after the end of the document")   \
	X(FJSON_BAD_NUMBER, 10, "malformed number")                       \
	X(FJSON_BAD_ESCAPE, 11, "malformed escape sequence")              \
	X(FJSON_CONTROL_CHAR, 12, "control character in a string")        \
	X(FJSON_EMPTY, 13, "empty document")                              \
	X(FJSON_NO_MEMORY, 14, "out of memory")

enum fjson_code {
#define FJSON_ENUM(name, num, text) name = num,
	FJSON_ERRORS(FJSON_ENUM)
#undef FJSON_ENUM
};

struct fjson_error {
	int status;          /* 400, or 413 for FJSON_BUDGET */
	enum fjson_code code;
	size_t offset;       /* byte offset of the fault */
	int line, column;    /* 1-based; column counts bytes */
	char path[256];      /* FHIRPath-style: Patient.name[0].given[1], or $.a[2] */
	char message[384];   /* human text with line, column and path */
};

/* The defaults listed in struct fjson_limits. */
void fjson_limits_default(struct fjson_limits *lim);

/* The defaults, raised so that any document of len bytes fits: for reading
 * back a text the gateway made itself, which the limits on what clients send
 * do not bound. */
void fjson_limits_for_len(struct fjson_limits *lim, size_t len);

/* Parses len bytes (need not be NUL-terminated). lim may be NULL for the
 * defaults. Returns the tree, or NULL with err filled (err may be NULL). */
cJSON *fjson_parse(const char *buf, size_t len, const struct fjson_limits *lim, struct fjson_error *err);

/* The same parse building the tree in a (nodes, names, strings and number
 * literals; no malloc per node), for a tree that is only read and then
 * dropped at once: the converters use it. The tree lives until the arena is
 * released; never pass it to cJSON_Delete nor change it with cJSON's
 * functions that free (replace, delete, set a string). lim's memory budget
 * bounds it as for fjson_parse; a's own budget must leave room for that (an
 * arena that runs out is reported as FJSON_NO_MEMORY). On error the partial
 * tree stays in the arena until it is released. */
cJSON *fjson_parse_in(struct arena *a, const char *buf, size_t len, const struct fjson_limits *lim,
		      struct fjson_error *err);

/* Prints the tree; *out_len (may be NULL) receives the length without the
 * terminating NUL. NULL on out of memory. */
char *fjson_print(const cJSON *root, bool pretty, size_t *out_len);

struct strbuf;
/* Appends s (NULL: "") to b as a JSON string, quoted and escaped as
 * fjson_print writes strings: for a writer printing JSON without a tree. */
void fjson_add_string(struct strbuf *b, const char *s);

/* The exact literal of a number parsed by fjson_parse (or made with
 * fjson_create_number_literal), else NULL. */
const char *fjson_number_literal(const cJSON *item);

/* A number node carrying lit as its literal; NULL when lit is not a valid
 * JSON number or on OOM. */
cJSON *fjson_create_number_literal(const char *lit);

/* True when s[0..len) is a valid JSON number literal. */
bool fjson_valid_number(const char *s, size_t len);

const char *fjson_code_text(enum fjson_code code);

#endif
