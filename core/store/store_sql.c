/* store_sql — search criteria to SQL, shared by the store's SQL backends:
 * the text of a WHERE tail on "resource r" (each criterion an
 * " AND r.rid IN (SELECT i.rid FROM idx i …)" over the search index table
 * idx(rid, param, sys, val, lo, hi)) and of an ORDER BY, with its values as
 * a list of binds in placeholder order ("?"; a backend numbering its
 * placeholders rewrites them). The two dialects differ in a few functions
 * and hints (struct ssql_buf.pg). Internal to core/store. */
#include "store/store_sql.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/model.h"

bool ssql_is_id_param(const char *param) { return param[0] == '_' && strcmp(param, "_id") == 0; }

void ssql_add(struct ssql_buf *b, const char *s)
{
	size_t n = strlen(s);
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		while (b->len + n + 1 > ncap)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n + 1);
	b->len += n;
}

/* Appends a copy of x (its text duplicated). */
void ssql_bind_push(struct ssql_binds *b, const struct ssql_bind *x)
{
	if (b->oom)
		return;
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 16;
		struct ssql_bind *nv = realloc(b->v, ncap * sizeof *nv);
		if (!nv) {
			b->oom = true;
			return;
		}
		b->v = nv;
		b->cap = ncap;
	}
	struct ssql_bind *y = &b->v[b->n];
	*y = *x;
	if (x->kind == SSQL_BIND_TEXT && !(y->s = strdup(x->s))) {
		b->oom = true;
		return;
	}
	b->n++;
}

void ssql_bind_str(struct ssql_binds *b, const char *s)
{
	ssql_bind_push(b, &(struct ssql_bind){.kind = SSQL_BIND_TEXT, .s = (char *)s});
}

void ssql_bind_int(struct ssql_binds *b, int64_t i)
{
	ssql_bind_push(b, &(struct ssql_bind){.kind = SSQL_BIND_INT, .i = i});
}

void ssql_bind_real(struct ssql_binds *b, double d)
{
	ssql_bind_push(b, &(struct ssql_bind){.kind = SSQL_BIND_REAL, .d = d});
}

void ssql_binds_release(struct ssql_binds *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->v[i].s);
	free(b->v);
}

/* Copies s[0..len) into out (size len + 1) dropping the backslash of each
 * escape ("\," "\|" "\$" "\\"). */
static void unescape(const char *s, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len)
			i++;
		out[o++] = s[i];
	}
	out[o] = '\0';
}

/* Index of the first unescaped ch in s[0..len), or len. */
static size_t find_unescaped(const char *s, size_t len, char ch)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == ch)
			return i;
	}
	return len;
}

struct criterion {
	const char *name, *modifier;
	const struct search_param_def *def;
};

/* One alternative of one criterion: an SQL condition on idx row i. */
/* Search prefixes (FHIR R4 search, 3.1.1.4.6), in this order. */
enum { PFX_EQ, PFX_NE, PFX_LT, PFX_GT, PFX_LE, PFX_GE, PFX_SA, PFX_EB, PFX_AP };

/* The text after the prefix of val (eq when none), the prefix in *pfx; NULL
 * when val starts with letters that are no prefix. */
static const char *search_prefix(const char *val, size_t *pfx)
{
	static const char prefixes[][3] = {"eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap"};
	*pfx = PFX_EQ;
	if (!(val[0] >= 'a' && val[0] <= 'z'))
		return val;
	for (size_t j = 0; j < sizeof prefixes / sizeof prefixes[0]; j++) {
		if (strncmp(val, prefixes[j], 2) == 0) {
			*pfx = j;
			return val + 2;
		}
	}
	return NULL;
}

/* A search number: [-]digits[.digits][e[+-]digits]. *v is its value, *half
 * half a unit of its last digit (100 → 0.5, 1.50 → 0.005, 2e3 → 500): the
 * implicit range of "eq" is [v - half, v + half). */
static bool search_number(const char *text, double *v, double *half)
{
	const char *p = text;
	if (*p == '-')
		p++;
	size_t ints = strspn(p, "0123456789"), decimals = 0;
	p += ints;
	if (*p == '.') {
		decimals = strspn(p + 1, "0123456789");
		if (!decimals)
			return false;
		p += 1 + decimals;
	}
	long exp = 0;
	if (*p == 'e' || *p == 'E') {
		char *end;
		const char *e = p + 1;
		if (!((e[0] >= '0' && e[0] <= '9') || ((e[0] == '+' || e[0] == '-') && e[1] >= '0' && e[1] <= '9')))
			return false;
		exp = strtol(e, &end, 10);
		if (exp < -300 || exp > 300)
			return false;
		p = end;
	}
	if (!ints || *p)
		return false;
	*v = strtod(text, NULL);
	*half = pow(10.0, (double)(exp - (long)decimals)) / 2;
	return isfinite(*v);
}

