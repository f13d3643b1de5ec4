/* search_params — index values of a resource for its search parameters.
 * The table itself is generated (search_params_data.c). */
#include "fhir/search_params.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhir_helpers.h"
#include "fhir/fhirpath.h"
#include "fhir/fold.h"

static int cmp_row(const char *type, const char *code, const struct search_param_def *d)
{
	int c = strcmp(type, d->type);
	return c ? c : strcmp(code, d->code);
}

static const struct search_param_def *find_exact(const char *type, const char *code, size_t *n)
{
	size_t lo = 0, hi = search_params_count;
	while (lo < hi) { /* first row not below (type, code) */
		size_t mid = lo + (hi - lo) / 2;
		if (cmp_row(type, code, &search_params_data[mid]) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t end = lo;
	while (end < search_params_count && cmp_row(type, code, &search_params_data[end]) == 0)
		end++;
	if (end == lo)
		return NULL;
	*n = end - lo;
	return &search_params_data[lo];
}

const struct search_param_def *search_params_find(const char *type, const char *code, size_t *n)
{
	size_t k = 0;
	const struct search_param_def *d = find_exact(type, code, &k);
	if (!d)
		d = find_exact("Resource", code, &k);
	if (d && n)
		*n = k;
	return d;
}

/* --- dates ------------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	if (m <= 2)
		y -= 1;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;                                  /* 0..399 */
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0..365 */
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && leap(y) ? 29 : dim[m - 1];
}

static bool digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

#define MS_DAY INT64_C(86400000)

bool search_params_date_range(const char *text, int64_t *lo, int64_t *hi)
{
	if (!text)
		return false;
	const char *p = text;
	int y, mo = 1, d = 1, h = 0, mi = 0, s = 0, ms = 0;
	if (!digits(&p, 4, &y) || y < 1)
		return false;
	if (!*p) {
		*lo = days_from_civil(y, 1, 1) * MS_DAY;
		*hi = days_from_civil(y + 1, 1, 1) * MS_DAY;
		return true;
	}
	if (*p++ != '-' || !digits(&p, 2, &mo) || mo < 1 || mo > 12)
		return false;
	if (!*p) {
		*lo = days_from_civil(y, mo, 1) * MS_DAY;
		*hi = (mo == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, mo + 1, 1)) * MS_DAY;
		return true;
	}
	if (*p++ != '-' || !digits(&p, 2, &d) || d < 1 || d > days_in_month(y, mo))
		return false;
	if (!*p) {
		*lo = days_from_civil(y, mo, d) * MS_DAY;
		*hi = *lo + MS_DAY;
		return true;
	}
	if (*p++ != 'T' || !digits(&p, 2, &h) || h > 23 || *p++ != ':' || !digits(&p, 2, &mi) || mi > 59)
		return false;
	int64_t width = 60000;
	if (*p == ':') {
		p++;
		if (!digits(&p, 2, &s) || s > 60)
			return false;
		width = 1000;
		if (*p == '.') {
			p++;
			int n = 0;
			while (*p >= '0' && *p <= '9') {
				if (n < 3)
					ms = ms * 10 + (*p - '0');
				n++;
				p++;
			}
			if (n == 0)
				return false;
			for (int i = n; i < 3; i++)
				ms *= 10;
			width = 1;
		}
	}
	int64_t offset = 0;
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om;
		if (!digits(&p, 2, &oh) || oh > 14 || *p++ != ':' || !digits(&p, 2, &om) || om > 59)
			return false;
		offset = sign * (int64_t)(oh * 60 + om) * 60000;
	}
	if (*p)
		return false;
	*lo = days_from_civil(y, mo, d) * MS_DAY + ((int64_t)h * 3600 + mi * 60 + s) * 1000 + ms - offset;
	*hi = *lo + width;
	return true;
}

/* --- references and strings ---------------------------------------------- */

