/* fhirpath_int — what the FHIRPath parser (fhirpath.c), the value helpers
 * (fhirpath_value.c) and the function library (fhirpath_fn.c) share. Not for
 * use outside the fhirpath module. */
#ifndef CW_FHIRPATH_INT_H
#define CW_FHIRPATH_INT_H

#include <setjmp.h>

#include "fhir/fhirpath.h"

enum fp_nkind {
	N_LIT,    /* lit (one item) or the empty collection (nlit 0) */
	N_MEMBER, /* name, on left or the focus */
	N_FUNC,   /* fn(args) on left or the focus */
	N_BIN,    /* op(args[0], args[1]) */
	N_NEG,    /* -args[0] */
	N_THIS,
	N_INDEXV,  /* $index */
	N_TOTAL,   /* $total */
	N_VAR,     /* %name */
	N_INDEXER, /* left[args[0]] */
	N_IS,      /* args[0] is type */
	N_AS       /* args[0] as type */
};

enum fp_op {
	OP_MUL,
	OP_DIV,
	OP_IDIV,
	OP_MOD,
	OP_ADD,
	OP_SUB,
	OP_CONCAT,
	OP_UNION,
	OP_LT,
	OP_GT,
	OP_LE,
	OP_GE,
	OP_EQ,
	OP_EQUIV,
	OP_NE,
	OP_NEQUIV,
	OP_IN,
	OP_CONTAINS,
	OP_AND,
	OP_OR,
	OP_XOR,
	OP_IMPLIES
};

struct fp_typespec {
	const char *ns; /* "System", "FHIR" or NULL */
	const char *name;
	const struct model_type *mt; /* the FHIR type when known */
};

struct fp_node {
	uint8_t kind; /* enum fp_nkind */
	uint8_t op;   /* enum fp_op */
	uint16_t fn;  /* function index */
	uint16_t nargs;
	uint8_t nlit;
	size_t pos;
	struct fp_node *left;
	struct fp_node **args;
	const char *name;
	size_t namelen;
	struct fp_item lit;
	struct fp_typespec ts;
};

struct fp_expr {
	struct arena arena;
	struct fp_node *root;
	char *src;
};

/* Evaluation state. Errors unwind with longjmp to the fp_eval frame. */
struct fp_ctx {
	struct arena *a;
	const struct fp_env *env;
	const struct fp_expr *expr;
	struct fp_error *err;
	jmp_buf jb;
	const struct fp_item *this_item; /* $this in a lambda, or NULL */
	int64_t index;
	const struct fp_coll *total;
	struct fp_item resource, root, context;
	bool has_resource, has_root, has_context;
};

_Noreturn void fp_fail(struct fp_ctx *c, enum fp_errcode code, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void *fp_alloc(struct fp_ctx *c, size_t n);

/* Collections built in the arena. */
struct fp_buf {
	struct fp_item *v;
	size_t n, cap;
};
void fp_push(struct fp_ctx *c, struct fp_buf *b, const struct fp_item *it);
static inline struct fp_coll fp_done(struct fp_buf *b) { return (struct fp_coll){b->v, b->n}; }
struct fp_coll fp_one(struct fp_ctx *c, const struct fp_item *it);
struct fp_coll fp_bool(struct fp_ctx *c, bool b);
struct fp_coll fp_int(struct fp_ctx *c, int64_t i);
struct fp_coll fp_str(struct fp_ctx *c, const char *s, size_t len);
#define FP_EMPTY ((struct fp_coll){NULL, 0})

struct fp_coll fp_eval_node(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *focus);

/* Values (fhirpath_value.c). */
bool fp_dec_parse(const char *s, size_t len, struct fp_dec *d);
char *fp_dec_text(struct arena *a, struct fp_dec d);
int fp_dec_cmp(struct fp_dec a, struct fp_dec b);
bool fp_dec_add(struct fp_dec a, struct fp_dec b, struct fp_dec *r);
bool fp_dec_mul(struct fp_dec a, struct fp_dec b, struct fp_dec *r);
bool fp_dec_div(struct fp_dec a, struct fp_dec b, struct fp_dec *r);
struct fp_dec fp_dec_from_int(int64_t i);
struct fp_dec fp_dec_from_double(double v);
double fp_dec_to_double(struct fp_dec d);
struct fp_dec fp_dec_round(struct fp_dec d, int scale);
struct fp_dec fp_dec_trim(struct fp_dec d);
bool fp_dt_parse(const char *s, size_t len, struct fp_datetime *dt, enum fp_kind *kind);
char *fp_dt_text(struct arena *a, const struct fp_datetime *dt, enum fp_kind kind);
/* -2 incomparable (precision), else -1/0/1. */
int fp_dt_cmp(const struct fp_datetime *a, const struct fp_datetime *b, bool time_only);
bool fp_dt_add(struct fp_datetime *dt, enum fp_kind kind, struct fp_dec v, const char *unit, int sign);
const char *fp_unit_calendar(const char *word, size_t len); /* "years" → "year", else NULL */

/* Node helpers (fhirpath.c). */
bool fp_is_primitive(const struct fp_item *it);
/* A node's or value's FHIRPath system value (primitive nodes converted; a
 * FHIR Quantity becomes a Quantity). False when it has none. */
bool fp_value(struct fp_ctx *c, const struct fp_item *it, struct fp_item *out);
enum { FP_CHILD_UNTYPED, FP_CHILD_KNOWN, FP_CHILD_UNKNOWN, FP_CHILD_SUFFIXED };
/* Appends it's children called name; says whether the model knows the name. */
int fp_children(struct fp_ctx *c, const struct fp_item *it, const char *name, size_t len, struct fp_buf *out);
void fp_all_children(struct fp_ctx *c, const struct fp_item *it, struct fp_buf *out);
bool fp_is_type(const struct fp_item *it, const struct fp_typespec *ts);
bool fp_item_eq(struct fp_ctx *c, const struct fp_item *a, const struct fp_item *b, int *res); /* res -1 unknown */
bool fp_item_equiv(struct fp_ctx *c, const struct fp_item *a, const struct fp_item *b);
struct fp_item fp_node_item(const cJSON *j, const cJSON *ext, const struct model_type *t);
bool fp_single_value(struct fp_ctx *c, const struct fp_coll *x, size_t pos, struct fp_item *v);
bool fp_coll_has(struct fp_ctx *c, const struct fp_coll *x, const struct fp_item *it);
const struct model_type *fp_resource_type(const cJSON *j);
bool fp_to_bool_single(struct fp_ctx *c, const struct fp_coll *x, size_t pos, int *res); /* res -1 empty */

bool fp_units_comparable(const char *a, const char *b);

/* Functions (fhirpath_fn.c). */
struct fp_fn {
	const char *name;
	uint8_t min, max;
	uint8_t lambda;  /* bit i: argument i is evaluated per item */
	uint8_t typearg; /* the argument is a type specifier */
	struct fp_coll (*call)(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *in,
			       const struct fp_coll *outer);
};
int fp_fn_find(const char *name, size_t len);
const struct fp_fn *fp_fn_get(int i);

#endif
