/* st_native — the strengths native documents: JSON and CSV read into a
 * struct st_doc with every problem reported (a JSON pointer, or "line N,
 * column M"), and a struct st_doc written back as JSON or CSV. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strengths.h"

struct rd {
	struct cw_ctx *ctx;
	size_t errors;
	bool nomem;
};

static void bad(struct rd *r, const char *code, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void bad(struct rd *r, const char *code, const char *where, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	st_host->issue(r->ctx, CW_SEV_ERROR, code, where, "%s", msg);
	r->errors++;
}

static const char *keep(struct rd *r, const char *s)
{
	char *c = st_host->copy_string(r->ctx, s);
	if (s && !c)
		r->nomem = true;
	return c;
}

static bool same(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

/* ---------------------------------------------------- shared checks */

static void check_text(struct rd *r, const char *s, const char *where)
{
	if (!st_is_text(s))
		bad(r, "value", where,
		    "must not be empty nor start or end with white space, and must be UTF-8 without control characters");
}

static void check_system(struct rd *r, const char *s, const char *where)
{
	if (!st_is_uri(s))
		bad(r, "value", where, "an identifier system must be an absolute URI (UTF-8, no white space)");
}

static void check_date(struct rd *r, const char *s, const char *where)
{
	if (!st_is_date(r->ctx, s))
		bad(r, "value", where, "not a date YYYY-MM-DD (a real calendar date, years 1000 to 9999)");
}

static void check_goal(struct rd *r, const char *s, const char *where)
{
	if (!st_is_text(s) || strchr(s, ';'))
		bad(r, "value", where, "a goal identifier is not empty, has no ';' and no white space at either end");
}

static int check_code(struct rd *r, const struct st_code *list, size_t n, const char *s, const char *what,
		      const char *where)
{
	int i = st_lookup(list, n, s);
	if (i < 0) {
		char codes[300];
		size_t used = 0;
		codes[0] = '\0';
		for (size_t k = 0; k < n && used < sizeof codes; k++)
			used += (size_t)snprintf(codes + used, sizeof codes - used, "%s%s", k ? ", " : "", list[k].code);
		bad(r, "code-invalid", where, "unknown %s '%s' (one of: %s)", what, s ? s : "", codes);
	}
	return i;
}

/* Self is the person: a name or an identifier would describe someone else. */
static void check_self(struct rd *r, const struct st_strength *s, const char *where)
{
	if (s->role == ST_SELF && (s->by_name || s->by_id.system || s->by_id.value))
		bad(r, "value", where, "a strength the person identified (self) names nobody else: no name or identifier");
}

/* Across the document: strength ids unique, no goal twice in a strength. */
static void check_doc(struct rd *r, const struct st_doc *doc, bool csv)
{
	char where[200];
	for (size_t i = 0; i < doc->n_items; i++) {
		const struct st_strength *s = &doc->items[i];
		for (size_t j = 0; j < i && s->id; j++) {
			const struct st_strength *o = &doc->items[j];
			if (o->id && strcmp(s->id, o->id) == 0) {
				snprintf(where, sizeof where, csv ? "%s, column 5" : "%s/id", s->where);
				bad(r, "duplicate", where, "strength '%s' was already given at %s", s->id, o->where);
				break;
			}
		}
		for (size_t a = 0; a < s->n_goals; a++)
			for (size_t b = 0; b < a; b++)
				if (s->goals[a] && s->goals[b] && strcmp(s->goals[a], s->goals[b]) == 0) {
					snprintf(where, sizeof where, csv ? "%s, column 13" : "%s/goals/%zu", s->where, a);
					bad(r, "duplicate", where, "goal '%s' is listed twice", s->goals[a]);
				}
	}
}

static bool same_ident(const struct st_ident *a, const struct st_ident *b)
{
	return same(a->system, b->system) && same(a->value, b->value);
}

/* ----------------------------------------------------------- JSON in */

/* base + "/" + token, the token escaped as RFC 6901 says. */
static void ptr(char *out, size_t cap, const char *base, const char *token)
{
	size_t n = (size_t)snprintf(out, cap, "%s/", base);
	for (const char *p = token; *p && n + 3 < cap; p++) {
		if (*p == '~' || *p == '/') {
			out[n++] = '~';
			out[n++] = *p == '~' ? '0' : '1';
		} else {
			out[n++] = *p;
		}
	}
	out[n < cap ? n : cap - 1] = '\0';
}

