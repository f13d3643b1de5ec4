/* plugkit — the helpers the plugins share (plugkit.h). */
#include "plugkit.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char out_of_memory[] = "out of memory";

/* ------------------------------------------------------------- values */

bool pk_eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

bool pk_same(const char *a, const char *b) { return a == b || pk_eq(a, b); }

bool pk_same_ident(const struct pk_ident *a, const struct pk_ident *b)
{
	return pk_same(a->system, b->system) && pk_same(a->value, b->value);
}

/* s is one of list (NULL-terminated). */
static bool listed(const char *const *list, const char *s)
{
	while (*list && strcmp(*list, s) != 0)
		list++;
	return *list != NULL;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool pk_is_text(const char *s) { return s && *s && !is_space(*s) && !is_space(s[strlen(s) - 1]); }

bool pk_is_uri(const char *s, bool allow_del)
{
	static const char scheme[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.";
	if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
		return false;
	const unsigned char *rest = (const unsigned char *)s + strspn(s, scheme);
	if (*rest++ != ':' || !*rest)
		return false;
	while (*rest > ' ' && (*rest != 0x7f || allow_del))
		rest++;
	return *rest == '\0';
}

bool pk_npi_valid(const char *s)
{
	if (!s || strlen(s) != 10 || strspn(s, "0123456789") != 10)
		return false;
	int sum = 24; /* the digits of the prefix 80840, as the check counts them */
	for (int i = 0; i < 10; i++) {
		int d = s[i] - '0';
		if (i % 2 == 0 && i < 9) /* the 1st, 3rd, … 9th digit is doubled */
			d = d * 2 > 9 ? d * 2 - 9 : d * 2;
		sum += d;
	}
	return sum % 10 == 0;
}

int pk_digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int pk_lookup(const struct pk_code *list, size_t n, const char *code)
{
	for (size_t i = 0; code && i < n; i++)
		if (strcmp(list[i].code, code) == 0)
			return (int)i;
	return -1;
}

/* "a, b, c": the codes of list, cut at cap. */
static void code_list(const struct pk_code *list, size_t n, char *buf, size_t cap)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && used < cap; i++)
		used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", list[i].code);
}

const cJSON *pk_get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

const char *pk_str(const cJSON *o, const char *key)
{
	const cJSON *v = pk_get(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

cJSON *pk_ident_json(const struct pk_ident *id)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "system", id->system);
	cJSON_AddStringToObject(o, "value", id->value);
	return o;
}

void pk_add_strings(cJSON *o, const char *key, const char *const *v, size_t n)
{
	cJSON *a = n ? cJSON_AddArrayToObject(o, key) : NULL;
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
}

void pk_join_name(const cJSON *name, char *buf, size_t cap)
{
	size_t used = 0;
	const cJSON *g;
	buf[0] = '\0';
	cJSON_ArrayForEach(g, pk_get(name, "given"))
		if (cJSON_IsString(g) && used < cap)
			used += (size_t)snprintf(buf + used, cap - used, "%s%s", used ? " " : "", g->valuestring);
	if (pk_str(name, "family") && used < cap)
		snprintf(buf + used, cap - used, "%s%s", used ? " " : "", pk_str(name, "family"));
}

/* ------------------------------------------------------- arena arrays */

/* Room for element n of an arena array of *cap elements of size bytes. */
static void *grow(const struct cw_host *host, struct cw_ctx *ctx, void *old, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return old;
	size_t ncap = *cap ? *cap * 2 : 8;
	void *p = ncap > ((size_t)-1) / size ? NULL : host->alloc(ctx, ncap * size);
	if (p && old && n)
		memcpy(p, old, n * size);
	if (p)
		*cap = ncap;
	return p;
}

void *pk_append(const struct cw_host *host, struct cw_ctx *ctx, void *array, size_t *n, size_t *cap, size_t size)
{
	void *old;
	memcpy(&old, array, sizeof old); /* array is the address of a T * */
	char *p = grow(host, ctx, old, *n, cap, size);
	if (!p)
		return NULL;
	memcpy(array, &p, sizeof p);
	p += (*n)++ * size;
	memset(p, 0, size);
	return p;
}

bool pk_settings(const struct cw_host *host, struct cw_ctx *ctx, const char *plugin, const char *const *known,
		 bool strings)
{
	char where[128];
	const cJSON *m;
	bool ok = true;
	snprintf(where, sizeof where, "plugins.%s", plugin);
	cJSON_ArrayForEach(m, host->config(ctx)) {
		if (!listed(known, m->string)) {
			host->issue(ctx, CW_SEV_ERROR, "not-supported", where, "unknown setting '%s'", m->string);
			ok = false;
		} else if (strings && !cJSON_IsString(m)) {
			char w[256];
			snprintf(w, sizeof w, "%s.%s", where, m->string);
			host->issue(ctx, CW_SEV_ERROR, "structure", w, "must be a string");
			ok = false;
		}
	}
	return ok;
}

/* --------------------------------------------------------------- issues */

void pk_vissue(const struct cw_host *host, struct cw_ctx *ctx, enum cw_severity sev, const char *code,
	       const char *where, char *msg, size_t cap, const char *fmt, va_list ap)
{
	vsnprintf(msg, cap, fmt, ap);
	host->issue(ctx, sev, code, where, "%s", msg);
}

static size_t capped(size_t n) { return n && n < PK_TEXT_MAX ? n : PK_TEXT_MAX; }

/* ---------------------------------------------------- native documents */

void pk_bad(struct pk_reader *r, const char *code, const char *where, const char *fmt, ...)
{
	char msg[PK_TEXT_MAX];
	va_list ap;
	va_start(ap, fmt);
	pk_vissue(r->host, r->ctx, CW_SEV_ERROR, code, where && !*where ? r->root : where, msg, capped(r->message),
		  fmt, ap);
	va_end(ap);
	r->errors++;
}

const char *pk_keep(struct pk_reader *r, const char *s)
{
	char *c = r->host->copy_string(r->ctx, s);
	if (s && !c)
		r->nomem = true;
	return c;
}

