/* fhirpath_fn — the FHIRPath function library (see fhirpath.h): existence,
 * filtering, subsetting, combining, conversion, strings, math, tree
 * navigation, utility, types, aggregates and the FHIR additions
 * (extension, hasValue, getValue, resolve, memberOf, htmlChecks). */
#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fhir/fhirpath_int.h"

#define FN(name)                                                                                             \
	static struct fp_coll fn_##name(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *in, \
					const struct fp_coll *outer)
#define UNUSED_ARGS (void)c, (void)n, (void)outer, (void)in

/* An ordinary argument, evaluated against the focus the invocation started from. */
static struct fp_coll arg(struct fp_ctx *c, const struct fp_node *n, size_t i, const struct fp_coll *outer)
{
	const struct fp_item *save = c->this_item;
	struct fp_coll r = fp_eval_node(c, n->args[i], outer);
	c->this_item = save;
	return r;
}

/* An expression evaluated with $this = it and $index = idx. */
static struct fp_coll lambda_node(struct fp_ctx *c, const struct fp_node *x, const struct fp_item *it, size_t idx)
{
	const struct fp_item *save = c->this_item;
	int64_t sidx = c->index;
	c->this_item = it;
	c->index = (int64_t)idx;
	struct fp_coll one = {(struct fp_item *)it, 1};
	struct fp_coll r = fp_eval_node(c, x, &one);
	c->this_item = save;
	c->index = sidx;
	return r;
}

/* A lambda argument. */
static struct fp_coll lambda(struct fp_ctx *c, const struct fp_node *n, size_t i, const struct fp_item *it, size_t idx)
{
	return lambda_node(c, n->args[i], it, idx);
}

static bool arg_value(struct fp_ctx *c, const struct fp_node *n, size_t i, const struct fp_coll *outer,
		      struct fp_item *v)
{
	struct fp_coll x = arg(c, n, i, outer);
	return fp_single_value(c, &x, n->pos, v);
}

static bool arg_int(struct fp_ctx *c, const struct fp_node *n, size_t i, const struct fp_coll *outer, int64_t *r)
{
	struct fp_item v;
	if (!arg_value(c, n, i, outer, &v))
		return false;
	if (v.kind != FP_INTEGER)
		fp_fail(c, FP_ERR_EVAL, n->pos, "%s(): argument %zu is not an Integer", n->name, i + 1);
	*r = v.u.i;
	return true;
}

static bool arg_str(struct fp_ctx *c, const struct fp_node *n, size_t i, const struct fp_coll *outer, const char **s,
		    size_t *len)
{
	struct fp_item v;
	if (!arg_value(c, n, i, outer, &v))
		return false;
	if (v.kind != FP_STRING)
		fp_fail(c, FP_ERR_EVAL, n->pos, "%s(): argument %zu is not a String", n->name, i + 1);
	*s = v.u.str.s;
	*len = v.u.str.len;
	return true;
}

/* The single input value of a function on one item (empty input → false). */
static bool input_value(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *in, struct fp_item *v)
{
	if (in->n == 0)
		return false;
	if (in->n > 1)
		fp_fail(c, FP_ERR_EVAL, n->pos, "%s() on a collection of %zu items", n->name, in->n);
	if (!fp_value(c, &in->v[0], v)) {
		if (in->v[0].kind == FP_NODE && in->v[0].u.node.j)
			fp_fail(c, FP_ERR_EVAL, n->pos, "%s() on a %s, not a primitive", n->name,
				fp_item_type(&in->v[0]));
		return false;
	}
	return true;
}

static bool input_str(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *in, const char **s, size_t *len)
{
	struct fp_item v;
	if (!input_value(c, n, in, &v))
		return false;
	if (v.kind != FP_STRING)
		fp_fail(c, FP_ERR_EVAL, n->pos, "%s() on a %s, not a String", n->name, fp_item_type(&v));
	*s = v.u.str.s;
	*len = v.u.str.len;
	return true;
}

/* --- existence --------------------------------------------------------------- */

FN(empty)
{
	UNUSED_ARGS;
	return fp_bool(c, in->n == 0);
}

FN(exists)
{
	(void)outer;
	if (n->nargs == 0)
		return fp_bool(c, in->n > 0);
	for (size_t i = 0; i < in->n; i++) {
		struct fp_coll r = lambda(c, n, 0, &in->v[i], i);
		int b;
		fp_to_bool_single(c, &r, n->pos, &b);
		if (b == 1)
			return fp_bool(c, true);
	}
	return fp_bool(c, false);
}

FN(all)
{
	(void)outer;
	for (size_t i = 0; i < in->n; i++) {
		struct fp_coll r = lambda(c, n, 0, &in->v[i], i);
		int b;
		fp_to_bool_single(c, &r, n->pos, &b);
		if (b != 1)
			return fp_bool(c, false);
	}
	return fp_bool(c, true);
}

static struct fp_coll bools(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *in, bool want, bool all)
{
	for (size_t i = 0; i < in->n; i++) {
		struct fp_item v;
		if (!fp_value(c, &in->v[i], &v) || v.kind != FP_BOOLEAN)
			fp_fail(c, FP_ERR_EVAL, n->pos, "%s() on a non-Boolean", n->name);
		if (all && v.u.b != want)
			return fp_bool(c, false);
		if (!all && v.u.b == want)
			return fp_bool(c, true);
	}
	return fp_bool(c, all);
}

FN(allTrue)
{
	(void)outer;
	return bools(c, n, in, true, true);
}
FN(anyTrue)
{
	(void)outer;
	return bools(c, n, in, true, false);
}
FN(allFalse)
{
	(void)outer;
	return bools(c, n, in, false, true);
}
FN(anyFalse)
{
	(void)outer;
	return bools(c, n, in, false, false);
}

static bool subset(struct fp_ctx *c, const struct fp_coll *a, const struct fp_coll *b)
{
	for (size_t i = 0; i < a->n; i++)
		if (!fp_coll_has(c, b, &a->v[i]))
			return false;
	return true;
}

FN(subsetOf)
{
	struct fp_coll o = arg(c, n, 0, outer);
	return fp_bool(c, subset(c, in, &o));
}

FN(supersetOf)
{
	struct fp_coll o = arg(c, n, 0, outer);
	return fp_bool(c, subset(c, &o, in));
}

FN(count)
{
	UNUSED_ARGS;
	return fp_int(c, (int64_t)in->n);
}

static struct fp_coll distinct(struct fp_ctx *c, const struct fp_coll *in)
{
	struct fp_buf b = {0};
	for (size_t i = 0; i < in->n; i++) {
		struct fp_coll cur = fp_done(&b);
		if (!fp_coll_has(c, &cur, &in->v[i]))
			fp_push(c, &b, &in->v[i]);
	}
	return fp_done(&b);
}

FN(distinct)
{
	UNUSED_ARGS;
	return distinct(c, in);
}

FN(isDistinct)
{
	UNUSED_ARGS;
	return fp_bool(c, distinct(c, in).n == in->n);
}

/* --- filtering ------------------------------------------------------------------ */

FN(where)
{
	(void)outer;
	struct fp_buf b = {0};
	for (size_t i = 0; i < in->n; i++) {
		struct fp_coll r = lambda(c, n, 0, &in->v[i], i);
		int t;
		fp_to_bool_single(c, &r, n->pos, &t);
		if (t == 1)
			fp_push(c, &b, &in->v[i]);
	}
	return fp_done(&b);
}

FN(select)
{
	(void)outer;
	struct fp_buf b = {0};
	for (size_t i = 0; i < in->n; i++) {
		struct fp_coll r = lambda(c, n, 0, &in->v[i], i);
		for (size_t k = 0; k < r.n; k++)
			fp_push(c, &b, &r.v[k]);
	}
	return fp_done(&b);
}

FN(repeat)
{
	(void)outer;
	struct fp_buf res = {0};
	struct fp_coll cur = *in;
	while (cur.n) {
		struct fp_buf next = {0};
		for (size_t i = 0; i < cur.n; i++) {
			struct fp_coll r = lambda(c, n, 0, &cur.v[i], i);
			for (size_t k = 0; k < r.n; k++) {
				struct fp_coll done = fp_done(&res);
				if (!fp_coll_has(c, &done, &r.v[k])) {
					fp_push(c, &res, &r.v[k]);
					fp_push(c, &next, &r.v[k]);
				}
			}
		}
		cur = fp_done(&next);
	}
	return fp_done(&res);
}