static void only_members(struct rd *r, const cJSON *o, const char *base, const char *const *allowed)
{
	const cJSON *m;
	cJSON_ArrayForEach(m, o) {
		bool known = false;
		for (const char *const *a = allowed; *a && !known; a++)
			known = strcmp(*a, m->string) == 0;
		if (!known) {
			char where[300];
			ptr(where, sizeof where, base, m->string);
			bad(r, "structure", where, "unknown member '%s'", m->string);
		}
	}
}

static const cJSON *member(struct rd *r, const cJSON *o, const char *key, const char *base, bool required,
			   char *where, size_t cap)
{
	ptr(where, cap, base, key);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!v && required)
		bad(r, "required", where, "'%s' is required", key);
	return v;
}

static const char *string_member(struct rd *r, const cJSON *o, const char *key, const char *base, bool required)
{
	char where[300];
	const cJSON *v = member(r, o, key, base, required, where, sizeof where);
	if (!v)
		return NULL;
	if (!cJSON_IsString(v)) {
		bad(r, "structure", where, "'%s' must be a string", key);
		return NULL;
	}
	check_text(r, v->valuestring, where);
	return keep(r, v->valuestring);
}

static const cJSON *object_member(struct rd *r, const cJSON *o, const char *key, const char *base, bool required,
				  char *where, size_t cap)
{
	const cJSON *v = member(r, o, key, base, required, where, cap);
	if (v && !cJSON_IsObject(v)) {
		bad(r, "structure", where, "'%s' must be an object", key);
		return NULL;
	}
	return v;
}

static void read_ident(struct rd *r, const cJSON *o, const char *key, const char *base, bool required,
		       struct st_ident *id)
{
	static const char *const allowed[] = {"system", "value", NULL};
	char where[300];
	const cJSON *v = object_member(r, o, key, base, required, where, sizeof where);
	if (!v)
		return;
	only_members(r, v, where, allowed);
	id->system = string_member(r, v, "system", where, true);
	id->value = string_member(r, v, "value", where, true);
	if (id->system) {
		char w[320];
		ptr(w, sizeof w, where, "system");
		check_system(r, id->system, w);
	}
}

static void read_identified_by(struct rd *r, const cJSON *o, const char *base, struct st_strength *s)
{
	static const char *const allowed[] = {"role", "name", "identifier", NULL};
	char where[300];
	const cJSON *v = object_member(r, o, "identified_by", base, true, where, sizeof where);
	if (!v)
		return;
	only_members(r, v, where, allowed);
	const char *role = string_member(r, v, "role", where, true);
	if (role) {
		char w[320];
		ptr(w, sizeof w, where, "role");
		int i = check_code(r, st_roles, ST_ROLE_COUNT, role, "role", w);
		s->role = i < 0 ? ST_SELF : (enum st_role)i;
		if (i < 0)
			return; /* nothing to compare a name with */
	}
	s->by_name = string_member(r, v, "name", where, false);
	read_ident(r, v, "identifier", where, false, &s->by_id);
	if (role)
		check_self(r, s, where);
}

static void read_strength(struct rd *r, const cJSON *o, const char *base, struct st_strength *s)
{
	static const char *const allowed[] = {"id", "category", "description", "identified_by", "date", "goals",
					      NULL};
	char where[300];
	s->where = keep(r, base);
	if (!cJSON_IsObject(o)) {
		bad(r, "structure", base, "a strength must be an object");
		return;
	}
	only_members(r, o, base, allowed);
	s->id = string_member(r, o, "id", base, true);
	const char *cat = string_member(r, o, "category", base, true);
	if (cat) {
		ptr(where, sizeof where, base, "category");
		s->category = check_code(r, st_categories, st_category_count, cat, "category", where);
	}
	s->description = string_member(r, o, "description", base, true);
	read_identified_by(r, o, base, s);
	if ((s->date = string_member(r, o, "date", base, true))) {
		ptr(where, sizeof where, base, "date");
		check_date(r, s->date, where);
	}
	const cJSON *g = member(r, o, "goals", base, false, where, sizeof where), *it;
	if (g && (!cJSON_IsArray(g) || !g->child)) {
		bad(r, "structure", where, "'goals' must be a non-empty array (leave it out when there are none)");
		return;
	}
	if (g) {
		s->goals = st_host->alloc(r->ctx, (size_t)cJSON_GetArraySize(g) * sizeof *s->goals);
		r->nomem |= !s->goals;
		size_t i = 0;
		cJSON_ArrayForEach(it, g) {
			char w[320];
			snprintf(w, sizeof w, "%s/%zu", where, i++);
			const char *goal = cJSON_IsString(it) ? it->valuestring : NULL;
			check_goal(r, goal, w);
			if (s->goals)
				s->goals[s->n_goals++] = keep(r, goal);
		}
	}
}