/* A failed reader.is_text, reported at where. */
static void check_text(struct pk_reader *r, const char *s, const char *where)
{
	if (!r->is_text(s))
		pk_bad(r, "value", where, "%s", r->not_text);
}

int pk_check_code(struct pk_reader *r, const struct pk_code *list, size_t n, const char *s, const char *what,
		  const char *where)
{
	int i = pk_lookup(list, n, s);
	if (i < 0) {
		char codes[400];
		code_list(list, n, codes, sizeof codes);
		pk_bad(r, "code-invalid", where, "unknown %s '%s' (one of: %s)", what, s ? s : "", codes);
	}
	return i;
}

void pk_ptr(char *out, size_t cap, const char *base, const char *token)
{
	size_t n = (size_t)snprintf(out, cap, "%s/", base);
	if (n >= cap)
		return; /* the base alone fills it */
	for (; *token && n + 3 < cap; token++) {
		bool esc = *token == '~' || *token == '/';
		if (esc)
			out[n++] = '~';
		out[n++] = !esc ? *token : *token == '~' ? '0' : '1';
	}
	out[n] = '\0';
}

void pk_only_members(struct pk_reader *r, const cJSON *o, const char *base, const char *const *allowed)
{
	const cJSON *m;
	cJSON_ArrayForEach(m, o) {
		if (listed(allowed, m->string))
			continue;
		char where[PK_TEXT_MAX];
		pk_ptr(where, capped(r->where), base, m->string);
		pk_bad(r, "structure", where, "unknown member '%s'", m->string);
	}
}

const cJSON *pk_member(struct pk_reader *r, const cJSON *o, const char *key, const char *base, bool required,
		       char *where, size_t cap)
{
	pk_ptr(where, cap, base, key);
	const cJSON *v = pk_get(o, key);
	if (!v && required)
		pk_bad(r, "required", where, "'%s' is required", key);
	return v;
}

const char *pk_string_member(struct pk_reader *r, const cJSON *o, const char *key, const char *base,
			     bool required)
{
	char where[PK_TEXT_MAX];
	const cJSON *v = pk_member(r, o, key, base, required, where, capped(r->where));
	if (v && !cJSON_IsString(v))
		pk_bad(r, "structure", where, "'%s' must be a string", key);
	if (!cJSON_IsString(v))
		return NULL;
	check_text(r, v->valuestring, where);
	return pk_keep(r, v->valuestring);
}

const cJSON *pk_object_member(struct pk_reader *r, const cJSON *o, const char *key, const char *base,
			      bool required, char *where, size_t cap)
{
	const cJSON *v = pk_member(r, o, key, base, required, where, cap);
	if (!v || cJSON_IsObject(v))
		return v;
	pk_bad(r, "structure", where, "'%s' must be an object", key);
	return NULL;
}

const cJSON *pk_array_member(struct pk_reader *r, const cJSON *o, const char *key, const char *base,
			     bool required, bool allow_empty, char *where, size_t cap)
{
	const cJSON *v = pk_member(r, o, key, base, required, where, cap);
	if (!v || (cJSON_IsArray(v) && (allow_empty || v->child)))
		return v;
	pk_bad(r, "structure", where, "'%s' must be a%s array", key, allow_empty ? "n" : " non-empty");
	return NULL;
}

void *pk_alloc_for(struct pk_reader *r, const cJSON *a, size_t size)
{
	void *p = r->host->alloc(r->ctx, (size_t)cJSON_GetArraySize(a) * size);
	r->nomem |= !p;
	return p;
}

void pk_check_version(struct pk_reader *r, const cJSON *o, const char *base) { pk_record_version(r, o, base, 1); }

/* The version a cell or number literal names (1..max), or 0. */
static int version_of(const char *s, int max)
{
	if (!s || s[0] < '1' || s[0] > '9' || s[1])
		return 0;
	return s[0] - '0' <= max ? s[0] - '0' : 0;
}

static void bad_version(struct pk_reader *r, const char *where, int max)
{
	if (max > 1)
		pk_bad(r, "not-supported", where, "this plugin reads versions 1 to %d of the format", max);
	else
		pk_bad(r, "not-supported", where, "this plugin reads version 1 of the format");
}

int pk_record_version(struct pk_reader *r, const cJSON *o, const char *base, int max)
{
	char where[PK_TEXT_MAX];
	const cJSON *v = pk_member(r, o, "version", base, true, where, capped(r->where));
	int n = v && cJSON_IsNumber(v) ? version_of(v->valuestring, max) : 0;
	if (v && !n)
		bad_version(r, where, max);
	return n ? n : 1;
}

void pk_read_ident(struct pk_reader *r, const cJSON *o, const char *key, const char *base, bool required,
		   struct pk_ident *id, void (*check_system)(struct pk_reader *r, const char *s, const char *where))
{
	static const char *const allowed[] = {"system", "value", NULL};
	char where[PK_TEXT_MAX], w[PK_TEXT_MAX + 8];
	const cJSON *v = pk_object_member(r, o, key, base, required, where, capped(r->where));
	if (!v)
		return;
	pk_only_members(r, v, where, allowed);
	id->system = pk_string_member(r, v, "system", where, true);
	id->value = pk_string_member(r, v, "value", where, true);
	if (id->system) {
		pk_ptr(w, sizeof w, where, "system");
		check_system(r, id->system, w);
	}
}

bool pk_read_json(struct pk_reader *r, const char *data, size_t len, bool *array, const char *empty,
		  void (*item)(struct pk_reader *r, void *doc, const cJSON *o, const char *base), void *doc)
{
	cJSON *in = r->host->parse_json(r->ctx, data, len); /* reports its own issue */
	if (!in)
		return false;
	*array = cJSON_IsArray(in);
	if (*array && !in->child)
		pk_bad(r, "required", "", "%s", empty);
	if (!*array)
		item(r, doc, in, "");
	size_t i = 0;
	const cJSON *it;
	for (it = *array ? in->child : NULL; it; it = it->next) {
		char w[32];
		snprintf(w, sizeof w, "/%zu", i++);
		item(r, doc, it, w);
	}
	cJSON_Delete(in);
	return true;
}