/* number and quantity: [prefix]number, and for quantities |system|code or
 * ||code (code or unit), on the real-valued lo/hi of the index rows. */
static enum store_status numeric_sql(const struct criterion *k, char *val, struct ssql_buf *sql, struct ssql_binds *b,
				     struct store_error *err)
{
	char *sys = NULL, *code = NULL;
	char *bar = strchr(val, '|');
	if (bar) {
		if (k->def->kind != SEARCH_PARAM_QUANTITY)
			return store_fail(err, STORE_INVALID, "%s: a number takes no unit", k->name);
		*bar = '\0';
		sys = bar + 1;
		char *bar2 = strchr(sys, '|');
		if (!bar2)
			return store_fail(err, STORE_INVALID, "%s: a unit is given as |system|code or ||code", k->name);
		*bar2 = '\0';
		code = bar2 + 1;
		if (!code[0])
			return store_fail(err, STORE_INVALID, "%s: the unit code is empty", k->name);
	}
	size_t pfx;
	double v, half;
	const char *text = search_prefix(val, &pfx);
	if (!text || !search_number(text, &v, &half))
		return store_fail(err, STORE_INVALID, "%s: '%.40s' is not a [prefix]number", k->name, val);
	ssql_add(sql, "(");
	switch (pfx) {
	case PFX_EQ: /* the value's range lies within the search range */
	case PFX_NE:
		ssql_add(sql, pfx == PFX_NE ? "NOT (i.lo >= ? AND i.hi < ?)" : "(i.lo >= ? AND i.hi < ?)");
		ssql_bind_real(b, v - half);
		ssql_bind_real(b, v + half);
		break;
	case PFX_LT:
	case PFX_EB:
		ssql_add(sql, pfx == PFX_LT ? "i.lo < ?" : "i.hi < ?");
		ssql_bind_real(b, v);
		break;
	case PFX_GT:
	case PFX_SA:
		ssql_add(sql, pfx == PFX_GT ? "i.hi > ?" : "i.lo > ?");
		ssql_bind_real(b, v);
		break;
	case PFX_LE:
		ssql_add(sql, "i.lo <= ?");
		ssql_bind_real(b, v);
		break;
	case PFX_GE:
		ssql_add(sql, "i.hi >= ?");
		ssql_bind_real(b, v);
		break;
	default: /* ap: overlaps the value give or take 10% */
		ssql_add(sql, "i.lo <= ? AND i.hi >= ?");
		ssql_bind_real(b, v + fabs(v) * 0.1 + half);
		ssql_bind_real(b, v - fabs(v) * 0.1 - half);
		break;
	}
	if (code && sys[0]) {
		ssql_add(sql, " AND i.sys = ? AND i.val = ?");
		ssql_bind_str(b, sys);
		ssql_bind_str(b, code);
	} else if (code) {
		ssql_add(sql, " AND i.val = ?");
		ssql_bind_str(b, code);
	}
	ssql_add(sql, ")");
	return STORE_OK;
}

/* One builder per parameter kind: each adds one parenthesised condition on
 * the index row i (and its binds) for one alternative value. val holds the
 * value unescaped (token: room for it; the builder splits system|code). */

static enum store_status token_sql(const struct criterion *k, const char *raw, size_t rawlen, char *val,
				   struct ssql_buf *sql, struct ssql_binds *b, struct store_error *err)
{
	size_t bar = find_unescaped(raw, rawlen, '|');
	if (bar == rawlen) {
		unescape(raw, rawlen, val);
		if (!val[0])
			return store_fail(err, STORE_INVALID, "%s: empty value", k->name);
		ssql_add(sql, "(i.val = ?)");
		ssql_bind_str(b, val);
		return STORE_OK;
	}
	char *code = malloc(rawlen - bar);
	if (!code)
		return store_fail(err, STORE_NO_MEMORY, "out of memory");
	enum store_status st = STORE_OK;
	unescape(raw, bar, val);
	unescape(raw + bar + 1, rawlen - bar - 1, code);
	if (!val[0] && !code[0]) {
		st = store_fail(err, STORE_INVALID, "%s: '|' alone is no token", k->name);
	} else if (!val[0]) {
		ssql_add(sql, "(i.sys IS NULL AND i.val = ?)");
		ssql_bind_str(b, code);
	} else if (!code[0]) {
		ssql_add(sql, "(i.sys = ?)");
		ssql_bind_str(b, val);
	} else {
		ssql_add(sql, "(i.sys = ? AND i.val = ?)");
		ssql_bind_str(b, val);
		ssql_bind_str(b, code);
	}
	free(code);
	return st;
}