static void read_record(struct rd *r, struct st_doc *doc, const cJSON *o, const char *base)
{
	static const char *const allowed[] = {"version", "person", "strengths", NULL};
	static const char *const person_allowed[] = {"identifier", "name", NULL};
	char where[300];
	if (!cJSON_IsObject(o)) {
		bad(r, "structure", *base ? base : "/", "a strengths record must be a JSON object");
		return;
	}
	only_members(r, o, base, allowed);
	const cJSON *v = member(r, o, "version", base, true, where, sizeof where);
	if (v && !(cJSON_IsNumber(v) && v->valuestring && strcmp(v->valuestring, "1") == 0))
		bad(r, "not-supported", where, "this plugin reads version 1 of the format");
	struct st_person *p = st_add_person(r->ctx, doc);
	if (!p) {
		r->nomem = true;
		return;
	}
	size_t pi = doc->n_people - 1;
	p->where = keep(r, *base ? base : "/");
	const cJSON *person = object_member(r, o, "person", base, true, where, sizeof where);
	if (person) {
		only_members(r, person, where, person_allowed);
		read_ident(r, person, "identifier", where, true, &p->id);
		p->name = string_member(r, person, "name", where, false);
		for (size_t i = 0; i < pi && p->id.value && p->id.system; i++)
			if (same_ident(&doc->people[i].id, &p->id)) {
				bad(r, "duplicate", where, "this person's record was already given at %s",
				    doc->people[i].where);
				break;
			}
	}
	v = member(r, o, "strengths", base, true, where, sizeof where);
	if (v && !cJSON_IsArray(v)) {
		bad(r, "structure", where, "'strengths' must be an array");
		return;
	}
	size_t i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, v) {
		char w[320];
		snprintf(w, sizeof w, "%s/%zu", where, i++);
		struct st_strength *s = st_add_strength(r->ctx, doc);
		if (!s) {
			r->nomem = true;
			return;
		}
		s->person = pi;
		read_strength(r, it, w, s);
	}
}