enum cw_status pk_finish(struct pk_reader *r)
{
	if (r->nomem) {
		r->host->issue(r->ctx, CW_SEV_ERROR, "exception", NULL, out_of_memory);
		return CW_NOMEM;
	}
	return r->errors ? CW_INVALID : CW_OK;
}

/* --------------------------------------------------------------- CSV in */

/* One quoted cell from s into *buf; the end of the cell in the input. */
static const char *quoted_cell(const char *s, const char *end, size_t *line, char **buf, bool *malformed)
{
	for (s++;; s++) {
		if (s >= end) {
			*malformed = true; /* no closing quote */
			return s;
		}
		if (*s == '"' && !(s + 1 < end && s[1] == '"'))
			break;
		s += *s == '"'; /* a doubled quote stands for one */
		*line += *s == '\n';
		*(*buf)++ = *s;
	}
	s++;
	if (s < end && *s != ',' && *s != '\n' && *s != '\r')
		*malformed = true; /* text after the closing quote */
	while (s < end && *s != ',' && *s != '\n' && *s != '\r')
		s++;
	return s;
}

/* One record from *p (advancing it); false at the end of the input or when
 * the arena is spent. */
static bool csv_record(struct pk_reader *r, const char **p, const char *end, size_t *line, size_t slack,
		       struct pk_csv_row *row)
{
	if (*p >= end)
		return false;
	memset(row, 0, sizeof *row);
	row->line = *line;
	char *buf = r->host->alloc(r->ctx, (size_t)(end - *p) + 1 + slack);
	if (!buf) {
		r->nomem = true;
		return false;
	}
	const char *s = *p;
	for (bool more = true; more;) {
		char *start = buf;
		if (s < end && *s == '"') {
			s = quoted_cell(s, end, line, &buf, &row->malformed);
		} else {
			for (; s < end && *s != ',' && *s != '\n' && !(*s == '\r' && s + 1 < end && s[1] == '\n');
			     s++) {
				row->malformed |= *s == '"'; /* a quote inside an unquoted cell */
				*buf++ = *s;
			}
		}
		*buf++ = '\0';
		if (*start == '\'' && pk_csv_guarded(start + 1))
			start++; /* the writer's guard (pk_csv_cell) */
		if (row->n < PK_CSV_CELLS)
			row->cell[row->n] = start;
		row->n++;
		more = s < end && *s == ',';
		s += more;
	}
	s += s < end && *s == '\r';
	s += s < end && *s == '\n';
	(*line)++;
	*p = s;
	return true;
}

const char *pk_csv_at(char *buf, size_t cap, const struct pk_csv_row *row, size_t col)
{
	snprintf(buf, cap, "line %zu, column %zu", row->line, col + 1);
	return buf;
}

size_t pk_split(struct pk_reader *r, const char *cell, const char ***out)
{
	size_t n = 1;
	for (const char *c = cell; *c; c++)
		n += *c == ';';
	*out = r->host->alloc(r->ctx, n * sizeof **out);
	char *s = r->host->copy_string(r->ctx, cell);
	if (!*out || !s) {
		r->nomem = true;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		(*out)[i] = s;
		s += strcspn(s, ";");
		*s++ = '\0';
	}
	return n;
}

/* -------------------------------------------------------------- CSV out */