static enum store_status reference_sql(const struct criterion *k, const char *val, struct ssql_buf *sql,
				       struct ssql_binds *b, struct store_error *err)
{
	char rtype[STORE_TYPE_SIZE], rid[STORE_ID_SIZE];
	const char *want_type = k->modifier && k->modifier[0] ? k->modifier : NULL;
	bool split = search_params_split_reference(val, rtype, sizeof rtype, rid, sizeof rid);
	if (search_params_reference_absolute(val)) {
		/* another server's resource: the reference exactly as stored */
		if (want_type && (!split || strcmp(want_type, rtype) != 0)) {
			ssql_add(sql, sql->pg ? "(false)" : "(0)");
			return STORE_OK;
		}
		ssql_add(sql, "(i.sys IS NULL AND i.val = ?)");
		ssql_bind_str(b, val);
	} else if (split) {
		if (want_type && strcmp(want_type, rtype) != 0) {
			ssql_add(sql, sql->pg ? "(false)" : "(0)");
			return STORE_OK;
		}
		ssql_add(sql, "(i.sys = ? AND i.val = ?)");
		ssql_bind_str(b, rtype);
		ssql_bind_str(b, rid);
	} else if (want_type) {
		ssql_add(sql, "(i.sys = ? AND i.val = ?)");
		ssql_bind_str(b, want_type);
		ssql_bind_str(b, val);
	} else if (val[0]) {
		ssql_add(sql, "(i.val = ?)");
		ssql_bind_str(b, val);
	} else {
		return store_fail(err, STORE_INVALID, "%s: empty reference", k->name);
	}
	return STORE_OK;
}

static enum store_status uri_sql(const struct criterion *k, const char *val, struct ssql_buf *sql, struct ssql_binds *b,
				 struct store_error *err)
{
	if (!val[0]) {
		return store_fail(err, STORE_INVALID, "%s: empty value", k->name);
	} else if (k->modifier && strcmp(k->modifier, "below") == 0) {
		/* the stored URI starts with the value */
		ssql_add(sql, "(substr(i.val, 1, length(?)) = ?)");
		ssql_bind_str(b, val);
		ssql_bind_str(b, val);
	} else if (k->modifier && strcmp(k->modifier, "above") == 0) {
		/* the value starts with the stored URI */
		ssql_add(sql, "(i.val <> '' AND substr(?, 1, length(i.val)) = i.val)");
		ssql_bind_str(b, val);
	} else {
		ssql_add(sql, "(i.val = ?)");
		ssql_bind_str(b, val);
	}
	return STORE_OK;
}

static enum store_status date_sql(const struct criterion *k, const char *val, struct ssql_buf *sql,
				  struct ssql_binds *b, struct store_error *err)
{
	size_t pfx;
	const char *text = search_prefix(val, &pfx);
	if (!text || pfx == PFX_AP)
		return store_fail(err, STORE_INVALID, "%s: unsupported date prefix in '%.40s'", k->name, val);
	int64_t lo, hi;
	if (!search_params_date_range(text, &lo, &hi))
		return store_fail(err, STORE_INVALID, "%s: '%.40s' is not a date", k->name, val);
	static const char *const eq = "(i.lo >= ? AND i.hi <= ?)";
	switch (pfx) {
	case 0: /* eq: the value's range lies within the search range */
		ssql_add(sql, eq);
		ssql_bind_int(b, lo);
		ssql_bind_int(b, hi);
		break;
	case 1: /* ne */
		ssql_add(sql, "(NOT (i.lo >= ? AND i.hi <= ?))");
		ssql_bind_int(b, lo);
		ssql_bind_int(b, hi);
		break;
	case 2: /* lt: something of the value lies before the search range */
		ssql_add(sql, "(i.lo < ?)");
		ssql_bind_int(b, lo);
		break;
	case 3: /* gt: something of the value lies after it */
		ssql_add(sql, "(i.hi > ?)");
		ssql_bind_int(b, hi);
		break;
	case 4: /* le: lt or eq */
		ssql_add(sql, "(i.lo < ? OR (i.lo >= ? AND i.hi <= ?))");
		ssql_bind_int(b, lo);
		ssql_bind_int(b, lo);
		ssql_bind_int(b, hi);
		break;
	case 5: /* ge: gt or eq */
		ssql_add(sql, "(i.hi > ? OR (i.lo >= ? AND i.hi <= ?))");
		ssql_bind_int(b, hi);
		ssql_bind_int(b, lo);
		ssql_bind_int(b, hi);
		break;
	case 6: /* sa: the value starts after the search range */
		ssql_add(sql, "(i.lo >= ?)");
		ssql_bind_int(b, hi);
		break;
	default: /* eb: the value ends before it */
		ssql_add(sql, "(i.hi <= ?)");
		ssql_bind_int(b, lo);
		break;
	}
	return STORE_OK;
}