bool search_params_split_reference(const char *ref, char *type, size_t typelen, char *id, size_t idlen)
{
	if (!ref || ref[0] == '#')
		return false;
	size_t end = strlen(ref);
	const char *hist = strstr(ref, "/_history/");
	if (hist)
		end = (size_t)(hist - ref);
	/* the last two '/'-separated segments of ref[0..end) */
	size_t id_start = end;
	while (id_start > 0 && ref[id_start - 1] != '/')
		id_start--;
	if (id_start == 0 || id_start == end)
		return false;
	size_t type_end = id_start - 1, type_start = type_end;
	while (type_start > 0 && ref[type_start - 1] != '/')
		type_start--;
	size_t tl = type_end - type_start, il = end - id_start;
	if (tl == 0 || tl >= typelen || il >= idlen || tl > 64 || il > 64)
		return false;
	char t[65], i[65];
	memcpy(t, ref + type_start, tl);
	t[tl] = '\0';
	memcpy(i, ref + id_start, il);
	i[il] = '\0';
	if (!fhir_is_type_name(t) || !fhir_is_id(i))
		return false;
	memcpy(type, t, tl + 1);
	memcpy(id, i, il + 1);
	return true;
}

bool search_params_reference_absolute(const char *ref)
{
	/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" (RFC 3986) */
	if (!ref || !((ref[0] >= 'a' && ref[0] <= 'z') || (ref[0] >= 'A' && ref[0] <= 'Z')))
		return false;
	size_t n = strspn(ref, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
	return ref[n] == ':';
}

char *search_params_normalize(const char *s) { return fold_text(s); }

bool search_params_targets_has(const struct search_param_def *def, const char *type)
{
	if (!def->targets)
		return true;
	size_t n = strlen(type);
	for (const char *p = def->targets; *p;) {
		size_t k = strcspn(p, "|");
		if (k == n && memcmp(p, type, n) == 0)
			return true;
		p += k + (p[k] == '|');
	}
	return false;
}

size_t search_params_targets_count(const struct search_param_def *def)
{
	if (!def->targets)
		return 0;
	size_t n = 1;
	for (const char *p = def->targets; *p; p++)
		n += *p == '|';
	return n;
}

/* --- extraction ------------------------------------------------------------ */

struct walk {
	const struct search_param_def *def;
	const char *param; /* the name the values are emitted under (static) */
	int (*emit)(void *ctx, const struct search_index_value *v);
	void *ctx;
};

static int emit(struct walk *w, const char *sys, const char *val, int64_t lo, int64_t hi)
{
	struct search_index_value v = {
		.param = w->param, .kind = w->def->kind, .sys = sys, .val = val, .lo = lo, .hi = hi,
	};
	return w->emit(w->ctx, &v);
}

static int emit_num(struct walk *w, const char *sys, const char *val, double lo, double hi)
{
	struct search_index_value v = {
		.param = w->param, .kind = w->def->kind, .sys = sys, .val = val, .num_lo = lo, .num_hi = hi,
	};
	return w->emit(w->ctx, &v);
}

const char *search_params_kind_name(enum search_param_kind kind)
{
	switch (kind) {
	case SEARCH_PARAM_TOKEN:
		return "token";
	case SEARCH_PARAM_REFERENCE:
		return "reference";
	case SEARCH_PARAM_DATE:
		return "date";
	case SEARCH_PARAM_STRING:
		return "string";
	case SEARCH_PARAM_NUMBER:
		return "number";
	case SEARCH_PARAM_QUANTITY:
		return "quantity";
	case SEARCH_PARAM_URI:
		return "uri";
	}
	return "special";
}

static const char *str_member(const cJSON *o, const char *name)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(c) && c->valuestring[0] ? c->valuestring : NULL;
}