void pk_put(struct pk_buf *b, const char *s, size_t n)
{
	size_t need = b->n + n + 1, cap = b->cap ? b->cap : 4096;
	if (b->nomem)
		return;
	while (cap < need)
		cap *= 2;
	if (cap != b->cap) {
		char *np = b->in_arena ? b->host->alloc(b->ctx, cap) : realloc(b->p, cap);
		b->nomem = !np;
		if (b->nomem)
			return;
		if (b->in_arena && b->n)
			memcpy(np, b->p, b->n);
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

/* -?digits(.digits)? */
static bool negative_number(const char *s)
{
	if (*s++ != '-' || !isdigit((unsigned char)*s))
		return false;
	while (isdigit((unsigned char)*s))
		s++;
	if (*s == '.' && isdigit((unsigned char)s[1]))
		for (s++; isdigit((unsigned char)*s); s++)
			;
	return !*s;
}

bool pk_csv_guarded(const char *s)
{
	const char *t = s + strspn(s, "'");
	if (!*t || !strchr("=+-@\t\r", *t))
		return false;
	return t != s || !negative_number(s);
}

void pk_csv_cell(struct pk_buf *b, const char *s, bool last)
{
	s = s ? s : "";
	bool quoted = strpbrk(s, ",\"\r\n") != NULL;
	if (quoted)
		pk_put(b, "\"", 1);
	if (pk_csv_guarded(s))
		pk_put(b, "'", 1);
	if (!quoted) {
		pk_put(b, s, strlen(s));
	} else { /* a character at a time, quotes doubled */
		for (const char *q = s; *q; q++)
			pk_put(b, *q == '"' ? "\"\"" : q, *q == '"' ? 2 : 1);
		pk_put(b, "\"", 1);
	}
	pk_put(b, last ? "\n" : ",", 1);
}

void pk_csv_list(struct pk_buf *b, const char *const *items, size_t n, bool last)
{
	struct pk_buf j = {.host = b->host, .ctx = b->ctx};
	for (size_t i = 0; i < n; i++) {
		if (i)
			pk_put(&j, ";", 1);
		pk_put(&j, items[i], strlen(items[i]));
	}
	b->nomem |= j.nomem;
	pk_csv_cell(b, j.p, last);
	free(j.p);
}

bool pk_buf_finish(struct pk_buf *b, char **out, size_t *len)
{
	char *text = b->p;
	if (!b->in_arena && !b->nomem && (text = b->host->alloc(b->ctx, b->n + 1)) != NULL && b->n)
		memcpy(text, b->p, b->n); /* the arena's memory is zeroed: the NUL is there */
	if (!b->in_arena)
		free(b->p);
	b->p = NULL;
	if (b->nomem || !text)
		return false;
	*out = text;
	*len = b->n;
	return true;
}

/* ------------------------------------------------- per-person records */

struct pk_person *pk_add_person(const struct cw_host *host, struct cw_ctx *ctx, struct pk_people *people)
{
	return pk_append(host, ctx, &people->v, &people->n, &people->cap, sizeof *people->v);
}

void *pk_doc_add(const struct cw_host *host, struct cw_ctx *ctx, struct pk_doc *doc, size_t size)
{
	return pk_append(host, ctx, &doc->items, &doc->n, &doc->cap, size);
}

/* What the readers below hand each other. */
struct records {
	const struct pk_records *f;
	struct pk_doc *doc;
	size_t columns; /* CSV: the columns of the document's header */
	int version;    /* the version of the record being read */
};

static int max_version(const struct pk_records *f) { return f->max_version > 1 ? f->max_version : 1; }
static size_t max_columns(const struct pk_records *f)
{
	return f->max_columns > f->columns ? f->max_columns : f->columns;
}

/* The next item, of person p, read at where: NULL (nomem noted) when the
 * arena is spent. */
static void *add_item(struct pk_reader *r, const struct records *x, size_t p, const char *where)
{
	struct pk_item *item = pk_doc_add(r->host, r->ctx, x->doc, x->f->item_size);
	r->nomem |= !item;
	if (item) {
		item->where = pk_keep(r, where);
		item->person = p;
		item->version = x->version;
	}
	return item;
}

/* One JSON record at base. */
static void read_record(struct pk_reader *r, void *ctx, const cJSON *o, const char *base)
{
	static const char *const person_members[] = {"identifier", "name", NULL};
	struct records *x = ctx;
	const struct pk_records *f = x->f;
	const char *const members[] = {"version", "person", f->items, NULL};
	char where[PK_TEXT_MAX];
	size_t cap = capped(r->where);
	if (!cJSON_IsObject(o)) {
		pk_bad(r, "structure", *base ? base : "/", "a %s %s must be a JSON object", f->kind, f->noun);
		return;
	}
	pk_only_members(r, o, base, members);
	x->version = pk_record_version(r, o, base, max_version(f));
	struct pk_person *p = pk_add_person(r->host, r->ctx, &x->doc->people);
	r->nomem |= !p;
	if (!p)
		return;
	size_t pi = x->doc->people.n - 1;
	p->where = pk_keep(r, *base ? base : "/");
	const cJSON *person = pk_object_member(r, o, "person", base, true, where, cap), *it;
	if (person) {
		pk_only_members(r, person, where, person_members);
		pk_read_ident(r, person, "identifier", where, true, &p->id, f->check_system);
		p->name = pk_string_member(r, person, "name", where, false);
		for (size_t i = 0; i < pi && p->id.value && (p->id.system || !f->same_needs_system); i++)
			if (pk_same_ident(&x->doc->people.v[i].id, &p->id)) {
				pk_bad(r, "duplicate", where, "this person's %s was already given at %s", f->noun,
				       x->doc->people.v[i].where);
				break;
			}
	}
	const cJSON *list = pk_member(r, o, f->items, base, true, where, cap);
	if (list && !cJSON_IsArray(list)) {
		pk_bad(r, "structure", where, "'%s' must be an array", f->items);
		return;
	}
	size_t i = 0;
	cJSON_ArrayForEach(it, list) {
		char w[PK_TEXT_MAX + 32];
		snprintf(w, sizeof w, "%s/%zu", where, i++);
		void *item = add_item(r, x, pi, w);
		if (!item)
			return;
		if (!cJSON_IsObject(it)) {
			pk_bad(r, "structure", w, "%s must be an object", f->item);
			continue;
		}
		pk_only_members(r, it, w, x->version > 1 && f->item_members_v2 ? f->item_members_v2 : f->item_members);
		f->read(r, it, w, item);
	}
}

/* The person of a CSV row: the index of the one seen before, or a new one;
 * (size_t)-1 when the arena is spent. */
static size_t row_person(struct pk_reader *r, struct records *x, const struct pk_csv_row *row)
{
	const struct pk_records *f = x->f;
	const char *const *c = row->cell;
	struct pk_people *people = &x->doc->people;
	char w[96];
	for (size_t i = 0; i < x->columns; i++) {
		if (!*c[i] && !f->optional[i])
			pk_bad(r, "required", pk_csv_at(w, sizeof w, row, i), "%s is required", f->header[i]);
		else if (*c[i] && !f->lists[i])
			check_text(r, c[i], pk_csv_at(w, sizeof w, row, i));
	}
	x->version = version_of(c[0], max_version(f));
	if (*c[0] && !x->version)
		bad_version(r, pk_csv_at(w, sizeof w, row, 0), max_version(f));
	if (!x->version)
		x->version = 1;
	struct pk_ident id = {pk_opt(c[1]), pk_opt(c[2])};
	if (id.system)
		f->check_system(r, id.system, pk_csv_at(w, sizeof w, row, 1));
	for (size_t i = 0; i < people->n && id.system && id.value; i++) {
		if (!pk_same_ident(&people->v[i].id, &id))
			continue;
		if (!pk_same(people->v[i].name, pk_opt(c[3])))
			pk_bad(r, "conflict", pk_csv_at(w, sizeof w, row, 3), "person_name differs from the one at %s",
			       people->v[i].where);
		return i;
	}
	struct pk_person *p = pk_add_person(r->host, r->ctx, people);
	r->nomem |= !p;
	if (!p)
		return (size_t)-1;
	p->id = id;
	p->name = pk_opt(c[3]);
	snprintf(w, sizeof w, "line %zu", row->line);
	p->where = pk_keep(r, w);
	return people->n - 1;
}

/* One CSV row of the format's width. */
static void read_row(struct pk_reader *r, struct records *x, const struct pk_csv_row *row)
{
	char w[96];
	size_t p = row_person(r, x, row);
	if (p == (size_t)-1)
		return;
	snprintf(w, sizeof w, "line %zu", row->line);
	void *item = add_item(r, x, p, w);
	if (item)
		x->f->read_row(r, row, item);
}

/* A CSV document: the header checked, each row of the right width read. */
static void read_csv(struct pk_reader *r, const char *data, size_t len, struct records *x)
{
	const char *p = data, *end = data + len;
	if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3; /* a byte order mark */
	size_t line = 1, rows = 0;
	struct pk_csv_row row;
	char w[96];
	if (!csv_record(r, &p, end, &line, x->f->slack, &row)) {
		if (!r->nomem)
			pk_bad(r, "required", "line 1", "the header row is missing");
		return;
	}
	size_t most = max_columns(x->f);
	if (row.n < x->f->columns || row.n > most) {
		if (most > x->f->columns)
			pk_bad(r, "structure", "line 1", "the header has %zu columns, the format has %d to %d", row.n,
			       (int)x->f->columns, (int)most);
		else
			pk_bad(r, "structure", "line 1", "the header has %zu columns, the format has %d", row.n,
			       (int)x->f->columns);
	}
	x->columns = row.n < x->f->columns || row.n > most ? x->f->columns : row.n;
	for (size_t i = 0; i < row.n && i < most; i++)
		if (strcmp(row.cell[i], x->f->header[i]) != 0)
			pk_bad(r, "structure", pk_csv_at(w, sizeof w, &row, i), "header '%s' where '%s' belongs",
			       row.cell[i], x->f->header[i]);
	while (!r->nomem && csv_record(r, &p, end, &line, x->f->slack, &row)) {
		if (row.n == 1 && !*row.cell[0] && p >= end)
			break; /* nothing after the last line break */
		rows++;
		snprintf(w, sizeof w, "line %zu", row.line);
		if (row.malformed)
			pk_bad(r, "structure", w, "a quoted cell is malformed (RFC 4180)");
		if (row.n != x->columns)
			pk_bad(r, "structure", w, "%zu columns where the header has %d", row.n, (int)x->columns);
		else
			read_row(r, x, &row);
	}
	if (!rows && !r->nomem)
		pk_bad(r, "required", "line 2", "%s", x->f->no_rows);
}

static enum cw_status records_read(const struct pk_records *f, const struct cw_host *host, struct cw_ctx *ctx,
				   enum cw_media media, const char *data, size_t len, struct pk_doc *doc)
{
	struct pk_reader r = {.host = host, .ctx = ctx, .message = f->message, .where = f->where, .root = "/",
			      .is_text = f->is_text, .not_text = f->not_text};
	struct records x = {f, doc, f->columns, 1};
	char empty[128];
	snprintf(empty, sizeof empty, "an array of %ss must hold at least one %s", f->noun, f->noun);
	if (media == CW_MEDIA_CSV)
		read_csv(&r, data, len, &x);
	else if (!pk_read_json(&r, data, len, &doc->array, empty, read_record, &x))
		return CW_INVALID;
	if (!r.nomem)
		f->check(&r, doc, media == CW_MEDIA_CSV);
	return pk_finish(&r);
}

static enum cw_status records_json(const struct pk_records *f, const struct cw_host *host, struct cw_ctx *ctx,
				   struct pk_doc *doc, char **out, size_t *len)
{
	cJSON *arr = cJSON_CreateArray();
	doc->columns = f->columns;
	doc->version = f->doc_version ? f->doc_version(doc, &doc->columns) : 1;
	for (size_t p = 0; arr && p < doc->people.n; p++) {
		const struct pk_person *pp = &doc->people.v[p];
		cJSON *rec = cJSON_CreateObject(), *person = cJSON_CreateObject();
		cJSON_AddItemToArray(arr, rec);
		cJSON_AddNumberToObject(rec, "version", doc->version);
		cJSON_AddItemToObject(rec, "person", person);
		cJSON_AddItemToObject(person, "identifier", pk_ident_json(&pp->id));
		if (pp->name)
			cJSON_AddStringToObject(person, "name", pp->name);
		cJSON *list = cJSON_AddArrayToObject(rec, f->items);
		for (size_t i = 0; i < doc->n; i++)
			if (pk_doc_item(doc, f->item_size, i)->person == p)
				cJSON_AddItemToArray(list, f->item_json(doc, i));
	}
	return pk_print(host, ctx, arr, !doc->array && doc->people.n == 1, f->report_nomem, out, len);
}

static enum cw_status records_csv(const struct pk_records *f, const struct cw_host *host, struct cw_ctx *ctx,
				  struct pk_doc *doc, char **out, size_t *len)
{
	struct pk_buf b = {.host = host, .ctx = ctx};
	doc->columns = f->columns;
	doc->version = f->doc_version ? f->doc_version(doc, &doc->columns) : 1;
	char version[4];
	snprintf(version, sizeof version, "%d", doc->version);
	for (size_t p = 0; p < doc->people.n; p++) {
		bool any = false;
		for (size_t i = 0; i < doc->n && !any; i++)
			any = pk_doc_item(doc, f->item_size, i)->person == p;
		if (!any)
			host->issue(ctx, CW_SEV_WARNING, "not-supported", NULL,
				    "a person %s has no CSV row; person %zu left out", f->no_items, p + 1);
	}
	for (size_t i = 0; i < doc->columns; i++)
		pk_csv_cell(&b, f->header[i], i + 1 == doc->columns);
	for (size_t i = 0; i < doc->n; i++) {
		const struct pk_person *p = &doc->people.v[pk_doc_item(doc, f->item_size, i)->person];
		pk_csv_cell(&b, version, false);
		pk_csv_cell(&b, p->id.system, false);
		pk_csv_cell(&b, p->id.value, false);
		pk_csv_cell(&b, p->name, false);
		f->write_row(&b, doc, i);
	}
	if (pk_buf_finish(&b, out, len))
		return CW_OK;
	if (f->report_nomem)
		host->issue(ctx, CW_SEV_ERROR, "exception", NULL, out_of_memory);
	return CW_NOMEM;
}

enum cw_status pk_records_to_fhir(const struct pk_records *f, const struct cw_host *host, struct cw_ctx *ctx,
				  const char *data, size_t len, enum cw_media media, cJSON **out)
{
	struct pk_doc doc;
	memset(&doc, 0, sizeof doc);
	enum cw_status st = records_read(f, host, ctx, media, data, len, &doc);
	return st == CW_OK ? f->to_bundle(ctx, &doc, out) : st;
}

enum cw_status pk_records_from_fhir(const struct pk_records *f, const struct cw_host *host, struct cw_ctx *ctx,
				    const cJSON *bundle, enum cw_media media, char **out, size_t *len)
{
	struct pk_doc doc;
	memset(&doc, 0, sizeof doc);
	enum cw_status st = f->from_bundle(ctx, bundle, &doc);
	if (st != CW_OK)
		return st;
	return media == CW_MEDIA_CSV ? records_csv(f, host, ctx, &doc, out, len)
				     : records_json(f, host, ctx, &doc, out, len);
}

void pk_check_goal(struct pk_reader *r, const char *s, const char *where)
{
	if (!r->is_text(s) || strchr(s, ';'))
		pk_bad(r, "value", where,
		       "a goal identifier is not empty, has no ';' and no white space at either end");
}

size_t pk_read_goals(struct pk_reader *r, const cJSON *a, const char *where, const char ***goals)
{
	size_t n = 0, i = 0;
	const cJSON *it;
	*goals = pk_alloc_for(r, a, sizeof **goals);
	cJSON_ArrayForEach(it, a) {
		char w[PK_TEXT_MAX + 32];
		snprintf(w, sizeof w, "%s/%zu", where, i++);
		const char *g = cJSON_IsString(it) ? it->valuestring : NULL;
		pk_check_goal(r, g, w);
		if (*goals)
			(*goals)[n++] = pk_keep(r, g);
	}
	return n;
}

void pk_check_goals(struct pk_reader *r, const char *const *goals, size_t n, const char *item_where, int column,
		    char *where, size_t cap)
{
	for (size_t a = 0; a < n; a++)
		for (size_t b = 0; b < a; b++) {
			if (!pk_eq(goals[a], goals[b]))
				continue;
			if (column)
				snprintf(where, cap, "%s, column %d", item_where, column);
			else
				snprintf(where, cap, "%s/goals/%zu", item_where, a);
			pk_bad(r, "duplicate", where, "goal '%s' is listed twice", goals[a]);
		}
}

enum cw_status pk_print(const struct cw_host *host, struct cw_ctx *ctx, cJSON *arr, bool first, bool report,
			char **out, size_t *len)
{
	const cJSON *tree = arr && first ? arr->child : arr;
	*out = tree ? host->print_json(ctx, tree, len) : NULL;
	cJSON_Delete(arr);
	if (!*out && report)
		host->issue(ctx, CW_SEV_ERROR, "exception", NULL, out_of_memory);
	return *out ? CW_OK : CW_NOMEM;
}

/* ------------------------------------------------------------- to FHIR */

cJSON *pk_transaction(struct pk_out *o)
{
	cJSON *b = cJSON_CreateObject();
	if (!b)
		return NULL;
	cJSON_AddStringToObject(b, "resourceType", "Bundle");
	cJSON_AddStringToObject(b, "type", "transaction");
	o->entries = cJSON_AddArrayToObject(b, "entry");
	return b;
}

enum cw_status pk_close(struct pk_out *o, cJSON *bundle, cJSON **out)
{
	if (o->failed) {
		cJSON_Delete(bundle);
		return CW_INVALID;
	}
	*out = bundle;
	return CW_OK;
}

cJSON *pk_resource(const char *type, const char *id, const char *profile)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "resourceType", type);
	cJSON_AddStringToObject(r, "id", id);
	if (profile) {
		cJSON *profiles = cJSON_AddArrayToObject(cJSON_AddObjectToObject(r, "meta"), "profile");
		cJSON_AddItemToArray(profiles, cJSON_CreateString(profile));
	}
	return r;
}