FN(ofType)
{
	(void)outer;
	struct fp_buf b = {0};
	for (size_t i = 0; i < in->n; i++)
		if (fp_is_type(&in->v[i], &n->args[0]->ts))
			fp_push(c, &b, &in->v[i]);
	return fp_done(&b);
}

FN(is)
{
	(void)outer;
	if (in->n == 0)
		return FP_EMPTY;
	if (in->n > 1)
		fp_fail(c, FP_ERR_EVAL, n->pos, "is() on more than one item");
	return fp_bool(c, fp_is_type(&in->v[0], &n->args[0]->ts));
}

FN(as)
{
	(void)outer;
	if (in->n == 0)
		return FP_EMPTY;
	if (in->n > 1)
		fp_fail(c, FP_ERR_EVAL, n->pos, "as() on more than one item");
	return fp_is_type(&in->v[0], &n->args[0]->ts) ? *in : FP_EMPTY;
}

/* --- subsetting ------------------------------------------------------------------ */

FN(single)
{
	UNUSED_ARGS;
	if (in->n > 1)
		fp_fail(c, FP_ERR_EVAL, n->pos, "single() on %zu items", in->n);
	return *in;
}

FN(first)
{
	UNUSED_ARGS;
	return in->n ? (struct fp_coll){in->v, 1} : FP_EMPTY;
}

FN(last)
{
	UNUSED_ARGS;
	return in->n ? (struct fp_coll){in->v + in->n - 1, 1} : FP_EMPTY;
}

FN(tail)
{
	UNUSED_ARGS;
	return in->n > 1 ? (struct fp_coll){in->v + 1, in->n - 1} : FP_EMPTY;
}

FN(skip)
{
	int64_t k;
	if (!arg_int(c, n, 0, outer, &k))
		return FP_EMPTY;
	if (k <= 0)
		return *in;
	if ((uint64_t)k >= in->n)
		return FP_EMPTY;
	return (struct fp_coll){in->v + k, in->n - (size_t)k};
}

FN(take)
{
	int64_t k;
	if (!arg_int(c, n, 0, outer, &k) || k <= 0)
		return FP_EMPTY;
	if ((uint64_t)k >= in->n)
		return *in;
	return (struct fp_coll){in->v, (size_t)k};
}

FN(intersect)
{
	struct fp_coll o = arg(c, n, 0, outer);
	struct fp_buf b = {0};
	for (size_t i = 0; i < in->n; i++) {
		struct fp_coll cur = fp_done(&b);
		if (fp_coll_has(c, &o, &in->v[i]) && !fp_coll_has(c, &cur, &in->v[i]))
			fp_push(c, &b, &in->v[i]);
	}
	return fp_done(&b);
}

FN(exclude)
{
	struct fp_coll o = arg(c, n, 0, outer);
	struct fp_buf b = {0};
	for (size_t i = 0; i < in->n; i++)
		if (!fp_coll_has(c, &o, &in->v[i]))
			fp_push(c, &b, &in->v[i]);
	return fp_done(&b);
}

/* --- combining ---------------------------------------------------------------------- */

FN(union)
{
	struct fp_coll o = arg(c, n, 0, outer);
	struct fp_buf b = {0};
	for (int side = 0; side < 2; side++) {
		const struct fp_coll *x = side ? &o : in;
		for (size_t i = 0; i < x->n; i++) {
			struct fp_coll cur = fp_done(&b);
			if (!fp_coll_has(c, &cur, &x->v[i]))
				fp_push(c, &b, &x->v[i]);
		}
	}
	return fp_done(&b);
}

FN(combine)
{
	struct fp_coll o = arg(c, n, 0, outer);
	struct fp_buf b = {0};
	for (size_t i = 0; i < in->n; i++)
		fp_push(c, &b, &in->v[i]);
	for (size_t i = 0; i < o.n; i++)
		fp_push(c, &b, &o.v[i]);
	return fp_done(&b);
}

/* --- conversion ------------------------------------------------------------------------ */

FN(iif)
{
	if (in->n > 1)
		fp_fail(c, FP_ERR_EVAL, n->pos, "iif() on more than one item");
	/* on an input ($this is the input item), else on the invocation's focus */
	bool on = n->left && in->n;
	size_t idx = (size_t)c->index;
	struct fp_coll cond = on ? lambda(c, n, 0, &in->v[0], idx) : arg(c, n, 0, outer);
	int b;
	struct fp_item cv;
	if (cond.n == 1 && fp_value(c, &cond.v[0], &cv) && cv.kind != FP_BOOLEAN)
		fp_fail(c, FP_ERR_EVAL, n->pos, "iif() criterion is not a Boolean");
	fp_to_bool_single(c, &cond, n->pos, &b);
	size_t which = b == 1 ? 1 : 2;
	if (which >= n->nargs)
		return FP_EMPTY;
	return on ? lambda(c, n, which, &in->v[0], idx) : arg(c, n, which, outer);
}

static bool str_ieq(const char *s, size_t l, const char *w) { return strlen(w) == l && !strncasecmp(s, w, l); }

static bool conv_bool(const struct fp_item *v, bool *r)
{
	switch (v->kind) {
	case FP_BOOLEAN:
		*r = v->u.b;
		return true;
	case FP_INTEGER:
		if (v->u.i == 0 || v->u.i == 1) {
			*r = v->u.i == 1;
			return true;
		}
		return false;
	case FP_DECIMAL: {
		struct fp_dec d = fp_dec_trim(v->u.d);
		if (d.scale == 0 && (d.m == 0 || d.m == 1)) {
			*r = d.m == 1;
			return true;
		}
		return false;
	}
	case FP_STRING: {
		const char *s = v->u.str.s;
		size_t l = v->u.str.len;
		if (str_ieq(s, l, "true") || str_ieq(s, l, "t") || str_ieq(s, l, "yes") || str_ieq(s, l, "y") ||
		    str_ieq(s, l, "1") || str_ieq(s, l, "1.0")) {
			*r = true;
			return true;
		}
		if (str_ieq(s, l, "false") || str_ieq(s, l, "f") || str_ieq(s, l, "no") || str_ieq(s, l, "n") ||
		    str_ieq(s, l, "0") || str_ieq(s, l, "0.0")) {
			*r = false;
			return true;
		}
		return false;
	}
	default:
		return false;
	}
}

static bool conv_int(const struct fp_item *v, int64_t *r)
{
	switch (v->kind) {
	case FP_INTEGER:
		*r = v->u.i;
		return true;
	case FP_BOOLEAN:
		*r = v->u.b;
		return true;
	case FP_STRING: {
		const char *s = v->u.str.s;
		size_t l = v->u.str.len, i = 0;
		if (l && (s[0] == '+' || s[0] == '-'))
			i++;
		if (i == l || l - i > 18)
			return false;
		for (size_t k = i; k < l; k++)
			if (!isdigit((unsigned char)s[k]))
				return false;
		char buf[24];
		memcpy(buf, s, l);
		buf[l] = '\0';
		*r = strtoll(buf, NULL, 10);
		return true;
	}
	default:
		return false;
	}
}

static bool conv_dec(const struct fp_item *v, struct fp_dec *r)
{
	switch (v->kind) {
	case FP_INTEGER:
		*r = fp_dec_from_int(v->u.i);
		return true;
	case FP_DECIMAL:
		*r = v->u.d;
		return true;
	case FP_BOOLEAN:
		*r = fp_dec_from_int(v->u.b);
		return true;
	case FP_STRING: {
		const char *s = v->u.str.s;
		size_t l = v->u.str.len;
		if (!l || memchr(s, 'e', l) || memchr(s, 'E', l) || s[l - 1] == '.' || s[0] == '.')
			return false;
		return fp_dec_parse(s, l, r);
	}
	default:
		return false;
	}
}