static enum store_status string_sql(const struct criterion *k, const char *val, struct ssql_buf *sql,
				    struct ssql_binds *b, struct store_error *err)
{
	if (!val[0])
		return store_fail(err, STORE_INVALID, "%s: empty value", k->name);
	if (k->modifier && strcmp(k->modifier, "exact") == 0) {
		ssql_add(sql, "(i.sys = ?)");
		ssql_bind_str(b, val);
		return STORE_OK;
	}
	char *norm = search_params_normalize(val);
	if (!norm)
		return store_fail(err, STORE_NO_MEMORY, "out of memory");
	enum store_status st = STORE_OK;
	if (k->modifier && strcmp(k->modifier, "contains") == 0) {
		ssql_add(sql, sql->pg ? "(strpos(i.val, ?) > 0)" : "(instr(i.val, ?) > 0)");
		ssql_bind_str(b, norm);
	} else if (sql->pg) {
		/* starts with; the bound lets the index find the first one (text
		 * holds valid UTF-8 only: no 0xFF bound as below) */
		ssql_add(sql, "(i.val >= ? AND starts_with(i.val, ?))");
		ssql_bind_str(b, norm);
		ssql_bind_str(b, norm);
	} else {
		/* starts with: norm <= val < norm + 0xFF (no UTF-8 byte is 0xFF) */
		size_t n = strlen(norm);
		ssql_add(sql, "(i.val >= ? AND i.val < ?)");
		ssql_bind_str(b, norm);
		char *upper = malloc(n + 2);
		if (upper) {
			memcpy(upper, norm, n);
			upper[n] = (char)0xFF;
			upper[n + 1] = '\0';
			ssql_bind_str(b, upper);
			free(upper);
		} else {
			st = store_fail(err, STORE_NO_MEMORY, "out of memory");
		}
	}
	free(norm);
	return st;
}

/* The SQL condition of one alternative value (raw, escapes kept) of k. */
static enum store_status alternative(const struct criterion *k, const char *raw, size_t rawlen, struct ssql_buf *sql,
				     struct ssql_binds *b, struct store_error *err)
{
	char *val = malloc(rawlen + 1);
	if (!val)
		return store_fail(err, STORE_NO_MEMORY, "out of memory");
	enum store_status st = STORE_OK;
	if (k->def->kind == SEARCH_PARAM_TOKEN) {
		st = token_sql(k, raw, rawlen, val, sql, b, err);
		free(val);
		return st;
	}
	unescape(raw, rawlen, val);
	switch (k->def->kind) {
	case SEARCH_PARAM_REFERENCE:
		st = reference_sql(k, val, sql, b, err);
		break;
	case SEARCH_PARAM_NUMBER:
	case SEARCH_PARAM_QUANTITY:
		st = numeric_sql(k, val, sql, b, err);
		break;
	case SEARCH_PARAM_URI:
		st = uri_sql(k, val, sql, b, err);
		break;
	case SEARCH_PARAM_DATE:
		st = date_sql(k, val, sql, b, err);
		break;
	case SEARCH_PARAM_STRING:
		st = string_sql(k, val, sql, b, err);
		break;
	case SEARCH_PARAM_TOKEN:
		break;
	}
	free(val);
	return st;
}