void pk_add_put(struct pk_out *o, cJSON *res, const char *type, const char *id)
{
	cJSON *e = cJSON_CreateObject();
	char url[128];
	snprintf(url, sizeof url, "%s/%s", type, id);
	cJSON_AddItemToObject(e, "resource", res);
	cJSON *rq = cJSON_AddObjectToObject(e, "request");
	cJSON_AddStringToObject(rq, "method", "PUT");
	cJSON_AddStringToObject(rq, "url", url);
	cJSON_AddItemToArray(o->entries, e);
}

void pk_put_item(struct pk_out *o, cJSON *into, const char *key, cJSON *item)
{
	o->failed |= !item;
	if (item && key)
		cJSON_AddItemToObject(into, key, item);
	else if (item)
		cJSON_AddItemToArray(into, item);
}

cJSON *pk_concept(struct pk_out *o, const char *system, const char *code, const char *display)
{
	cJSON *cc = cJSON_CreateObject();
	pk_put_item(o, cJSON_AddArrayToObject(cc, "coding"), NULL, o->host->make_coding(o->ctx, system, code, display));
	return cc;
}

cJSON *pk_reference(struct pk_out *o, const char *type, const char *id)
{
	cJSON *r = o->host->make_reference(o->ctx, type, id, NULL);
	o->failed |= !r;
	return r;
}