static int visit_token(struct walk *w, const cJSON *v)
{
	if (cJSON_IsString(v))
		return v->valuestring[0] ? emit(w, NULL, v->valuestring, 0, 0) : 0;
	if (cJSON_IsBool(v))
		return emit(w, NULL, cJSON_IsTrue(v) ? "true" : "false", 0, 0);
	if (!cJSON_IsObject(v))
		return 0;
	const cJSON *coding = cJSON_GetObjectItemCaseSensitive(v, "coding");
	if (cJSON_IsArray(coding)) {
		const cJSON *c;
		cJSON_ArrayForEach(c, coding)
		{
			int rc = cJSON_IsObject(c) ? visit_token(w, c) : 0;
			if (rc)
				return rc;
		}
		return 0;
	}
	const char *code = str_member(v, "code");
	if (!code)
		code = str_member(v, "value"); /* Identifier, ContactPoint */
	return code ? emit(w, str_member(v, "system"), code, 0, 0) : 0;
}

static int visit_reference(struct walk *w, const cJSON *v)
{
	const char *ref = cJSON_IsString(v) ? v->valuestring : str_member(v, "reference");
	if (!ref || !ref[0])
		return 0;
	char type[65], id[65];
	bool split = search_params_split_reference(ref, type, sizeof type, id, sizeof id);
	if (w->def->target && (!split || strcmp(type, w->def->target) != 0))
		return 0;
	/* relative: a local resource; absolute: another server's, matched exactly */
	if (split && !search_params_reference_absolute(ref))
		return emit(w, type, id, 0, 0);
	return emit(w, NULL, ref, 0, 0);
}

static int emit_date(struct walk *w, const char *text)
{
	int64_t lo, hi;
	return search_params_date_range(text, &lo, &hi) ? emit(w, NULL, NULL, lo, hi) : 0;
}

