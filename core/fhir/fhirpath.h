/* fhirpath — FHIRPath (R4, normative N1) over FHIR JSON trees.
 *
 * An expression is compiled once into an immutable tree (fp_compile, or
 * fp_cached for the process-wide cache) and evaluated any number of times
 * against a resource (fp_eval). Values follow the FHIRPath type system:
 * Boolean, Integer (64-bit), Decimal (exact: a 128-bit mantissa and a decimal
 * scale, never a double, up to 36 digits), String, Date, DateTime, Time (each
 * with its precision and optional offset), Quantity (a Decimal and a UCUM unit
 * or a calendar duration), and FHIR nodes (an element of the JSON tree with
 * its model type from core/fhir/model.h, so choice elements, `is`, `as`,
 * `ofType` and primitives with only an extension work).
 *
 * Environment variables: %resource, %rootResource (the Bundle resolve()
 * searches), %context, %ucum, %sct, %loinc, %"vs-NAME" and %"ext-NAME"
 * (R4 ValueSet and StructureDefinition canonical URLs).
 *
 * Limits: an expression is at most FP_MAX_EXPR bytes and nests at most
 * FP_MAX_DEPTH levels (a syntax error beyond); an evaluation takes memory
 * only from the caller's arena, so the arena's budget bounds it (FP_ERR_LIMIT
 * when exceeded); the cache holds at most FP_CACHE_MAX expressions; a regular
 * expression (matches, replaceMatches) is at most FP_MAX_REGEX bytes and may
 * not stack quantifiers ("a+*"), which POSIX regcomp compiles in exponential time.
 *
 * Threads: compiled expressions are immutable and may be evaluated from any
 * number of threads at once; fp_cached is thread-safe. One evaluation uses
 * one arena, which belongs to the calling thread.
 * Ownership: fp_compile's result is freed with fp_free; fp_cached's results
 * live until the process ends (never free them). Results of fp_eval point
 * into the arena and into the resource tree: valid while both are.
 * Errors: every function that can fail fills struct fp_error (may be NULL):
 * a code, the byte offset in the expression, and a message. */
#ifndef CW_FHIRPATH_H
#define CW_FHIRPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/arena.h"
#include "fhir/model.h"

#define FP_MAX_EXPR 65536
#define FP_MAX_DEPTH 200
#define FP_CACHE_MAX 8192
#define FP_MAX_REGEX 1024

enum fp_errcode {
	FP_OK = 0,
	FP_ERR_SYNTAX = 1,   /* the text is not a FHIRPath expression */
	FP_ERR_SEMANTIC = 2, /* well formed, but names an unknown function, variable or type, or wrong arguments */
	FP_ERR_EVAL = 3,     /* evaluation failed: a collection where one item is needed, a bad conversion… */
	FP_ERR_LIMIT = 4,    /* a limit above, or the arena's budget, was exceeded */
	FP_ERR_NOMEM = 5
};

struct fp_error {
	enum fp_errcode code;
	size_t offset; /* in the expression text */
	char message[256];
};

enum fp_kind {
	FP_BOOLEAN,
	FP_INTEGER,
	FP_DECIMAL,
	FP_STRING,
	FP_DATE,
	FP_DATETIME,
	FP_TIME,
	FP_QUANTITY,
	FP_NODE,
	FP_TYPEINFO
};

struct fp_dec {
	__int128 m;    /* value = m / 10^scale */
	int16_t scale; /* digits after the point, >= 0 */
};

struct fp_datetime {
	int16_t year;
	int8_t month, day, hour, minute, second;
	int16_t ms;
	uint8_t prec; /* 1 year, 2 month, 3 day, 4 hour, 5 minute, 6 second, 7 millisecond */
	bool has_tz;  /* an offset was given (Z is +00:00) */
	int16_t tz;   /* offset in minutes east of UTC */
};

struct fp_item {
	uint8_t kind; /* enum fp_kind */
	union {
		bool b;
		int64_t i;
		struct fp_dec d;
		struct {
			const char *s;
			size_t len;
		} str;
		struct fp_datetime dt;
		struct {
			struct fp_dec v;
			const char *unit; /* UCUM code, or a calendar word (year … millisecond) */
		} q;
		struct {
			const cJSON *j;             /* the value or object (NULL: a primitive with only id/extension) */
			const cJSON *ext;           /* a primitive's "_name" object, or NULL */
			const struct model_type *t; /* NULL when not known */
		} node;
		struct {
			const char *ns, *name;
		} ti;
	} u;
};

struct fp_coll {
	struct fp_item *v;
	size_t n;
};

/* What an evaluation sees. resource is %resource and the starting focus
 * unless context is set (%context); root is %rootResource, the Bundle (or
 * resource) resolve() searches, defaulting to resource. */
struct fp_env {
	const cJSON *resource;
	const cJSON *root;
	const cJSON *context;
	const char *context_type; /* model type of context when not a resource, or NULL */
};

struct fp_expr;

/* Compiles src[0..len). NULL with err filled on a syntax or semantic error,
 * or on out of memory. */
struct fp_expr *fp_compile(const char *src, size_t len, struct fp_error *err);
void fp_free(struct fp_expr *e);
/* The compiled expression for the NUL-terminated src from the process-wide
 * cache, compiling it on first use. NULL with err filled as fp_compile, or
 * FP_ERR_LIMIT when the cache is full. */
const struct fp_expr *fp_cached(const char *src, struct fp_error *err);
const char *fp_source(const struct fp_expr *e);

/* Evaluates e; *out receives the result collection (in arena a). 0, or -1
 * with err filled. */
int fp_eval(const struct fp_expr *e, const struct fp_env *env, struct arena *a, struct fp_coll *out,
	    struct fp_error *err);

/* Evaluates e as an invariant: 1 true, 0 false, -1 error (err filled). An
 * empty result counts as true, a single non-Boolean item as true (FHIR's
 * constraint rule); more than one item is an error. */
int fp_eval_bool(const struct fp_expr *e, const struct fp_env *env, struct arena *a, struct fp_error *err);

/* The item's FHIRPath string form (toString(); dates without '@',
 * Quantities as  value 'unit'), into the arena; NULL for complex nodes. */
const char *fp_item_string(struct arena *a, const struct fp_item *it);
/* The item's type name as the suite names it: boolean, integer, decimal,
 * string, date, dateTime, time, Quantity, or the FHIR type of a node. */
const char *fp_item_type(const struct fp_item *it);

#endif