void pk_add_text(cJSON *into, const char *key, const char *text)
{
	cJSON *t = cJSON_CreateObject();
	cJSON_AddStringToObject(t, "text", text);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(into, key), t);
}

void pk_patient(struct pk_out *o, const char *id, const char *profile, const struct pk_ident *ident,
		const char *name)
{
	cJSON *r = pk_resource("Patient", id, profile);
	pk_put_item(o, cJSON_AddArrayToObject(r, "identifier"), NULL,
		    o->host->make_identifier(o->ctx, ident->system, ident->value));
	if (name)
		pk_add_text(r, "name", name);
	pk_add_put(o, r, "Patient", id);
}

bool pk_goal_link(struct pk_out *o, cJSON *ext, const char *goal_id, const struct pk_ident *goal)
{
	cJSON *ref = pk_reference(o, "Goal", goal_id);
	if (!ref)
		return false;
	cJSON_AddStringToObject(ref, "type", "Goal");
	pk_put_item(o, ref, "identifier", o->host->make_identifier(o->ctx, goal->system, goal->value));
	cJSON *x = cJSON_CreateObject();
	cJSON_AddStringToObject(x, "url", PK_PERTAINS_TO_GOAL);
	cJSON_AddItemToObject(x, "valueReference", ref);
	cJSON_AddItemToArray(ext, x);
	return true;
}