static bool conv_quantity(struct fp_ctx *c, const struct fp_item *v, struct fp_item *r)
{
	r->kind = FP_QUANTITY;
	switch (v->kind) {
	case FP_QUANTITY:
		*r = *v;
		return true;
	case FP_INTEGER:
	case FP_DECIMAL:
	case FP_BOOLEAN:
		if (!conv_dec(v, &r->u.q.v))
			return false;
		r->u.q.unit = "1";
		return true;
	case FP_STRING: {
		const char *s = v->u.str.s;
		size_t l = v->u.str.len, i = 0;
		if (i < l && (s[i] == '+' || s[i] == '-'))
			i++;
		while (i < l && (isdigit((unsigned char)s[i]) || s[i] == '.'))
			i++;
		struct fp_item num = {.kind = FP_STRING, .u.str = {s, i}};
		if (!conv_dec(&num, &r->u.q.v))
			return false;
		while (i < l && s[i] == ' ')
			i++;
		if (i == l) {
			r->u.q.unit = "1";
			return true;
		}
		if (s[i] == '\'') {
			size_t st = ++i;
			while (i < l && s[i] != '\'')
				i++;
			if (i >= l || i + 1 != l)
				return false;
			r->u.q.unit = arena_strndup(c->a, s + st, i - st);
			return r->u.q.unit != NULL;
		}
		const char *cal = fp_unit_calendar(s + i, l - i);
		if (!cal)
			return false;
		r->u.q.unit = cal;
		return true;
	}
	default:
		return false;
	}
}

static bool conv_dt(const struct fp_item *v, enum fp_kind want, struct fp_item *r)
{
	if (v->kind == want) {
		*r = *v;
		return true;
	}
	if (want == FP_DATETIME && v->kind == FP_DATE) {
		*r = *v;
		r->kind = FP_DATETIME;
		return true;
	}
	if (want == FP_DATE && v->kind == FP_DATETIME) {
		*r = *v;
		r->kind = FP_DATE;
		if (r->u.dt.prec > 3)
			r->u.dt.prec = 3;
		r->u.dt.has_tz = false;
		return true;
	}
	if (v->kind != FP_STRING)
		return false;
	char buf[64];
	const char *s = v->u.str.s;
	size_t l = v->u.str.len;
	if (l >= sizeof buf - 2)
		return false;
	if (want == FP_TIME) {
		buf[0] = 'T';
		memcpy(buf + 1, s, l);
		s = buf;
		l++;
	}
	enum fp_kind k;
	if (!fp_dt_parse(s, l, &r->u.dt, &k))
		return false;
	if (want == FP_DATE && k != FP_DATE)
		return false;
	if (want == FP_DATETIME && k == FP_TIME)
		return false;
	r->kind = (uint8_t)want;
	return true;
}

static bool conv_string(struct fp_ctx *c, const struct fp_item *v, struct fp_item *r)
{
	const char *s = fp_item_string(c->a, v);
	if (!s)
		return false;
	r->kind = FP_STRING;
	r->u.str.s = s;
	r->u.str.len = strlen(s);
	return true;
}

enum conv { C_BOOL, C_INT, C_DEC, C_QTY, C_STR, C_DATE, C_DATETIME, C_TIME };

static bool convert(struct fp_ctx *c, enum conv k, const struct fp_item *v, struct fp_item *r)
{
	switch (k) {
	case C_BOOL:
		r->kind = FP_BOOLEAN;
		return conv_bool(v, &r->u.b);
	case C_INT:
		r->kind = FP_INTEGER;
		return conv_int(v, &r->u.i);
	case C_DEC:
		r->kind = FP_DECIMAL;
		return conv_dec(v, &r->u.d);
	case C_QTY:
		return conv_quantity(c, v, r);
	case C_STR:
		return conv_string(c, v, r);
	case C_DATE:
		return conv_dt(v, FP_DATE, r);
	case C_DATETIME:
		return conv_dt(v, FP_DATETIME, r);
	default:
		return conv_dt(v, FP_TIME, r);
	}
}

static struct fp_coll to_x(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *in, enum conv k, bool test)
{
	struct fp_item v, r;
	if (!input_value(c, n, in, &v))
		return FP_EMPTY;
	bool ok = convert(c, k, &v, &r);
	if (test)
		return fp_bool(c, ok);
	return ok ? fp_one(c, &r) : FP_EMPTY;
}

#define CONV(name, k, test)                     \
	FN(name)                                \
	{                                       \
		(void)outer;                    \
		return to_x(c, n, in, k, test); \
	}
CONV(toBoolean, C_BOOL, false)
CONV(convertsToBoolean, C_BOOL, true)
CONV(toInteger, C_INT, false)
CONV(convertsToInteger, C_INT, true)
CONV(toDecimal, C_DEC, false)
CONV(convertsToDecimal, C_DEC, true)
CONV(convertsToQuantity, C_QTY, true)
CONV(toString, C_STR, false)
CONV(convertsToString, C_STR, true)
CONV(toDate, C_DATE, false)
CONV(convertsToDate, C_DATE, true)
CONV(toDateTime, C_DATETIME, false)
CONV(convertsToDateTime, C_DATETIME, true)
CONV(toTime, C_TIME, false)
CONV(convertsToTime, C_TIME, true)

FN(toQuantity)
{
	struct fp_coll r = to_x(c, n, in, C_QTY, false);
	if (r.n && n->nargs == 1) {
		const char *u;
		size_t ul;
		if (!arg_str(c, n, 0, outer, &u, &ul))
			return FP_EMPTY;
		const char *have = r.v[0].u.q.unit;
		if (strlen(have) == ul && !memcmp(have, u, ul))
			return r;
		return FP_EMPTY;
	}
	return r;
}

/* --- strings ------------------------------------------------------------------------- */

FN(indexOf)
{
	const char *s, *t;
	size_t l, tl;
	if (!input_str(c, n, in, &s, &l) || !arg_str(c, n, 0, outer, &t, &tl))
		return FP_EMPTY;
	if (tl == 0)
		return fp_int(c, 0);
	for (size_t i = 0; i + tl <= l; i++)
		if (!memcmp(s + i, t, tl))
			return fp_int(c, (int64_t)i);
	return fp_int(c, -1);
}

FN(substring)
{
	const char *s;
	size_t l;
	int64_t st, len = -1;
	if (!input_str(c, n, in, &s, &l) || !arg_int(c, n, 0, outer, &st))
		return FP_EMPTY;
	if (n->nargs > 1 && !arg_int(c, n, 1, outer, &len))
		len = -1;
	if (st < 0 || (uint64_t)st >= l)
		return FP_EMPTY;
	size_t rem = l - (size_t)st;
	size_t take = len < 0 || (uint64_t)len > rem ? rem : (size_t)len;
	if (n->nargs > 1 && len < 0)
		take = 0;
	return fp_str(c, s + st, take);
}

FN(startsWith)
{
	const char *s, *t;
	size_t l, tl;
	if (!input_str(c, n, in, &s, &l) || !arg_str(c, n, 0, outer, &t, &tl))
		return FP_EMPTY;
	return fp_bool(c, tl <= l && !memcmp(s, t, tl));
}

FN(endsWith)
{
	const char *s, *t;
	size_t l, tl;
	if (!input_str(c, n, in, &s, &l) || !arg_str(c, n, 0, outer, &t, &tl))
		return FP_EMPTY;
	return fp_bool(c, tl <= l && !memcmp(s + l - tl, t, tl));
}

FN(contains)
{
	const char *s, *t;
	size_t l, tl;
	if (!input_str(c, n, in, &s, &l) || !arg_str(c, n, 0, outer, &t, &tl))
		return FP_EMPTY;
	if (!tl)
		return fp_bool(c, true);
	for (size_t i = 0; i + tl <= l; i++)
		if (!memcmp(s + i, t, tl))
			return fp_bool(c, true);
	return fp_bool(c, false);
}

static struct fp_coll casefn(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *in, bool up)
{
	const char *s;
	size_t l;
	if (!input_str(c, n, in, &s, &l))
		return FP_EMPTY;
	char *o = fp_alloc(c, l + 1);
	for (size_t i = 0; i < l; i++)
		o[i] = (char)(up ? toupper((unsigned char)s[i]) : tolower((unsigned char)s[i]));
	return fp_str(c, o, l);
}

FN(upper)
{
	(void)outer;
	return casefn(c, n, in, true);
}
FN(lower)
{
	(void)outer;
	return casefn(c, n, in, false);
}