static int visit_date(struct walk *w, const cJSON *v)
{
	if (cJSON_IsString(v))
		return emit_date(w, v->valuestring);
	if (!cJSON_IsObject(v))
		return 0;
	const char *start = str_member(v, "start"), *end = str_member(v, "end");
	if (start || end) { /* Period */
		int64_t lo = INT64_MIN, hi = INT64_MAX, a, b;
		if (start && search_params_date_range(start, &a, &b))
			lo = a;
		if (end && search_params_date_range(end, &a, &b))
			hi = b;
		return emit(w, NULL, NULL, lo, hi);
	}
	const cJSON *events = cJSON_GetObjectItemCaseSensitive(v, "event"), *e;
	if (cJSON_IsArray(events)) { /* Timing */
		cJSON_ArrayForEach(e, events)
		{
			int rc = cJSON_IsString(e) ? emit_date(w, e->valuestring) : 0;
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int emit_string(struct walk *w, const char *s)
{
	if (!s || !s[0])
		return 0;
	char *norm = search_params_normalize(s);
	if (!norm)
		return -1;
	int rc = emit(w, s, norm, 0, 0);
	free(norm);
	return rc;
}

static int visit_string(struct walk *w, const cJSON *v)
{
	if (cJSON_IsString(v))
		return emit_string(w, v->valuestring);
	if (!cJSON_IsObject(v))
		return 0;
	/* HumanName and Address parts */
	static const char *const parts[] = {"text", "family", "given", "prefix", "suffix", "line",
					    "city", "district", "state", "postalCode", "country"};
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(v, parts[i]), *e;
		int rc = 0;
		if (cJSON_IsString(p)) {
			rc = emit_string(w, p->valuestring);
		} else if (cJSON_IsArray(p)) {
			cJSON_ArrayForEach(e, p)
			{
				if (cJSON_IsString(e) && (rc = emit_string(w, e->valuestring)) != 0)
					break;
			}
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* The value of a Quantity-shaped object, if it has a finite one. */
static bool quantity_value(const cJSON *q, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(q, "value");
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return false;
	*out = v->valuedouble;
	return true;
}

/* One Quantity (or a Range from low to high) with its units, or a plain
 * number for number parameters. */
static int visit_numeric(struct walk *w, const cJSON *v)
{
	bool quantity = w->def->kind == SEARCH_PARAM_QUANTITY;
	if (cJSON_IsNumber(v))
		return !quantity && isfinite(v->valuedouble) ? emit_num(w, NULL, NULL, v->valuedouble, v->valuedouble)
							     : 0;
	if (!cJSON_IsObject(v))
		return 0;
	const cJSON *unit_of = v;
	double lo, hi;
	if (quantity_value(v, &lo)) {
		hi = lo;
	} else {
		/* Range: either end may be open */
		const cJSON *low = cJSON_GetObjectItemCaseSensitive(v, "low"),
			    *high = cJSON_GetObjectItemCaseSensitive(v, "high");
		bool has_lo = quantity_value(low, &lo), has_hi = quantity_value(high, &hi);
		if (!has_lo && !has_hi)
			return 0;
		if (!has_lo)
			lo = -HUGE_VAL;
		if (!has_hi)
			hi = HUGE_VAL;
		unit_of = has_lo ? low : high;
	}
	if (!quantity)
		return emit_num(w, NULL, NULL, lo, hi);
	const char *code = str_member(unit_of, "code"), *unit = str_member(unit_of, "unit");
	int rc = emit_num(w, str_member(unit_of, "system"), code, lo, hi);
	if (!rc && unit && (!code || strcmp(unit, code) != 0))
		rc = emit_num(w, NULL, unit, lo, hi);
	return rc;
}

static int visit(struct walk *w, const cJSON *v)
{
	switch (w->def->kind) {
	case SEARCH_PARAM_NUMBER:
	case SEARCH_PARAM_QUANTITY:
		return visit_numeric(w, v);
	case SEARCH_PARAM_URI:
		return cJSON_IsString(v) && v->valuestring[0] ? emit(w, NULL, v->valuestring, 0, 0) : 0;
	case SEARCH_PARAM_TOKEN:
		return visit_token(w, v);
	case SEARCH_PARAM_REFERENCE:
		return visit_reference(w, v);
	case SEARCH_PARAM_DATE:
		return visit_date(w, v);
	case SEARCH_PARAM_STRING:
		return visit_string(w, v);
	}
	return 0;
}

/* filter "name=value": node is an object whose member name is the string value. */
static bool filter_ok(const char *filter, const cJSON *node)
{
	if (!filter)
		return true;
	const char *eq = strchr(filter, '=');
	if (!eq || !cJSON_IsObject(node))
		return false;
	for (const cJSON *c = node->child; c; c = c->next)
		if (c->string && strlen(c->string) == (size_t)(eq - filter) &&
		    memcmp(c->string, filter, (size_t)(eq - filter)) == 0)
			return cJSON_IsString(c) && strcmp(c->valuestring, eq + 1) == 0;
	return false;
}

/* Follows path (depth is a handful of segments) through objects, fanning out
 * over arrays at every level. */
static int walk_path(struct walk *w, const cJSON *node, const char *path)
{
	if (cJSON_IsArray(node)) {
		const cJSON *item;
		cJSON_ArrayForEach(item, node)
		{
			int rc = walk_path(w, item, path);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (!*path)
		return filter_ok(w->def->filter, node) ? visit(w, node) : 0;
	if (!cJSON_IsObject(node))
		return 0;
	const char *dot = strchr(path, '.');
	size_t seglen = dot ? (size_t)(dot - path) : strlen(path);
	const char *next = dot ? dot + 1 : "";
	bool choice = seglen > 3 && memcmp(path + seglen - 3, "[x]", 3) == 0;
	size_t namelen = choice ? seglen - 3 : seglen;
	for (const cJSON *c = node->child; c; c = c->next) {
		if (!c->string || strncmp(c->string, path, namelen) != 0)
			continue;
		char after = c->string[namelen];
		if (choice ? !(after >= 'A' && after <= 'Z') : after != '\0')
			continue;
		int rc = walk_path(w, c, next);
		if (rc)
			return rc;
	}
	return 0;
}

/* --- branches evaluated with FHIRPath ------------------------------------------ */

const char *search_params_embedded(const struct search_param_def *def)
{
	return !def->path && def->expr ? def->target : NULL;
}

/* Each row's compiled expression (NULL for rows with a path, and where the
 * engine refuses one), compiled once on first use. */
static const struct fp_expr **row_exprs;
static pthread_once_t row_exprs_once = PTHREAD_ONCE_INIT;

/* For each row embedding a resource (search_params_embedded; Bundle has two),
 * the names its values are emitted under, by row of the table: "code.param"
 * for the rows of the embedded type and of "Resource", NULL for the others.
 * Built with row_exprs; never freed (static for the process). */
#define EMBED_MAX 8
static struct embed {
	size_t row;
	char **names;
} embeds[EMBED_MAX];
static size_t nembeds;

static char **embed_names_build(const struct search_param_def *e)
{
	char **names = calloc(search_params_count ? search_params_count : 1, sizeof *names);
	for (size_t j = 0; names && j < search_params_count; j++) {
		const struct search_param_def *d = &search_params_data[j];
		if (strcmp(d->type, e->target) != 0 && strcmp(d->type, "Resource") != 0)
			continue;
		size_t n = strlen(e->code) + 1 + strlen(d->code) + 1;
		if (!(names[j] = malloc(n))) {
			for (size_t k = 0; k < j; k++)
				free(names[k]);
			free(names);
			return NULL;
		}
		snprintf(names[j], n, "%s.%s", e->code, d->code);
	}
	return names;
}

static void compile_rows(void)
{
	row_exprs = calloc(search_params_count ? search_params_count : 1, sizeof *row_exprs);
	for (size_t i = 0; row_exprs && i < search_params_count; i++) {
		struct fp_error err;
		if (search_params_data[i].expr)
			row_exprs[i] = fp_cached(search_params_data[i].expr, &err);
		if (search_params_embedded(&search_params_data[i]) && nembeds < EMBED_MAX)
			embeds[nembeds++] = (struct embed){i, embed_names_build(&search_params_data[i])};
	}
}

/* The names row i's embedded values are emitted under; NULL on OOM. */
static char *const *embed_names(size_t i)
{
	for (size_t k = 0; k < nembeds; k++)
		if (embeds[k].row == i)
			return embeds[k].names;
	return NULL;
}

size_t search_params_fhirpath_rows(size_t *n)
{
	pthread_once(&row_exprs_once, compile_rows);
	size_t rows = 0, ok = 0;
	for (size_t i = 0; i < search_params_count; i++) {
		if (!search_params_data[i].expr)
			continue;
		rows++;
		ok += row_exprs && row_exprs[i];
	}
	if (n)
		*n = rows;
	return ok;
}

/* One item of a FHIRPath result as the element visit() expects: a node's
 * JSON value, or a primitive result (a Boolean, a String, a number, a date)
 * as a JSON value of its own in *tmp. NULL when it has none. */
static const cJSON *item_json(struct arena *a, const struct fp_item *it, cJSON *tmp)
{
	memset(tmp, 0, sizeof *tmp);
	switch (it->kind) {
	case FP_NODE:
		return it->u.node.j;
	case FP_BOOLEAN:
		tmp->type = it->u.b ? cJSON_True : cJSON_False;
		return tmp;
	case FP_INTEGER:
	case FP_DECIMAL: {
		const char *text = fp_item_string(a, it);
		if (!text)
			return NULL;
		tmp->type = cJSON_Number;
		tmp->valuedouble = strtod(text, NULL);
		return tmp;
	}
	case FP_STRING:
	case FP_DATE:
	case FP_DATETIME: {
		char *text = it->kind == FP_STRING ? arena_strndup(a, it->u.str.s, it->u.str.len)
						   : (char *)fp_item_string(a, it);
		if (!text)
			return NULL;
		tmp->type = cJSON_String;
		tmp->valuestring = text;
		return tmp;
	}
	default:
		return NULL;
	}
}

/* The values of row d's branch evaluated with FHIRPath over resource. */
static int extract_fhirpath(struct walk *w, const struct fp_expr *e, const cJSON *resource, struct arena *a)
{
	struct fp_env env = {.resource = resource};
	struct fp_coll out = {0};
	struct fp_error err;
	arena_reset(a);
	if (fp_eval(e, &env, a, &out, &err) != 0)
		return err.code == FP_ERR_NOMEM ? -1 : 0;
	for (size_t i = 0; i < out.n; i++) {
		cJSON tmp;
		const cJSON *v = item_json(a, &out.v[i], &tmp);
		int rc = v ? visit(w, v) : 0;
		if (rc)
			return rc;
	}
	return 0;
}

static int extract_rows(const char *type, const cJSON *resource,
			int (*emitfn)(void *ctx, const struct search_index_value *v), void *ctx, char *const *names);

/* Row w->def (index i) embeds the resource its expression yields: when that
 * is a resource of the row's target type, its reference value (val NULL when
 * it has no id: :missing still sees it) and its own values under the row's
 * names. */
static int extract_embedded(struct walk *w, size_t i, const cJSON *resource, struct arena *a)
{
	struct fp_env env = {.resource = resource};
	struct fp_coll out = {0};
	struct fp_error err;
	arena_reset(a);
	if (fp_eval(row_exprs[i], &env, a, &out, &err) != 0)
		return err.code == FP_ERR_NOMEM ? -1 : 0;
	if (out.n == 0 || out.v[0].kind != FP_NODE)
		return 0;
	const cJSON *res = out.v[0].u.node.j;
	const char *rt = cJSON_IsObject(res) ? str_member(res, "resourceType") : NULL;
	if (!rt || strcmp(rt, w->def->target) != 0)
		return 0;
	char *const *names = embed_names(i);
	if (!names)
		return -1;
	int rc = emit(w, w->def->target, str_member(res, "id"), 0, 0);
	if (!rc)
		rc = extract_rows(w->def->target, res, w->emit, w->ctx, names);
	if (!rc)
		rc = extract_rows("Resource", res, w->emit, w->ctx, names);
	return rc;
}

/* The values of type's rows over resource, each under its own code, or under
 * names[row] (an embedded resource's; rows embedding again are skipped). */
static int extract_rows(const char *type, const cJSON *resource,
			int (*emitfn)(void *ctx, const struct search_index_value *v), void *ctx, char *const *names)
{
	size_t lo = 0, hi = search_params_count;
	while (lo < hi) { /* the type's first row */
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(search_params_data[mid].type, type) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	struct arena a; /* for FHIRPath branches: costs nothing until one is evaluated */
	arena_init(&a, 16u << 20);
	int rc = 0;
	for (size_t i = lo; !rc && i < search_params_count && strcmp(search_params_data[i].type, type) == 0; i++) {
		const struct search_param_def *d = &search_params_data[i];
		struct walk w = {.def = d, .param = names ? names[i] : d->code, .emit = emitfn, .ctx = ctx};
		if (!w.param)
			continue;
		if (d->path) {
			rc = walk_path(&w, resource, d->path);
			continue;
		}
		pthread_once(&row_exprs_once, compile_rows);
		if (!row_exprs || !row_exprs[i])
			continue;
		if (search_params_embedded(d))
			rc = names ? 0 : extract_embedded(&w, i, resource, &a);
		else
			rc = extract_fhirpath(&w, row_exprs[i], resource, &a);
	}
	arena_release(&a);
	return rc;
}

int search_params_extract(const char *type, const cJSON *resource,
			  int (*emitfn)(void *ctx, const struct search_index_value *v), void *ctx)
{
	if (!cJSON_IsObject(resource))
		return 0;
	int rc = extract_rows(type, resource, emitfn, ctx, NULL);
	return rc ? rc : extract_rows("Resource", resource, emitfn, ctx, NULL);
}