/* ----------------------------------------------------------------- ids */

static bool host_id(struct pk_out *o, const char *ns, const char *key, char out[CW_ID_SIZE])
{
	if (o->host->make_id(o->ctx, ns, key, out) == CW_OK)
		return true;
	o->host->issue(o->ctx, CW_SEV_ERROR, "exception", NULL, "no id could be made");
	o->failed = true;
	return false;
}

bool pk_patient_id(struct pk_out *o, const struct pk_ident *person, char out[CW_ID_SIZE])
{
	return host_id(o, person->system, person->value, out);
}

bool pk_owned_id(struct pk_out *o, const char *pid, const char *key, char out[CW_ID_SIZE])
{
	return host_id(o, pid, key, out);
}

bool pk_item_id(struct pk_out *o, const char *pid, const char *type, const struct pk_ident *item,
		char out[CW_ID_SIZE])
{
	size_t n = strlen(type) + strlen(item->system) + strlen(item->value) + 3;
	char *key = o->host->alloc(o->ctx, n);
	if (!key) {
		o->host->issue(o->ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		o->failed = true;
		return false;
	}
	snprintf(key, n, "%s|%s|%s", type, item->system, item->value);
	return host_id(o, pid, key, out);
}

bool pk_first_ident(const cJSON *r, struct pk_ident *id)
{
	const cJSON *ids = pk_get(r, "identifier");
	const cJSON *first = cJSON_IsArray(ids) ? cJSON_GetArrayItem(ids, 0) : ids; /* 0..1 in some types */
	id->system = pk_str(first, "system");
	id->value = pk_str(first, "value");
	return id->system && id->value;
}

const char *pk_ref_id(const cJSON *r, const char *key, const char *type)
{
	const char *ref = pk_str(pk_get(r, key), "reference");
	size_t n = strlen(type);
	if (!ref || strncmp(ref, type, n) != 0 || ref[n] != '/' || !ref[n + 1] || strchr(ref + n + 1, '/'))
		return NULL;
	return ref + n + 1;
}

bool pk_add_move(cJSON **moved, const char *type, const char *old, const char *new_id)
{
	char key[160];
	snprintf(key, sizeof key, "%s/%s", type, old);
	if (!*moved && !(*moved = cJSON_CreateObject()))
		return false;
	if (pk_get(*moved, key))
		return true;
	return cJSON_AddStringToObject(*moved, key, new_id) != NULL;
}

/* Moves r's goal links of rule 1 to pid's Goals. */
static bool upgrade_goal_links(struct pk_out *o, cJSON *r, const char *pid)
{
	cJSON *x;
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(r, "extension")) {
		cJSON *ref = cJSON_GetObjectItemCaseSensitive(x, "valueReference");
		if (!pk_eq(pk_str(x, "url"), PK_PERTAINS_TO_GOAL) || !ref)
			continue;
		struct pk_ident goal = {pk_str(pk_get(ref, "identifier"), "system"),
					pk_str(pk_get(ref, "identifier"), "value")};
		const char *gid = pk_ref_id(x, "valueReference", "Goal");
		char old[CW_ID_SIZE], now[CW_ID_SIZE];
		if (!goal.system || !goal.value || !gid || o->host->make_id(o->ctx, goal.system, goal.value, old) != CW_OK ||
		    strcmp(old, gid) != 0)
			continue;
		char text[CW_ID_SIZE + 8];
		if (!pk_item_id(o, pid, "Goal", &goal, now))
			return false;
		snprintf(text, sizeof text, "Goal/%s", now);
		if (!cJSON_ReplaceItemInObjectCaseSensitive(ref, "reference", cJSON_CreateString(text)))
			return false;
	}
	return true;
}