static enum cw_status finish(struct rd *r, const struct st_doc *doc, bool csv)
{
	if (!r->nomem)
		check_doc(r, doc, csv);
	if (r->nomem) {
		st_host->issue(r->ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	return r->errors ? CW_INVALID : CW_OK;
}

enum cw_status st_read_json(struct cw_ctx *ctx, const char *data, size_t len, struct st_doc *doc)
{
	cJSON *in = st_host->parse_json(ctx, data, len); /* reports its own issue */
	if (!in)
		return CW_INVALID;
	struct rd r = {.ctx = ctx};
	if (cJSON_IsArray(in)) {
		doc->array = true;
		if (!in->child)
			bad(&r, "required", "/", "an array of records must hold at least one record");
		size_t i = 0;
		const cJSON *it;
		cJSON_ArrayForEach(it, in) {
			char w[32];
			snprintf(w, sizeof w, "/%zu", i++);
			read_record(&r, doc, it, w);
		}
	} else {
		read_record(&r, doc, in, "");
	}
	cJSON_Delete(in);
	return finish(&r, doc, false);
}

/* ------------------------------------------------------------ CSV in */

struct row {
	size_t line; /* the physical line the record starts on */
	size_t n;    /* cells seen (more than ST_CSV_COLUMNS are counted only) */
	const char *cell[ST_CSV_COLUMNS];
	bool malformed;
};

/* One RFC 4180 record from *p; cells copied into the arena. False at the
 * end of the input (or when memory ran out). */
static bool next_record(struct rd *r, const char **p, const char *end, size_t *line, struct row *row)
{
	if (*p >= end)
		return false;
	memset(row, 0, sizeof *row);
	row->line = *line;
	char *buf = st_host->alloc(r->ctx, (size_t)(end - *p) + ST_CSV_COLUMNS + 1);
	if (!buf) {
		r->nomem = true;
		return false;
	}
	const char *s = *p;
	for (;;) {
		char *start = buf;
		if (s < end && *s == '"') {
			s++;
			for (;;) {
				if (s >= end) {
					row->malformed = true; /* no closing quote */
					break;
				}
				if (*s == '"') {
					if (s + 1 < end && s[1] == '"') {
						*buf++ = '"';
						s += 2;
						continue;
					}
					s++;
					break;
				}
				if (*s == '\n')
					(*line)++;
				*buf++ = *s++;
			}
			if (s < end && *s != ',' && *s != '\n' && *s != '\r')
				row->malformed = true; /* text after the closing quote */
			while (s < end && *s != ',' && *s != '\n' && *s != '\r')
				s++;
		} else {
			while (s < end && *s != ',' && *s != '\n' && !(*s == '\r' && s + 1 < end && s[1] == '\n')) {
				if (*s == '"')
					row->malformed = true; /* a quote inside an unquoted cell */
				*buf++ = *s++;
			}
		}
		*buf++ = '\0';
		if (row->n < ST_CSV_COLUMNS)
			row->cell[row->n] = start;
		row->n++;
		if (s < end && *s == ',') {
			s++;
			continue;
		}
		if (s < end && *s == '\r')
			s++;
		if (s < end && *s == '\n')
			s++;
		(*line)++;
		break;
	}
	*p = s;
	return true;
}

static const char *at(char *buf, size_t cap, const struct row *row, size_t col)
{
	snprintf(buf, cap, "line %zu, column %zu", row->line, col + 1);
	return buf;
}

static const char *opt(const char *cell) { return cell && *cell ? cell : NULL; }

/* Splits a ';' list into arena strings; the count. */
static size_t split(struct rd *r, const char *cell, const char ***out)
{
	size_t n = 1;
	for (const char *c = cell; *c; c++)
		n += *c == ';';
	*out = st_host->alloc(r->ctx, n * sizeof **out);
	char *copy = st_host->copy_string(r->ctx, cell);
	if (!*out || !copy) {
		r->nomem = true;
		return 0;
	}
	size_t i = 0;
	for (char *s = copy;; s++) {
		(*out)[i++] = s;
		s = strchr(s, ';');
		if (!s)
			break;
		*s = '\0';
	}
	return n;
}

enum col {
	C_VERSION, C_PSYS, C_PVAL, C_PNAME, C_ID, C_CATEGORY, C_DESCRIPTION, C_ROLE, C_BYNAME, C_BYSYS, C_BYVAL,
	C_DATE, C_GOALS
};

static void read_row(struct rd *r, struct st_doc *doc, const struct row *row)
{
	char w[96];
	const char *const *c = row->cell;
	static const bool optional[ST_CSV_COLUMNS] = {[C_PNAME] = true, [C_BYNAME] = true, [C_BYSYS] = true,
						      [C_BYVAL] = true, [C_GOALS] = true};
	for (size_t i = 0; i < ST_CSV_COLUMNS; i++) {
		if (!*c[i] && !optional[i])
			bad(r, "required", at(w, sizeof w, row, i), "%s is required", st_csv_header[i]);
		else if (*c[i] && i != C_GOALS)
			check_text(r, c[i], at(w, sizeof w, row, i));
	}
	if (*c[C_VERSION] && strcmp(c[C_VERSION], "1") != 0)
		bad(r, "not-supported", at(w, sizeof w, row, C_VERSION), "this plugin reads version 1 of the format");

	struct st_ident pid = {opt(c[C_PSYS]), opt(c[C_PVAL])};
	if (pid.system)
		check_system(r, pid.system, at(w, sizeof w, row, C_PSYS));
	size_t pi = doc->n_people;
	for (size_t i = 0; i < doc->n_people && pid.system && pid.value; i++)
		if (same_ident(&doc->people[i].id, &pid)) {
			pi = i;
			break;
		}
	if (pi == doc->n_people) {
		struct st_person *p = st_add_person(r->ctx, doc);
		if (!p) {
			r->nomem = true;
			return;
		}
		p->id = pid;
		p->name = opt(c[C_PNAME]);
		snprintf(w, sizeof w, "line %zu", row->line);
		p->where = keep(r, w);
	} else if (!same(doc->people[pi].name, opt(c[C_PNAME]))) {
		bad(r, "conflict", at(w, sizeof w, row, C_PNAME), "person_name differs from the one at %s",
		    doc->people[pi].where);
	}

	struct st_strength *s = st_add_strength(r->ctx, doc);
	if (!s) {
		r->nomem = true;
		return;
	}
	snprintf(w, sizeof w, "line %zu", row->line);
	s->where = keep(r, w);
	s->person = pi;
	s->id = opt(c[C_ID]);
	if (*c[C_CATEGORY])
		s->category = check_code(r, st_categories, st_category_count, c[C_CATEGORY], "category",
					 at(w, sizeof w, row, C_CATEGORY));
	s->description = opt(c[C_DESCRIPTION]);
	int role = -1;
	if (*c[C_ROLE])
		role = check_code(r, st_roles, ST_ROLE_COUNT, c[C_ROLE], "role", at(w, sizeof w, row, C_ROLE));
	s->role = role < 0 ? ST_SELF : (enum st_role)role;
	s->by_name = opt(c[C_BYNAME]);
	s->by_id.system = opt(c[C_BYSYS]);
	s->by_id.value = opt(c[C_BYVAL]);
	if (s->by_id.system)
		check_system(r, s->by_id.system, at(w, sizeof w, row, C_BYSYS));
	if (!s->by_id.system != !s->by_id.value)
		bad(r, "required", at(w, sizeof w, row, s->by_id.system ? C_BYVAL : C_BYSYS),
		    "identified_by_system and identified_by_value go together");
	if (role >= 0)
		check_self(r, s, at(w, sizeof w, row, C_ROLE));
	if ((s->date = opt(c[C_DATE])))
		check_date(r, s->date, at(w, sizeof w, row, C_DATE));
	if (*c[C_GOALS]) {
		s->n_goals = split(r, c[C_GOALS], &s->goals);
		for (size_t i = 0; i < s->n_goals; i++)
			check_goal(r, s->goals[i], at(w, sizeof w, row, C_GOALS));
	}
}

enum cw_status st_read_csv(struct cw_ctx *ctx, const char *data, size_t len, struct st_doc *doc)
{
	struct rd r = {.ctx = ctx};
	const char *p = data, *end = data + len;
	if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3; /* a byte order mark */
	size_t line = 1;
	struct row row;
	char w[96];
	if (!next_record(&r, &p, end, &line, &row)) {
		if (!r.nomem)
			bad(&r, "required", "line 1", "the header row is missing");
		return finish(&r, doc, true);
	}
	if (row.n != ST_CSV_COLUMNS)
		bad(&r, "structure", "line 1", "the header has %zu columns, the format has %d", row.n, ST_CSV_COLUMNS);
	for (size_t i = 0; i < row.n && i < ST_CSV_COLUMNS; i++)
		if (strcmp(row.cell[i], st_csv_header[i]) != 0)
			bad(&r, "structure", at(w, sizeof w, &row, i), "header '%s' where '%s' belongs", row.cell[i],
			    st_csv_header[i]);
	size_t rows = 0;
	while (!r.nomem && next_record(&r, &p, end, &line, &row)) {
		if (row.n == 1 && !*row.cell[0] && p >= end)
			break; /* nothing after the last line break */
		rows++;
		snprintf(w, sizeof w, "line %zu", row.line);
		if (row.malformed)
			bad(&r, "structure", w, "a quoted cell is malformed (RFC 4180)");
		if (row.n != ST_CSV_COLUMNS)
			bad(&r, "structure", w, "%zu columns where the header has %d", row.n, ST_CSV_COLUMNS);
		else
			read_row(&r, doc, &row);
	}
	if (!rows && !r.nomem)
		bad(&r, "required", "line 2", "no strength rows");
	return finish(&r, doc, true);
}

/* ---------------------------------------------------------- JSON out */

static cJSON *ident_json(const struct st_ident *id)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "system", id->system);
	cJSON_AddStringToObject(o, "value", id->value);
	return o;
}