FN(replace)
{
	const char *s, *p, *r;
	size_t l, pl, rl;
	if (!input_str(c, n, in, &s, &l) || !arg_str(c, n, 0, outer, &p, &pl) || !arg_str(c, n, 1, outer, &r, &rl))
		return FP_EMPTY;
	struct fp_buf dummy = {0};
	(void)dummy;
	size_t cap = l + 1 + (pl ? (l / pl + 1) * rl : (l + 1) * rl);
	char *o = fp_alloc(c, cap);
	size_t k = 0;
	if (!pl) {
		for (size_t i = 0; i <= l; i++) {
			memcpy(o + k, r, rl);
			k += rl;
			if (i < l)
				o[k++] = s[i];
		}
		return fp_str(c, o, k);
	}
	for (size_t i = 0; i < l;) {
		if (i + pl <= l && !memcmp(s + i, p, pl)) {
			memcpy(o + k, r, rl);
			k += rl;
			i += pl;
		} else {
			o[k++] = s[i++];
		}
	}
	return fp_str(c, o, k);
}

/* Translates the FHIRPath (PCRE-like) classes POSIX lacks. */
static char *posix_re(struct fp_ctx *c, const char *p, size_t pl)
{
	/* glibc's regcomp takes exponential time on stacked quantifiers ("a++++"):
	 * such patterns, and very long ones, are refused */
	if (pl > FP_MAX_REGEX)
		fp_fail(c, FP_ERR_LIMIT, 0, "regular expression longer than %d bytes", FP_MAX_REGEX);
	for (size_t i = 1; i < pl; i++)
		if (strchr("*+?{", p[i]) && strchr("*+?}", p[i - 1]) && (i < 2 || p[i - 2] != '\\'))
			fp_fail(c, FP_ERR_EVAL, 0, "regular expression with stacked quantifiers");
	char *o = fp_alloc(c, pl * 12 + 1);
	size_t k = 0;
	for (size_t i = 0; i < pl; i++) {
		if (p[i] == '\\' && i + 1 < pl) {
			const char *rep = NULL;
			switch (p[i + 1]) {
			case 'd':
				rep = "[0-9]";
				break;
			case 'D':
				rep = "[^0-9]";
				break;
			case 'w':
				rep = "[A-Za-z0-9_]";
				break;
			case 'W':
				rep = "[^A-Za-z0-9_]";
				break;
			case 's':
				rep = "[[:space:]]";
				break;
			case 'S':
				rep = "[^[:space:]]";
				break;
			default:
				break;
			}
			if (rep) {
				size_t rl = strlen(rep);
				memcpy(o + k, rep, rl);
				k += rl;
				i++;
				continue;
			}
			o[k++] = p[i++];
			o[k++] = p[i];
			continue;
		}
		o[k++] = p[i];
	}
	o[k] = '\0';
	return o;
}

FN(matches)
{
	const char *s, *p;
	size_t l, pl;
	if (!input_str(c, n, in, &s, &l) || !arg_str(c, n, 0, outer, &p, &pl))
		return FP_EMPTY;
	regex_t re;
	char *pat = posix_re(c, p, pl);
	if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0)
		fp_fail(c, FP_ERR_EVAL, n->pos, "bad regular expression");
	char *str = arena_strndup(c->a, s, l);
	if (!str) {
		regfree(&re);
		fp_fail(c, FP_ERR_LIMIT, n->pos, "out of memory");
	}
	bool m = regexec(&re, str, 0, NULL, 0) == 0;
	regfree(&re);
	return fp_bool(c, m);
}

FN(replaceMatches)
{
	const char *s, *p, *r;
	size_t l, pl, rl;
	if (!input_str(c, n, in, &s, &l) || !arg_str(c, n, 0, outer, &p, &pl) || !arg_str(c, n, 1, outer, &r, &rl))
		return FP_EMPTY;
	if (!pl)
		return fp_str(c, s, l);
	regex_t re;
	char *pat = posix_re(c, p, pl);
	if (regcomp(&re, pat, REG_EXTENDED) != 0)
		fp_fail(c, FP_ERR_EVAL, n->pos, "bad regular expression");
	char *str = arena_strndup(c->a, s, l);
	size_t cap = 64 + l * 2, k = 0;
	char *o = malloc(cap);
	const char *cur = str;
	regmatch_t m[10];
	bool first = true;
	while (o && *cur && regexec(&re, cur, 10, m, first ? 0 : REG_NOTBOL) == 0) {
		first = false;
		size_t need = k + (size_t)m[0].rm_so + rl * 4 + l + 16;
		if (need > cap) {
			cap = need * 2;
			char *no = realloc(o, cap);
			if (!no) {
				free(o);
				o = NULL;
				break;
			}
			o = no;
		}
		memcpy(o + k, cur, (size_t)m[0].rm_so);
		k += (size_t)m[0].rm_so;
		for (size_t i = 0; i < rl; i++) {
			if (r[i] == '$' && i + 1 < rl && isdigit((unsigned char)r[i + 1])) {
				int g = r[i + 1] - '0';
				if (m[g].rm_so >= 0) {
					size_t gl = (size_t)(m[g].rm_eo - m[g].rm_so);
					if (k + gl + rl >= cap) {
						cap = (k + gl + rl) * 2;
						char *no = realloc(o, cap);
						if (!no)
							break;
						o = no;
					}
					memcpy(o + k, cur + m[g].rm_so, gl);
					k += gl;
				}
				i++;
			} else {
				o[k++] = r[i];
			}
		}
		if (m[0].rm_eo == 0) {
			o[k++] = *cur;
			cur++;
		} else {
			cur += m[0].rm_eo;
		}
	}
	regfree(&re);
	if (!o)
		fp_fail(c, FP_ERR_NOMEM, n->pos, "out of memory");
	size_t rest = strlen(cur);
	char *res = fp_alloc(c, k + rest + 1);
	memcpy(res, o, k);
	memcpy(res + k, cur, rest);
	free(o);
	return fp_str(c, res, k + rest);
}