static bool modifier_ok(const struct criterion *k)
{
	const char *m = k->modifier;
	if (!m || !m[0] || strcmp(m, "missing") == 0)
		return true;
	switch (k->def->kind) {
	case SEARCH_PARAM_TOKEN:
		return strcmp(m, "not") == 0;
	case SEARCH_PARAM_REFERENCE: /* :Type, one the parameter may point at */
		return strlen(m) < STORE_TYPE_SIZE && m[0] >= 'A' && m[0] <= 'Z' &&
		       search_params_targets_has(k->def, m);
	case SEARCH_PARAM_STRING:
		return strcmp(m, "exact") == 0 || strcmp(m, "contains") == 0;
	case SEARCH_PARAM_URI:
		return strcmp(m, "below") == 0 || strcmp(m, "above") == 0;
	case SEARCH_PARAM_DATE:
	case SEARCH_PARAM_NUMBER:
	case SEARCH_PARAM_QUANTITY:
		return false;
	}
	return false;
}

/* _id=a,b (a token: "|a" and "sys|a" name a too) on the resource table. */
static enum store_status id_sql(const char *v, bool negate, struct ssql_buf *sql, struct ssql_binds *b,
				struct store_error *err)
{
	ssql_add(sql, negate ? " AND r.id NOT IN (" : " AND r.id IN (");
	size_t len = strlen(v), start = 0;
	for (bool first = true;; first = false) {
		size_t comma = start + find_unescaped(v + start, len - start, ',');
		const char *alt = v + start;
		size_t alen = comma - start, bar = find_unescaped(alt, alen, '|');
		if (bar < alen) {
			alt += bar + 1;
			alen -= bar + 1;
		}
		char *one = malloc(alen + 1);
		if (!one)
			return store_fail(err, STORE_NO_MEMORY, "out of memory");
		unescape(alt, alen, one);
		ssql_add(sql, first ? "?" : ", ?");
		ssql_bind_str(b, one);
		free(one);
		if (comma >= len)
			break;
		start = comma + 1;
	}
	ssql_add(sql, ")");
	return STORE_OK;
}

static enum store_status criterion(const char *type, const char *prefix, const struct store_search_param *p,
				   struct ssql_buf *sql, struct ssql_binds *b, unsigned *drive,
				   struct store_error *err);

/* A chained parameter: subject:Patient.name=x (or patient.name=x
 * when the reference parameter has one target type): the resources whose
 * reference points at a live resource of that type matching name=x. The
 * inner criterion is the ordinary one, written inside a subquery that
 * names its own "r" (SQL resolves r to the nearest scope). A parameter
 * that embeds a resource (Bundle's composition: search_params_embedded)
 * chains into the values that resource gave the same r, "composition.subject"
 * rows. prefix: "" on a stored resource, "code." inside an embedded one. */