static cJSON *strength_json(const struct st_strength *s)
{
	cJSON *o = cJSON_CreateObject(), *by = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", s->id);
	cJSON_AddStringToObject(o, "category", st_categories[s->category].code);
	cJSON_AddStringToObject(o, "description", s->description);
	cJSON_AddItemToObject(o, "identified_by", by);
	cJSON_AddStringToObject(by, "role", st_roles[s->role].code);
	if (s->by_name)
		cJSON_AddStringToObject(by, "name", s->by_name);
	if (s->by_id.system && s->by_id.value)
		cJSON_AddItemToObject(by, "identifier", ident_json(&s->by_id));
	cJSON_AddStringToObject(o, "date", s->date);
	if (s->n_goals) {
		cJSON *g = cJSON_AddArrayToObject(o, "goals");
		for (size_t i = 0; i < s->n_goals; i++)
			cJSON_AddItemToArray(g, cJSON_CreateString(s->goals[i]));
	}
	return o;
}

enum cw_status st_write_json(struct cw_ctx *ctx, const struct st_doc *doc, char **out, size_t *len)
{
	cJSON *arr = cJSON_CreateArray();
	for (size_t p = 0; arr && p < doc->n_people; p++) {
		const struct st_person *pp = &doc->people[p];
		cJSON *rec = cJSON_CreateObject(), *person = cJSON_CreateObject();
		cJSON_AddItemToArray(arr, rec);
		cJSON_AddNumberToObject(rec, "version", 1);
		cJSON_AddItemToObject(rec, "person", person);
		cJSON_AddItemToObject(person, "identifier", ident_json(&pp->id));
		if (pp->name)
			cJSON_AddStringToObject(person, "name", pp->name);
		cJSON *list = cJSON_AddArrayToObject(rec, "strengths");
		for (size_t i = 0; i < doc->n_items; i++)
			if (doc->items[i].person == p)
				cJSON_AddItemToArray(list, strength_json(&doc->items[i]));
	}
	const cJSON *tree = arr && !doc->array && doc->n_people == 1 ? arr->child : arr;
	*out = tree ? st_host->print_json(ctx, tree, len) : NULL;
	cJSON_Delete(arr);
	if (!*out)
		st_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
	return *out ? CW_OK : CW_NOMEM;
}