static size_t utf8_len(const char *s, size_t l)
{
	size_t n = 0;
	for (size_t i = 0; i < l; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

FN(length)
{
	(void)outer;
	const char *s;
	size_t l;
	if (!input_str(c, n, in, &s, &l))
		return FP_EMPTY;
	return fp_int(c, (int64_t)utf8_len(s, l));
}

FN(toChars)
{
	(void)outer;
	const char *s;
	size_t l;
	if (!input_str(c, n, in, &s, &l))
		return FP_EMPTY;
	struct fp_buf b = {0};
	for (size_t i = 0; i < l;) {
		size_t k = i + 1;
		while (k < l && ((unsigned char)s[k] & 0xC0) == 0x80)
			k++;
		struct fp_item it = {.kind = FP_STRING, .u.str = {s + i, k - i}};
		fp_push(c, &b, &it);
		i = k;
	}
	return fp_done(&b);
}

FN(trim)
{
	(void)outer;
	const char *s;
	size_t l;
	if (!input_str(c, n, in, &s, &l))
		return FP_EMPTY;
	while (l && isspace((unsigned char)*s)) {
		s++;
		l--;
	}
	while (l && isspace((unsigned char)s[l - 1]))
		l--;
	return fp_str(c, s, l);
}

FN(split)
{
	const char *s, *sep;
	size_t l, sl;
	if (!input_str(c, n, in, &s, &l) || !arg_str(c, n, 0, outer, &sep, &sl))
		return FP_EMPTY;
	struct fp_buf b = {0};
	size_t st = 0;
	for (size_t i = 0; sl && i + sl <= l;) {
		if (!memcmp(s + i, sep, sl)) {
			struct fp_item it = {.kind = FP_STRING, .u.str = {s + st, i - st}};
			fp_push(c, &b, &it);
			i += sl;
			st = i;
		} else {
			i++;
		}
	}
	struct fp_item it = {.kind = FP_STRING, .u.str = {s + st, l - st}};
	fp_push(c, &b, &it);
	return fp_done(&b);
}

FN(join)
{
	const char *sep = "";
	size_t sl = 0;
	if (n->nargs && !arg_str(c, n, 0, outer, &sep, &sl))
		sep = "", sl = 0;
	size_t total = 0;
	for (size_t i = 0; i < in->n; i++) {
		struct fp_item v;
		if (!fp_value(c, &in->v[i], &v) || v.kind != FP_STRING)
			fp_fail(c, FP_ERR_EVAL, n->pos, "join() on a non-String");
		total += v.u.str.len + sl;
	}
	char *o = fp_alloc(c, total + 1);
	size_t k = 0;
	for (size_t i = 0; i < in->n; i++) {
		struct fp_item v;
		fp_value(c, &in->v[i], &v);
		if (i) {
			memcpy(o + k, sep, sl);
			k += sl;
		}
		memcpy(o + k, v.u.str.s, v.u.str.len);
		k += v.u.str.len;
	}
	return fp_str(c, o, k);
}

/* --- math ---------------------------------------------------------------------------- */

static bool input_num(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *in, struct fp_item *v)
{
	if (!input_value(c, n, in, v))
		return false;
	if (v->kind != FP_INTEGER && v->kind != FP_DECIMAL && v->kind != FP_QUANTITY)
		fp_fail(c, FP_ERR_EVAL, n->pos, "%s() on a %s", n->name, fp_item_type(v));
	return true;
}

static struct fp_coll dec_out(struct fp_ctx *c, struct fp_dec d)
{
	struct fp_item it = {.kind = FP_DECIMAL, .u.d = d};
	return fp_one(c, &it);
}

FN(abs)
{
	(void)outer;
	struct fp_item v;
	if (!input_num(c, n, in, &v))
		return FP_EMPTY;
	if (v.kind == FP_INTEGER)
		v.u.i = v.u.i < 0 ? -v.u.i : v.u.i;
	else if (v.kind == FP_DECIMAL)
		v.u.d.m = v.u.d.m < 0 ? -v.u.d.m : v.u.d.m;
	else
		v.u.q.v.m = v.u.q.v.m < 0 ? -v.u.q.v.m : v.u.q.v.m;
	return fp_one(c, &v);
}

static struct fp_coll rounding(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *in, int mode)
{
	struct fp_item v;
	if (!input_num(c, n, in, &v))
		return FP_EMPTY;
	if (v.kind == FP_INTEGER)
		return fp_int(c, v.u.i);
	if (v.kind != FP_DECIMAL)
		fp_fail(c, FP_ERR_EVAL, n->pos, "%s() on a Quantity", n->name);
	struct fp_dec d = v.u.d;
	__int128 m = d.m, div = 1;
	for (int i = 0; i < d.scale; i++)
		div *= 10;
	__int128 q = m / div, r = m % div;
	if (mode == 0 && r > 0) /* ceiling */
		q++;
	if (mode == 1 && r < 0) /* floor */
		q--;
	return fp_int(c, (int64_t)q);
}

FN(ceiling)
{
	(void)outer;
	return rounding(c, n, in, 0);
}
FN(floor)
{
	(void)outer;
	return rounding(c, n, in, 1);
}
FN(truncate)
{
	(void)outer;
	return rounding(c, n, in, 2);
}

FN(round)
{
	struct fp_item v;
	int64_t p = 0;
	if (!input_num(c, n, in, &v))
		return FP_EMPTY;
	if (n->nargs && !arg_int(c, n, 0, outer, &p))
		return FP_EMPTY;
	if (p < 0)
		fp_fail(c, FP_ERR_EVAL, n->pos, "round() precision below 0");
	struct fp_dec d = v.kind == FP_INTEGER ? fp_dec_from_int(v.u.i) : v.u.d;
	return dec_out(c, fp_dec_round(d, (int)(p > 28 ? 28 : p)));
}

static struct fp_coll dbl_fn(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *in, int which,
			     const struct fp_coll *outer)
{
	struct fp_item v;
	if (!input_num(c, n, in, &v))
		return FP_EMPTY;
	double x = v.kind == FP_INTEGER ? (double)v.u.i : fp_dec_to_double(v.u.d), r;
	switch (which) {
	case 0:
		if (x < 0)
			return FP_EMPTY;
		r = sqrt(x);
		break;
	case 1:
		r = exp(x);
		break;
	case 2:
		if (x <= 0)
			return FP_EMPTY;
		r = log(x);
		break;
	case 3: {
		struct fp_item b;
		if (!arg_value(c, n, 0, outer, &b))
			return FP_EMPTY;
		double base = b.kind == FP_INTEGER ? (double)b.u.i : fp_dec_to_double(b.u.d);
		if (x <= 0 || base <= 0 || base == 1)
			return FP_EMPTY;
		r = log(x) / log(base);
		break;
	}
	default: {
		struct fp_item e;
		if (!arg_value(c, n, 0, outer, &e))
			return FP_EMPTY;
		if (v.kind == FP_INTEGER && e.kind == FP_INTEGER && e.u.i >= 0) {
			/* by squaring: the exponent may be huge when the base is 0 or ±1 */
			int64_t acc = 1, base = v.u.i, ex = e.u.i;
			while (ex > 0) {
				if ((ex & 1) && __builtin_mul_overflow(acc, base, &acc))
					return FP_EMPTY;
				ex >>= 1;
				if (ex && __builtin_mul_overflow(base, base, &base))
					return FP_EMPTY;
			}
			return fp_int(c, acc);
		}
		double ex = e.kind == FP_INTEGER ? (double)e.u.i : fp_dec_to_double(e.u.d);
		r = pow(x, ex);
		if (isnan(r))
			return FP_EMPTY;
		break;
	}
	}
	if (!isfinite(r))
		return FP_EMPTY;
	return dec_out(c, fp_dec_from_double(r));
}

FN(sqrt) { return dbl_fn(c, n, in, 0, outer); }
FN(exp) { return dbl_fn(c, n, in, 1, outer); }
FN(ln) { return dbl_fn(c, n, in, 2, outer); }
FN(log) { return dbl_fn(c, n, in, 3, outer); }
FN(power) { return dbl_fn(c, n, in, 4, outer); }

/* --- tree navigation ------------------------------------------------------------------------ */

FN(children)
{
	UNUSED_ARGS;
	struct fp_buf b = {0};
	for (size_t i = 0; i < in->n; i++)
		fp_all_children(c, &in->v[i], &b);
	return fp_done(&b);
}

FN(descendants)
{
	UNUSED_ARGS;
	struct fp_buf b = {0};
	for (size_t i = 0; i < in->n; i++)
		fp_all_children(c, &in->v[i], &b);
	for (size_t k = 0; k < b.n; k++) {
		struct fp_item it = b.v[k];
		fp_all_children(c, &it, &b);
	}
	return fp_done(&b);
}

/* --- utility ---------------------------------------------------------------------------------- */

FN(trace)
{
	(void)c, (void)n, (void)outer;
	return *in;
}

static struct fp_coll now_item(struct fp_ctx *c, enum fp_kind k)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	struct fp_item it = {.kind = (uint8_t)k};
	it.u.dt.year = (int16_t)(tm.tm_year + 1900);
	it.u.dt.month = (int8_t)(tm.tm_mon + 1);
	it.u.dt.day = (int8_t)tm.tm_mday;
	it.u.dt.hour = (int8_t)tm.tm_hour;
	it.u.dt.minute = (int8_t)tm.tm_min;
	it.u.dt.second = (int8_t)tm.tm_sec;
	it.u.dt.ms = (int16_t)(ts.tv_nsec / 1000000);
	it.u.dt.prec = k == FP_DATE ? 3 : 7;
	it.u.dt.has_tz = k == FP_DATETIME;
	return fp_one(c, &it);
}

FN(now)
{
	UNUSED_ARGS;
	return now_item(c, FP_DATETIME);
}
FN(today)
{
	UNUSED_ARGS;
	return now_item(c, FP_DATE);
}
FN(timeOfDay)
{
	UNUSED_ARGS;
	return now_item(c, FP_TIME);
}

FN(not )
{
	(void)outer;
	int b;
	fp_to_bool_single(c, in, n->pos, &b);
	if (b < 0)
		return FP_EMPTY;
	return fp_bool(c, !b);
}

FN(type)
{
	UNUSED_ARGS;
	struct fp_buf b = {0};
	for (size_t i = 0; i < in->n; i++) {
		struct fp_item it = {.kind = FP_TYPEINFO};
		const struct fp_item *x = &in->v[i];
		if (x->kind == FP_NODE) {
			it.u.ti.ns = "FHIR";
			it.u.ti.name = fp_item_type(x);
		} else {
			static const char *const sys[] = {"Boolean", "Integer",  "Decimal", "String",
							  "Date",    "DateTime", "Time",    "Quantity"};
			it.u.ti.ns = "System";
			it.u.ti.name = x->kind < 8 ? sys[x->kind] : "Any";
		}
		fp_push(c, &b, &it);
	}
	return fp_done(&b);
}

FN(aggregate)
{
	struct fp_coll total = n->nargs > 1 ? arg(c, n, 1, outer) : FP_EMPTY;
	const struct fp_coll *save = c->total;
	for (size_t i = 0; i < in->n; i++) {
		struct fp_coll t = total;
		c->total = &t;
		total = lambda(c, n, 0, &in->v[i], i);
	}
	c->total = save;
	return total;
}

/* --- FHIR additions ---------------------------------------------------------------------------- */

FN(extension)
{
	const char *url;
	size_t ul;
	if (!arg_str(c, n, 0, outer, &url, &ul))
		return FP_EMPTY;
	struct fp_buf b = {0};
	for (size_t i = 0; i < in->n; i++) {
		struct fp_buf ex = {0};
		fp_children(c, &in->v[i], "extension", 9, &ex);
		for (size_t k = 0; k < ex.n; k++) {
			const cJSON *u = ex.v[k].kind == FP_NODE && ex.v[k].u.node.j
						 ? cJSON_GetObjectItemCaseSensitive(ex.v[k].u.node.j, "url")
						 : NULL;
			if (cJSON_IsString(u) && strlen(u->valuestring) == ul && !memcmp(u->valuestring, url, ul))
				fp_push(c, &b, &ex.v[k]);
		}
	}
	return fp_done(&b);
}

FN(hasValue)
{
	UNUSED_ARGS;
	return fp_bool(c, in->n == 1 && in->v[0].kind == FP_NODE && fp_is_primitive(&in->v[0]) && in->v[0].u.node.j);
}

FN(getValue)
{
	UNUSED_ARGS;
	struct fp_item v;
	if (in->n != 1 || !(in->v[0].kind == FP_NODE && fp_is_primitive(&in->v[0]) && in->v[0].u.node.j) ||
	    !fp_value(c, &in->v[0], &v))
		return FP_EMPTY;
	return fp_one(c, &v);
}

static const cJSON *find_resource(const cJSON *root, const char *ref)
{
	if (!cJSON_IsObject(root))
		return NULL;
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(root, "resourceType");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
	if (cJSON_IsString(rt) && cJSON_IsString(id)) {
		size_t tl = strlen(rt->valuestring);
		const char *tail = ref;
		/* absolute references end with Type/id (an optional /_history/v is cut below) */
		const char *h = strstr(ref, "/_history/");
		size_t rl = h ? (size_t)(h - ref) : strlen(ref);
		char want[512];
		int wl = snprintf(want, sizeof want, "%s/%s", rt->valuestring, id->valuestring);
		if (wl > 0 && (size_t)wl <= rl && !strncmp(tail + rl - (size_t)wl, want, (size_t)wl) &&
		    (rl == (size_t)wl || tail[rl - (size_t)wl - 1] == '/'))
			return root;
		(void)tl;
	}
	const cJSON *entries = cJSON_GetObjectItemCaseSensitive(root, "entry");
	if (cJSON_IsArray(entries)) {
		for (const cJSON *e = entries->child; e; e = e->next) {
			const cJSON *fu = cJSON_GetObjectItemCaseSensitive(e, "fullUrl");
			const cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "resource");
			if (cJSON_IsString(fu) && !strcmp(fu->valuestring, ref) && res)
				return res;
		}
		for (const cJSON *e = entries->child; e; e = e->next) {
			const cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "resource");
			const cJSON *r = res ? find_resource(res, ref) : NULL;
			if (r == res && r)
				return r;
		}
	}
	return NULL;
}