static enum store_status chain_sql(const char *type, const char *prefix, const struct store_search_param *p,
				   struct ssql_buf *sql, struct ssql_binds *b, unsigned *drive, struct store_error *err)
{
	char ref[65], target[65] = "", inner[130];
	const char *dot_mod = p->modifier ? strchr(p->modifier, '.') : NULL;
	const char *rest;
	if (dot_mod && !strchr(p->name, '.')) { /* a type on the first level; a later level's is the inner one's */
		snprintf(ref, sizeof ref, "%s", p->name);
		snprintf(target, sizeof target, "%.*s", (int)(dot_mod - p->modifier), p->modifier);
		rest = dot_mod + 1;
		snprintf(inner, sizeof inner, "%s", rest);
	} else {
		const char *dot = strchr(p->name, '.');
		snprintf(ref, sizeof ref, "%.*s", (int)(dot - p->name), p->name);
		rest = dot + 1;
		/* the modifier belongs to the chained parameter */
		snprintf(inner, sizeof inner, "%s%s%s", rest, p->modifier ? ":" : "", p->modifier ? p->modifier : "");
	}
	const struct search_param_def *def = search_params_find(type, ref, NULL);
	if (!def || def->kind != SEARCH_PARAM_REFERENCE)
		return store_fail(err, STORE_INVALID, "'%.64s' is no reference parameter of %s to chain from", ref,
				  type);
	/* without :Type, the one type the parameter may point at */
	if (!target[0] && search_params_targets_count(def) == 1)
		snprintf(target, sizeof target, "%s", def->targets);
	if (!target[0] && def->targets) {
		char types[512];
		size_t o = 0;
		for (const char *t = def->targets; *t && o + 3 < sizeof types; t++) {
			if (*t == '|') {
				types[o++] = ',';
				types[o++] = ' ';
			} else {
				types[o++] = *t;
			}
		}
		types[o] = '\0';
		return store_fail(err, STORE_INVALID,
				  "'%s' points at several types (%s): chain through one of them as %s:Type.%.64s", ref,
				  types, ref, rest);
	}
	if (!target[0])
		return store_fail(err, STORE_INVALID, "chain from '%s' with a type: %s:Type.%.64s", ref, ref, rest);
	if (!model_resource(target) || !search_params_targets_has(def, target))
		return store_fail(err, STORE_INVALID, "'%s' does not point at %.64s", ref, target);
	/* the rest may chain again (organization.name): ssql_criterion recurses,
	 * bounded by the length of the name */
	char *colon = strchr(inner, ':');
	if (colon && !strchr(inner, '.'))
		*colon++ = '\0';
	else if (colon && colon < strchr(inner, '.'))
		*colon++ = '\0';
	else
		colon = NULL;
	struct store_search_param in = {.name = inner, .modifier = colon, .value = p->value};
	char name[160];
	snprintf(name, sizeof name, "%s%s", prefix, def->code);
	if (search_params_embedded(def)) {
		if (prefix[0]) /* only one level is indexed */
			return store_fail(err, STORE_INVALID, "cannot chain from '%s' inside '%.*s'", def->code,
					  (int)strlen(prefix) - 1, prefix);
		snprintf(name, sizeof name, "%s.", def->code);
		return criterion(target, name, &in, sql, b, drive, err);
	}
	*drive |= SSQL_DRIVE_IDX;
	ssql_add(sql, " AND r.rid IN (SELECT i.rid FROM idx i WHERE i.param = ? AND i.sys = ? AND i.val IN"
		      " (SELECT r.id FROM resource r WHERE r.type = ? AND r.deleted = 0");
	ssql_bind_str(b, name);
	ssql_bind_str(b, target);
	ssql_bind_str(b, target);
	unsigned inner_drive = 0;
	enum store_status st = criterion(target, "", &in, sql, b, &inner_drive, err);
	ssql_add(sql, "))");
	return st;
}

/* One criterion on resources of type, or (prefix "code.") on the values a
 * resource of type embedded in r gave under that prefix. */
static enum store_status criterion(const char *type, const char *prefix, const struct store_search_param *p,
				   struct ssql_buf *sql, struct ssql_binds *b, unsigned *drive, struct store_error *err)
{
	if (strchr(p->name, '.') || (p->modifier && strchr(p->modifier, '.')))
		return chain_sql(type, prefix, p, sql, b, drive, err);
	struct criterion k = {.name = p->name, .modifier = p->modifier};
	k.def = search_params_find(type, p->name, NULL);
	if (!k.def)
		return store_fail(err, STORE_INVALID, "unknown search parameter '%.64s' for %s", p->name, type);
	/* the name of its index rows; an embedded resource's _id is one of them */
	char param[160];
	snprintf(param, sizeof param, "%s%s", prefix, k.def->code);
	bool on_id = !prefix[0] && ssql_is_id_param(k.def->code);
	if (!modifier_ok(&k))
		return store_fail(err, STORE_INVALID, "modifier ':%.32s' is not supported on '%.64s'", p->modifier,
				  p->name);
	if (k.modifier && strcmp(k.modifier, "missing") == 0) {
		bool missing;
		if (strcmp(p->value, "true") == 0)
			missing = true;
		else if (strcmp(p->value, "false") == 0)
			missing = false;
		else
			return store_fail(err, STORE_INVALID, "%.64s:missing takes true or false", p->name);
		if (on_id) { /* every resource has one */
			if (missing)
				ssql_add(sql, sql->pg ? " AND false" : " AND 0");
			return STORE_OK;
		}
		/* "rid IN (…)" lets SQLite drive the search from the idx indexes */
		ssql_add(sql, missing ? " AND r.rid NOT IN" : " AND r.rid IN");
		ssql_add(sql, " (SELECT i.rid FROM idx i WHERE i.param = ?)");
		ssql_bind_str(b, param);
		return STORE_OK;
	}
	bool negate = k.modifier && strcmp(k.modifier, "not") == 0;
	if (on_id) {
		if (!negate)
			*drive |= SSQL_DRIVE_ID;
		return id_sql(p->value, negate, sql, b, err);
	}
	if (!negate)
		*drive |= SSQL_DRIVE_IDX;
	ssql_add(sql, negate ? " AND r.rid NOT IN" : " AND r.rid IN");
	ssql_add(sql, " (SELECT i.rid FROM idx i WHERE i.param = ? AND (");
	ssql_bind_str(b, param);
	const char *v = p->value;
	size_t len = strlen(v), start = 0;
	for (bool first = true;; first = false) {
		size_t comma = start + find_unescaped(v + start, len - start, ',');
		if (!first)
			ssql_add(sql, " OR ");
		enum store_status st = alternative(&k, v + start, comma - start, sql, b, err);
		if (st != STORE_OK)
			return st;
		if (comma >= len)
			break;
		start = comma + 1;
	}
	ssql_add(sql, "))");
	return STORE_OK;
}