/* ----------------------------------------------------------- CSV out */

struct buf {
	char *p;
	size_t n, cap;
	bool nomem;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->nomem)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->nomem = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

/* One cell, quoted (quotes doubled) only when it must be. */
static void cell(struct buf *b, const char *s, bool last)
{
	s = s ? s : "";
	if (strpbrk(s, ",\"\r\n")) {
		put(b, "\"", 1);
		for (const char *q = s; *q; q++) {
			put(b, q, 1);
			if (*q == '"')
				put(b, q, 1);
		}
		put(b, "\"", 1);
	} else {
		put(b, s, strlen(s));
	}
	put(b, last ? "\n" : ",", 1);
}

enum cw_status st_write_csv(struct cw_ctx *ctx, const struct st_doc *doc, char **out, size_t *len)
{
	struct buf b = {0};
	for (size_t p = 0; p < doc->n_people; p++) {
		bool any = false;
		for (size_t i = 0; i < doc->n_items && !any; i++)
			any = doc->items[i].person == p;
		if (!any)
			st_host->issue(ctx, CW_SEV_WARNING, "not-supported", NULL,
				       "a person without strengths has no CSV row; person %zu left out", p + 1);
	}
	for (size_t i = 0; i < ST_CSV_COLUMNS; i++)
		cell(&b, st_csv_header[i], i + 1 == ST_CSV_COLUMNS);
	for (size_t i = 0; i < doc->n_items; i++) {
		const struct st_strength *s = &doc->items[i];
		const struct st_person *p = &doc->people[s->person];
		cell(&b, "1", false);
		cell(&b, p->id.system, false);
		cell(&b, p->id.value, false);
		cell(&b, p->name, false);
		cell(&b, s->id, false);
		cell(&b, st_categories[s->category].code, false);
		cell(&b, s->description, false);
		cell(&b, st_roles[s->role].code, false);
		cell(&b, s->by_name, false);
		cell(&b, s->by_id.system, false);
		cell(&b, s->by_id.value, false);
		cell(&b, s->date, false);
		struct buf g = {0};
		for (size_t k = 0; k < s->n_goals; k++) {
			if (k)
				put(&g, ";", 1);
			put(&g, s->goals[k], strlen(s->goals[k]));
		}
		b.nomem |= g.nomem;
		cell(&b, g.p, true);
		free(g.p);
	}
	*out = b.nomem ? NULL : st_host->alloc(ctx, b.n + 1);
	if (*out) {
		memcpy(*out, b.p, b.n);
		(*out)[b.n] = '\0';
		*len = b.n;
	} else {
		st_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
	}
	free(b.p);
	return *out ? CW_OK : CW_NOMEM;
}