FN(resolve)
{
	UNUSED_ARGS;
	struct fp_buf b = {0};
	for (size_t i = 0; i < in->n; i++) {
		const struct fp_item *it = &in->v[i];
		const char *ref = NULL;
		if (it->kind == FP_NODE && cJSON_IsObject(it->u.node.j)) {
			const cJSON *r = cJSON_GetObjectItemCaseSensitive(it->u.node.j, "reference");
			if (cJSON_IsString(r))
				ref = r->valuestring;
		} else if (it->kind == FP_NODE && cJSON_IsString(it->u.node.j)) {
			ref = it->u.node.j->valuestring;
		} else if (it->kind == FP_STRING) {
			ref = arena_strndup(c->a, it->u.str.s, it->u.str.len);
		}
		if (!ref)
			continue;
		const cJSON *found = NULL;
		if (ref[0] == '#' && c->has_resource) {
			const cJSON *cont = cJSON_GetObjectItemCaseSensitive(c->resource.u.node.j, "contained");
			for (const cJSON *x = cJSON_IsArray(cont) ? cont->child : NULL; x && !found; x = x->next) {
				const cJSON *id = cJSON_GetObjectItemCaseSensitive(x, "id");
				if (cJSON_IsString(id) && !strcmp(id->valuestring, ref + 1))
					found = x;
			}
		} else if (c->has_root) {
			found = find_resource(c->root.u.node.j, ref);
		}
		if (found) {
			struct fp_item r = fp_node_item(found, NULL, fp_resource_type(found));
			fp_push(c, &b, &r);
		}
	}
	return fp_done(&b);
}

FN(memberOf)
{
	(void)outer, (void)in;
	fp_fail(c, FP_ERR_EVAL, n->pos, "memberOf() needs a terminology service");
}

FN(conformsTo)
{
	const char *url;
	size_t ul;
	if (!arg_str(c, n, 0, outer, &url, &ul) || in->n == 0)
		return FP_EMPTY;
	static const char core[] = "http://hl7.org/fhir/StructureDefinition/";
	size_t cl = sizeof core - 1;
	const struct model_type *want = ul > cl && !memcmp(url, core, cl) ? model_type_n(url + cl, ul - cl) : NULL;
	if (!want)
		fp_fail(c, FP_ERR_EVAL, n->pos, "conformsTo(): no profile %.*s is known", (int)ul, url);
	struct fp_typespec ts = {NULL, want->name, want};
	for (size_t i = 0; i < in->n; i++)
		if (!fp_is_type(&in->v[i], &ts))
			return fp_bool(c, false);
	return fp_bool(c, true);
}

FN(htmlChecks)
{
	UNUSED_ARGS;
	return fp_bool(c, true);
}

/* --- R5 additions the suite exercises --------------------------------------------------------- */

FN(matchesFull)
{
	const char *s, *p;
	size_t l, pl;
	if (!input_str(c, n, in, &s, &l) || !arg_str(c, n, 0, outer, &p, &pl))
		return FP_EMPTY;
	char *pat = posix_re(c, p, pl);
	size_t ql = strlen(pat);
	char *full = fp_alloc(c, ql + 5);
	snprintf(full, ql + 5, "^(%s)$", pat);
	regex_t re;
	if (regcomp(&re, full, REG_EXTENDED | REG_NOSUB) != 0)
		fp_fail(c, FP_ERR_EVAL, n->pos, "bad regular expression");
	char *str = arena_strndup(c->a, s, l);
	bool m = str && regexec(&re, str, 0, NULL, 0) == 0;
	regfree(&re);
	return fp_bool(c, m);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_val(char ch, bool url)
{
	if (url && ch == '-')
		return 62;
	if (url && ch == '_')
		return 63;
	if (!url && (ch == '+' || ch == '/'))
		return ch == '+' ? 62 : 63;
	const char *p = strchr(b64, ch);
	return p && ch && p - b64 < 62 ? (int)(p - b64) : -1;
}

static struct fp_coll coding(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *in,
			     const struct fp_coll *outer, bool enc)
{
	const char *s, *how;
	size_t l, hl;
	if (!input_str(c, n, in, &s, &l) || !arg_str(c, n, 0, outer, &how, &hl))
		return FP_EMPTY;
	bool hex = hl == 3 && !memcmp(how, "hex", 3);
	bool url = hl == 9 && !memcmp(how, "urlbase64", 9);
	if (!hex && !url && !(hl == 6 && !memcmp(how, "base64", 6)))
		fp_fail(c, FP_ERR_EVAL, n->pos, "unknown encoding %.*s", (int)hl, how);
	char *o = fp_alloc(c, l * 2 + 8);
	size_t k = 0;
	if (hex && enc) {
		for (size_t i = 0; i < l; i++)
			k += (size_t)snprintf(o + k, 3, "%02x", (unsigned char)s[i]);
	} else if (hex) {
		if (l % 2)
			return FP_EMPTY;
		for (size_t i = 0; i < l; i += 2) {
			unsigned v;
			char t[3] = {s[i], s[i + 1], 0};
			if (!isxdigit((unsigned char)t[0]) || !isxdigit((unsigned char)t[1]) ||
			    sscanf(t, "%x", &v) != 1)
				return FP_EMPTY;
			o[k++] = (char)v;
		}
	} else if (enc) {
		for (size_t i = 0; i < l; i += 3) {
			unsigned v = (unsigned)(unsigned char)s[i] << 16;
			if (i + 1 < l)
				v |= (unsigned)(unsigned char)s[i + 1] << 8;
			if (i + 2 < l)
				v |= (unsigned char)s[i + 2];
			for (int q = 0; q < 4; q++) {
				char ch = b64[(v >> (18 - 6 * q)) & 63];
				if (url && ch == '+')
					ch = '-';
				if (url && ch == '/')
					ch = '_';
				o[k++] = (size_t)q <= (l - i) ? ch : '=';
			}
		}
	} else {
		unsigned acc = 0;
		int bits = 0;
		for (size_t i = 0; i < l && s[i] != '='; i++) {
			int v = b64_val(s[i], url);
			if (v < 0)
				return FP_EMPTY;
			acc = (acc << 6) | (unsigned)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				o[k++] = (char)((acc >> bits) & 0xFF);
			}
		}
	}
	return fp_str(c, o, k);
}