enum cw_status pk_upgrade_item(const struct cw_host *host, struct cw_ctx *ctx, const cJSON *r,
			       const char *const *types, const char *only_system, cJSON **out)
{
	struct pk_out o = {.host = host, .ctx = ctx};
	const char *type = pk_str(r, "resourceType"), *id = pk_str(r, "id");
	const char *pid = pk_ref_id(r, "subject", "Patient");
	struct pk_ident ident;
	bool known = false;
	for (const char *const *t = types; *t && !known; t++)
		known = pk_eq(*t, type);
	char old[CW_ID_SIZE], now[CW_ID_SIZE];
	*out = NULL;
	if (!known || !id || !pid || !pk_first_ident(r, &ident) || (only_system && !pk_eq(ident.system, only_system)))
		return CW_OK;
	if (host->make_id(ctx, ident.system, ident.value, old) != CW_OK || strcmp(old, id) != 0)
		return CW_OK;
	if (!pk_item_id(&o, pid, type, &ident, now))
		return CW_INVALID;
	cJSON *copy = cJSON_Duplicate(r, true);
	if (!copy || !cJSON_ReplaceItemInObjectCaseSensitive(copy, "id", cJSON_CreateString(now)) ||
	    !upgrade_goal_links(&o, copy, pid)) {
		cJSON_Delete(copy);
		host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	*out = copy;
	return CW_OK;
}

/* ----------------------------------------------------------- from FHIR */

enum cw_status pk_in_open(struct pk_in *in, const cJSON *bundle, const void *blank, size_t stride)
{
	const cJSON *entries = pk_get(bundle, "entry"), *e;
	in->n = 0;
	in->stride = stride;
	in->entries = in->host->alloc(in->ctx, ((size_t)cJSON_GetArraySize(entries) + 1) * stride);
	if (!in->entries) {
		in->host->issue(in->ctx, CW_SEV_ERROR, "exception", NULL, out_of_memory);
		return CW_NOMEM;
	}
	cJSON_ArrayForEach(e, entries) {
		struct pk_entry *x = pk_entry(in, in->n++);
		memcpy(x, blank, stride);
		x->r = pk_get(e, "resource");
		x->type = pk_str(x->r, "resourceType") ? pk_str(x->r, "resourceType") : "";
		x->id = pk_str(x->r, "id");
		x->full = pk_str(e, "fullUrl");
	}
	return CW_OK;
}

void pk_warn(struct pk_in *in, const char *where, const char *fmt, ...)
{
	char msg[PK_TEXT_MAX];
	va_list ap;
	va_start(ap, fmt);
	pk_vissue(in->host, in->ctx, CW_SEV_WARNING, "not-supported", where, msg, capped(in->message), fmt, ap);
	va_end(ap);
}

const char *pk_path(struct pk_in *in, size_t k, const char *fmt, ...)
{
	char sub[PK_TEXT_MAX], buf[PK_TEXT_MAX + 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sub, capped(in->sub), fmt, ap);
	va_end(ap);
	snprintf(buf, sizeof buf, "Bundle.entry[%zu].resource%s%s", k, *sub ? "." : "", sub);
	buf[capped(in->path) - 1] = '\0'; /* cut where the plugin's buffer ends */
	char *c = in->host->copy_string(in->ctx, buf);
	in->nomem |= !c;
	return c ? c : "Bundle";
}

long pk_resolve(const struct pk_in *in, const cJSON *ref, const char *type)
{
	const char *s = pk_str(ref, "reference");
	if (!s)
		return -1;
	for (size_t i = 0; i < in->n; i++)
		if (pk_eq(pk_entry(in, i)->full, s))
			return strcmp(pk_entry(in, i)->type, type) == 0 ? (long)i : -1;
	/* "…type/id": type right before the last '/', at the start or after a '/' */
	const char *slash = strrchr(s, '/');
	size_t tl = strlen(type);
	if (!slash || (size_t)(slash - s) < tl || strncmp(slash - tl, type, tl) != 0 ||
	    (slash - tl != s && slash[-(long)tl - 1] != '/'))
		return -1;
	for (size_t i = 0; i < in->n; i++) {
		const struct pk_entry *x = pk_entry(in, i);
		if (strcmp(x->type, type) == 0 && pk_eq(x->id, slash + 1))
			return (long)i;
	}
	return -1;
}

void pk_unmapped(struct pk_in *in, size_t k, const char *const *known)
{
	static const char *const meta_known[] = {"profile", "versionId", "lastUpdated", "source", NULL};
	const struct pk_entry *x = pk_entry(in, k);
	const cJSON *m, *mm;
	cJSON_ArrayForEach(m, x->r) {
		if (listed(known, m->string) || strcmp(m->string, "resourceType") == 0 || strcmp(m->string, "id") == 0)
			continue;
		if (strcmp(m->string, "meta") != 0 || (in->meta_left_out && !cJSON_IsObject(m))) {
			pk_warn(in, pk_path(in, k, "%s", m->string), "%s.%s has no place in the %s format; left out",
				x->type, m->string, in->format);
			continue;
		}
		cJSON_ArrayForEach(mm, m) {
			if (listed(meta_known, mm->string))
				continue;
			char w[PK_TEXT_MAX];
			snprintf(w, capped(in->meta), "meta.%s", mm->string);
			pk_warn(in, pk_path(in, k, "%s", w), "%s.meta.%s is not carried by the %s format%s", x->type,
				mm->string, in->format, in->meta_left_out ? "; left out" : "");
		}
	}
}

struct pk_tally_type *pk_tally_add(struct pk_tally *t, const char *type)
{
	if (!type)
		type = "";
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->by[i].type, type) == 0) {
			t->by[i].count++;
			return &t->by[i];
		}
	if (t->n == PK_TALLY_TYPES) {
		t->more++;
		return NULL;
	}
	t->by[t->n] = (struct pk_tally_type){.type = type, .count = 1};
	return &t->by[t->n++];
}

int pk_tally_subject(const struct pk_tally_type *s, char *buf, size_t size)
{
	bool one = s->count == 1;
	if (!*s->type)
		return snprintf(buf, size, "%zu %s without a resource %s", s->count, one ? "entry" : "entries",
				one ? "is" : "are");
	return snprintf(buf, size, "%zu %s resource%s %s", s->count, s->type, one ? "" : "s", one ? "is" : "are");
}

enum cw_status pk_in_close(struct pk_in *in, const char *what, bool all)
{
	struct pk_tally t;
	memset(&t, 0, sizeof t);
	for (size_t k = 0; k < in->n && (all || !in->nomem); k++) {
		const struct pk_entry *x = pk_entry(in, k);
		struct pk_tally_type *s = x->used ? NULL : pk_tally_add(&t, x->type);
		if (s && s->count == 1)
			s->first = pk_path(in, k, "%s", "");
	}
	char subject[PK_TEXT_MAX];
	for (size_t i = 0; i < t.n; i++) {
		pk_tally_subject(&t.by[i], subject, sizeof subject);
		pk_warn(in, t.by[i].first, "%s not part of %s; left out", subject, what);
	}
	if (t.more)
		pk_warn(in, "Bundle", "%zu resources of further types are not part of %s; left out", t.more, what);
	if (in->nomem) {
		in->host->issue(in->ctx, CW_SEV_ERROR, "exception", NULL, out_of_memory);
		return CW_NOMEM;
	}
	return CW_OK;
}