enum store_status ssql_criterion(const char *type, const struct store_search_param *p, struct ssql_buf *sql,
				 struct ssql_binds *b, unsigned *drive, struct store_error *err)
{
	return criterion(type, "", p, sql, b, drive, err);
}

enum store_status ssql_sort(const char *type, const char *sort, struct ssql_buf *sql, struct ssql_binds *b,
			    struct store_error *err)
{
	ssql_add(sql, " ORDER BY ");
	const char *p = sort ? sort : "";
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		bool desc = n > 0 && p[0] == '-';
		char name[65];
		size_t nl = n - desc;
		if (nl == 0 || nl >= sizeof name)
			return store_fail(err, STORE_INVALID, "malformed _sort");
		memcpy(name, p + desc, nl);
		name[nl] = '\0';
		if (strcmp(name, "_id") == 0) {
			ssql_add(sql, "r.id");
		} else if (strcmp(name, "_lastUpdated") == 0) {
			ssql_add(sql, "r.last_updated"); /* fixed-width UTC text sorts as time */
		} else {
			const struct search_param_def *d = search_params_find(type, name, NULL);
			if (!d)
				return store_fail(err, STORE_INVALID, "unknown _sort parameter '%s' for %s", name,
						  type);
			/* the resource's own rows (idx_rid): the planner would
			 * otherwise scan every row of the parameter, of every
			 * type, for each resource sorted */
			bool range = d->kind == SEARCH_PARAM_DATE || d->kind == SEARCH_PARAM_NUMBER ||
				     d->kind == SEARCH_PARAM_QUANTITY;
			ssql_add(sql, desc ? (range ? "(SELECT max(hi)" : "(SELECT max(val)")
					   : (range ? "(SELECT min(lo)" : "(SELECT min(val)"));
			ssql_add(sql, sql->pg ? " FROM idx i WHERE i.rid = r.rid AND i.param = ?)"
					      : " FROM idx i INDEXED BY idx_rid WHERE i.rid = r.rid AND i.param = ?)");
			ssql_bind_str(b, d->code);
		}
		ssql_add(sql, desc ? " DESC, " : " ASC, ");
		p += n;
		if (*p == ',')
			p++;
	}
	ssql_add(sql, "r.rid ASC");
	return STORE_OK;
}

void ssql_json_elements(struct ssql_buf *sql)
{
	ssql_add(sql, sql->pg ? "(SELECT json_array_elements_text(?::json))" : "(SELECT value FROM json_each(?))");
}