FN(encode) { return coding(c, n, in, outer, true); }
FN(decode) { return coding(c, n, in, outer, false); }

static struct fp_coll escaping(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *in,
			       const struct fp_coll *outer, bool esc)
{
	const char *s, *how;
	size_t l, hl;
	if (!input_str(c, n, in, &s, &l) || !arg_str(c, n, 0, outer, &how, &hl))
		return FP_EMPTY;
	bool html = hl == 4 && !memcmp(how, "html", 4);
	if (!html && !(hl == 4 && !memcmp(how, "json", 4)))
		fp_fail(c, FP_ERR_EVAL, n->pos, "unknown escaping %.*s", (int)hl, how);
	static const char *const hent[][2] = {
		{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}, {"'", "&#39;"}};
	char *o = fp_alloc(c, l * 6 + 1);
	size_t k = 0;
	for (size_t i = 0; i < l; i++) {
		if (html && esc) {
			bool done = false;
			for (size_t e = 0; e < 5 && !done; e++)
				if (s[i] == hent[e][0][0]) {
					size_t el = strlen(hent[e][1]);
					memcpy(o + k, hent[e][1], el);
					k += el;
					done = true;
				}
			if (!done)
				o[k++] = s[i];
		} else if (html) {
			bool done = false;
			for (size_t e = 0; e < 5 && !done; e++) {
				size_t el = strlen(hent[e][1]);
				if (i + el <= l && !memcmp(s + i, hent[e][1], el)) {
					o[k++] = hent[e][0][0];
					i += el - 1;
					done = true;
				}
			}
			if (!done)
				o[k++] = s[i];
		} else if (esc) {
			if (s[i] == '"' || s[i] == '\\')
				o[k++] = '\\';
			o[k++] = s[i];
		} else {
			if (s[i] == '\\' && i + 1 < l)
				i++;
			o[k++] = s[i];
		}
	}
	return fp_str(c, o, k);
}

FN(escape) { return escaping(c, n, in, outer, true); }
FN(unescape) { return escaping(c, n, in, outer, false); }

FN(comparable)
{
	struct fp_item a, b;
	if (!input_value(c, n, in, &a) || !arg_value(c, n, 0, outer, &b))
		return FP_EMPTY;
	if (a.kind != FP_QUANTITY || b.kind != FP_QUANTITY)
		fp_fail(c, FP_ERR_EVAL, n->pos, "comparable() needs Quantities");
	return fp_bool(c, fp_units_comparable(a.u.q.unit, b.u.q.unit));
}

static int dt_digits(const struct fp_item *v)
{
	static const int date[] = {0, 4, 6, 8, 10, 12, 14, 17};
	static const int tim[] = {0, 0, 0, 0, 2, 4, 6, 9};
	return v->kind == FP_TIME ? tim[v->u.dt.prec] : date[v->u.dt.prec];
}

FN(precision)
{
	(void)outer;
	struct fp_item v;
	if (!input_value(c, n, in, &v))
		return FP_EMPTY;
	switch (v.kind) {
	case FP_DECIMAL:
		return fp_int(c, v.u.d.scale);
	case FP_INTEGER:
		return fp_int(c, 0);
	case FP_DATE:
	case FP_DATETIME:
	case FP_TIME:
		return fp_int(c, dt_digits(&v));
	default:
		fp_fail(c, FP_ERR_EVAL, n->pos, "precision() on a %s", fp_item_type(&v));
	}
}

/* floor (dir < 0) or ceiling (dir > 0) of d at scale digits */
static struct fp_dec dec_bound(struct fp_dec d, int scale, int dir)
{
	while (d.scale < scale) {
		d.m *= 10;
		d.scale++;
	}
	while (d.scale > scale) {
		__int128 q = d.m / 10, r = d.m % 10;
		if (r && dir < 0 && d.m < 0)
			q--;
		if (r && dir > 0 && d.m > 0)
			q++;
		d.m = q;
		d.scale--;
	}
	return d;
}

static struct fp_coll boundary(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *in,
			       const struct fp_coll *outer, int dir)
{
	struct fp_item v;
	if (!input_value(c, n, in, &v))
		return FP_EMPTY;
	int64_t p = -1;
	if (n->nargs && !arg_int(c, n, 0, outer, &p))
		return FP_EMPTY;
	if (v.kind == FP_INTEGER || v.kind == FP_DECIMAL || v.kind == FP_QUANTITY) {
		struct fp_dec d = v.kind == FP_INTEGER   ? fp_dec_from_int(v.u.i)
				  : v.kind == FP_DECIMAL ? v.u.d
							 : v.u.q.v;
		if (p < 0 && n->nargs)
			return FP_EMPTY;
		if (p < 0)
			p = 8;
		if (p > 28)
			return FP_EMPTY;
		/* the interval the value stands for: half a unit of its last digit either way */
		struct fp_dec half = {5 * (d.m < 0 && dir < 0 ? -1 : d.m < 0 ? -1 : 1), (int16_t)(d.scale + 1)};
		struct fp_dec b;
		half.m = dir < 0 ? -5 : 5;
		if (!fp_dec_add(d, half, &b))
			return FP_EMPTY;
		b = dec_bound(b, (int)p, dir);
		if (v.kind == FP_QUANTITY) {
			v.u.q.v = b;
			return fp_one(c, &v);
		}
		struct fp_item r = {.kind = FP_DECIMAL, .u.d = b};
		return fp_one(c, &r);
	}
	if (v.kind == FP_DATE || v.kind == FP_DATETIME || v.kind == FP_TIME) {
		static const int date_prec[] = {4, 6, 8, 10, 12, 14, 17};
		static const int time_prec[] = {2, 4, 6, 9};
		int target = 0;
		if (p < 0)
			target = v.kind == FP_TIME ? 7 : v.kind == FP_DATE ? 3 : 7;
		else if (v.kind == FP_TIME) {
			for (int k = 0; k < 4; k++)
				if (time_prec[k] == p)
					target = k + 4;
		} else {
			for (int k = 0; k < 7; k++)
				if (date_prec[k] == p)
					target = k + 1;
		}
		if (!target || (v.kind == FP_DATE && target > 3))
			return FP_EMPTY;
		struct fp_datetime *dt = &v.u.dt;
		if (dt->prec < 2)
			dt->month = (int8_t)(dir < 0 ? 1 : 12);
		if (dt->prec < 3) {
			static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
			int y = dt->year, m = dt->month;
			int last = dim[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100) || y % 400 == 0));
			dt->day = (int8_t)(dir < 0 ? 1 : last);
		}
		if (dt->prec < 4)
			dt->hour = (int8_t)(dir < 0 ? 0 : 23);
		if (dt->prec < 5)
			dt->minute = (int8_t)(dir < 0 ? 0 : 59);
		if (dt->prec < 6)
			dt->second = (int8_t)(dir < 0 ? 0 : 59);
		if (dt->prec < 7)
			dt->ms = (int16_t)(dir < 0 ? 0 : 999);
		if (v.kind == FP_DATETIME && target >= 4 && !dt->has_tz) {
			dt->has_tz = true;
			dt->tz = (int16_t)(dir < 0 ? 14 * 60 : -12 * 60);
		}
		dt->prec = (uint8_t)target;
		return fp_one(c, &v);
	}
	fp_fail(c, FP_ERR_EVAL, n->pos, "%s() on a %s", n->name, fp_item_type(&v));
}

FN(lowBoundary) { return boundary(c, n, in, outer, -1); }
FN(highBoundary) { return boundary(c, n, in, outer, 1); }

/* A sort key compare: -1/0/1 by value (numbers, strings, dates); empty first. */
static int key_cmp(struct fp_ctx *c, const struct fp_coll *a, const struct fp_coll *b)
{
	struct fp_item x, y;
	bool hx = a->n && fp_value(c, &a->v[0], &x), hy = b->n && fp_value(c, &b->v[0], &y);
	if (!hx || !hy)
		return hx - hy;
	if ((x.kind == FP_INTEGER || x.kind == FP_DECIMAL) && (y.kind == FP_INTEGER || y.kind == FP_DECIMAL))
		return fp_dec_cmp(x.kind == FP_INTEGER ? fp_dec_from_int(x.u.i) : x.u.d,
				  y.kind == FP_INTEGER ? fp_dec_from_int(y.u.i) : y.u.d);
	if (x.kind == FP_STRING && y.kind == FP_STRING) {
		size_t m = x.u.str.len < y.u.str.len ? x.u.str.len : y.u.str.len;
		int r = memcmp(x.u.str.s, y.u.str.s, m);
		return r ? (r < 0 ? -1 : 1) : (x.u.str.len > y.u.str.len) - (x.u.str.len < y.u.str.len);
	}
	if (x.kind >= FP_DATE && x.kind <= FP_TIME && y.kind == x.kind) {
		int r = fp_dt_cmp(&x.u.dt, &y.u.dt, x.kind == FP_TIME);
		return r == -2 ? 0 : r;
	}
	return 0;
}

FN(sort)
{
	(void)outer;
	size_t m = in->n, nk = n->nargs ? n->nargs : 1;
	struct fp_coll *keys = fp_alloc(c, m * nk * sizeof *keys + 1);
	size_t *idx = fp_alloc(c, m * sizeof *idx + 1);
	for (size_t i = 0; i < m; i++) {
		idx[i] = i;
		for (size_t k = 0; k < nk; k++) {
			if (!n->nargs) {
				keys[i * nk + k] = (struct fp_coll){&in->v[i], 1};
				continue;
			}
			/* a key written -expr sorts descending */
			const struct fp_node *a = n->args[k];
			keys[i * nk + k] = lambda_node(c, a->kind == N_NEG ? a->args[0] : a, &in->v[i], i);
		}
	}
	/* insertion sort: stable, collections are small */
	for (size_t i = 1; i < m; i++) {
		size_t cur = idx[i], j = i;
		while (j > 0) {
			int r = 0;
			for (size_t k = 0; k < nk && !r; k++) {
				const struct fp_coll *x = &keys[idx[j - 1] * nk + k], *y = &keys[cur * nk + k];
				r = key_cmp(c, x, y);
				/* an empty key comes first either way */
				if (n->nargs && n->args[k]->kind == N_NEG && x->n && y->n)
					r = -r;
			}
			if (r <= 0)
				break;
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = cur;
	}
	struct fp_buf b = {0};
	for (size_t i = 0; i < m; i++)
		fp_push(c, &b, &in->v[idx[i]]);
	return fp_done(&b);
}

static const struct fp_fn fns[] = {
#define F(name, min, max, lam)                     \
	{                                          \
#name, min, max, lam, 0, fn_##name \
	}
#define FT(name, min, max)                       \
	{                                        \
#name, min, max, 0, 1, fn_##name \
	}
	F(aggregate, 1, 2, 1),
	F(abs, 0, 0, 0),
	F(all, 1, 1, 1),
	F(allFalse, 0, 0, 0),
	F(allTrue, 0, 0, 0),
	F(anyFalse, 0, 0, 0),
	F(anyTrue, 0, 0, 0),
	FT(as, 1, 1),
	F(ceiling, 0, 0, 0),
	F(children, 0, 0, 0),
	F(combine, 1, 1, 0),
	F(comparable, 1, 1, 0),
	F(conformsTo, 1, 1, 0),
	F(contains, 1, 1, 0),
	F(convertsToBoolean, 0, 0, 0),
	F(convertsToDate, 0, 0, 0),
	F(convertsToDateTime, 0, 0, 0),
	F(convertsToDecimal, 0, 0, 0),
	F(convertsToInteger, 0, 0, 0),
	F(convertsToQuantity, 0, 1, 0),
	F(convertsToString, 0, 0, 0),
	F(convertsToTime, 0, 0, 0),
	F(count, 0, 0, 0),
	F(decode, 1, 1, 0),
	F(descendants, 0, 0, 0),
	F(distinct, 0, 0, 0),
	F(empty, 0, 0, 0),
	F(encode, 1, 1, 0),
	F(endsWith, 1, 1, 0),
	F(escape, 1, 1, 0),
	F(exclude, 1, 1, 0),
	F(exists, 0, 1, 1),
	F(exp, 0, 0, 0),
	F(extension, 1, 1, 0),
	F(first, 0, 0, 0),
	F(floor, 0, 0, 0),
	F(getValue, 0, 0, 0),
	F(hasValue, 0, 0, 0),
	F(highBoundary, 0, 1, 0),
	F(htmlChecks, 0, 0, 0),
	F(iif, 2, 3, 7),
	F(indexOf, 1, 1, 0),
	F(intersect, 1, 1, 0),
	FT(is, 1, 1),
	F(isDistinct, 0, 0, 0),
	F(join, 0, 1, 0),
	F(last, 0, 0, 0),
	F(length, 0, 0, 0),
	F(ln, 0, 0, 0),
	F(log, 1, 1, 0),
	F(lowBoundary, 0, 1, 0),
	F(lower, 0, 0, 0),
	F(matches, 1, 1, 0),
	F(matchesFull, 1, 1, 0),
	F(memberOf, 1, 1, 0),
	F(not, 0, 0, 0),
	F(now, 0, 0, 0),
	FT(ofType, 1, 1),
	F(power, 1, 1, 0),
	F(precision, 0, 0, 0),
	F(repeat, 1, 1, 1),
	F(replace, 2, 2, 0),
	F(replaceMatches, 2, 2, 0),
	F(resolve, 0, 0, 0),
	F(round, 0, 1, 0),
	F(select, 1, 1, 1),
	F(single, 0, 0, 0),
	F(skip, 1, 1, 0),
	F(sort, 0, 8, 0xFF),
	F(split, 1, 1, 0),
	F(sqrt, 0, 0, 0),
	F(startsWith, 1, 1, 0),
	F(subsetOf, 1, 1, 0),
	F(substring, 1, 2, 0),
	F(supersetOf, 1, 1, 0),
	F(tail, 0, 0, 0),
	F(take, 1, 1, 0),
	F(timeOfDay, 0, 0, 0),
	F(toBoolean, 0, 0, 0),
	F(toChars, 0, 0, 0),
	F(toDate, 0, 0, 0),
	F(toDateTime, 0, 0, 0),
	F(toDecimal, 0, 0, 0),
	F(toInteger, 0, 0, 0),
	F(toQuantity, 0, 1, 0),
	F(toString, 0, 0, 0),
	F(toTime, 0, 0, 0),
	F(today, 0, 0, 0),
	F(trace, 1, 2, 0),
	F(trim, 0, 0, 0),
	F(truncate, 0, 0, 0),
	F(type, 0, 0, 0),
	F(union, 1, 1, 0),
	F(unescape, 1, 1, 0),
	F(upper, 0, 0, 0),
	F(where, 1, 1, 1),
#undef F
#undef FT
};

int fp_fn_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof fns / sizeof *fns; i++)
		if (strlen(fns[i].name) == len && !memcmp(fns[i].name, name, len))
			return (int)i;
	return -1;
}

const struct fp_fn *fp_fn_get(int i) { return &fns[i]; }