enum store_status ssql_export_query(const struct store_export_query *q, struct ssql_buf *sql, struct ssql_binds *b,
				    struct store_error *err)
{
	enum store_status st = STORE_OK;
	/* the version live at the snapshot: no later version of the same
	 * resource up to it (UNIQUE(rid, version) finds those) */
	ssql_add(sql, "SELECT v.id, v.body, v.version, v.last_updated, v.sum FROM version v JOIN resource r ON r.rid ="
		      " v.rid WHERE v.type = ? AND v.seq <= ? AND v.body IS NOT NULL"
		      " AND NOT EXISTS (SELECT 1 FROM version w WHERE w.rid = v.rid AND w.version > v.version"
		      " AND w.seq <= ?)");
	ssql_bind_str(b, q->type);
	ssql_bind_int(b, q->upto_seq);
	ssql_bind_int(b, q->upto_seq);
	if (q->since && q->since[0]) {
		ssql_add(sql, " AND v.last_updated >= ?");
		ssql_bind_str(b, q->since);
	}
	if (q->patients) {
		bool any = strcmp(q->patients, "*") == 0;
		if (strcmp(q->type, "Patient") == 0) {
			if (!any) {
				ssql_add(sql, " AND v.id IN ");
				ssql_json_elements(sql);
				ssql_bind_str(b, q->patients);
			}
		} else {
			ssql_add(sql, " AND r.rid IN (SELECT i.rid FROM idx i WHERE i.param IN ('patient', 'subject',"
				      " 'beneficiary') AND i.sys = 'Patient'");
			if (!any) {
				ssql_add(sql, " AND i.val IN ");
				ssql_json_elements(sql);
				ssql_bind_str(b, q->patients);
			}
			ssql_add(sql, ")");
		}
	}
	if (q->n_filters > 0) {
		ssql_add(sql, sql->pg ? " AND (false" : " AND (0");
		for (size_t f = 0; f < q->n_filters && st == STORE_OK; f++) {
			ssql_add(sql, sql->pg ? " OR (true" : " OR (1");
			unsigned drive = 0;
			for (size_t i = 0; i < q->filters[f].n && st == STORE_OK; i++)
				st = ssql_criterion(q->type, &q->filters[f].params[i], sql, b, &drive, err);
			ssql_add(sql, ")");
		}
		ssql_add(sql, ")");
	}
	ssql_add(sql, " ORDER BY v.seq");
	if (st == STORE_OK && (sql->oom || b->oom))
		st = store_fail(err, STORE_NO_MEMORY, "out of memory");
	return st;
}

enum store_status ssql_search_query(const char *type, const struct store_search *q, bool pg, struct ssql_search *s,
				    struct store_error *err)
{
	memset(s, 0, sizeof *s);
	s->count.pg = s->page.pg = pg;
	struct ssql_buf where = {.pg = pg}, order = {.pg = pg};
	struct ssql_binds sb = {0};
	struct ssql_binds *wb = &s->count_binds;
	enum store_status st = STORE_OK;
	ssql_bind_str(wb, type);
	unsigned drive = 0;
	for (size_t i = 0; i < q->n_params && st == STORE_OK; i++)
		st = ssql_criterion(type, &q->params[i], &where, wb, &drive, err);
	if (st == STORE_OK && q->count > 0)
		st = ssql_sort(type, q->sort, &order, &sb, err); /* ORDER BY, appended below */
	if (st == STORE_OK) {
		/* Which index finds the rows on SQLite: with a positive criterion
		 * on the search index, its rid list (looked up by primary key);
		 * "+r.type" keeps the planner from scanning every resource of the
		 * type instead, which it would otherwise pick, having no
		 * statistics. With an _id criterion or none, the (type, id) index.
		 * PostgreSQL keeps statistics and plans by them. */
		const char *type_test = !pg && drive == SSQL_DRIVE_IDX ? "+r.type = ?" : "r.type = ?";
		ssql_add(&s->count, "SELECT count(*) FROM resource r WHERE ");
		ssql_add(&s->count, type_test);
		ssql_add(&s->count, " AND r.deleted = 0");
		ssql_add(&s->count, where.p ? where.p : "");
		ssql_add(&s->page, "SELECT r.id, r.version, v.last_updated, v.body, v.op, v.sum FROM resource r"
				   " JOIN version v ON v.rid = r.rid AND v.version = r.version WHERE ");
		ssql_add(&s->page, type_test);
		ssql_add(&s->page, " AND r.deleted = 0");
		ssql_add(&s->page, where.p ? where.p : "");
		ssql_add(&s->page, order.p ? order.p : "");
		ssql_add(&s->page, " LIMIT ? OFFSET ?");
		/* all binds in order: where, sort, limit, offset */
		for (size_t i = 0; i < wb->n; i++)
			ssql_bind_push(&s->page_binds, &wb->v[i]);
		for (size_t i = 0; i < sb.n; i++)
			ssql_bind_push(&s->page_binds, &sb.v[i]);
		ssql_bind_int(&s->page_binds, (int64_t)q->count);
		ssql_bind_int(&s->page_binds, (int64_t)q->offset);
		if (where.oom || order.oom || sb.oom || wb->oom || s->count.oom || s->page.oom || s->page_binds.oom)
			st = store_fail(err, STORE_NO_MEMORY, "out of memory");
	}
	free(where.p);
	free(order.p);
	ssql_binds_release(&sb);
	return st;
}

void ssql_search_release(struct ssql_search *s)
{
	free(s->count.p);
	free(s->page.p);
	ssql_binds_release(&s->count_binds);
	ssql_binds_release(&s->page_binds);
	memset(s, 0, sizeof *s);
}
